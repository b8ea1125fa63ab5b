//! Verification micro-benchmarks.
//!
//! Keys are generated once per process with aws-lc-rs; tokens are minted in the setup with
//! aws-lc-rs signing, header `{"alg","typ":"JWT","kid"}` and a ~300-byte access-token claims set
//! (iss, sub, aud, exp, nbf, iat, jti, azp, scope, roles, tenant).
//!
//! Groups:
//! - `verify_<ALG>` (RS256, PS256, ES256, ES384, EdDSA, HS256): three functions measured in the
//!   same run on the same token:
//!   - `aws_lc_raw`: aws-lc-rs on the already-decoded signing input and signature with a
//!     pre-parsed key (the engine's floor);
//!   - `verdict_full`: [`verdict::policy::verify_token`] from the token string to the verdict
//!     (parse, allow-list, `kid` lookup in a multi-key set, signature, claims, iss/aud/exp/nbf);
//!   - `verdict_full_map`: the same, then the full claims map built (verdict builds it only on
//!     demand: claim headers, metadata, the CLI), like for like with jsonwebtoken's map;
//!   - `jsonwebtoken_decode`: `jsonwebtoken::decode` (aws_lc_rs provider) with a `DecodingKey`
//!     built once and a `Validation` with the same iss/aud/exp/nbf checks, the popular-library
//!     baseline. Claims are decoded into a `serde_json::Map`, the same output verdict gives.
//! - `ed25519_batch`: per-signature cost of single Ed25519 verification against
//!   `AwsLcBackend::verify_batch` on 2..=128 messages, all signed by one key
//!   (`verify_batch_one_key`, the usual case: one issuer key) or each by its own key
//!   (`verify_batch`, the worst case); threshold 2, so the batch path runs at every size.
//!   Throughput is in signatures, so per-element times compare.
//!   curve25519-dalek picks its backend at run time: AVX-512 IFMA where the CPU has it, else
//!   AVX2; say which CPU a figure came from. `DEFAULT_ED25519_BATCH_THRESHOLD` is set from it.
//! - `parse`: `jose::parse_compact` and `KeySet::select` alone, to show where the full path's
//!   overhead over the raw verify goes.
//!
//! Run: `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3`, then
//! `python3 benches/ratios.py` for the table of medians and ratios.
#![allow(clippy::expect_used, missing_docs)]

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use serde_json::{Map, Value};
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};
use verdict::crypto::{AwsLcBackend, Backend, VerifyJob};
use verdict::jose::{Algorithm, ClaimRules, KeyMaterial, Limits, b64, parse_compact};
use verdict::keys::KeySet;
use verdict::policy::{TokenPolicy, verify_token};

const ISSUER: &str = "https://idp.example.com/realms/corp";
const AUDIENCE: &str = "api://orders";

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A realistic access-token claims set (~300 bytes), distinct per `n`.
fn claims_json(now: u64, n: usize) -> String {
    format!(
        concat!(
            r#"{{"iss":"{iss}","sub":"f3c1e2a4-7b9d-4e21-9c55-{n:012}","aud":"{aud}","#,
            r#""exp":{exp},"nbf":{now},"iat":{now},"jti":"b7e9a0c2-{n:08}","#,
            r#""azp":"web-frontend","scope":"openid profile orders:read orders:write","#,
            r#""roles":["orders-reader"],"tenant":"acme-eu-1"}}"#
        ),
        iss = ISSUER,
        aud = AUDIENCE,
        exp = now + 3600,
        now = now,
        n = n,
    )
}

fn signing_input(alg: &str, kid: &str, claims: &str) -> String {
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(claims.as_bytes())
    )
}

fn token(input: &str, sig: &[u8]) -> String {
    format!("{input}.{}", b64::encode(sig))
}

/// Public key material, kept both ways: for verdict's JWKS and for the raw/baseline benches.
enum Public {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed {
        x: Vec<u8>,
    },
    Oct {
        k: Vec<u8>,
    },
}

