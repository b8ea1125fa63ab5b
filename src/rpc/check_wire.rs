//! The Check call on the wire, without building the whole `CheckRequest`.
//!
//! Envoy's `CheckRequest` carries the peers, every request header, the route's metadata and
//! more; verdict reads the request's headers and path only. Decoding it whole with prost costs
//! two allocations per header and one per string field on every call, so the hot path walks the
//! protobuf encoding instead, keeps the headers as slices of the received bytes and skips every
//! other field without allocating. A header name that comes twice (Envoy's `header_map` form
//! sends repeats as separate entries) is joined, as Envoy's `headers` map does, into the one
//! value the decision sees.
//!
//! The answer side is [`framed_message`]: a prost message encoded once into the gRPC
//! length-prefixed frame, the bytes the connection writes. Cached answers keep those bytes
//! (see `Allowed::ext_authz_answer`), so a cache hit writes stored bytes, no re-encoding.

use crate::policy::HeaderLookup;
use arrayvec::ArrayVec;
use bytes::{BufMut, Bytes, BytesMut};
use std::borrow::Cow;

/// Headers kept inline before the list spills to the heap (Envoy sends 10-25 typically).
const INLINE_HEADERS: usize = 32;

/// Why a request body is not a `CheckRequest` verdict can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes end inside a field.
    #[error("truncated protobuf")]
    Truncated,
    /// A varint longer than ten bytes.
    #[error("malformed varint")]
    Varint,
    /// A wire type protobuf does not define (or the deprecated groups).
    #[error("unsupported wire type {0}")]
    WireType(u8),
    /// A `string` field that is not UTF-8 (prost refuses these too).
    #[error("invalid UTF-8 in a string field")]
    Utf8,
    /// The gRPC frame prefix is missing or its length disagrees with the body.
    #[error("malformed gRPC frame")]
    Frame,
    /// A compressed message (verdict advertises no compression).
    #[error("compressed messages are not accepted")]
    Compressed,
}

/// One field of a protobuf message.
enum Field<'b> {
    Varint,
    Bytes(&'b [u8]),
    Fixed,
}

/// The fields of one encoded message, in order.
struct Fields<'b> {
    rest: &'b [u8],
}

fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(WireError::Truncated)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::Varint)
}

fn take<'b>(buf: &mut &'b [u8], len: usize) -> Result<&'b [u8], WireError> {
    if buf.len() < len {
        return Err(WireError::Truncated);
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

impl<'b> Iterator for Fields<'b> {
    type Item = Result<(u64, Field<'b>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = (|| {
            let key = varint(&mut self.rest)?;
            let number = key >> 3;
            let field = match key & 7 {
                0 => varint(&mut self.rest).map(|_| Field::Varint)?,
                1 => take(&mut self.rest, 8).map(|_| Field::Fixed)?,
                2 => {
                    let len = usize::try_from(varint(&mut self.rest)?)
                        .map_err(|_| WireError::Truncated)?;
                    Field::Bytes(take(&mut self.rest, len)?)
                }
                5 => take(&mut self.rest, 4).map(|_| Field::Fixed)?,
                other => return Err(WireError::WireType(other as u8)),
            };
            Ok((number, field))
        })();
        if field.is_err() {
            // Stop after the first error.
            self.rest = &[];
        }
        Some(field)
    }
}

fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

fn utf8(bytes: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError::Utf8)
}

/// What verdict reads of a `CheckRequest`: its HTTP request's headers and path, borrowed from
/// the received bytes.
#[derive(Default)]
pub struct CheckView<'b> {
    headers: ArrayVec<(&'b str, &'b str), INLINE_HEADERS>,
    spilled: Vec<(&'b str, &'b str)>,
    /// Joined values of names that came more than once, and values that had to be converted
    /// (a `raw_value` that is not UTF-8), by the name's first entry.
    owned: Vec<(usize, String)>,
    path: &'b str,
}

impl std::fmt::Debug for CheckView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers and path can carry credentials.
        f.debug_struct("CheckView")
            .field("headers", &self.len())
            .finish_non_exhaustive()
    }
}

