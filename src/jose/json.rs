//! Strict JSON (RFC 8259) for tokens and key sets: one small parser that both validates and
//! reads, so the bytes that were signed mean one thing.
//!
//! - A repeated member name anywhere is an error. RFC 7515 §4 lets a parser either reject
//!   duplicate header names or use the last one; taking the last one lets two parsers disagree
//!   on what was signed, so we reject, in the header and in the claims alike.
//! - Strings must be valid UTF-8 without raw control characters; `\u` escapes must not leave a
//!   lone surrogate. Numbers follow the RFC grammar and must fit an `f64`. Nesting is capped at
//!   [`MAX_DEPTH`].
//! - [`walk_object`] reads only the top-level members a caller asks for and validates the rest
//!   without building it, which is what keeps the verification path nearly allocation-free;
//!   [`parse_object`] builds the whole `serde_json` map with the same rules.

use arrayvec::ArrayVec;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::collections::HashSet;

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not valid JSON, or not an object at the top level.
    Invalid,
    /// An object repeats a member name.
    DuplicateMember,
}

/// Deepest nesting of arrays and objects accepted, counting the top-level object (serde_json's
/// own limit).
pub const MAX_DEPTH: usize = 127;

/// A member value as the typed readers see it: one level deep, everything below validated but
/// not kept. Strings borrow from the document unless they contained escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Shallow<'de> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any number, as `f64` (NumericDate semantics).
    Number(f64),
    /// A string.
    String(Cow<'de, str>),
    /// An array whose elements are all strings (possibly empty).
    StringArray(Vec<Cow<'de, str>>),
    /// Any other array, or an object.
    Other,
}

/// Parses `bytes` as a JSON object, rejecting duplicate member names at every depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut scanner = Scanner::new(bytes)?;
    scanner.skip_ws();
    let map = scanner.build_object(0)?;
    scanner.finish()?;
    Ok(map)
}

/// Walks a JSON object strictly without building it. Each top-level member whose name is in
/// `wanted` is handed to `take` with its index in `wanted`; every other value is validated and
/// skipped.
pub fn walk_object<'de>(
    bytes: &'de [u8],
    wanted: &[&str],
    take: &mut dyn FnMut(usize, Shallow<'de>),
) -> Result<(), StrictJsonError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StrictJsonError::Invalid)?;
    walk_object_str(text, wanted, take)
}

/// [`walk_object`] over text already known to be UTF-8.
pub fn walk_object_str<'de>(
    text: &'de str,
    wanted: &[&str],
    take: &mut dyn FnMut(usize, Shallow<'de>),
) -> Result<(), StrictJsonError> {
    walk_object_wanted(text, &WantedNames::new(wanted), take)
}

/// The names a walk reads, with their tags and a Bloom filter over them computed once (a
/// `const` for fixed lists such as the registered claims).
#[derive(Debug, Clone, Copy)]
pub struct WantedNames<'w> {
    names: &'w [&'w str],
    /// Tags of the first eight names; any further ones compare in full.
    tags: [u64; 8],
    bloom: u64,
}

impl<'w> WantedNames<'w> {
    /// Prepares `names` for [`walk_object_wanted`].
    #[allow(
        clippy::indexing_slicing,
        reason = "const fn cannot use iterators; the loop bounds index by both lengths"
    )]
    pub const fn new(names: &'w [&'w str]) -> Self {
        let mut tags = [0u64; 8];
        let mut bloom = 0u64;
        let mut index = 0;
        while index < names.len() && index < tags.len() {
            tags[index] = name_tag(names[index].as_bytes());
            bloom |= tag_bit(tags[index]);
            index += 1;
        }
        if names.len() > tags.len() {
            bloom = u64::MAX;
        }
        WantedNames { names, tags, bloom }
    }

    /// The index in the list of a member name with tag `tag`, if it is wanted.
    #[inline(always)]
    fn find(&self, tag: u64, name: &[u8]) -> Option<usize> {
        if self.bloom & tag_bit(tag) == 0 {
            return None;
        }
        self.names
            .iter()
            .enumerate()
            .position(|(i, w)| match self.tags.get(i) {
                Some(t) => *t == tag && same_name(tag, w.as_bytes(), name),
                None => w.as_bytes() == name,
            })
    }
}

