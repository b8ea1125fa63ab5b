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

/// The y coordinates (little-endian, sign bit clear) of the eight small-order points: 0 and 1
/// (order 4 and 1), p - 1 (order 2), and the two order-8 values. A canonical encoding decodes to
/// a small-order point exactly when its y (sign bit masked) is one of these.
const SMALL_ORDER_Y: [[u8; 32]; 5] = {
    let zero = [0u8; 32];
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = FIELD_PRIME_LE;
    minus_one[0] = 0xec;
    [
        zero,
        one,
        minus_one,
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ]
};

/// Whether a signature may join a batch: canonical R encoding whose point is not small order.
/// R is not decompressed here (dalek decompresses it in the batch; an R off the curve fails the
/// batch and the caller falls back to single verification), which saves one field
/// exponentiation per signature.
fn batchable_signature(signature: &[u8]) -> Option<Signature> {
    let bytes: &[u8; 64] = signature.try_into().ok()?;
    let mut r: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    if !is_canonical_point_encoding(&r) {
        return None;
    }
    if let Some(top) = r.last_mut() {
        *top &= 0x7f;
    }
    if SMALL_ORDER_Y.contains(&r) {
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

    #[test]
    fn small_order_table_matches_dalek() {
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut enc = y;
                enc[31] |= sign;
                let point = VerifyingKey::from_bytes(&enc).expect("small-order points decode");
                assert!(point.is_weak(), "{enc:02x?} is small order");
            }
        }
        // And a few non-small-order encodings are not in the table.
        let base = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert!(!base.is_weak());
        let mut enc = base.to_bytes();
        enc[31] &= 0x7f;
        assert!(!SMALL_ORDER_Y.contains(&enc));
    }
}
