//! Wycheproof conformance suite.
//!
//! One test per vendored vector file (`tests/data/wycheproof/`, copied unchanged from
//! C2SP/wycheproof; see SOURCE.md there). Every vector goes through the path the server uses:
//!
//! - raw signature and MAC files: the group's JWK (`publicKeyJwk` / `keyJwk`) is parsed by
//!   `jose::jwk::jwk_from_members`, prepared once with `Backend::prepare` for the file's JOSE
//!   algorithm, then each vector is checked with `Backend::verify`, and again inside several
//!   `Backend::verify_batch` batches whose every result must equal the single result;
//! - whole-JWS files: the group's key (a JWK or a JWKS) becomes a `KeySet`, and each compact JWS
//!   goes through `policy::verify_jws` with every algorithm allowed and default limits.
//!
//! `valid` must verify, `invalid` must be rejected, `acceptable` may go either way (counted).
//! The few vectors whose label a strict verifier cannot honour are listed in [`OVERRIDES`],
//! each with what we assert instead and why. Anything else that disagrees fails the test.
//!
//! Run with `cargo test --test wycheproof -- --nocapture` to see the per-file counts.

// A test reports a broken assumption about the vector files by panicking; `expect` with a
// message says which one. (The workspace warns on `expect_used` for library code.)
#![allow(clippy::expect_used)]

mod engines;
mod venv;

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use verdict::crypto::{AwsLcBackend, Backend, PreparedKey, VerifyJob};
use verdict::jose::jwk::{jwk_from_members, parse_jwks};
use verdict::jose::{Algorithm, KeyMaterial, Limits, Reject, b64};
use verdict::keys::KeySet;
use verdict::policy::{self, TokenPolicy};

// ---------------------------------------------------------------------------------------------
// The table: file -> JOSE algorithm -> kind. One #[test] per row.
// ---------------------------------------------------------------------------------------------

/// Which JOSE algorithm a file's vectors are verified under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoseAlg {
    /// Every vector uses this one algorithm (the key is prepared for it alone).
    One(Algorithm),
    /// Whole JWS strings: the algorithm comes from each token's header, all are allowed, and
    /// the key (with its own `alg` pin, if any) decides what it may verify.
    FromHeader,
}

/// How a file's vectors are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `msg`/`sig` (hex) against the group's public key JWK.
    Signature,
    /// `msg`/`tag` (hex) with a per-vector hex `key` (HMAC).
    Mac,
    /// Compact JWS strings; the group's `private` is one JWK (verified with its public part).
    Jws,
    /// Compact JWS strings; the group's `private` is a JWKS.
    Jwks,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct FileSpec {
    file: &'static str,
    alg: JoseAlg,
    kind: Kind,
}

macro_rules! wycheproof_files {
    ($( $test:ident: $file:literal => $alg:expr, $kind:ident; )+) => {
        /// Every vendored vector file, its JOSE algorithm and how it is run.
        const FILES: &[FileSpec] = &[
            $( FileSpec { file: $file, alg: $alg, kind: Kind::$kind }, )+
        ];
        $(
            #[test]
            fn $test() {
                run(&FileSpec { file: $file, alg: $alg, kind: Kind::$kind });
            }
        )+
    };
}

wycheproof_files! {
    rsa_signature_2048_sha256: "rsa_signature_2048_sha256_test.json" => JoseAlg::One(Algorithm::RS256), Signature;
    rsa_signature_3072_sha256: "rsa_signature_3072_sha256_test.json" => JoseAlg::One(Algorithm::RS256), Signature;
    rsa_signature_4096_sha256: "rsa_signature_4096_sha256_test.json" => JoseAlg::One(Algorithm::RS256), Signature;
    rsa_signature_2048_sha384: "rsa_signature_2048_sha384_test.json" => JoseAlg::One(Algorithm::RS384), Signature;
    rsa_signature_2048_sha512: "rsa_signature_2048_sha512_test.json" => JoseAlg::One(Algorithm::RS512), Signature;
    rsa_pss_2048_sha256_mgf1_32: "rsa_pss_2048_sha256_mgf1_32_test.json" => JoseAlg::One(Algorithm::PS256), Signature;
    rsa_pss_2048_sha384_mgf1_48: "rsa_pss_2048_sha384_mgf1_48_test.json" => JoseAlg::One(Algorithm::PS384), Signature;
    rsa_pss_4096_sha512_mgf1_64: "rsa_pss_4096_sha512_mgf1_64_test.json" => JoseAlg::One(Algorithm::PS512), Signature;
    ecdsa_secp256r1_sha256_p1363: "ecdsa_secp256r1_sha256_p1363_test.json" => JoseAlg::One(Algorithm::ES256), Signature;
    ecdsa_secp384r1_sha384_p1363: "ecdsa_secp384r1_sha384_p1363_test.json" => JoseAlg::One(Algorithm::ES384), Signature;
    ecdsa_secp521r1_sha512_p1363: "ecdsa_secp521r1_sha512_p1363_test.json" => JoseAlg::One(Algorithm::ES512), Signature;
    ecdsa_secp256k1_sha256_p1363: "ecdsa_secp256k1_sha256_p1363_test.json" => JoseAlg::One(Algorithm::ES256K), Signature;
    ed25519: "ed25519_test.json" => JoseAlg::One(Algorithm::EdDSA), Signature;
    hmac_sha256: "hmac_sha256_test.json" => JoseAlg::One(Algorithm::HS256), Mac;
    hmac_sha384: "hmac_sha384_test.json" => JoseAlg::One(Algorithm::HS384), Mac;
    hmac_sha512: "hmac_sha512_test.json" => JoseAlg::One(Algorithm::HS512), Mac;
    json_web_signature: "json_web_signature_test.json" => JoseAlg::FromHeader, Jws;
    json_web_key: "json_web_key_test.json" => JoseAlg::FromHeader, Jwks;
}

