//! Bounded compact-JWS parsing (RFC 7515 §7.1).
//!
//! The order is fixed and cheap-first: size caps, shape, header only, then the payload and
//! signature are decoded; nothing in the payload is interpreted here. Claims are parsed only
//! after the signature verifies (see [`crate::jose::claims`]).

use super::alg::Algorithm;
use super::b64;
use super::json::{Shallow, StrictJsonError, walk_object};
use super::reject::Reject;
use std::borrow::Cow;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::Arc;

/// Size caps applied before any decoding. Defaults suit a gateway: a few KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of the whole compact token, in bytes (default 8192).
    pub max_token_bytes: usize,
    /// Maximum decoded header length, in bytes (default 1024).
    pub max_header_bytes: usize,
    /// Maximum decoded payload length, in bytes (default 6144).
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: 8192,
            max_header_bytes: 1024,
            max_payload_bytes: 6144,
        }
    }
}

/// Decoded headers up to this size are parsed from a stack buffer.
const STACK_HEADER_BYTES: usize = 256;

/// Largest signature any supported algorithm produces: RSA-8192 (1024 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 1024;

/// `crit` extensions this parser understands. `b64` is understood only so that `b64: true` can
/// be accepted; `b64: false` is always rejected.
const UNDERSTOOD_CRIT: &[&str] = &["b64"];

/// Header parameters registered by RFC 7515/7516/7519; RFC 7515 §4.1.11 forbids listing them in
/// `crit`.
const REGISTERED_HEADER_NAMES: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc", "zip",
];

/// The JOSE header members the verifier uses. Members such as `jwk`, `jku` and `x5u` are
/// deliberately ignored: keys come only from the provider's configured key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The signature algorithm named by the token.
    pub alg: Algorithm,
    /// The key id, if any.
    pub kid: Option<Arc<str>>,
    /// The media type of the whole token, e.g. `JWT` or `at+jwt`.
    pub typ: Option<Arc<str>>,
}

/// Headers parsed recently on this thread, keyed by their exact base64url text.
///
/// Every token signed by one issuer key usually carries the same header, byte for byte, so a
/// worker parses it once instead of once per token. Parsing is a pure function of those bytes,
/// so a hit answers exactly what parsing would; only headers that parsed are kept. Entries are
/// replaced round robin, so tokens with ever-new headers simply miss (they cost one compare per
/// entry more than no memo), and memory stays bounded: [`HeaderMemo::ENTRIES`] headers of at
/// most [`HeaderMemo::MAX_ENCODED`] bytes per thread.
struct HeaderMemo {
    entries: [Option<(Box<[u8]>, Header)>; HeaderMemo::ENTRIES],
    next: usize,
}

impl HeaderMemo {
    const ENTRIES: usize = 4;
    /// Longer encoded headers are parsed every time (they are not the common case).
    const MAX_ENCODED: usize = 256;

    fn get(&self, encoded: &[u8]) -> Option<Header> {
        self.entries
            .iter()
            .flatten()
            .find(|(key, _)| **key == *encoded)
            .map(|(_, header)| header.clone())
    }

    fn put(&mut self, encoded: &[u8], header: &Header) {
        if encoded.len() > Self::MAX_ENCODED {
            return;
        }
        if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = Some((encoded.into(), header.clone()));
        }
        self.next = (self.next + 1) % Self::ENTRIES;
    }
}

thread_local! {
    static HEADER_MEMO: RefCell<HeaderMemo> = const {
        RefCell::new(HeaderMemo {
            entries: [None, None, None, None],
            next: 0,
        })
    };
}

/// Parses the base64url header `encoded`, answering from this thread's [`HeaderMemo`] when the
/// same bytes were parsed before.
fn decode_header(encoded: &[u8], header_len: usize) -> Result<Header, Reject> {
    let memoizable = encoded.len() <= HeaderMemo::MAX_ENCODED;
    if memoizable && let Some(header) = HEADER_MEMO.with(|memo| memo.borrow().get(encoded)) {
        return Ok(header);
    }
    // Headers are small: decode on the stack unless a raised limit says otherwise.
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_HEADER_BYTES];
    let header = if header_len <= STACK_HEADER_BYTES {
        let bytes = b64::decode_to_uninit(encoded, &mut stack).ok_or(Reject::BadBase64)?;
        parse_header(bytes)?
    } else {
        parse_header(&b64::decode(encoded).ok_or(Reject::BadBase64)?)?
    };
    if memoizable {
        HEADER_MEMO.with(|memo| memo.borrow_mut().put(encoded, &header));
    }
    Ok(header)
}

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    /// The parsed header.
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the exact bytes that were signed.
    pub signing_input: &'a [u8],
    /// The decoded payload followed by the decoded signature: one allocation per token.
    decoded: Vec<u8>,
    /// Where the payload ends in `decoded`.
    payload_len: usize,
}