/// [`walk_object_str`] with the wanted names prepared beforehand.
pub fn walk_object_wanted<'de>(
    text: &'de str,
    wanted: &WantedNames<'_>,
    take: &mut dyn FnMut(usize, Shallow<'de>),
) -> Result<(), StrictJsonError> {
    let mut quotes = QuoteIndex {
        words: ArrayVec::new(),
    };
    let indexed = quotes.fill(text.as_bytes());
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        quotes: indexed.then_some(&quotes),
    };
    scanner.skip_ws();
    scanner.expect(b'{')?;
    let mut seen = SeenNames::new();
    scanner.skip_ws();
    if scanner.peek() == Some(b'}') {
        scanner.pos += 1;
    } else {
        loop {
            scanner.skip_ws();
            let name = scanner.name()?;
            let tag = name_tag(&name);
            let index = wanted.find(tag, &name);
            seen.insert(tag, name)?;
            scanner.skip_ws();
            scanner.expect(b':')?;
            scanner.skip_ws();
            match index {
                Some(index) => take(index, scanner.shallow_value(1)?),
                None => scanner.skip_value(1)?,
            }
            if !scanner.continues(b'}')? {
                break;
            }
        }
    }
    scanner.finish()
}

/// A cheap fingerprint of a member name: its length and its first, middle and last bytes.
/// Equal names have equal tags, so comparing tags first skips almost every byte comparison
/// (JWT names are short and often the same length: `iss`, `aud`, `exp`, ...).
const fn name_tag(bytes: &[u8]) -> u64 {
    const fn or_zero(byte: Option<&u8>) -> u64 {
        match byte {
            Some(byte) => *byte as u64,
            None => 0,
        }
    }
    let len = bytes.len();
    let (_, middle) = bytes.split_at(len / 2);
    len as u64
        | or_zero(bytes.first()) << 32
        | or_zero(middle.first()) << 40
        | or_zero(bytes.last()) << 48
}

/// Whether two names with equal tags are equal: a tag holds every byte of a name of up to
/// three bytes (`iss`, `aud`, `exp`, `alg`, `kid`, ...), so only longer names are compared.
fn same_name(tag: u64, a: &[u8], b: &[u8]) -> bool {
    (tag & 0xFFFF_FFFF) <= 3 || a == b
}