impl Public {
    fn jwk(&self, kid: &str, alg: &str) -> String {
        let e = |bytes: &[u8]| b64::encode(bytes);
        match self {
            Public::Rsa { n, e: exp } => format!(
                r#"{{"kty":"RSA","use":"sig","kid":"{kid}","alg":"{alg}","n":"{}","e":"{}"}}"#,
                e(n),
                e(exp)
            ),
            Public::Ec { crv, x, y } => format!(
                r#"{{"kty":"EC","use":"sig","kid":"{kid}","alg":"{alg}","crv":"{crv}","x":"{}","y":"{}"}}"#,
                e(x),
                e(y)
            ),
            Public::Ed { x } => format!(
                r#"{{"kty":"OKP","use":"sig","kid":"{kid}","alg":"{alg}","crv":"Ed25519","x":"{}"}}"#,
                e(x)
            ),
            Public::Oct { k } => format!(
                r#"{{"kty":"oct","use":"sig","kid":"{kid}","alg":"{alg}","k":"{}"}}"#,
                e(k)
            ),
        }
    }
}

/// A signer for one algorithm, with its public half.
enum Signer {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(Box<hmac::Key>),
}

impl Signer {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(pair, padding) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(*padding, &rng, message, &mut sig)
                    .expect("RSA signing");
                sig
            }
            Signer::Ec(pair) => pair
                .sign(&rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        }
    }
}

fn rsa_key(padding: &'static dyn signature::RsaEncoding) -> (Signer, Public) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let public = Public::Rsa {
        n: components.n,
        e: components.e,
    };
    (Signer::Rsa(pair, padding), public)
}

fn ec_key(
    alg: &'static signature::EcdsaSigningAlgorithm,
    crv: &'static str,
    coord: usize,
) -> (Signer, Public) {
    let pair = EcdsaKeyPair::generate(alg).expect("EC key generation");
    let point = pair.public_key().as_ref();
    assert_eq!(point.len(), 1 + 2 * coord, "uncompressed point");
    let x = point.get(1..=coord).expect("x").to_vec();
    let y = point.get(1 + coord..).expect("y").to_vec();
    (Signer::Ec(pair), Public::Ec { crv, x, y })
}

fn ed_key() -> (Signer, Public) {
    let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
    let x = pair.public_key().as_ref().to_vec();
    (Signer::Ed(pair), Public::Ed { x })
}

fn hmac_key() -> (Signer, Public) {
    let mut k = vec![0u8; 32];
    SystemRandom::new().fill(&mut k).expect("random HMAC key");
    (
        Signer::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &k))),
        Public::Oct { k },
    )
}

/// A pre-parsed aws-lc-rs key behind a closure: `(message, signature) -> valid`.
type RawVerify = Box<dyn Fn(&[u8], &[u8]) -> bool>;

/// One algorithm's benchmark case.
struct Case {
    name: &'static str,
    alg: Algorithm,
    jwt_alg: jsonwebtoken::Algorithm,
    kid: &'static str,
    signer: Signer,
    public: Public,
}

impl Case {
    /// The floor: aws-lc-rs on decoded input and signature with a pre-parsed key.
    fn raw_verifier(&self) -> RawVerify {
        match &self.public {
            Public::Rsa { n, e } => {
                let params: &'static signature::RsaParameters = match self.alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    other => panic!("no RSA parameters for {other}"),
                };
                let key = PublicKeyComponents { n, e }
                    .to_parsed_public_key(params)
                    .expect("RSA public key");
                Box::new(move |m, s| key.verify_sig(m, s).is_ok())
            }
            Public::Ec { x, y, .. } => {
                let verifier: &'static signature::EcdsaVerificationAlgorithm = match self.alg {
                    Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                    other => panic!("no ECDSA verifier for {other}"),
                };
                let mut point = vec![0x04];
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let key = ParsedPublicKey::new(verifier, &point).expect("EC public key");
                Box::new(move |m, s| key.verify_sig(m, s).is_ok())
            }
            Public::Ed { x } => {
                let key = ParsedPublicKey::new(&signature::ED25519, x).expect("Ed25519 key");
                Box::new(move |m, s| key.verify_sig(m, s).is_ok())
            }
            Public::Oct { k } => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, k);
                Box::new(move |m, s| hmac::verify(&key, m, s).is_ok())
            }
        }
    }

    fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        use jsonwebtoken::DecodingKey;
        match &self.public {
            Public::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            Public::Ec { x, y, .. } => {
                DecodingKey::from_ec_components(&b64::encode(x), &b64::encode(y))
                    .expect("EC decoding key")
            }
            Public::Ed { x } => {
                DecodingKey::from_ed_components(&b64::encode(x)).expect("Ed decoding key")
            }
            Public::Oct { k } => DecodingKey::from_secret(k),
        }
    }
}

