#!/usr/bin/env bash
# Continues the training runs of the shipped models in the background, the machine's cores
# shared evenly among the runs (RT4KSR_TRAIN_THREADS overrides the threads per run).
# Each chain's schedules run in order; a schedule that has finished exits at once, and its final
# checkpoint and log are then copied into training/state/, where a later schedule's config
# reads its `init_weights`. Without an argument it lists the runs.
# The last runs (finished):
#   x2-video, x3-video: the x2 and x3 of commit 9193b33 with soft photos through H.264 and back
#       besides (data/generated/video-train; configs/train_x2_video.toml, train_x3_video.toml):
#       x2-video is the embedded x2 (its EMA at the end); the embedded x3 is the equal mean of
#       x3-video's end and x3-soft3's (`rt4ksr convert --mean-with`, docs/training.md).
#       x3-video2 and x4-video: finished, not shipped.
#   x4-narrow: the x4 of commit cebc48b (x4-soft2's end), 12,000 steps at 1e-4 on its data
#       (configs/train_x4_narrow.toml; x4-wide's control): the embedded x4 (its EMA at the end).
#   x4-wide: the x4 of commit cebc48b widened to 48 feature channels (`rt4ksr convert --widen 2`),
#       12,000 steps on x4-soft2's data (configs/train_x4_wide.toml): finished, not shipped
#       (+0.028 / +0.018 dB on Set5 / Set14 over x4-soft2, +0.024 / +0.015 over x4-narrow, at
#       2.7x the work per frame).
#   x3-soft3: x3-upright2's end (below) on photos with the upright screens and text kept
#       (configs/train_x3_upright2_mix.toml), then with soft photos at 16, 28 and 36 % of the crops
#       (configs/train_x3_soft.toml, train_x3_soft2.toml, train_x3_soft3.toml): the embedded x3
#       model before (its EMA at the end; half of the embedded x3).
#   x2-soft2, x4-soft2: the x2 and x4 models of commit 616903f with soft photos besides
#       (data/generated/soft-train; configs/train_x2_soft.toml then train_x2_soft2.toml, and
#       configs/train_x4_soft.toml then train_x4_soft2.toml): the x2 and x4 models embedded
#       before (their EMA at the end).
#   x3-upright2-photos: the x3 model of commit 71fe4d1 transposed (`rt4ksr convert --transpose`),
#       4,000 steps with the synthetic screens kept upright (configs/train_x3_screens_up.toml,
#       x3-screens-up), 8,000 with more of them and the synthetic text upright besides
#       (configs/train_x3_upright2.toml), then 3,000 on photos
#       (configs/train_x3_upright2_photos.toml): the x3 model embedded before (its EMA at the end).
#       x3-upright-photos (the same from 4,000 steps of that data, configs/train_x3_upright.toml
#       and train_x3_upright_photos.toml): the x3 model embedded for one commit before it.
#       x3-screens-t (x3-screens' schedule from the transposed model): finished, not shipped.
#   x2-luma-w2, x4-luma-w2: x2-luma and x4-luma below with the luma loss at twice its weight
#       (configs/train_x2_luma_w2.toml, train_x4_luma_w2.toml): the x2 and x4 models embedded
#       before (their EMA at the end). x2-luma-w4 (four times) was stopped at step 300.
#   x3-luma-mix-w16-inv: x3-luma, then x3-luma-mix-w2's schedule below with the luma loss at
#       sixteen times its weight and a quarter of the crops negative
#       (configs/train_x3_luma_mix_w16_inv.toml): an x3 model embedded before (its EMA at the end).
#       x3-luma-mix-w4, -w8, -w16 (four, eight and sixteen times, no negative crops) and
#       x3-luma-mix-w4-8bit (four times, 8-bit LR patches): finished, not shipped.
#   x2-luma: configs/train_x2_luma.toml (x2-colour's end, 6,000 steps with 10 % colour-pair and
#       10 % synthetic crops and the loss on luma): the x2 model embedded before (its EMA at the end).
#   x3-luma-mix: configs/train_x3_luma.toml (x3-colour-photos' end, 8,000 steps with 10 %
#       colour-pair and 10 % synthetic crops and the loss on luma), then
#       configs/train_x3_luma_mix.toml (4,000 steps with 6 % and 8 % of them and the loss on luma):
#       embedded for one commit. x3-luma-mix-w2: the same with the luma loss at twice its weight
#       (configs/train_x3_luma_mix_w2.toml): the x3 model embedded before (its EMA at the end).
#       `x3-luma` runs train_x3_luma_photos.toml after x3-luma instead (photos alone; embedded
#       for one commit).
#   x4-luma: configs/train_x4_luma.toml (x4-from-x3's end, 6,000 steps as x2-luma): the x4
#       model embedded before (its EMA at the end).
#   x3-colour2: configs/train_x3_colour2.toml (x3-colour-photos' end, 16,000 steps on that data
#       without the luma loss), then train_x3_colour2_photos.toml (6,000 on photos): not shipped
#       (Set14 28.9765); x3-colour2-luma ran the photos schedule again with the loss on luma
#       (configs/train_x3_colour2_photos_luma.toml): not shipped, the comparison of the two.
#   x2-colour: configs/train_x2_colour.toml (x2-from-x3's end, 6,000 steps with 6 % colour-pair
#       crops): the x2 model embedded before, x2-luma's start.
#   x3-colour-photos: configs/train_x3_colour_photos.toml (x3-colour's end, 6,000 steps on the
#       training photos and extra/'s): the x3 model embedded before, x3-luma's start.
#   x3-colour: configs/train_x3_colour.toml (x3-mix-xlong's end, 12,000 steps with 6 % colour-pair
#       crops): not shipped alone (Set5 32.214, Set14 28.963); x3-colour-photos' start.
#   x3-mix-xlong: configs/train_x3_mix_xlong.toml (x3-long's committed state at step 229,100,
#       60,000 steps at a peak of 1e-4 on the training photos, extra/'s and 12 % synthetic crops):
#       not shipped (Set5 32.212, Set14 28.963); x3-colour's start.
#   x3-synthetic: configs/train_x3_synthetic.toml (x3-from-x2-from-x3's end, 16,000 steps with
#       30 % synthetic crops): not shipped (Set5 32.156, Set14 28.922).
#   x3-from-x2-from-x3: configs/train_x3_from_x2_from_x3.toml (x3 from x2-from-x3's final state,
#       the upsample conv resampled; 20,000 steps on x2-mix's data): a quarter of an x3 model
#       embedded before (its EMA at 16,000, `rt4ksr convert ... --mean-share 0.25`, docs/training.md); its
#       state at step 11,000 is in commit e389fe1, and `training/resume.sh x3-from-x2-from-x3`
#       runs its last 9,000 steps from there again.
#   x2-from-x3: configs/train_x2_from_x3_long.toml (x2 from the same state, the upsample conv
#       resampled back to x2; 20,000 steps on x2-mix's data): an x2 model embedded before (its EMA
#       weights at step 16,000).
#   x4-from-x3: configs/train_x4_from_x3_long.toml (x4 from x3-long's committed state at step
#       229,100, the upsample conv resampled; 20,000 steps at a peak of 1e-4 on the training
#       photos and extra/'s): the x4 model embedded before (its EMA weights at step 16,000).
#   x3-mix-long: configs/train_x3_mix_long.toml (x3-long's committed state at step 229,100 on
#       x3-mix's data for 20,000 steps); an x3 model embedded before was the mean of its folded EMA
#       weights and x3-photos' (`rt4ksr convert ... --mean-with ...`, docs/training.md).
#   x2-finetune: configs/train_x2_photos.toml and configs/train_x2_mix.toml side by side (x2's
#       third schedule's state at step 84,500, commit 5c9b07a, on the training photos and
#       extra/'s, and with 8 % synthetic crops besides: an x2 model embedded before).
#   x3-finetune: configs/train_x3_long.toml (the first x3 run's state at step 117,500 on a
#       cosine stretched to 240,000 steps; its state at step 229,100 is in commit 5b4ada4), then
#       configs/train_x3_photos.toml (its end on the training photos and extra/'s: an x3 model
#       embedded before) and configs/train_x3_mix.toml (with synthetic images too; not shipped).
# Finished earlier (`training/resume.sh x3-general` or `x4` would start them again from
# scratch):
#   x3: configs/train_x3_general.toml (generalisation: the x3 model of
#       configs/train_x3_from_x2_phase3.toml, paused at step 117,500, trained on with extra/
#       and synthetic content; its images are made by tools/generalisation_sets.py into
#       data/generated when missing, with Pillow in a venv under target/).
#   x4: configs/train_x4_from_x2_phase3.toml (x4 from x2-phase3's EMA weights at step 84,500,
#       the upsample conv resampled).
#   x2-general: configs/train_x2_general.toml (the x2 model at 84,500 on the same mixed data,
#       a short schedule at a lower peak).
# The paused run, its state in history: `training/resume.sh x2` continues x2's third schedule
# (configs/train_x2_phase3.toml, step 84,500, commit 5c9b07a). The x3 run of the shipped model,
# configs/train_x3_from_x2_phase3.toml, has finished (160,000 steps); `training/resume.sh
# x3-main` would run its last 42,500 steps again from its state at 117,500 (commit d0cf9c4).
# Each run's state lives in its out_dir, runs/NAME in the checkout (the configs' paths are
# relative to it); when that folder is gone (a fresh clone or machine), the copy committed in
# training/state/ is put back first (a run with none yet starts from its config).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the state of a run in progress stays in the tree; a paused run's is in history.
paused() {
  local commit=$1 name=$2
  if [ ! -f "runs/$name/checkpoint.safetensors" ] && [ ! -f "training/state/$name.checkpoint.safetensors" ]; then
    git show "$commit:training/state/$name.checkpoint.safetensors" > "training/state/$name.checkpoint.safetensors"
  fi
}
# The longer x3 schedule goes on from its last committed state, at step 229,100 (its log up to
# there too: the log in the tree runs to its end).
x3_long_start() {
  if [ ! -f runs/x3-long/checkpoint.safetensors ] && [ ! -f training/state/x3-long.checkpoint.safetensors ]; then
    git show 5b4ada4:training/state/x3-long.checkpoint.safetensors > training/state/x3-long.checkpoint.safetensors
    git show 5b4ada4:training/state/x3-long.log.csv > training/state/x3-long.log.csv
  fi
}
case "${1:-}" in
  x2) paused 5c9b07a x2-phase3; chains=("x2-phase3:train_x2_phase3") ;;
  x3-main) paused d0cf9c4 x3-from-x2-phase3; chains=("x3-from-x2-phase3:train_x3_from_x2_phase3") ;;
  # x3-long's last steps from its committed state (finished), then the generalisation
  # fine-tunes of its end, one after the other.
  x3-finetune)
    x3_long_start
    chains=("x3-long:train_x3_long x3-photos:train_x3_photos x3-mix:train_x3_mix") ;;
  # Generalisation at x3, second round: x3-mix's data on a longer schedule, from x3-long's
  # committed state.
  x3-mix-long)
    x3_long_start
    chains=("x3-mix-long:train_x3_mix_long") ;;
  # Third round: a long schedule (60,000 steps at a peak of 1e-4, 12 % synthetic crops) from the
  # same state.
  x3-mix-xlong)
    x3_long_start
    chains=("x3-mix-xlong:train_x3_mix_xlong") ;;
  # Fourth round: x3-mix-xlong to its end, then its end at a lower peak with more of the
  # photos and the colour-pair kind (configs/train_x3_colour.toml).
  # Then (x3-colour-photos) x3-colour's end on photos alone (configs/train_x3_colour_photos.toml):
  # an x3 model embedded before.
  x3-colour | x3-colour-photos)
    x3_long_start
    chain="x3-mix-xlong:train_x3_mix_xlong x3-colour:train_x3_colour"
    [ "$1" = x3-colour-photos ] && chain="$chain x3-colour-photos:train_x3_colour_photos"
    chains=("$chain") ;;
  # Fifth round: the then embedded x3's run with more colour pairs and synthetic
  # crops, then photos alone again (configs/train_x3_colour2.toml, train_x3_colour2_photos.toml).
  # Finished; its state at step 13,500 is in commit 583188b. From scratch it needs
  # x3-colour-photos' final state in training/state/ first (`training/resume.sh x3-colour-photos`).
  x3-colour2) chains=("x3-colour2:train_x3_colour2 x3-colour2-photos:train_x3_colour2_photos") ;;
  # The same data, 8,000 steps, with an L1 loss on luma beside L1 on RGB, then photos alone
  # with it (configs/train_x3_luma.toml, train_x3_luma_photos.toml); from scratch it needs
  # x3-colour-photos' final state in training/state/ too.
  x3-luma) chains=("x3-luma:train_x3_luma x3-luma-photos:train_x3_luma_photos") ;;
  # x3-luma's end with a few synthetic crops kept (configs/train_x3_luma_mix.toml); the same
  # with the luma loss at 2, 4, 8 and 16 times its weight (_w2 ... _w16), at 4 on 8-bit LR
  # patches (_w4_8bit), at 16 with a quarter of the crops negative (_w16_inv). Each run's
  # config is its name with underscores: configs/train_x3_luma_mix_w16_inv.toml.
  x3-luma-mix | x3-luma-mix-w2 | x3-luma-mix-w4 | x3-luma-mix-w8 | x3-luma-mix-w16 | x3-luma-mix-w4-8bit | x3-luma-mix-w16-inv)
    chains=("x3-luma:train_x3_luma $1:train_${1//-/_}") ;;
  # The authors' x3 weights with x3-luma-mix-w16-inv's schedule, data and losses
  # (configs/train_x3_official_ft.toml): is the dark-screen gap our start's or our data's?
  # Finished, a diagnosis (not shipped: the authors' weights carry no licence).
  x3-official-ft) chains=("x3-official-ft:train_x3_official_ft") ;;
  # The shipped x3 itself (unfolded from models/rt4ksr_x3.safetensors) on its last schedule
  # with the synthetic screens five times as often (configs/train_x3_screens.toml).
  x3-screens) chains=("x3-screens:train_x3_screens") ;;
  # The same from that model transposed (configs/train_x3_screens_t.toml), and with the screens'
  # crops kept upright besides (configs/train_x3_screens_up.toml).
  x3-screens-t) chains=("x3-screens-t:train_x3_screens_t") ;;
  x3-screens-up) chains=("x3-screens-up:train_x3_screens_up") ;;
  # x3-screens-up with twice the upright screens and upright text besides
  # (configs/train_x3_upright.toml).
  # Then x3-upright's end on photos alone (configs/train_x3_upright_photos.toml), and x3-screens-up's
  # end for 8,000 more steps on x3-upright's data (configs/train_x3_upright2.toml).
  x3-upright | x3-upright-photos)
    chain="x3-upright:train_x3_upright"
    [ "$1" = x3-upright-photos ] && chain="$chain x3-upright-photos:train_x3_upright_photos"
    chains=("$chain") ;;
  # After x3-upright2 either its end on photos alone (x3-upright2-photos,
  # configs/train_x3_upright2_photos.toml), or on photos with the upright screens and text kept
  # (configs/train_x3_upright2_mix.toml), then with soft photos besides (configs/train_x3_soft.toml),
  # then more of them, twice (configs/train_x3_soft2.toml, train_x3_soft3.toml): the chain runs
  # to the one named.
  x3-upright2 | x3-upright2-photos | x3-upright2-mix | x3-soft | x3-soft3)
    chain="x3-screens-up:train_x3_screens_up x3-upright2:train_x3_upright2"
    case $1 in
      x3-upright2) ;;
      x3-upright2-photos) chain="$chain x3-upright2-photos:train_x3_upright2_photos" ;;
      *)
        for stage in x3-upright2-mix x3-soft x3-soft2 x3-soft3; do
          chain="$chain $stage:train_${stage//-/_}"
          [ "$stage" = "$1" ] && break
        done ;;
    esac
    chains=("$chain") ;;
  # The x2 and x4 models of commit 616903f (x2-luma-w2's and x4-luma-w2's ends) with soft photos
  # besides (configs/train_x2_soft.toml, train_x4_soft.toml); then (x2-soft2, x4-soft2) more of
  # them (configs/train_x2_soft2.toml, train_x4_soft2.toml).
  x2-soft | x2-soft2 | x4-soft | x4-soft2)
    first=${1%2}
    chain="$first:train_${first//-/_}"
    [ "$first" != "$1" ] && chain="$chain $1:train_${1//-/_}"
    chains=("$chain") ;;
  # The x4 of commit cebc48b (x4-soft2's end) widened to 48 feature channels (`rt4ksr convert
  # --widen 2`: it starts computing what the narrow one did), on x4-soft2's data
  # (configs/train_x4_wide.toml); x4-narrow, the same schedule at 24 channels, its control
  # (configs/train_x4_narrow.toml).
  x4-wide | x4-narrow) chains=("$1:train_${1//-/_}") ;;
  # The x2, x3 and x4 of commit 9193b33 (x2-soft2's, x3-soft3's and x4-soft2's ends) with the soft
  # photos through H.264 and back besides (data/generated/video-train; configs/train_x2_video.toml,
  # train_x3_video.toml, train_x4_video.toml).
  x2-video | x3-video | x3-video2 | x4-video) chains=("$1:train_${1//-/_}") ;;
  # x3-colour2's photos schedule again from the same state with the luma loss: the two ends
  # differ by it alone (configs/train_x3_colour2_photos_luma.toml).
  x3-colour2-luma) chains=("x3-colour2:train_x3_colour2 x3-colour2-photos-luma:train_x3_colour2_photos_luma") ;;
  # The same at x2: x2-from-x3's end (the run of the shipped x2; at once where it has ended)
  # with the colour-pair kind (configs/train_x2_colour.toml).
  x2-colour)
    x3_long_start
    chains=("x2-from-x3-long:train_x2_from_x3_long x2-colour:train_x2_colour") ;;
  # Then x2-colour's end with the luma loss (configs/train_x2_luma.toml), and at twice and four
  # times its weight (configs/train_x2_luma_w2.toml, _w4.toml).
  x2-luma | x2-luma-w2 | x2-luma-w4)
    x3_long_start
    chains=("x2-from-x3-long:train_x2_from_x3_long x2-colour:train_x2_colour $1:train_${1//-/_}") ;;
  # x4 again, from x3-long's committed state (the most trained body), the upsample conv
  # resampled.
  x4-from-x3)
    x3_long_start
    chains=("x4-from-x3-long:train_x4_from_x3_long") ;;
  # Then its end with the luma loss (configs/train_x4_luma.toml), and at twice its weight
  # (configs/train_x4_luma_w2.toml).
  x4-luma | x4-luma-w2)
    x3_long_start
    chains=("x4-from-x3-long:train_x4_from_x3_long $1:train_${1//-/_}") ;;
  # x2 the same way, from x3-long's committed state, on x2-mix's data.
  x2-from-x3)
    x3_long_start
    chains=("x2-from-x3-long:train_x2_from_x3_long") ;;
  # x3 again from x2-from-x3's end (its final state is copied into training/state/ when that
  # run ends; this run's own state, when committed, is where it goes on from).
  x3-from-x2-from-x3) paused e389fe1 x3-from-x2-from-x3; chains=("x3-from-x2-from-x3:train_x3_from_x2_from_x3") ;;
  # Then its end with more synthetic content (the config reads its final checkpoint in runs/,
  # so the chain runs it first: at once where it has ended).
  x3-synthetic)
    paused e389fe1 x3-from-x2-from-x3
    chains=("x3-from-x2-from-x3:train_x3_from_x2_from_x3 x3-synthetic:train_x3_synthetic") ;;
  # The shipped x2 model's state at 84,500 trained on with the photos of extra/ (x2-photos), and
  # with 8 % synthetic crops besides (x2-mix), side by side.
  x2-finetune) chains=("x2-photos:train_x2_photos" "x2-mix:train_x2_mix") ;;
  # Finished: a rerun without their state (not kept) would start them from scratch.
  x3-general) chains=("x3-general:train_x3_general") ;;
  x2-general) chains=("x2-general:train_x2_general") ;;
  x4) chains=("x4-from-x2-phase3:train_x4_from_x2_phase3") ;;
  *)
    echo "give a run: x2-video, x3-video and x4-video (finished: the x2, x3 and x4 of commit 9193b33 with soft photos through H.264 and back besides: the embedded x2, half of the embedded x3; x3-video2 with more upright screens), x4-wide (finished, not shipped: the x4 of commit cebc48b widened to 48 channels, 12,000 steps on x4-soft2's data), x4-narrow (finished: the same schedule at 24 channels, the control: the embedded x4), x2-soft2 (finished: the x2 of commit 616903f with 18 % soft photos, then 30 %: the x2 embedded before; x2-soft stops after the first), x4-soft2 (finished: the x4 of commit 616903f with 18 % soft photos, then 30 %: the x4 embedded before; x4-soft stops after the first), x3-soft3 (finished: x3-upright2's end on photos with the upright screens and text kept, then three schedules with more and more soft photos: the x3 embedded before, half of the embedded mean; x3-upright2-mix and x3-soft stop earlier in that chain), x3-upright2-photos (finished: x3-screens-up, then 8,000 steps on x3-upright's data, then photos alone: the x3 embedded before), x3-upright2 (finished: without the photos), x3-upright and x3-upright-photos (finished: x3-screens-up's data with more upright screens and text from the transposed model, then photos alone), x3-screens-t and x3-screens-up (finished: x3-screens from the x3 of commit 71fe4d1 transposed, and with the screens kept upright besides), x3-screens (finished: the x3 of commit 71fe4d1 on its last schedule with five times the synthetic screens), x3-official-ft (finished: the authors' x3 weights fine-tuned as x3-luma-mix-w16-inv, a diagnosis), x3-luma (finished: x3-colour-photos' end, 8,000 steps with more colour pairs and a loss on luma, then 4,000 on photos), x3-colour2 (finished: the same data without the luma loss, 16,000 steps, then 6,000 on photos), x3-luma-mix (finished: x3-luma, then 4,000 steps with a few synthetic crops), x3-luma-mix-w2 (finished: the same, the luma loss at twice its weight, an x3 embedded before), x3-colour2-luma (x3-colour2's photos schedule with the loss on luma), x3-colour (x3-mix-xlong to its end, then 12,000 steps with colour pairs), x2-colour (x2-from-x3's end, then 6,000 steps with colour pairs), x2-luma (finished: then 6,000 more with the loss on luma, an x2 embedded before), x3-colour-photos (x3-colour's end, then 6,000 steps on photos), x3-mix-xlong (finished: again from x3-long's step 229,100), x3-synthetic (finished: again after x3-from-x2-from-x3), x3-from-x2-from-x3 (finished: its last 9,000 steps again from history), x2-from-x3 or x4-from-x3 (finished: again from x3-long's step 229,100), x4-luma (finished: x4-from-x3's end with the loss on luma, an x4 embedded before), x2-luma-w2, x2-luma-w4, x4-luma-w2, x3-luma-mix-w4, x3-luma-mix-w8 and x3-luma-mix-w16 (x2-luma, x4-luma and x3-luma-mix-w2 with the luma loss at two, four, eight or sixteen times the weight), x3-luma-mix-w4-8bit (x3-luma-mix-w4 on 8-bit LR patches), x3-luma-mix-w16-inv (x3-luma-mix-w16 with a quarter of its crops negative), x3-mix-long (finished: again from x3-long's step 229,100), x2-finetune (finished: both x2 fine-tunes again), x3-finetune (finished: x3-long's last steps, then its end trained on with varied data), x2 (paused, continued from history), x3-main (finished: again from step 117,500), x3-general or x4 (finished: from scratch), x2-general"
    exit 0
    ;;
