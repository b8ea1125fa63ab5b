//! Revocations against the real binary: the admin API (`/v1/revocations`) behind the bearer
//! admin token, every bad input refused with nothing stored, each selector enforced at once on
//! cached and fresh answers alike, removal, durability across kill -9, and the start-up time
//! with a 100,000-entry log.

mod common;

use common::{
    EXAMPLE_PROVIDER, Scratch, Server, TestKey, admin_call, bearer_check, check, claims,
    example_jwks, grpc_code, now,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "api://orders";
const TOKEN: &str = "test-admin-token-0123456789";
const GRPC_OK: i32 = 0;
const GRPC_UNAUTHENTICATED: i32 = 16;

fn config(log: Option<&std::path::Path>, admin: bool) -> String {
    let mut text = String::new();
    if admin {
        text.push_str("[admin]\ntoken_file = \"admin.token\"\n\n");
    }
    if let Some(log) = log {
        text.push_str(&format!(
            "[revocation]\nlog_file = \"{}\"\n\n",
            log.display()
        ));
    }
    text.push_str(EXAMPLE_PROVIDER);
    text
}

fn start(log: Option<&std::path::Path>, admin: bool) -> Server {
    let jwks = example_jwks();
    Server::start(
        &config(log, admin),
        &[
            ("jwks.json", jwks.as_slice()),
            ("admin.token", format!("{TOKEN}\n").as_bytes()),
        ],
    )
}

fn token_with(extra: Value) -> String {
    let mut claims = claims(ISSUER, AUDIENCE, "alice");
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    TestKey::example_rsa().mint(&claims)
}

fn post(server: &Server, body: &Value) -> (u16, Value) {
    let (status, text) = admin_call(
        server.admin,
        "POST",
        "/v1/revocations",
        Some(TOKEN),
        Some(body.to_string().as_bytes()),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn stored(server: &Server) -> Vec<Value> {
    let (status, text) = admin_call(server.admin, "GET", "/v1/revocations", Some(TOKEN), None);
    assert_eq!(status, 200, "GET /v1/revocations: {text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    body["revocations"].as_array().expect("array").clone()
}

async fn code_of(server: &Server, token: &str) -> i32 {
    let mut client = server.authz().await;
    grpc_code(&check(&mut client, bearer_check(token)).await)
}

fn revoked_denials(server: &Server) -> f64 {
    server
        .metric_where(
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "revoked")],
        )
        .unwrap_or(0.0)
}

#[tokio::test]
async fn bad_admin_calls_are_refused_and_store_nothing() {
    let server = start(None, true);
    let token = token_with(json!({"jti": "t-1"}));
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    let good = json!({"provider": "corp", "jti": "t-1"});
    let body = good.to_string();

    // Authentication first: nothing is read or stored without the token.
    for (case, bearer) in [
        ("missing", None),
        ("wrong", Some("not-the-admin-token-at-all")),
        ("empty", Some("")),
    ] {
        let (status, text) = admin_call(
            server.admin,
            "POST",
            "/v1/revocations",
            bearer,
            Some(body.as_bytes()),
        );
        assert_eq!(status, 401, "{case} token: {text}");
        let (status, _) = admin_call(server.admin, "GET", "/v1/revocations", bearer, None);
        assert_eq!(status, 401, "{case} token on GET");
        assert!(stored(&server).is_empty(), "{case} token stored something");
    }
    let (status, _) = admin_call(
        server.admin,
        "DELETE",
        "/v1/revocations/rv-0000000000000000",
        None,
        None,
    );
    assert_eq!(status, 401);

    // Bodies: each refused with 400 naming the field (404 for an unknown provider).
    let long = "x".repeat(1025);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("not json", "{not json".into(), 400, "body"),
        ("an array", "[1,2]".into(), 400, "body"),
        (
            "no provider",
            json!({"jti": "t-1"}).to_string(),
            400,
            "provider",
        ),
        (
            "provider not a string",
            json!({"provider": 7, "jti": "t-1"}).to_string(),
            400,
            "provider",
        ),
        (
            "empty provider",
            json!({"provider": "", "jti": "t-1"}).to_string(),
            400,
            "provider",
        ),
        (
            "unknown provider",
            json!({"provider": "nope", "jti": "t-1"}).to_string(),
            404,
            "provider",
        ),
        (
            "unknown field",
            json!({"provider": "corp", "jti": "t-1", "subject": "x"}).to_string(),
            400,
            "subject",
        ),
        (
            "no selector",
            json!({"provider": "corp"}).to_string(),
            400,
            "selector",
        ),
        (
            "two selectors",
            json!({"provider": "corp", "jti": "t-1", "sub": "alice"}).to_string(),
            400,
            "sub",
        ),
        (
            "empty jti",
            json!({"provider": "corp", "jti": ""}).to_string(),
            400,
            "jti",
        ),
        (
            "jti a number",
            json!({"provider": "corp", "jti": 5}).to_string(),
            400,
            "jti",
        ),
        (
            "jti too long",
            json!({"provider": "corp", "jti": long}).to_string(),
            400,
            "jti",
        ),
        (
            "sid an object",
            json!({"provider": "corp", "sid": {}}).to_string(),
            400,
            "sid",
        ),
        (
            "issued_before a string",
            json!({"provider": "corp", "issued_before": "yesterday"}).to_string(),
            400,
            "issued_before",
        ),
        (
            "issued_before negative",
            json!({"provider": "corp", "issued_before": -5}).to_string(),
            400,
            "issued_before",
        ),
        (
            "issued_before fractional",
            json!({"provider": "corp", "issued_before": 1.5}).to_string(),
            400,
            "issued_before",
        ),
        (
            "reason a number",
            json!({"provider": "corp", "jti": "t-1", "reason": 3}).to_string(),
            400,
            "reason",
        ),
        (
            "reason too long",
            json!({"provider": "corp", "jti": "t-1", "reason": long}).to_string(),
            400,
            "reason",
        ),
        (
            "expires_at in the past",
            json!({"provider": "corp", "jti": "t-1", "expires_at": 1000}).to_string(),
            400,
            "expires_at",
        ),
    ];
    for (case, body, want, field) in &cases {
        let (status, text) = admin_call(
            server.admin,
            "POST",
            "/v1/revocations",
            Some(TOKEN),
            Some(body.as_bytes()),
        );
        assert_eq!(status, *want, "{case}: {text}");
        let answer: Value = serde_json::from_str(&text).expect("json error body");
        assert_eq!(answer["field"], *field, "{case}: {text}");
        assert!(stored(&server).is_empty(), "{case} stored something");
        assert_eq!(
            code_of(&server, &token).await,
            GRPC_OK,
            "{case}: token still allowed"
        );
    }

    // Over 64 KiB: 413, nothing stored.
    let huge =
        json!({"provider": "corp", "jti": "t-1", "reason": "r".repeat(70 * 1024)}).to_string();
    let (status, _) = admin_call(
        server.admin,
        "POST",
        "/v1/revocations",
        Some(TOKEN),
        Some(huge.as_bytes()),
    );
    assert_eq!(status, 413);
    assert!(stored(&server).is_empty());

    // Unknown id and unknown route.
    let (status, _) = admin_call(
        server.admin,
        "DELETE",
        "/v1/revocations/rv-0000000000000000",
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = admin_call(server.admin, "GET", "/v1/nothing", Some(TOKEN), None);
    assert_eq!(status, 404);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    // The open endpoints stay open.
    assert_eq!(
        admin_call(server.admin, "GET", "/healthz", None, None).0,
        200
    );
}

#[tokio::test]
async fn without_an_admin_token_the_admin_api_is_off() {
    let server = start(None, false);
    let body = json!({"provider": "corp", "jti": "t-1"}).to_string();
    for bearer in [None, Some(TOKEN)] {
        let (status, _) = admin_call(
            server.admin,
            "POST",
            "/v1/revocations",
            bearer,
            Some(body.as_bytes()),
        );
        assert_eq!(status, 403);
        let (status, _) = admin_call(server.admin, "GET", "/v1/revocations", bearer, None);
        assert_eq!(status, 403);
    }
    assert_eq!(
        admin_call(server.admin, "GET", "/metrics", None, None).0,
        200
    );
}

#[tokio::test]
async fn each_selector_denies_cached_and_fresh_tokens_at_once_and_removal_restores_them() {
    let server = start(None, true);
    let issued = now() - 60;
    let target = token_with(json!({"jti": "j-1", "sub": "alice", "sid": "s-1", "iat": issued}));
    let bystander = token_with(json!({"jti": "j-2", "sub": "bob", "sid": "s-2", "iat": now()}));
    let selectors = [
        json!({"jti": "j-1"}),
        json!({"sub": "alice"}),
        json!({"sid": "s-1"}),
        json!({"issued_before": issued + 1}),
    ];
    for selector in selectors {
        // Allowed twice: the second answer comes from the verified cache.
        assert_eq!(code_of(&server, &target).await, GRPC_OK, "{selector}");
        assert_eq!(code_of(&server, &target).await, GRPC_OK, "{selector}");
        let mut body = selector.clone();
        body["provider"] = json!("corp");
        body["reason"] = json!("test");
        let denials = revoked_denials(&server);
        let (status, entry) = post(&server, &body);
        assert_eq!(status, 201, "{selector}: {entry}");
        let id = entry["id"].as_str().expect("id").to_owned();
        assert_eq!(entry["provider"], "corp");
        assert_eq!(entry["reason"], "test");
        // Enforced on the very next check, cached answer or not.
        assert_eq!(
            code_of(&server, &target).await,
            GRPC_UNAUTHENTICATED,
            "{selector}"
        );
        assert_eq!(
            revoked_denials(&server),
            denials + 1.0,
            "{selector}: counted as revoked"
        );
        assert_eq!(
            code_of(&server, &bystander).await,
            GRPC_OK,
            "{selector}: bystander"
        );
        // A fresh token of the same subject/session is judged the same way.
        assert_eq!(stored(&server).len(), 1);
        // The same selector again is the same entry.
        let (status, again) = post(&server, &body);
        assert_eq!(status, 200, "{selector}: repeat");
        assert_eq!(again["id"], entry["id"]);
        let (status, _) = admin_call(
            server.admin,
            "DELETE",
            &format!("/v1/revocations/{id}"),
            Some(TOKEN),
            None,
        );
        assert_eq!(status, 204);
        assert!(stored(&server).is_empty());
        assert_eq!(
            code_of(&server, &target).await,
            GRPC_OK,
            "{selector}: removed"
        );
    }
    // By kid: every token of that key.
    let (status, _) = post(&server, &json!({"provider": "corp", "kid": "example-2026"}));
    assert_eq!(status, 201);
    assert_eq!(code_of(&server, &target).await, GRPC_UNAUTHENTICATED);
    assert_eq!(code_of(&server, &bystander).await, GRPC_UNAUTHENTICATED);
}

#[tokio::test]
async fn an_acknowledged_revocation_survives_kill_9() {
    let dir = Scratch::new("revocation-kill");
    let log = dir.0.join("revocations.log");
    let token = token_with(json!({"jti": "survivor"}));
    let server = start(Some(&log), true);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    let (status, entry) = post(&server, &json!({"provider": "corp", "jti": "survivor"}));
    assert_eq!(status, 201, "{entry}");
    // Killed right after the 201: no shutdown path runs.
    server.signal("KILL");
    drop(server);

    let server = start(Some(&log), true);
    server.wait_readyz(200, Duration::from_secs(10));
    assert_eq!(code_of(&server, &token).await, GRPC_UNAUTHENTICATED);
    let entries = stored(&server);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], entry["id"]);
    // And a removal is durable too.
    let (status, _) = admin_call(
        server.admin,
        "DELETE",
        &format!("/v1/revocations/{}", entry["id"].as_str().expect("id")),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 204);
    server.signal("KILL");
    drop(server);
    let server = start(Some(&log), true);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
}

