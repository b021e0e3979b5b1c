#!/usr/bin/env bash
# Two rt4ksr builds' `bench --fast-only --runs 5`, alternated round by round (order swapped every
# round, so each sees the shared machine's swings alike), then per row the ratios of the two
# builds' figures round by round: OLD over NEW (above 1: NEW faster), their median and range,
# and in how many rounds NEW was faster. Pauses the background training runs while it measures.
#
#   tools/bench_pairs.sh OLD_BIN NEW_BIN [ROUNDS [PATHS]]
#
# PATHS (e.g. `amx` or `avx2,avx512`) times those kernel paths alone (`bench --path`), a round
# in a fraction of the time all of them take.
set -euo pipefail
old=$1 new=$2 rounds=${3:-16} paths=${4:-}
log=$(mktemp)
pkill -STOP -f rt4ksr-train-bin || true
trap 'pkill -CONT -f rt4ksr-train-bin || true; rm -f "$log"' EXIT
bench() {
  # Each fast-engine row: its case, then median and min ms.
  "$1" bench --fast-only --runs 5 ${paths:+--path "$paths"} | grep -E '^fast engine .*\) +[0-9]' |
    sed -E 's/^(fast engine .*\)) +([0-9.]+) +([0-9.]+) .*/\1\t\2\t\3/' | sed "s|^|$round\t$2\t|" >> "$log"
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then bench "$old" old; bench "$new" new; else bench "$new" new; bench "$old" old; fi
  echo "round $round of $rounds done" >&2
done
python3 - "$log" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    round_, build, case, median, low = line.rstrip("\n").split("\t")
    figures.setdefault(case, {}).setdefault(int(round_), {})[build] = (float(median), float(low))
for case, by_round in figures.items():
    for i, what in enumerate(["median ms", "min ms"]):
        ratios = [r["old"][i] / r["new"][i] for r in by_round.values() if len(r) == 2]
        faster = sum(x > 1 for x in ratios)
        print(f"{case}, {what}: old/new {statistics.median(ratios):.3f} (median of {len(ratios)} rounds; "
              f"{min(ratios):.2f}-{max(ratios):.2f}), new faster in {faster}")
PY
