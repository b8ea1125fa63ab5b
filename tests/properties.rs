//! Property tests for the verification core.
//!
//! 1. `parse_compact`, `parse_jwk`, `parse_jwks`, `KeySet::from_jwks`, `verify_token` and
//!    `verify_jws` never panic: on arbitrary bytes, on arbitrary strings of base64url characters
//!    and dots, and on structurally plausible tokens and JWKs (right shape, random content), which
//!    reach much deeper than random bytes do.
//! 2. Any single-byte change to a valid token (any position, any other byte value) makes
//!    `verify_token` reject it, for Ed25519, ES256, RS256, PS256 and HS256 tokens: a proptest
//!    sample plus an exhaustive sweep of every position × every byte value.
//! 3. Valid tokens with arbitrary claims round-trip: `verify_token` accepts them and returns
//!    exactly the claims that were signed.
//!
//! Tokens are signed here with aws-lc-rs directly (not through verdict), with fixed test keys so
//! that a failure reproduces.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is how a test fails"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{hmac, signature::RsaEncoding};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use verdict::crypto::AwsLcBackend;
use verdict::jose::{
    Algorithm, ClaimRules, Limits, Reject, b64, parse_compact, parse_jwk, parse_jwks,
};
use verdict::keys::KeySet;
use verdict::policy::{TokenPolicy, verify_jws, verify_token};

/// A fixed RSA-2048 test key (PKCS#8, base64url), generated once for these tests only.
const RSA_PKCS8: &str = concat!(
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCuwNKkAhzJLOKtBqulrA0T0yZgcxjp-AE4q1uv",
    "GoP_g1Id2XC_7EUuYiupBZh1bdcGg6XYMsbEPMC88i1O07BKOrN22aq4qNP2ipvStO90lCLgSVWxS0-M0P1E3jXE",
    "6uza-FFF0hPyJtEwTAc4Q7HUl6vr_ziDnowqbzIaxiUmW1i7AZMizswRjB5s2ZEqTxtHNwHIhm3jYTYqa3UR4eR0",
    "maBiUA-ECDPLgx50F9sy4pkgwyCZVJGxUp2b5A7rddiu--0eRaw3C4eptR_nS-aGyfanLgXGiggkpZP9pbyd-C_q",
    "daZe5IH06ti5OtKiqcSF3Yo7TTCG8kpky--36AUtAgMBAAECggEAQMbfDcZury_BMowHcljtXAzn69aeRJQWt8_l",
    "I2o7xaoC9WeVgL7vAfuH3ZZiZhz6GMMR5askvLccZq2Kl-6mKU3LGmIjA2Ipd_j3O8qv_FGw_9yPNDILYdJSH4YS",
    "_lRqydxEHBJ8LEWxQyrbfkKxl3FFXCx14WwS3uPq-bu7J5UVwnoL6QLfHxXTOWzNha2_xYKFb3bWdRLgvi9gCAq7",
    "u_jRD5hR44E2d0size3DDKAmU5_aoZS7AtjhQwEYSas-bG1yxg0wlulM-wt-n1JT6SDWU-E9H04zeHTnRmanmby-",
    "nnu19EciZiLAKgyQF5cSNEnZWy0B6WR8j4Zs1VRzDQKBgQDcy0Zk2McxCIymVCUsjtPpkJEkcmgmNClJifgSEEEz",
    "mY9lkS9NyIRdzpn0vExyTPk8LZY2hX_Xw8MwU9Bml6ksZZvpOQoexSIrT983PnP9tdUX06DUFKfEELh--EnWgl4B",
    "velb1j1weahA1qqmQQxyXDmvHBSdoafKdh3SPrw_AwKBgQDKni308NEySajlZOeebKMLUhy2gQQCc1vnLY2yqKhg",
    "Gx2mpehUxXDTW89P6uXhqN-QMCgzgHP4dFe2FFIiZEPLMrWKJPztywBINYmjX8CTaU6o-DUTQV216b_AGjbmXfz1",
    "wEbnfLOZ9NtRTbINNU-dpIX2nYlN-75KvH-N7VQcDwKBgQCYSs2fObcLJy58e4W4mjuo2sKCNTeJQmlIBBZLv1J5",
    "2O2DzQSnzise2SZwHIFORbGTxI3bxXFMzgaQCv-wA-P4b41-7I0CdE8BOPJqFHXFBeqZqKtCHY0qO65GRdQIVZup",
    "7-hKJBf0wLVBI9BJJI0FRH-1PNUrdRlbGOWw4vzNKQKBgGNLc3AnGA4R5RBOC-gqixiALAwQW9urlu1K-LcGSkWW",
    "5EgH5Dyu6aTayFT8451b-fuabgkXOT4YHefgO4QZKNQKzMafa8hJBKFeg04qHaDgKalKwg_mp7r_i3XkIuVwSAhT",
    "KyxEg2u-gEBu2AP7DUJPH0uFVoV-CnpruALgvKhnAoGAShOwv-o4lyOESfLqio7S_bzTcxHFsJNqriBPPNQ0Gy5M",
    "kdUxIYh3NUMbZKdWseJtpBiYcm4GexHplh25QvSGw0HICqZXY_t6Hdk3eVti5kGoFxKBUJ0u8uBslPJD75sDoLUI",
    "VxCtjIr3RYx460ptyT4wRxqyFyab062XaJeKyiY",
);

