//! Many providers on the request path: the whole decision for one request through
//! [`ServiceState::decide`] (the async path ext_authz uses: credential extraction → provider
//! selection by `iss` → parse → key selection → signature → claims and scopes → claim headers
//! rendered), with 1, 2 and 64 providers configured.
//!
//! Every provider has its own issuer (`https://idp-NN.example.com/realms/tenant-NN`) and its
//! own inline key set (an RS256 key, an Ed25519 key and a rotated-out RS256 key, all generated
//! here), the same claim rules (iss, aud, exp/nbf, 30 s leeway), a required scope and three
//! claim headers, and reads the default `Authorization: Bearer` credential. The token's
//! provider is one and the same `Provider` value in every case, so every case decides the very
//! same token against the very same keys; only the set around it changes:
//! - `1`: it alone (`Providers::select` then skips reading `iss` entirely);
//! - `2`: after one other provider (`iss` read, one hash lookup);
//! - `64_mid` / `64_end`: at index 32 / 63 of 64 providers;
//! - `1_again` (interleaved table only): a second, identical 1-provider set, so the spread of
//!   the `1_again / 1` ratio shows what "within noise" is on this machine.
//!
//! Tokens: RS256 and EdDSA, with fixture's header (`alg`, `typ`, `kid`) and a ~300-byte
//! access-token claims set. EdDSA goes through the per-core batcher as in the server (alone on
//! its core, so a batch of one: a scheduling round, then the single check).
//!
//! Two measurements in one process:
//! - criterion groups `providers_RS256` and `providers_EdDSA` (one case after the other);
//! - an interleaved table: rounds of ~2 ms blocks of every case in rotating order, reporting per
//!   case the median time per decision (whole blocks) and per-request latency quantiles (each
//!   decision timed alone, in separate blocks), and per round the time ratios between cases
//!   (median and quartiles over the rounds): a load change on the shared machine hits every
//!   case of a round alike.
//!
//! Run: `cargo bench --bench providers` (about a minute; `-- interleaved` for the table alone).
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

mod fixture;

use arc_swap::ArcSwap;
use aws_lc_rs::signature;
use criterion::{BenchmarkId, Criterion, Throughput};
use fixture::*;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use verdict::crypto::{AwsLcBackend, Backend};
use verdict::jose::{Algorithm, ClaimRules, Limits};
use verdict::keys::KeySet;
use verdict::policy::{CredentialSource, Decision, Provider, Providers, RequestView, TokenPolicy};
use verdict::rpc::{ServiceState, system_clock};

/// Providers in the large set.
const MANY: usize = 64;
/// Rounds of the interleaved table (each round: every case, a throughput block and a latency
/// block of ~2 ms each).
const ROUNDS: usize = 201;
const BLOCK_TARGET: Duration = Duration::from_millis(2);

fn issuer(index: usize) -> String {
    format!("https://idp-{index:02}.example.com/realms/tenant-{index:02}")
}

/// fixture's ~300-byte access-token claims set, with this provider's issuer.
fn claims(iss: &str, now: u64) -> String {
    claims_json(now, 1).replace(ISSUER, iss)
}

/// A provider's public keys: its current RS256 and Ed25519 keys and a rotated-out RS256 key.
struct PublicKeys {
    rsa: Public,
    ed: Public,
    rotated_out: Public,
}

/// Public keys for `count` providers, generated on every core (RSA key generation dominates
/// the setup).
fn public_keys(count: usize) -> Vec<PublicKeys> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let generate = |n: usize| {
        (0..n)
            .map(|_| PublicKeys {
                rsa: rsa_key(&signature::RSA_PKCS1_SHA256).1,
                ed: ed_key().1,
                rotated_out: rsa_key(&signature::RSA_PKCS1_SHA256).1,
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = count / threads + usize::from(t < count % threads);
                scope.spawn(move || generate(n))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("key generation"))
            .collect()
    })
}

fn provider(index: usize, public: &PublicKeys, backend: &AwsLcBackend) -> Provider {
    let name = format!("tenant-{index:02}");
    let jwks = format!(
        r#"{{"keys":[{},{},{}]}}"#,
        public.rsa.jwk(&format!("{name}-rsa-2026-01"), "RS256"),
        public.ed.jwk(&format!("{name}-ed-2026-01"), "EdDSA"),
        public
            .rotated_out
            .jwk(&format!("{name}-rsa-2025-07"), "RS256"),
    );
    let algorithms = vec![Algorithm::RS256, Algorithm::EdDSA];
    let keys = KeySet::from_jwks(jwks.as_bytes(), &algorithms, backend).expect("JWKS loads");
    assert_eq!(keys.len(), 3, "{name}: every key loads");
    Provider {
        name,
        policy: TokenPolicy {
            algorithms,
            rules: ClaimRules {
                issuer: Some(issuer(index)),
                audiences: vec![AUDIENCE.to_owned(), "api://billing".to_owned()],
                ..ClaimRules::default()
            },
            limits: Limits::default(),
        },
        keys: Arc::new(keys),
        keys_generation: 1,
        keys_loaded_at: Some(now_s()),
        keys_error: None,
        live: None,
        introspection: None,
        claims_to_headers: [
            ("sub", "x-verdict-sub"),
            ("tenant", "x-verdict-tenant"),
            ("roles", "x-verdict-roles"),
        ]
        .into_iter()
        .map(|(claim, header)| (claim.to_owned(), header.to_owned()))
        .collect(),
        claims_to_metadata: Vec::new(),
        required_scopes: vec!["orders:read".to_owned()],
        source: CredentialSource::default(),
    }
}