/// Everything the per-algorithm groups share: the cases, their key sets and policies.
struct Fixture {
    cases: Vec<Case>,
    /// A JWKS with every asymmetric key plus two decoys.
    asymmetric: KeySet,
    asymmetric_policy: TokenPolicy,
    /// A separate set for HMAC (a set never mixes secrets and public keys).
    symmetric: KeySet,
    symmetric_policy: TokenPolicy,
    now: u64,
}

fn rules() -> ClaimRules {
    ClaimRules {
        issuer: Some(ISSUER.to_owned()),
        audiences: vec![AUDIENCE.to_owned(), "api://billing".to_owned()],
        ..ClaimRules::default()
    }
}

fn fixture() -> Fixture {
    let backend = AwsLcBackend::default();
    let mk = |name, alg, jwt_alg, kid, (signer, public): (Signer, Public)| Case {
        name,
        alg,
        jwt_alg,
        kid,
        signer,
        public,
    };
    use jsonwebtoken::Algorithm as J;
    let cases = vec![
        mk(
            "RS256",
            Algorithm::RS256,
            J::RS256,
            "rsa-2025-01",
            rsa_key(&signature::RSA_PKCS1_SHA256),
        ),
        mk(
            "PS256",
            Algorithm::PS256,
            J::PS256,
            "rsa-pss-2025-01",
            rsa_key(&signature::RSA_PSS_SHA256),
        ),
        mk(
            "ES256",
            Algorithm::ES256,
            J::ES256,
            "ec-p256-2025-01",
            ec_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
        ),
        mk(
            "ES384",
            Algorithm::ES384,
            J::ES384,
            "ec-p384-2025-01",
            ec_key(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        ),
        mk(
            "EdDSA",
            Algorithm::EdDSA,
            J::EdDSA,
            "ed25519-2025-01",
            ed_key(),
        ),
        mk(
            "HS256",
            Algorithm::HS256,
            J::HS256,
            "hmac-2025-01",
            hmac_key(),
        ),
    ];

    let jwk_for = |case: &Case| case.public.jwk(case.kid, case.alg.name());
    // Decoys: a rotated-out RSA key and a second EC key, as real IdP JWKS publish.
    let (_, old_rsa) = rsa_key(&signature::RSA_PKCS1_SHA256);
    let (_, other_ec) = ec_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32);
    let mut asymmetric_jwks: Vec<String> = cases
        .iter()
        .filter(|c| c.alg != Algorithm::HS256)
        .map(jwk_for)
        .collect();
    asymmetric_jwks.push(old_rsa.jwk("rsa-2024-07", "RS256"));
    asymmetric_jwks.push(other_ec.jwk("ec-p256-2024-07", "ES256"));
    let asymmetric_policy = TokenPolicy {
        algorithms: vec![
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ],
        rules: rules(),
        limits: Limits::default(),
    };
    let asymmetric = KeySet::from_jwks(
        format!(r#"{{"keys":[{}]}}"#, asymmetric_jwks.join(",")).as_bytes(),
        &asymmetric_policy.algorithms,
        &backend,
    )
    .expect("asymmetric JWKS");
    assert_eq!(asymmetric.len(), 7, "all asymmetric keys load");

    let (_, decoy_a) = hmac_key();
    let (_, decoy_b) = hmac_key();
    let symmetric_jwks = [
        cases
            .iter()
            .find(|c| c.alg == Algorithm::HS256)
            .map(jwk_for)
            .expect("HS256 case"),
        decoy_a.jwk("hmac-2024-07", "HS256"),
        decoy_b.jwk("hmac-2024-01", "HS256"),
    ];
    let symmetric_policy = TokenPolicy {
        algorithms: vec![Algorithm::HS256],
        rules: rules(),
        limits: Limits::default(),
    };
    let symmetric = KeySet::from_jwks(
        format!(r#"{{"keys":[{}]}}"#, symmetric_jwks.join(",")).as_bytes(),
        &symmetric_policy.algorithms,
        &backend,
    )
    .expect("symmetric JWKS");
    assert_eq!(symmetric.len(), 3, "all HMAC keys load");

    Fixture {
        cases,
        asymmetric,
        asymmetric_policy,
        symmetric,
        symmetric_policy,
        now: now_s(),
    }
}

fn bench_algorithms(c: &mut Criterion) {
    let fx = fixture();
    let backend = AwsLcBackend::default();
    let claims = claims_json(fx.now, 1);
    eprintln!("claims set: {} bytes", claims.len());
    for case in &fx.cases {
        let input = signing_input(case.name, case.kid, &claims);
        let sig = case.signer.sign(input.as_bytes());
        let jwt = token(&input, &sig);
        let (keys, policy) = if case.alg == Algorithm::HS256 {
            (&fx.symmetric, &fx.symmetric_policy)
        } else {
            (&fx.asymmetric, &fx.asymmetric_policy)
        };

        // Every path must accept the token before it is timed.
        let raw = case.raw_verifier();
        assert!(raw(input.as_bytes(), &sig), "{}: raw verify", case.name);
        let verified = verify_token(jwt.as_bytes(), policy, keys, &backend, fx.now)
            .unwrap_or_else(|e| panic!("{}: verdict rejects: {e:?}", case.name));
        assert_eq!(verified.claims.issuer(), Ok(Some(ISSUER)));
        let decoding_key = case.decoding_key();
        let mut validation = jsonwebtoken::Validation::new(case.jwt_alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE, "api://billing"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let decoded = jsonwebtoken::decode::<Map<String, Value>>(&jwt, &decoding_key, &validation)
            .unwrap_or_else(|e| panic!("{}: jsonwebtoken rejects: {e}", case.name));
        assert_eq!(decoded.claims.get("iss"), Some(&Value::from(ISSUER)));

        let mut group = c.benchmark_group(format!("verify_{}", case.name));
        group.throughput(Throughput::Elements(1));
        group.bench_function("aws_lc_raw", |b| {
            b.iter(|| black_box(raw(black_box(input.as_bytes()), black_box(&sig))))
        });
        group.bench_function("verdict_full", |b| {
            b.iter(|| {
                black_box(verify_token(
                    black_box(jwt.as_bytes()),
                    policy,
                    keys,
                    &backend,
                    fx.now,
                ))
            })
        });
        // verdict's backend alone on the decoded token: the engine call without the parse.
        let parsed = parse_compact(jwt.as_bytes(), &policy.limits).expect("parses");
        let key = keys.select(&parsed.header).expect("key");
        group.bench_function("backend_only", |b| {
            b.iter(|| {
                black_box(backend.verify(
                    key,
                    black_box(parsed.signing_input),
                    black_box(parsed.signature()),
                ))
            })
        });
        // The same, then the full claims map built (what the CLI and claim metadata use), to
        // compare like for like with jsonwebtoken's decode into a map.
        group.bench_function("verdict_full_map", |b| {
            b.iter(|| {
                let verified =
                    verify_token(black_box(jwt.as_bytes()), policy, keys, &backend, fx.now);
                black_box(verified.map(|v| v.claims.into_members()))
            })
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                black_box(jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&jwt),
                    &decoding_key,
                    &validation,
                ))
            })
        });
        group.finish();
    }
}