impl CompactJws<'_> {
    /// The decoded payload (not interpreted).
    pub fn payload(&self) -> &[u8] {
        self.decoded.get(..self.payload_len).unwrap_or(&[])
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        self.decoded.get(self.payload_len..).unwrap_or(&[])
    }

    /// The header and the decoded payload, owned (the signature bytes are dropped).
    pub fn into_parts(self) -> (Header, Vec<u8>) {
        let mut decoded = self.decoded;
        decoded.truncate(self.payload_len);
        (self.header, decoded)
    }
}

/// Splits and decodes a compact JWS within `limits`.
pub fn parse_compact<'a>(token: &'a [u8], limits: &Limits) -> Result<CompactJws<'a>, Reject> {
    if token.len() > limits.max_token_bytes {
        return Err(Reject::TokenTooLarge);
    }
    // Exactly two dots; a third means JWE (four) or garbage. memchr scans a word or a vector at
    // a time, which matters at ~1 KiB per token.
    let first_dot = memchr::memchr(b'.', token).ok_or(Reject::Malformed)?;
    let after_first = token.get(first_dot + 1..).ok_or(Reject::Malformed)?;
    let second_dot = first_dot + 1 + memchr::memchr(b'.', after_first).ok_or(Reject::Malformed)?;
    let signature_b64 = token.get(second_dot + 1..).ok_or(Reject::Malformed)?;
    if memchr::memchr(b'.', signature_b64).is_some() {
        return Err(if memchr::memchr_iter(b'.', signature_b64).count() == 2 {
            Reject::JweUnsupported
        } else {
            Reject::Malformed
        });
    }
    let header_b64 = token.get(..first_dot).ok_or(Reject::Malformed)?;
    let payload_b64 = token
        .get(first_dot + 1..second_dot)
        .ok_or(Reject::Malformed)?;
    let signing_input = token.get(..second_dot).ok_or(Reject::Malformed)?;

    if header_b64.is_empty() {
        return Err(Reject::Malformed);
    }
    let header_len = b64::decoded_len(header_b64.len());
    if header_len > limits.max_header_bytes {
        return Err(Reject::HeaderTooLarge);
    }
    let header = decode_header(header_b64, header_len)?;

    if b64::decoded_len(payload_b64.len()) > limits.max_payload_bytes {
        return Err(Reject::PayloadTooLarge);
    }
    let payload_len = b64::decoded_len(payload_b64.len());
    let signature_len = b64::decoded_len(signature_b64.len());
    if signature_b64.is_empty() || signature_len > MAX_SIGNATURE_BYTES {
        return Err(Reject::Malformed);
    }
    let mut decoded = Vec::with_capacity(payload_len + signature_len);
    if !b64::decode_append(payload_b64, &mut decoded)
        || decoded.len() != payload_len
        || !b64::decode_append(signature_b64, &mut decoded)
    {
        return Err(Reject::BadBase64);
    }

    Ok(CompactJws {
        header,
        signing_input,
        decoded,
        payload_len,
    })
}