/// Its modulus (base64url, big-endian); the exponent is 65537 (`AQAB`).
const RSA_N: &str = concat!(
    "rsDSpAIcySzirQarpawNE9MmYHMY6fgBOKtbrxqD_4NSHdlwv-xFLmIrqQWYdW3XBoOl2DLGxDzAvPItTtOwSjqz",
    "dtmquKjT9oqb0rTvdJQi4ElVsUtPjND9RN41xOrs2vhRRdIT8ibRMEwHOEOx1Jer6_84g56MKm8yGsYlJltYuwGT",
    "Is7MEYwebNmRKk8bRzcByIZt42E2Kmt1EeHkdJmgYlAPhAgzy4MedBfbMuKZIMMgmVSRsVKdm-QO63XYrvvtHkWs",
    "NwuHqbUf50vmhsn2py4FxooIJKWT_aW8nfgv6nWmXuSB9OrYuTrSoqnEhd2KO00whvJKZMvvt-gFLQ",
);

/// A fixed P-256 test key (PKCS#8, base64url), generated once for these tests only.
const EC_P256_PKCS8: &str = concat!(
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3Qec5fItaM1VdB9TFWsyy800k-19gv8Cj1zOZ8A0",
    "pQyhRANCAASbsF2y95RKFxw1GzpipOJdb66tsiAjHQybD1OxzMvHNJuo99AS7G9pGoc8Vlwx7aWrj1_9BBr61sld",
    "QvVAE_9t",
);

/// A fixed Ed25519 seed, for these tests only.
const ED25519_SEED: [u8; 32] = [0x5e; 32];
/// A fixed HMAC secret of exactly the HS256 minimum length.
const HMAC_SECRET: &[u8; 32] = b"verdict-property-test-hs256-key!";

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.properties.example";
const AUD: &str = "api://properties";

#[allow(
    clippy::large_enum_variant,
    reason = "four keys built once per test process"
)]
enum SigningKey {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(&'static RsaKeyPair, &'static dyn RsaEncoding),
    Hmac(hmac::Key),
}

/// One way of producing valid tokens.
struct Signer {
    alg: Algorithm,
    kid: &'static str,
    key: SigningKey,
    /// Which of the two key sets verifies it.
    symmetric: bool,
}

impl Signer {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            SigningKey::Ecdsa(pair) => pair
                .sign(&rng, message)
                .expect("ECDSA signs")
                .as_ref()
                .to_vec(),
            SigningKey::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, message, &mut signature)
                    .expect("RSA signs");
                signature
            }
            SigningKey::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        }
    }

    /// A compact JWS over exactly `claims`, with header `{"alg","kid","typ"}`.
    fn token(&self, claims: &Map<String, Value>) -> String {
        let header = json!({ "alg": self.alg.name(), "kid": self.kid, "typ": "JWT" });
        let signing_input = format!(
            "{}.{}",
            b64::encode(&serde_json::to_vec(&header).expect("header serialises")),
            b64::encode(&serde_json::to_vec(claims).expect("claims serialise")),
        );
        let signature = self.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64::encode(&signature))
    }
}

