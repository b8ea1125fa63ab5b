//! RSA signatures (RS256/384/512, PS256/384/512) verified by AWS-LC's `RSA_verify` and
//! `RSA_verify_pss_mgf1`, called directly.
//!
//! aws-lc-rs reaches the same functions through the EVP layer, which allocates, initialises and
//! frees a digest context and a key context on every call. Hashing with aws-lc-rs and handing
//! the digest to the RSA functions skips that layer: the modular arithmetic, the padding checks
//! and the key checks are AWS-LC's own, unchanged. On RSA-2048 it is ~2% faster than
//! aws-lc-rs's `ParsedPublicKey::verify_sig`: `cargo bench --bench floor -- RS256` shows both,
//! as the `engine` and `raw` columns (18.05 µs vs 18.42 µs per verify on an AMD EPYC Zen 3,
//! 2026-11-23).
//!
//! This is one of the few modules allowed `unsafe`: every block is an FFI call with its
//! `SAFETY` note.
#![allow(
    unsafe_code,
    reason = "FFI into AWS-LC's RSA functions; each block states why it is sound"
)]

use crate::jose::Algorithm;
use aws_lc_rs::digest;
use aws_lc_sys as ffi;
use std::ptr::{self, NonNull};

/// Smallest modulus accepted (RFC 7518 §3.3 requires 2048 bits).
const MIN_MODULUS_BITS: u32 = 2048;
/// Largest modulus accepted.
const MAX_MODULUS_BITS: u32 = 8192;

/// An AWS-LC `RSA` public key bound to one JWS algorithm.
pub(crate) struct RsaPublicKey {
    rsa: NonNull<ffi::RSA>,
    digest: &'static digest::Algorithm,
    padding: Padding,
}

#[derive(Clone, Copy)]
enum Padding {
    /// RSASSA-PKCS1-v1_5, with the hash's NID (its DigestInfo prefix).
    Pkcs1 { hash_nid: i32 },
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash (RFC 7518 §3.5).
    Pss { md: *const ffi::EVP_MD },
}

// SAFETY: the key is immutable after construction apart from the Montgomery context AWS-LC
// builds lazily on first use, which it does under the key's own lock (`BN_MONT_CTX_set_locked`);
// AWS-LC documents `RSA` objects as usable from several threads at once for such operations, and
// aws-lc-rs shares its own `RSA` keys between threads the same way. `md` points to a static,
// immutable `EVP_MD`.
unsafe impl Send for RsaPublicKey {}
// SAFETY: as for `Send`: verification never needs exclusive access to the key.
unsafe impl Sync for RsaPublicKey {}

impl RsaPublicKey {
    /// The key `(n, e)` (big-endian) for `alg`; `None` when `alg` is not RSA, AWS-LC refuses
    /// the key (`RSA_check_key`), or the modulus is outside 2048–8192 bits (aws-lc-rs's
    /// `RSA_*_2048_8192_*` range, which the EVP path enforced).
    pub(crate) fn new(n: &[u8], e: &[u8], alg: Algorithm) -> Option<Self> {
        let (digest, padding) = match alg {
            Algorithm::RS256 => (&digest::SHA256, Padding::pkcs1(ffi::NID_sha256)),
            Algorithm::RS384 => (&digest::SHA384, Padding::pkcs1(ffi::NID_sha384)),
            Algorithm::RS512 => (&digest::SHA512, Padding::pkcs1(ffi::NID_sha512)),
            // SAFETY: the EVP_sha* functions take no arguments and return static descriptors.
            Algorithm::PS256 => (&digest::SHA256, unsafe { Padding::pss(ffi::EVP_sha256()) }),
            // SAFETY: as above.
            Algorithm::PS384 => (&digest::SHA384, unsafe { Padding::pss(ffi::EVP_sha384()) }),
            // SAFETY: as above.
            Algorithm::PS512 => (&digest::SHA512, unsafe { Padding::pss(ffi::EVP_sha512()) }),
            _ => return None,
        };
        // SAFETY: BN_bin2bn reads exactly `len` bytes from each live slice and returns a new
        // BIGNUM or null. RSA_new_public_key copies `n` and `e` (it does not take them) and
        // returns a checked key or null, so both BIGNUMs are freed here whatever it returned;
        // BN_free accepts null.
        let rsa = unsafe {
            let n = ffi::BN_bin2bn(n.as_ptr(), n.len(), ptr::null_mut());
            let e = ffi::BN_bin2bn(e.as_ptr(), e.len(), ptr::null_mut());
            let rsa = if n.is_null() || e.is_null() {
                ptr::null_mut()
            } else {
                ffi::RSA_new_public_key(n, e)
            };
            ffi::BN_free(n);
            ffi::BN_free(e);
            rsa
        };
        let key = RsaPublicKey {
            rsa: NonNull::new(rsa)?,
            digest,
            padding,
        };
        // SAFETY: reads the modulus size of the valid key just made.
        let bits = unsafe { ffi::RSA_bits(key.rsa.as_ptr()) };
        (MIN_MODULUS_BITS..=MAX_MODULUS_BITS)
            .contains(&bits)
            .then_some(key)
    }

