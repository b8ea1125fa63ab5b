//! The published revocation snapshot: a shared base of hashed keys plus a small delta, so a
//! change publishes a new snapshot without copying every key (the base is rebuilt only once the
//! delta grows past [`MAX_DELTA`]).

use super::RevocationKeys;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Delta size past which the store folds the delta into a new base.
pub(super) const MAX_DELTA: usize = 4096;

/// Keys are already keyed hashes: hashing them again would only cost time.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this; fold anything else in case.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

pub(super) type KeySet = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// One immutable view of every live revocation, as the request path sees it.
#[derive(Debug, Clone, Default)]
pub struct RevocationSet {
    pub(super) base: Arc<KeySet>,
    /// Keys revoked since the base was built.
    pub(super) added: KeySet,
    /// Base keys no longer revoked.
    pub(super) removed: KeySet,
    /// Per provider (hashed name): tokens issued before this time are revoked.
    pub(super) issued_before: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    /// Live entries behind this snapshot.
    pub(super) entries: usize,
}

impl RevocationSet {
    /// Whether a token with these keys is revoked. O(1): at most four hash probes and one
    /// per-provider bound, and nothing at all while no revocation is live.
    pub fn revokes(&self, keys: &RevocationKeys) -> bool {
        if self.entries == 0 {
            return false;
        }
        if keys
            .selectors
            .iter()
            .any(|&key| key != 0 && self.contains(key))
        {
            return true;
        }
        self.issued_before
            .get(&keys.provider)
            .is_some_and(|&before| keys.iat.is_none_or(|iat| iat < before))
    }

    /// Live entries behind this snapshot.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether no revocation is live.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        self.added.contains(&key) || (self.base.contains(&key) && !self.removed.contains(&key))
    }
}