esac
cargo build --release
mkdir -p runs
# A rename, so that a run still going keeps its binary.
cp target/release/rt4ksr runs/rt4ksr-train-bin.new
mv -f runs/rt4ksr-train-bin.new runs/rt4ksr-train-bin

# The states that x4 and x3-general start from (their configs' `init_weights`), out of
# history: only the state of a run in progress stays in the tree.
from_history() {
  local commit=$1 name=$2 to=$3
  if [ ! -f "runs/init/$to" ]; then
    mkdir -p runs/init
    git show "$commit:training/state/$name.checkpoint.safetensors" > "runs/init/$to.new"
    mv "runs/init/$to.new" "runs/init/$to"
  fi
}
from_history 5c9b07a x2-phase3 x2-phase3.checkpoint.safetensors
from_history d0cf9c4 x3-from-x2-phase3 x3-from-x2-phase3-117500.checkpoint.safetensors
# A model shipped at an earlier commit, out of history, where later runs start.
shipped_model() {
  local commit=$1 scale=$2 to=runs/init/$3.safetensors
  if [ ! -f "$to" ]; then
    git show "$commit:models/rt4ksr_x$scale.safetensors" > "$to.new"
    mv "$to.new" "$to"
  fi
}
# The x3 of commit 71fe4d1 (x3-luma-mix-w16-inv's end), where the x3-screens runs start, and its
# transpose; the x2 and x4 of commit 616903f (x2-luma-w2's and x4-luma-w2's ends), where x2-soft
# and x4-soft start.
shipped_model 71fe4d1 3 x3-luma-mix-w16-inv
if [ ! -f runs/init/x3-luma-mix-w16-inv.transposed.safetensors ]; then
  target/release/rt4ksr convert runs/init/x3-luma-mix-w16-inv.safetensors --transpose \
    -o runs/init/x3-luma-mix-w16-inv.transposed.safetensors