struct Fixture {
    signers: Vec<Signer>,
    asymmetric_policy: TokenPolicy,
    asymmetric_keys: KeySet,
    hmac_policy: TokenPolicy,
    hmac_keys: KeySet,
    /// One valid token per signer, over [`base_claims`].
    tokens: Vec<String>,
}

impl Fixture {
    fn policy_and_keys(&self, signer: &Signer) -> (&TokenPolicy, &KeySet) {
        if signer.symmetric {
            (&self.hmac_policy, &self.hmac_keys)
        } else {
            (&self.asymmetric_policy, &self.asymmetric_keys)
        }
    }

    fn verify(&self, signer: &Signer, token: &[u8]) -> Result<verdict::policy::Verified, Reject> {
        let (policy, keys) = self.policy_and_keys(signer);
        verify_token(token, policy, keys, &AwsLcBackend::default(), NOW)
    }
}

fn decode(text: &str) -> Vec<u8> {
    b64::decode(text.as_bytes()).expect("fixed test data is base64url")
}

fn rules() -> ClaimRules {
    ClaimRules {
        issuer: Some(ISS.to_owned()),
        audiences: vec![AUD.to_owned()],
        ..ClaimRules::default()
    }
}

fn base_claims() -> Map<String, Value> {
    match json!({ "iss": ISS, "aud": AUD, "sub": "prop", "iat": NOW - 10, "exp": NOW + 3600 }) {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    static RSA: OnceLock<RsaKeyPair> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rsa = RSA.get_or_init(|| {
            RsaKeyPair::from_pkcs8(&decode(RSA_PKCS8)).expect("fixed RSA key loads")
        });
        let ed = Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("Ed25519 seed");
        let ec = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &decode(EC_P256_PKCS8),
        )
        .expect("fixed P-256 key loads");
        let point = ec.public_key().as_ref();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let asymmetric_jwks = json!({ "keys": [
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA",
              "x": b64::encode(ed.public_key().as_ref()) },
            { "kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256",
              "x": b64::encode(&point[1..33]), "y": b64::encode(&point[33..]) },
            // Unpinned: this one key serves both RS256 and PS256.
            { "kty": "RSA", "kid": "rsa", "n": RSA_N, "e": "AQAB" },
        ]});
        let hmac_jwks = json!({ "keys": [
            { "kty": "oct", "kid": "hs", "alg": "HS256", "k": b64::encode(HMAC_SECRET) },
        ]});
        let asymmetric_policy = TokenPolicy {
            rules: rules(),
            ..TokenPolicy::default()
        };
        let hmac_policy = TokenPolicy {
            algorithms: vec![Algorithm::HS256],
            rules: rules(),
            ..TokenPolicy::default()
        };
        let load = |jwks: &Value, policy: &TokenPolicy, want: usize| {
            let bytes = serde_json::to_vec(jwks).expect("serialises");
            let set = KeySet::from_jwks(&bytes, &policy.algorithms, &AwsLcBackend::default())
                .expect("JWKS loads");
            assert_eq!(set.len(), want, "skipped: {:?}", set.skipped());
            set
        };
        let asymmetric_keys = load(&asymmetric_jwks, &asymmetric_policy, 3);
        let hmac_keys = load(&hmac_jwks, &hmac_policy, 1);
        let signers = vec![
            Signer {
                alg: Algorithm::EdDSA,
                kid: "ed",
                key: SigningKey::Ed25519(ed),
                symmetric: false,
            },
            Signer {
                alg: Algorithm::ES256,
                kid: "ec",
                key: SigningKey::Ecdsa(ec),
                symmetric: false,
            },
            Signer {
                alg: Algorithm::RS256,
                kid: "rsa",
                key: SigningKey::Rsa(rsa, &signature::RSA_PKCS1_SHA256),
                symmetric: false,
            },
            Signer {
                alg: Algorithm::PS256,
                kid: "rsa",
                key: SigningKey::Rsa(rsa, &signature::RSA_PSS_SHA256),
                symmetric: false,
            },
            Signer {
                alg: Algorithm::HS256,
                kid: "hs",
                key: SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, HMAC_SECRET)),
                symmetric: true,
            },
        ];
        let tokens: Vec<String> = signers.iter().map(|s| s.token(&base_claims())).collect();
        let fixture = Fixture {
            signers,
            asymmetric_policy,
            asymmetric_keys,
            hmac_policy,
            hmac_keys,
            tokens,
        };
        for (signer, token) in fixture.signers.iter().zip(&fixture.tokens) {
            let verified = fixture
                .verify(signer, token.as_bytes())
                .unwrap_or_else(|r| panic!("fixture {} token rejected: {r}", signer.alg));
            assert_eq!(verified.claims.members(), &base_claims());
        }
        fixture
    })
}