    /// Whether `signature` is a valid signature of `message` under this key and algorithm.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let digest = digest::digest(self.digest, message);
        let digest = digest.as_ref();
        // SAFETY: `self.rsa` is a valid public key owned by `self` until `Drop`, and shared
        // use is sound (see the `Send`/`Sync` notes); the digest and signature pointers are
        // valid for the lengths passed and AWS-LC keeps neither; `md` is a static descriptor
        // and a null MGF1 hash means "the same as `md`".
        let verified = unsafe {
            match self.padding {
                Padding::Pkcs1 { hash_nid } => ffi::RSA_verify(
                    hash_nid,
                    digest.as_ptr(),
                    digest.len(),
                    signature.as_ptr(),
                    signature.len(),
                    self.rsa.as_ptr(),
                ),
                Padding::Pss { md } => ffi::RSA_verify_pss_mgf1(
                    self.rsa.as_ptr(),
                    digest.as_ptr(),
                    digest.len(),
                    md,
                    ptr::null(),
                    ffi::RSA_PSS_SALTLEN_DIGEST,
                    signature.as_ptr(),
                    signature.len(),
                ),
            }
        } == 1;
        if !verified {
            // A refusal leaves an entry in AWS-LC's per-thread error queue; nothing reads it.
            // SAFETY: clears this thread's queue; no arguments.
            unsafe { ffi::ERR_clear_error() };
        }
        verified
    }
}

impl Padding {
    fn pkcs1(hash_nid: i32) -> Self {
        Padding::Pkcs1 { hash_nid }
    }

    fn pss(md: *const ffi::EVP_MD) -> Self {
        Padding::Pss { md }
    }
}

impl Drop for RsaPublicKey {
    fn drop(&mut self) {
        // SAFETY: `self.rsa` came from RSA_new_public_key and is freed exactly once, here.
        unsafe { ffi::RSA_free(self.rsa.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
    use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};

    fn key_pair(size: KeySize) -> (RsaKeyPair, Vec<u8>, Vec<u8>) {
        let pair = RsaKeyPair::generate(size).expect("RSA key generation");
        let PublicKeyComponents { n, e } = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        (pair, n, e)
    }

    fn sign(
        pair: &RsaKeyPair,
        padding: &'static dyn signature::RsaEncoding,
        msg: &[u8],
    ) -> Vec<u8> {
        let mut sig = vec![0u8; pair.public_modulus_len()];
        pair.sign(padding, &SystemRandom::new(), msg, &mut sig)
            .expect("RSA signing");
        sig
    }

    /// Each algorithm accepts its own signatures and refuses the other padding, another hash,
    /// a changed message and a truncated signature.
    #[test]
    fn verifies_exactly_its_own_scheme() {
        let (pair, n, e) = key_pair(KeySize::Rsa2048);
        let message = b"header.payload";
        let cases: [(Algorithm, &'static dyn signature::RsaEncoding); 6] = [
            (Algorithm::RS256, &signature::RSA_PKCS1_SHA256),
            (Algorithm::RS384, &signature::RSA_PKCS1_SHA384),
            (Algorithm::RS512, &signature::RSA_PKCS1_SHA512),
            (Algorithm::PS256, &signature::RSA_PSS_SHA256),
            (Algorithm::PS384, &signature::RSA_PSS_SHA384),
            (Algorithm::PS512, &signature::RSA_PSS_SHA512),
        ];
        let signatures: Vec<Vec<u8>> = cases
            .iter()
            .map(|(_, padding)| sign(&pair, *padding, message))
            .collect();
        for (i, (alg, _)) in cases.iter().enumerate() {
            let key = RsaPublicKey::new(&n, &e, *alg).expect("2048-bit key");
            for (j, sig) in signatures.iter().enumerate() {
                assert_eq!(key.verify(message, sig), i == j, "{alg} on signature {j}");
            }
            let own = &signatures[i];
            assert!(
                !key.verify(b"header.payloaD", own),
                "{alg}: changed message"
            );
            assert!(
                !key.verify(message, &own[..own.len() - 1]),
                "{alg}: truncated"
            );
        }
        assert!(RsaPublicKey::new(&n, &e, Algorithm::ES256).is_none());
        assert!(RsaPublicKey::new(&n, &e, Algorithm::HS256).is_none());
    }

    /// Moduli outside 2048–8192 bits and an even exponent are refused when the key is made.
    #[test]
    fn refuses_keys_outside_the_accepted_range() {
        let (_, n, e) = key_pair(KeySize::Rsa2048);
        assert!(
            RsaPublicKey::new(&n, &[2], Algorithm::RS256).is_none(),
            "even e"
        );
        assert!(
            RsaPublicKey::new(&n[..128], &e, Algorithm::RS256).is_none(),
            "1024 bits"
        );
        let mut large = vec![0xffu8; 1025];
        large[1024] = 0xfd;
        assert!(
            RsaPublicKey::new(&large, &e, Algorithm::RS256).is_none(),
            "8200 bits"
        );
    }

    /// One key verified from several threads at once (the server shares keys between cores),
    /// including its very first use, which builds AWS-LC's cached Montgomery context.
    #[test]
    fn one_key_verifies_on_many_threads_at_once() {
        let (pair, n, e) = key_pair(KeySize::Rsa2048);
        let key = RsaPublicKey::new(&n, &e, Algorithm::RS256).expect("key");
        let good = sign(&pair, &signature::RSA_PKCS1_SHA256, b"m");
        let mut bad = good.clone();
        bad[10] ^= 1;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        assert!(key.verify(b"m", &good));
                        assert!(!key.verify(b"m", &bad));
                    }
                });
            }
        });
    }
}