// ---------------------------------------------------------------------------------------------
// Overrides: vectors whose label is contradictory or impossible for a strict verifier.
// ---------------------------------------------------------------------------------------------

/// What the suite asserts for an overridden vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assert {
    /// It must verify.
    Accept,
    /// It must be rejected, with a reason containing this text (a `Reject` code, or the
    /// key-loading error).
    Reject(&'static str),
}

/// Checked mechanically before an override is applied, so an override cannot outlive the
/// defect it documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// The vector's `jws` is byte-identical to the `jws` of this other tcId in the same file.
    SameJwsAs(u64),
    /// The vector's `jws` contains this text.
    JwsContains(&'static str),
    /// The group's key has this member with exactly this JSON value.
    KeyMember(&'static str, &'static str),
    /// The group's JWKS key at this index is skipped by the JWK parser with an error whose
    /// text contains this.
    JwksKeySkipped(usize, &'static str),
}

/// One overridden vector.
#[derive(Debug, Clone, Copy)]
struct Override {
    file: &'static str,
    tc_id: u64,
    assert: Assert,
    evidence: Evidence,
    reason: &'static str,
}

const JWS_FILE: &str = "json_web_signature_test.json";
const JWK_FILE: &str = "json_web_key_test.json";

/// Every override in the suite. Each must be used (its vector exists) and must disagree with
/// the vector's label; otherwise the test fails, so stale entries cannot accumulate.
const OVERRIDES: &[Override] = &[
    Override {
        file: JWS_FILE,
        tc_id: 367,
        assert: Assert::Accept,
        evidence: Evidence::SameJwsAs(357),
        reason: "labelled invalid (\"invalidBase64Padding\"), but the jws is byte-identical to \
                 tcId 357 (\"ValidMac\", labelled valid): the padding mutation the comment \
                 names is absent from the data, and one input cannot have two answers",
    },
    Override {
        file: JWS_FILE,
        tc_id: 370,
        assert: Assert::Accept,
        evidence: Evidence::SameJwsAs(357),
        reason: "labelled invalid (\"invalidBase64PaddingInPayload\"), but the jws is \
                 byte-identical to tcId 357 (\"ValidMac\", labelled valid): the mutation is \
                 absent from the data, and one input cannot have two answers",
    },
    Override {
        file: JWS_FILE,
        tc_id: 372,
        assert: Assert::Reject("bad_base64"),
        evidence: Evidence::JwsContains("J?9."),
        reason: "labelled valid (\"InvalidCharacterInsertedInHeader\"), but a '?' is inserted \
                 into the base64url header: '?' is outside the base64url alphabet (RFC 7515 \
                 §2), and the MAC covers the exact signing input, which now differs from the \
                 one tcId 357's MAC was computed over; a strict parser must refuse it",
    },
    Override {
        file: JWS_FILE,
        tc_id: 373,
        assert: Assert::Reject("bad_base64"),
        evidence: Evidence::JwsContains("VGVzdA?."),
        reason: "labelled valid (\"InvalidCharacterInsertedInPayload\"), but a '?' is inserted \
                 into the base64url payload: outside the base64url alphabet (RFC 7515 §2), and \
                 the MAC over the altered signing input cannot match; a strict parser must \
                 refuse it",
    },
    Override {
        file: JWS_FILE,
        tc_id: 346,
        assert: Assert::Reject("algorithm_not_allowed"),
        evidence: Evidence::KeyMember("alg", "\"PS256\""),
        reason: "labelled valid, but the token is RFC 7520 Figure 20, whose header says PS384, \
                 while the group's key pins \"alg\":\"PS256\" (the same upstream key is right \
                 for RFC 7520 §4.2 only without that pin). A key's alg restricts what it \
                 verifies (RFC 7517 §4.4; DESIGN: the algorithm comes from the key), so a \
                 PS256-only key must not verify a PS384 token",
    },
    Override {
        file: JWS_FILE,
        tc_id: 350,
        assert: Assert::Reject("algorithm_not_allowed"),
        evidence: Evidence::KeyMember("alg", "\"PS256\""),
        reason: "labelled valid, but as tcId 346: an RFC 7520 Figure 20 PS384 token against a \
                 key pinned to \"alg\":\"PS256\"; a pinned key must not verify another \
                 algorithm (RFC 7517 §4.4)",
    },
    Override {
        file: JWS_FILE,
        tc_id: 349,
        assert: Assert::Reject("not for signature verification"),
        evidence: Evidence::KeyMember("key_ops", "[\"sign, verify\"]"),
        reason: "labelled valid, but the group's key has \"key_ops\":[\"sign, verify\"]: ONE \
                 string that is not a registered operation, so the key does not permit \
                 \"verify\" (RFC 7517 §4.3); its sibling groups (tcId 350, 351) spell it \
                 [\"sign\",\"verify\"]. Honouring a malformed key_ops would mean guessing",
    },
    Override {
        file: JWK_FILE,
        tc_id: 4,
        assert: Assert::Accept,
        evidence: Evidence::JwksKeySkipped(1, "\"k\" is malformed"),
        reason: "labelled invalid (DuplicateKid), but the set's second \"kid-aes-sign\" key has \
                 k = \"...Bingge\": its last character leaves non-zero unused bits, which is not \
                 canonical base64url (RFC 7515 §2, RFC 4648 §3.5), so the strict JWK parser skips \
                 that key and the set holds ONE key for the kid, the one that signed the token. \
                 The duplicate-kid rule the vector means is asserted by the test \
                 duplicate_kid_is_ambiguous_once_both_keys_are_canonical (same set, second k \
                 re-encoded canonically: verify_jws answers ambiguous_key)",
    },
];

fn find_override(file: &str, tc_id: u64) -> Option<&'static Override> {
    OVERRIDES
        .iter()
        .find(|o| o.file == file && o.tc_id == tc_id)
}