/// `cases` cases; failing inputs are saved to `tests/proptest-regressions/properties.txt` (to be
/// committed), which proptest replays first on the next run. Proptest's default location is
/// beside `lib.rs`/`main.rs` above the test file, which this layout does not have.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Nothing panics.

/// Strings of base64url characters and dots: they get past the cheap shape checks.
fn b64url_and_dots() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{0,700}"
}

fn b64url_of(bytes: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = String> {
    bytes.prop_map(|b| b64::encode(&b))
}

fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

const ALG_NAMES: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "none", "NONE", "HS1", "", "RSA-OAEP",
];

/// Arbitrary JSON, bounded; numbers include floats here (round-tripping is not the point).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "(?s).{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("(?s).{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object with the given members, each present or absent, plus arbitrary extras.
fn object(members: Vec<(&'static str, Option<Value>)>, extra: BTreeMap<String, Value>) -> Value {
    let mut map: Map<String, Value> = extra.into_iter().collect();
    for (name, value) in members {
        match value {
            Some(value) => {
                map.insert(name.to_owned(), value);
            }
            None => {
                map.remove(name);
            }
        }
    }
    Value::Object(map)
}

/// A value that is usually a string from `choices`, sometimes anything.
fn mostly(choices: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => proptest::sample::select(choices).prop_map(|s| Some(json!(s))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ]
}

/// A base64url member holding random bytes, of a length that is often right for some key type.
fn b64_member() -> impl Strategy<Value = Option<Value>> {
    let lengths = proptest::sample::select(vec![
        0usize, 1, 31, 32, 33, 48, 65, 66, 128, 255, 256, 257, 512,
    ]);
    prop_oneof![
        8 => lengths
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
            .prop_map(|b| Some(json!(b64::encode(&b)))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ]
}

/// JWKs with the right member names and random values.
fn jwk_shaped() -> impl Strategy<Value = Value> {
    (
        mostly(&["RSA", "EC", "OKP", "oct", "RSA ", "ec"]),
        mostly(&[
            "P-256",
            "P-384",
            "P-521",
            "secp256k1",
            "Ed25519",
            "X25519",
            "Ed448",
        ]),
        (
            b64_member(),
            b64_member(),
            b64_member(),
            b64_member(),
            b64_member(),
        ),
        mostly(ALG_NAMES),
        mostly(&["sig", "enc"]),
        mostly(&["k1", "k2"]),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(vec!["verify", "sign", "encrypt"]).prop_map(Value::from),
            0..3,
        )),
        proptest::collection::btree_map("[a-z_]{1,6}", json_value(), 0..2),
    )
        .prop_map(
            |(kty, crv, (x, y, n, e, k), alg, usage, kid, key_ops, extra)| {
                object(
                    vec![
                        ("kty", kty),
                        ("crv", crv),
                        ("x", x),
                        ("y", y),
                        ("n", n),
                        ("e", e.or_else(|| Some(json!("AQAB")))),
                        ("k", k),
                        ("alg", alg),
                        ("use", usage),
                        ("kid", kid),
                        ("key_ops", key_ops.map(Value::Array)),
                    ],
                    extra,
                )
            },
        )
}

fn jwks_shaped() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => proptest::collection::vec(jwk_shaped(), 0..4).prop_map(|keys| json!({ "keys": keys })),
        1 => json_value().prop_map(|keys| json!({ "keys": keys })),
        1 => json_value(),
    ]
}

