//! Lock-free, sharded, bounded caches of answers, keyed by a keyed digest of the credential.
//!
//! The request path looks answers up from every core at once, so a lookup takes no lock: each
//! slot holds its entry through an [`ArcSwapOption`] (a well-kept, safe, lock-free pointer with
//! deferred reclamation, like crossbeam's epochs but without `unsafe` here), and a lookup
//! compares a tag, loads the pointer and compares the full 128-bit key. Only writers (a miss
//! being stored) take their shard's mutex, so two misses never race on one bucket.
//!
//! Eviction is CLOCK with a two-bit frequency per slot inside 8-way buckets: a new entry starts
//! cold (0), each hit warms it (up to 3), and a full bucket evicts a cold entry first, cooling
//! every entry one step only when none is cold. One pass over never-repeated tokens therefore
//! evicts only other cold entries and leaves the hot ones in place (scan resistance), where an
//! LRU would flush them.
//!
//! The cache knows nothing about tokens: keys come from [`Digester`] (HMAC-SHA256 under a random
//! per-process key, truncated to 128 bits, so no one can compute, let alone collide, another
//! credential's key), values are whatever the caller stores, and every entry carries its own
//! expiry, checked against the `now` the caller passes (sans-IO, so tests pin the clock).
#![forbid(unsafe_code)]

pub mod flight;

use arc_swap::ArcSwapOption;
use aws_lc_rs::{hmac, rand};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The key of a cache entry: 128 bits of a keyed digest, compared in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(pub u128);

/// Computes [`CacheKey`]s: HMAC-SHA256 under a key drawn at start, never written anywhere.
#[derive(Debug)]
pub struct Digester {
    key: hmac::Key,
}

impl Digester {
    /// A digester under a fresh random key.
    pub fn random() -> Result<Digester, CacheError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new())
            .map_err(|_| CacheError::NoRandomness)?;
        Ok(Digester { key })
    }

    /// The key for `bytes` read in context `domain` (so one credential found in two places,
    /// which may be judged differently, gets two keys).
    pub fn digest(&self, domain: u32, bytes: &[u8]) -> CacheKey {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&domain.to_le_bytes());
        context.update(bytes);
        let tag = context.sign();
        let mut first = [0u8; 16];
        for (out, byte) in first.iter_mut().zip(tag.as_ref()) {
            *out = *byte;
        }
        CacheKey(u128::from_le_bytes(first))
    }
}

/// Why a cache could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The system's random source failed.
    #[error("no randomness for the cache key")]
    NoRandomness,
}

/// Ways per bucket: 8 slots of 16 bytes fill two cache lines.
const WAYS: usize = 8;
/// The frequency bits in a slot's tag.
const FREQ_MASK: u64 = 0b11;
/// Hits needed to saturate an entry's frequency.
const FREQ_MAX: u64 = 3;
/// Set in every live tag, so a tag is never 0 (the empty slot).
const LIVE_BIT: u64 = 0b100;

/// One stored answer.
#[derive(Debug)]
pub struct Entry<V> {
    key: CacheKey,
    expires_at: u64,
    value: V,
}

impl<V> Entry<V> {
    /// When it stops being served (Unix seconds, exclusive).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The stored value.
    pub fn value(&self) -> &V {
        &self.value
    }
}

#[derive(Debug)]
struct Slot<V> {
    /// High key bits with [`LIVE_BIT`] and the frequency in the low bits; 0 = empty.
    tag: AtomicU64,
    entry: ArcSwapOption<Entry<V>>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            tag: AtomicU64::new(0),
            entry: ArcSwapOption::empty(),
        }
    }
}

#[derive(Debug)]
struct Shard<V> {
    slots: Box<[Slot<V>]>,
    /// Serialises writers to this shard; lookups never take it.
    writer: Mutex<()>,
    len: AtomicUsize,
}

/// What a cache has done, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Live entries (expired ones still holding a slot included until replaced).
    pub entries: usize,
    /// Entries pushed out by newer ones while still valid.
    pub evictions: u64,
}

/// A bounded, sharded cache with lock-free lookups. See the module docs.
#[derive(Debug)]
pub struct ShardedCache<V> {
    shards: Box<[Shard<V>]>,
    /// Buckets per shard, minus one (a power of two).
    bucket_mask: u64,
    evictions: AtomicU64,
}

fn tag_of(key: CacheKey) -> u64 {
    (((key.0 >> 64) as u64) | LIVE_BIT) & !FREQ_MASK
}

impl<V> ShardedCache<V> {
    /// A cache of at least `capacity` entries (rounded up to whole buckets) in `shards` shards
    /// (rounded up to a power of two). Every slot is allocated now, 16 bytes each.
    pub fn new(capacity: usize, shards: usize) -> ShardedCache<V> {
        let shards = shards.clamp(1, 1 << 12).next_power_of_two();
        let buckets_per_shard = capacity.div_ceil(WAYS * shards).max(1).next_power_of_two();
        let shards: Box<[Shard<V>]> = (0..shards)
            .map(|_| Shard {
                slots: (0..buckets_per_shard * WAYS)
                    .map(|_| Slot::default())
                    .collect(),
                writer: Mutex::new(()),
                len: AtomicUsize::new(0),
            })
            .collect();
        ShardedCache {
            shards,
            bucket_mask: buckets_per_shard as u64 - 1,
            evictions: AtomicU64::new(0),
        }
    }

