//! Signature verification engines.
//!
//! Like rustls' crypto providers, a [`Backend`] is a plain set of capabilities: turn validated
//! key material into a [`PreparedKey`] once, then verify against it on the hot path, one at a
//! time or as a batch. One module per engine; the same test suites run against every engine.

pub mod aws_lc;
mod aws_lc_rsa;
pub mod cooldown;
pub mod crypto_mb;
mod ed25519_batch;
pub mod openssl;
mod probe_vectors;
pub mod select;

use crate::jose::{Algorithm, KeyMaterial, Reject};
use std::fmt;

pub use aws_lc::AwsLcBackend;
pub use crypto_mb::{CryptoMbBackend, CryptoMbError, CryptoMbOptions, MbFamily};
pub use openssl::{OpensslBackend, OpensslError, OpensslOptions};
pub use select::{EngineChoice, EngineSelection, select};

/// A key ready for verification: parsed once when the key set loads, never per request.
/// Cheap to clone (shared), so a per-core batch can hold keys from several requests' snapshots.
#[derive(Clone)]
pub struct PreparedKey(std::sync::Arc<KeyParts>);

/// What a [`PreparedKey`] holds.
pub struct KeyParts {
    alg: Algorithm,
    inner: Prepared,
    /// The key's forms for the other engines. `inner` is always there too: every engine can
    /// fall back to aws-lc-rs.
    forms: EngineForms,
}

/// A key's forms for engines other than aws-lc-rs, each set only by the engine that serves the
/// key (crypto_mb over an OpenSSL fallback sets both).
#[derive(Default)]
pub(crate) struct EngineForms {
    /// The crypto_mb form, for a family that engine serves.
    mb: Option<crypto_mb::MbKey>,
    /// The OpenSSL form (`PKey` and verify context), for an algorithm that engine serves.
    openssl: Option<Box<openssl::OsslKey>>,
}

impl KeyParts {
    /// The key's crypto_mb form.
    pub(crate) fn mb(&self) -> Option<&crypto_mb::MbKey> {
        self.forms.mb.as_ref()
    }

    /// The key's OpenSSL form.
    pub(crate) fn openssl(&self) -> Option<&openssl::OsslKey> {
        self.forms.openssl.as_deref()
    }
}

impl std::ops::Deref for PreparedKey {
    type Target = KeyParts;
    fn deref(&self) -> &KeyParts {
        &self.0
    }
}

impl PreparedKey {
    fn new(alg: Algorithm, inner: Prepared) -> PreparedKey {
        PreparedKey(std::sync::Arc::new(KeyParts {
            alg,
            inner,
            forms: EngineForms::default(),
        }))
    }

    /// The same key with `add` applied to its engine forms. For a key just prepared (not yet
    /// shared), in place; a shared key is returned as it is.
    fn with_forms(self, add: impl FnOnce(&mut EngineForms)) -> PreparedKey {
        match std::sync::Arc::try_unwrap(self.0) {
            Ok(mut parts) => {
                add(&mut parts.forms);
                PreparedKey(std::sync::Arc::new(parts))
            }
            Err(shared) => PreparedKey(shared),
        }
    }

