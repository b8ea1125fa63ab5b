use super::flight::{Flight, Flights};
use super::*;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

fn key(n: u64) -> CacheKey {
    // Spread like a digest would: the bucket and tag bits differ between neighbours.
    let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n << 29);
    CacheKey(((mixed as u128) << 64) | u128::from(mixed.rotate_left(17) ^ n))
}

fn get(cache: &ShardedCache<u64>, k: CacheKey, now: u64) -> Option<u64> {
    cache.get_with(k, now, |e| Some(*e.value()))
}

#[test]
fn stores_replaces_expires_and_removes() {
    let cache = ShardedCache::new(64, 4);
    cache.insert(key(1), 100, 11, 10);
    assert_eq!(get(&cache, key(1), 10), Some(11));
    assert_eq!(get(&cache, key(2), 10), None);
    cache.insert(key(1), 100, 12, 10);
    assert_eq!(get(&cache, key(1), 99), Some(12));
    assert_eq!(cache.stats().entries, 1);
    // Expiry is exclusive: at `expires_at` it is gone.
    assert_eq!(get(&cache, key(1), 100), None);
    // Already expired: never stored.
    cache.insert(key(3), 10, 3, 10);
    assert_eq!(get(&cache, key(3), 9), None);
    cache.remove(key(1));
    assert_eq!(get(&cache, key(1), 10), None);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn a_key_differing_only_in_its_low_half_is_another_key() {
    let cache = ShardedCache::new(64, 1);
    let a = CacheKey(7 << 64 | 5);
    let b = CacheKey(7 << 64 | (5 | 1 << 40));
    let c = CacheKey(8 << 64 | 5);
    cache.insert(a, 100, 1, 0);
    assert_eq!(get(&cache, b, 0), None);
    assert_eq!(get(&cache, c, 0), None);
}

#[test]
fn stays_within_capacity_and_counts_evictions() {
    let cache = ShardedCache::new(1000, 8);
    let capacity = cache.capacity();
    assert!(capacity >= 1000);
    for n in 0..(capacity as u64 * 10) {
        cache.insert(key(n), 1000, n, 0);
    }
    let stats = cache.stats();
    assert!(stats.entries <= capacity, "{stats:?} > {capacity}");
    assert!(stats.evictions >= capacity as u64 * 8, "{stats:?}");
}

#[test]
fn one_pass_of_cold_tokens_does_not_flush_the_hot_ones() {
    let cache = ShardedCache::new(1024, 4);
    let hot: Vec<u64> = (0..256).collect();
    for n in &hot {
        cache.insert(key(*n), 1000, *n, 0);
        for _ in 0..3 {
            assert_eq!(get(&cache, key(*n), 0), Some(*n));
        }
    }
    // A scan ten times the capacity, each token seen once.
    for n in 1_000_000..1_010_000u64 {
        cache.insert(key(n), 1000, n, 0);
    }
    let kept = hot
        .iter()
        .filter(|n| get(&cache, key(**n), 0) == Some(**n))
        .count();
    assert_eq!(kept, hot.len(), "hot entries lost to one cold pass");
}

#[test]
fn digests_depend_on_the_key_the_domain_and_every_byte() {
    let a = Digester::random().expect("digester");
    let b = Digester::random().expect("digester");
    let token = b"header.payload.signature";
    assert_eq!(a.digest(0, token), a.digest(0, token));
    assert_ne!(a.digest(0, token), a.digest(1, token));
    assert_ne!(a.digest(0, token), b.digest(0, token));
    assert_ne!(a.digest(0, token), a.digest(0, b"header.payload.signaturf"));
}

/// Many threads store, look up, overwrite and remove at once. Every value is its key's number,
/// so a lookup answering for another key, or after its expiry, is caught.
#[test]
fn concurrent_readers_never_see_another_keys_value_or_an_expired_one() {
    let cache = Arc::new(ShardedCache::<u64>::new(4096, 8));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4u64 {
        let cache = Arc::clone(&cache);
        let stop = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            let mut hits = 0u64;
            let mut n = t;
            for round in 0..200_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407)
                    % 20_000;
                let now = round / 1000;
                match round % 4 {
                    // Expires at n % 50 + now: a later lookup at a later `now` may not see it.
                    0 => cache.insert(key(n), now + 1 + n % 50, n, now),
                    1 => cache.remove(key(n)),
                    _ => {
                        if let Some(found) = cache.get_with(key(n), now, |e| {
                            assert!(e.expires_at() > now, "expired entry served");
                            Some(*e.value())
                        }) {
                            assert_eq!(found, n, "another key's value");
                            hits += 1;
                        }
                    }
                }
            }
            hits
        }));
    }
    let hits: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("stress thread"))
        .sum();
    stop.store(true, Ordering::Relaxed);
    assert!(hits > 0, "the stress never hit: it proves nothing");
    assert!(cache.stats().entries <= cache.capacity());
}

#[test]
fn removed_keys_are_never_served_again_while_others_write() {
    // The oracle: a key removed (revoked) before a lookup starts is never found by it.
    let cache = Arc::new(ShardedCache::<u64>::new(2048, 4));
    for n in 0..1000 {
        cache.insert(key(n), 1_000, n, 0);
    }
    let writer = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            for n in 10_000..60_000 {
                cache.insert(key(n), 1_000, n, 0);
            }
        })
    };
    let mut removed = HashSet::new();
    for n in (0..1000).step_by(3) {
        cache.remove(key(n));
        removed.insert(n);
        for r in &removed {
            assert_eq!(get(&cache, key(*r), 0), None, "removed {r} served");
        }
    }
    writer.join().expect("writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_wait_for_the_leader_and_a_dropped_leader_releases_them() {
    let flights = Arc::new(Flights::new(4));
    let Some(Flight::Leader(leader)) = flights.join(key(1)) else {
        panic!("the first caller leads");
    };
    let Some(Flight::Follower(follower)) = flights.join(key(1)) else {
        panic!("the second caller follows");
    };
    assert!(matches!(flights.join(key(2)), Some(Flight::Leader(_))));
    let waiting = tokio::spawn(follower.wait());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        !waiting.is_finished(),
        "released before the leader finished"
    );
    drop(leader);
    tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
        .await
        .expect("released")
        .expect("task");
    assert_eq!(flights.in_flight(), 0);
    assert!(matches!(flights.join(key(1)), Some(Flight::Leader(_))));
}