/// The bit a tag sets in a 64-bit Bloom filter.
const fn tag_bit(tag: u64) -> u64 {
    1u64 << (tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

/// Member names seen so far in one object. Objects in tokens are small, so a linear scan over
/// tags in an inline array wins; past `INLINE` names a hash set keeps a hostile 6 KiB object
/// linear. Names that had escapes (rare) are kept apart, decoded.
struct SeenNames<'de> {
    /// One bit per tag (a 64-bit Bloom filter): most new names miss it and skip the scan.
    bloom: u64,
    inline: ArrayVec<(u64, &'de [u8]), { SeenNames::INLINE }>,
    decoded: Vec<(u64, Vec<u8>)>,
    overflow: Option<HashSet<Cow<'de, [u8]>>>,
}

impl<'de> SeenNames<'de> {
    const INLINE: usize = 16;

    fn new() -> Self {
        SeenNames {
            bloom: 0,
            inline: ArrayVec::new(),
            decoded: Vec::new(),
            overflow: None,
        }
    }

    /// Records `name` with its [`name_tag`]; a repeat is `DuplicateMember`.
    #[inline(always)]
    fn insert(&mut self, tag: u64, name: Cow<'de, [u8]>) -> Result<(), StrictJsonError> {
        // The common case: a new, unescaped name whose tag the filter has not seen.
        let bit = tag_bit(tag);
        if self.bloom & bit == 0
            && self.overflow.is_none()
            && !self.inline.is_full()
            && let Cow::Borrowed(borrowed) = name
        {
            self.bloom |= bit;
            self.inline.push((tag, borrowed));
            return Ok(());
        }
        self.insert_slow(tag, name)
    }

    #[inline(never)]
    fn insert_slow(&mut self, tag: u64, name: Cow<'de, [u8]>) -> Result<(), StrictJsonError> {
        let duplicate = || StrictJsonError::DuplicateMember;
        if let Some(overflow) = &mut self.overflow {
            return overflow.insert(name).then_some(()).ok_or_else(duplicate);
        }
        let bit = tag_bit(tag);
        if self.bloom & bit != 0
            && (self
                .inline
                .iter()
                .any(|(t, n)| *t == tag && same_name(tag, n, &name))
                || self
                    .decoded
                    .iter()
                    .any(|(t, n)| *t == tag && same_name(tag, n, &name)))
        {
            return Err(duplicate());
        }
        self.bloom |= bit;
        match name {
            Cow::Borrowed(borrowed) if !self.inline.is_full() => self.inline.push((tag, borrowed)),
            Cow::Owned(owned) if self.decoded.len() < Self::INLINE => {
                self.decoded.push((tag, owned));
            }
            name => {
                let mut all: HashSet<Cow<'de, [u8]>> = self
                    .inline
                    .iter()
                    .map(|(_, n)| Cow::Borrowed(*n))
                    .chain(self.decoded.drain(..).map(|(_, n)| Cow::Owned(n)))
                    .collect();
                all.insert(name);
                self.overflow = Some(all);
            }
        }
        Ok(())
    }
}

/// The length of the prefix of `bytes` that may stand unescaped in a string (see [`is_plain`]),
/// eight bytes at a time: a byte is flagged when it equals `"` or `\\` or is below 0x20, using
/// the classic "has zero byte" test. The lowest flagged byte is always exact.
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut offset = 0;
    while let Some(chunk) = bytes.get(offset..offset + 8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk).map(u64::from_le_bytes) else {
            break;
        };
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flagged = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(ONES * 0x20) & !word)
            & HIGHS;
        if flagged != 0 {
            return offset + (flagged.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    let rest = bytes.get(offset..).unwrap_or(&[]);
    offset
        + rest
            .iter()
            .position(|b| !is_plain(*b))
            .unwrap_or(rest.len())
}

/// Decodes the escapes of a string the scanner already checked.
fn unescape(raw: &str) -> Result<String, StrictJsonError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let first = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    // The scanner checked that a low surrogate escape follows.
                    if chars.next() != Some('\\') || chars.next() != Some('u') {
                        return Err(StrictJsonError::Invalid);
                    }
                    let second = hex4(&mut chars)?;
                    0x10000 + ((first - 0xD800) << 10) + (second.wrapping_sub(0xDC00) & 0x3FF)
                } else {
                    first
                };
                char::from_u32(code).ok_or(StrictJsonError::Invalid)?
            }
            _ => return Err(StrictJsonError::Invalid),
        };
        out.push(decoded);
    }
    Ok(out)
}

/// Reads four hex digits from `chars` (the scanner checked they are there).
fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, StrictJsonError> {
    let rest = chars.as_str();
    let value = hex4_bytes(rest.as_bytes().get(..4))?;
    // Four hex digits are four ASCII bytes, so this is a character boundary.
    *chars = rest.get(4..).ok_or(StrictJsonError::Invalid)?.chars();
    Ok(value)
}

fn hex4_bytes(bytes: Option<&[u8]>) -> Result<u32, StrictJsonError> {
    let bytes = bytes.ok_or(StrictJsonError::Invalid)?;
    let mut value = 0u32;
    for byte in bytes {
        let digit = (*byte as char)
            .to_digit(16)
            .ok_or(StrictJsonError::Invalid)?;
        value = value << 4 | digit;
    }
    Ok(value)
}

/// Whether a byte may stand unescaped inside a string: not `"`, not `\\`, not a control
/// character.
fn is_plain(byte: u8) -> bool {
    byte >= 0x20 && byte != b'"' && byte != b'\\'
}

/// The positions of every `"` in a document with no `\\` and no byte below 0x20, one bit per
/// byte, built 16 bytes at a time. In such a document a string's closing quote is simply the
/// next quote, found with a bit scan instead of a byte loop.
struct QuoteIndex {
    words: ArrayVec<u64, { QuoteIndex::MAX_WORDS }>,
}

impl QuoteIndex {
    /// Documents up to 8 KiB are indexed; longer ones (beyond every default cap) scan bytes.
    const MAX_WORDS: usize = 128;

