#!/usr/bin/env python3
"""Mint JWTs with two independent JOSE libraries, PyJWT and jwcrypto, for tests/interop.rs.

Run with the interpreter of the venv that tests/support/ensure_venv.py prepares:

    .venv/bin/python tests/support/mint.py > minted.json

For every JWS algorithm verdict implements (HS256/384/512, RS256/384/512, PS256/384/512,
ES256/384/512, ES256K, EdDSA) it generates one fresh key (with `cryptography`, or random bytes for
HMAC) and writes:

- the public key as a JWKS twice: once as jwcrypto exports it, pinned with `alg`, `use`, `kid`
  ("jwks_pinned"), once as PyJWT exports it with only a `kid` added ("jwks_unpinned");
- tokens signed with that key by PyJWT (`jwt.encode`) and by jwcrypto (`JWT.make_signed_token`),
  each library doing its own serialisation and signing, with the claims iss/aud/exp/iat/sub and
  header `kid`. jwcrypto additionally mints EdDSA under the fully-specified name `Ed25519`
  (RFC 9864).

Both libraries implement every one of these algorithms (ES256K: PyJWT through `cryptography`'s
secp256k1, jwcrypto natively), so nothing is left to one library alone. If a library ever fails
to mint, this script exits non-zero rather than leaving the algorithm out.

It also mints the classic algorithm-confusion tokens: HS256 whose HMAC secret is the RS256 key's
public key bytes (SubjectPublicKeyInfo and PKCS#1, each as PEM and DER), with and without the RSA
key's `kid`. They are minted by jwcrypto (which accepts any bytes as an `oct` key) and by Python's
`hmac` module. PyJWT is asked too, but it refuses asymmetric key material as an HMAC secret by
design (PEM and SSH text, and in the pinned version DER as well); each refusal is recorded in the
output instead of a token, and the Rust test prints them.

Output: one JSON document on stdout (see `main`). Times are fixed so the Rust side can pick a
`now` inside [iat, exp).
"""

import base64
import hashlib
import hmac
import importlib.metadata
import json
import os
import sys

import jwt  # PyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

IAT = 1_700_000_000
EXP = IAT + 3600
ISS = "https://idp.interop.example"
AUD = "api://verdict-interop"
SUB = "user-4711"

ALGORITHMS = [
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K",
    "EdDSA",
]  # fmt: skip

HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2 minimum: the hash size
EC_CURVES = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
    "ES256K": ec.SECP256K1(),
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(library, alg):
    return {
        "iss": ISS,
        "aud": AUD,
        "sub": SUB,
        "iat": IAT,
        "exp": EXP,
        # Lets the Rust side check that it got exactly the claims that were signed.
        "minted_by": f"{library}/{alg}",
    }


def generate(alg):
    """Returns (PyJWT signing key, jwcrypto private JWK, PyJWT public JWK dict)."""
    pyjwt_alg = jwt.algorithms.get_default_algorithms()[alg]
    if alg.startswith("HS"):
        secret = os.urandom(HMAC_KEY_BYTES[alg])
        jc_key = jc_jwk.JWK(kty="oct", k=b64url(secret))
        return secret, jc_key, pyjwt_alg.to_jwk(secret, as_dict=True)
    if alg[:2] in ("RS", "PS"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg in EC_CURVES:
        private = ec.generate_private_key(EC_CURVES[alg])
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(alg)
    return private, jc_jwk.JWK.from_pyca(private), pyjwt_alg.to_jwk(private.public_key(), as_dict=True)


def public_jwk_from_jwcrypto(jc_key):
    if jc_key["kty"] == "oct":
        # A "public" JWKS for a symmetric key is the secret itself: this is what a provider that
        # opted into HS* is configured with.
        return json.loads(jc_key.export(private_key=True))
    return json.loads(jc_key.export_public())


def mint_pyjwt(alg, key, kid):
    return jwt.encode(claims("PyJWT", alg), key, algorithm=alg, headers={"kid": kid})


def mint_jwcrypto(alg, jc_key, kid, header_alg=None):
    header = {"alg": header_alg or alg, "kid": kid, "typ": "JWT"}
    token = jc_jwt.JWT(header=header, claims=claims("jwcrypto", header_alg or alg))
    token.make_signed_token(jc_key)
    return token.serialize()


def mint_hs256_stdlib(secret, kid):
    header = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims("hmac-stdlib", "HS256"), separators=(",", ":")).encode())
    )
    tag = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(tag)