fn bench_parse(c: &mut Criterion) {
    let fx = fixture();
    let claims = claims_json(fx.now, 1);
    let case = fx
        .cases
        .iter()
        .find(|c| c.alg == Algorithm::RS256)
        .expect("RS256 case");
    let input = signing_input(case.name, case.kid, &claims);
    let jwt = token(&input, &case.signer.sign(input.as_bytes()));
    let limits = Limits::default();
    let jws = parse_compact(jwt.as_bytes(), &limits).expect("parses");
    let policy = &fx.asymmetric_policy;

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_compact_RS256", |b| {
        b.iter(|| black_box(parse_compact(black_box(jwt.as_bytes()), &limits)))
    });
    group.bench_function("keyset_select", |b| {
        b.iter(|| black_box(fx.asymmetric.select(black_box(&jws.header)).is_ok()))
    });
    group.bench_function("serde_json_ignored_any_claims", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(
                jws.payload(),
            )))
        })
    });
    group.bench_function("walk_claims_nothing_wanted", |b| {
        b.iter(|| {
            black_box(verdict::jose::json::walk_object(
                black_box(jws.payload()),
                &[],
                &mut |i, v| {
                    black_box((i, v));
                },
            ))
        })
    });
    group.bench_function("walk_claims", |b| {
        b.iter(|| {
            black_box(verdict::jose::json::walk_object(
                black_box(jws.payload()),
                &["iss", "aud", "exp", "nbf", "iat"],
                &mut |i, v| {
                    black_box((i, v));
                },
            ))
        })
    });
    group.bench_function("claims_parse_and_check", |b| {
        b.iter(|| {
            let claims = verdict::jose::Claims::from_payload(black_box(jws.payload().to_vec()));
            black_box(claims.and_then(|c| policy.rules.check(&jws.header, &c, fx.now)))
        })
    });
    group.finish();
}

