//! The answer caches against the real binary: a repeated token is answered from the verified
//! cache; a key leaving its provider's (watched) key set ends its tokens' cached answers; a
//! token is never served from the cache after its `exp`; a replayed bad token is answered from
//! the negative cache; concurrent checks of one new token wait for one verification; and a
//! cache turned off caches nothing.

mod common;

use common::{
    EXAMPLE_PROVIDER, Server, TestKey, bearer_check, check, claims, example_jwks, grpc_code, now,
    tamper_signature,
};
use serde_json::json;
use std::time::{Duration, Instant};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "api://orders";
const GRPC_OK: i32 = 0;
const GRPC_UNAUTHENTICATED: i32 = 16;

fn lookups(server: &Server, cache: &str, result: &str) -> f64 {
    server
        .metric_where(
            "verdict_cache_lookups_total",
            &[("cache", cache), ("result", result)],
        )
        .unwrap_or(0.0)
}

async fn code_of(server: &Server, token: &str) -> i32 {
    let mut client = server.authz().await;
    grpc_code(&check(&mut client, bearer_check(token)).await)
}

fn example_server(extra: &str) -> Server {
    let jwks = example_jwks();
    Server::start(
        &format!("{extra}\n{EXAMPLE_PROVIDER}"),
        &[("jwks.json", jwks.as_slice())],
    )
}

#[tokio::test]
async fn a_repeated_token_is_answered_from_the_verified_cache() {
    let server = example_server("");
    let token = TestKey::example_rsa().mint(&claims(ISSUER, AUDIENCE, "alice"));
    let mut client = server.authz().await;
    let first = check(&mut client, bearer_check(&token)).await;
    assert_eq!(grpc_code(&first), GRPC_OK);
    let hits = lookups(&server, "verified", "hit");
    for _ in 0..10 {
        let again = check(&mut client, bearer_check(&token)).await;
        // The cached answer is the same answer, headers and all.
        assert_eq!(again, first);
    }
    assert_eq!(lookups(&server, "verified", "hit"), hits + 10.0);
    assert_eq!(
        server.metric_where("verdict_cache_entries", &[("cache", "verified")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_cache_turned_off_caches_nothing() {
    let server = example_server("[cache]\nmax_entries = 0\nnegative_ttl_s = 0\n");
    let token = TestKey::example_rsa().mint(&claims(ISSUER, AUDIENCE, "alice"));
    for _ in 0..3 {
        assert_eq!(code_of(&server, &token).await, GRPC_OK);
    }
    assert_eq!(lookups(&server, "verified", "hit"), 0.0);
    assert_eq!(lookups(&server, "verified", "miss"), 0.0);
}

#[tokio::test]
async fn a_key_leaving_the_watched_key_set_ends_its_cached_answers() {
    let rsa = TestKey::example_rsa();
    let ed = TestKey::ed25519("ed-stays");
    let jwk = |key: &TestKey| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&key.jwks()).expect("jwks")["keys"][0].clone()
    };
    let both = json!({"keys": [jwk(&rsa), jwk(&ed)]}).to_string();
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", both.as_bytes())]);
    let leaving = rsa.mint(&claims(ISSUER, AUDIENCE, "alice"));
    let staying = ed.mint(&claims(ISSUER, AUDIENCE, "bob"));
    for _ in 0..3 {
        assert_eq!(code_of(&server, &leaving).await, GRPC_OK);
        assert_eq!(code_of(&server, &staying).await, GRPC_OK);
    }
    assert!(
        lookups(&server, "verified", "hit") >= 4.0,
        "answers were cached"
    );

    let only_ed = json!({"keys": [jwk(&ed)]}).to_string();
    std::fs::write(server.scratch.0.join("jwks.json"), only_ed).expect("rewrite jwks");
    assert!(
        server.wait_for_log(
            "jwks_file changed; key set reloaded",
            Duration::from_secs(15)
        ),
        "the watched file was reloaded; logs:\n{}",
        server.logs()
    );
    // The first check after the reload is already denied: nothing stale comes from the cache.
    assert_eq!(code_of(&server, &leaving).await, GRPC_UNAUTHENTICATED);
    assert_eq!(code_of(&server, &leaving).await, GRPC_UNAUTHENTICATED);
    // A key that stayed keeps its cached answers.
    let hits = lookups(&server, "verified", "hit");
    assert_eq!(code_of(&server, &staying).await, GRPC_OK);
    assert_eq!(lookups(&server, "verified", "hit"), hits + 1.0);
}

#[tokio::test]
async fn a_token_is_never_served_from_the_cache_after_its_exp() {
    let strict = EXAMPLE_PROVIDER.replace("leeway_s = 30", "leeway_s = 0");
    let jwks = example_jwks();
    let server = Server::start(&strict, &[("jwks.json", jwks.as_slice())]);
    let mut token_claims = claims(ISSUER, AUDIENCE, "alice");
    let exp = now() + 2;
    token_claims["exp"] = json!(exp);
    let token = TestKey::example_rsa().mint(&token_claims);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    // Past exp (whole seconds), the cached answer is gone and the token is judged expired.
    let deadline = Instant::now() + Duration::from_secs(10);
    while now() <= exp {
        assert!(Instant::now() < deadline, "clock did not pass exp");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expired = server
        .metric_where(
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "expired")],
        )
        .unwrap_or(0.0);
    assert_eq!(code_of(&server, &token).await, GRPC_UNAUTHENTICATED);
    assert_eq!(
        server.metric_where(
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "expired")]
        ),
        Some(expired + 1.0)
    );
}

