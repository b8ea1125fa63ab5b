//! Interleaved floor ratios: verdict's full path (token string to verdict) against the raw
//! aws-lc-rs verify with a pre-parsed key, and against verdict's own engine call (the backend
//! alone on the decoded token, i.e. what the parse and the claims cost on top), on the same
//! token, in alternating short blocks.
//!
//! Criterion measures one function after the other, so on a shared machine a load change
//! between the two skews their ratio by several percent. Here each block pair runs the two back
//! to back (alternating which goes first), and the figure is the median over all pairs of
//! `raw time / full time`, which is verdict's throughput relative to the engine's floor.
//!
//! The same for Ed25519 batches of 128 against single aws-lc-rs verification, per signature.
//!
//! Run: `cargo bench --bench floor [-- RS256|EdDSA|...|batch ...]` (under a minute for all;
//! bounded: 101 block pairs of ~2 ms per side per row).
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

mod fixture;

use aws_lc_rs::signature::{self, ParsedPublicKey};
use fixture::*;
use std::hint::black_box;
use std::time::{Duration, Instant};
use verdict::crypto::Backend;
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

/// Runs `first` and `second` in alternating block pairs; returns the sorted per-pair ratios
/// `(second per-unit time) / (first per-unit time)` and each side's sorted per-unit times, where
/// a call of `first` does `first_units` units of work and a call of `second` `second_units`.
fn interleave(
    mut first: impl FnMut(),
    first_units: f64,
    mut second: impl FnMut(),
    second_units: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    // Size the blocks from a short warm-up of the slower side.
    let calls = |op: &mut dyn FnMut()| {
        let warm = time_block(20, op);
        (BLOCK_TARGET.as_nanos() / (warm / 20).as_nanos().max(1)).clamp(4, 100_000) as usize
    };
    let first_calls = calls(&mut first);
    let second_calls = calls(&mut second);
    let (mut ratios, mut first_ns, mut second_ns) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..BLOCK_PAIRS {
        let mut run_first = || time_block(first_calls, &mut first);
        let mut run_second = || time_block(second_calls, &mut second);
        let (a, b) = if pair % 2 == 0 {
            let a = run_first();
            (a, run_second())
        } else {
            let b = run_second();
            (run_first(), b)
        };
        let a = a.as_nanos() as f64 / (first_calls as f64 * first_units);
        let b = b.as_nanos() as f64 / (second_calls as f64 * second_units);
        ratios.push(a / b);
        first_ns.push(a);
        second_ns.push(b);
    }
    for v in [&mut ratios, &mut first_ns, &mut second_ns] {
        v.sort_by(f64::total_cmp);
    }
    (ratios, first_ns, second_ns)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() {
    let fx = fixture();
    let backend = verdict::crypto::AwsLcBackend::default();
    let claims = claims_json(fx.now, 1);
    println!("Interleaved floor ratios ({BLOCK_PAIRS} block pairs per algorithm, ~2 ms blocks)\n");
    println!(
        "| alg | raw per token | engine per token | full per token | full / raw: median | p25 | p75 | full / engine: median | p25 | p75 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // Optional names to run (algorithms, or `batch`), e.g. `cargo bench --bench floor -- RS256`.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for case in &fx.cases {
        if !only.is_empty() && !only.iter().any(|name| name == case.name) {
            continue;
        }
        let signed = fx.signed(case, &claims, &backend);
        let (input, sig, jwt) = (&signed.input, &signed.sig, &signed.jwt);

        let run_raw = || {
            black_box((signed.raw)(black_box(input.as_bytes()), black_box(sig)));
        };
        let run_full = || {
            black_box(
                verify_token(
                    black_box(jwt.as_bytes()),
                    signed.policy,
                    signed.keys,
                    &backend,
                    fx.now,
                )
                .is_ok(),
            );
        };
        // verdict's own engine call on the decoded token, to separate what the engine costs
        // from what parsing and the claims cost.
        let run_engine = || {
            black_box(
                backend
                    .verify(signed.key, black_box(input.as_bytes()), black_box(sig))
                    .is_ok(),
            );
        };
        // Throughput ratio full/raw = raw time / full time.
        let (ratios, raw_ns, full_ns) = interleave(run_raw, 1.0, &run_full, 1.0);
        let (engine_ratios, engine_ns, _) = interleave(run_engine, 1.0, &run_full, 1.0);
        println!(
            "| {} | {} | {} | {} | {:.3}× | {:.3}× | {:.3}× | {:.3}× | {:.3}× | {:.3}× |",
            case.name,
            fmt_ns(quantile(&raw_ns, 0.5)),
            fmt_ns(quantile(&engine_ns, 0.5)),
            fmt_ns(quantile(&full_ns, 0.5)),
            quantile(&ratios, 0.5),
            quantile(&ratios, 0.25),
            quantile(&ratios, 0.75),
            quantile(&engine_ratios, 0.5),
            quantile(&engine_ratios, 0.25),
            quantile(&engine_ratios, 0.75),
        );
    }
    if only.is_empty() || only.iter().any(|name| name == "batch") {
        ed25519_batches(fx.now);
    }
}

/// Ed25519 batches of 128 tokens signed by one key (the usual case: one issuer key) and by 128
/// keys, per signature, against aws-lc-rs single verification.
fn ed25519_batches(now: u64) {
    const SIZE: usize = 128;
    let backend = verdict::crypto::AwsLcBackend::with_ed25519_batch_threshold(2);
    println!("\nEd25519 batch of {SIZE} vs aws-lc-rs single verify, per signature\n");
    println!("| keys | single | batch | speed-up: median | p25 | p75 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for distinct in [false, true] {
        let set = Ed25519Batch::new(&backend, SIZE, distinct, now);
        let jobs = set.jobs();
        let mut results = Vec::with_capacity(SIZE);
        backend.verify_batch(&jobs, &mut results);
        assert!(
            results.iter().all(Result::is_ok),
            "every signature verifies"
        );
        let single_key =
            ParsedPublicKey::new(&signature::ED25519, set.first_public).expect("Ed25519 key");
        let single = || {
            black_box(
                single_key
                    .verify_sig(
                        black_box(set.messages[0].as_bytes()),
                        black_box(&set.signatures[0]),
                    )
                    .is_ok(),
            );
        };
        let batch = || {
            backend.verify_batch(black_box(&jobs), &mut results);
            black_box(&results);
        };
        let (ratios, single_ns, batch_ns) = interleave(single, 1.0, batch, SIZE as f64);
        println!(
            "| {} | {} | {} | {:.3}× | {:.3}× | {:.3}× |",
            if distinct { "128 distinct" } else { "one" },
            fmt_ns(quantile(&single_ns, 0.5)),
            fmt_ns(quantile(&batch_ns, 0.5)),
            quantile(&ratios, 0.5),
            quantile(&ratios, 0.25),
            quantile(&ratios, 0.75),
        );
    }
}