/// A configured provider set around the token's provider.
struct Case {
    name: &'static str,
    state: ServiceState,
}

/// A request carrying one token, with the headers a gateway forwards.
struct Request {
    alg: &'static str,
    headers: HashMap<String, String>,
}

impl Request {
    fn view(&self) -> RequestView<'_> {
        RequestView {
            headers: &self.headers,
            path: "/api/orders/8123?expand=lines",
        }
    }
}

struct Setup {
    cases: Vec<Case>,
    requests: Vec<Request>,
    runtime: Runtime,
    target_name: String,
}

fn setup() -> Setup {
    let started = Instant::now();
    let backend = AwsLcBackend::default();
    // Providers 0..MANY-1; the token's provider is the last, with its signers kept.
    let others: Vec<Provider> = public_keys(MANY - 1)
        .iter()
        .enumerate()
        .map(|(i, keys)| provider(i, keys, &backend))
        .collect();
    let (rsa, rsa_public) = rsa_key(&signature::RSA_PKCS1_SHA256);
    let (ed, ed_public) = ed_key();
    let target_keys = PublicKeys {
        rsa: rsa_public,
        ed: ed_public,
        rotated_out: rsa_key(&signature::RSA_PKCS1_SHA256).1,
    };
    let target_provider = provider(MANY - 1, &target_keys, &backend);
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let with = |before: &[Provider], after: &[Provider]| {
        let mut list = before.to_vec();
        list.push(target_provider.clone());
        list.extend_from_slice(after);
        ServiceState {
            providers: Arc::new(ArcSwap::from_pointee(Providers::new(list))),
            backend: Arc::clone(&backend),
            clock: system_clock,
            // The decision path itself: no answer cache in front of it.
            answers: None,
            revocations: Default::default(),
        }
    };
    let middle = MANY / 2;
    let cases = vec![
        Case {
            name: "1",
            state: with(&[], &[]),
        },
        Case {
            name: "2",
            state: with(&others[..1], &[]),
        },
        Case {
            name: "64_mid",
            state: with(&others[..middle], &others[middle..]),
        },
        Case {
            name: "64_end",
            state: with(&others, &[]),
        },
        Case {
            name: "1_again",
            state: with(&[], &[]),
        },
    ];
    for case in &cases {
        let providers = case.state.providers.load();
        let list = providers.list();
        let at = list
            .iter()
            .position(|p| p.name == target_provider.name)
            .expect("the token's provider is in every set");
        eprintln!(
            "case {}: {} providers, the token's at index {at}",
            case.name,
            list.len()
        );
    }

    let now = now_s();
    let name = &target_provider.name;
    let claims = claims(&issuer(MANY - 1), now);
    let requests = [
        ("RS256", format!("{name}-rsa-2026-01"), &rsa),
        ("EdDSA", format!("{name}-ed-2026-01"), &ed),
    ]
    .into_iter()
    .map(|(alg, kid, signer)| {
        let input = signing_input(alg, &kid, &claims);
        let jwt = token(&input, &signer.sign(input.as_bytes()));
        let headers = [
            (":authority", "api.example.com"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
            ("accept", "application/json"),
            ("x-request-id", "4f1c2e9a-77b0-4c1e-a3f2-9d8e7c6b5a41"),
            ("x-forwarded-for", "203.0.113.7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("authorization".to_owned(), format!("Bearer {jwt}"))])
        .collect();
        Request { alg, headers }
    })
    .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
    eprintln!(
        "setup: {MANY} providers, {} keys, claims set {} bytes, in {:.1} s",
        MANY * 3,
        claims.len(),
        started.elapsed().as_secs_f64()
    );
    let setup = Setup {
        cases,
        requests,
        runtime,
        target_name: name.clone(),
    };
    setup.check();
    setup
}

impl Setup {
    /// Every case allows every request, by the token's provider, with its claim headers.
    fn check(&self) {
        for request in &self.requests {
            for case in &self.cases {
                let decision = self.runtime.block_on(case.state.decide(&request.view()));
                let Decision::Allow(allowed) = decision else {
                    panic!(
                        "{} with {}: not allowed: {decision:?}",
                        request.alg, case.name
                    );
                };
                assert_eq!(allowed.provider, self.target_name);
                assert_eq!(allowed.alg.map(|a| a.name()), Some(request.alg));
                assert_eq!(allowed.headers.len(), 3, "{:?}", allowed.headers);
                assert!(allowed.headers_to_remove.is_empty());
            }
        }
    }

    /// `iterations` decisions of `request` by `case`, back to back on the runtime; the elapsed
    /// time.
    fn block(&self, case: &Case, request: &Request, iterations: u64) -> Duration {
        let view = request.view();
        self.runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(case.state.decide(black_box(&view)).await);
            }
            start.elapsed()
        })
    }

    /// The same, each decision timed alone: its latency in ns appended to `out`.
    fn latency_block(&self, case: &Case, request: &Request, iterations: u64, out: &mut Vec<f64>) {
        let view = request.view();
        self.runtime.block_on(async {
            for _ in 0..iterations {
                let start = Instant::now();
                black_box(case.state.decide(black_box(&view)).await);
                out.push(start.elapsed().as_nanos() as f64);
            }
        })
    }
}

