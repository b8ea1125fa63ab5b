//! JWK and JWKS parsing (RFC 7517, 7518 §6, 8037, 8812) into validated public key material.
//!
//! Everything that can be checked without cryptography is checked here, once, when a key set
//! is loaded: sizes, exponents, curve names, coordinate lengths, `use`/`key_ops`/`alg`. The
//! crypto backend then turns the material into a prepared key (and checks the point is on the
//! curve).

use super::alg::{Algorithm, Curve, KeyFamily};
use super::b64;
use super::json::{StrictJsonError, parse_object};
use super::roca::is_roca_modulus;
use serde_json::{Map, Value};
use std::fmt;

/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest accepted RSA modulus, in bits (bounds verification cost).
pub const MAX_RSA_BITS: usize = 8192;

/// Validated public key material.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// RSA public key: big-endian modulus and exponent, without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC public key: fixed-width big-endian coordinates.
    Ec {
        /// The curve.
        curve: Curve,
        /// X coordinate.
        x: Vec<u8>,
        /// Y coordinate.
        y: Vec<u8>,
    },
    /// Ed25519 public key.
    Ed25519 {
        /// The 32-byte encoded point.
        x: [u8; 32],
    },
    /// A symmetric HMAC secret.
    Oct {
        /// The secret (never printed).
        k: Vec<u8>,
    },
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
            KeyMaterial::Ec { curve, .. } => write!(f, "Ec({})", curve.name()),
            KeyMaterial::Ed25519 { .. } => f.write_str("Ed25519"),
            KeyMaterial::Oct { k } => write!(f, "Oct({} bytes, redacted)", k.len()),
        }
    }
}

impl KeyMaterial {
    /// Whether an algorithm can be used with this material at all (before any `alg` pin).
    pub fn supports(&self, alg: Algorithm) -> bool {
        match (self, alg.family()) {
            (KeyMaterial::Rsa { .. }, KeyFamily::Rsa) => true,
            (KeyMaterial::Ec { curve, .. }, KeyFamily::Ec(want)) => *curve == want,
            (KeyMaterial::Ed25519 { .. }, KeyFamily::Ed25519) => true,
            (KeyMaterial::Oct { k }, KeyFamily::Hmac) => k.len() >= alg.hash_len(),
            _ => false,
        }
    }

    /// True for `oct` keys.
    pub fn is_symmetric(&self) -> bool {
        matches!(self, KeyMaterial::Oct { .. })
    }
}

/// One usable signature-verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`, if present.
    pub kid: Option<String>,
    /// The algorithm the key is pinned to by its `alg` member, if present.
    pub alg: Option<Algorithm>,
    /// The key material.
    pub material: KeyMaterial,
}

