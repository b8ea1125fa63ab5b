//! Verification micro-benchmarks.
//!
//! Keys are generated once per process with aws-lc-rs; tokens are minted in the setup with
//! aws-lc-rs signing, header `{"alg","typ":"JWT","kid"}` and a ~300-byte access-token claims set
//! (iss, sub, aud, exp, nbf, iat, jti, azp, scope, roles, tenant).
//!
//! Groups:
//! - `verify_<ALG>` (RS256, PS256, ES256, ES384, EdDSA, HS256): these functions measured in the
//!   same run on the same token:
//!   - `aws_lc_raw`: aws-lc-rs on the already-decoded signing input and signature with a
//!     pre-parsed key (the engine's floor);
//!   - `verdict_full`: [`verdict::policy::verify_token`] from the token string to the verdict
//!     (parse, allow-list, `kid` lookup in a multi-key set, signature, claims, iss/aud/exp/nbf);
//!   - `backend_only`: verdict's engine call alone on the decoded token (should match
//!     `aws_lc_raw`: the difference to `verdict_full` is then all parsing and checking);
//!   - `verdict_full_map`: the same as `verdict_full`, then the full claims map built (verdict builds it only on
//!     demand: claim headers, metadata, the CLI), like for like with jsonwebtoken's map;
//!   - `jsonwebtoken_decode`: `jsonwebtoken::decode` (aws_lc_rs provider) with a `DecodingKey`
//!     built once and a `Validation` with the same iss/aud/exp/nbf checks, the popular-library
//!     baseline. Claims are decoded into a `serde_json::Map`, the same output verdict gives.
//! - `ed25519_batch`: per-signature cost of single Ed25519 verification against
//!   `AwsLcBackend::verify_batch` on 2..=128 messages, all signed by one key
//!   (`verify_batch_one_key`, the usual case: one issuer key) or each by its own key
//!   (`verify_batch`, the worst case); threshold 2, so the batch path runs at every size.
//!   Throughput is in signatures, so per-element times compare.
//!   curve25519-dalek picks its backend at run time: AVX-512 IFMA where the CPU has it, else
//!   AVX2; say which CPU a figure came from. `DEFAULT_ED25519_BATCH_THRESHOLD` is set from it.
//! - `parse`: `jose::parse_compact`, `KeySet::select`, the claims parse and check, the bare
//!   claims walk, and serde_json skipping the same claims (`IgnoredAny`, a reference for the
//!   walk's speed), to show where the full path's overhead over the raw verify goes.
//!
//! Run: `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3`, then
//! `python3 benches/ratios.py` for the table of medians and ratios.
#![allow(clippy::expect_used, missing_docs)]

use aws_lc_rs::signature::{self, ParsedPublicKey};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use serde_json::{Map, Value};
use std::hint::black_box;
use verdict::crypto::{AwsLcBackend, Backend};
use verdict::jose::{Algorithm, Limits, parse_compact};
use verdict::policy::verify_token;

mod fixture;

use fixture::*;

fn bench_algorithms(c: &mut Criterion) {
    let fx = fixture();
    let backend = AwsLcBackend::default();
    let claims = claims_json(fx.now, 1);
    eprintln!("claims set: {} bytes", claims.len());
    for case in &fx.cases {
        // Every path must accept the token before it is timed.
        let signed = fx.signed(case, &claims, &backend);
        let (input, sig, jwt) = (&signed.input, &signed.sig, &signed.jwt);
        let (keys, policy, raw) = (signed.keys, signed.policy, &signed.raw);
        let decoding_key = case.decoding_key();
        let mut validation = jsonwebtoken::Validation::new(case.jwt_alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE, "api://billing"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let decoded = jsonwebtoken::decode::<Map<String, Value>>(&jwt, &decoding_key, &validation)
            .unwrap_or_else(|e| panic!("{}: jsonwebtoken rejects: {e}", case.name));
        assert_eq!(decoded.claims.get("iss"), Some(&Value::from(ISSUER)));

        let mut group = c.benchmark_group(format!("verify_{}", case.name));
        group.throughput(Throughput::Elements(1));
        group.bench_function("aws_lc_raw", |b| {
            b.iter(|| black_box(raw(black_box(input.as_bytes()), black_box(sig))))
        });
        group.bench_function("verdict_full", |b| {
            b.iter(|| {
                black_box(verify_token(
                    black_box(jwt.as_bytes()),
                    policy,
                    keys,
                    &backend,
                    fx.now,
                ))
            })
        });
        // verdict's backend alone on the decoded token: the engine call without the parse.
        group.bench_function("backend_only", |b| {
            b.iter(|| {
                black_box(backend.verify(signed.key, black_box(input.as_bytes()), black_box(sig)))
            })
        });
        // The same, then the full claims map built (what the CLI and claim metadata use), to
        // compare like for like with jsonwebtoken's decode into a map.
        group.bench_function("verdict_full_map", |b| {
            b.iter(|| {
                let verified =
                    verify_token(black_box(jwt.as_bytes()), policy, keys, &backend, fx.now);
                black_box(verified.map(|v| v.claims.into_members()))
            })
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                black_box(jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&jwt),
                    &decoding_key,
                    &validation,
                ))
            })
        });
        group.finish();
    }
}

