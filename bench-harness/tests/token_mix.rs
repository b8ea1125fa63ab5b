//! Token-mix generation: fractions, Zipf skew, distinct counts, and that every kind of token
//! verifies (or fails) as it should with verdict's own library.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};
use verdict::crypto::default_backend;
use verdict::jose::{Algorithm, ClaimRules, Reject};
use verdict::keys::KeySet;
use verdict::policy::{TokenPolicy, verify_token};
use verdict_load::scenario::{Alg, Credential, Distribution, Scenario, TokenMix};
use verdict_load::setup::{ServerSettings, WorkDir};
use verdict_load::tokens::{AUDIENCE, ISSUER, Kind, SigningKeys, TokenPool};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "verdict-load-test-{tag}-{}-{}",
        std::process::id(),
        now()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn keys() -> SigningKeys {
    SigningKeys::generate("load").expect("keys")
}

fn mix(f: impl FnOnce(&mut TokenMix)) -> TokenMix {
    let mut m = TokenMix {
        algorithms: [
            ("RS256".to_owned(), 1.0),
            ("ES256".to_owned(), 1.0),
            ("EdDSA".to_owned(), 1.0),
        ]
        .into_iter()
        .collect(),
        ..TokenMix::default()
    };
    f(&mut m);
    m
}

fn draw(pool: &TokenPool, n: usize, seed: u64) -> Vec<(Kind, usize)> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let p = pool.pick(&mut rng);
            (p.kind, p.index)
        })
        .collect()
}

#[test]
fn fractions_follow_the_mix() {
    let m = mix(|m| {
        m.distinct = 60;
        m.new = 0.1;
        m.new_pool = 30;
        m.invalid = 0.1;
        m.expired = 0.05;
        m.unknown_kid = 0.03;
        m.revoked = 0.02;
    });
    let pool = TokenPool::build(&m, &keys(), now()).expect("pool");
    let n = 200_000;
    let picks = draw(&pool, n, 7);
    let mut counts: HashMap<Kind, usize> = HashMap::new();
    for (kind, _) in &picks {
        *counts.entry(*kind).or_insert(0) += 1;
    }
    for (kind, expected) in [
        (Kind::Valid, 0.70),
        (Kind::New, 0.10),
        (Kind::BadSignature, 0.10),
        (Kind::Expired, 0.05),
        (Kind::UnknownKid, 0.03),
        (Kind::Revoked, 0.02),
    ] {
        let got = counts.get(&kind).copied().unwrap_or(0) as f64 / n as f64;
        assert!(
            (got - expected).abs() < 0.005,
            "{kind}: {got:.4} of requests, expected {expected}"
        );
    }
    assert_eq!(counts.get(&Kind::NoCredential), None);
}

#[test]
fn distinct_counts_and_category_sizes() {
    let m = mix(|m| {
        m.distinct = 90;
        m.invalid = 0.05;
        m.new = 0.05;
        m.new_pool = 40;
        m.revoked = 0.1;
    });
    let pool = TokenPool::build(&m, &keys(), now()).expect("pool");
    let size = |kind| pool.category(kind).map(|c| c.tokens.len());
    assert_eq!(size(Kind::Valid), Some(90));
    assert_eq!(size(Kind::New), Some(40));
    // Sized to repeat about as often as the valid tokens: ceil(90 × 0.05 / 0.8).
    assert_eq!(size(Kind::BadSignature), Some(6));
    assert_eq!(size(Kind::Revoked), Some(12));
    assert_eq!(size(Kind::Expired), None);
    assert_eq!(pool.revoked_jtis().len(), 12);

    // Every token is distinct.
    let all: std::collections::HashSet<&str> = pool
        .categories()
        .iter()
        .flat_map(|c| c.tokens.iter().map(|t| &*t.text))
        .collect();
    assert_eq!(all.len(), pool.len());

    // Uniform draws reach every valid token.
    let seen: std::collections::HashSet<usize> = draw(&pool, 20_000, 3)
        .into_iter()
        .filter(|(k, _)| *k == Kind::Valid)
        .map(|(_, i)| i)
        .collect();
    assert_eq!(seen.len(), 90);

    // Algorithms are split evenly inside each category.
    let summary = pool.summary();
    let valid = summary.iter().find(|c| c.kind == "valid").expect("valid");
    assert_eq!(valid.algorithms.get("RS256"), Some(&30));
    assert_eq!(valid.algorithms.get("ES256"), Some(&30));
    assert_eq!(valid.algorithms.get("EdDSA"), Some(&30));
}

