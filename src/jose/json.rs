//! Strict JSON objects: like `serde_json`, but a repeated member name anywhere is an error.
//!
//! RFC 7515 §4 lets a parser either reject duplicate header names or use the last one; taking
//! the last one lets two parsers disagree on what was signed, so we reject, in the header and
//! in the claims alike.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::fmt;

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not valid JSON, or not an object at the top level.
    Invalid,
    /// An object repeats a member name.
    DuplicateMember,
}

/// Parses `bytes` as a JSON object, rejecting duplicate member names at every depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match StrictValue::deserialize(&mut de) {
        Ok(v) => v.0,
        Err(e) => {
            return Err(if e.to_string().starts_with(DUPLICATE_MARKER) {
                StrictJsonError::DuplicateMember
            } else {
                StrictJsonError::Invalid
            });
        }
    };
    if de.end().is_err() {
        return Err(StrictJsonError::Invalid);
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::Invalid),
    }
}

const DUPLICATE_MARKER: &str = "duplicate member name";

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One tree descent per member: the vacant slot is filled once the value is parsed.
            let Entry::Vacant(slot) = out.entry(key) else {
                return Err(de::Error::custom(DUPLICATE_MARKER));
            };
            slot.insert(map.next_value_seed(StrictSeed)?);
        }
        Ok(Value::Object(out))
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#),
            Err(StrictJsonError::DuplicateMember)
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#),
            Err(StrictJsonError::DuplicateMember)
        );
        // An escaped name that decodes to the same member is still a duplicate.
        assert_eq!(
            parse_object(br#"{"alg":"HS256","\u0061lg":"none"}"#),
            Err(StrictJsonError::DuplicateMember)
        );
    }

    #[test]
    fn non_objects_and_trailing_data_rejected() {
        assert_eq!(parse_object(b"[]"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_object(b"{} {}"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_object(b"{"), Err(StrictJsonError::Invalid));
        assert!(parse_object(b" {\"a\" : 1 }\n").is_ok());
    }
}