    /// Entries the cache can hold.
    pub fn capacity(&self) -> usize {
        self.shards.len() * (self.bucket_mask as usize + 1) * WAYS
    }

    /// The shard and bucket of `key`. Both indices are masked to their lengths, so this is
    /// always `Some`; the `Option` only keeps indexing panic-free.
    fn bucket(&self, key: CacheKey) -> Option<(&Shard<V>, &[Slot<V>])> {
        let low = key.0 as u64;
        let shard = self.shards.get((low as usize) & (self.shards.len() - 1))?;
        let bucket_index = ((low >> 16) & self.bucket_mask) as usize;
        let slots = shard
            .slots
            .get(bucket_index * WAYS..(bucket_index + 1) * WAYS)?;
        Some((shard, slots))
    }

    /// Looks `key` up at `now` and hands its value to `read`; `None` when absent or expired
    /// (or when `read` declines it). Takes no lock.
    pub fn get_with<R>(
        &self,
        key: CacheKey,
        now: u64,
        read: impl FnOnce(&Entry<V>) -> Option<R>,
    ) -> Option<R> {
        let tag = tag_of(key);
        let (_, slots) = self.bucket(key)?;
        for slot in slots {
            let seen = slot.tag.load(Ordering::Acquire);
            if seen & !FREQ_MASK != tag {
                continue;
            }
            let guard = slot.entry.load();
            let Some(entry) = guard.as_ref() else {
                continue;
            };
            if entry.key != key {
                continue;
            }
            if entry.expires_at <= now {
                return None;
            }
            // Warm it; a saturated entry is not written again, so a hot entry's cache line
            // stays shared between cores.
            if seen & FREQ_MASK < FREQ_MAX {
                let _ =
                    slot.tag
                        .compare_exchange(seen, seen + 1, Ordering::Relaxed, Ordering::Relaxed);
            }
            return read(entry);
        }
        None
    }

    /// Stores `value` under `key` until `expires_at` (exclusive), replacing an older value of
    /// the same key, else an empty or expired slot, else the coldest entry of its bucket.
    pub fn insert(&self, key: CacheKey, expires_at: u64, value: V, now: u64) {
        if expires_at <= now {
            return;
        }
        let tag = tag_of(key);
        let Some((shard, slots)) = self.bucket(key) else {
            return;
        };
        let Ok(_writer) = shard.writer.lock() else {
            return;
        };
        let entry = Arc::new(Entry {
            key,
            expires_at,
            value,
        });
        let mut reusable = None;
        for (index, slot) in slots.iter().enumerate() {
            let seen = slot.tag.load(Ordering::Acquire);
            if seen == 0 {
                reusable = reusable.or(Some((index, false)));
                continue;
            }
            let current = slot.entry.load();
            match current.as_ref() {
                Some(old) if old.key == key => {
                    slot.entry.store(Some(entry));
                    return;
                }
                Some(old) if old.expires_at <= now => {
                    reusable = reusable.or(Some((index, true)));
                }
                _ => {}
            }
        }
        let (victim, occupied) = match reusable {
            Some(found) => found,
            None => (coldest(slots), true),
        };
        let Some(slot) = slots.get(victim) else {
            return;
        };
        if occupied {
            if slot
                .entry
                .load()
                .as_ref()
                .is_some_and(|old| old.expires_at > now)
            {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            shard.len.fetch_add(1, Ordering::Relaxed);
        }
        // Empty the tag first: a reader that still sees the old tag finds a key that no longer
        // matches, never the wrong entry.
        slot.tag.store(0, Ordering::Release);
        slot.entry.store(Some(entry));
        slot.tag.store(tag, Ordering::Release);
    }

    /// Removes `key`, if present.
    pub fn remove(&self, key: CacheKey) {
        let tag = tag_of(key);
        let Some((shard, slots)) = self.bucket(key) else {
            return;
        };
        let Ok(_writer) = shard.writer.lock() else {
            return;
        };
        for slot in slots {
            if slot.tag.load(Ordering::Acquire) & !FREQ_MASK == tag
                && slot.entry.load().as_ref().is_some_and(|e| e.key == key)
            {
                slot.tag.store(0, Ordering::Release);
                slot.entry.store(None);
                shard.len.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self
                .shards
                .iter()
                .map(|s| s.len.load(Ordering::Relaxed))
                .sum(),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

/// The CLOCK victim of a full bucket: the first cold entry, cooling every entry a step until
/// one is cold (at most [`FREQ_MAX`] rounds). Runs under the shard's writer lock.
fn coldest<V>(slots: &[Slot<V>]) -> usize {
    for _ in 0..=FREQ_MAX {
        if let Some(index) = slots
            .iter()
            .position(|s| s.tag.load(Ordering::Relaxed) & FREQ_MASK == 0)
        {
            return index;
        }
        for slot in slots {
            // Readers may warm a slot concurrently; losing that race only cools it a step late.
            let _ = slot
                .tag
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    (t & FREQ_MASK > 0).then(|| t - 1)
                });
        }
    }
    0
}

#[cfg(test)]
mod tests;
