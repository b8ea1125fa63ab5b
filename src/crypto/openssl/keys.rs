//! Keys in OpenSSL's form, made once when a key set loads: an `EVP_PKEY` and, for RSA and
//! ECDSA, a verify context set up with the padding and digest (copied for each verification);
//! and the conversion of JOSE's ECDSA `r || s` into the DER OpenSSL verifies.

use super::Context;
use super::ffi::{self, PkeyCtx};
use crate::jose::{Algorithm, Curve, KeyMaterial};
use ::openssl::bn::BigNum;
use ::openssl::ec::{EcGroup, EcKey};
use ::openssl::md::Md;
use ::openssl::nid::Nid;
use ::openssl::pkey::{PKey, Public};
use ::openssl::rsa::{Padding, Rsa};
use ::openssl::sign::RsaPssSaltlen;
use aws_lc_rs::digest;
use std::sync::Arc;

/// Which part of OpenSSL runs an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The provider fetched from verdict's library context with its property query.
    Provider,
    /// The legacy ENGINE (`openssl_engine`), through OpenSSL's legacy key path.
    Engine,
}

/// One answer from OpenSSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// It verified.
    Verified,
    /// It did not.
    Bad,
    /// OpenSSL failed (not a verdict on the signature): aws-lc-rs answers instead.
    EngineError,
}

/// A key in OpenSSL's form.
pub(crate) struct OsslKey {
    op: Op,
    /// Last, so it is dropped after the key: the key's algorithms belong to its providers.
    context: Arc<Context>,
}

enum Op {
    /// RSA or ECDSA: verified over a digest (computed with aws-lc-rs) by a copy of `template`.
    Digest {
        template: PkeyCtx,
        hash: &'static digest::Algorithm,
        form: SignatureForm,
    },
    /// Ed25519: a one-shot `EVP_DigestVerify` over the whole message.
    Ed25519 { key: PKey<Public> },
}

#[derive(Clone, Copy)]
enum SignatureForm {
    /// PKCS#1 v1.5 or PSS: the signature is exactly as long as the modulus (OpenSSL's PSS path
    /// would take a shorter one; aws-lc-rs does not, and neither does verdict).
    Rsa { len: usize },
    /// JOSE `r || s`, each `coordinate_len` bytes, turned into DER.
    Ecdsa { coordinate_len: usize },
}

fn hash_of(alg: Algorithm) -> Option<(&'static digest::Algorithm, &'static ::openssl::md::MdRef)> {
    Some(match alg {
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 | Algorithm::ES256K => {
            (&digest::SHA256, Md::sha256())
        }
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => (&digest::SHA384, Md::sha384()),
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::ES512 => (&digest::SHA512, Md::sha512()),
        _ => return None,
    })
}

fn curve_nid(curve: Curve) -> Nid {
    match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
        Curve::Secp256k1 => Nid::SECP256K1,
    }
}

/// The DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410), before its 32 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn openssl_error(error: ::openssl::error::ErrorStack) -> String {
    error.to_string()
}

impl OsslKey {
    /// The key `material` for `alg` (already validated by aws-lc-rs), run by `route`.
    pub(crate) fn new(
        context: &Arc<Context>,
        material: &KeyMaterial,
        alg: Algorithm,
        route: Route,
    ) -> Result<OsslKey, String> {
        let propq = context.propq.as_deref();
        let libctx = &context.libctx;
        let decode = |der: &[u8]| ffi::decode_public_key(der, libctx, propq);
        let (key, form) = match material {
            KeyMaterial::Ed25519 { x } if alg == Algorithm::EdDSA => {
                let mut der = ED25519_SPKI_PREFIX.to_vec();
                der.extend_from_slice(x);
                let key = decode(&der)?;
                return Ok(OsslKey {
                    op: Op::Ed25519 { key },
                    context: Arc::clone(context),
                });
            }
            KeyMaterial::Rsa { n, e } => {
                let rsa = Rsa::from_public_components(
                    BigNum::from_slice(n).map_err(openssl_error)?,
                    BigNum::from_slice(e).map_err(openssl_error)?,
                )
                .map_err(openssl_error)?;
                let len = rsa.size() as usize;
                let key = match route {
                    // RSA_new attached the default ENGINE's RSA method: the legacy path.
                    Route::Engine => PKey::from_rsa(rsa).map_err(openssl_error)?,
                    Route::Provider => decode(&rsa.public_key_to_der().map_err(openssl_error)?)?,
                };
                (key, SignatureForm::Rsa { len })
            }
            KeyMaterial::Ec { curve, x, y } => {
                let group = EcGroup::from_curve_name(curve_nid(*curve)).map_err(openssl_error)?;
                let ec = EcKey::from_public_key_affine_coordinates(
                    &group,
                    &*BigNum::from_slice(x).map_err(openssl_error)?,
                    &*BigNum::from_slice(y).map_err(openssl_error)?,
                )
                .map_err(openssl_error)?;
                let key = match route {
                    Route::Engine => PKey::from_ec_key(ec).map_err(openssl_error)?,
                    Route::Provider => decode(&ec.public_key_to_der().map_err(openssl_error)?)?,
                };
                let coordinate_len = curve.coordinate_len();
                (key, SignatureForm::Ecdsa { coordinate_len })
            }
            _ => return Err(format!("{alg} is not an OpenSSL signature algorithm here")),
        };
        let (hash, md) = hash_of(alg).ok_or_else(|| format!("{alg}: no digest"))?;
        let template = match route {
            Route::Provider => PkeyCtx::new(&key, Some(libctx), propq)?,
            Route::Engine => PkeyCtx::new(&key, None, None)?,
        };
        let mut template = template;
        template
            .with_typed(|ctx| -> Result<(), ::openssl::error::ErrorStack> {
                ctx.verify_init()?;
                match (form, alg) {
                    (
                        SignatureForm::Rsa { .. },
                        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512,
                    ) => {
                        ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
                        ctx.set_signature_md(md)?;
                        ctx.set_rsa_mgf1_md(md)?;
                        // RFC 7518 §3.5: the salt is as long as the hash (aws-lc-rs's rule too).
                        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                    }
                    (SignatureForm::Rsa { .. }, _) => {
                        ctx.set_rsa_padding(Padding::PKCS1)?;
                        ctx.set_signature_md(md)
                    }
                    (SignatureForm::Ecdsa { .. }, _) => ctx.set_signature_md(md),
                }
            })
            .map_err(openssl_error)?;
        Ok(OsslKey {
            op: Op::Digest {
                template,
                hash,
                form,
            },
            context: Arc::clone(context),
        })
    }

