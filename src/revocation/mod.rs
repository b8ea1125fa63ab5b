//! Revocations: tokens refused before they expire, by `jti`, `sub`, `sid`, `kid`, or "every token
//! of this provider issued before T".
//!
//! - [`RevocationKeys`] are what a verified token can be revoked by, hashed once when its answer
//!   is made (and kept in the cached answer), so the per-request check is a few hash probes.
//! - [`RevocationSet`] is an immutable snapshot published through an `ArcSwap`: every core loads
//!   it on every check, so a revocation is enforced everywhere as soon as it is published, cached
//!   answers included.
//! - [`RevocationStore`] owns the live entries and the durable [`log`]: an entry is appended and
//!   fsynced before it is published and acknowledged; at start the set is rebuilt from the log.
#![forbid(unsafe_code)]

pub mod log;
mod set;
mod store;
#[cfg(test)]
mod tests;
#[cfg(target_os = "linux")]
mod uring;

pub use log::{LogError, LogRecord, RevocationLog};
pub use set::RevocationSet;
pub use store::{ChangeObserver, NewRevocation, Opened, RevocationStore, StoreError};

use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// Longest selector value, `reason` and provider name accepted (bytes).
pub const MAX_VALUE_BYTES: usize = 1024;

/// What a revocation matches, within one provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// The token whose `jti` is this.
    Jti(String),
    /// Every token whose `sub` is this.
    Sub(String),
    /// Every token whose `sid` (session) is this.
    Sid(String),
    /// Every token signed with the key whose `kid` is this.
    Kid(String),
    /// Every token whose `iat` is before this Unix time (tokens without `iat` included: nothing
    /// proves they were issued later).
    IssuedBefore(u64),
}

/// The selector kinds, as named in the API and the metrics.
pub const SELECTOR_KINDS: [&str; 5] = ["jti", "sub", "sid", "kid", "issued_before"];

impl Selector {
    /// The selector's kind as the API names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Selector::Jti(_) => "jti",
            Selector::Sub(_) => "sub",
            Selector::Sid(_) => "sid",
            Selector::Kid(_) => "kid",
            Selector::IssuedBefore(_) => "issued_before",
        }
    }

    /// The hashed key this selector matches in `provider`; `None` for `issued_before`, which is
    /// a per-provider bound rather than a key.
    fn key(&self, provider: &str) -> Option<u64> {
        let (slot, value) = match self {
            Selector::Jti(v) => (Slot::Jti, v),
            Selector::Sub(v) => (Slot::Sub, v),
            Selector::Sid(v) => (Slot::Sid, v),
            Selector::Kid(v) => (Slot::Kid, v),
            Selector::IssuedBefore(_) => return None,
        };
        Some(selector_hash(provider, slot, value))
    }
}

/// One revocation, as stored, logged and answered by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Its id (`DELETE /v1/revocations/{id}`).
    pub id: String,
    /// The provider whose tokens it matches.
    pub provider: String,
    /// What it matches.
    #[serde(flatten)]
    pub selector: Selector,
    /// Why, as the operator gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was accepted (Unix seconds).
    pub created_at: u64,
    /// When no token it matches can still be valid (Unix seconds); `None` = until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The fleet instance that accepted it, for an entry applied from the fleet's stream;
    /// `None` for one accepted here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Revocation {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum Slot {
    Jti = 0,
    Sub = 1,
    Sid = 2,
    Kid = 3,
}

/// A keyed hash of (provider, kind, value). The key is random per process so nobody can aim a
/// value at a revoked one; a collision could only add a denial, never remove one.
fn selector_hash(provider: &str, slot: Slot, value: &str) -> u64 {
    let mut hasher = hash_key().build_hasher();
    hasher.write(provider.as_bytes());
    // 0xff never occurs in UTF-8, so (provider, value) pairs cannot run into each other.
    hasher.write_u8(0xff);
    hasher.write_u8(slot as u8);
    hasher.write(value.as_bytes());
    nonzero(hasher.finish())
}

fn provider_hash(provider: &str) -> u64 {
    let mut hasher = hash_key().build_hasher();
    hasher.write(provider.as_bytes());
    hasher.write_u8(0xfe);
    nonzero(hasher.finish())
}

/// 0 marks an absent claim in [`RevocationKeys`].
fn nonzero(hash: u64) -> u64 {
    hash.max(1)
}

fn hash_key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

/// What one verified token can be revoked by, hashed: computed once per verification and kept
/// with its cached answer, so a check hashes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationKeys {
    provider: u64,
    /// `jti`, `sub`, `sid`, `kid`, each 0 when the token has none.
    selectors: [u64; 4],
    iat: Option<u64>,
}

impl RevocationKeys {
    /// The keys of a token of `provider` with these claims and header `kid`.
    pub fn of(
        provider: &str,
        jti: Option<&str>,
        sub: Option<&str>,
        sid: Option<&str>,
        kid: Option<&str>,
        iat: Option<u64>,
    ) -> RevocationKeys {
        let hash =
            |slot, value: Option<&str>| value.map_or(0, |v| selector_hash(provider, slot, v));
        RevocationKeys {
            provider: provider_hash(provider),
            selectors: [
                hash(Slot::Jti, jti),
                hash(Slot::Sub, sub),
                hash(Slot::Sid, sid),
                hash(Slot::Kid, kid),
            ],
            iat,
        }
    }
}