/// Tokens with a plausible header (known algorithms and kids, odd members), random payloads and
/// random signatures of plausible lengths.
fn token_shaped() -> impl Strategy<Value = String> {
    let header = (
        mostly(ALG_NAMES),
        mostly(&["ed", "ec", "rsa", "hs", "nope"]),
        mostly(&["JWT", "at+jwt"]),
        proptest::option::of(prop_oneof![
            Just(json!(["b64"])),
            Just(json!([])),
            json_value()
        ]),
        proptest::option::of(json_value()),
        proptest::collection::btree_map("[a-z]{1,4}", json_value(), 0..2),
    )
        .prop_map(|(alg, kid, typ, crit, b64_flag, extra)| {
            object(
                vec![
                    ("alg", alg),
                    ("kid", kid),
                    ("typ", typ),
                    ("crit", crit),
                    ("b64", b64_flag),
                ],
                extra,
            )
        });
    let payload = prop_oneof![
        json_value().prop_map(|v| serde_json::to_vec(&v).expect("serialises")),
        any_bytes(64),
    ];
    let signature_len =
        proptest::sample::select(vec![0usize, 1, 32, 63, 64, 65, 255, 256, 257, 600]);
    let signature = signature_len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n));
    (header, payload, signature).prop_map(|(header, payload, signature)| {
        format!(
            "{}.{}.{}",
            b64::encode(&serde_json::to_vec(&header).expect("serialises")),
            b64::encode(&payload),
            b64::encode(&signature)
        )
    })
}