fn bench_parse(c: &mut Criterion) {
    let fx = fixture();
    let claims = claims_json(fx.now, 1);
    let case = fx
        .cases
        .iter()
        .find(|c| c.alg == Algorithm::RS256)
        .expect("RS256 case");
    let input = signing_input(case.name, case.kid, &claims);
    let jwt = token(&input, &case.signer.sign(input.as_bytes()));
    let limits = Limits::default();
    let jws = parse_compact(jwt.as_bytes(), &limits).expect("parses");
    let policy = &fx.asymmetric_policy;

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_compact_RS256", |b| {
        b.iter(|| black_box(parse_compact(black_box(jwt.as_bytes()), &limits)))
    });
    group.bench_function("keyset_select", |b| {
        b.iter(|| black_box(fx.asymmetric.select(black_box(&jws.header)).is_ok()))
    });
    group.bench_function("serde_json_ignored_any_claims", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(
                jws.payload(),
            )))
        })
    });
    group.bench_function("walk_claims", |b| {
        b.iter(|| {
            black_box(verdict::jose::json::walk_object(
                black_box(jws.payload()),
                &["iss", "aud", "exp", "nbf", "iat"],
                &mut |i, v| {
                    black_box((i, v));
                },
            ))
        })
    });
    group.bench_function("claims_parse_and_check", |b| {
        b.iter(|| {
            let claims = verdict::jose::Claims::from_payload(black_box(jws.payload().to_vec()));
            black_box(claims.and_then(|c| policy.rules.check(&jws.header, &c, fx.now)))
        })
    });
    group.finish();
}

fn bench_ed25519_batch(c: &mut Criterion) {
    const SIZES: [usize; 7] = [2, 4, 8, 16, 32, 64, 128];
    const MAX: usize = 128;
    let now = now_s();
    let backend = AwsLcBackend::with_ed25519_batch_threshold(2);
    // Tokens in a batch usually share their issuer's signing key (the realistic case, where the
    // per-key terms are summed); distinct keys are the worst case.
    let one_key = Ed25519Batch::new(&backend, MAX, false, now);
    let distinct = Ed25519Batch::new(&backend, MAX, true, now);
    let one_key_jobs = one_key.jobs();
    let distinct_jobs = distinct.jobs();
    let mut results = Vec::with_capacity(MAX);
    for jobs in [&one_key_jobs, &distinct_jobs] {
        backend.verify_batch(jobs, &mut results);
        assert!(
            results.iter().all(Result::is_ok),
            "every signature verifies"
        );
    }

    // The single-verification baseline: aws-lc-rs on the first job, key pre-parsed.
    let first = distinct_jobs.first().expect("one job");
    let raw_key =
        ParsedPublicKey::new(&signature::ED25519, distinct.first_public).expect("Ed25519 key");

    let mut group: BenchmarkGroup<'_, WallTime> = c.benchmark_group("ed25519_batch");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    group.bench_function("aws_lc_single", |b| {
        b.iter(|| {
            black_box(
                raw_key
                    .verify_sig(black_box(first.message), black_box(first.signature))
                    .is_ok(),
            )
        })
    });
    for (name, jobs) in [
        ("verify_batch_one_key", &one_key_jobs),
        ("verify_batch", &distinct_jobs),
    ] {
        for size in SIZES {
            let batch = jobs.get(..size).expect("enough jobs");
            group.throughput(Throughput::Elements(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size), batch, |b, batch| {
                b.iter(|| {
                    backend.verify_batch(black_box(batch), &mut results);
                    black_box(&results);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_algorithms, bench_parse, bench_ed25519_batch);
criterion_main!(benches);
