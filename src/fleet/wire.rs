//! One stream entry: a change (a revocation added or removed) as `XADD` fields, and back.
//!
//! Fields: `op` (`add`|`remove`), `id` (the revocation's id, the key every instance
//! deduplicates by), `origin` (the publishing instance), `exp` (the entry's expiry in Unix
//! seconds, 0 = until removed; what trimming and readers go by), then `entry` (the revocation as
//! JSON) for an add or `at` (Unix seconds) for a removal.

use crate::revocation::{LogRecord, Revocation};
use std::collections::HashMap;

/// Why a stream entry could not be read (it is skipped, logged and counted).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A field is missing or not text.
    #[error("stream entry field {0:?} is missing")]
    Missing(&'static str),
    /// `op` is neither `add` nor `remove`.
    #[error("stream entry op {0:?} is unknown")]
    UnknownOp(String),
    /// `entry` or `at` does not parse.
    #[error("stream entry field {field:?}: {why}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// The `XADD` field/value pairs of `record` published by `origin`.
pub fn encode(record: &LogRecord, origin: &str) -> Vec<(&'static str, String)> {
    match record {
        LogRecord::Add(entry) => {
            let mut entry = entry.clone();
            // The origin travels in its own field; the receiver sets it on the entry.
            entry.origin = None;
            let json = serde_json::to_string(&entry).unwrap_or_default();
            vec![
                ("op", "add".to_owned()),
                ("id", entry.id.clone()),
                ("origin", origin.to_owned()),
                ("exp", entry.expires_at.unwrap_or(0).to_string()),
                ("entry", json),
            ]
        }
        LogRecord::Remove { id, at } => vec![
            ("op", "remove".to_owned()),
            ("id", id.clone()),
            ("origin", origin.to_owned()),
            ("exp", "0".to_owned()),
            ("at", at.to_string()),
        ],
    }
}

/// Reads a stream entry's fields back: its origin and the change.
pub fn decode(fields: &HashMap<String, redis::Value>) -> Result<(String, LogRecord), WireError> {
    let text = |name: &'static str| -> Result<String, WireError> {
        match fields.get(name) {
            Some(redis::Value::BulkString(bytes)) => {
                String::from_utf8(bytes.clone()).map_err(|_| WireError::Bad {
                    field: name,
                    why: "not UTF-8".into(),
                })
            }
            Some(redis::Value::SimpleString(s)) => Ok(s.clone()),
            _ => Err(WireError::Missing(name)),
        }
    };
    let origin = text("origin")?;
    let id = text("id")?;
    let record = match text("op")?.as_str() {
        "add" => {
            let mut entry: Revocation =
                serde_json::from_str(&text("entry")?).map_err(|e| WireError::Bad {
                    field: "entry",
                    why: e.to_string(),
                })?;
            if entry.id != id {
                return Err(WireError::Bad {
                    field: "entry",
                    why: format!("its id {:?} is not the entry's id {id:?}", entry.id),
                });
            }
            entry.origin = Some(origin.clone());
            LogRecord::Add(entry)
        }
        "remove" => {
            let at = text("at")?.parse().map_err(|_| WireError::Bad {
                field: "at",
                why: "not Unix seconds".into(),
            })?;
            LogRecord::Remove { id, at }
        }
        other => return Err(WireError::UnknownOp(other.to_owned())),
    };
    Ok((origin, record))
}

/// A stream id `MS-SEQ` as a pair that orders like Redis orders them; `None` if malformed.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The id before which nothing exists: reading from it reads the whole stream.
pub const START: &str = "0-0";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::Selector;

    fn fields(pairs: Vec<(&'static str, String)>) -> HashMap<String, redis::Value> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), redis::Value::BulkString(v.into_bytes())))
            .collect()
    }

    #[test]
    fn changes_round_trip_with_their_origin() {
        let entry = Revocation {
            id: "rv-00112233445566ff".into(),
            provider: "corp".into(),
            selector: Selector::Jti("t-1".into()),
            reason: Some("lost laptop".into()),
            created_at: 1_764_633_600,
            expires_at: Some(1_764_637_200),
            origin: None,
        };
        let (origin, back) =
            decode(&fields(encode(&LogRecord::Add(entry.clone()), "gw-1"))).expect("decodes");
        assert_eq!(origin, "gw-1");
        let mut want = entry;
        want.origin = Some("gw-1".into());
        assert_eq!(back, LogRecord::Add(want));
        let remove = LogRecord::Remove {
            id: "rv-1".into(),
            at: 7,
        };
        let (_, back) = decode(&fields(encode(&remove, "gw-2"))).expect("decodes");
        assert_eq!(back, remove);
    }

    #[test]
    fn bad_entries_are_named() {
        let mut bad = fields(encode(
            &LogRecord::Remove {
                id: "rv-1".into(),
                at: 7,
            },
            "gw",
        ));
        bad.insert("op".into(), redis::Value::BulkString(b"merge".to_vec()));
        assert!(matches!(decode(&bad), Err(WireError::UnknownOp(_))));
        bad.remove("origin");
        assert!(matches!(decode(&bad), Err(WireError::Missing("origin"))));
    }

    #[test]
    fn ids_order_like_redis() {
        assert!(parse_id("1700000000000-2") > parse_id("1700000000000-1"));
        assert!(parse_id("1700000000001-0") > parse_id("1700000000000-9"));
        assert_eq!(parse_id(START), Some((0, 0)));
        assert_eq!(parse_id("x-1"), None);
    }
}
