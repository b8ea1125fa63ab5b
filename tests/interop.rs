//! Interop with independent JOSE implementations: tokens minted by PyJWT and by jwcrypto (Python,
//! through `tests/support/mint.py`) for every JWS algorithm verdict implements must verify, and
//! their tampered variants must be rejected with the right reason.
//!
//! The Python side runs in `<repo>/.venv`, which `tests/support/ensure_venv.py` creates and fills
//! from PyPI with the versions pinned in `tests/support/requirements.txt` when it is missing or
//! out of date. Nothing is skipped: without `python3` (or `$VERDICT_PYTHON3`), or when the venv
//! cannot be set up, every test here fails and says why.
//!
//! Every test body runs once per verification engine (`tests/engines`: aws-lc-rs, and Intel
//! crypto_mb where this machine runs it; on a CPU with AVX-512 IFMA it must).
//!
//! Both libraries implement all fourteen algorithms (ES256K and EdDSA included), so every
//! algorithm is covered by both; [`every_algorithm_is_covered_by_both_libraries`] fails if a
//! library ever stops minting one.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is how a test fails"
)]

mod engines;
mod venv;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::Command;
use std::rc::Rc;
use std::sync::OnceLock;
use verdict::crypto::Backend;
use verdict::jose::{Algorithm, ClaimRules, Reject, b64, parse_jwk};
use verdict::keys::{KeySet, KeySetError};
use verdict::policy::{TokenPolicy, Verified, verify_token};

/// The document `mint.py` prints.
#[derive(Debug, Deserialize)]
struct Minted {
    iat: u64,
    exp: u64,
    iss: String,
    aud: String,
    sub: String,
    versions: BTreeMap<String, String>,
    algorithms: Vec<AlgCase>,
    confusion: Confusion,
}

/// One algorithm: its key as two JWKS encodings, and the tokens signed with it.
#[derive(Debug, Deserialize)]
struct AlgCase {
    alg: String,
    kid: String,
    /// jwcrypto's export, with `alg`, `use` and `kid`.
    jwks_pinned: Value,
    /// PyJWT's export, with only `kid` added: the key may serve any algorithm of its family.
    jwks_unpinned: Value,
    tokens: Vec<MintedToken>,
}

#[derive(Debug, Deserialize)]
struct MintedToken {
    library: String,
    header_alg: String,
    token: String,
}

#[derive(Debug, Deserialize)]
struct Confusion {
    rsa_jwks: Value,
    rsa_kid: String,
    tokens: Vec<ConfusionToken>,
    refusals: Vec<Refusal>,
}

#[derive(Debug, Deserialize)]
struct ConfusionToken {
    secret: String,
    secret_b64url: String,
    kid: Option<String>,
    library: String,
    token: String,
}

#[derive(Debug, Deserialize)]
struct Refusal {
    secret: String,
    kid: Option<String>,
    library: String,
    reason: String,
}

/// Sets up the venv and mints once per test process; every test shares the result.
fn minted() -> &'static Minted {
    static MINTED: OnceLock<Minted> = OnceLock::new();
    MINTED.get_or_init(|| {
        let python = venv::python();
        let script = venv::repo_root().join("tests/support/mint.py");
        let output = Command::new(&python)
            .arg(&script)
            .current_dir(venv::repo_root())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        assert!(
            output.status.success(),
            "mint.py failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let minted: Minted =
            serde_json::from_slice(&output.stdout).expect("mint.py prints the documented JSON");
        assert_eq!(
            minted.algorithms.len(),
            Algorithm::ALL.len(),
            "mint.py must cover every algorithm"
        );
        minted
    })
}

thread_local! {
    /// The engine the running test body uses (see [`on_each_engine`]).
    static ENGINE: RefCell<Option<Rc<dyn Backend>>> = const { RefCell::new(None) };
}

/// The engine of the test body now running.
fn backend() -> Rc<dyn Backend> {
    ENGINE.with(|engine| {
        engine
            .borrow()
            .clone()
            .expect("a test body runs inside on_each_engine")
    })
}

/// Runs one test body once per engine (`tests/engines`: aws-lc-rs, then crypto_mb where it
/// runs), the same body each time.
fn on_each_engine(test: &str, body: impl Fn()) {
    for (name, engine) in engines::all() {
        eprintln!("{test}: on engine {name}");
        let engine: Rc<dyn Backend> = Rc::from(engine);
        ENGINE.with(|slot| *slot.borrow_mut() = Some(engine));
        body();
        ENGINE.with(|slot| *slot.borrow_mut() = None);
    }
}