// ---------------------------------------------------------------------------------------------
// Skip reasons (each counted and printed).
// ---------------------------------------------------------------------------------------------

/// HMAC groups with truncated tags.
const SKIP_TRUNCATED_TAG: &str = "HMAC tag shorter than the hash output: JWS (RFC 7518 §3.2) \
                                  only uses the full-length tag";
/// HMAC vectors whose key is shorter than the hash, when `Backend::prepare` refuses them.
const SKIP_SHORT_KEY: &str = "HMAC key shorter than the hash output: Backend::prepare refuses \
                              it (RFC 7518 §3.2 requires a key at least as long as the hash; \
                              json_web_key_test covers the JWK-layer refusal)";

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/wycheproof")
}

fn load(file: &str) -> Value {
    let path = data_dir().join(file);
    let text = std::fs::read(&path).expect("vendored Wycheproof file is readable");
    serde_json::from_slice(&text).expect("vendored Wycheproof file is JSON")
}

fn groups(doc: &Value) -> &[Value] {
    doc.get("testGroups")
        .and_then(Value::as_array)
        .expect("file has a testGroups array")
}

fn tests(group: &Value) -> &[Value] {
    group
        .get("tests")
        .and_then(Value::as_array)
        .expect("group has a tests array")
}

fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value
        .get(name)
        .and_then(Value::as_str)
        .expect("string field present")
}

fn hex_field(value: &Value, name: &str) -> Vec<u8> {
    hex::decode(str_field(value, name)).expect("hex field decodes")
}

fn tc_id(test: &Value) -> u64 {
    test.get("tcId")
        .and_then(Value::as_u64)
        .expect("test has a numeric tcId")
}

/// A vector's expected result, as labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Valid,
    Invalid,
    Acceptable,
}

fn label(test: &Value) -> Label {
    match str_field(test, "result") {
        "valid" => Label::Valid,
        "invalid" => Label::Invalid,
        "acceptable" => Label::Acceptable,
        other => panic!("unknown result label {other:?}"),
    }
}

/// What verification answered: `Err` carries the reject code or the key-loading error.
type Outcome = Result<(), String>;

fn outcome_of(result: Result<(), Reject>) -> Outcome {
    result.map_err(|reason| reason.code().to_owned())
}

/// Private JWK members (RFC 7518 §6.3.2 for RSA, §6.2.2 and RFC 8037 §2 for EC/OKP `d`). The
/// verifier only ever gets the public part; for `oct` the key is `k`, which stays.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth"];

fn public_part(jwk: &Map<String, Value>) -> Map<String, Value> {
    let mut public = jwk.clone();
    for name in PRIVATE_MEMBERS {
        public.remove(*name);
    }
    public
}

/// An EC JWK built from a group's `publicKey.uncompressed` point, for the few ECDSA groups
/// (the "r = x mod n" edge cases) that ship no `publicKeyJwk`.
fn ec_jwk_from_uncompressed(public_key: &Value) -> Map<String, Value> {
    let crv = match str_field(public_key, "curve") {
        "secp256r1" => "P-256",
        "secp384r1" => "P-384",
        "secp521r1" => "P-521",
        "secp256k1" => "secp256k1",
        other => panic!("unexpected curve {other}"),
    };
    let point = hex_field(public_key, "uncompressed");
    let (tag, coordinates) = point.split_first().expect("non-empty point");
    assert_eq!(*tag, 0x04, "uncompressed point encoding");
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    let jwk = serde_json::json!({
        "kty": "EC",
        "crv": crv,
        "x": b64::encode(x),
        "y": b64::encode(y),
    });
    jwk.as_object().expect("built an object").clone()
}