    /// Indexes `bytes` (built in place: the index is 1 KiB); false when some byte needs the
    /// byte-by-byte checks.
    fn fill(&mut self, bytes: &[u8]) -> bool {
        use wide::u8x16;
        if bytes.len() > Self::MAX_WORDS * 64 {
            return false;
        }
        let quote = u8x16::splat(b'"');
        let backslash = u8x16::splat(b'\\');
        let below_space = u8x16::splat(0x1F);
        let words = &mut self.words;
        let mut special = 0u32;
        let mut blocks = bytes.chunks_exact(64);
        let mut classify = |block: &[u8]| {
            let mut word = 0u64;
            for (lane, chunk) in block.chunks_exact(16).enumerate() {
                let mut lanes = [0u8; 16];
                lanes.copy_from_slice(chunk);
                let v = u8x16::new(lanes);
                word |= u64::from(v.simd_eq(quote).to_bitmask()) << (16 * lane);
                // A byte is a backslash or a control character (`max(b, 0x1F) == 0x1F`).
                special |=
                    (v.simd_eq(backslash) | v.max(below_space).simd_eq(below_space)).to_bitmask();
            }
            word
        };
        for block in blocks.by_ref() {
            let word = classify(block);
            words.push(word);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let mut padded = [b' '; 64];
            for (slot, byte) in padded.iter_mut().zip(rest) {
                *slot = *byte;
            }
            let word = classify(&padded);
            words.push(word);
        }
        special == 0
    }

    /// The position of the first quote at or after `from`.
    #[inline(always)]
    fn next(&self, from: usize) -> Option<usize> {
        let mut index = from / 64;
        let mut bits = self.words.get(index)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(index * 64 + bits.trailing_zeros() as usize);
            }
            index += 1;
            bits = *self.words.get(index)?;
        }
    }
}

/// A cursor over a document already known to be UTF-8, so every slice between ASCII
/// delimiters is a `&str` without further checks.
struct Scanner<'de, 'q> {
    text: &'de str,
    bytes: &'de [u8],
    pos: usize,
    /// Present when no string in the document has an escape or a control character, so every
    /// string ends at the next quote.
    quotes: Option<&'q QuoteIndex>,
}

