//! The answer cache: hit lookups, inserts into a full cache, and memory per entry, for
//! verdict's `ShardedCache` against `quick_cache` (a well-kept concurrent cache crate, S3-FIFO
//! eviction, sharded, lock-striped), in one run; plus the whole hit path of a check
//! (`ServiceState::decide` of a repeated RS256 token: credential extraction, keyed digest of
//! the token, lookup, the checks a hit runs, the revocation probe).
//!
//! - `cache_hit/*`: lookups of keys present in a cache of 1,000,000 capacity holding 250,000
//!   entries, in a shuffled order (so they miss the CPU caches as a big working set does).
//! - `cache_hit_hot4096/*`: the same over 4,096 of those keys (a hot set in the CPU caches).
//! - `cache_insert/*`: inserts of new keys into a full cache (every insert evicts).
//! - memory: resident bytes per entry (the growth of `VmRSS`), printed before the
//!   benchmarks (slots included; the value is a 48-byte stand-in for the cached answer's
//!   bookkeeping; the rendered answer itself is shared, not counted).
//!
//! Run: `cargo bench --bench cache`.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

mod fixture;

use arc_swap::ArcSwap;
use aws_lc_rs::signature;
use criterion::{BatchSize, Criterion, Throughput};
use fixture::*;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use verdict::cache::{CacheKey, Digester, ShardedCache};
use verdict::config::CacheConfig;
use verdict::crypto::{AwsLcBackend, Backend};
use verdict::jose::{Algorithm, Limits};
use verdict::keys::KeySet;
use verdict::policy::{CredentialSource, Decision, Provider, Providers, RequestView, TokenPolicy};
use verdict::rpc::ServiceState;
use verdict::rpc::answers::Answers;

/// Resident bytes of this process (`VmRSS`), for the per-entry figures: a measurement that
/// needs no allocator hook (every slot and entry is written when made, so it is resident).
fn resident_bytes() -> isize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<isize>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

const CAPACITY: usize = 1_000_000;
const ENTRIES: usize = 250_000;
const SHARDS: usize = 64;
const NOW: u64 = 1_900_000_000;

/// A stand-in for a cached answer's bookkeeping (the shared rendered answer, configuration id,
/// provider, key generation and fingerprint): the same size as `CachedAllow`.
#[derive(Debug, Clone)]
struct Value {
    /// Held, as the real entry holds its rendered answer; never read here.
    _answer: Arc<()>,
    facts: [u64; 5],
}

fn value(shared: &Arc<()>, i: u64) -> Value {
    Value {
        _answer: Arc::clone(shared),
        facts: [i; 5],
    }
}

fn keys(count: usize) -> Vec<CacheKey> {
    let digester = Digester::random().expect("digester");
    (0..count as u64)
        .map(|i| digester.digest(0, &i.to_le_bytes()))
        .collect()
}

/// A deterministic shuffle (xorshift), so lookups jump around memory.
fn shuffled(mut keys: Vec<CacheKey>) -> Vec<CacheKey> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..keys.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        keys.swap(i, (state % (i as u64 + 1)) as usize);
    }
    keys
}

fn verdict_cache(keys: &[CacheKey], shared: &Arc<()>) -> ShardedCache<Value> {
    let cache = ShardedCache::new(CAPACITY, SHARDS);
    for (i, key) in keys.iter().enumerate() {
        cache.insert(*key, NOW + 3600, value(shared, i as u64), NOW);
    }
    cache
}

fn quick(keys: &[CacheKey], shared: &Arc<()>) -> quick_cache::sync::Cache<u128, Arc<Value>> {
    let cache = quick_cache::sync::Cache::new(CAPACITY);
    for (i, key) in keys.iter().enumerate() {
        cache.insert(key.0, Arc::new(value(shared, i as u64)));
    }
    cache
}

/// Heap bytes per entry of each cache, holding `ENTRIES` entries.
fn memory(keys: &[CacheKey], shared: &Arc<()>) {
    let before = resident_bytes();
    let ours = verdict_cache(keys, shared);
    let ours_bytes = resident_bytes() - before;
    let before = resident_bytes();
    let theirs = quick(keys, shared);
    let theirs_bytes = resident_bytes() - before;
    let empty_before = resident_bytes();
    let empty = ShardedCache::<Value>::new(CAPACITY, SHARDS);
    let slots_bytes = resident_bytes() - empty_before;
    eprintln!(
        "memory, {ENTRIES} entries in a {CAPACITY}-capacity cache: verdict {:.0} bytes/entry \
         ({:.0} of them the preallocated slots; {:.0} bytes/entry when full), quick_cache {:.0} bytes/entry",
        ours_bytes as f64 / ENTRIES as f64,
        slots_bytes as f64 / ENTRIES as f64,
        slots_bytes as f64 / CAPACITY as f64 + (ours_bytes - slots_bytes) as f64 / ENTRIES as f64,
        theirs_bytes as f64 / ENTRIES as f64,
    );
    drop((ours, theirs, empty));
}

