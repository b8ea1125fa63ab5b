//! Bounded compact-JWS parsing (RFC 7515 §7.1).
//!
//! The order is fixed and cheap-first: size caps, shape, header only, then the payload and
//! signature are decoded; nothing in the payload is interpreted here. Claims are parsed only
//! after the signature verifies (see [`crate::jose::claims`]).

use super::alg::Algorithm;
use super::b64;
use super::json::{StrictJsonError, parse_object};
use super::reject::Reject;
use serde_json::Value;

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
    pub kid: Option<String>,
    /// The media type of the whole token, e.g. `JWT` or `at+jwt`.
    pub typ: Option<String>,
}

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    /// The parsed header.
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the exact bytes that were signed.
    pub signing_input: &'a [u8],
    /// The decoded payload (not interpreted).
    pub payload: Vec<u8>,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS within `limits`.
pub fn parse_compact<'a>(token: &'a [u8], limits: &Limits) -> Result<CompactJws<'a>, Reject> {
    if token.len() > limits.max_token_bytes {
        return Err(Reject::TokenTooLarge);
    }
    let mut dots = [0usize; 2];
    let mut dot_count = 0usize;
    for (index, byte) in token.iter().enumerate() {
        if *byte == b'.' {
            if let Some(slot) = dots.get_mut(dot_count) {
                *slot = index;
            }
            dot_count += 1;
        }
    }
    match dot_count {
        2 => {}
        4 => return Err(Reject::JweUnsupported),
        _ => return Err(Reject::Malformed),
    }
    let [first_dot, second_dot] = dots;
    let header_b64 = token.get(..first_dot).ok_or(Reject::Malformed)?;
    let payload_b64 = token
        .get(first_dot + 1..second_dot)
        .ok_or(Reject::Malformed)?;
    let signature_b64 = token.get(second_dot + 1..).ok_or(Reject::Malformed)?;
    let signing_input = token.get(..second_dot).ok_or(Reject::Malformed)?;

    if header_b64.is_empty() {
        return Err(Reject::Malformed);
    }
    if b64::decoded_len(header_b64.len()) > limits.max_header_bytes {
        return Err(Reject::HeaderTooLarge);
    }
    let header_bytes = b64::decode(header_b64).ok_or(Reject::BadBase64)?;
    let header = parse_header(&header_bytes)?;

    if b64::decoded_len(payload_b64.len()) > limits.max_payload_bytes {
        return Err(Reject::PayloadTooLarge);
    }
    let payload = b64::decode(payload_b64).ok_or(Reject::BadBase64)?;

    if signature_b64.is_empty() || b64::decoded_len(signature_b64.len()) > MAX_SIGNATURE_BYTES {
        return Err(Reject::Malformed);
    }
    let signature = b64::decode(signature_b64).ok_or(Reject::BadBase64)?;

    Ok(CompactJws {
        header,
        signing_input,
        payload,
        signature,
    })
}

/// Parses a decoded JOSE header.
pub fn parse_header(bytes: &[u8]) -> Result<Header, Reject> {
    let members = parse_object(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateMember => Reject::DuplicateMember,
        StrictJsonError::Invalid => Reject::BadHeader,
    })?;
    let alg_name = match members.get("alg") {
        Some(Value::String(name)) => name.as_str(),
        _ => return Err(Reject::BadHeader),
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Reject::AlgNone);
    }
    let alg = Algorithm::from_name(alg_name).ok_or(Reject::UnsupportedAlgorithm)?;

    match members.get("b64") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err(Reject::UnencodedPayload),
        Some(_) => return Err(Reject::BadHeader),
    }
    if let Some(crit) = members.get("crit") {
        let names = crit.as_array().ok_or(Reject::CritUnsupported)?;
        if names.is_empty() {
            return Err(Reject::CritUnsupported);
        }
        for name in names {
            let name = name.as_str().ok_or(Reject::CritUnsupported)?;
            let understood = UNDERSTOOD_CRIT.contains(&name)
                && !REGISTERED_HEADER_NAMES.contains(&name)
                && members.contains_key(name);
            if !understood {
                return Err(Reject::CritUnsupported);
            }
        }
    }
    let optional_string = |name: &str| -> Result<Option<String>, Reject> {
        match members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Reject::BadHeader),
        }
    };
    Ok(Header {
        alg,
        kid: optional_string("kid")?,
        typ: optional_string("typ")?,
    })
}

/// Reads the unverified `iss` of a compact JWS, only to choose which provider's keys and rules
/// apply (as Envoy's jwt_authn does). The same caps apply; nothing else in the payload is used
/// before the signature verifies.
pub fn peek_issuer(token: &[u8], limits: &Limits) -> Result<Option<String>, Reject> {
    if token.len() > limits.max_token_bytes {
        return Err(Reject::TokenTooLarge);
    }
    let mut parts = token.split(|b| *b == b'.');
    let payload_b64 = match (parts.next(), parts.next()) {
        (Some(_), Some(payload)) => payload,
        _ => return Err(Reject::Malformed),
    };
    if b64::decoded_len(payload_b64.len()) > limits.max_payload_bytes {
        return Err(Reject::PayloadTooLarge);
    }
    let payload = b64::decode(payload_b64).ok_or(Reject::BadBase64)?;
    let members = parse_object(&payload).map_err(|e| match e {
        StrictJsonError::DuplicateMember => Reject::DuplicateMember,
        StrictJsonError::Invalid => Reject::BadClaims,
    })?;
    match members.get("iss") {
        None => Ok(None),
        Some(Value::String(iss)) => Ok(Some(iss.clone())),
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
        assert_eq!(jws.payload, b"{}");
        assert_eq!(jws.signature.len(), 256);
        assert!(t.as_bytes().starts_with(jws.signing_input));
        assert_eq!(jws.signing_input.iter().filter(|b| **b == b'.').count(), 1);
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
