#!/usr/bin/env bash
# Two rt4ksr builds on the same y4m stream, alternated round by round (order swapped every
# round, so each sees the shared machine's swings alike): frames/s of the whole command, and
# the CPU time all cores spent busy and idle over it (from /proc/stat; Linux). Pauses the
# background training runs while it measures.
#
#   tools/stream_pairs.sh OLD_BIN NEW_BIN SCALE IN.y4m [ROUNDS]
#
# IN.y4m: e.g. `ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=25 -frames:v 30 -pix_fmt yuv420p
# -f yuv4mpegpipe IN.y4m`.
set -euo pipefail
old=$1 new=$2 scale=$3 input=$4 rounds=${5:-6}
hz=$(getconf CLK_TCK)
log=$(mktemp)
pkill -STOP -f rt4ksr-train-bin || true
trap 'pkill -CONT -f rt4ksr-train-bin || true; rm -f "$log"' EXIT
ticks() { awk '/^cpu /{print $2 + $3 + $4, $5}' /proc/stat; }
run() {
  local before after t0 t1
  before=$(ticks); t0=$(date +%s.%N)
  "$1" upscale - -o - -s "$scale" < "$input" > /dev/null 2> "$log"
  t1=$(date +%s.%N); after=$(ticks)
  # The command's own count ("30 frames in 3.9 s ..."); the time is the whole command's.
  frames=$(grep -o '^[0-9]* frames in' "$log" | tail -1 | cut -d' ' -f1)
  python3 -c "
b0, i0 = map(int, '$before'.split()); b1, i1 = map(int, '$after'.split())
print(f'{$frames / ($t1 - $t0):.2f} frames/s, busy {(b1 - b0) / $hz:.1f} s, idle {(i1 - i0) / $hz:.1f} s', end='')"
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then a=$(run "$old"); b=$(run "$new"); else b=$(run "$new"); a=$(run "$old"); fi
  echo "x$scale round $round | old: $a | new: $b"
done