#[tokio::test]
async fn a_hundred_thousand_entry_log_loads_before_the_server_serves() {
    const ENTRIES: usize = 100_000;
    let dir = Scratch::new("revocation-big");
    let log = dir.0.join("revocations.log");
    let created = now();
    let mut text = String::with_capacity(ENTRIES * 110);
    for i in 0..ENTRIES {
        text.push_str(
            &json!({"op": "add", "id": format!("rv-{i:016x}"), "provider": "corp",
                "jti": format!("bulk-{i}"), "created_at": created})
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&log, text).expect("write log");
    let started = Instant::now();
    let server = start(Some(&log), true);
    server.wait_readyz(200, Duration::from_secs(30));
    let ready = started.elapsed();
    println!("{ENTRIES}-entry revocation log: ready in {ready:?}");
    let last = token_with(json!({"jti": format!("bulk-{}", ENTRIES - 1)}));
    let other = token_with(json!({"jti": "not-revoked"}));
    assert_eq!(code_of(&server, &last).await, GRPC_UNAUTHENTICATED);
    assert_eq!(code_of(&server, &other).await, GRPC_OK);
    let logs = server.logs();
    assert!(
        logs.contains("\"live\":100000"),
        "start-up line names the count: {logs}"
    );
    let line = logs
        .lines()
        .find(|l| l.contains("revocations loaded"))
        .unwrap_or_default();
    println!("start-up line: {line}");
}

/// Under load from `verdict-load`: for each of 100 tokens, allowed (and cached) on 8
/// connections spread over the workers, then revoked; every check sent after the 201, on
/// every connection, must be denied. Reports the time from the 201 until all 8 connections
/// have answered a denial (p50, p99, max).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_enforced_on_every_connection_at_once_under_load() {
    use common::load::{reader, verdict_load_bin, wait_child};
    use std::process::{Command, Stdio};
    const REVOCATIONS: usize = 100;
    const CONNECTIONS: usize = 8;

    let bin = verdict_load_bin();
    let server = start(None, true);
    let dir = Scratch::new("revocation-load");
    let background: Vec<String> = (0..32)
        .map(|i| token_with(json!({"jti": format!("load-{i}")})))
        .collect();
    let tokens_path = dir.0.join("tokens.txt");
    std::fs::write(&tokens_path, background.join("\n") + "\n").expect("tokens file");
    let mut load = Command::new(&bin)
        .arg("run")
        .arg("--target")
        .arg(server.grpc.to_string())
        .arg("--tokens-file")
        .arg(&tokens_path)
        .args(["-c", "2", "-m", "4", "--warmup", "0s", "--duration", "60s"])
        .args(["--timeout", "5s", "--deadline", "90s", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verdict-load");
    let stdout = reader(load.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(load.stderr.take().map(|p| Box::new(p) as _));
    // The load is on before the first revocation.
    let loaded = server.wait_metric(
        "verdict_checks_total",
        &[("result", "allow"), ("reason", "ok")],
        |n| n >= 200.0,
        Duration::from_secs(30),
    );
    assert!(
        loaded.is_some_and(|n| n >= 200.0),
        "verdict-load is sending checks"
    );

    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        // One channel each: its own HTTP/2 connection, balanced over the workers.
        clients.push(server.authz().await);
    }
    let admin = server.admin;
    let mut micros = Vec::with_capacity(REVOCATIONS);
    for i in 0..REVOCATIONS {
        let token = token_with(json!({"jti": format!("victim-{i}")}));
        for client in &mut clients {
            let answer = check(client, bearer_check(&token)).await;
            assert_eq!(grpc_code(&answer), GRPC_OK, "victim {i} allowed first");
        }
        let body = json!({"provider": "corp", "jti": format!("victim-{i}")}).to_string();
        let (status, text) = tokio::task::spawn_blocking(move || {
            admin_call(
                admin,
                "POST",
                "/v1/revocations",
                Some(TOKEN),
                Some(body.as_bytes()),
            )
        })
        .await
        .expect("admin call");
        assert_eq!(status, 201, "{text}");
        let acknowledged = Instant::now();
        let checks: Vec<_> = clients
            .iter()
            .map(|client| {
                let mut client = client.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let answer = check(&mut client, bearer_check(&token)).await;
                    (grpc_code(&answer), acknowledged.elapsed())
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for (connection, check) in checks.into_iter().enumerate() {
            let (code, after) = check.await.expect("check task");
            assert_eq!(
                code, GRPC_UNAUTHENTICATED,
                "victim {i}: the first check after the 201 on connection {connection} was not denied"
            );
            slowest = slowest.max(after);
        }
        micros.push(slowest.as_micros() as u64);
    }
    let _ = load.kill();
    let _ = wait_child(&mut load, Duration::from_secs(10), "verdict-load");
    let _ = (stdout.join(), stderr.join());
    micros.sort_unstable();
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    println!(
        "{REVOCATIONS} revocations under load, 201 → denied on all {CONNECTIONS} connections: p50 {} µs, p99 {} µs, max {} µs",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    assert_eq!(revoked_denials(&server), (REVOCATIONS * CONNECTIONS) as f64);
}
