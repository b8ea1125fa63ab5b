//! Ed25519 batch verification with ed25519-dalek.
//!
//! A batch answers "all valid" or "at least one invalid"; on the latter the caller verifies
//! each signature alone. To keep a batch's "all valid" in line with single verification
//! (AWS-LC, RFC 8032 cofactorless), only encodings single verification could accept enter a
//! batch: canonical `R` and `A` encodings, canonical `s` (dalek checks it), and no small-order
//! `R` or `A`. The one remaining difference (an `R` with a torsion component passing the
//! randomised batch equation) can only be produced with the private key, so it never helps a
//! forger.

use ed25519_dalek::{Signature, VerifyingKey};

/// p = 2^255 - 19, little-endian.
const FIELD_PRIME_LE: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// True when the y coordinate (sign bit masked) is below p, i.e. the encoding is canonical.
fn is_canonical_point_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    if let Some(top) = y.last_mut() {
        *top &= 0x7f;
    }
    // Compare little-endian numbers from the most significant byte.
    for (a, b) in y.iter().rev().zip(FIELD_PRIME_LE.iter().rev()) {
        if a != b {
            return a < b;
        }
    }
    false
}

/// The dalek key used for batches, when the encoding is canonical and not of small order.
pub(crate) fn batch_key(x: &[u8; 32]) -> Option<VerifyingKey> {
    if !is_canonical_point_encoding(x) {
        return None;
    }
    let key = VerifyingKey::from_bytes(x).ok()?;
    (!key.is_weak()).then_some(key)
}

/// Whether a signature may join a batch: canonical R encoding whose point is not small order.
fn batchable_signature(signature: &[u8]) -> Option<Signature> {
    let bytes: &[u8; 64] = signature.try_into().ok()?;
    let r: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    if !is_canonical_point_encoding(&r) {
        return None;
    }
    // A small-order R is exactly a weak "verifying key" encoding.
    let r_point = VerifyingKey::from_bytes(&r).ok()?;
    if r_point.is_weak() {
        return None;
    }
    Some(Signature::from_bytes(bytes))
}

/// Verifies all `(index, key, message, signature)` jobs at once. False means "verify them one
/// by one": at least one is invalid or not batchable.
pub(crate) fn verify_all(jobs: &[(usize, &VerifyingKey, &[u8], &[u8])]) -> bool {
    let mut messages = Vec::with_capacity(jobs.len());
    let mut signatures = Vec::with_capacity(jobs.len());
    let mut keys = Vec::with_capacity(jobs.len());
    for (_, key, message, signature) in jobs {
        let Some(signature) = batchable_signature(signature) else {
            return false;
        };
        messages.push(*message);
        signatures.push(signature);
        keys.push(**key);
    }
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_bounds() {
        let mut p = FIELD_PRIME_LE;
        assert!(
            !is_canonical_point_encoding(&p),
            "p itself is non-canonical"
        );
        p[0] = 0xec;
        assert!(is_canonical_point_encoding(&p), "p - 1 is canonical");
        let mut with_sign = p;
        with_sign[31] |= 0x80;
        assert!(
            is_canonical_point_encoding(&with_sign),
            "sign bit is ignored"
        );
        assert!(!is_canonical_point_encoding(&[0xff; 32]));
    }
}
