//! When remote key sets are refetched: the sans-IO rules (every function takes `now` or a
//! random draw as an argument, so tests are deterministic), the lock-free rate limit on
//! unknown-`kid` refetches, and the bounded memory of `kid`s an IdP does not publish.
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A provider's refresh settings (config keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRules {
    /// `refresh_interval_s`: period when the IdP sends no `Cache-Control: max-age`.
    pub interval_s: u64,
    /// `min_refresh_s`: lower bound applied to an IdP's `max-age`.
    pub min_refresh_s: u64,
    /// `max_refresh_s`: upper bound applied to an IdP's `max-age`.
    pub max_refresh_s: u64,
    /// `kid_miss_refetch_interval_s`: at most one unknown-`kid` refetch per this period.
    pub kid_miss_interval_s: u64,
    /// `max_stale_s`: how long the last good key set serves while the IdP fails.
    pub max_stale_s: u64,
    /// `kid_miss_wait_ms`: how long a request with an unknown `kid` waits for a refetch.
    pub kid_miss_wait: Duration,
}

impl Default for RefreshRules {
    fn default() -> Self {
        RefreshRules {
            interval_s: 300,
            min_refresh_s: 60,
            max_refresh_s: 3600,
            kid_miss_interval_s: 5,
            max_stale_s: 86_400,
            kid_miss_wait: Duration::from_millis(500),
        }
    }
}

/// The share of a period taken off at random, so a fleet started together does not refetch in
/// step (the IdP sees requests spread over the last tenth of each period, never later).
const JITTER_SHARE: f64 = 0.1;

/// Longest wait between retries of a failing IdP (it doubles from 1 s up to this, or up to the
/// refresh interval when that is shorter).
const MAX_RETRY_S: u64 = 60;

impl RefreshRules {
    /// The period after a good answer: its `max-age` within `[min_refresh_s, max_refresh_s]`,
    /// else `refresh_interval_s`; less up to a tenth at random (`draw` in `[0, 1)`).
    pub fn after_success(&self, cache_control: Option<&str>, draw: f64) -> Duration {
        let base = match cache_control.and_then(max_age) {
            Some(age) => age.clamp(
                self.min_refresh_s,
                self.max_refresh_s.max(self.min_refresh_s),
            ),
            None => self.interval_s,
        };
        jittered(base, draw)
    }

    /// The wait before retrying after `failures` consecutive failed fetches (1 for the first):
    /// 1 s, 2 s, 4 s … up to the smaller of the refresh interval and a minute.
    pub fn after_failure(&self, failures: u32, draw: f64) -> Duration {
        let cap = self.interval_s.clamp(1, MAX_RETRY_S);
        let exponent = failures.saturating_sub(1).min(16);
        jittered((1u64 << exponent).min(cap), draw)
    }

    /// When the key set last confirmed good at `last_good` stops serving.
    pub fn stale_deadline(&self, last_good: u64) -> u64 {
        last_good.saturating_add(self.max_stale_s)
    }
}

fn jittered(base_s: u64, draw: f64) -> Duration {
    let base = Duration::from_secs(base_s.max(1));
    base.mul_f64(1.0 - JITTER_SHARE * draw.clamp(0.0, 1.0))
}

/// The `max-age` of a `Cache-Control` value; `no-cache`/`no-store` count as 0 (then the
/// `min_refresh_s` bound applies).
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = value.trim().trim_matches('"').parse::<u64>().ok();
        }
    }
    age
}

/// At most one unknown-`kid` refetch per interval, claimed without a lock from any core.
#[derive(Debug)]
pub struct KidMissGate {
    /// Milliseconds (on the caller's clock) of the last claimed refetch; 0 = never.
    last_ms: AtomicU64,
    interval_ms: u64,
}

