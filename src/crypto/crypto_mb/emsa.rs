//! RSA signature encodings checked on the output of the public operation: EMSA-PKCS1-v1_5
//! (RFC 8017 §9.2, RS256/384/512) and EMSA-PSS with MGF1 over the same hash and a salt as long
//! as the hash (RFC 8017 §9.1.2, RFC 7518 §3.5, PS256/384/512).
//!
//! Constant structure: every check runs over the whole encoded message and folds into one
//! accumulator, with no early exit that depends on the data (the inputs are public, but a
//! verifier whose timing depends on where a forgery first differs is a needless oracle). Only
//! lengths, which are public properties of the key, decide branches.

#![forbid(unsafe_code)]

use aws_lc_rs::digest;

/// The encoding a key's algorithm uses, and its hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheme {
    pub(crate) hash: &'static digest::Algorithm,
    pub(crate) pss: bool,
}

/// DER `DigestInfo` prefixes (RFC 8017 §9.2, note 1).
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_PREFIX: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_PREFIX: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

fn digest_info_prefix(hash: &'static digest::Algorithm) -> Option<&'static [u8; 19]> {
    match hash.output_len() {
        32 => Some(&SHA256_PREFIX),
        48 => Some(&SHA384_PREFIX),
        64 => Some(&SHA512_PREFIX),
        _ => None,
    }
}

/// Whether `em` (the public operation's output, exactly as long as the modulus of `mod_bits`
/// bits) is a valid encoding of `message_hash` under `scheme`.
pub(crate) fn verify(scheme: Scheme, em: &[u8], mod_bits: usize, message_hash: &[u8]) -> bool {
    if message_hash.len() != scheme.hash.output_len() || em.len() != mod_bits.div_ceil(8) {
        return false;
    }
    if scheme.pss {
        pss(scheme.hash, em, mod_bits, message_hash)
    } else {
        pkcs1(scheme.hash, em, message_hash)
    }
}

/// EMSA-PKCS1-v1_5: `em` must equal `00 01 FF..FF 00 || DigestInfo || H` byte for byte.
fn pkcs1(hash: &'static digest::Algorithm, em: &[u8], message_hash: &[u8]) -> bool {
    let Some(prefix) = digest_info_prefix(hash) else {
        return false;
    };
    let t_len = prefix.len() + message_hash.len();
    // RFC 8017 §9.2 step 3: at least eight 0xFF bytes.
    if em.len() < t_len + 11 {
        return false;
    }
    let ps_end = em.len() - t_len - 1;
    let mut diff = 0u8;
    for (i, byte) in em.iter().enumerate() {
        let expected = if i == 0 {
            0x00
        } else if i == 1 {
            0x01
        } else if i < ps_end {
            0xff
        } else if i == ps_end {
            0x00
        } else if i < ps_end + 1 + prefix.len() {
            prefix.get(i - ps_end - 1).copied().unwrap_or(0)
        } else {
            message_hash
                .get(i - ps_end - 1 - prefix.len())
                .copied()
                .unwrap_or(0)
        };
        diff |= byte ^ expected;
    }
    diff == 0
}

/// MGF1 (RFC 8017 B.2.1) of `seed`, XORed into `out`.
fn mgf1_xor(hash: &'static digest::Algorithm, seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(hash.output_len()).enumerate() {
        let mut context = digest::Context::new(hash);
        context.update(seed);
        context.update(&(counter as u32).to_be_bytes());
        let mask = context.finish();
        for (byte, m) in chunk.iter_mut().zip(mask.as_ref()) {
            *byte ^= m;
        }
    }
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with `sLen = hLen` and `emBits = modBits - 1`.
fn pss(hash: &'static digest::Algorithm, em_full: &[u8], mod_bits: usize, m_hash: &[u8]) -> bool {
    let h_len = hash.output_len();
    let s_len = h_len;
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    // The public operation's output has k = ceil(modBits / 8) bytes; EM is its last emLen
    // bytes, and any leading byte beyond them (modBits ≡ 1 mod 8) must be zero.
    let Some(lead) = em_full.len().checked_sub(em_len) else {
        return false;
    };
    let (leading, em) = em_full.split_at(lead);
    // Step 3.
    if em_len < h_len + s_len + 2 {
        return false;
    }
    let mut bad = leading.iter().fold(0u8, |acc, b| acc | b);
    // Step 4: the rightmost octet is 0xbc.
    bad |= em.last().copied().unwrap_or(0) ^ 0xbc;
    // Step 5.
    let db_len = em_len - h_len - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let h = rest.get(..h_len).unwrap_or(&[]);
    // Step 6: the leftmost 8*emLen - emBits bits of maskedDB are zero.
    let top_bits = 8 * em_len - em_bits;
    let top_mask = !(0xffu8 >> top_bits);
    bad |= masked_db.first().copied().unwrap_or(0) & top_mask;
    // Steps 7-9.
    let mut db = masked_db.to_vec();
    mgf1_xor(hash, h, &mut db);
    if let Some(first) = db.first_mut() {
        *first &= !top_mask;
    }
    // Step 10: DB = PS (zeros) || 0x01 || salt.
    let ps_len = em_len - h_len - s_len - 2;
    for (i, byte) in db.iter().enumerate() {
        if i < ps_len {
            bad |= byte;
        } else if i == ps_len {
            bad |= byte ^ 0x01;
        }
    }
    // Steps 11-14: H' = Hash(00 x 8 || mHash || salt) must equal H.
    let salt = db.get(db_len - s_len..).unwrap_or(&[]);
    let mut context = digest::Context::new(hash);
    context.update(&[0u8; 8]);
    context.update(m_hash);
    context.update(salt);
    let h_prime = context.finish();
    if h.len() != h_len || h_prime.as_ref().len() != h_len {
        return false;
    }
    for (a, b) in h.iter().zip(h_prime.as_ref()) {
        bad |= a ^ b;
    }
    bad == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(hash: &'static digest::Algorithm, pss: bool) -> Scheme {
        Scheme { hash, pss }
    }

    /// A hand-built PKCS#1 v1.5 encoding passes; each byte changed fails.
    #[test]
    fn pkcs1_accepts_exactly_the_encoding() {
        let hash = digest::digest(&digest::SHA256, b"m");
        let mut em = vec![0x00, 0x01];
        em.resize(256 - 19 - 32 - 1, 0xff);
        em.push(0x00);
        em.extend_from_slice(&SHA256_PREFIX);
        em.extend_from_slice(hash.as_ref());
        assert_eq!(em.len(), 256);
        let s = scheme(&digest::SHA256, false);
        assert!(verify(s, &em, 2048, hash.as_ref()));
        for i in 0..em.len() {
            let mut bad = em.clone();
            bad[i] ^= 0x01;
            assert!(!verify(s, &bad, 2048, hash.as_ref()), "byte {i}");
        }
        assert!(!verify(
            scheme(&digest::SHA384, false),
            &em,
            2048,
            hash.as_ref()
        ));
        assert!(!verify(s, &em[1..], 2048, hash.as_ref()));
    }
}
