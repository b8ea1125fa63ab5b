//! Ed25519 batch verification on curve25519-dalek's multiscalar multiplication (its AVX-512
//! IFMA or AVX2 backend, chosen at run time).
//!
//! For signatures `(R_i, s_i)` by keys `A_i` on messages `M_i`, with `h_i = SHA-512(R_i || A_i ||
//! M_i) mod l` and fresh random 128-bit `z_i`, the batch holds when
//!
//! `[-Σ z_i s_i] B + Σ z_i R_i + Σ_k [Σ_{i signed by k} z_i h_i] A_k = 0`.
//!
//! This is ed25519-dalek's batch equation (cofactorless, like single verification) with one
//! change that matters for tokens: the terms of signatures made by the same key are summed into
//! one coefficient, so a batch of `n` tokens from one issuer key is a multiscalar
//! multiplication over `n + 2` points instead of `2n + 1`.
//!
//! A batch answers "all valid" or "at least one invalid"; on the latter the caller verifies
//! each signature alone. To keep a batch's "all valid" in line with single verification
//! (AWS-LC, RFC 8032 cofactorless), only encodings single verification could accept enter a
//! batch: canonical `R`, `A` and `s`, no small-order `R` or `A`, and only keys `A` without a
//! torsion component (checked once, when the key is prepared).
//!
//! One difference remains, and it is inherent to batching against a cofactorless single
//! check: an `R` carrying a torsion component `T` (`R = rB + T`) makes the equation off by
//! `z_i T`, which is zero with probability up to 1/2 (when `z_i` is a multiple of `T`'s order).
//! Such a signature fails single verification but passes a batch that often. Only the holder of
//! the private key can make one — it is a signature over the same message by the same key,
//! never a forgery — and ruling it out would cost a scalar multiplication per signature, the
//! price of the whole batch gain. [`crate::crypto::Backend::verify_batch`] documents it.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;

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