fn bench_criterion(c: &mut Criterion, setup: &Setup) {
    for request in &setup.requests {
        let mut group = c.benchmark_group(format!("providers_{}", request.alg));
        group.throughput(Throughput::Elements(1));
        for case in setup.cases.iter().filter(|c| c.name != "1_again") {
            group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
                b.iter_custom(|iterations| setup.block(case, request, iterations))
            });
        }
        group.finish();
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The interleaved table: per round, every case once (rotating which goes first, and reversing
/// the order every other round), a whole-block timing then a per-decision latency block.
fn interleaved(setup: &Setup, rounds: usize) {
    let cases = &setup.cases;
    let index = |name: &str| {
        cases
            .iter()
            .position(|c| c.name == name)
            .expect("case exists")
    };
    // (numerator, denominator): time ratios, > 1 means the numerator is slower.
    let pairs = [
        ("64_mid", "1"),
        ("64_end", "1"),
        ("64_mid", "2"),
        ("64_end", "2"),
        ("2", "1"),
        ("1_again", "1"),
    ];
    println!(
        "\nInterleaved: {rounds} rounds, ~{} ms blocks, every case in every round (ServiceState::decide, current-thread runtime)",
        BLOCK_TARGET.as_millis()
    );
    for request in &setup.requests {
        // Block sizes from a short warm-up of the 1-provider case.
        let warm = setup.block(&cases[0], request, 200) / 200;
        let iterations =
            (BLOCK_TARGET.as_nanos() / warm.as_nanos().max(1)).clamp(4, 100_000) as u64;
        let mut per_decision: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..cases.len()).collect();
            order.rotate_left(round % cases.len());
            if (round / cases.len()) % 2 == 1 {
                order.reverse();
            }
            let mut times = vec![0.0; cases.len()];
            for &c in &order {
                let elapsed = setup.block(&cases[c], request, iterations);
                times[c] = elapsed.as_nanos() as f64 / iterations as f64;
                setup.latency_block(&cases[c], request, iterations, &mut latencies[c]);
            }
            for (c, t) in times.iter().enumerate() {
                per_decision[c].push(*t);
            }
            for (p, (num, den)) in pairs.iter().enumerate() {
                ratios[p].push(times[index(num)] / times[index(den)]);
            }
        }
        println!(
            "\n{} token, {iterations} decisions per block\n",
            request.alg
        );
        println!(
            "| case | providers | per decision (block median) | p25 | p75 | latency p50 | p90 | p99 | decisions/s |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (c, case) in cases.iter().enumerate() {
            let t = sorted(std::mem::take(&mut per_decision[c]));
            let l = sorted(std::mem::take(&mut latencies[c]));
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                case.name,
                case.state.providers.load().list().len(),
                fmt_ns(quantile(&t, 0.5)),
                fmt_ns(quantile(&t, 0.25)),
                fmt_ns(quantile(&t, 0.75)),
                fmt_ns(quantile(&l, 0.5)),
                fmt_ns(quantile(&l, 0.9)),
                fmt_ns(quantile(&l, 0.99)),
                1e9 / quantile(&t, 0.5),
            );
        }
        println!("\n| time ratio (per round) | median | p25 | p75 |");
        println!("|---|---:|---:|---:|");
        for (p, (num, den)) in pairs.iter().enumerate() {
            let r = sorted(std::mem::take(&mut ratios[p]));
            println!(
                "| {num} / {den} | {:.4} | {:.4} | {:.4} |",
                quantile(&r, 0.5),
                quantile(&r, 0.25),
                quantile(&r, 0.75),
            );
        }
    }
}

/// Whether the interleaved table runs: always, unless criterion was given a filter that does
/// not name it (e.g. `-- providers_RS256`).
fn interleaved_selected() -> bool {
    // criterion's options that take a value (so the value is not a filter).
    const WITH_VALUE: [&str; 16] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--plotting-backend",
        "--color",
        "--format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut skip_next = false;
    for arg in &args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if arg.starts_with('-') {
            skip_next = WITH_VALUE.contains(&arg.as_str());
        } else {
            filters.push(arg.as_str());
        }
    }
    filters.is_empty() || filters.iter().any(|f| "interleaved".contains(f))
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) everything runs once.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let setup = setup();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60)
        .configure_from_args();
    bench_criterion(&mut criterion, &setup);
    criterion.final_summary();
    if interleaved_selected() {
        interleaved(&setup, if bench_mode { ROUNDS } else { 3 });
    }
}
