//! The answer caches in front of the decision: a verified-token cache, a negative cache and
//! single-flight for misses, keyed by a keyed digest of the credential and its source.
//!
//! A hit re-checks only what can end a stored answer ([`CachedAllow::stands`],
//! [`CachedDeny::stands`], expiry); it never parses the token or renders anything.

use crate::cache::flight::{Flight, Flights, Leader};
use crate::cache::{CacheError, CacheKey, Digester, ShardedCache};
use crate::config::CacheConfig;
use crate::policy::{CachedAllow, CachedDeny, Decision, Providers};
use crate::telemetry::names;
use metrics::{Counter, Gauge};

/// The negative cache holds a quarter as many entries as the verified one, at least this many.
const MIN_NEGATIVE_ENTRIES: usize = 1024;

/// Pre-resolved metric handles: a hit pays one atomic add, not a registry lookup.
#[derive(Debug)]
struct CacheMetrics {
    hit: Counter,
    miss: Counter,
    entries: Gauge,
    evictions: Counter,
}

impl CacheMetrics {
    fn new(cache: &'static str) -> CacheMetrics {
        let lookups = |result: &'static str| metrics::counter!(names::CACHE_LOOKUPS_TOTAL, names::labels::CACHE => cache, names::labels::RESULT => result);
        CacheMetrics {
            hit: lookups("hit"),
            miss: lookups("miss"),
            entries: metrics::gauge!(names::CACHE_ENTRIES, names::labels::CACHE => cache),
            evictions: metrics::counter!(names::CACHE_EVICTIONS_TOTAL, names::labels::CACHE => cache),
        }
    }
}

/// Both caches, their digester and the misses in flight.
#[derive(Debug)]
pub struct Answers {
    digester: Digester,
    verified: Option<ShardedCache<CachedAllow>>,
    negative: Option<ShardedCache<CachedDeny>>,
    flights: Flights,
    max_ttl_s: u64,
    negative_ttl_s: u64,
    verified_metrics: CacheMetrics,
    negative_metrics: CacheMetrics,
    flight_waits: Counter,
}

/// A lookup's outcome.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A stored answer that still stands.
    Hit(Decision),
    /// Not stored: decide, then [`Answers::store`] (the guard, if any, holds other misses of
    /// the same credential until it drops).
    Miss(CacheKey, Option<Leader<'a>>),
    /// Not stored, and another request is deciding it: wait on it, then look again.
    Wait(CacheKey, crate::cache::flight::Follower),
}

impl Answers {
    /// The caches `config` asks for; `None` when both are off. `shards` is usually a few per
    /// worker, so writers on different cores rarely share a shard.
    pub fn new(config: &CacheConfig, shards: usize) -> Result<Option<Answers>, CacheError> {
        if config.max_entries == 0 && config.negative_ttl_s == 0 {
            return Ok(None);
        }
        let verified =
            (config.max_entries > 0).then(|| ShardedCache::new(config.max_entries, shards));
        let negative = (config.negative_ttl_s > 0)
            .then(|| ShardedCache::new((config.max_entries / 4).max(MIN_NEGATIVE_ENTRIES), shards));
        Ok(Some(Answers {
            digester: Digester::random()?,
            verified,
            negative,
            flights: Flights::new(shards),
            max_ttl_s: config.max_ttl_s,
            negative_ttl_s: config.negative_ttl_s,
            verified_metrics: CacheMetrics::new("verified"),
            negative_metrics: CacheMetrics::new("negative"),
            flight_waits: metrics::counter!(names::CACHE_FLIGHT_WAITS_TOTAL),
        }))
    }

    /// The cache key of a credential found at source `source`.
    pub fn key(&self, source: u32, token: &str) -> CacheKey {
        self.digester.digest(source, token.as_bytes())
    }

    /// The verified cache's answer for `key`, if it still stands; a hit is counted, a miss is
    /// not (callers count misses where a lookup ends).
    fn verified_hit(&self, key: CacheKey, providers: &Providers, now: u64) -> Option<Decision> {
        let verified = self.verified.as_ref()?;
        let hit = verified.get_with(key, now, |entry| {
            let cached = entry.value();
            cached
                .stands(providers)
                .then(|| Decision::Allow(std::sync::Arc::clone(&cached.allowed)))
        });
        if hit.is_some() {
            self.verified_metrics.hit.increment(1);
        }
        hit
    }

    /// A stored answer for `key` that still stands on `providers` at `now`.
    pub fn get(&self, key: CacheKey, providers: &Providers, now: u64) -> Option<Decision> {
        if self.verified.is_some() {
            if let Some(decision) = self.verified_hit(key, providers, now) {
                return Some(decision);
            }
            self.verified_metrics.miss.increment(1);
        }
        if let Some(negative) = &self.negative {
            let hit = negative.get_with(key, now, |entry| {
                let cached = entry.value();
                cached.stands(providers).then(|| cached.decision())
            });
            if hit.is_some() {
                self.negative_metrics.hit.increment(1);
                return hit;
            }
            self.negative_metrics.miss.increment(1);
        }
        None
    }

    /// Looks `key` up, joining the flight for it on a miss.
    pub fn lookup(&self, key: CacheKey, providers: &Providers, now: u64) -> Lookup<'_> {
        if let Some(decision) = self.get(key, providers, now) {
            return Lookup::Hit(decision);
        }
        match self.flights.join(key) {
            Some(Flight::Follower(follower)) => {
                self.flight_waits.increment(1);
                Lookup::Wait(key, follower)
            }
            Some(Flight::Leader(leader)) => {
                // A previous leader may have stored its answer and left between the miss above
                // and this join: look once more so it is not verified twice.
                match self.verified_hit(key, providers, now) {
                    Some(decision) => Lookup::Hit(decision),
                    None => Lookup::Miss(key, Some(leader)),
                }
            }
            None => Lookup::Miss(key, None),
        }
    }

    /// Stores a fresh decision: an allowed JWT in the verified cache (facts from `current`, the
    /// snapshot after deciding), a denial its token decides in the negative cache (valid for
    /// `judged_on`, the snapshot it was decided on).
    pub fn store(
        &self,
        key: CacheKey,
        token: &str,
        decision: &Decision,
        judged_on: &Providers,
        current: &Providers,
        now: u64,
    ) {
        match decision {
            Decision::Allow(_) => {
                if let Some(verified) = &self.verified
                    && let Some((cached, expires_at)) =
                        CachedAllow::of(decision, token, current, now, self.max_ttl_s)
                {
                    verified.insert(key, expires_at, cached, now);
                    let stats = verified.stats();
                    self.verified_metrics.entries.set(stats.entries as f64);
                    self.verified_metrics.evictions.absolute(stats.evictions);
                }
            }
            Decision::Deny(..) => {
                if let Some(negative) = &self.negative
                    && let Some(cached) = CachedDeny::of(decision, judged_on)
                {
                    negative.insert(key, now.saturating_add(self.negative_ttl_s), cached, now);
                    let stats = negative.stats();
                    self.negative_metrics.entries.set(stats.entries as f64);
                    self.negative_metrics.evictions.absolute(stats.evictions);
                }
            }
        }
    }
}