impl Jwk {
    /// The algorithms this key may verify, given a provider's allow-list.
    pub fn usable_algorithms<'a>(
        &'a self,
        allowed: &'a [Algorithm],
    ) -> impl Iterator<Item = Algorithm> + 'a {
        allowed
            .iter()
            .copied()
            .filter(move |alg| self.alg.is_none_or(|pinned| pinned == *alg))
            .filter(move |alg| self.material.supports(*alg))
    }
}

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The document is not JSON or not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A JSON object repeats a member name.
    #[error("duplicate member name")]
    DuplicateMember,
    /// The JWKS has no `keys` array.
    #[error("no \"keys\" array")]
    NoKeysArray,
    /// A required member is missing.
    #[error("missing member \"{0}\"")]
    Missing(&'static str),
    /// A member has the wrong type or is not strict base64url.
    #[error("member \"{0}\" is malformed")]
    Malformed(&'static str),
    /// `kty` is not RSA, EC, OKP or oct.
    #[error("unsupported kty {0:?}")]
    UnsupportedKty(String),
    /// The curve is not supported for signatures.
    #[error("unsupported curve {0:?}")]
    UnsupportedCurve(String),
    /// `alg` is not a JWS algorithm this verifier implements.
    #[error("unsupported alg {0:?}")]
    UnsupportedAlg(String),
    /// `alg` does not fit the key type or curve.
    #[error("alg {0} does not match the key type")]
    AlgKeyMismatch(Algorithm),
    /// `use` or `key_ops` say the key is not for signature verification.
    #[error("key is not for signature verification (use/key_ops)")]
    NotForVerification,
    /// RSA modulus outside the accepted size.
    #[error("RSA modulus of {0} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}")]
    RsaSize(usize),
    /// RSA exponent is even, smaller than 3, or implausibly large.
    #[error("RSA public exponent is invalid")]
    RsaExponent,
    /// The modulus has the ROCA fingerprint (CVE-2017-15361).
    #[error("RSA modulus is a weak Infineon (ROCA) key")]
    RsaRoca,
    /// An EC coordinate or OKP key has the wrong length.
    #[error("key coordinate has the wrong length for the curve")]
    CoordinateLength,
    /// An HMAC key shorter than the hash it is used with (RFC 7518 §3.2).
    #[error("HMAC key of {0} bytes is shorter than the hash output")]
    SymmetricKeyTooShort(usize),
}

/// Parses one JWK from its JSON text.
pub fn parse_jwk(bytes: &[u8]) -> Result<Jwk, JwkError> {
    let members = parse_object(bytes).map_err(json_error)?;
    jwk_from_members(&members)
}

/// The result of parsing a JWKS: usable keys and the keys skipped with why.
#[derive(Debug, Clone, Default)]
pub struct ParsedJwks {
    /// Keys usable for verification.
    pub keys: Vec<Jwk>,
    /// `(index in "keys", kid, reason)` for each key that was skipped.
    pub skipped: Vec<(usize, Option<String>, JwkError)>,
}

/// Parses a JWKS (`{"keys":[...]}`). Keys that are unusable for verification (encryption keys,
/// unsupported types, weak keys) are skipped, not fatal, because issuers publish them beside
/// their signing keys; the caller decides what an empty result means.
pub fn parse_jwks(bytes: &[u8]) -> Result<ParsedJwks, JwkError> {
    let members = parse_object(bytes).map_err(json_error)?;
    let keys = members
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwkError::NoKeysArray)?;
    let mut parsed = ParsedJwks::default();
    for (index, key) in keys.iter().enumerate() {
        let kid = key.get("kid").and_then(Value::as_str).map(str::to_owned);
        let result = key
            .as_object()
            .ok_or(JwkError::NotAnObject)
            .and_then(jwk_from_members);
        match result {
            Ok(jwk) => parsed.keys.push(jwk),
            Err(reason) => parsed.skipped.push((index, kid, reason)),
        }
    }
    Ok(parsed)
}

fn json_error(e: StrictJsonError) -> JwkError {
    match e {
        StrictJsonError::DuplicateMember => JwkError::DuplicateMember,
        StrictJsonError::Invalid => JwkError::NotAnObject,
    }
}

