#!/usr/bin/env python3
"""Mint the token files of the Envoy peer benchmark (run with the venv of tests/support/ensure_venv.py).

    .venv/bin/python bench-harness/peers/envoy/mint_tokens.py --key K.pk8 --kid KID \
        --out-dir DIR --distinct 200000

Writes into DIR, one compact JWS per line, all RS256 with PyJWT and the given PKCS#8 (DER) key:

- repeated.tok   1 valid token (the "repeated" mix: every request carries it);
- distinct.tok   N valid tokens, pairwise distinct (own `jti` and `sub`), in random order;
- bad_sig.tok    a valid token with one signature byte flipped;
- wrong_aud.tok  correctly signed, `aud` api://billing;
- expired.tok    correctly signed, `exp` an hour ago;
- meta.json      what was minted (count, exp, issuer, audience), so run.sh can reuse the files
                 while they stay valid instead of paying ~1 ms of RSA signing per token again.

Valid tokens: iss https://idp.example.com, aud api://orders, iat now, exp now + --ttl (1 day).
Signing is spread over all CPUs of the process affinity mask (multiprocessing).
"""

import argparse
import json
import multiprocessing
import os
import random
import sys
import time

import jwt  # PyJWT
from cryptography.hazmat.primitives import serialization

ISSUER = "https://idp.example.com"
AUDIENCE = "api://orders"
SCOPE = "orders:read orders:write"

_KEY = None
_KID = None
_NOW = None
_EXP = None


def _init(key_path, kid, now, exp):
    global _KEY, _KID, _NOW, _EXP
    with open(key_path, "rb") as f:
        _KEY = serialization.load_der_private_key(f.read(), None)
    _KID, _NOW, _EXP = kid, now, exp


def _mint(i, aud=AUDIENCE, exp=None):
    claims = {
        "iss": ISSUER,
        "sub": f"user-{i}",
        "aud": aud,
        "scope": SCOPE,
        "iat": _NOW,
        "exp": _EXP if exp is None else exp,
        "jti": f"bench-{_NOW}-{i}",
    }
    return jwt.encode(claims, _KEY, algorithm="RS256", headers={"kid": _KID, "typ": "JWT"})


def _mint_range(bounds):
    lo, hi = bounds
    return [_mint(i) for i in range(lo, hi)]


def write_lines(path, tokens):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        for t in tokens:
            f.write(t)
            f.write("\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--key", required=True, help="PKCS#8 DER RSA private key")
    ap.add_argument("--kid", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--distinct", type=int, default=200_000)
    ap.add_argument("--ttl", type=int, default=86_400, help="seconds from now to exp")
    args = ap.parse_args()
    if args.distinct < 1:
        sys.exit("mint_tokens: --distinct must be >= 1")

    os.makedirs(args.out_dir, exist_ok=True)
    now = int(time.time())
    exp = now + args.ttl
    _init(args.key, args.kid, now, exp)

    started = time.time()
    workers = max(1, len(os.sched_getaffinity(0)))
    chunk = 2_000
    ranges = [(lo, min(lo + chunk, args.distinct)) for lo in range(0, args.distinct, chunk)]
    distinct = []
    with multiprocessing.Pool(workers, initializer=_init, initargs=(args.key, args.kid, now, exp)) as pool:
        for part in pool.imap(_mint_range, ranges):
            distinct.extend(part)
            print(f"\rmint_tokens: {len(distinct)}/{args.distinct} distinct RS256 tokens",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if len(set(distinct)) != args.distinct:
        sys.exit("mint_tokens: distinct tokens are not pairwise distinct")
    random.Random(4711).shuffle(distinct)

    repeated = _mint("repeated")
    good = _mint("bad-sig")
    head, payload, sig = good.split(".")
    mid = len(sig) // 2
    flipped = sig[:mid] + ("A" if sig[mid] != "A" else "B") + sig[mid + 1:]
    bad_sig = f"{head}.{payload}.{flipped}"
    wrong_aud = _mint("wrong-aud", aud="api://billing")
    expired = _mint("expired", exp=now - 3600)

    write_lines(os.path.join(args.out_dir, "distinct.tok"), distinct)
    write_lines(os.path.join(args.out_dir, "repeated.tok"), [repeated])
    write_lines(os.path.join(args.out_dir, "bad_sig.tok"), [bad_sig])
    write_lines(os.path.join(args.out_dir, "wrong_aud.tok"), [wrong_aud])
    write_lines(os.path.join(args.out_dir, "expired.tok"), [expired])
    meta = {
        "alg": "RS256",
        "kid": args.kid,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "distinct": args.distinct,
        "iat": now,
        "exp": exp,
        "repeated_sub": "user-repeated",
        "pyjwt": jwt.__version__,
        "seconds": round(time.time() - started, 1),
    }
    tmp = os.path.join(args.out_dir, "meta.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, os.path.join(args.out_dir, "meta.json"))
    print(f"mint_tokens: {args.distinct} distinct + 4 fixed tokens in {meta['seconds']} s "
          f"({workers} processes) into {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