impl KidMissGate {
    /// A gate letting one refetch through per `interval`.
    pub fn new(interval: Duration) -> KidMissGate {
        KidMissGate {
            last_ms: AtomicU64::new(0),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Claims the refetch slot at `now_ms`: true for exactly one caller per interval.
    pub fn try_claim(&self, now_ms: u64) -> bool {
        let last = self.last_ms.load(Ordering::Acquire);
        if last != 0 && now_ms.saturating_sub(last) < self.interval_ms {
            return false;
        }
        self.last_ms
            .compare_exchange(last, now_ms.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Slots in [`AbsentKids`]: a forged-`kid` flood beyond this many distinct values only costs
/// some of them a second (rate-limited) look.
pub const ABSENT_KID_SLOTS: usize = 4096;

/// `kid`s known to be missing from a provider's current key set, in fixed memory and without
/// a lock: each slot holds a keyed 64-bit digest of (`kid`, key-set generation). A new key set
/// (a new generation) forgets them all at once, so a `kid` that appears later is never refused
/// from this memory. The key is random per process, so nobody can aim two `kid`s at one slot
/// value.
#[derive(Debug)]
pub struct AbsentKids {
    slots: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl Default for AbsentKids {
    fn default() -> Self {
        AbsentKids {
            slots: (0..ABSENT_KID_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl AbsentKids {
    fn digest(&self, kid: &str, generation: u64) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(kid.as_bytes());
        hasher.write_u64(generation);
        hasher.finish().max(1)
    }

    fn slot(&self, digest: u64) -> Option<&AtomicU64> {
        self.slots.get((digest % ABSENT_KID_SLOTS as u64) as usize)
    }

    /// Remembers that `kid` is not in key-set `generation`.
    pub fn remember(&self, kid: &str, generation: u64) {
        let digest = self.digest(kid, generation);
        if let Some(slot) = self.slot(digest) {
            slot.store(digest, Ordering::Relaxed);
        }
    }

    /// Whether `kid` is known to be missing from key-set `generation`.
    pub fn contains(&self, kid: &str, generation: u64) -> bool {
        let digest = self.digest(kid, generation);
        self.slot(digest)
            .is_some_and(|slot| slot.load(Ordering::Relaxed) == digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RefreshRules {
        RefreshRules {
            interval_s: 300,
            min_refresh_s: 60,
            max_refresh_s: 3600,
            ..RefreshRules::default()
        }
    }

    #[test]
    fn max_age_is_bounded_and_jittered_early() {
        let r = rules();
        assert_eq!(r.after_success(None, 0.0), Duration::from_secs(300));
        assert_eq!(
            r.after_success(Some("public, max-age=900"), 0.0),
            Duration::from_secs(900)
        );
        assert_eq!(
            r.after_success(Some("max-age=5"), 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            r.after_success(Some("max-age=99999"), 0.0),
            Duration::from_secs(3600)
        );
        assert_eq!(
            r.after_success(Some("no-store"), 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            r.after_success(Some("max-age=oops"), 0.0),
            Duration::from_secs(300)
        );
        // The jitter only ever makes the wait shorter, by at most a tenth.
        let jittered = r.after_success(None, 0.999);
        assert!(jittered < Duration::from_secs(300) && jittered >= Duration::from_secs(270));
    }

    #[test]
    fn failures_back_off_up_to_the_interval() {
        let r = rules();
        let waits: Vec<u64> = (1..=9).map(|n| r.after_failure(n, 0.0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let fast = RefreshRules {
            interval_s: 1,
            ..rules()
        };
        assert_eq!(fast.after_failure(5, 0.0), Duration::from_secs(1));
        assert_eq!(r.stale_deadline(1000), 1000 + 86_400);
    }

    #[test]
    fn the_gate_lets_one_refetch_through_per_interval() {
        let gate = KidMissGate::new(Duration::from_secs(5));
        assert!(gate.try_claim(10_000));
        assert!(!gate.try_claim(10_001));
        assert!(!gate.try_claim(14_999));
        assert!(gate.try_claim(15_000));
        assert!(!gate.try_claim(15_000));
    }

    #[test]
    fn the_gate_admits_exactly_one_of_many_racing_threads() {
        let gate = std::sync::Arc::new(KidMissGate::new(Duration::from_secs(5)));
        let admitted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let gate = &gate;
                    scope.spawn(move || (0..1000).filter(|_| gate.try_claim(42_000)).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        assert_eq!(admitted, 1);
    }

    #[test]
    fn absent_kids_are_forgotten_with_the_generation() {
        let absent = AbsentKids::default();
        assert!(!absent.contains("forged", 1));
        absent.remember("forged", 1);
        assert!(absent.contains("forged", 1));
        assert!(!absent.contains("forged", 2), "a new key set forgets");
        assert!(!absent.contains("other", 1));
        // Bounded: remembering far more kids than slots keeps the memory the same size.
        for n in 0..(ABSENT_KID_SLOTS * 4) {
            absent.remember(&format!("k{n}"), 1);
        }
        assert_eq!(absent.slots.len(), ABSENT_KID_SLOTS);
    }
}
