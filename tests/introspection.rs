//! Opaque tokens through RFC 7662 introspection: the real `verdict` binary asking a real OpenID
//! provider (npm `oidc-provider`, `tests/common/oidc.rs`) on loopback. Covers active tokens
//! (allowed, with claim headers), inactive ones (401), routing next to a JWT provider of the
//! same issuer, one call for many concurrent checks of one token, a token revoked at the
//! provider (denied once the cache bound has passed), and the endpoint down (denied by default,
//! the circuit opens, `allow_cached` serves tokens already seen).

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use common::{Server, bearer_check, check, grpc_code, http_get};
use oidc::{
    CLIENT_ID, CLIENT_SECRET, OidcProvider, PKJWT_CLIENT_ID, RESOURCE_OPAQUE, RESOURCE_RS256,
};
use std::time::{Duration, Instant};

const GRPC_OK: i32 = 0;
const GRPC_UNAUTHENTICATED: i32 = 16;
const GRPC_PERMISSION_DENIED: i32 = 7;
const INTROSPECTION_PATH: &str = "/token/introspection";

/// An introspection provider for `oidc` (found through discovery) plus a JWT provider of the same
/// issuer; `cache` and `extra` (introspection provider keys) vary per test.
fn config(oidc: &OidcProvider, cache: &str, extra: &str) -> String {
    format!(
        r#"
[cache]
{cache}

[[providers]]
name = "jwt"
issuer = "{issuer}"
discovery_uri = "{discovery}"
audiences = ["{RESOURCE_RS256}"]
algorithms = ["RS256", "ES256"]

[[providers]]
name = "opaque"
type = "introspection"
issuer = "{issuer}"
discovery_uri = "{discovery}"
client_id = "{CLIENT_ID}"
client_secret_file = "client.secret"
required_scopes = ["read"]
claims_to_headers = {{ client_id = "x-verdict-client", scope = "x-verdict-scope" }}
{extra}
"#,
        issuer = oidc.issuer(),
        discovery = oidc.discovery_uri(),
    )
}

fn start(oidc: &OidcProvider, cache: &str, extra: &str) -> Server {
    let server = Server::start(
        &config(oidc, cache, extra),
        &[("client.secret", format!("{CLIENT_SECRET}\n").as_bytes())],
    );
    server.wait_readyz(200, Duration::from_secs(20));
    server
}

