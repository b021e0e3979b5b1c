#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), then minimises its corpus; prints one
# line per target: executions, time, corpus size, crashes. Crashing inputs land in
# fuzz/artifacts/TARGET/: copy each to tests/fixtures/fuzz-regressions/TARGET/ once fixed.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pickle weights y4m image)
export RUSTC_BOOTSTRAP=1 # cargo-fuzz passes nightly flags; this lets the stable toolchain take them
cargo fuzz build -s none
for t in "${targets[@]}"; do
  log=$(mktemp)
  # -rss_limit_mb: any input that makes a parser allocate beyond this is a finding.
  cargo fuzz run -s none "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 >"$log" 2>&1 || true
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 || true)
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  cargo fuzz cmin -s none "$t" >/dev/null 2>&1 || true
  echo "$t: ${runs:-no summary (see $log)}; corpus $(ls "corpus/$t" | wc -l) files; artifacts $crashes"
done
