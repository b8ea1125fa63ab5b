//! The default engine: AWS-LC for every algorithm (through aws-lc-rs, and for RSA through
//! AWS-LC's RSA functions directly, see `aws_lc_rsa`), with Ed25519 batches verified on
//! curve25519-dalek (whose AVX-512 IFMA backend is compiled in and chosen at run time).

use super::aws_lc_rsa::RsaPublicKey;
use super::ed25519_batch;
use super::{Backend, BatchAnswers, BatchClass, PrepareError, Prepared, PreparedKey, VerifyJob};
use crate::jose::{Algorithm, Curve, KeyMaterial, Reject};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};

/// Below this many Ed25519 signatures in one batch, single verification is faster.
///
/// Measured with `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3
/// ed25519_batch` then `python3 benches/ratios.py` (criterion medians per signature, distinct
/// keys, ~450-byte JWT signing inputs) on an AMD EPYC (Zen 3, 2 vCPUs) with AVX2 but no AVX-512
/// IFMA, so curve25519-dalek runs its AVX2 backend. With the small-order check done by table
/// (no second decompression of R): aws-lc-rs single verification 42.4 µs; dalek batch of 2:
/// 33.1 µs, 4: 25.7 µs, 8: 21.7 µs, 16: 19.7 µs, 128: 18.2 µs (2.33×). A batch of 2 already
/// wins by 1.28×, well outside the run-to-run noise seen before (±10%), so batching starts at 2.
pub const DEFAULT_ED25519_BATCH_THRESHOLD: usize = 2;

/// The cross-request batch class of Ed25519 keys that may join a dalek batch: all-or-nothing
/// answers, up to 128 signatures (past ~64 the per-signature cost stops falling; see
/// BENCHMARKS.md). Its id is distinct from every crypto_mb family's.
pub const ED25519_BATCH_CLASS: BatchClass = BatchClass {
    id: 0x100,
    answers: BatchAnswers::AllOrNothing,
    max: 128,
};

/// An Ed25519 signature: `R || s`.
const ED25519_SIGNATURE_BYTES: usize = 64;

/// AWS-LC engine.
#[derive(Debug, Clone)]
pub struct AwsLcBackend {
    ed25519_batch_threshold: usize,
}

impl Default for AwsLcBackend {
    fn default() -> Self {
        AwsLcBackend {
            ed25519_batch_threshold: DEFAULT_ED25519_BATCH_THRESHOLD,
        }
    }
}

impl AwsLcBackend {
    /// An engine that batches Ed25519 from `threshold` signatures up (`usize::MAX` = never).
    pub fn with_ed25519_batch_threshold(threshold: usize) -> Self {
        AwsLcBackend {
            ed25519_batch_threshold: threshold.max(2),
        }
    }
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn ecdsa_fixed(alg: Algorithm) -> Option<&'static signature::EcdsaVerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
        Algorithm::ES256K => &signature::ECDSA_P256K1_SHA256_FIXED,
        _ => return None,
    })
}

fn hmac_algorithm(alg: Algorithm) -> Option<hmac::Algorithm> {
    Some(match alg {
        Algorithm::HS256 => hmac::HMAC_SHA256,
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => return None,
    })
}

impl Backend for AwsLcBackend {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }

    fn prepare(&self, material: &KeyMaterial, alg: Algorithm) -> Result<PreparedKey, PrepareError> {
        let inner = match material {
            KeyMaterial::Rsa { n, e } => {
                let params = rsa_parameters(alg).ok_or(PrepareError::Mismatch(alg))?;
                // aws-lc-rs validates the key as before; verification then calls AWS-LC's RSA
                // functions directly (see `aws_lc_rsa`).
                RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(params)
                    .map_err(|_| PrepareError::Rejected(alg))?;
                Prepared::Rsa(RsaPublicKey::new(n, e, alg).ok_or(PrepareError::Rejected(alg))?)
            }
            KeyMaterial::Ec { curve, x, y } => {
                let verifier = ecdsa_fixed(alg).ok_or(PrepareError::Mismatch(alg))?;
                if alg.family() != crate::jose::KeyFamily::Ec(*curve) {
                    return Err(PrepareError::Mismatch(alg));
                }
                let mut point = Vec::with_capacity(1 + 2 * Curve::coordinate_len(*curve));
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Prepared::Public(
                    ParsedPublicKey::new(verifier, &point)
                        .map_err(|_| PrepareError::Rejected(alg))?,
                )
            }
            KeyMaterial::Ed25519 { x } => {
                if alg != Algorithm::EdDSA {
                    return Err(PrepareError::Mismatch(alg));
                }
                let single = ParsedPublicKey::new(&signature::ED25519, x)
                    .map_err(|_| PrepareError::Rejected(alg))?;
                Prepared::Ed25519 {
                    single,
                    batch: ed25519_batch::batch_key(x),
                }
            }
            KeyMaterial::Oct { k } => {
                let hmac_alg = hmac_algorithm(alg).ok_or(PrepareError::Mismatch(alg))?;
                if k.len() < alg.hash_len() {
                    return Err(PrepareError::Mismatch(alg));
                }
                Prepared::Hmac(Box::new(hmac::Key::new(hmac_alg, k)))
            }
        };
        Ok(PreparedKey::new(alg, inner))
    }

    #[inline]
    fn verify(&self, key: &PreparedKey, message: &[u8], signature: &[u8]) -> Result<(), Reject> {
        let ok = match &key.inner {
            Prepared::Public(public) => public.verify_sig(message, signature).is_ok(),
            Prepared::Rsa(rsa) => rsa.verify(message, signature),
            Prepared::Ed25519 { single, .. } => single.verify_sig(message, signature).is_ok(),
            // hmac::verify compares in constant time and requires the full tag length.
            Prepared::Hmac(mac_key) => hmac::verify(mac_key, message, signature).is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(Reject::BadSignature)
        }
    }

    fn batch_class(&self, key: &PreparedKey) -> Option<BatchClass> {
        let batches = matches!(&key.inner, Prepared::Ed25519 { batch: Some(_), .. });
        (batches && self.ed25519_batch_threshold <= ED25519_BATCH_CLASS.max)
            .then_some(ED25519_BATCH_CLASS)
    }

    fn verify_batch(&self, jobs: &[VerifyJob<'_>], results: &mut Vec<Result<(), Reject>>) {
        results.clear();
        results.resize(jobs.len(), Err(Reject::BadSignature));
        let mut ed25519_jobs = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            match &job.key.inner {
                // A signature of the wrong size cannot verify: it would only fail its batch.
                Prepared::Ed25519 {
                    batch: Some(batch_key),
                    ..
                } if job.signature.len() == ED25519_SIGNATURE_BYTES => {
                    ed25519_jobs.push((index, batch_key, job.message, job.signature))
                }
                _ => {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = self.verify(job.key, job.message, job.signature);
                    }
                }
            }
        }
        if ed25519_jobs.len() >= self.ed25519_batch_threshold
            && ed25519_batch::verify_all(&ed25519_jobs)
        {
            for (index, ..) in &ed25519_jobs {
                if let Some(slot) = results.get_mut(*index) {
                    *slot = Ok(());
                }
            }
            return;
        }
        // Small batch, or at least one bad signature: answer each one on its own, so a single
        // forgery cannot change the verdict of its neighbours.
        for (index, ..) in &ed25519_jobs {
            if let (Some(slot), Some(job)) = (results.get_mut(*index), jobs.get(*index)) {
                *slot = self.verify(job.key, job.message, job.signature);
            }
        }
    }
}