/// Builds a JWK from parsed members.
pub fn jwk_from_members(members: &Map<String, Value>) -> Result<Jwk, JwkError> {
    let kty = string_member(members, "kty")?.ok_or(JwkError::Missing("kty"))?;
    let kid = string_member(members, "kid")?.map(str::to_owned);

    if let Some(usage) = string_member(members, "use")?
        && usage != "sig"
    {
        return Err(JwkError::NotForVerification);
    }
    if let Some(ops) = members.get("key_ops") {
        let ops = ops.as_array().ok_or(JwkError::Malformed("key_ops"))?;
        let mut verify = false;
        for op in ops {
            match op.as_str() {
                Some("verify") => verify = true,
                Some(_) => {}
                None => return Err(JwkError::Malformed("key_ops")),
            }
        }
        if !verify {
            return Err(JwkError::NotForVerification);
        }
    }
    let alg = match string_member(members, "alg")? {
        None => None,
        // RFC 7520's example P-521 key says "ES521"; the registered name is ES512.
        Some("ES521") => Some(Algorithm::ES512),
        Some(name) => Some(
            Algorithm::from_name(name).ok_or_else(|| JwkError::UnsupportedAlg(name.to_owned()))?,
        ),
    };

    let material = match kty {
        "RSA" => rsa_material(members)?,
        "EC" => ec_material(members)?,
        "OKP" => okp_material(members)?,
        "oct" => {
            let k = b64_member(members, "k")?;
            if k.is_empty() {
                return Err(JwkError::SymmetricKeyTooShort(0));
            }
            KeyMaterial::Oct { k }
        }
        other => return Err(JwkError::UnsupportedKty(other.to_owned())),
    };
    if let Some(alg) = alg {
        if !material.supports(alg) {
            return Err(match material {
                KeyMaterial::Oct { ref k } if alg.is_symmetric() => {
                    JwkError::SymmetricKeyTooShort(k.len())
                }
                _ => JwkError::AlgKeyMismatch(alg),
            });
        }
    } else if let KeyMaterial::Oct { k } = &material
        && k.len() < Algorithm::HS256.hash_len()
    {
        return Err(JwkError::SymmetricKeyTooShort(k.len()));
    }
    Ok(Jwk { kid, alg, material })
}

fn string_member<'a>(
    members: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwkError> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwkError::Malformed(name)),
    }
}

fn b64_member(members: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    let text = string_member(members, name)?.ok_or(JwkError::Missing(name))?;
    b64::decode(text.as_bytes()).ok_or(JwkError::Malformed(name))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or(&[])
}

fn bit_len(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(top) => big_endian.len() * 8 - top.leading_zeros() as usize,
    }
}

fn rsa_material(members: &Map<String, Value>) -> Result<KeyMaterial, JwkError> {
    let n = b64_member(members, "n")?;
    let e = b64_member(members, "e")?;
    let n = strip_leading_zeros(&n).to_vec();
    let e = strip_leading_zeros(&e).to_vec();
    let bits = bit_len(&n);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(JwkError::RsaSize(bits));
    }
    // e must be odd, at least 3, and fit in 33 bits (what BoringSSL/AWS-LC accept).
    let e_odd = e.last().is_some_and(|b| b & 1 == 1);
    let e_bits = bit_len(&e);
    if !e_odd || e_bits > 33 || (e_bits <= 2 && e.last().is_some_and(|b| *b < 3)) {
        return Err(JwkError::RsaExponent);
    }
    if is_roca_modulus(&n) {
        return Err(JwkError::RsaRoca);
    }
    Ok(KeyMaterial::Rsa { n, e })
}

fn ec_material(members: &Map<String, Value>) -> Result<KeyMaterial, JwkError> {
    let crv = string_member(members, "crv")?.ok_or(JwkError::Missing("crv"))?;
    let curve = match crv {
        "P-256" => Curve::P256,
        "P-384" => Curve::P384,
        "P-521" => Curve::P521,
        "secp256k1" => Curve::Secp256k1,
        other => return Err(JwkError::UnsupportedCurve(other.to_owned())),
    };
    let x = b64_member(members, "x")?;
    let y = b64_member(members, "y")?;
    // RFC 7518 §6.2.1.2: coordinates are full length, leading zeros included.
    if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
        return Err(JwkError::CoordinateLength);
    }
    Ok(KeyMaterial::Ec { curve, x, y })
}

