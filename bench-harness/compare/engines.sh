#!/usr/bin/env bash
# Signature engines end to end (issue 11): rs256-distinct and es256-distinct on one pinned
# server core, `[crypto] backend = "aws-lc"` against `"auto"` (crypto_mb where it runs), the
# answer cache off so every check verifies, rounds interleaved.
# Usage: bench-harness/compare/engines.sh [ROUNDS] [DURATION]   (from the repository root, after
# `cargo build --release -p verdict --bin verdict && cargo build --release -p verdict-load` and
# `python3 tests/support/ensure_venv.py`, which installs libcrypto_mb.so into .venv/lib)
set -euo pipefail
rounds="${1:-3}"
duration="${2:-5s}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
load="$root/target/release/verdict-load"
scenarios="$root/bench-harness/scenarios"
out="${OUT:-$(mktemp -d /tmp/verdict-engines-compare.XXXXXX)}"
nocache='[cache]\nmax_entries = 0\nnegative_ttl_s = 0\n'
printf "\n[crypto]\nbackend = \"aws-lc\"\n\n$nocache" > "$out/aws-lc.toml"
printf "\n[crypto]\nbackend = \"auto\"\ncrypto_mb_library = \"%s\"\n\n$nocache" \
  "$root/.venv/lib/libcrypto_mb.so" > "$out/auto.toml"
grep -m1 'model name' /proc/cpuinfo
grep -qm1 avx512ifma /proc/cpuinfo && echo "avx512ifma: yes" || echo "avx512ifma: no (auto = aws-lc-rs)"
for round in $(seq 1 "$rounds"); do
  for scenario in rs256-distinct es256-distinct; do
    for engine in aws-lc auto; do
      "$load" run "$scenarios/$scenario.toml" --spawn --server-cpus 0 --client-cpus 1 \
        --duration "$duration" --warmup 1s --work-dir "$out/work-$scenario" \
        --server-toml "$out/$engine.toml" --label "$scenario-$engine" \
        --json "$out/$scenario-$engine-r$round.json" -q > "$out/$scenario-$engine-r$round.txt" 2>&1
    done
  done
done
python3 "$root/bench-harness/compare/cpu_per_check.py" "$out"
echo "reports in $out"
