//! Strict base64url without padding (RFC 7515 §2): no `=`, no whitespace, no other alphabet,
//! and the unused low bits of the last character must be zero, so every value has exactly one
//! encoding.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The engine: URL-safe alphabet, no padding accepted, non-canonical trailing bits rejected.
pub const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// The decoded length of `encoded_len` base64url characters (upper bound when invalid).
pub const fn decoded_len(encoded_len: usize) -> usize {
    encoded_len / 4 * 3 + (encoded_len % 4) * 3 / 4
}

/// Decodes strictly; `None` on any deviation.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    STRICT.decode(input).ok()
}

/// Decodes strictly into `out` (cleared first); false on any deviation.
pub fn decode_into(input: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    STRICT.decode_vec(input, out).is_ok()
}

/// Encodes without padding.
pub fn encode(input: &[u8]) -> String {
    STRICT.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_padding_whitespace_and_noncanonical_bits() {
        assert_eq!(decode(b"Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decode(b"Zm8").as_deref(), Some(&b"fo"[..]));
        assert!(decode(b"Zm8=").is_none());
        assert!(decode(b"Zm 8").is_none());
        assert!(
            decode(b"Zm+8").is_none(),
            "standard alphabet is not base64url"
        );
        assert!(decode(b"Zm9").is_none(), "non-canonical trailing bits");
        assert!(decode(b"A").is_none(), "impossible length");
        for n in 0..20 {
            assert_eq!(decoded_len(encode(&vec![7u8; n]).len()), n);
        }
    }
}
