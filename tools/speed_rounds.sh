#!/usr/bin/env bash
# Same-period speed comparison on a shared machine: rounds that alternate two rt4ksr binaries
# (`bench --fast-only`), ONNX Runtime on the exported official models, and 30-frame y4m streams
# through both binaries. Pauses the background training runs while it measures.
#
#   tools/speed_rounds.sh OLD_BIN NEW_BIN X3.onnx X2.onnx IN720.y4m IN1080.y4m [ROUNDS]
#
# The ONNX files: `rt4ksr export --onnx X3.onnx --weights rt4ksr_x3.pth` (and x2); the streams:
# `ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=25 -frames:v 30 -pix_fmt yuv420p -f
# yuv4mpegpipe IN720.y4m` (and 1920x1080). PYTHON names a Python with onnxruntime (default python3).
set -euo pipefail
old=$1 new=$2 x3=$3 x2=$4 in720=$5 in1080=$6 rounds=${7:-3}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
pkill -STOP -f rt4ksr-train-bin || true
trap 'pkill -CONT -f rt4ksr-train-bin || true' EXIT
for round in $(seq "$rounds"); do
  echo "### round $round"
  for bin in "$old" "$new"; do
    "$bin" bench --fast-only --runs 5 | grep "fast engine" | sed "s|^|$bin |"
  done
  "$python" tools/ort_bench.py "$x3" 1280 720 --runs 5
  "$python" tools/ort_bench.py "$x2" 1920 1080 --runs 5
  for bin in "$old" "$new"; do
    for s in 3 2; do
      f=$in720; [ "$s" = 2 ] && f=$in1080
      t0=$(date +%s.%N)
      "$bin" upscale - -o - -s "$s" < "$f" > /dev/null 2>&1
      t1=$(date +%s.%N)
      echo "$bin stream x$s $(python3 -c "print(f'{30/($t1-$t0):.2f}')") frames/s"
    done
  done
done