/// Parses a decoded JOSE header: one strict pass, reading only the members the verifier uses.
pub fn parse_header(bytes: &[u8]) -> Result<Header, Reject> {
    const WANTED: [&str; 5] = ["alg", "kid", "typ", "b64", "crit"];
    let mut found: [Option<Shallow<'_>>; 5] = Default::default();
    walk_object(bytes, &WANTED, &mut |index, value| {
        if let Some(slot) = found.get_mut(index) {
            *slot = Some(value);
        }
    })
    .map_err(|e| match e {
        StrictJsonError::DuplicateMember => Reject::DuplicateMember,
        StrictJsonError::Invalid => Reject::BadHeader,
    })?;
    let [alg, kid, typ, b64, crit] = found;

    let alg_name = match &alg {
        Some(Shallow::String(name)) => name.as_ref(),
        _ => return Err(Reject::BadHeader),
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Reject::AlgNone);
    }
    let alg = Algorithm::from_name(alg_name).ok_or(Reject::UnsupportedAlgorithm)?;

    let b64_present = b64.is_some();
    match b64 {
        None | Some(Shallow::Bool(true)) => {}
        Some(Shallow::Bool(false)) => return Err(Reject::UnencodedPayload),
        Some(_) => return Err(Reject::BadHeader),
    }
    match crit {
        None => {}
        Some(Shallow::StringArray(names)) if !names.is_empty() => {
            for name in &names {
                let name = name.as_ref();
                // A listed extension must be understood and present in the header.
                let present = name == "b64" && b64_present;
                let understood = UNDERSTOOD_CRIT.contains(&name)
                    && !REGISTERED_HEADER_NAMES.contains(&name)
                    && present;
                if !understood {
                    return Err(Reject::CritUnsupported);
                }
            }
        }
        Some(_) => return Err(Reject::CritUnsupported),
    }
    let optional_string = |value: Option<Shallow<'_>>| -> Result<Option<Arc<str>>, Reject> {
        match value {
            None => Ok(None),
            Some(Shallow::String(s)) => Ok(Some(Arc::from(s.as_ref()))),
            Some(_) => Err(Reject::BadHeader),
        }
    };
    Ok(Header {
        alg,
        kid: optional_string(kid)?,
        typ: optional_string(typ)?,
    })
}

