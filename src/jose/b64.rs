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
use std::mem::MaybeUninit;

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

/// Decodes strictly into uninitialised memory holding at least [`decoded_len`] bytes (so a
/// stack buffer needs no zeroing); returns the decoded bytes, `None` on any deviation or when
/// `out` is too short.
pub fn decode_to_uninit<'o>(input: &[u8], out: &'o mut [MaybeUninit<u8>]) -> Option<&'o [u8]> {
    if out.len() < decoded_len(input.len()) {
        return None;
    }
    FAST.decode(input, base64_simd::Out::from_uninit_slice(out))
        .ok()
        .map(|decoded| &*decoded)
}

/// Decodes strictly, appending to `out` (no zeroing of the new bytes); false on any deviation.
pub fn decode_append(input: &[u8], out: &mut Vec<u8>) -> bool {
    FAST.decode_append(input, out).is_ok()
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
        let mut uninit = [MaybeUninit::<u8>::uninit(); 3];
        assert_eq!(decode_to_uninit(b"Zm9v", &mut uninit), Some(&b"foo"[..]));
        assert_eq!(decode_to_uninit(b"Zm9vYg", &mut uninit), None, "too short");
        let mut appended = b"x".to_vec();
        assert!(decode_append(b"Zm9v", &mut appended) && decode_append(b"Zm8", &mut appended));
        assert_eq!(appended, b"xfoofo");
        assert!(
            !decode_append(b"Zm9", &mut appended),
            "non-canonical trailing bits"
        );
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
