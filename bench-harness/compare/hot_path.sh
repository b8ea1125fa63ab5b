#!/usr/bin/env bash
# verdict's own cost per Check (issue 13), this build against another verdict binary (a build
# of an earlier main) in the same run, rounds interleaved: the no-op deny path and RS256-distinct
# (crypto engine pinned to aws-lc, answer cache off, so every check verifies) on one pinned
# server core, and RS256-distinct on one connection with 32 streams against four connections of
# eight, for both binaries.
# Usage: [NEW_BIN=verdict] bench-harness/compare/hot_path.sh BASE_VERDICT_BIN [ROUNDS] [DURATION]
#   (from the repository root, after `cargo build --release --workspace`; build the base with
#   `git worktree add /tmp/base <commit> && cargo build --release --bin verdict` there).
set -euo pipefail
base_bin="${1:?usage: hot_path.sh BASE_VERDICT_BIN [ROUNDS] [DURATION]}"
rounds="${2:-3}"
duration="${3:-5s}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
load="$root/target/release/verdict-load"
new_bin="${NEW_BIN:-$root/target/release/verdict}"
scenarios="$root/bench-harness/scenarios"
out="${OUT:-$(mktemp -d /tmp/verdict-hot-path.XXXXXX)}"
printf '\n[crypto]\nbackend = "aws-lc"\n\n[cache]\nmax_entries = 0\nnegative_ttl_s = 0\n' > "$out/server.toml"
grep -m1 'model name' /proc/cpuinfo
run() { # label bin scenario [extra verdict-load flags...]
  local label="$1" bin="$2" scenario="$3"
  shift 3
  "$load" run "$scenarios/$scenario.toml" --spawn --verdict-bin "$bin" --server-cpus 0 \
    --client-cpus 1 --duration "$duration" --warmup 1s --work-dir "$out/work-$scenario" \
    --server-toml "$out/server.toml" --label "$label" "$@" \
    --json "$out/$label-r$round.json" -q > "$out/$label-r$round.txt" 2>&1
}
for round in $(seq 1 "$rounds"); do
  for which in base new; do
    bin="$base_bin"
    [ "$which" = new ] && bin="$new_bin"
    run "noop-$which" "$bin" noop-baseline
    run "rs256-$which" "$bin" rs256-distinct
    run "rs256-1x32-$which" "$bin" rs256-distinct --connections 1 --streams 32
    run "rs256-4x8-$which" "$bin" rs256-distinct --connections 4 --streams 8
  done
done
python3 "$root/bench-harness/compare/cpu_per_check.py" --base=noop-base "$out"
echo "reports in $out"