def confusion_tokens(rsa_private, rsa_kid):
    public = rsa_private.public_key()
    secrets = {
        "SPKI PEM": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "PKCS#1 PEM": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "SPKI DER": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "PKCS#1 DER": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        ),
    }
    tokens = []
    refusals = []
    for secret_name, secret in secrets.items():
        for kid in (rsa_kid, None):
            # The secret goes along so the Rust side can show the tokens are genuine HS256
            # tokens (they verify against an oct key holding exactly these bytes).
            base = {"secret": secret_name, "secret_b64url": b64url(secret), "kid": kid}
            headers = {"kid": kid} if kid is not None else None
            try:
                token = jwt.encode(claims("PyJWT", "HS256"), secret, algorithm="HS256",
                                   headers=headers)
                tokens.append({**base, "library": "PyJWT", "token": token})
            except jwt.exceptions.InvalidKeyError as e:
                refusals.append({**base, "library": "PyJWT", "reason": str(e)})
            jc_key = jc_jwk.JWK(kty="oct", k=b64url(secret))
            header = {"alg": "HS256", "typ": "JWT"}
            if kid is not None:
                header["kid"] = kid
            token = jc_jwt.JWT(header=header, claims=claims("jwcrypto", "HS256"))
            token.make_signed_token(jc_key)
            tokens.append({**base, "library": "jwcrypto", "token": token.serialize()})
            tokens.append({**base, "library": "hmac-stdlib", "token": mint_hs256_stdlib(secret, kid)})
    return tokens, refusals


def main():
    out = {
        "iat": IAT,
        "exp": EXP,
        "iss": ISS,
        "aud": AUD,
        "sub": SUB,
        "versions": {
            name: importlib.metadata.version(name) for name in ("PyJWT", "jwcrypto", "cryptography")
        },
        "algorithms": [],
    }
    rsa_for_confusion = None
    for alg in ALGORITHMS:
        kid = f"interop-{alg.lower()}"
        pyjwt_key, jc_key, pyjwt_public = generate(alg)
        pinned = public_jwk_from_jwcrypto(jc_key)
        pinned.update({"kid": kid, "alg": alg, "use": "sig"})
        unpinned = dict(pyjwt_public)
        unpinned.pop("alg", None)
        unpinned["kid"] = kid
        tokens = [
            {"library": "PyJWT", "header_alg": alg, "token": mint_pyjwt(alg, pyjwt_key, kid)},
            {"library": "jwcrypto", "header_alg": alg, "token": mint_jwcrypto(alg, jc_key, kid)},
        ]
        if alg == "EdDSA":
            tokens.append({
                "library": "jwcrypto",
                "header_alg": "Ed25519",
                "token": mint_jwcrypto(alg, jc_key, kid, header_alg="Ed25519"),
            })
        out["algorithms"].append({
            "alg": alg,
            "kid": kid,
            "jwks_pinned": {"keys": [pinned]},
            "jwks_unpinned": {"keys": [unpinned]},
            "tokens": tokens,
        })
        if alg == "RS256":
            rsa_for_confusion = (pyjwt_key, kid, pinned)
    rsa_private, rsa_kid, rsa_jwk = rsa_for_confusion
    tokens, refusals = confusion_tokens(rsa_private, rsa_kid)
    out["confusion"] = {
        "rsa_jwks": {"keys": [rsa_jwk]},
        "rsa_kid": rsa_kid,
        "tokens": tokens,
        "refusals": refusals,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
