//! Interleaved floor ratios: verdict's full path (token string to verdict) against the raw
//! aws-lc-rs verify with a pre-parsed key, on the same token, in alternating short blocks.
//!
//! Criterion measures one function after the other, so on a shared machine a load change
//! between the two skews their ratio by several percent. Here each block pair runs the two back
//! to back (alternating which goes first), and the figure is the median over all pairs of
//! `raw time / full time`, which is verdict's throughput relative to the engine's floor.
//!
//! Run: `cargo bench --bench floor [-- ALG...]` (about 20 s for all; bounded: 101 block pairs of ~2 ms each per
//! algorithm).
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

mod fixture;

use fixture::*;
use std::hint::black_box;
use std::time::{Duration, Instant};
use verdict::jose::Algorithm;
use verdict::policy::verify_token;

const BLOCK_PAIRS: usize = 101;
const BLOCK_TARGET: Duration = Duration::from_millis(2);

fn time_block(iterations: usize, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    start.elapsed()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

fn main() {
    let fx = fixture();
    let backend = verdict::crypto::AwsLcBackend::default();
    let claims = claims_json(fx.now, 1);
    println!("Interleaved floor ratios ({BLOCK_PAIRS} block pairs per algorithm, ~2 ms blocks)\n");
    println!(
        "| alg | raw per token | full per token | full / raw throughput: median | p25 | p75 |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    // Optional algorithm names to run, e.g. `cargo bench --bench floor -- RS256 EdDSA`.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for case in &fx.cases {
        if !only.is_empty() && !only.iter().any(|name| name == case.name) {
            continue;
        }
        let input = signing_input(case.name, case.kid, &claims);
        let sig = case.signer.sign(input.as_bytes());
        let jwt = token(&input, &sig);
        let (keys, policy) = if case.alg == Algorithm::HS256 {
            (&fx.symmetric, &fx.symmetric_policy)
        } else {
            (&fx.asymmetric, &fx.asymmetric_policy)
        };
        let raw = case.raw_verifier();
        assert!(raw(input.as_bytes(), &sig), "{}: raw verify", case.name);
        verify_token(jwt.as_bytes(), policy, keys, &backend, fx.now)
            .unwrap_or_else(|e| panic!("{}: verdict rejects: {e:?}", case.name));

        let mut run_raw = || {
            black_box(raw(black_box(input.as_bytes()), black_box(&sig)));
        };
        let mut run_full = || {
            black_box(
                verify_token(black_box(jwt.as_bytes()), policy, keys, &backend, fx.now).is_ok(),
            );
        };
        // Size the blocks from a short warm-up.
        let warm = time_block(200, &mut run_full);
        let per_op = warm / 200;
        let iterations =
            (BLOCK_TARGET.as_nanos() / per_op.as_nanos().max(1)).clamp(8, 100_000) as usize;

        let mut ratios = Vec::with_capacity(BLOCK_PAIRS);
        let mut raw_ns = Vec::with_capacity(BLOCK_PAIRS);
        let mut full_ns = Vec::with_capacity(BLOCK_PAIRS);
        for pair in 0..BLOCK_PAIRS {
            let (raw_time, full_time) = if pair % 2 == 0 {
                let r = time_block(iterations, &mut run_raw);
                (r, time_block(iterations, &mut run_full))
            } else {
                let f = time_block(iterations, &mut run_full);
                (time_block(iterations, &mut run_raw), f)
            };
            ratios.push(raw_time.as_secs_f64() / full_time.as_secs_f64());
            raw_ns.push(raw_time.as_nanos() as f64 / iterations as f64);
            full_ns.push(full_time.as_nanos() as f64 / iterations as f64);
        }
        for v in [&mut ratios, &mut raw_ns, &mut full_ns] {
            v.sort_by(f64::total_cmp);
        }
        let fmt = |ns: f64| {
            if ns >= 1000.0 {
                format!("{:.2} µs", ns / 1000.0)
            } else {
                format!("{ns:.0} ns")
            }
        };
        println!(
            "| {} | {} | {} | {:.3}× | {:.3}× | {:.3}× |",
            case.name,
            fmt(quantile(&raw_ns, 0.5)),
            fmt(quantile(&full_ns, 0.5)),
            quantile(&ratios, 0.5),
            quantile(&ratios, 0.25),
            quantile(&ratios, 0.75),
        );
    }
}