// ---------------------------------------------------------------------------------------------
// Per-file report.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Report {
    file: &'static str,
    declared_tests: u64,
    vectors: usize,
    valid_total: usize,
    valid_passed: usize,
    invalid_total: usize,
    invalid_rejected: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    skipped: BTreeMap<&'static str, usize>,
    overridden: Vec<String>,
    overrides_used: Vec<u64>,
    reject_reasons: BTreeMap<String, usize>,
    batch_results: usize,
    acceptable: Vec<String>,
    derived_key_groups: usize,
    derived_key_vectors: usize,
    failures: Vec<String>,
}

impl Report {
    fn new(file: &'static str, doc: &Value) -> Report {
        Report {
            file,
            declared_tests: doc
                .get("numberOfTests")
                .and_then(Value::as_u64)
                .expect("numberOfTests"),
            ..Report::default()
        }
    }

    fn fail(&mut self, message: String) {
        self.failures.push(message);
    }

    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    /// Records one vector's outcome against its label, or against its override.
    fn record(&mut self, tc_id: u64, label: Label, comment: &str, outcome: &Outcome) {
        self.vectors += 1;
        if let Err(why) = outcome {
            *self.reject_reasons.entry(why.clone()).or_default() += 1;
        }
        if let Some(over) = find_override(self.file, tc_id) {
            self.overrides_used.push(tc_id);
            let label_agrees = matches!(
                (label, over.assert),
                (Label::Valid, Assert::Accept) | (Label::Invalid, Assert::Reject(_))
            );
            if label_agrees || label == Label::Acceptable {
                self.fail(format!(
                    "tcId {tc_id}: override asserts {:?} but the label is {label:?}: stale \
                     override, remove it",
                    over.assert
                ));
            }
            let holds = match (over.assert, outcome) {
                (Assert::Accept, Ok(())) => true,
                (Assert::Reject(needle), Err(why)) => why.contains(needle),
                _ => false,
            };
            if !holds {
                self.fail(format!(
                    "tcId {tc_id} ({comment}): override asserts {:?}, got {outcome:?}",
                    over.assert
                ));
            }
            self.overridden.push(format!(
                "tcId {tc_id}: labelled {label:?}, asserted {:?}: {}",
                over.assert, over.reason
            ));
            return;
        }
        match (label, outcome) {
            (Label::Valid, Ok(())) => {
                self.valid_total += 1;
                self.valid_passed += 1;
            }
            (Label::Valid, Err(why)) => {
                self.valid_total += 1;
                self.fail(format!(
                    "tcId {tc_id} ({comment}): valid vector rejected: {why}"
                ));
            }
            (Label::Invalid, Err(_)) => {
                self.invalid_total += 1;
                self.invalid_rejected += 1;
            }
            (Label::Invalid, Ok(())) => {
                self.invalid_total += 1;
                self.fail(format!("tcId {tc_id} ({comment}): invalid vector ACCEPTED"));
            }
            (Label::Acceptable, Ok(())) => {
                self.acceptable_accepted += 1;
                self.acceptable
                    .push(format!("tcId {tc_id} ({comment}): accepted"));
            }
            (Label::Acceptable, Err(why)) => {
                self.acceptable_rejected += 1;
                self.acceptable
                    .push(format!("tcId {tc_id} ({comment}): rejected ({why})"));
            }
        }
    }

    /// Final checks, the printed counts, and the verdict.
    fn finish(mut self, spec: &FileSpec) {
        let file = self.file;
        for over in OVERRIDES.iter().filter(|o| o.file == file) {
            if !self.overrides_used.contains(&over.tc_id) {
                self.fail(format!(
                    "override for tcId {} matches no vector in the file",
                    over.tc_id
                ));
            }
        }
        let skipped: usize = self.skipped.values().sum();
        let seen = (self.vectors + skipped) as u64;
        if seen != self.declared_tests {
            self.fail(format!(
                "saw {seen} vectors (run + skipped) but the file declares {}",
                self.declared_tests
            ));
        }

        let mut out = String::new();
        let alg = match spec.alg {
            JoseAlg::One(alg) => alg.name().to_owned(),
            JoseAlg::FromHeader => "alg from each header, all allowed".to_owned(),
        };
        let _ = writeln!(
            out,
            "== wycheproof {} ({alg}; {:?}): {} vectors",
            self.file, spec.kind, self.declared_tests
        );
        let _ = writeln!(
            out,
            "   valid passed        {:>4} / {}",
            self.valid_passed, self.valid_total
        );
        let _ = writeln!(
            out,
            "   invalid rejected    {:>4} / {}",
            self.invalid_rejected, self.invalid_total
        );
        let _ = writeln!(
            out,
            "   acceptable          {:>4} accepted, {} rejected",
            self.acceptable_accepted, self.acceptable_rejected
        );
        for line in &self.acceptable {
            let _ = writeln!(out, "       {line}");
        }
        let _ = writeln!(out, "   skipped             {skipped:>4}");
        for (reason, count) in &self.skipped {
            let _ = writeln!(out, "       {count:>4} x {reason}");
        }
        let _ = writeln!(out, "   overridden          {:>4}", self.overridden.len());
        for line in &self.overridden {
            let _ = writeln!(out, "       {line}");
        }
        if self.batch_results > 0 {
            let _ = writeln!(
                out,
                "   verify_batch        {:>4} batch results compared with single verification",
                self.batch_results
            );
        }
        if matches!(spec.kind, Kind::Jws | Kind::Jwks) {
            let _ = writeln!(out, "   rejections by reason:");
            for (reason, count) in &self.reject_reasons {
                let _ = writeln!(out, "       {count:>4} x {reason}");
            }
        }
        if self.derived_key_groups > 0 {
            let _ = writeln!(
                out,
                "   note: {} group(s) ({} vectors) ship no publicKeyJwk; their key went to the \
                 JWK parser as an EC JWK built from publicKey.uncompressed",
                self.derived_key_groups, self.derived_key_vectors
            );
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "   FAILURES: {}", self.failures.len());
        }
        println!("{out}");