/// The dalek key used for batches, when the encoding is canonical and the point is neither of
/// small order nor carrying a torsion component (a key `aB + T` would let honest signatures
/// that single verification rejects pass a batch). Keys outside that are verified one by one.
pub(crate) fn batch_key(x: &[u8; 32]) -> Option<VerifyingKey> {
    if !is_canonical_point_encoding(x) {
        return None;
    }
    let key = VerifyingKey::from_bytes(x).ok()?;
    (!key.is_weak() && key.to_edwards().is_torsion_free()).then_some(key)
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

/// A signature that may join a batch: canonical `R` encoding whose point is not small order and
/// lies on the curve, and canonical `s`.
struct BatchSignature {
    r_bytes: [u8; 32],
    r: EdwardsPoint,
    s: Scalar,
}

fn batchable_signature(signature: &[u8]) -> Option<BatchSignature> {
    let r_bytes: [u8; 32] = signature.get(..32)?.try_into().ok()?;
    let s_bytes: [u8; 32] = signature.get(32..)?.try_into().ok()?;
    if !is_canonical_point_encoding(&r_bytes) {
        return None;
    }
    let mut y = r_bytes;
    if let Some(top) = y.last_mut() {
        *top &= 0x7f;
    }
    if SMALL_ORDER_Y.contains(&y) {
        return None;
    }
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    Some(BatchSignature { r_bytes, r, s })
}

/// `SHA-512(R || A || M) mod l`.
fn challenge(r_bytes: &[u8; 32], key: &VerifyingKey, message: &[u8]) -> Option<Scalar> {
    let mut context = digest::Context::new(&digest::SHA512);
    context.update(r_bytes);
    context.update(key.as_bytes());
    context.update(message);
    let wide: [u8; 64] = context.finish().as_ref().try_into().ok()?;
    Some(Scalar::from_bytes_mod_order_wide(&wide))
}

/// Verifies all `(index, key, message, signature)` jobs at once. False means "verify them one
/// by one": at least one is invalid or not batchable.
pub(crate) fn verify_all(jobs: &[(usize, &VerifyingKey, &[u8], &[u8])]) -> bool {
    verify_all_inner(jobs).unwrap_or(false)
}

fn verify_all_inner(jobs: &[(usize, &VerifyingKey, &[u8], &[u8])]) -> Option<bool> {
    // The z_i must be unpredictable to whoever chose the signatures.
    let mut randomness = vec![0u8; 16 * jobs.len()];
    SystemRandom::new().fill(&mut randomness).ok()?;

    let mut scalars: Vec<Scalar> = Vec::with_capacity(jobs.len() + 2);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(jobs.len() + 2);
    // Slot 0 is B; its coefficient is known only at the end.
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    let mut base_coefficient = Scalar::ZERO;
    // Distinct keys with their summed coefficient; key sets are small, so a linear scan.
    let mut keys: Vec<(&VerifyingKey, Scalar)> = Vec::new();

    for ((_, key, message, signature), z) in jobs.iter().zip(randomness.chunks_exact(16)) {
        let signature = batchable_signature(signature)?;
        let z = Scalar::from(u128::from_le_bytes(z.try_into().ok()?));
        let h = challenge(&signature.r_bytes, key, message)?;
        base_coefficient += z * signature.s;
        scalars.push(z);
        points.push(signature.r);
        let zh = z * h;
        match keys
            .iter_mut()
            .find(|(seen, _)| std::ptr::eq(*seen, *key) || seen.as_bytes() == key.as_bytes())
        {
            Some((_, coefficient)) => *coefficient += zh,
            None => keys.push((key, zh)),
        }
    }
    if let Some(first) = scalars.first_mut() {
        *first = -base_coefficient;
    }
    for (key, coefficient) in keys {
        scalars.push(coefficient);
        points.push(key.to_edwards());
    }
    Some(EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity())
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

    use ed25519_dalek::{Signer, SigningKey};

    /// Keys, messages, signatures, and the signer of each message.
    type Signed = (Vec<VerifyingKey>, Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<usize>);

    /// `count` signed messages, signer `i % keys` for message `i`.
    fn signed(count: usize, keys: u8) -> Signed {
        let signers: Vec<SigningKey> = (1..=keys)
            .map(|k| SigningKey::from_bytes(&[k; 32]))
            .collect();
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut signer_of = Vec::new();
        for i in 0..count {
            let k = i % signers.len();
            let message = format!("token {i}").into_bytes();
            signatures.push(signers[k].sign(&message).to_bytes().to_vec());
            messages.push(message);
            signer_of.push(k);
        }
        (
            signers.iter().map(SigningKey::verifying_key).collect(),
            messages,
            signatures,
            signer_of,
        )
    }

    fn batch(
        keys: &[VerifyingKey],
        messages: &[Vec<u8>],
        signatures: &[Vec<u8>],
        signer_of: &[usize],
    ) -> bool {
        let jobs: Vec<(usize, &VerifyingKey, &[u8], &[u8])> = (0..messages.len())
            .map(|i| {
                (
                    i,
                    &keys[signer_of[i]],
                    messages[i].as_slice(),
                    signatures[i].as_slice(),
                )
            })
            .collect();
        verify_all(&jobs)
    }

    #[test]
    fn same_key_batches_hold_and_catch_every_kind_of_bad_member() {
        for key_count in [1u8, 3] {
            let (keys, mut messages, mut signatures, mut signer_of) = signed(40, key_count);
            assert!(
                batch(&keys, &messages, &signatures, &signer_of),
                "{key_count} keys: valid"
            );

            // Two signatures of the same key swapped: each is valid, for the other message.
            signatures.swap(0, key_count as usize);
            assert!(
                !batch(&keys, &messages, &signatures, &signer_of),
                "swapped signatures"
            );
            signatures.swap(0, key_count as usize);

            // One message changed after signing.
            messages[7].push(b'!');
            assert!(
                !batch(&keys, &messages, &signatures, &signer_of),
                "tampered message"
            );
            messages[7].pop();

            // One signature attributed to another key.
            if key_count > 1 {
                signer_of[5] = (signer_of[5] + 1) % key_count as usize;
                assert!(
                    !batch(&keys, &messages, &signatures, &signer_of),
                    "wrong key"
                );
                signer_of[5] = 5 % key_count as usize;
            }

            // A non-canonical s (s + l) is refused before the equation.
            let mut s = [0u8; 32];
            s.copy_from_slice(&signatures[3][32..]);
            // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
            let l: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut carry = 0u16;
            for (byte, l_byte) in s.iter_mut().zip(l) {
                let sum = u16::from(*byte) + u16::from(l_byte) + carry;
                *byte = sum as u8;
                carry = sum >> 8;
            }
            if carry == 0 {
                signatures[3][32..].copy_from_slice(&s);
                assert!(
                    !batch(&keys, &messages, &signatures, &signer_of),
                    "non-canonical s"
                );
            }
            let (_, m, sg, so) = signed(40, key_count);
            assert!(batch(&keys, &m, &sg, &so), "{key_count} keys: valid again");
        }
    }

    #[test]
    fn keys_with_a_torsion_component_never_batch() {
        let honest = SigningKey::from_bytes(&[9; 32]).verifying_key();
        assert!(batch_key(honest.as_bytes()).is_some());
        // The order-2 point (0, -1): y = p - 1.
        let mut minus_one = FIELD_PRIME_LE;
        minus_one[0] = 0xec;
        let order_two = CompressedEdwardsY(minus_one)
            .decompress()
            .expect("on the curve");
        let mixed = (honest.to_edwards() + order_two).compress().to_bytes();
        assert!(VerifyingKey::from_bytes(&mixed).is_ok_and(|k| !k.is_weak()));
        assert!(
            batch_key(&mixed).is_none(),
            "mixed-order key is kept out of batches"
        );
    }
}
