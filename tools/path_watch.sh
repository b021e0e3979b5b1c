#!/usr/bin/env bash
# Watches how fast each kernel path runs on this machine over time: `bench --fast-only --runs 3`
# of the given paths, again and again, one line a run: the time, then the median ms of each of
# bench's float rows (named on the first line). On the shared VMs the AMX path's speed swings
# with the host's state while the AVX2 path's stays (docs/speed.md, seventeenth session): a
# same-run ratio does not say which state a run saw; this does. Pauses the background training
# runs while it watches, as the other timing tools do.
#
#   tools/path_watch.sh BIN [RUNS [PATHS]]      (PATHS default: avx2,amx)
set -euo pipefail
bin=$1 runs=${2:-20} paths=${3:-avx2,amx}
pkill -STOP -f rt4ksr-train-bin || true
trap 'pkill -CONT -f rt4ksr-train-bin || true' EXIT
# bench's float rows: "fast engine x3 1280x720 (AMX split bf16)   35.2 ...".
float_rows='^fast engine x[0-9] [0-9x]+ \([^,)]*\) '
for run in $(seq "$runs"); do
  rows=$("$bin" bench --fast-only --runs 3 --path "$paths" | grep -E "$float_rows")
  if [ "$run" = 1 ]; then
    echo "time $(echo "$rows" | sed -E 's/^fast engine (x[0-9]) [0-9x]+ \(([^)]*)\).*/\1 \2/' | paste -sd ';')"
  fi
  echo "$(date +%T) $(echo "$rows" | sed -E 's/^fast engine .*\) +([0-9.]+) .*/\1/' | paste -sd ' ')"
done