/// Reads the unverified `iss` of a decoded payload ([`CompactJws::payload`]), only to choose
/// which provider's keys and rules apply (as Envoy's jwt_authn does). The walk is as strict as
/// the claims check's; nothing else in the payload is used before the signature verifies, and
/// the claims check compares `iss` with the chosen provider's issuer again.
pub fn payload_issuer(payload: &[u8]) -> Result<Option<Cow<'_, str>>, Reject> {
    let mut iss = None;
    walk_object(payload, &["iss"], &mut |_, value| iss = Some(value)).map_err(|e| match e {
        StrictJsonError::DuplicateMember => Reject::DuplicateMember,
        StrictJsonError::Invalid => Reject::BadClaims,
    })?;
    match iss {
        None => Ok(None),
        Some(Shallow::String(iss)) => Ok(Some(iss)),
        Some(_) => Err(Reject::BadClaims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64::encode(header.as_bytes()),
            b64::encode(payload.as_bytes()),
            b64::encode(sig)
        )
    }

    fn parse(t: &str) -> Result<CompactJws<'_>, Reject> {
        parse_compact(t.as_bytes(), &Limits::default())
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#, "{}", &[1; 256]);
        let jws = parse(&t).expect("parses");
        assert_eq!(jws.header.alg, Algorithm::RS256);
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.payload(), b"{}");
        assert_eq!(jws.signature().len(), 256);
        assert!(t.as_bytes().starts_with(jws.signing_input));
        assert_eq!(jws.signing_input.iter().filter(|b| **b == b'.').count(), 1);
    }

    /// The memo answers only for the exact bytes it parsed: headers that differ by one byte,
    /// more distinct headers than it holds, a header too long to keep, and a broken variant of
    /// a memoized header all get what a fresh parse gives.
    #[test]
    fn header_memo_answers_exactly_what_parsing_would() {
        let sig = [1u8; 32];
        let header = |kid: &str| format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"JWT"}}"#);
        for round in 0..3 {
            for n in 0..(HeaderMemo::ENTRIES * 2) {
                let t = token(&header(&format!("k{n}")), "{}", &sig);
                let jws = parse(&t).expect("parses");
                let expected = format!("k{n}");
                assert_eq!(
                    jws.header.kid.as_deref(),
                    Some(expected.as_str()),
                    "round {round}"
                );
                assert_eq!(jws.header.typ.as_deref(), Some("JWT"));
            }
        }
        let long_kid = "k".repeat(300);
        for _ in 0..2 {
            let t = token(&header(&long_kid), "{}", &sig);
            let jws = parse(&t).expect("parses");
            assert_eq!(jws.header.kid.as_deref(), Some(long_kid.as_str()));
        }
        // Memoize a header, then send the same header with `alg` changed or made invalid.
        let good = token(&header("k0"), "{}", &sig);
        assert!(parse(&good).is_ok());
        let none = token(r#"{"alg":"none","kid":"k0","typ":"JWT"}"#, "{}", &sig);
        assert_eq!(parse(&none).err(), Some(Reject::AlgNone));
        let duplicate = token(r#"{"alg":"HS256","kid":"k0","kid":"k0"}"#, "{}", &sig);
        assert_eq!(parse(&duplicate).err(), Some(Reject::DuplicateMember));
        // Same header bytes, so the same header, whatever the payload and signature.
        let again = token(&header("k0"), r#"{"sub":"x"}"#, &[2u8; 64]);
        assert_eq!(
            parse(&again).map(|jws| jws.header),
            parse(&good).map(|jws| jws.header)
        );
    }

    #[test]
    fn shape_errors() {
        assert_eq!(parse("").err(), Some(Reject::Malformed));
        assert_eq!(parse("a.b").err(), Some(Reject::Malformed));
        assert_eq!(parse("a.b.c.d").err(), Some(Reject::Malformed));
        assert_eq!(parse("a.b.c.d.e").err(), Some(Reject::JweUnsupported));
        let no_sig = token(r#"{"alg":"HS256"}"#, "{}", b"");
        assert_eq!(parse(&no_sig).err(), Some(Reject::Malformed));
        let big = "a".repeat(9000);
        assert_eq!(parse(&big).err(), Some(Reject::TokenTooLarge));
    }

    #[test]
    fn header_rules() {
        let sig = [0u8; 32];
        let cases: &[(&str, Reject)] = &[
            (r#"{"alg":"none"}"#, Reject::AlgNone),
            (r#"{"alg":"NoNe"}"#, Reject::AlgNone),
            (r#"{"alg":"XS256"}"#, Reject::UnsupportedAlgorithm),
            (r#"{"typ":"JWT"}"#, Reject::BadHeader),
            (r#"{"alg":256}"#, Reject::BadHeader),
            (r#"{"alg":"HS256","alg":"none"}"#, Reject::DuplicateMember),
            (
                r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#,
                Reject::UnencodedPayload,
            ),
            (r#"{"alg":"HS256","b64":"no"}"#, Reject::BadHeader),
            (
                r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
                Reject::CritUnsupported,
            ),
            (r#"{"alg":"HS256","crit":[]}"#, Reject::CritUnsupported),
            (r#"{"alg":"HS256","crit":"b64"}"#, Reject::CritUnsupported),
            (r#"{"alg":"HS256","crit":["b64"]}"#, Reject::CritUnsupported),
            (r#"{"alg":"HS256","kid":7}"#, Reject::BadHeader),
            (r#"["alg"]"#, Reject::BadHeader),
        ];
        for (header, want) in cases {
            let t = token(header, "{}", &sig);
            assert_eq!(parse(&t).err(), Some(*want), "header {header}");
        }
        let ok = token(r#"{"alg":"HS256","b64":true,"crit":["b64"]}"#, "{}", &sig);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn size_caps_apply_before_decoding() {
        let limits = Limits {
            max_token_bytes: 8192,
            max_header_bytes: 64,
            max_payload_bytes: 64,
        };
        let long_header = format!(r#"{{"alg":"HS256","x":"{}"}}"#, "a".repeat(100));
        let t = token(&long_header, "{}", &[0; 32]);
        assert_eq!(
            parse_compact(t.as_bytes(), &limits).err(),
            Some(Reject::HeaderTooLarge)
        );
        let t = token(r#"{"alg":"HS256"}"#, &"b".repeat(100), &[0; 32]);
        assert_eq!(
            parse_compact(t.as_bytes(), &limits).err(),
            Some(Reject::PayloadTooLarge)
        );
    }

    #[test]
    fn rejects_non_strict_base64() {
        let good = token(r#"{"alg":"HS256"}"#, "{}", &[0; 32]);
        let padded = format!("{good}=");
        assert_eq!(parse(&padded).err(), Some(Reject::BadBase64));
        let spaced = good.replacen('.', " .", 1);
        assert_eq!(parse(&spaced).err(), Some(Reject::BadBase64));
    }
}
