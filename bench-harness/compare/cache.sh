#!/usr/bin/env bash
# The answer cache and the decision log, end to end, one pinned server core (issue 10):
#   - noop-baseline vs rs256-repeated (100% cache hits): server CPU per check;
#   - rs256-repeated with [audit] on: the decision log's cost;
#   - realistic-mix (Zipf over 1,000 hot tokens + 5% new + 5% bad) with the default cache,
#     with a cache smaller than the working set (max_entries = 512), and with the cache off.
# Rounds interleave the runs so a load change on a shared machine hits them alike.
# Usage: bench-harness/compare/cache.sh [ROUNDS] [DURATION]   (from the repository root,
# after `cargo build --release -p verdict --bin verdict && cargo build --release -p verdict-load`)
set -euo pipefail
rounds="${1:-3}"
duration="${2:-5s}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
load="$root/target/release/verdict-load"
scenarios="$root/bench-harness/scenarios"
out="${OUT:-$(mktemp -d /tmp/verdict-cache-compare.XXXXXX)}"
mkdir -p "$out/audit"
printf '\n[cache]\nmax_entries = 0\nnegative_ttl_s = 0\n' > "$out/cache-off.toml"
printf '\n[cache]\nmax_entries = 512\n' > "$out/cache-512.toml"
printf '\n[audit]\ndir = "%s/audit"\n' "$out" > "$out/audit.toml"
printf '\n' > "$out/default.toml"
run() { # label scenario server-toml
  "$load" run "$scenarios/$2.toml" --spawn --server-cpus 0 --client-cpus 1 \
    --duration "$duration" --warmup 1s --work-dir "$out/work-$2" --server-toml "$out/$3.toml" \
    --label "$1" --json "$out/$1-r$round.json" -q > "$out/$1-r$round.txt" 2>&1 || {
      echo "run $1 round $round failed:"; cat "$out/$1-r$round.txt"; exit 1; }
}
grep -m1 'model name' /proc/cpuinfo
for round in $(seq 1 "$rounds"); do
  run noop noop-baseline default
  run repeated rs256-repeated default
  run repeated-audit rs256-repeated audit
  run mix realistic-mix default
  run mix-cache512 realistic-mix cache-512
  run mix-nocache realistic-mix cache-off
  rm -rf "$out/audit"/*
done
"$load" table "$out"/*.json
echo "reports in $out"
python3 "$root/bench-harness/compare/cpu_per_check.py" --base=noop "$out"