/// Runs every entry point on one input; each must return, whatever it returns.
fn exercise(input: &[u8]) {
    let f = fixture();
    let backend = AwsLcBackend::default();
    let _ = parse_compact(input, &Limits::default());
    let tiny = Limits {
        max_token_bytes: 64,
        max_header_bytes: 16,
        max_payload_bytes: 16,
    };
    let _ = parse_compact(input, &tiny);
    let _ = parse_jwk(input);
    let _ = parse_jwks(input);
    let _ = KeySet::from_jwks(input, &Algorithm::ALL, &backend);
    for (policy, keys) in [
        (&f.asymmetric_policy, &f.asymmetric_keys),
        (&f.hmac_policy, &f.hmac_keys),
    ] {
        let _ = verify_token(input, policy, keys, &backend, NOW);
        let _ = verify_token(input, policy, keys, &backend, 0);
        let _ = verify_token(input, policy, keys, &backend, u64::MAX);
        let _ = verify_jws(input, &policy.algorithms, &policy.limits, keys, &backend);
    }
    let _ = verify_token(
        input,
        &f.asymmetric_policy,
        &KeySet::default(),
        &backend,
        NOW,
    );
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn nothing_panics_on_arbitrary_bytes(input in any_bytes(2048)) {
        exercise(&input);
    }

    #[test]
    fn nothing_panics_on_base64url_and_dots(input in b64url_and_dots()) {
        exercise(input.as_bytes());
    }

    #[test]
    fn nothing_panics_on_three_base64url_parts(
        parts in proptest::collection::vec(b64url_of(any_bytes(300)), 1..6)
    ) {
        exercise(parts.join(".").as_bytes());
    }

    /// Validly signed (HS256, cheap) tokens with arbitrary payloads, so the claims parser and the
    /// claim rules see hostile input too: registered claims of every JSON type, floats of any
    /// magnitude, non-objects, non-JSON.
    #[test]
    fn nothing_panics_on_signed_arbitrary_payloads(
        registered in proptest::collection::btree_map(
            proptest::sample::select(vec!["iss", "aud", "sub", "exp", "nbf", "iat", "typ"]),
            prop_oneof![
                json_value(),
                any::<f64>().prop_map(|n| json!(n)),
                any::<u64>().prop_map(|n| json!(n)),
            ],
            0..7,
        ),
        raw in proptest::option::of(any_bytes(64)),
        now in prop_oneof![Just(NOW), Just(0), Just(u64::MAX), any::<u64>()],
    ) {
        let f = fixture();
        let signer = f.signers.iter().find(|s| s.alg == Algorithm::HS256).expect("HS256 signer");
        let claims: Map<String, Value> =
            registered.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let token = match raw {
            None => signer.token(&claims),
            Some(raw) => {
                let header = b64::encode(br#"{"alg":"HS256","kid":"hs"}"#);
                let signing_input = format!("{header}.{}", b64::encode(&raw));
                let tag = signer.sign(signing_input.as_bytes());
                format!("{signing_input}.{}", b64::encode(&tag))
            }
        };
        let _ = verify_token(token.as_bytes(), &f.hmac_policy, &f.hmac_keys, &AwsLcBackend::default(), now);
    }

    #[test]
    fn nothing_panics_on_token_shaped_input(token in token_shaped()) {
        exercise(token.as_bytes());
    }

    #[test]
    fn nothing_panics_on_jwk_shaped_input(jwk in jwk_shaped(), jwks in jwks_shaped()) {
        exercise(&serde_json::to_vec(&jwk).expect("serialises"));
        exercise(&serde_json::to_vec(&jwks).expect("serialises"));
        // A key set that loaded must also survive tokens aimed at it.
        let bytes = serde_json::to_vec(&jwks).expect("serialises");
        if let Ok(keys) = KeySet::from_jwks(&bytes, &Algorithm::ALL, &AwsLcBackend::default()) {
            let policy = TokenPolicy { algorithms: Algorithm::ALL.to_vec(), ..TokenPolicy::default() };
            for token in &fixture().tokens {
                let _ = verify_token(token.as_bytes(), &policy, &keys, &AwsLcBackend::default(), NOW);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Any single-byte change is rejected.

fn mutated(token: &str, position: usize, delta: u8) -> Vec<u8> {
    let mut bytes = token.as_bytes().to_vec();
    bytes[position] ^= delta;
    bytes
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_single_byte_change_is_rejected(
        signer in 0..5usize,
        position in any::<Index>(),
        delta in 1..=255u8,
    ) {
        let f = fixture();
        let (signer, token) = (&f.signers[signer], &f.tokens[signer]);
        let position = position.index(token.len());
        let bad = mutated(token, position, delta);
        let result = f.verify(signer, &bad);
        prop_assert!(
            result.is_err(),
            "{} token with byte {} changed {:#04x} -> {:#04x} was accepted",
            signer.alg, position, token.as_bytes()[position], bad[position]
        );
    }
}

/// The base64url alphabet, in value order: `ALPHABET[v]` encodes the 6-bit value `v`.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The same property, swept over every position of every fixture token. For HS256 (a cheap MAC)
/// every one of the 255 other byte values is tried at every position. For the public-key tokens,
/// where each verification costs tens of microseconds in a debug build, each character is
/// replaced by the six characters whose 6-bit value differs from it in exactly one bit (so every
/// bit of every decoded part is flipped once, including the unused trailing bits that strict
/// base64url must refuse), by the dot, by `=` and by a non-ASCII byte; the random test above
/// samples all 255 values for them.
#[test]
fn every_single_byte_change_is_rejected() {
    let f = fixture();
    for (signer, token) in f.signers.iter().zip(&f.tokens) {
        let replacements = |original: u8| -> Vec<u8> {
            if signer.alg == Algorithm::HS256 {
                return (0..=255u8).filter(|b| *b != original).collect();
            }
            let mut out: Vec<u8> = match ALPHABET.iter().position(|c| *c == original) {
                Some(value) => (0..6).map(|bit| ALPHABET[value ^ (1 << bit)]).collect(),
                None => vec![b'A', b'_'],
            };
            out.extend([b'.', b'=', 0xff].into_iter().filter(|b| *b != original));
            out
        };
        let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut tried = 0usize;
        for position in 0..token.len() {
            let original = token.as_bytes()[position];
            for replacement in replacements(original) {
                tried += 1;
                let bad = mutated(token, position, original ^ replacement);
                match f.verify(signer, &bad) {
                    Ok(_) => panic!(
                        "{} token with byte {position} changed {:#04x} -> {:#04x} was accepted",
                        signer.alg,
                        token.as_bytes()[position],
                        bad[position]
                    ),
                    Err(reason) => *reasons.entry(reason.code()).or_default() += 1,
                }
            }
        }
        println!(
            "{:<6} {tried} changes over {} positions, all rejected: {reasons:?}",
            signer.alg.name(),
            token.len(),
        );
        assert!(reasons.get("bad_signature").is_some_and(|n| *n > 0));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Arbitrary claims round-trip.

/// JSON that round-trips exactly through serde_json: no floats.
fn exact_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "(?s).{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("(?s).{0,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const REGISTERED: &[&str] = &["iss", "aud", "sub", "exp", "nbf", "iat"];

prop_compose! {
    fn arbitrary_claims()(
        sub in "(?s).{0,40}",
        other_audiences in proptest::collection::vec("(?s).{0,16}", 0..4),
        aud_position in any::<Index>(),
        aud_as_string in any::<bool>(),
        issued_ago in 0..1_000_000u64,
        expires_in in 1..1_000_000u64,
        not_before in proptest::option::of(0..1_000_000u64),
        string_claims in proptest::collection::btree_map("(?s).{1,12}", "(?s).{0,24}", 0..6),
        other_claims in proptest::collection::btree_map("[a-z_]{1,10}", exact_json(), 0..3),
    ) -> Map<String, Value> {
        let mut claims = Map::new();
        for (name, value) in other_claims {
            claims.insert(name, value);
        }
        for (name, value) in string_claims {
            claims.insert(name, Value::String(value));
        }
        for name in REGISTERED {
            claims.remove(*name);
        }
        claims.insert("iss".into(), json!(ISS));
        claims.insert("sub".into(), json!(sub));
        let aud = if aud_as_string && other_audiences.is_empty() {
            json!(AUD)
        } else {
            let mut list = other_audiences;
            list.insert(aud_position.index(list.len() + 1), AUD.to_owned());
            json!(list)
        };
        claims.insert("aud".into(), aud);
        claims.insert("iat".into(), json!(NOW - issued_ago));
        claims.insert("exp".into(), json!(NOW + expires_in));
        if let Some(ago) = not_before {
            claims.insert("nbf".into(), json!(NOW - ago));
        }
        claims
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_claims_round_trip(signer in 0..5usize, claims in arbitrary_claims()) {
        let f = fixture();
        let signer = &f.signers[signer];
        let token = signer.token(&claims);
        let (policy, _) = f.policy_and_keys(signer);
        let payload_len = serde_json::to_vec(&claims).expect("serialises").len();
        let result = f.verify(signer, token.as_bytes());
        if token.len() > policy.limits.max_token_bytes {
            prop_assert_eq!(result.err(), Some(Reject::TokenTooLarge));
        } else if payload_len > policy.limits.max_payload_bytes {
            prop_assert_eq!(result.err(), Some(Reject::PayloadTooLarge));
        } else {
            let verified = result.map_err(|reason| {
                TestCaseError::fail(format!("{} token rejected: {reason}; claims {claims:?}", signer.alg))
            })?;
            prop_assert_eq!(verified.header.alg, signer.alg);
            prop_assert_eq!(verified.header.kid.as_deref(), Some(signer.kid));
            prop_assert_eq!(verified.claims.members(), &claims);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Key-set bookkeeping: a skipped key is reported at its position in the JWKS.

proptest! {
    #![proptest_config(config(128))]

    /// A JWKS mixing usable keys, keys `parse_jwks` refuses (`use: enc`) and keys no allowed
    /// algorithm fits (RSA under an EdDSA-only policy): every skipped key's `index` is its position
    /// in the `keys` array (operators read it in logs and `verdict verify` output), and exactly
    /// the usable keys are loaded.
    #[test]
    fn skipped_keys_are_reported_at_their_jwks_position(
        kinds in proptest::collection::vec(0..3u8, 0..8)
    ) {
        let ed = Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("Ed25519 seed");
        let x = b64::encode(ed.public_key().as_ref());
        let keys: Vec<Value> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let kid = format!("k{i}");
                match kind {
                    0 => json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid }),
                    1 => json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "enc" }),
                    _ => json!({ "kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": kid }),
                }
            })
            .collect();
        let bytes = serde_json::to_vec(&json!({ "keys": keys })).expect("serialises");
        let set = KeySet::from_jwks(&bytes, &[Algorithm::EdDSA], &AwsLcBackend::default())
            .expect("JWKS loads");
        prop_assert_eq!(set.len(), kinds.iter().filter(|k| **k == 0).count());
        let want: Vec<usize> = (0..kinds.len()).filter(|i| kinds[*i] != 0).collect();
        let got: Vec<usize> = set.skipped().iter().map(|s| s.index).collect();
        prop_assert_eq!(got, want);
        for skipped in set.skipped() {
            prop_assert_eq!(skipped.kid.clone(), Some(format!("k{}", skipped.index)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. verdict's strict JSON parser agrees with serde_json, apart from refusing duplicates.

/// JSON text: a serialised arbitrary object, then one random edit (a byte replaced, inserted or
/// removed), so most inputs are near-valid and reach deep into the grammar.
fn near_json() -> impl Strategy<Value = Vec<u8>> {
    const INTERESTING: &[u8] =
        b"{}[]\",:\\/u0123456789abcdefABCDEF.eE+- \t\n\rtruefalsenull\x01\x7f\xc3\xa9\xff";
    (
        proptest::collection::btree_map("(?s).{0,6}", json_value(), 0..5),
        any::<Index>(),
        any::<Index>(),
        0..4u8,
    )
        .prop_map(|(members, at, pick, edit)| {
            let object = Value::Object(members.into_iter().collect());
            let mut text = serde_json::to_vec(&object).expect("serialises");
            let position = at.index(text.len() + 1);
            let byte = INTERESTING[pick.index(INTERESTING.len())];
            match edit {
                0 if position < text.len() => text[position] = byte,
                1 => text.insert(position, byte),
                2 if position < text.len() => {
                    text.remove(position);
                }
                _ => {}
            }
            text
        })
}

/// Equal JSON values, except that floats may differ in the last bit: verdict reads numbers
/// with Rust's correctly rounded parser, serde_json (without `float_roundtrip`) with a faster
/// one that is sometimes a few ULPs off (more for subnormals).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            // Subnormals lose relative precision, hence the absolute floor.
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()) || (x - y).abs() < 1e-300
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn strict_json_agrees_with_serde_json(text in near_json()) {
        use verdict::jose::json::{StrictJsonError, parse_object, walk_object};
        let ours = parse_object(&text);
        let theirs = serde_json::from_slice::<Value>(&text);
        match &ours {
            Ok(map) => {
                let theirs = theirs.expect("serde_json accepts what verdict accepts");
                let ours = Value::Object(map.clone());
                prop_assert!(same_json(&ours, &theirs), "{ours:?} != {theirs:?}");
            }
            Err(StrictJsonError::Invalid) => prop_assert!(
                !matches!(theirs, Ok(Value::Object(_))),
                "verdict refused an object serde_json reads: {}",
                String::from_utf8_lossy(&text)
            ),
            // serde_json keeps the last duplicate; refusing is the point.
            Err(StrictJsonError::DuplicateMember) => {}
        }
        // The non-building walk judges every document exactly as the builder does, and hands
        // over the same values for the names asked for.
        let wanted: Vec<String> = match &ours {
            Ok(map) => {
                let mut names: Vec<String> = map.keys().take(6).cloned().collect();
                if !map.contains_key("a") {
                    names.push("a".to_owned());
                }
                names
            }
            Err(_) => vec!["a".to_owned(), "b".to_owned()],
        };
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let mut taken = Vec::new();
        let walked = walk_object(&text, &wanted, &mut |index, value| {
            taken.push((index, format!("{value:?}"), shallow_matches(&value, &ours, wanted[index])));
        });
        prop_assert_eq!(walked, ours.as_ref().map(|_| ()).map_err(|e| *e));
        if let Ok(map) = &ours {
            let present = wanted.iter().filter(|name| map.contains_key(**name)).count();
            prop_assert_eq!(taken.len(), present);
            for (index, value, matches) in taken {
                prop_assert!(matches, "{} read as {value}", wanted[index]);
            }
        }
    }
}

/// Whether a value the walk handed over for `name` is what the builder built for it.
fn shallow_matches(
    value: &verdict::jose::json::Shallow<'_>,
    built: &Result<serde_json::Map<String, Value>, verdict::jose::json::StrictJsonError>,
    name: &str,
) -> bool {
    use verdict::jose::json::Shallow;
    let Some(expected) = built.as_ref().ok().and_then(|map| map.get(name)) else {
        // A walk that fails later may still have handed over earlier members.
        return true;
    };
    match (value, expected) {
        (Shallow::Null, Value::Null) => true,
        (Shallow::Bool(a), Value::Bool(b)) => a == b,
        (Shallow::Number(a), Value::Number(b)) => b.as_f64() == Some(*a),
        (Shallow::String(a), Value::String(b)) => a == b,
        (Shallow::StringArray(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| b.as_str() == Some(a.as_ref()))
        }
        (Shallow::Other, Value::Object(_)) => true,
        (Shallow::Other, Value::Array(b)) => !b.iter().all(Value::is_string),
        _ => false,
    }
}
