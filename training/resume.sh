#!/usr/bin/env bash
# Continues the training runs of the shipped models in the background, one thread each.
# Each run's state lives in its out_dir (see configs/train_x*.toml); when that folder is gone
# (a fresh machine), the copy committed in training/state/ is put back first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p /root/rt4ksr-runs
cp target/release/rt4ksr /root/rt4ksr-runs/rt4ksr-train-bin
for s in 2 3; do
  out=/root/rt4ksr-runs/x$s
  if [ ! -f "$out/checkpoint.safetensors" ]; then
    mkdir -p "$out"
    cp training/state/x$s.checkpoint.safetensors "$out/checkpoint.safetensors"
    cp training/state/x$s.log.csv "$out/log.csv"
  fi
  RAYON_NUM_THREADS=1 nohup /root/rt4ksr-runs/rt4ksr-train-bin train --config configs/train_x$s.toml --resume \
    >> /root/rt4ksr-runs/x$s.out 2>&1 &
done
# The x3-from-x2 experiment (docs/training.md): continues its run folder, or starts afresh from
# the x2 weights in training/state when there is none.
RAYON_NUM_THREADS=1 nohup /root/rt4ksr-runs/rt4ksr-train-bin train --config configs/train_x3_from_x2.toml --resume \
  >> /root/rt4ksr-runs/x3-from-x2.out 2>&1 &
echo "training x2, x3 and x3-from-x2 in the background; logs: /root/rt4ksr-runs/*/log.csv"