fi
shipped_model 616903f 2 x2-luma-w2
shipped_model 616903f 4 x4-luma-w2
# The x4 of commit cebc48b (x4-soft2's end), where x4-narrow starts, and the same widened to 48
# channels, where x4-wide starts.
shipped_model cebc48b 4 x4-soft2
if [ ! -f runs/init/x4-soft2.wide.safetensors ]; then
  target/release/rt4ksr convert runs/init/x4-soft2.safetensors --widen 2 \
    -o runs/init/x4-soft2.wide.safetensors
fi
# The x2 and x3 of commit 9193b33 (x2-soft2's and x3-soft3's ends), where x2-video and x3-video
# start (x4-video starts from x4-soft2 above, the x4 of that commit too).
shipped_model 9193b33 2 x2-soft2
shipped_model 9193b33 3 x3-soft3

# The generalisation images (deterministic for one Pillow version, pinned, and one ffmpeg's
# libx264; video-val is the newest folder, so a checkout made before it has all of them made
# again).
if [ ! -d data/generated/video-val ]; then
  if [ ! -x target/datagen-venv/bin/python ]; then
    python3 -m venv target/datagen-venv
    target/datagen-venv/bin/pip install -q pillow==13.0.0 numpy
  fi
  target/datagen-venv/bin/python tools/generalisation_sets.py --shared ../shared --out data/generated.new
  rm -rf data/generated && mv data/generated.new data/generated