impl<'de> Scanner<'de, '_> {
    fn new(bytes: &'de [u8]) -> Result<Self, StrictJsonError> {
        let text = std::str::from_utf8(bytes).map_err(|_| StrictJsonError::Invalid)?;
        Ok(Scanner {
            text,
            bytes,
            pos: 0,
            quotes: None,
        })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), StrictJsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(StrictJsonError::Invalid)
        }
    }

    /// Only whitespace may follow the document.
    fn finish(&mut self) -> Result<(), StrictJsonError> {
        self.skip_ws();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(StrictJsonError::Invalid)
        }
    }

    /// After a member or an element: `,` (true, another follows) or the container's `close`
    /// (false).
    #[inline]
    fn continues(&mut self, close: u8) -> Result<bool, StrictJsonError> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(byte) if byte == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(StrictJsonError::Invalid),
        }
    }

    /// Opens a container at `depth`: consumes `open` and whitespace; true when it is empty
    /// (`close` consumed too).
    #[inline]
    fn open(&mut self, open: u8, close: u8, depth: usize) -> Result<bool, StrictJsonError> {
        if depth >= MAX_DEPTH {
            return Err(StrictJsonError::Invalid);
        }
        self.expect(open)?;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Scans a string from its opening quote to just past its closing quote, checking escapes;
    /// returns where its text starts and whether it has escapes.
    #[inline(always)]
    fn scan_string(&mut self) -> Result<(usize, bool), StrictJsonError> {
        self.expect(b'"')?;
        let start = self.pos;
        if let Some(quotes) = self.quotes {
            self.pos = quotes.next(start).ok_or(StrictJsonError::Invalid)? + 1;
            return Ok((start, false));
        }
        let mut escaped = false;
        loop {
            self.pos += plain_prefix(self.bytes.get(self.pos..).unwrap_or(&[]));
            match self.peek().ok_or(StrictJsonError::Invalid)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1;
                        }
                        Some(b'u') => {
                            let code = hex4_bytes(self.bytes.get(self.pos + 1..self.pos + 5))?;
                            self.pos += 5;
                            match code {
                                0xD800..=0xDBFF => {
                                    // A high surrogate must be followed by a low one.
                                    if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                        return Err(StrictJsonError::Invalid);
                                    }
                                    let low =
                                        hex4_bytes(self.bytes.get(self.pos + 2..self.pos + 6))?;
                                    if !(0xDC00..=0xDFFF).contains(&low) {
                                        return Err(StrictJsonError::Invalid);
                                    }
                                    self.pos += 6;
                                }
                                0xDC00..=0xDFFF => return Err(StrictJsonError::Invalid),
                                _ => {}
                            }
                        }
                        _ => return Err(StrictJsonError::Invalid),
                    }
                }
                // A raw control character.
                _ => return Err(StrictJsonError::Invalid),
            }
        }
        self.pos += 1;
        Ok((start, escaped))
    }

    /// A member name starting at its opening quote, as the bytes of its decoded text (borrowed
    /// when it has no escapes): names are only compared, so they skip the `str` slicing.
    #[inline(always)]
    fn name(&mut self) -> Result<Cow<'de, [u8]>, StrictJsonError> {
        let (start, escaped) = self.scan_string()?;
        if escaped {
            return self
                .decoded(start)
                .map(|text| Cow::Owned(text.into_bytes()));
        }
        self.bytes
            .get(start..self.pos - 1)
            .map(Cow::Borrowed)
            .ok_or(StrictJsonError::Invalid)
    }

    /// The decoded text of the escaped string that starts at `start` and ends just before the
    /// cursor.
    #[cold]
    fn decoded(&self, start: usize) -> Result<String, StrictJsonError> {
        // The quotes are ASCII, so this slice lies on character boundaries.
        let raw = self
            .text
            .get(start..self.pos - 1)
            .ok_or(StrictJsonError::Invalid)?;
        unescape(raw)
    }

    /// A string starting at its opening quote, decoded (borrowed when it has no escapes).
    #[inline(always)]
    fn string(&mut self) -> Result<Cow<'de, str>, StrictJsonError> {
        let (start, escaped) = self.scan_string()?;
        if escaped {
            return self.decoded(start).map(Cow::Owned);
        }
        // The quotes are ASCII, so this slice lies on character boundaries.
        self.text
            .get(start..self.pos - 1)
            .map(Cow::Borrowed)
            .ok_or(StrictJsonError::Invalid)
    }

    /// A number per RFC 8259 §6; returns its text, and its `f64` value unless it is an integer
    /// of 16 to 18 digits (which always fits, and whose exact reading is left to the caller).
    /// Integers of up to 15 digits (every NumericDate) are read exactly in the same pass as
    /// their digits; fractions, exponents and longer integers are parsed and must fit an `f64`,
    /// so every reader agrees on the value.
    #[inline]
    fn number(&mut self) -> Result<(&'de str, Option<f64>), StrictJsonError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        let integer_start = start + usize::from(negative);
        // One pass over the integer digits with local state (no cursor reloads per digit).
        let rest = self.bytes.get(integer_start..).unwrap_or(&[]);
        let mut value = 0u64;
        let mut integer_digits = 0;
        for byte in rest {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
            integer_digits += 1;
        }
        self.pos = integer_start + integer_digits;
        // At least one digit, and no leading zero before another digit.
        if integer_digits == 0 || (integer_digits > 1 && rest.first() == Some(&b'0')) {
            return Err(StrictJsonError::Invalid);
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        let text = self
            .text
            .get(start..self.pos)
            .ok_or(StrictJsonError::Invalid)?;
        if integer && integer_digits <= 15 {
            // Below 10^15 < 2^53: exact as an f64.
            let magnitude = value as f64;
            return Ok((text, Some(if negative { -magnitude } else { magnitude })));
        }
        if integer && integer_digits <= 18 {
            return Ok((text, None));
        }
        let value = text.parse::<f64>().ok().filter(|v| v.is_finite());
        value
            .map(|v| (text, Some(v)))
            .ok_or(StrictJsonError::Invalid)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), StrictJsonError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(StrictJsonError::Invalid);
        }
        self.digits();
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), StrictJsonError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(StrictJsonError::Invalid)
        }
    }

    /// Validates one value without keeping it.
    fn skip_value(&mut self, depth: usize) -> Result<(), StrictJsonError> {
        match self.peek() {
            // Skipped strings are checked but neither sliced nor decoded.
            Some(b'"') => self.scan_string().map(|_| ()),
            Some(b'{') => {
                if self.open(b'{', b'}', depth)? {
                    return Ok(());
                }
                let mut seen = SeenNames::new();
                loop {
                    self.skip_ws();
                    let name = self.name()?;
                    seen.insert(name_tag(&name), name)?;
                    self.skip_ws();
                    self.expect(b':')?;
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    if !self.continues(b'}')? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                if self.open(b'[', b']', depth)? {
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    if !self.continues(b']')? {
                        return Ok(());
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    /// Reads one value one level deep (see [`Shallow`]).
    fn shallow_value(&mut self, depth: usize) -> Result<Shallow<'de>, StrictJsonError> {
        match self.peek() {
            Some(b'"') => Ok(Shallow::String(self.string()?)),
            Some(b'[') => {
                if self.open(b'[', b']', depth)? {
                    return Ok(Shallow::StringArray(Vec::new()));
                }
                let mut strings = Vec::new();
                let mut all_strings = true;
                loop {
                    self.skip_ws();
                    if all_strings && self.peek() == Some(b'"') {
                        strings.push(self.string()?);
                    } else {
                        all_strings = false;
                        self.skip_value(depth + 1)?;
                    }
                    if !self.continues(b']')? {
                        break;
                    }
                }
                Ok(if all_strings {
                    Shallow::StringArray(strings)
                } else {
                    Shallow::Other
                })
            }
            Some(b't') => self.literal(b"true").map(|()| Shallow::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| Shallow::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| Shallow::Null),
            Some(b'{') => self.skip_value(depth).map(|()| Shallow::Other),
            _ => {
                let (text, checked) = self.number()?;
                if let Some(value) = checked {
                    return Ok(Shallow::Number(value));
                }
                text.parse::<f64>()
                    .map(Shallow::Number)
                    .map_err(|_| StrictJsonError::Invalid)
            }
        }
    }

    /// Builds one object, starting at its `{`.
    fn build_object(&mut self, depth: usize) -> Result<Map<String, Value>, StrictJsonError> {
        let mut map = Map::new();
        if self.open(b'{', b'}', depth)? {
            return Ok(map);
        }
        loop {
            self.skip_ws();
            let name = self.string()?.into_owned();
            // Refused as soon as the name repeats, as the walk does, so both report the same
            // first fault.
            if map.contains_key(&name) {
                return Err(StrictJsonError::DuplicateMember);
            }
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.build_value(depth + 1)?;
            map.insert(name, value);
            if !self.continues(b'}')? {
                return Ok(map);
            }
        }
    }

    /// Builds one value.
    fn build_value(&mut self, depth: usize) -> Result<Value, StrictJsonError> {
        match self.peek() {
            Some(b'"') => Ok(Value::String(self.string()?.into_owned())),
            Some(b'{') => self.build_object(depth).map(Value::Object),
            Some(b'[') => {
                let mut items = Vec::new();
                if self.open(b'[', b']', depth)? {
                    return Ok(Value::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.build_value(depth + 1)?);
                    if !self.continues(b']')? {
                        return Ok(Value::Array(items));
                    }
                }
            }
            Some(b't') => self.literal(b"true").map(|()| Value::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| Value::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| Value::Null),
            _ => {
                let (text, checked) = self.number()?;
                // serde_json's own reading of the checked text: integers stay exact.
                let number = if let Ok(n) = text.parse::<u64>() {
                    Number::from(n)
                } else if let Ok(n) = text.parse::<i64>() {
                    Number::from(n)
                } else {
                    checked
                        .or_else(|| text.parse::<f64>().ok())
                        .and_then(Number::from_f64)
                        .ok_or(StrictJsonError::Invalid)?
                };
                Ok(Value::Number(number))
            }
        }
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

    /// Strings ending on either side of each 64-byte block edge, in documents read through the
    /// quote index (no escapes), through the byte scan (one escape far away), and past the
    /// index's size limit, all read the same.
    #[test]
    fn quote_index_reads_strings_across_block_edges() {
        for pad in 50..80 {
            for (tail, limit) in [("", 0), (r#","z":"\n""#, 0), ("", 9000)] {
                let filler = "x".repeat(limit);
                let text = format!(
                    r#"{{"p":"{}","sub":"alice","n":12,"w":"{filler}"{tail},"aud":["a","b"]}}"#,
                    "y".repeat(pad)
                );
                let mut seen = Vec::new();
                walk_object(text.as_bytes(), &["sub", "aud", "n"], &mut |i, v| {
                    seen.push((i, v.clone()))
                })
                .expect("walks");
                assert_eq!(
                    seen,
                    vec![
                        (0, Shallow::String("alice".into())),
                        (2, Shallow::Number(12.0)),
                        (1, Shallow::StringArray(vec!["a".into(), "b".into()])),
                    ],
                    "pad {pad}, tail {tail:?}, filler {limit}"
                );
                let unterminated = format!(r#"{{"p":"{}"#, "y".repeat(pad));
                assert_eq!(
                    walk_object(unterminated.as_bytes(), &[], &mut |_, _| {}),
                    Err(StrictJsonError::Invalid)
                );
            }
        }
    }

    #[test]
    fn non_objects_and_trailing_data_rejected() {
        assert_eq!(parse_object(b"[]"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_object(b"{} {}"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_object(b"{"), Err(StrictJsonError::Invalid));
        assert!(parse_object(b" {\"a\" : 1 }\n").is_ok());
    }

    fn walk(
        doc: &[u8],
        wanted: &[&str],
    ) -> Result<Vec<(usize, Shallow<'static>)>, StrictJsonError> {
        let mut taken = Vec::new();
        walk_object(doc, wanted, &mut |i, v| {
            let owned = match v {
                Shallow::String(s) => Shallow::String(Cow::Owned(s.into_owned())),
                Shallow::StringArray(items) => Shallow::StringArray(
                    items
                        .into_iter()
                        .map(|s| Cow::Owned(s.into_owned()))
                        .collect(),
                ),
                Shallow::Null => Shallow::Null,
                Shallow::Bool(b) => Shallow::Bool(b),
                Shallow::Number(n) => Shallow::Number(n),
                Shallow::Other => Shallow::Other,
            };
            taken.push((i, owned));
        })?;
        Ok(taken)
    }

    #[test]
    fn walk_agrees_with_parse_object_on_strictness() {
        let docs: &[&[u8]] = &[
            br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"a":{"b":1,"b":1}}"#,
            br#"{"x":[{"k":1,"k":2}]}"#,
            br#"{"alg":"HS256","\u0061lg":"none"}"#,
            br#"{"s":"\ud800"}"#,
            br#"{"n":1e400}"#,
            br#"{"n":01}"#,
            b"{\"s\":\"\xff\"}",
            b"{\"s\":\"a\x01\"}",
            b"[]",
            b"{} {}",
            b"{",
            b" {\"a\" : 1 }\n",
            b"{\"a\":tru}",
        ];
        for doc in docs {
            let full = parse_object(doc).map(|_| ());
            let walked = walk(doc, &["a", "alg", "s"]).map(|_| ());
            assert_eq!(walked, full, "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn walk_hands_over_wanted_members_shallowly() {
        let doc = br#"{"iss":"i\u0073s","aud":["a","b"],"exp":17.5,"x":{"y":[1]},"nbf":1,"o":[1,"a"],"t":true,"z":null}"#;
        let got = walk(doc, &["iss", "aud", "exp", "nbf", "o", "t", "z", "x"]).expect("walks");
        assert_eq!(
            got,
            vec![
                (0, Shallow::String(Cow::Borrowed("iss"))),
                (
                    1,
                    Shallow::StringArray(vec![Cow::Borrowed("a"), Cow::Borrowed("b")])
                ),
                (2, Shallow::Number(17.5)),
                (7, Shallow::Other),
                (3, Shallow::Number(1.0)),
                (4, Shallow::Other),
                (5, Shallow::Bool(true)),
                (6, Shallow::Null),
            ]
        );
        // An array that stops being all strings is still validated to its end.
        assert_eq!(
            walk(br#"{"o":[1,{"k":1,"k":2}]}"#, &["o"]),
            Err(StrictJsonError::DuplicateMember)
        );
    }

    #[test]
    fn many_members_still_detect_duplicates() {
        let mut doc = String::from("{");
        for i in 0..200 {
            doc.push_str(&format!("\"m{i}\":{i},"));
        }
        doc.push_str("\"m150\":0}");
        assert_eq!(
            walk(doc.as_bytes(), &[]),
            Err(StrictJsonError::DuplicateMember)
        );
        let ok = doc.replace("\"m150\":0}", "\"m200\":0}");
        assert!(walk(ok.as_bytes(), &[]).is_ok());
    }

    #[test]
    fn nesting_limit_matches_serde_json() {
        let nested = |levels: usize| {
            format!(
                "{{\"a\":{}1{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        for levels in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1] {
            let doc = nested(levels);
            let theirs = serde_json::from_str::<Value>(&doc).is_ok();
            assert_eq!(
                parse_object(doc.as_bytes()).is_ok(),
                theirs,
                "{levels} levels"
            );
            assert_eq!(
                walk(doc.as_bytes(), &["a"]).is_ok(),
                theirs,
                "{levels} levels"
            );
            assert_eq!(theirs, levels <= MAX_DEPTH);
        }
    }
}