fn bench_hits(c: &mut Criterion, keys: &[CacheKey], shared: &Arc<()>) {
    let order = shuffled(keys.to_vec());
    let ours = verdict_cache(keys, shared);
    let theirs = quick(keys, shared);
    let mut group = c.benchmark_group("cache_hit");
    group.throughput(Throughput::Elements(order.len() as u64));
    group.sample_size(20);
    group.bench_function("verdict_sharded", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for key in &order {
                found += ours
                    .get_with(*key, NOW, |entry| Some(entry.value().facts[0]))
                    .unwrap_or(0);
            }
            black_box(found)
        })
    });
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for key in &order {
                found += theirs.get(&key.0).map_or(0, |v| v.facts[0]);
            }
            black_box(found)
        })
    });
    group.finish();

    // A hot working set that fits the CPU caches: what a few popular tokens cost.
    let hot: Vec<CacheKey> = order.iter().take(4096).copied().collect();
    let mut group = c.benchmark_group("cache_hit_hot4096");
    group.throughput(Throughput::Elements(hot.len() as u64));
    group.bench_function("verdict_sharded", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for key in &hot {
                found += ours
                    .get_with(*key, NOW, |entry| Some(entry.value().facts[0]))
                    .unwrap_or(0);
            }
            black_box(found)
        })
    });
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for key in &hot {
                found += theirs.get(&key.0).map_or(0, |v| v.facts[0]);
            }
            black_box(found)
        })
    });
    group.finish();
}

fn bench_inserts(c: &mut Criterion, shared: &Arc<()>) {
    const BATCH: usize = 10_000;
    let full = keys(CAPACITY);
    let fresh = keys(BATCH * 64);
    let ours = verdict_cache(&full, shared);
    let theirs = quick(&full, shared);
    let mut group = c.benchmark_group("cache_insert");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    let mut round = 0usize;
    group.bench_function("verdict_sharded", |b| {
        b.iter_batched(
            || {
                round = (round + 1) % 64;
                &fresh[round * BATCH..(round + 1) * BATCH]
            },
            |batch| {
                for (i, key) in batch.iter().enumerate() {
                    ours.insert(*key, NOW + 3600, value(shared, i as u64), NOW);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("quick_cache", |b| {
        b.iter_batched(
            || {
                round = (round + 1) % 64;
                &fresh[round * BATCH..(round + 1) * BATCH]
            },
            |batch| {
                for (i, key) in batch.iter().enumerate() {
                    theirs.insert(key.0, Arc::new(value(shared, i as u64)));
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The whole hit path of one check: `decide` of a repeated RS256 token through the caches,
/// against the same token decided with the caches off (a full verification).
fn bench_decide(c: &mut Criterion) {
    let backend = AwsLcBackend::default();
    let (signer, public) = rsa_key(&signature::RSA_PKCS1_SHA256);
    let jwks = format!(r#"{{"keys":[{}]}}"#, public.jwk("k1", "RS256"));
    let keys = KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::RS256], &backend).expect("jwks");
    let provider = Provider {
        name: "corp".into(),
        policy: TokenPolicy {
            algorithms: vec![Algorithm::RS256],
            rules: rules(),
            limits: Limits::default(),
        },
        keys: Arc::new(keys),
        keys_generation: 1,
        keys_loaded_at: Some(now_s()),
        keys_error: None,
        live: None,
        introspection: None,
        claims_to_headers: vec![
            ("sub".into(), "x-verdict-sub".into()),
            ("scope".into(), "x-verdict-scope".into()),
        ],
        claims_to_metadata: Vec::new(),
        required_scopes: Vec::new(),
        source: CredentialSource::default(),
    };
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let state = |answers: Option<Arc<Answers>>| ServiceState {
        providers: Arc::new(ArcSwap::from_pointee(Providers::new(vec![
            provider.clone(),
        ]))),
        backend: Arc::clone(&backend),
        clock: verdict::rpc::system_clock,
        answers,
        revocations: Default::default(),
    };
    let cached = state(
        Answers::new(&CacheConfig::default(), SHARDS)
            .expect("answers")
            .map(Arc::new),
    );
    let uncached = state(None);
    let input = signing_input("RS256", "k1", &claims_json(now_s(), 1));
    let jwt = token(&input, &signer.sign(input.as_bytes()));
    let headers: HashMap<String, String> = [("authorization".to_owned(), format!("Bearer {jwt}"))]
        .into_iter()
        .collect();
    let view = RequestView {
        headers: &headers,
        path: "/orders",
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for state in [&cached, &uncached] {
        let decision = runtime.block_on(state.decide(&view));
        assert!(matches!(decision, Decision::Allow(_)), "{decision:?}");
    }
    let mut group = c.benchmark_group("decide_rs256_repeated");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cache_hit", |b| {
        b.iter(|| runtime.block_on(cached.decide(black_box(&view))))
    });
    group.bench_function("no_cache", |b| {
        b.iter(|| runtime.block_on(uncached.decide(black_box(&view))))
    });
    group.finish();
}

fn main() {
    let shared = Arc::new(());
    let keys = keys(ENTRIES);
    memory(&keys, &shared);
    let mut c = Criterion::default().configure_from_args();
    bench_hits(&mut c, &keys, &shared);
    bench_inserts(&mut c, &shared);
    bench_decide(&mut c);
    c.final_summary();
}
