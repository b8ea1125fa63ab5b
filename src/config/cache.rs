//! `[cache]`: the bounds of the answer caches (verified tokens, denials, introspection results).
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use serde::Deserialize;

/// `[cache]`: the bounds of remembered answers: the verified-token cache, the negative cache
/// and introspection results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `max_entries` (default 1000000): entries across all shards; 0 disables caching.
    pub max_entries: usize,
    /// `max_ttl_s` (default 300, at least 1): an entry lives until `min(token exp, now +
    /// max_ttl_s)`.
    pub max_ttl_s: u64,
    /// `negative_ttl_s` (default 10): bad and inactive tokens are remembered this long; 0
    /// disables.
    pub negative_ttl_s: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 1_000_000,
            max_ttl_s: 300,
            negative_ttl_s: 10,
        }
    }
}

pub(super) fn check_cache(cache: &CacheConfig) -> Result<(), Invalid> {
    if cache.max_ttl_s == 0 {
        return Err(invalid("cache.max_ttl_s", "must be at least 1 second"));
    }
    Ok(())
}