    /// Whether two handles are the same prepared key.
    pub fn same(&self, other: &PreparedKey) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Engine-specific prepared material. Private so that a key can only be built by a backend.
pub(crate) enum Prepared {
    /// An AWS-LC public key bound to one algorithm (ECDSA).
    Public(aws_lc_rs::signature::ParsedPublicKey),
    /// An AWS-LC RSA key bound to one algorithm (PKCS#1 v1.5 or PSS), verified without the EVP
    /// layer.
    Rsa(aws_lc_rsa::RsaPublicKey),
    /// An HMAC key bound to one hash.
    Hmac(Box<aws_lc_rs::hmac::Key>),
    /// Ed25519: AWS-LC for single verifications, dalek for batches (when the encoding allows).
    Ed25519 {
        single: aws_lc_rs::signature::ParsedPublicKey,
        batch: Option<ed25519_dalek::VerifyingKey>,
    },
}

impl PreparedKey {
    /// The one algorithm this key verifies. It comes from the key and the allow-list, never from
    /// a token header.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// How an engine answers the jobs of one [`Backend::verify_batch`] call of a batch class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAnswers {
    /// Each job is answered on its own (crypto_mb's lanes): a bad signature costs its
    /// neighbours nothing, so bad-signature storms need no pause.
    PerLane,
    /// One equation for the whole batch (dalek's Ed25519 multiscalar check): when it fails, the
    /// engine answers every job by single verification (so one forgery never changes a
    /// neighbour's verdict), which costs the batch's work on top; the runtime pauses batching
    /// of the class after a failure (`runtime::batcher`).
    AllOrNothing,
}

/// The per-core cross-request batch a signature joins (see `runtime::batcher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchClass {
    /// Which batch: signatures of one class on one core are verified together. Unique across
    /// the classes of one backend.
    pub id: u32,
    /// How the engine answers a batch of this class.
    pub answers: BatchAnswers,
    /// Most signatures in one batch (past it, a new batch opens).
    pub max: usize,
}

impl fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// One signature to check.
#[derive(Debug, Clone, Copy)]
pub struct VerifyJob<'a> {
    /// The prepared key (its algorithm decides the scheme).
    pub key: &'a PreparedKey,
    /// The signed bytes (for a JWS, the signing input).
    pub message: &'a [u8],
    /// The signature bytes (for ECDSA, JOSE's fixed-width `r || s`).
    pub signature: &'a [u8],
}

/// Why key material could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The material cannot be used with this algorithm (wrong type, curve or size).
    #[error("key material does not fit {0}")]
    Mismatch(Algorithm),
    /// The engine rejected the key (for EC, the point is not on the curve).
    #[error("the {0} key was rejected by the crypto engine (invalid or not on the curve)")]
    Rejected(Algorithm),
    /// This engine does not implement the algorithm.
    #[error("{0} is not supported by this engine")]
    Unsupported(Algorithm),
}

/// A verification engine.
pub trait Backend: Send + Sync {
    /// A short stable name, for logs and metrics labels.
    fn name(&self) -> &'static str;

    /// Prepares key material for exactly one algorithm.
    fn prepare(&self, material: &KeyMaterial, alg: Algorithm) -> Result<PreparedKey, PrepareError>;

    /// The engine that verifies signatures under `key` (for an engine that hands some keys to
    /// another, such as crypto_mb to aws-lc-rs, the one that really runs). Defaults to
    /// [`Backend::name`].
    fn key_engine(&self, key: &PreparedKey) -> &'static str {
        let _ = key;
        self.name()
    }

    /// Verifies one signature. `Err(Reject::BadSignature)` when it does not verify.
    fn verify(&self, key: &PreparedKey, message: &[u8], signature: &[u8]) -> Result<(), Reject>;

    /// The per-core batch class a signature under `key` joins (see `runtime::batcher`), when
    /// this engine verifies such keys faster several at a time; `None` (the default): verify
    /// alone. [`Backend::verify_batch`] on jobs of one class must give each job the answer
    /// [`Backend::verify`] gives, whatever [`BatchClass::answers`] says.
    fn batch_class(&self, key: &PreparedKey) -> Option<BatchClass> {
        let _ = key;
        None
    }

    /// Verifies many signatures; `results[i]` answers `jobs[i]`. The default is a loop; engines
    /// with real batching override it. Every result must equal what [`Backend::verify`] gives,
    /// with one documented exception for Ed25519 batches: a signature whose `R` carries a
    /// torsion component, which only the private key's holder can make, fails `verify` but may
    /// pass a batch (see `crypto::ed25519_batch`).
    fn verify_batch(&self, jobs: &[VerifyJob<'_>], results: &mut Vec<Result<(), Reject>>) {
        results.clear();
        results.extend(
            jobs.iter()
                .map(|job| self.verify(job.key, job.message, job.signature)),
        );
    }
}

/// The engine used when nothing faster is configured.
pub fn default_backend() -> AwsLcBackend {
    AwsLcBackend::default()
}
