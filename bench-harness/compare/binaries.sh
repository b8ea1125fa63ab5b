#!/usr/bin/env bash
# Two verdict binaries against each other (for example a base commit's build and this one's),
# same run, rounds interleaved: eddsa-distinct (aws-lc: dalek batches; auto: crypto_mb),
# rs256-distinct and es256-distinct (auto: crypto_mb), one pinned server core, the answer
# cache off. Compare server CPU per check when the host is too busy to saturate the server.
# Usage: bench-harness/compare/binaries.sh BASE_BIN NEW_BIN [ROUNDS] [DURATION]   (from the
# repository root, after `cargo build --release -p verdict-load` and
# `python3 tests/support/ensure_venv.py`)
set -euo pipefail
base_bin="$1"; new_bin="$2"; rounds="${3:-3}"; duration="${4:-5s}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
load="$root/target/release/verdict-load"
scenarios="$root/bench-harness/scenarios"
out="${OUT:-$(mktemp -d /tmp/verdict-binaries-compare.XXXXXX)}"
nocache='[cache]\nmax_entries = 0\nnegative_ttl_s = 0\n'
printf "\n[crypto]\nbackend = \"aws-lc\"\n\n$nocache" > "$out/aws-lc.toml"
printf "\n[crypto]\nbackend = \"auto\"\ncrypto_mb_library = \"%s\"\n\n$nocache" \
  "$root/.venv/lib/libcrypto_mb.so" > "$out/auto.toml"
grep -m1 'model name' /proc/cpuinfo
for round in $(seq 1 "$rounds"); do
  for case in eddsa-distinct:aws-lc eddsa-distinct:auto rs256-distinct:auto es256-distinct:auto; do
    scenario="${case%%:*}"; engine="${case##*:}"
    for which in base new; do
      bin="$base_bin"; [ "$which" = new ] && bin="$new_bin"
      label="${scenario%-distinct}-$engine-$which"
      "$load" run "$scenarios/$scenario.toml" --spawn --verdict-bin "$bin" \
        --server-cpus 0 --client-cpus 1 --duration "$duration" --warmup 1s \
        --work-dir "$out/work-$scenario" --server-toml "$out/$engine.toml" --label "$label" \
        --json "$out/$label-r$round.json" -q > "$out/$label-r$round.txt" 2>&1
    done
  done
done
python3 "$root/bench-harness/compare/cpu_per_check.py" "$out"
echo "reports in $out"