/// Every test below is instantiated per engine by [`on_each_engine`].
macro_rules! engine_tests {
    ($( $(#[$meta:meta])* fn $name:ident() $body:block )+) => {
        $(
            $(#[$meta])*
            #[test]
            fn $name() {
                on_each_engine(stringify!($name), || $body);
            }
        )+
    };
}

fn alg(name: &str) -> Algorithm {
    Algorithm::from_name(name).unwrap_or_else(|| panic!("mint.py used unknown alg {name}"))
}

/// The provider's allow-list for a case: HMAC only by explicit opt-in, never mixed with the
/// asymmetric algorithms; otherwise every asymmetric algorithm (the default policy).
fn allow_list(alg: Algorithm) -> Vec<Algorithm> {
    if alg.is_symmetric() {
        vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
    } else {
        TokenPolicy::default().algorithms
    }
}

fn policy(m: &Minted, algorithms: Vec<Algorithm>) -> TokenPolicy {
    TokenPolicy {
        algorithms,
        rules: ClaimRules {
            issuer: Some(m.iss.clone()),
            audiences: vec![m.aud.clone()],
            ..ClaimRules::default()
        },
        ..TokenPolicy::default()
    }
}

/// A time inside every minted token's validity window.
fn now(m: &Minted) -> u64 {
    m.iat + 60
}

fn key_set(jwks: &Value, algorithms: &[Algorithm]) -> KeySet {
    let bytes = serde_json::to_vec(jwks).expect("JWKS serialises");
    let set = KeySet::from_jwks(&bytes, algorithms, &*backend()).expect("JWKS loads");
    assert!(
        set.skipped().is_empty(),
        "no key may be skipped: {:?} in {jwks}",
        set.skipped()
    );
    set
}

fn verify(token: &str, policy: &TokenPolicy, keys: &KeySet, now: u64) -> Result<Verified, Reject> {
    verify_token(token.as_bytes(), policy, keys, &*backend(), now)
}

fn parts(token: &str) -> [&str; 3] {
    let mut it = token.split('.');
    let parts = [
        it.next().expect("header"),
        it.next().expect("payload"),
        it.next().expect("signature"),
    ];
    assert!(it.next().is_none(), "compact JWS has three parts");
    parts
}

fn decode_json(part: &str) -> Map<String, Value> {
    let bytes = b64::decode(part.as_bytes()).expect("minted parts are strict base64url");
    match serde_json::from_slice(&bytes).expect("minted parts are JSON") {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

fn encode_json(map: &Map<String, Value>) -> String {
    b64::encode(&serde_json::to_vec(map).expect("serialises"))
}

/// The token with its header replaced (payload and signature kept).
fn with_header(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let [header, payload, signature] = parts(token);
    let mut map = decode_json(header);
    edit(&mut map);
    format!("{}.{payload}.{signature}", encode_json(&map))
}

/// The token with its payload replaced (header and signature kept).
fn with_payload(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let [header, payload, signature] = parts(token);
    let mut map = decode_json(payload);
    edit(&mut map);
    format!("{header}.{}.{signature}", encode_json(&map))
}

/// Every (case, JWKS, token) triple, with the JWKS encoding named.
fn each_token(mut f: impl FnMut(&AlgCase, &'static str, &Value, &MintedToken)) -> usize {
    let m = minted();
    let mut count = 0;
    for case in &m.algorithms {
        for (form, jwks) in [
            ("pinned", &case.jwks_pinned),
            ("unpinned", &case.jwks_unpinned),
        ] {
            for token in &case.tokens {
                f(case, form, jwks, token);
                count += 1;
            }
        }
    }
    count
}

engine_tests! {
    fn every_algorithm_is_covered_by_both_libraries() {
        let m = minted();
        let mut table: BTreeMap<(String, String), usize> = BTreeMap::new();
        for want in Algorithm::ALL {
            let case = m
                .algorithms
                .iter()
                .find(|c| alg(&c.alg) == want)
                .unwrap_or_else(|| panic!("mint.py has no case for {want}"));
            for library in ["PyJWT", "jwcrypto"] {
                let n = case.tokens.iter().filter(|t| t.library == library).count();
                assert!(n >= 1, "{library} minted no {want} token");
                table.insert((want.name().to_owned(), library.to_owned()), n);
            }
        }
        println!("minters: {:?}", m.versions);
        for ((alg, library), n) in &table {
            println!("  {alg:<7} {library:<9} {n} token(s)");
        }
    }

    fn every_minted_token_verifies_with_its_claims() {
        let m = minted();
        let mut per_alg_library: BTreeMap<(String, String), usize> = BTreeMap::new();
        let total = each_token(|case, form, jwks, token| {
            let algorithm = alg(&case.alg);
            let policy = policy(m, allow_list(algorithm));
            let keys = key_set(jwks, &policy.algorithms);
            let verified = verify(&token.token, &policy, &keys, now(m)).unwrap_or_else(|reason| {
                panic!(
                    "{} {} token (header alg {}) against the {form} JWKS: rejected with {reason}",
                    token.library, case.alg, token.header_alg
                )
            });
            assert_eq!(verified.header.alg, algorithm);
            assert_eq!(verified.header.kid.as_deref(), Some(case.kid.as_str()));
            let expected = json!({
                "iss": m.iss,
                "aud": m.aud,
                "sub": m.sub,
                "iat": m.iat,
                "exp": m.exp,
                "minted_by": format!("{}/{}", token.library, token.header_alg),
            });
            assert_eq!(
                &Value::Object(verified.claims.into_members()),
                &expected,
                "{} {} claims",
                token.library,
                case.alg
            );
            *per_alg_library
                .entry((case.alg.clone(), format!("{}/{form}", token.library)))
                .or_default() += 1;
        });
        println!("verified {total} tokens (each against the pinned and the unpinned JWKS):");
        for ((alg, who), n) in &per_alg_library {
            println!("  {alg:<7} {who:<19} {n}");
        }
        // 14 algorithms × 2 libraries × 2 JWKS encodings, plus jwcrypto's `Ed25519` name × 2.
        assert_eq!(total, 14 * 2 * 2 + 2);
    }

    fn both_jwk_encodings_give_the_same_key() {
        for case in &minted().algorithms {
            let one = |jwks: &Value| {
                let key = &jwks["keys"][0];
                parse_jwk(&serde_json::to_vec(key).expect("serialises"))
                    .unwrap_or_else(|e| panic!("{} JWK {key}: {e}", case.alg))
            };
            let pinned = one(&case.jwks_pinned);
            let unpinned = one(&case.jwks_unpinned);
            assert_eq!(pinned.material, unpinned.material, "{}", case.alg);
            assert_eq!(pinned.alg, Some(alg(&case.alg)));
            assert_eq!(unpinned.alg, None);
        }
    }

    fn combined_key_sets_verify_every_token() {
        let m = minted();
        let (symmetric, asymmetric): (Vec<&AlgCase>, Vec<&AlgCase>) = m
            .algorithms
            .iter()
            .partition(|case| alg(&case.alg).is_symmetric());
        let merge = |cases: &[&AlgCase]| json!({ "keys": cases.iter().map(|c| c.jwks_pinned["keys"][0].clone()).collect::<Vec<_>>() });
        let mut checked = 0;
        for (cases, algorithms) in [
            (&symmetric, allow_list(Algorithm::HS256)),
            (&asymmetric, allow_list(Algorithm::RS256)),
        ] {
            let policy = policy(m, algorithms);
            let keys = key_set(&merge(cases), &policy.algorithms);
            assert_eq!(keys.len(), cases.len());
            for case in cases {
                for token in &case.tokens {
                    let result = verify(&token.token, &policy, &keys, now(m));
                    assert!(result.is_ok(), "{} {}: {result:?}", token.library, case.alg);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 14 * 2 + 1);
        // A set that mixes secrets and public keys is refused as a whole.
        let all: Vec<&AlgCase> = m.algorithms.iter().collect();
        let mixed = serde_json::to_vec(&merge(&all)).expect("serialises");
        let err = KeySet::from_jwks(&mixed, &Algorithm::ALL, &*backend()).expect_err("mixed set");
        assert_eq!(err, KeySetError::MixedSymmetry);
    }

    fn flipped_signature_byte_is_bad_signature() {
        let m = minted();
        let total = each_token(|case, form, jwks, token| {
            let policy = policy(m, allow_list(alg(&case.alg)));
            let keys = key_set(jwks, &policy.algorithms);
            let [header, payload, signature] = parts(&token.token);
            let signature = b64::decode(signature.as_bytes()).expect("signature decodes");
            // First, middle and last byte; for ECDSA that is r's top, the r/s seam, s's bottom; for
            // Ed25519 R's first byte and S's most significant byte.
            for index in [0, signature.len() / 2, signature.len() - 1] {
                let mut bad = signature.clone();
                bad[index] ^= 0x01;
                let tampered = format!("{header}.{payload}.{}", b64::encode(&bad));
                assert_eq!(
                    verify(&tampered, &policy, &keys, now(m)).err(),
                    Some(Reject::BadSignature),
                    "{} {} ({form}): signature byte {index} flipped",
                    token.library,
                    case.alg
                );
            }
            // A truncated or extended signature is not a signature either.
            let truncated = signature[..signature.len() - 1].to_vec();
            let extended = [&signature[..], &[0]].concat();
            for bad in [truncated, extended] {
                let tampered = format!("{header}.{payload}.{}", b64::encode(&bad));
                assert_eq!(
                    verify(&tampered, &policy, &keys, now(m)).err(),
                    Some(Reject::BadSignature),
                    "{} {} ({form}): signature of {} bytes",
                    token.library,
                    case.alg,
                    bad.len()
                );
            }
        });
        assert_eq!(total, 58);
    }

    fn modified_payload_is_bad_signature() {
        let m = minted();
        each_token(|case, form, jwks, token| {
            let policy = policy(m, allow_list(alg(&case.alg)));
            let keys = key_set(jwks, &policy.algorithms);
            // (what, claim, new value); `None`: the same claims, re-serialised by serde_json.
            let edits: [(&str, Option<(&str, Value)>); 4] = [
                ("sub changed", Some(("sub", json!("mallory")))),
                (
                    "exp extended",
                    Some(("exp", json!(m.exp + 10 * 365 * 86_400))),
                ),
                ("claim added", Some(("admin", json!(true)))),
                ("same claims, re-serialised", None),
            ];
            let mut checked = 0;
            for (what, edit) in edits {
                let tampered = with_payload(&token.token, |claims| {
                    if let Some((name, value)) = edit {
                        claims.insert(name.to_owned(), value);
                    }
                });
                if tampered == token.token {
                    // Re-serialising reproduced the minter's exact bytes (jwcrypto sorts members as
                    // serde_json does): nothing was changed, so there is nothing to reject.
                    continue;
                }
                assert_eq!(
                    verify(&tampered, &policy, &keys, now(m)).err(),
                    Some(Reject::BadSignature),
                    "{} {} ({form}): payload {what}",
                    token.library,
                    case.alg
                );
                checked += 1;
            }
            assert!(
                checked >= 3,
                "{} {}: only {checked} edits",
                token.library,
                case.alg
            );
        });
    }

    /// The header's `alg` replaced by another algorithm the provider allows (payload and signature
    /// kept). The header is signed, so this can never verify; the reason depends on the key set:
    ///
    /// - kid present and the JWK pinned to its `alg`: `AlgorithmNotAllowed`. The key was prepared for
    ///   its pinned algorithm only, so `KeySet::select` finds the `kid` but no key for the new
    ///   algorithm: the key is known, the algorithm is not allowed for it.
    /// - kid present, unpinned JWK: if the material also fits the new algorithm (RSA keys serve
    ///   RS*/PS*, an `oct` key serves every HS* whose hash is no longer than the key), the key was
    ///   prepared for it too and the signature check runs: `BadSignature`. Otherwise
    ///   `AlgorithmNotAllowed` as above.
    /// - kid removed: no key-id narrows the search, and no key of the set was prepared for the new
    ///   algorithm unless the material fits it: `UnknownKey` (pinned), or `BadSignature`/`UnknownKey`
    ///   by the same fit rule (unpinned).
    ///
    /// Renaming `EdDSA` to its RFC 9864 alias `Ed25519` (same algorithm) changes the signed header
    /// bytes, so that is `BadSignature`.
    fn header_alg_swapped_is_rejected() {
        let m = minted();
        let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
        each_token(|case, form, jwks, token| {
            let algorithm = alg(&case.alg);
            let policy = policy(m, allow_list(algorithm));
            let keys = key_set(jwks, &policy.algorithms);
            let jwk = parse_jwk(&serde_json::to_vec(&jwks["keys"][0]).expect("serialises"))
                .expect("JWK parses");
            let mut names: Vec<&str> = policy.algorithms.iter().map(|a| a.name()).collect();
            if policy.algorithms.contains(&Algorithm::EdDSA) {
                names.push("Ed25519");
            }
            for new_name in names {
                if new_name == token.header_alg {
                    continue;
                }
                let new = alg(new_name);
                let prepared_for_new = jwk.usable_algorithms(&policy.algorithms).any(|a| a == new);
                for keep_kid in [true, false] {
                    let tampered = with_header(&token.token, |h| {
                        h.insert("alg".into(), json!(new_name));
                        if !keep_kid {
                            h.remove("kid");
                        }
                    });
                    let want = match (prepared_for_new, keep_kid) {
                        (true, _) => Reject::BadSignature,
                        (false, true) => Reject::AlgorithmNotAllowed,
                        (false, false) => Reject::UnknownKey,
                    };
                    assert_eq!(
                        verify(&tampered, &policy, &keys, now(m)).err(),
                        Some(want),
                        "{} {} ({form}): header alg -> {new_name}, kid kept: {keep_kid}",
                        token.library,
                        case.alg
                    );
                    *outcomes.entry(want.code()).or_default() += 1;
                    if form == "pinned" && new != algorithm {
                        assert_ne!(
                            want,
                            Reject::BadSignature,
                            "a pinned key serves one algorithm"
                        );
                    }
                }
            }
        });
        println!("alg-swap outcomes: {outcomes:?}");
        for reason in [
            Reject::AlgorithmNotAllowed,
            Reject::UnknownKey,
            Reject::BadSignature,
        ] {
            assert!(
                outcomes.get(reason.code()).is_some_and(|n| *n > 0),
                "{reason} never seen"
            );
        }
    }

    fn alg_none_is_rejected() {
        let m = minted();
        each_token(|case, form, jwks, token| {
            let policy = policy(m, allow_list(alg(&case.alg)));
            let keys = key_set(jwks, &policy.algorithms);
            for none in ["none", "None", "NONE", "nOnE"] {
                let unsigned = with_header(&token.token, |h| {
                    h.insert("alg".into(), json!(none));
                });
                let [header, payload, _] = parts(&unsigned);
                for tampered in [unsigned.clone(), format!("{header}.{payload}.")] {
                    assert_eq!(
                        verify(&tampered, &policy, &keys, now(m)).err(),
                        Some(Reject::AlgNone),
                        "{} {} ({form}): alg {none}",
                        token.library,
                        case.alg
                    );
                }
            }
        });
    }

    fn expiry_audience_and_issuer_are_enforced() {
        let m = minted();
        let leeway = ClaimRules::default().leeway_s;
        each_token(|case, form, jwks, token| {
            let good = policy(m, allow_list(alg(&case.alg)));
            let keys = key_set(jwks, &good.algorithms);
            let label = format!("{} {} ({form})", token.library, case.alg);
            let at = |now: u64, p: &TokenPolicy| verify(&token.token, p, &keys, now).err();

            // Expiry, at the leeway boundary and far in the future.
            assert_eq!(
                at(m.exp + leeway - 1, &good),
                None,
                "{label}: within leeway"
            );
            assert_eq!(at(m.exp + leeway, &good), Some(Reject::Expired), "{label}");
            let far = m.exp + 50 * 365 * 86_400;
            assert_eq!(at(far, &good), Some(Reject::Expired), "{label}");

            // `iat` in the future: the token was minted "later" than now.
            assert_eq!(
                at(m.iat - leeway - 1, &good),
                Some(Reject::IssuedInFuture),
                "{label}"
            );

            let mut wrong_aud = good.clone();
            wrong_aud.rules.audiences = vec!["api://someone-else".into()];
            assert_eq!(
                at(now(m), &wrong_aud),
                Some(Reject::WrongAudience),
                "{label}"
            );
            // The audience list is any-of.
            wrong_aud.rules.audiences.push(m.aud.clone());
            assert_eq!(at(now(m), &wrong_aud), None, "{label}: any-of audiences");

            for issuer in [
                "https://evil.example",
                &format!("{}/", m.iss),
                &m.iss.to_uppercase(),
            ] {
                let mut wrong_iss = good.clone();
                wrong_iss.rules.issuer = Some(issuer.to_owned());
                assert_eq!(
                    at(now(m), &wrong_iss),
                    Some(Reject::WrongIssuer),
                    "{label}: issuer {issuer}"
                );
            }
        });
    }

    /// HS256 tokens whose HMAC secret is the RS256 key's public key (SPKI and PKCS#1, PEM and DER):
    /// the classic algorithm-confusion forgery. The algorithm comes from the key, so it must fail:
    ///
    /// - provider allows RS256 only: HS256 is not on the allow-list → `AlgorithmNotAllowed` before
    ///   any key is looked at;
    /// - provider allows RS256 and HS256 with the RSA JWKS: an RSA key is never prepared for an HMAC
    ///   algorithm, so with the RSA key's `kid` → `AlgorithmNotAllowed`, without a `kid` →
    ///   `UnknownKey`;
    /// - provider allows HS256 only with the RSA JWKS: no key is usable at all → `NoKeys`.
    ///
    /// As a control, each token verifies against an `oct` JWK holding exactly its secret, so the
    /// rejections above are the defence at work, not malformed tokens.
    fn rsa_public_key_as_hmac_secret_is_rejected() {
        let m = minted();
        let c = &m.confusion;
        let rs256_only = policy(m, vec![Algorithm::RS256]);
        let rs256_and_hs256 = policy(m, vec![Algorithm::RS256, Algorithm::HS256]);
        let hs256_only = policy(m, vec![Algorithm::HS256]);
        let rsa_rs256 = key_set(&c.rsa_jwks, &rs256_only.algorithms);
        let rsa_both = key_set(&c.rsa_jwks, &rs256_and_hs256.algorithms);
        assert_eq!(rsa_both.len(), 1);
        assert!(
            rsa_both.entries()[0]
                .prepared
                .iter()
                .all(|k| k.algorithm() == Algorithm::RS256),
            "an RSA key is only ever prepared for RSA algorithms"
        );
        let rsa_hs = KeySet::from_jwks(
            &serde_json::to_vec(&c.rsa_jwks).expect("serialises"),
            &hs256_only.algorithms,
            &*backend(),
        )
        .expect("JWKS loads");
        assert!(rsa_hs.is_empty(), "no HMAC key can come out of an RSA JWK");

        let mut secrets_seen = BTreeMap::<&str, usize>::new();
        for t in &c.tokens {
            let label = format!(
                "{} HS256 with {} as secret, kid {:?}",
                t.library, t.secret, t.kid
            );
            assert!(t.kid.is_none() || t.kid.as_deref() == Some(c.rsa_kid.as_str()));
            assert_eq!(
                verify(&t.token, &rs256_only, &rsa_rs256, now(m)).err(),
                Some(Reject::AlgorithmNotAllowed),
                "{label}: RS256-only provider"
            );
            let want = if t.kid.is_some() {
                Reject::AlgorithmNotAllowed
            } else {
                Reject::UnknownKey
            };
            assert_eq!(
                verify(&t.token, &rs256_and_hs256, &rsa_both, now(m)).err(),
                Some(want),
                "{label}: RS256+HS256 provider"
            );
            assert_eq!(
                verify(&t.token, &hs256_only, &rsa_hs, now(m)).err(),
                Some(Reject::NoKeys),
                "{label}: HS256-only provider with the RSA JWKS"
            );

            // Control: a genuine HS256 token under a key holding these bytes.
            let mut oct = json!({ "kty": "oct", "k": t.secret_b64url });
            if let Some(kid) = &t.kid {
                oct["kid"] = json!(kid);
            }
            let oct_keys = key_set(&json!({ "keys": [oct] }), &hs256_only.algorithms);
            assert!(
                verify(&t.token, &hs256_only, &oct_keys, now(m)).is_ok(),
                "{label}: control"
            );
            *secrets_seen.entry(&t.secret).or_default() += 1;
        }
        assert_eq!(
            secrets_seen.keys().copied().collect::<Vec<_>>(),
            ["PKCS#1 DER", "PKCS#1 PEM", "SPKI DER", "SPKI PEM"]
        );
        println!("alg-confusion tokens per secret encoding: {secrets_seen:?}");
        for r in &c.refusals {
            println!(
                "  {} refused to mint HS256 with {} (kid {:?}): {}",
                r.library, r.secret, r.kid, r.reason
            );
        }
    }
}