async fn code_of(server: &Server, token: &str) -> i32 {
    let mut client = server.authz().await;
    grpc_code(&check(&mut client, bearer_check(token)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_opaque_tokens_are_allowed_with_their_claims_and_inactive_ones_are_not() {
    let oidc = OidcProvider::start();
    let server = start(&oidc, "max_ttl_s = 60", "");
    let opaque = oidc.token(RESOURCE_OPAQUE, "read");
    assert!(!opaque.contains('.'), "an opaque token: {opaque}");

    let mut client = server.authz().await;
    let answer = check(&mut client, bearer_check(&opaque)).await;
    assert_eq!(grpc_code(&answer), GRPC_OK, "{answer:?}\n{}", server.logs());
    let text = format!("{answer:?}");
    assert!(
        text.contains("x-verdict-client") && text.contains(CLIENT_ID),
        "{text}"
    );
    assert!(text.contains("x-verdict-scope"), "{text}");

    // The JWT of the same issuer goes to the JWT provider, by signature, not introspection.
    let calls = oidc.requests_to(INTROSPECTION_PATH);
    let jwt = oidc.token(RESOURCE_RS256, "read");
    assert_eq!(code_of(&server, &jwt).await, GRPC_OK, "{}", server.logs());
    assert_eq!(oidc.requests_to(INTROSPECTION_PATH), calls);

    // A token the provider never issued: inactive, 401.
    assert_eq!(
        code_of(&server, "not-a-token-anyone-issued").await,
        GRPC_UNAUTHENTICATED
    );
    assert!(
        server
            .metric_where(
                "verdict_checks_total",
                &[("provider", "opaque"), ("reason", "inactive_token")]
            )
            .is_some_and(|n| n >= 1.0)
    );
    // Active but without the required scope: 403.
    let write_only = oidc.token(RESOURCE_OPAQUE, "write");
    assert_eq!(code_of(&server, &write_only).await, GRPC_PERMISSION_DENIED);

    // Repeats are answered from the cache: no further call.
    let calls = oidc.requests_to(INTROSPECTION_PATH);
    for _ in 0..5 {
        assert_eq!(code_of(&server, &opaque).await, GRPC_OK);
    }
    assert_eq!(oidc.requests_to(INTROSPECTION_PATH), calls);
    // The token itself is never logged.
    assert!(!server.logs().contains(&opaque));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_of_one_token_make_one_call() {
    let oidc = OidcProvider::start();
    let server = start(&oidc, "max_ttl_s = 60", "");
    let opaque = oidc.token(RESOURCE_OPAQUE, "read");
    let before = oidc.requests_to(INTROSPECTION_PATH);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let client = server.authz().await;
        for _ in 0..25 {
            let mut client = client.clone();
            let token = opaque.clone();
            set.spawn(async move { grpc_code(&check(&mut client, bearer_check(&token)).await) });
        }
    }
    while let Some(code) = set.join_next().await {
        assert_eq!(code.expect("task"), GRPC_OK);
    }
    assert_eq!(
        oidc.requests_to(INTROSPECTION_PATH) - before,
        1,
        "100 concurrent checks of one token: one introspection call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_at_the_provider_is_denied_once_the_cache_bound_passes() {
    let oidc = OidcProvider::start();
    let server = start(&oidc, "max_ttl_s = 2\nnegative_ttl_s = 1", "");
    let opaque = oidc.token(RESOURCE_OPAQUE, "read");
    assert_eq!(code_of(&server, &opaque).await, GRPC_OK);
    oidc.revoke(&opaque);
    assert_eq!(oidc.introspect(&opaque)["active"], false);
    let revoked = Instant::now();
    let deadline = revoked + Duration::from_secs(10);
    loop {
        if code_of(&server, &opaque).await == GRPC_UNAUTHENTICATED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still allowed 10 s after revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Denied within the cache bound (2 s) plus a little, never before a fresh call could see it.
    assert!(
        revoked.elapsed() < Duration::from_secs(4),
        "{:?}",
        revoked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_denies_by_default_and_opens_the_circuit() {
    let mut oidc = OidcProvider::start();
    let server = start(&oidc, "max_ttl_s = 1", "fetch_timeout_ms = 500");
    let seen = oidc.token(RESOURCE_OPAQUE, "read");
    assert_eq!(code_of(&server, &seen).await, GRPC_OK);
    let unseen = oidc.token(RESOURCE_OPAQUE, "read");
    oidc.stop();
    std::thread::sleep(Duration::from_millis(1100));
    // Down: both the token seen before (its cache entry has expired) and a new one are denied.
    for _ in 0..8 {
        assert_eq!(code_of(&server, &unseen).await, GRPC_UNAUTHENTICATED);
    }
    assert_eq!(code_of(&server, &seen).await, GRPC_UNAUTHENTICATED);
    assert!(
        server
            .metric_where(
                "verdict_checks_total",
                &[
                    ("provider", "opaque"),
                    ("reason", "introspection_unavailable")
                ]
            )
            .is_some_and(|n| n >= 9.0),
        "{}",
        server.metrics_text()
    );
    // After five failures in a row the circuit opens: calls are refused without trying.
    let refused = server.wait_metric(
        "verdict_introspection_calls_total",
        &[("provider", "opaque"), ("result", "circuit_open")],
        |n| n >= 1.0,
        Duration::from_secs(2),
    );
    assert!(
        refused.is_some_and(|n| n >= 1.0),
        "{}",
        server.metrics_text()
    );
    let errors = server
        .metric_where(
            "verdict_introspection_calls_total",
            &[("provider", "opaque"), ("result", "error")],
        )
        .unwrap_or(0.0);
    assert_eq!(errors, 5.0, "calls stop at the breaker's threshold");
    let open = server.wait_metric(
        "verdict_introspection_circuit_open",
        &[("provider", "opaque")],
        |v| v == 1.0,
        Duration::from_secs(3),
    );
    assert_eq!(open, Some(1.0));
    let (_, body) = http_get(server.admin, "/readyz");
    assert!(body.contains("circuit open"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_cached_serves_tokens_seen_active_while_the_endpoint_is_down() {
    let mut oidc = OidcProvider::start();
    let server = start(
        &oidc,
        "max_ttl_s = 1",
        "fetch_timeout_ms = 500\nintrospection_unavailable = \"allow_cached\"",
    );
    let seen = oidc.token(RESOURCE_OPAQUE, "read");
    assert_eq!(code_of(&server, &seen).await, GRPC_OK);
    let unseen = oidc.token(RESOURCE_OPAQUE, "read");
    oidc.stop();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(code_of(&server, &seen).await, GRPC_OK, "{}", server.logs());
    assert_eq!(code_of(&server, &unseen).await, GRPC_UNAUTHENTICATED);
}

/// A PKCS#8 PEM for `der`.
fn pkcs8_pem(der: &[u8]) -> String {
    let body = oidc::base64_encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// An introspection provider authenticating as the `private_key_jwt` client with `key_file`.
fn pkjwt_config(oidc: &OidcProvider, key_file: &str) -> String {
    format!(
        r#"
[cache]
max_ttl_s = 60

[[providers]]
name = "opaque"
type = "introspection"
issuer = "{issuer}"
discovery_uri = "{discovery}"
client_id = "{PKJWT_CLIENT_ID}"
client_key_file = "{key_file}"
required_scopes = ["read"]
claims_to_headers = {{ client_id = "x-verdict-client" }}
"#,
        issuer = oidc.issuer(),
        discovery = oidc.discovery_uri(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_clients_introspect_with_rsa_and_p256_assertions() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair,
    };

    let p256_der =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("P-256 key");
    let p256 = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, p256_der.as_ref())
        .expect("P-256 pkcs8");
    let point = p256.public_key().as_ref();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key");
    let rsa_der = rsa.as_der().expect("RSA pkcs8");
    let rsa_public = rsa.public_key();
    // verdict's assertions carry no kid: the provider picks the client key by its type.
    let jwks = serde_json::json!({ "keys": [
        { "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
          "x": oidc::base64url_encode(&point[1..33]), "y": oidc::base64url_encode(&point[33..]) },
        { "kty": "RSA", "alg": "RS256", "use": "sig",
          "n": oidc::base64url_encode(rsa_public.modulus().big_endian_without_leading_zero()),
          "e": oidc::base64url_encode(rsa_public.exponent().big_endian_without_leading_zero()) },
    ]});
    let oidc = OidcProvider::start_with_pkjwt(&jwks.to_string());
    // The only key the provider does not know: a second P-256 key.
    let stranger_der =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("P-256 key");

    for (what, der) in [("P-256", p256_der.as_ref()), ("RSA", rsa_der.as_ref())] {
        let server = Server::start(
            &pkjwt_config(&oidc, "client.pem"),
            &[("client.pem", pkcs8_pem(der).as_bytes())],
        );
        server.wait_readyz(200, Duration::from_secs(20));
        let opaque = oidc.token(RESOURCE_OPAQUE, "read");
        let mut client = server.authz().await;
        let answer = check(&mut client, bearer_check(&opaque)).await;
        assert_eq!(
            grpc_code(&answer),
            GRPC_OK,
            "{what}: {answer:?}\n{}\n{}",
            server.logs(),
            oidc.logs()
        );
        assert!(
            format!("{answer:?}").contains(CLIENT_ID),
            "{what}: {answer:?}"
        );
        // Each call signs a fresh assertion (a new jti), which the provider requires.
        let second = oidc.token(RESOURCE_OPAQUE, "read");
        assert_eq!(code_of(&server, &second).await, GRPC_OK, "{what}");
        assert_eq!(code_of(&server, "never-issued").await, GRPC_UNAUTHENTICATED);
    }

    // A key the provider has not registered: the provider refuses the client, so nothing is
    // allowed, and verdict says why.
    let server = Server::start(
        &pkjwt_config(&oidc, "client.pem"),
        &[("client.pem", pkcs8_pem(stranger_der.as_ref()).as_bytes())],
    );
    server.wait_readyz(200, Duration::from_secs(20));
    let opaque = oidc.token(RESOURCE_OPAQUE, "read");
    assert_eq!(code_of(&server, &opaque).await, GRPC_UNAUTHENTICATED);
    assert!(
        server
            .metric_where(
                "verdict_checks_total",
                &[
                    ("provider", "opaque"),
                    ("reason", "introspection_unavailable")
                ]
            )
            .is_some_and(|n| n >= 1.0),
        "{}",
        server.metrics_text()
    );
    // The provider's log line may land a moment after its answer.
    let logs = oidc.wait_for_log("invalid_client", Duration::from_secs(5));
    assert!(logs.contains("invalid_client"), "{logs}");
}