/// `count` Ed25519-signed token signing inputs: by `count` distinct keys, or all by one key.
struct Ed25519Batch {
    keys: Vec<verdict::crypto::PreparedKey>,
    messages: Vec<String>,
    signatures: Vec<Vec<u8>>,
    first_public: [u8; 32],
}

impl Ed25519Batch {
    fn new(backend: &AwsLcBackend, count: usize, distinct_keys: bool, now: u64) -> Self {
        let mut pairs = Vec::new();
        let mut keys = Vec::new();
        for _ in 0..(if distinct_keys { count } else { 1 }) {
            let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
            let x: [u8; 32] = pair.public_key().as_ref().try_into().expect("32-byte key");
            keys.push(
                backend
                    .prepare(&KeyMaterial::Ed25519 { x }, Algorithm::EdDSA)
                    .expect("prepared Ed25519 key"),
            );
            pairs.push((pair, x));
        }
        let mut messages = Vec::with_capacity(count);
        let mut signatures = Vec::with_capacity(count);
        for n in 0..count {
            let (pair, _) = &pairs[n % pairs.len()];
            let message = signing_input("EdDSA", "ed25519-2025-01", &claims_json(now, n));
            signatures.push(pair.sign(message.as_bytes()).as_ref().to_vec());
            messages.push(message);
        }
        Ed25519Batch {
            keys,
            messages,
            signatures,
            first_public: pairs[0].1,
        }
    }

    fn jobs(&self) -> Vec<VerifyJob<'_>> {
        (0..self.messages.len())
            .map(|n| VerifyJob {
                key: &self.keys[n % self.keys.len()],
                message: self.messages[n].as_bytes(),
                signature: &self.signatures[n],
            })
            .collect()
    }
}

fn bench_ed25519_batch(c: &mut Criterion) {
    const SIZES: [usize; 7] = [2, 4, 8, 16, 32, 64, 128];
    const MAX: usize = 128;
    let now = now_s();
    let backend = AwsLcBackend::with_ed25519_batch_threshold(2);
    // Tokens in a batch usually share their issuer's signing key (the realistic case, where the
    // per-key terms are summed); distinct keys are the worst case.
    let one_key = Ed25519Batch::new(&backend, MAX, false, now);
    let distinct = Ed25519Batch::new(&backend, MAX, true, now);
    let one_key_jobs = one_key.jobs();
    let distinct_jobs = distinct.jobs();
    let mut results = Vec::with_capacity(MAX);
    for jobs in [&one_key_jobs, &distinct_jobs] {
        backend.verify_batch(jobs, &mut results);
        assert!(
            results.iter().all(Result::is_ok),
            "every signature verifies"
        );
    }

    // The single-verification baseline: aws-lc-rs on the first job, key pre-parsed.
    let first = distinct_jobs.first().expect("one job");
    let raw_key =
        ParsedPublicKey::new(&signature::ED25519, distinct.first_public).expect("Ed25519 key");

    let mut group: BenchmarkGroup<'_, WallTime> = c.benchmark_group("ed25519_batch");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    group.bench_function("aws_lc_single", |b| {
        b.iter(|| {
            black_box(
                raw_key
                    .verify_sig(black_box(first.message), black_box(first.signature))
                    .is_ok(),
            )
        })
    });
    for (name, jobs) in [
        ("verify_batch_one_key", &one_key_jobs),
        ("verify_batch", &distinct_jobs),
    ] {
        for size in SIZES {
            let batch = jobs.get(..size).expect("enough jobs");
            group.throughput(Throughput::Elements(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size), batch, |b, batch| {
                b.iter(|| {
                    backend.verify_batch(black_box(batch), &mut results);
                    black_box(&results);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_algorithms, bench_parse, bench_ed25519_batch);
criterion_main!(benches);