fn okp_material(members: &Map<String, Value>) -> Result<KeyMaterial, JwkError> {
    let crv = string_member(members, "crv")?.ok_or(JwkError::Missing("crv"))?;
    if crv != "Ed25519" {
        return Err(JwkError::UnsupportedCurve(crv.to_owned()));
    }
    let x = b64_member(members, "x")?;
    let x: [u8; 32] = x
        .as_slice()
        .try_into()
        .map_err(|_| JwkError::CoordinateLength)?;
    Ok(KeyMaterial::Ed25519 { x })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

    fn rsa(extra: &str) -> String {
        format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"{extra}}}"#)
    }

    #[test]
    fn rsa_rules() {
        let jwk = parse_jwk(rsa("").as_bytes()).expect("valid");
        assert!(matches!(jwk.material, KeyMaterial::Rsa { ref n, .. } if n.len() == 256));
        assert_eq!(
            parse_jwk(rsa(r#","use":"enc""#).as_bytes()),
            Err(JwkError::NotForVerification)
        );
        assert_eq!(
            parse_jwk(rsa(r#","key_ops":["encrypt"]"#).as_bytes()),
            Err(JwkError::NotForVerification)
        );
        assert!(parse_jwk(rsa(r#","key_ops":["sign","verify"]"#).as_bytes()).is_ok());
        assert_eq!(
            parse_jwk(rsa(r#","alg":"ES256""#).as_bytes()),
            Err(JwkError::AlgKeyMismatch(Algorithm::ES256))
        );
        assert_eq!(
            parse_jwk(rsa(r#","alg":"RSA-OAEP""#).as_bytes()),
            Err(JwkError::UnsupportedAlg("RSA-OAEP".into()))
        );
        let small = r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(parse_jwk(small.as_bytes()), Err(JwkError::RsaSize(17)));
        let e_one = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQ"}}"#);
        assert_eq!(parse_jwk(e_one.as_bytes()), Err(JwkError::RsaExponent));
        let e_even = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAA"}}"#);
        assert_eq!(parse_jwk(e_even.as_bytes()), Err(JwkError::RsaExponent));
    }

    #[test]
    fn ec_okp_oct_rules() {
        let x = b64::encode(&[1; 32]);
        let ec =
            |crv: &str, x: &str| format!(r#"{{"kty":"EC","crv":"{crv}","x":"{x}","y":"{x}"}}"#);
        assert!(parse_jwk(ec("P-256", &x).as_bytes()).is_ok());
        assert_eq!(
            parse_jwk(ec("P-384", &x).as_bytes()),
            Err(JwkError::CoordinateLength)
        );
        assert_eq!(
            parse_jwk(ec("P-224", &x).as_bytes()),
            Err(JwkError::UnsupportedCurve("P-224".into()))
        );
        let okp = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#);
        assert!(parse_jwk(okp.as_bytes()).is_ok());
        let x448 = format!(r#"{{"kty":"OKP","crv":"X25519","x":"{x}"}}"#);
        assert!(matches!(
            parse_jwk(x448.as_bytes()),
            Err(JwkError::UnsupportedCurve(_))
        ));
        let oct = |k: &[u8], alg: &str| {
            format!(r#"{{"kty":"oct","k":"{}","alg":"{alg}"}}"#, b64::encode(k))
        };
        assert!(parse_jwk(oct(&[7; 48], "HS384").as_bytes()).is_ok());
        assert_eq!(
            parse_jwk(oct(&[7; 47], "HS384").as_bytes()),
            Err(JwkError::SymmetricKeyTooShort(47))
        );
        assert_eq!(
            parse_jwk(oct(&[7; 64], "A256GCM").as_bytes()),
            Err(JwkError::UnsupportedAlg("A256GCM".into()))
        );
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let doc = format!(
            r#"{{"keys":[{},{},{{"kty":"XYZ"}},7]}}"#,
            rsa(r#","kid":"a""#),
            rsa(r#","kid":"b","use":"enc""#)
        );
        let parsed = parse_jwks(doc.as_bytes()).expect("jwks");
        assert_eq!(parsed.keys.len(), 1);
        assert_eq!(
            parsed.keys.first().and_then(|k| k.kid.as_deref()),
            Some("a")
        );
        assert_eq!(parsed.skipped.len(), 3);
        assert_eq!(parse_jwks(b"{}").err(), Some(JwkError::NoKeysArray));
    }
}
