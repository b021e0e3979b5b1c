#!/usr/bin/env bash
# Continues the training runs of the shipped models in the background, the machine's cores
# shared evenly among the runs (RT4KSR_TRAIN_THREADS overrides the threads per run).
# Each chain's schedules run in order; a schedule that has finished exits at once, and its final
# checkpoint and log are then copied into training/state/, where a later schedule's config
# reads its `init_weights`. The run now going:
#   x3: configs/train_x3_from_x2_phase3.toml (x3 afresh from x2-phase3's EMA weights at step
#       84,500, the upsample conv resampled; past the x3 chain's fourth schedule,
#       configs/train_x3_phase4.toml, stopped at step 17,500, within 2,000 steps).
#   x4: configs/train_x4_from_x2_phase3.toml (x4 from the same x2 weights, started the same way).
# x2's third schedule (configs/train_x2_phase3.toml) is paused at step 84,500, past the official
# weights; `training/resume.sh x2` continues it instead, its state taken back from history
# (commit 5c9b07a) first.
# Each run's state lives in its out_dir, runs/NAME in the checkout (the configs' paths are
# relative to it); when that folder is gone (a fresh clone or machine), the copy committed in
# training/state/ is put back first (a run with none yet starts from its config).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p runs
# A rename, so that a run still going keeps its binary.
cp target/release/rt4ksr runs/rt4ksr-train-bin.new
mv -f runs/rt4ksr-train-bin.new runs/rt4ksr-train-bin

# The x2 state that x4 starts from (its config's `init_weights`), out of history: only the state
# of a run in progress stays in the tree.
if [ ! -f runs/init/x2-phase3.checkpoint.safetensors ]; then
  mkdir -p runs/init
  git show 5c9b07a:training/state/x2-phase3.checkpoint.safetensors > runs/init/x2-phase3.checkpoint.safetensors.new
  mv runs/init/x2-phase3.checkpoint.safetensors.new runs/init/x2-phase3.checkpoint.safetensors
fi

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

if [ "${1:-}" = x2 ]; then
  # Only the state of the run in progress stays in the tree; a paused run's is in history.
  if [ ! -f runs/x2-phase3/checkpoint.safetensors ] && [ ! -f training/state/x2-phase3.checkpoint.safetensors ]; then
    git show 5c9b07a:training/state/x2-phase3.checkpoint.safetensors > training/state/x2-phase3.checkpoint.safetensors
  fi
  chains=("x2-phase3:train_x2_phase3")
else
  chains=("x3-from-x2-phase3:train_x3_from_x2_phase3" "x4-from-x2-phase3:train_x4_from_x2_phase3")
fi
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
