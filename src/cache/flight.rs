//! Single-flight: concurrent misses of one key wait for the first miss's work instead of each
//! doing it (a burst of one new token costs one signature check).
//!
//! Only misses come here, so a mutex per shard is fine: hits never touch it.

use super::CacheKey;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// One shard of in-flight work: the followers' receiver by key.
type Shard = Mutex<HashMap<u128, watch::Receiver<()>>>;

/// In-flight work by key.
#[derive(Debug)]
pub struct Flights {
    shards: Box<[Shard]>,
}

/// The caller's role for one key.
#[derive(Debug)]
pub enum Flight<'a> {
    /// Nobody is working on this key: do the work; others wait until this guard drops.
    Leader(Leader<'a>),
    /// Someone is: wait with [`Follower::wait`], then look again.
    Follower(Follower),
}

/// Held by the one caller doing the work; dropping it (done, failed or cancelled) releases the
/// followers.
#[derive(Debug)]
pub struct Leader<'a> {
    flights: &'a Flights,
    key: CacheKey,
    _done: watch::Sender<()>,
}

/// A caller waiting for a leader.
#[derive(Debug)]
pub struct Follower {
    done: watch::Receiver<()>,
}

impl Follower {
    /// Returns once the leader has finished (or was dropped).
    pub async fn wait(mut self) {
        // The leader never sends: `changed` returns when its sender drops.
        let _ = self.done.changed().await;
    }
}

impl Flights {
    /// A table sized for `shards` concurrent callers' worth of contention.
    pub fn new(shards: usize) -> Flights {
        let shards = shards.clamp(1, 1 << 10).next_power_of_two();
        Flights {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: CacheKey) -> Option<&Mutex<HashMap<u128, watch::Receiver<()>>>> {
        self.shards
            .get((key.0 as usize >> 3) & (self.shards.len() - 1))
    }

    /// Joins the flight for `key`, leading it when none is in the air. `None` only if the table
    /// is poisoned, in which case the caller just does the work itself.
    pub fn join(&self, key: CacheKey) -> Option<Flight<'_>> {
        let mut map = self.shard(key)?.lock().ok()?;
        if let Some(done) = map.get(&key.0) {
            return Some(Flight::Follower(Follower { done: done.clone() }));
        }
        let (sender, receiver) = watch::channel(());
        map.insert(key.0, receiver);
        Some(Flight::Leader(Leader {
            flights: self,
            key,
            _done: sender,
        }))
    }

    /// Keys in flight (for tests).
    pub fn in_flight(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|m| m.len()))
            .sum()
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if let Some(shard) = self.flights.shard(self.key)
            && let Ok(mut map) = shard.lock()
        {
            map.remove(&self.key.0);
        }
        // `_done` drops after this, waking the followers.
    }
}
