//! Signature verification engines.
//!
//! Like rustls' crypto providers, a [`Backend`] is a plain set of capabilities: turn validated
//! key material into a [`PreparedKey`] once, then verify against it on the hot path, one at a
//! time or as a batch. One module per engine; the same test suites run against every engine.

pub mod aws_lc;
mod aws_lc_rsa;
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

    /// The key's batch form when it is an Ed25519 key that may join a batch (canonical, not of
    /// small order, no torsion component); `None` for every other key.
    pub fn ed25519_batch_key(&self) -> Option<Ed25519BatchKey> {
        match &self.inner {
            Prepared::Ed25519 {
                batch: Some(key), ..
            } => Some(Ed25519BatchKey(*key)),
            _ => None,
        }
    }
}

/// An Ed25519 key in the form batches use: owned and cheap to copy, so signatures from many
/// requests (each holding its own key-set snapshot) can be checked together.
#[derive(Clone, Copy)]
pub struct Ed25519BatchKey(ed25519_dalek::VerifyingKey);

impl fmt::Debug for Ed25519BatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ed25519BatchKey").finish_non_exhaustive()
    }
}

/// Checks `(key, message, signature)` Ed25519 triples as one batch: true when every signature
/// is valid. False means "check them one by one with [`Backend::verify`]": at least one is
/// invalid, or not in a form a batch accepts. Same equation and the same documented residual as
/// [`Backend::verify_batch`].
pub fn verify_ed25519_batch(jobs: &[(Ed25519BatchKey, &[u8], &[u8])]) -> bool {
    let jobs: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(index, (key, message, signature))| (index, &key.0, *message, *signature))
        .collect();
    ed25519_batch::verify_all(&jobs)
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
    /// this engine verifies such keys faster several at a time and answers each job of a batch
    /// on its own; `None` (the default): verify alone.
    fn batch_class(&self, key: &PreparedKey) -> Option<u32> {
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