fi

# The synthetic UI screens and text of synthetic-train, each kind on its own, for configs that
# weight a kind apart or keep it upright (copies: the training set's walk takes files).
for kind in screen text; do
  if [ ! -d data/generated/synthetic-$kind-train ]; then
    mkdir -p data/generated/synthetic-$kind-train.new
    cp data/generated/synthetic-train/${kind}_*.png data/generated/synthetic-$kind-train.new/
    mv data/generated/synthetic-$kind-train.new data/generated/synthetic-$kind-train
  fi
done

# Runs one schedule to its end (or returns at once if it has ended), then files its state.
run_schedule() {
  local name=$1 config=configs/$2.toml
  local out=runs/$name
  if [ ! -f "$out/checkpoint.safetensors" ] && [ -f "training/state/$name.checkpoint.safetensors" ]; then
    mkdir -p "$out"
    cp "training/state/$name.checkpoint.safetensors" "$out/checkpoint.safetensors"
    cp "training/state/$name.log.csv" "$out/log.csv"
  fi
  # At the lowest priority, so that builds and tests on the same cores go first.
  RAYON_NUM_THREADS=$threads nice -n 19 runs/rt4ksr-train-bin train --config "$config" --resume \
    >> "runs/$name.out" 2>&1
  cp "$out/checkpoint.safetensors" "training/state/$name.checkpoint.safetensors"
  cp "$out/log.csv" "training/state/$name.log.csv"
}

threads=${RT4KSR_TRAIN_THREADS:-$(( $(nproc) / ${#chains[@]} > 0 ? $(nproc) / ${#chains[@]} : 1 ))}
for chain in "${chains[@]}"; do
  running=""
  for stage in $chain; do
    if pgrep -f -- "--config configs/${stage#*:}.toml" > /dev/null; then running=${stage%%:*}; fi
  done
  if [ -n "$running" ]; then
    echo "$running is already running"
    continue
  fi
  (
    # As nohup did for each run before: the chain outlives the terminal that started it.
    trap '' HUP
    for stage in $chain; do
      run_schedule "${stage%%:*}" "${stage#*:}" || exit 1
    done
  ) < /dev/null > /dev/null 2>&1 &
done
echo "training in the background; logs: runs/*/log.csv, progress: runs/*.out"
