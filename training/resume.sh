#!/usr/bin/env bash
# Continues the training runs of the shipped models in the background, one thread each: x2's
# second schedule (configs/train_x2_phase2.toml, from the EMA weights at the end of
# configs/train_x2.toml's 40,000 steps) and x3's (configs/train_x3_phase2.toml, from the EMA
# weights of configs/train_x3_from_x2.toml at step 37,000; that run started from x2's weights,
# and the x3 run from scratch, configs/train_x3.toml, was stopped at step 7,800 when it overtook
# it). A run that has finished its schedule exits at once.
# Each run's state lives in its out_dir; when that folder is gone (a fresh machine), the copy
# committed in training/state/ is put back first (a run with none yet starts from its config).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p /root/rt4ksr-runs
# A rename, so that a run still going keeps its binary.
cp target/release/rt4ksr /root/rt4ksr-runs/rt4ksr-train-bin.new
mv -f /root/rt4ksr-runs/rt4ksr-train-bin.new /root/rt4ksr-runs/rt4ksr-train-bin
for run in x2-phase2:train_x2_phase2 x3-phase2:train_x3_phase2; do
  name=${run%%:*} config=configs/${run#*:}.toml
  out=/root/rt4ksr-runs/$name
  if pgrep -f -- "--config $config" > /dev/null; then
    echo "$name is already running"
    continue
  fi
  if [ ! -f "$out/checkpoint.safetensors" ] && [ -f "training/state/$name.checkpoint.safetensors" ]; then
    mkdir -p "$out"
    cp "training/state/$name.checkpoint.safetensors" "$out/checkpoint.safetensors"
    cp "training/state/$name.log.csv" "$out/log.csv"
  fi
  RAYON_NUM_THREADS=1 nohup /root/rt4ksr-runs/rt4ksr-train-bin train --config "$config" --resume \
    >> "/root/rt4ksr-runs/$name.out" 2>&1 &
done
echo "training x2-phase2 and x3-phase2 in the background; logs: /root/rt4ksr-runs/*/log.csv"