#[tokio::test]
async fn a_replayed_bad_token_is_answered_from_the_negative_cache() {
    let server = example_server("");
    let forged = tamper_signature(&TestKey::example_rsa().mint(&claims(ISSUER, AUDIENCE, "eve")));
    assert_eq!(code_of(&server, &forged).await, GRPC_UNAUTHENTICATED);
    let hits = lookups(&server, "negative", "hit");
    for _ in 0..5 {
        assert_eq!(code_of(&server, &forged).await, GRPC_UNAUTHENTICATED);
    }
    assert_eq!(lookups(&server, "negative", "hit"), hits + 5.0);
    // Every one of them is still counted as the bad signature it is.
    assert!(
        server
            .metric_where(
                "verdict_checks_total",
                &[("result", "deny"), ("reason", "bad_signature")]
            )
            .unwrap_or(0.0)
            >= 6.0
    );
}

#[tokio::test]
async fn concurrent_checks_of_one_new_token_wait_for_one_verification() {
    const CONCURRENT: usize = 64;
    // EdDSA: its check yields to the core's batcher, so checks that arrived on the same core
    // meanwhile are decided while the first one is in flight (RS256 verifies without yielding,
    // so overlap would depend on timing across cores).
    let key = TestKey::ed25519("ed-flight");
    let jwks = key.jwks();
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", jwks.as_bytes())]);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.authz().await);
    }
    // Whether checks overlap is up to the scheduler: up to 5 bursts, each of a new token,
    // until one shows checks waiting; every burst must verify its token exactly once.
    for burst in 0..5 {
        let token = key.mint(&claims(ISSUER, AUDIENCE, &format!("user-{burst}")));
        let hits = lookups(&server, "verified", "hit");
        let checks: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let mut client = clients[i % clients.len()].clone();
                let token = token.clone();
                tokio::spawn(
                    async move { grpc_code(&check(&mut client, bearer_check(&token)).await) },
                )
            })
            .collect();
        for check in checks {
            assert_eq!(check.await.expect("task"), GRPC_OK);
        }
        // One verification; every other check was answered from its result.
        assert_eq!(
            lookups(&server, "verified", "hit"),
            hits + (CONCURRENT - 1) as f64,
            "burst {burst}"
        );
        let waits = server
            .metric_where("verdict_cache_flight_waits_total", &[])
            .unwrap_or(0.0);
        println!(
            "burst {burst}: {CONCURRENT} concurrent checks of one token, {waits} waited so far"
        );
        if waits >= 1.0 {
            return;
        }
    }
    panic!("in 5 bursts no check waited for a concurrent one: the checks never overlapped");
}