#[test]
fn new_tokens_are_sent_once_before_the_pool_wraps() {
    let m = mix(|m| {
        m.algorithms = [("EdDSA".to_owned(), 1.0)].into_iter().collect();
        m.distinct = 5;
        m.new = 1.0;
        m.new_pool = 50;
    });
    let pool = TokenPool::build(&m, &keys(), now()).expect("pool");
    let picks = draw(&pool, 50, 1);
    let distinct: std::collections::HashSet<usize> = picks.iter().map(|(_, i)| *i).collect();
    assert!(picks.iter().all(|(k, _)| *k == Kind::New));
    assert_eq!(
        distinct.len(),
        50,
        "50 draws from a pool of 50 new tokens: no repeat"
    );
    assert_eq!(pool.new_pool_wraps(), 1);
    let _ = draw(&pool, 10, 2);
    assert_eq!(pool.new_pool_wraps(), 1);
}

#[test]
fn sequential_sends_every_token_before_repeating() {
    let m = mix(|m| {
        m.algorithms = [("ES256".to_owned(), 1.0)].into_iter().collect();
        m.distinct = 25;
        m.distribution = Distribution::Sequential;
    });
    let pool = TokenPool::build(&m, &keys(), now()).expect("pool");
    let picks: Vec<usize> = draw(&pool, 50, 1).into_iter().map(|(_, i)| i).collect();
    let expected: Vec<usize> = (0..25).chain(0..25).collect();
    assert_eq!(picks, expected);
}

#[test]
fn zipf_is_skewed_and_uniform_is_not() {
    let m = mix(|m| {
        m.algorithms = [("EdDSA".to_owned(), 1.0)].into_iter().collect();
        m.distinct = 100;
        m.distribution = Distribution::Zipf;
        m.zipf_exponent = 1.0;
    });
    let pool = TokenPool::build(&m, &keys(), now()).expect("pool");
    let n = 300_000;
    let mut counts = vec![0usize; 100];
    for (_, i) in draw(&pool, n, 11) {
        counts[i] += 1;
    }
    // Zipf(s = 1) over 100 ranks: rank 1 has 1/H(100) = 19.3 % of the mass, rank 2 half of
    // that, rank 10 a tenth; the top 10 ranks hold H(10)/H(100) = 56.4 %.
    let share = |i: usize| counts[i] as f64 / n as f64;
    assert!((share(0) - 0.1928).abs() < 0.01, "rank 1: {}", share(0));
    let ratio = counts[0] as f64 / counts[1] as f64;
    assert!((1.85..2.15).contains(&ratio), "rank1/rank2 = {ratio}");
    let ratio10 = counts[0] as f64 / counts[9] as f64;
    assert!((8.5..11.5).contains(&ratio10), "rank1/rank10 = {ratio10}");
    let top10: f64 = (0..10).map(share).sum();
    assert!((top10 - 0.564).abs() < 0.01, "top 10: {top10}");

    // A steeper exponent is more skewed.
    let steep = TokenPool::build(
        &TokenMix {
            zipf_exponent: 1.5,
            ..m.clone()
        },
        &keys(),
        now(),
    )
    .expect("pool");
    let steep_first = draw(&steep, 50_000, 5)
        .into_iter()
        .filter(|(_, i)| *i == 0)
        .count() as f64
        / 50_000.0;
    assert!(steep_first > share(0) + 0.1, "s=1.5 rank 1: {steep_first}");

    let uniform = TokenPool::build(
        &TokenMix {
            distribution: Distribution::Uniform,
            ..m
        },
        &keys(),
        now(),
    )
    .expect("pool");
    let mut counts = vec![0usize; 100];
    for (_, i) in draw(&uniform, n, 11) {
        counts[i] += 1;
    }
    let (min, max) = (
        *counts.iter().min().expect("min"),
        *counts.iter().max().expect("max"),
    );
    assert!(
        (max as f64) < min as f64 * 1.25,
        "uniform spread {min}..{max}"
    );
}