    /// Verifies one signature through OpenSSL, with the name of the provider that ran it (for
    /// the probe; `None` on the legacy ENGINE path).
    pub(crate) fn verify_named(
        &self,
        message: &[u8],
        signature: &[u8],
    ) -> (Answer, Option<String>) {
        let (result, provider) = match &self.op {
            Op::Digest {
                template,
                hash,
                form,
            } => {
                let mut der = [0u8; MAX_ECDSA_DER];
                let signature: &[u8] = match form {
                    SignatureForm::Rsa { len } => {
                        if signature.len() != *len {
                            return (Answer::Bad, None);
                        }
                        signature
                    }
                    SignatureForm::Ecdsa { coordinate_len } => {
                        match jose_to_der(signature, *coordinate_len, &mut der) {
                            Some(encoded) => encoded,
                            None => return (Answer::Bad, None),
                        }
                    }
                };
                let Some(mut ctx) = template.copy() else {
                    ffi::clear_errors();
                    return (Answer::EngineError, None);
                };
                let digest = digest::digest(hash, message);
                (ctx.verify(digest.as_ref(), signature), ctx.provider_name())
            }
            Op::Ed25519 { key } => {
                if signature.len() != 64 {
                    return (Answer::Bad, None);
                }
                ffi::digest_verify_oneshot(
                    key,
                    &self.context.libctx,
                    self.context.propq.as_deref(),
                    message,
                    signature,
                )
            }
        };
        let answer = match result {
            1 => Answer::Verified,
            0 => Answer::Bad,
            _ => Answer::EngineError,
        };
        if answer != Answer::Verified {
            ffi::clear_errors();
        }
        (answer, provider)
    }

    /// Verifies one signature through OpenSSL.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Answer {
        self.verify_named(message, signature).0
    }
}

/// The longest DER ECDSA signature verdict builds (P-521: two 66-byte integers, each with a
/// possible leading zero, plus headers).
pub(crate) const MAX_ECDSA_DER: usize = 3 + 2 * (2 + 67);

/// JOSE's fixed-width `r || s` as a DER `ECDSA-Sig-Value` in `out`; `None` when the length is
/// not exactly twice `coordinate_len`.
pub(crate) fn jose_to_der<'a>(
    signature: &[u8],
    coordinate_len: usize,
    out: &'a mut [u8; MAX_ECDSA_DER],
) -> Option<&'a [u8]> {
    if signature.len() != 2 * coordinate_len {
        return None;
    }
    let (r, s) = signature.split_at(coordinate_len);
    let mut body = [0u8; MAX_ECDSA_DER];
    let mut len = 0;
    for integer in [r, s] {
        let first = integer
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(integer.len().saturating_sub(1));
        let digits = integer.get(first..)?;
        let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
        let content = digits.len() + usize::from(pad);
        *body.get_mut(len)? = 0x02;
        *body.get_mut(len + 1)? = u8::try_from(content).ok()?;
        len += 2;
        if pad {
            *body.get_mut(len)? = 0;
            len += 1;
        }
        body.get_mut(len..len + digits.len())?
            .copy_from_slice(digits);
        len += digits.len();
    }
    let header: &[u8] = if len < 0x80 {
        &[0x30, len as u8]
    } else {
        &[0x30, 0x81, len as u8]
    };
    let total = header.len() + len;
    out.get_mut(..header.len())?.copy_from_slice(header);
    out.get_mut(header.len()..total)?
        .copy_from_slice(body.get(..len)?);
    out.get(..total)
}
