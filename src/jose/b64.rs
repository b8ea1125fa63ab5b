//! Strict base64url without padding (RFC 7515 §2): no `=`, no whitespace, no other alphabet,
//! and the unused low bits of the last character must be zero, so every value has exactly one
//! encoding.
//!
//! Decoding uses `base64-simd` (AVX2/SSE4.1/NEON chosen at run time; this is a third of the
//! parse cost otherwise). [`STRICT`] from the `base64` crate encodes, and the tests hold the
//! two decoders to the same answers.

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

const FAST: base64_simd::Base64 = base64_simd::URL_SAFE_NO_PAD;

/// Decodes strictly; `None` on any deviation.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    FAST.decode_to_vec(input).ok()
}

/// Decodes strictly into `out`, which must hold [`decoded_len`] bytes; returns the decoded
/// prefix, `None` on any deviation or when `out` is too short.
pub fn decode_to_slice<'o>(input: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    if out.len() < decoded_len(input.len()) {
        return None;
    }
    FAST.decode(input, base64_simd::Out::from_slice(out))
        .ok()
        .map(|decoded| &*decoded)
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
        let mut buf = [0u8; 3];
        assert_eq!(decode_to_slice(b"Zm9v", &mut buf), Some(&b"foo"[..]));
        assert_eq!(decode_to_slice(b"Zm9vYg", &mut buf), None, "too short");
    }

    proptest::proptest! {
        /// The SIMD decoder and the `base64` crate's strict engine agree on every input:
        /// arbitrary strings over the alphabet plus the characters strictness is about.
        #[test]
        fn fast_decoder_agrees_with_strict_engine(
            input in "[A-Za-z0-9_\\-+/= .\n]{0,80}",
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            proptest::prop_assert_eq!(decode(input.as_bytes()), STRICT.decode(input.as_bytes()).ok());
            let encoded = encode(&bytes);
            proptest::prop_assert_eq!(decode(encoded.as_bytes()), Some(bytes));
        }
    }
}