#[test]
fn every_kind_verifies_or_fails_as_expected_with_verdicts_library() {
    let signing = keys();
    let m = mix(|m| {
        m.distinct = 6;
        m.new = 0.1;
        m.new_pool = 6;
        m.invalid = 0.1;
        m.expired = 0.1;
        m.unknown_kid = 0.1;
        m.revoked = 0.1;
    });
    let pool = TokenPool::build(&m, &signing, now()).expect("pool");
    let backend = default_backend();
    let policy = TokenPolicy {
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        rules: ClaimRules {
            issuer: Some(ISSUER.into()),
            audiences: vec![AUDIENCE.into()],
            ..ClaimRules::default()
        },
        ..TokenPolicy::default()
    };
    let jwks = signing.jwks().to_string();
    let keyset = KeySet::from_jwks(jwks.as_bytes(), &policy.algorithms, &backend).expect("jwks");
    assert_eq!(keyset.len(), 3, "the JWKS holds the three keys");
    let mut checked = HashMap::new();
    for category in pool.categories() {
        assert!(!category.tokens.is_empty(), "{}", category.kind);
        for token in &category.tokens {
            let result = verify_token(token.text.as_bytes(), &policy, &keyset, &backend, now());
            let expected: Result<(), Reject> = match category.kind {
                Kind::Valid | Kind::New | Kind::Revoked => Ok(()),
                Kind::BadSignature => Err(Reject::BadSignature),
                Kind::Expired => Err(Reject::Expired),
                Kind::UnknownKid => Err(Reject::UnknownKey),
                Kind::NoCredential => Err(Reject::MissingCredential),
            };
            assert_eq!(
                result.as_ref().map(|_| ()).map_err(|e| *e),
                expected,
                "{} token {}",
                category.kind,
                token.text
            );
            if let Ok(verified) = result {
                let alg = token.alg.expect("alg");
                assert_eq!(verified.header.alg.name(), alg.name());
            }
            *checked.entry(category.kind).or_insert(0) += 1;
        }
    }
    assert_eq!(checked.len(), 6, "{checked:?}");
    // Every algorithm appears among the valid tokens.
    let valid = pool.category(Kind::Valid).expect("valid");
    for alg in Alg::ALL {
        assert!(valid.tokens.iter().any(|t| t.alg == Some(alg)), "{alg}");
    }
}

#[test]
fn the_no_credential_mix_has_no_tokens() {
    let m = TokenMix {
        credential: Credential::None,
        ..TokenMix::default()
    };
    let pool = TokenPool::build(&m, &keys(), now()).expect("pool");
    assert!(pool.is_empty());
    let mut rng = SmallRng::seed_from_u64(1);
    let pick = pool.pick(&mut rng);
    assert_eq!((pick.kind, pick.token), (Kind::NoCredential, ""));
}

#[test]
fn keys_persist_and_the_generated_config_loads() {
    let dir = scratch("workdir");
    let work = WorkDir::at(&dir);
    assert!(!work.has_keys());
    let first = work.keys().expect("generate");
    assert!(work.has_keys());
    let again = work.keys().expect("load");
    assert_eq!(first.jwks(), again.jwks(), "the stored keys are reused");

    let scenario = Scenario {
        tokens: mix(|m| {
            m.distinct = 3;
            m.revoked = 0.5;
        }),
        ..Scenario::default()
    };
    let pool = TokenPool::build(&scenario.tokens, &again, now()).expect("pool");
    let settings = ServerSettings {
        workers: 1,
        ..ServerSettings::default()
    };
    work.write(&again, &pool, &settings, "test").expect("write");
    let config = verdict::config::load(&work.config).expect("verdict loads the config");
    assert_eq!(config.server.workers, 1);
    let provider = config.providers.first().expect("provider");
    assert_eq!(provider.issuer, ISSUER);
    let revoked = std::fs::read_to_string(&work.revoked).expect("revoked list");
    assert_eq!(revoked.lines().count(), pool.revoked_jtis().len());
    assert!(revoked.lines().all(|l| l.starts_with("revoked-")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn signed_pools_are_cached_per_mix_and_keys() {
    use verdict_load::tokens::PoolSource;
    let dir = scratch("poolcache");
    let signing = keys();
    let m = mix(|m| {
        m.distinct = 9;
        m.invalid = 0.1;
        m.new = 0.1;
        m.new_pool = 5;
    });
    let (first, source) = TokenPool::build_cached(&m, &signing, now(), &dir, 600).expect("signed");
    assert_eq!(source, PoolSource::Signed);
    let (again, source) = TokenPool::build_cached(&m, &signing, now(), &dir, 600).expect("cached");
    assert_eq!(source, PoolSource::Cached);
    let texts = |p: &TokenPool| -> Vec<String> {
        p.categories()
            .iter()
            .flat_map(|c| c.tokens.iter().map(|t| t.text.to_string()))
            .collect()
    };
    assert_eq!(texts(&first), texts(&again));
    assert_eq!(first.summary(), again.summary());

    // Tokens that would expire too soon, another mix, or other keys: signed anew.
    let (_, source) = TokenPool::build_cached(&m, &signing, now(), &dir, 7200).expect("pool");
    assert_eq!(source, PoolSource::Signed);
    let other = TokenMix {
        distinct: 10,
        ..m.clone()
    };
    let (_, source) = TokenPool::build_cached(&other, &signing, now(), &dir, 600).expect("pool");
    assert_eq!(source, PoolSource::Signed);
    let (_, source) = TokenPool::build_cached(&m, &keys(), now(), &dir, 600).expect("pool");
    assert_eq!(source, PoolSource::Signed);
    let _ = std::fs::remove_dir_all(&dir);
}
