#!/usr/bin/env bash
# Make sure tests/support/oidc/node_modules holds exactly what tests/support/oidc/package-lock.json
# pins (npm `oidc-provider` and its dependencies), for the OpenID provider fixture
# (tests/support/oidc/server.mjs, driven by tests/common/oidc.rs).
#
# Usage: bash tests/support/ensure_oidc.sh
#
# Idempotent and safe to run concurrently (flock on a lock file in the temp dir serialises it).
# When node_modules is missing, or was installed from another package-lock.json (a stamp file
# holds the lock's sha256), it runs `npm ci` from the npm registry. On success the last line on
# stdout is the path of server.mjs; on any failure the exit status is non-zero and stderr says
# what went wrong. It never skips: the fixture relies on it.
set -euo pipefail

support="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$support/oidc"
lock="$dir/package-lock.json"
stamp="$dir/node_modules/.verdict-lock-sha256"

fail() {
  echo "ensure_oidc: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not installed (apt-get install nodejs npm; oidc-provider 8 needs Node.js >= 18)"
command -v npm >/dev/null || fail "npm is not installed (apt-get install npm)"
major="$(node -p 'process.versions.node.split(".")[0]')" || fail "cannot run node"
[ "$major" -ge 18 ] || fail "node $(node --version) is too old: oidc-provider 8 needs Node.js >= 18"
[ -f "$lock" ] || fail "$lock is missing"
command -v flock >/dev/null || fail "flock is not installed (util-linux)"
command -v sha256sum >/dev/null || fail "sha256sum is not installed (coreutils)"

want="$(sha256sum "$lock" | cut -d' ' -f1)"
tag="$(printf '%s' "$dir" | sha256sum | cut -c1-16)"
lock_file="${TMPDIR:-/tmp}/verdict-oidc-$tag.lock"

exec 9>"$lock_file" || fail "cannot open the lock file $lock_file"
flock 9 || fail "cannot lock $lock_file"

installed_ok() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    [ -f "$dir/node_modules/oidc-provider/package.json" ] &&
    (cd "$dir" && node -e 'import("oidc-provider").then(() => process.exit(0), (e) => { console.error(String(e)); process.exit(1); })') >/dev/null
}

if ! installed_ok; then
  echo "ensure_oidc: running npm ci in $dir" >&2
  rm -f "$stamp"
  out="$(mktemp)"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    fail "npm ci in $dir failed (see above)"
  fi
  rm -f "$out"
  printf '%s\n' "$want" >"$stamp"
  installed_ok || fail "npm ci finished but $dir/node_modules still cannot load oidc-provider"
fi

echo "$dir/server.mjs"