impl<'b> CheckView<'b> {
    /// Reads a `CheckRequest` message (without the gRPC frame prefix).
    pub fn decode(message: &'b [u8]) -> Result<CheckView<'b>, WireError> {
        let mut view = CheckView::default();
        // CheckRequest.attributes (1) → AttributeContext.request (4) → Request.http (2).
        for field in fields(message) {
            let (1, Field::Bytes(attributes)) = field? else {
                continue;
            };
            for field in fields(attributes) {
                let (4, Field::Bytes(request)) = field? else {
                    continue;
                };
                for field in fields(request) {
                    let (2, Field::Bytes(http)) = field? else {
                        continue;
                    };
                    view.read_http(http)?;
                }
            }
        }
        Ok(view)
    }

    /// `HttpRequest`: `headers` (3, map), `path` (4), `header_map` (13). Proto3 semantics: a
    /// repeated message merges, so every occurrence is read; the last `path` wins. Envoy fills
    /// one header form or the other; `header_map` is read only when `headers` is empty (as
    /// prost-decoded requests were read before this decoder).
    fn read_http(&mut self, http: &'b [u8]) -> Result<(), WireError> {
        let before = self.len();
        for field in fields(http) {
            match field? {
                (3, Field::Bytes(entry)) => {
                    let (mut key, mut value) = ("", "");
                    for field in fields(entry) {
                        match field? {
                            (1, Field::Bytes(k)) => key = utf8(k)?,
                            (2, Field::Bytes(v)) => value = utf8(v)?,
                            _ => {}
                        }
                    }
                    self.push(key, Cow::Borrowed(value));
                }
                (4, Field::Bytes(path)) => self.path = utf8(path)?,
                _ => {}
            }
        }
        if self.len() > before {
            return Ok(());
        }
        for field in fields(http) {
            let (13, Field::Bytes(map)) = field? else {
                continue;
            };
            for field in fields(map) {
                let (1, Field::Bytes(header)) = field? else {
                    continue;
                };
                self.read_header_value(header)?;
            }
        }
        Ok(())
    }

    /// `HeaderValue`: `key` (1), `value` (2), `raw_value` (3, used when `value` is empty).
    fn read_header_value(&mut self, header: &'b [u8]) -> Result<(), WireError> {
        let (mut key, mut value, mut raw): (&str, &str, &[u8]) = ("", "", &[]);
        for field in fields(header) {
            match field? {
                (1, Field::Bytes(k)) => key = utf8(k)?,
                (2, Field::Bytes(v)) => value = utf8(v)?,
                (3, Field::Bytes(r)) => raw = r,
                _ => {}
            }
        }
        let value = if value.is_empty() {
            match std::str::from_utf8(raw) {
                Ok(raw) => Cow::Borrowed(raw),
                Err(_) => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
            }
        } else {
            Cow::Borrowed(value)
        };
        self.push(key, value);
        Ok(())
    }

    fn len(&self) -> usize {
        self.headers.len() + self.spilled.len()
    }

    fn entry(&self, index: usize) -> Option<&(&'b str, &'b str)> {
        match index.checked_sub(self.headers.len()) {
            None => self.headers.get(index),
            Some(spilled) => self.spilled.get(spilled),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|i| {
            self.entry(*i)
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
    }

    fn push(&mut self, name: &'b str, value: Cow<'b, str>) {
        if let Some(first) = self.position(name) {
            // A repeat: join it into the first entry's value, the way Envoy's `headers` map
            // joins repeats (cookies with "; ", everything else with ",").
            let separator = if name.eq_ignore_ascii_case("cookie") {
                "; "
            } else {
                ","
            };
            let existing = match self.owned.iter().position(|(i, _)| *i == first) {
                Some(at) => at,
                None => {
                    let current = self.entry(first).map_or("", |(_, v)| *v);
                    self.owned.push((first, current.to_owned()));
                    self.owned.len() - 1
                }
            };
            if let Some((_, joined)) = self.owned.get_mut(existing) {
                joined.push_str(separator);
                joined.push_str(&value);
            }
            return;
        }
        let index = self.len();
        let borrowed = match value {
            Cow::Borrowed(v) => v,
            Cow::Owned(v) => {
                self.owned.push((index, v));
                ""
            }
        };
        if let Err(full) = self.headers.try_push((name, borrowed)) {
            self.spilled.push(full.element());
        }
    }

    /// The request path (with its query string, as Envoy sends it).
    pub fn path(&self) -> &'b str {
        self.path
    }
}

impl HeaderLookup for CheckView<'_> {
    fn header(&self, lowercase_name: &str) -> Option<&str> {
        let index = self.position(lowercase_name)?;
        if let Some((_, owned)) = self.owned.iter().find(|(i, _)| *i == index) {
            return Some(owned);
        }
        self.entry(index).map(|(_, value)| *value)
    }
}

/// The message of a unary gRPC request body: the 5-byte prefix checked and removed.
pub fn unframe(body: &[u8]) -> Result<&[u8], WireError> {
    let (prefix, message) = body.split_at_checked(5).ok_or(WireError::Frame)?;
    let [compressed, length @ ..] = prefix else {
        return Err(WireError::Frame);
    };
    if *compressed != 0 {
        return Err(WireError::Compressed);
    }
    let length: [u8; 4] = length.try_into().map_err(|_| WireError::Frame)?;
    if u32::from_be_bytes(length) as usize != message.len() {
        return Err(WireError::Frame);
    }
    Ok(message)
}

/// `message` encoded once into a gRPC frame (uncompressed flag, big-endian length, message).
pub fn framed_message(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Cannot fail: the buffer was sized from `encoded_len`.
    let _ = message.encode(&mut out);
    out.freeze()
}

#[cfg(test)]
mod tests;