        assert!(
            self.failures.is_empty(),
            "{}: {} failure(s):\n  {}",
            self.file,
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Runners.
// ---------------------------------------------------------------------------------------------

/// The engines every vector runs on (DESIGN: every backend must pass every vector; a new engine
/// joins this list). The default AWS-LC engine, and the same engine batching Ed25519 from two
/// signatures up, so that the dalek batch path (src/crypto/ed25519_batch.rs) runs even for the
/// smallest batches. The first is the primary: its answers are the ones recorded; every other
/// engine must give the same answers.
///
/// Then OpenSSL 3 on its default provider (always), and Intel crypto_mb (`tests/engines`) when
/// it runs on this machine (it must on a CPU with AVX-512 IFMA; elsewhere the run prints why it
/// did not).
fn backends() -> Vec<(&'static str, Box<dyn Backend>)> {
    let mut list: Vec<(&'static str, Box<dyn Backend>)> = vec![
        (
            "aws-lc (default threshold)",
            Box::new(AwsLcBackend::default()),
        ),
        (
            "aws-lc (ed25519 batch threshold 2)",
            Box::new(AwsLcBackend::with_ed25519_batch_threshold(2)),
        ),
    ];
    list.push(("openssl", Box::new(engines::openssl())));
    if let Some(engine) = engines::crypto_mb() {
        list.push(("crypto-mb", Box::new(engine)));
    }
    list
}

fn run(spec: &FileSpec) {
    let doc = load(spec.file);
    let mut report = Report::new(spec.file, &doc);
    match (spec.kind, spec.alg) {
        (Kind::Signature | Kind::Mac, JoseAlg::One(alg)) => run_raw(spec, alg, &doc, &mut report),
        (Kind::Jws | Kind::Jwks, JoseAlg::FromHeader) => run_jws(spec, &doc, &mut report),
        _ => panic!("table row {spec:?}: kind and algorithm do not fit together"),
    }
    report.finish(spec);
}

/// Key material and the algorithm it is prepared for.
struct Material {
    material: KeyMaterial,
    alg: Algorithm,
}

/// One raw-crypto vector.
struct RawVector {
    tc_id: u64,
    label: Label,
    comment: String,
    /// Index into the materials, or why the group's key was refused before preparation.
    key: Result<usize, String>,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

/// Parses a signature group's key the way a key set would: its JWK through the JOSE layer,
/// then checked usable for the file's algorithm.
fn signature_group_key(
    group: &Value,
    alg: Algorithm,
    report: &mut Report,
) -> Result<KeyMaterial, String> {
    let members = match group.get("publicKeyJwk").or_else(|| group.get("keyJwk")) {
        Some(jwk) => public_part(jwk.as_object().expect("the group JWK is an object")),
        None => {
            report.derived_key_groups += 1;
            report.derived_key_vectors += tests(group).len();
            ec_jwk_from_uncompressed(group.get("publicKey").expect("group has publicKey"))
        }
    };
    let jwk = jwk_from_members(&members).map_err(|e| format!("JWK refused: {e}"))?;
    if !jwk.usable_algorithms(&[alg]).any(|usable| usable == alg) {
        return Err(format!("JWK not usable for {alg}"));
    }
    Ok(jwk.material)
}

fn run_raw(spec: &FileSpec, alg: Algorithm, doc: &Value, report: &mut Report) {
    let mut materials: Vec<Material> = Vec::new();
    let mut vectors: Vec<RawVector> = Vec::new();
    for group in groups(doc) {
        match spec.kind {
            Kind::Signature => {
                let key = signature_group_key(group, alg, report).map(|material| {
                    materials.push(Material { material, alg });
                    materials.len() - 1
                });
                for test in tests(group) {
                    vectors.push(RawVector {
                        tc_id: tc_id(test),
                        label: label(test),
                        comment: str_field(test, "comment").to_owned(),
                        key: key.clone(),
                        msg: hex_field(test, "msg"),
                        sig: hex_field(test, "sig"),
                    });
                }
            }
            Kind::Mac => {
                let tag_bits = group
                    .get("tagSize")
                    .and_then(Value::as_u64)
                    .expect("tagSize");
                if tag_bits < (alg.hash_len() * 8) as u64 {
                    // JWS never truncates HMAC tags: skip the whole group.
                    for _ in tests(group) {
                        report.skip(SKIP_TRUNCATED_TAG);
                    }
                    continue;
                }
                for test in tests(group) {
                    // No JWK in MAC files: the hex key is the `oct` key's `k`.
                    materials.push(Material {
                        material: KeyMaterial::Oct {
                            k: hex_field(test, "key"),
                        },
                        alg,
                    });
                    vectors.push(RawVector {
                        tc_id: tc_id(test),
                        label: label(test),
                        comment: str_field(test, "comment").to_owned(),
                        key: Ok(materials.len() - 1),
                        msg: hex_field(test, "msg"),
                        sig: hex_field(test, "tag"),
                    });
                }
            }
            Kind::Jws | Kind::Jwks => unreachable!("run_raw only runs raw files"),
        }
    }

    // `None` = skipped (a short HMAC key that prepare refused).
    let mut primary: Option<Vec<Option<Outcome>>> = None;
    for (name, backend) in backends() {
        let prepared: Vec<Result<PreparedKey, String>> = materials
            .iter()
            .map(|m| {
                backend
                    .prepare(&m.material, m.alg)
                    .map_err(|e| format!("prepare refused the key: {e}"))
            })
            .collect();
        if name == "crypto-mb" || name == "openssl" {
            let served = prepared
                .iter()
                .flatten()
                .filter(|key| backend.key_engine(key) == name)
                .count();
            println!(
                "{}: {name} verifies {served} of {} prepared keys itself (the rest: aws-lc-rs)",
                spec.file,
                prepared.iter().flatten().count()
            );
            let offered = if name == "openssl" {
                !alg.is_symmetric()
            } else {
                matches!(
                    alg,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                        | Algorithm::ES256
                        | Algorithm::ES384
                        | Algorithm::EdDSA
                )
            };
            assert!(
                !offered || served > 0,
                "{}: {name} serves {alg} but took none of the file's keys",
                spec.file
            );
        }

        // Single verification.
        let mut singles: Vec<Option<Outcome>> = Vec::with_capacity(vectors.len());
        for vector in &vectors {
            let single = match &vector.key {
                Err(why) => Some(Err(why.clone())),
                Ok(index) => {
                    let material = materials.get(*index).expect("material index");
                    match prepared.get(*index).expect("prepared index") {
                        Ok(key) => Some(outcome_of(backend.verify(key, &vector.msg, &vector.sig))),
                        Err(why) => match &material.material {
                            KeyMaterial::Oct { k } if k.len() < material.alg.hash_len() => None,
                            KeyMaterial::Oct { .. } => {
                                report.fail(format!(
                                    "{name}: tcId {}: {why} although it is as long as the hash",
                                    vector.tc_id
                                ));
                                Some(Err(why.clone()))
                            }
                            _ => Some(Err(why.clone())),
                        },
                    }
                }
            };
            singles.push(single);
        }
        match &primary {
            None => {
                for (vector, single) in vectors.iter().zip(&singles) {
                    match single {
                        None => report.skip(SKIP_SHORT_KEY),
                        Some(outcome) => {
                            report.record(vector.tc_id, vector.label, &vector.comment, outcome)
                        }
                    }
                }
            }
            Some(first) => {
                for ((vector, a), b) in vectors.iter().zip(first).zip(&singles) {
                    if a != b {
                        report.fail(format!(
                            "{name}: tcId {}: single verification {b:?} differs from the \
                             primary engine's {a:?}",
                            vector.tc_id
                        ));
                    }
                }
            }
        }

        // Batches. Only vectors with a prepared key can be batched.
        let jobs: Vec<(usize, VerifyJob<'_>)> = vectors
            .iter()
            .enumerate()
            .filter_map(|(index, vector)| {
                let key = vector.key.as_ref().ok()?;
                let key = prepared.get(*key)?.as_ref().ok()?;
                Some((
                    index,
                    VerifyJob {
                        key,
                        message: &vector.msg,
                        signature: &vector.sig,
                    },
                ))
            })
            .collect();
        // Known-good signatures: labelled valid, not overridden, and verified singly.
        let goods: Vec<(usize, VerifyJob<'_>)> = jobs
            .iter()
            .filter(|(index, _)| {
                let vector = vectors.get(*index).expect("vector index");
                vector.label == Label::Valid
                    && find_override(spec.file, vector.tc_id).is_none()
                    && matches!(singles.get(*index), Some(Some(Ok(()))))
            })
            .copied()
            .collect();
        let mut check = |what: &str, batch: &[(usize, VerifyJob<'_>)]| {
            check_batch(
                name,
                backend.as_ref(),
                what,
                batch,
                &vectors,
                &singles,
                report,
            );
        };

        // 1. Every vector of the file in one batch (valid and invalid mixed).
        check("whole file", &jobs);
        // 2. Only known-good signatures: the path where a batch answers "all valid".
        check("known-good only", &goods);
        // 3. Each vector beside a known-good signature from the same file.
        if let Some(good) = goods.first() {
            for job in &jobs {
                check("pair with a known-good", &[*good, *job]);
            }
        }
        // 4. Ed25519: each vector in a batch of 16 (15 known-good + it), above both engines'
        //    thresholds, so the dalek batch equation runs with it inside.
        if alg == Algorithm::EdDSA {
            assert!(
                !goods.is_empty(),
                "no known-good Ed25519 signature to batch with"
            );
            for job in &jobs {
                let mut batch: Vec<(usize, VerifyJob<'_>)> =
                    goods.iter().cycle().take(15).copied().collect();
                batch.push(*job);
                check("16 with 15 known-good", &batch);
            }
        }
        if primary.is_none() {
            primary = Some(singles);
        }
    }
}

/// Runs one batch and compares each answer with the single verification of the same vector.
fn check_batch(
    engine: &str,
    backend: &dyn Backend,
    what: &str,
    batch: &[(usize, VerifyJob<'_>)],
    vectors: &[RawVector],
    singles: &[Option<Outcome>],
    report: &mut Report,
) {
    let jobs: Vec<VerifyJob<'_>> = batch.iter().map(|(_, job)| *job).collect();
    let mut results = Vec::new();
    backend.verify_batch(&jobs, &mut results);
    if results.len() != jobs.len() {
        report.fail(format!(
            "{engine} {what}: {} results for {} jobs",
            results.len(),
            jobs.len()
        ));
        return;
    }
    for ((index, _), result) in batch.iter().zip(results) {
        let single = singles.get(*index).cloned().flatten();
        let batched = outcome_of(result);
        if single.as_ref() != Some(&batched) {
            let tc = vectors.get(*index).map_or(0, |v| v.tc_id);
            report.fail(format!(
                "{engine} {what}: tcId {tc}: batch says {batched:?}, single says {single:?}"
            ));
        }
        report.batch_results += 1;
    }
}

/// A rejection code, followed by why the key set skipped keys (if it did), so the counts show
/// which key rule refused each `json_web_key_test` vector.
fn with_skipped_keys(reason: Reject, keys: &KeySet) -> String {
    let mut text = reason.code().to_owned();
    for skipped in keys.skipped() {
        let _ = write!(text, " (key {} skipped: {})", skipped.index, skipped.reason);
    }
    text
}

fn check_evidence(
    over: &Override,
    token: &str,
    key: &Value,
    tokens: &BTreeMap<u64, String>,
    report: &mut Report,
) {
    let holds = match over.evidence {
        Evidence::SameJwsAs(other) => tokens.get(&other).is_some_and(|t| t == token),
        Evidence::JwsContains(text) => token.contains(text),
        Evidence::KeyMember(name, json) => key
            .get(name)
            .is_some_and(|v| serde_json::from_str::<Value>(json).is_ok_and(|want| *v == want)),
        Evidence::JwksKeySkipped(index, text) => {
            let bytes = serde_json::to_vec(key).expect("serialize the JWKS");
            parse_jwks(&bytes).is_ok_and(|parsed| {
                parsed
                    .skipped
                    .iter()
                    .any(|(i, _, why)| *i == index && why.to_string().contains(text))
            })
        }
    };
    if !holds {
        report.fail(format!(
            "tcId {}: the evidence for its override no longer holds ({:?})",
            over.tc_id, over.evidence
        ));
    }
}

fn run_jws(spec: &FileSpec, doc: &Value, report: &mut Report) {
    let all = Algorithm::ALL;
    let limits = Limits::default();
    // The same allow-list and limits as verify_jws, for the split pipeline used to batch.
    let split_policy = TokenPolicy {
        algorithms: all.to_vec(),
        limits,
        ..TokenPolicy::default()
    };
    let tokens: BTreeMap<u64, String> = groups(doc)
        .iter()
        .flat_map(tests)
        .map(|test| (tc_id(test), str_field(test, "jws").to_owned()))
        .collect();

    let mut primary: BTreeMap<u64, Outcome> = BTreeMap::new();
    for (engine_index, (name, backend)) in backends().into_iter().enumerate() {
        for group in groups(doc) {
            let key = group.get("private").expect("group has a private key");
            let keys: Result<KeySet, String> = match spec.kind {
                Kind::Jws => {
                    let members = public_part(key.as_object().expect("private JWK is an object"));
                    jwk_from_members(&members)
                        .map_err(|e| format!("JWK refused: {e}"))
                        .and_then(|jwk| {
                            KeySet::from_jwk(&jwk, &all, backend.as_ref())
                                .map_err(|e| format!("key refused: {e}"))
                        })
                }
                Kind::Jwks => {
                    let bytes = serde_json::to_vec(key).expect("serialize the JWKS");
                    KeySet::from_jwks(&bytes, &all, backend.as_ref())
                        .map_err(|e| format!("key set refused: {e}"))
                }
                Kind::Signature | Kind::Mac => unreachable!("run_jws only runs JWS files"),
            };

            for test in tests(group) {
                let id = tc_id(test);
                let token = str_field(test, "jws");
                let outcome = match &keys {
                    Err(why) => Err(why.clone()),
                    Ok(keys) => {
                        policy::verify_jws(token.as_bytes(), &all, &limits, keys, backend.as_ref())
                            .map(|_| ())
                            .map_err(|reason| with_skipped_keys(reason, keys))
                    }
                };
                if engine_index == 0 {
                    if let Some(over) = find_override(spec.file, id) {
                        check_evidence(over, token, key, &tokens, report);
                    }
                    report.record(id, label(test), str_field(test, "comment"), &outcome);
                    primary.insert(id, outcome);
                } else if primary.get(&id) != Some(&outcome) {
                    report.fail(format!(
                        "{name}: tcId {id}: {outcome:?} differs from the primary engine's {:?}",
                        primary.get(&id)
                    ));
                }
            }

            // The same tokens through the split pipeline (policy::begin, then a batch): every
            // batch answer must equal single verification and verify_jws's answer.
            let Ok(keys) = &keys else { continue };
            let pending: Vec<(u64, _)> = tests(group)
                .iter()
                .filter_map(|test| {
                    let token = str_field(test, "jws").as_bytes();
                    policy::begin(token, &split_policy, keys)
                        .ok()
                        .map(|p| (tc_id(test), p))
                })
                .collect();
            let jobs: Vec<VerifyJob<'_>> = pending.iter().map(|(_, p)| p.job()).collect();
            let mut results = Vec::new();
            backend.verify_batch(&jobs, &mut results);
            if results.len() != jobs.len() {
                report.fail(format!(
                    "{name}: batch returned the wrong number of results"
                ));
                continue;
            }
            for (((id, _), job), batched) in pending.iter().zip(&jobs).zip(results) {
                let single = backend
                    .verify(job.key, job.message, job.signature)
                    .map_err(|reason| with_skipped_keys(reason, keys));
                let batched = batched.map_err(|reason| with_skipped_keys(reason, keys));
                if batched != single || primary.get(id) != Some(&single) {
                    report.fail(format!(
                        "{name}: tcId {id}: batch {batched:?}, single {single:?}, verify_jws {:?}",
                        primary.get(id)
                    ));
                }
                report.batch_results += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table itself.
// ---------------------------------------------------------------------------------------------

#[test]
fn table_covers_every_vendored_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir())
        .expect("tests/data/wycheproof exists")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = FILES
        .iter()
        .map(|spec| spec.file.to_owned())
        .chain(["LICENSE".to_owned(), "SOURCE.md".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(on_disk, expected, "every vendored file has exactly one row");
    for over in OVERRIDES {
        assert!(
            FILES.iter().any(|spec| spec.file == over.file),
            "override for {} names a file outside the table",
            over.file
        );
    }
}

/// The intent of json_web_key_test tcId 4 (see its override): two usable keys under one `kid`
/// must make the choice ambiguous. The vendored set's second key is refused only for its
/// non-canonical base64url; re-encoded canonically, the set must answer `ambiguous_key`.
#[test]
fn duplicate_kid_is_ambiguous_once_both_keys_are_canonical() {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    // Lenient decoding (non-zero trailing bits allowed) recovers the bytes the authors meant.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let doc = load(JWK_FILE);
    let group = groups(&doc)
        .iter()
        .find(|g| tests(g).iter().any(|t| tc_id(t) == 4))
        .expect("the group of tcId 4");
    let mut jwks = group.get("private").expect("private JWKS").clone();
    let second = jwks
        .get_mut("keys")
        .and_then(Value::as_array_mut)
        .and_then(|keys| keys.get_mut(1))
        .and_then(Value::as_object_mut)
        .expect("a second key");
    let k = second
        .get("k")
        .and_then(Value::as_str)
        .expect("k")
        .to_owned();
    assert!(b64::decode(k.as_bytes()).is_none(), "k is not canonical");
    let bytes = LENIENT.decode(&k).expect("k decodes leniently");
    second.insert("k".to_owned(), Value::String(b64::encode(&bytes)));

    let backend = AwsLcBackend::default();
    let keys = KeySet::from_jwks(
        &serde_json::to_vec(&jwks).expect("serialize"),
        &Algorithm::ALL,
        &backend,
    )
    .expect("the repaired set loads");
    assert_eq!(keys.len(), 2, "both keys load once canonical");
    let token = tests(group)
        .iter()
        .find(|t| tc_id(t) == 4)
        .map(|t| str_field(t, "jws"))
        .expect("tcId 4");
    let answer = policy::verify_jws(
        token.as_bytes(),
        &Algorithm::ALL,
        &Limits::default(),
        &keys,
        &backend,
    );
    assert_eq!(answer.err(), Some(Reject::AmbiguousKey));
}
