//! ext_authz v3 interop with an independent client: Python `grpcio` with Envoy's own generated
//! protos (`xds-protos`), through `tests/support/extauthz_client.py`, against the real `verdict`
//! binary on an ephemeral loopback port.
//!
//! The client runs in `<repo>/.venv` (see `tests/venv/mod.rs`); nothing is skipped when Python
//! or the venv is missing: the test fails and says how to install it.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is how a test fails"
)]

mod authz_cases;
mod common;
mod venv;

use authz_cases::{Expect, SCOPE, Tokens, provider};
use common::{Server, example_jwks};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// Runs the Python client against `server` with `cases` and returns its `results`.
fn run_client(server: &Server, cases: &[Value]) -> Vec<Value> {
    let python = venv::python();
    let script = venv::repo_root().join("tests/support/extauthz_client.py");
    let request = json!({
        "target": server.grpc.to_string(),
        "timeout_s": 10,
        "cases": cases,
    });
    let (status, stdout, stderr) = venv::run_with_timeout(
        "extauthz_client.py",
        Command::new(&python)
            .arg(&script)
            .current_dir(venv::repo_root()),
        request.to_string().as_bytes(),
        Duration::from_secs(60),
    );
    assert!(
        status.success(),
        "extauthz_client.py failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n\
         {stderr}\n--- verdict logs ---\n{}",
        server.logs()
    );
    let answer: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("extauthz_client.py printed no JSON ({e}):\n{stdout}"));
    let results = answer["results"].as_array().expect("results array").clone();
    assert_eq!(results.len(), cases.len(), "one result per case: {answer}");
    for (case, result) in cases.iter().zip(&results) {
        assert_eq!(case["name"], result["name"], "results in order: {answer}");
        assert_eq!(
            result["grpc_status"], "OK",
            "{}: the Check RPC itself must succeed: {result}",
            case["name"]
        );
    }
    results
}

/// `[{key, value, append_action}]` → the value of `key`, asserting it appears once.
fn header<'a>(name: &str, headers: &'a Value, key: &str) -> Option<&'a str> {
    let matching: Vec<&Value> = headers
        .as_array()
        .expect("header list")
        .iter()
        .filter(|h| {
            h["key"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case(key))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name}: header {key} appears more than once: {headers}"
    );
    matching
        .first()
        .map(|h| h["value"].as_str().expect("value"))
}

/// The shared cases' provider, asking for every claim in the answer's metadata (so the Python
/// client decodes a `dynamic_metadata` Struct too).
fn provider_with_metadata() -> String {
    provider().replace(
        "leeway_s = 30\n",
        "leeway_s = 30\nclaims_to_metadata = [\"*\"]\n",
    )
}

fn check_allowed(name: &str, result: &Value, sub: &str, scope: Option<&str>) {
    assert_eq!(result["code"], 0, "{name}: allowed = OK: {result}");
    assert!(
        result["denied"].is_null(),
        "{name}: no denied_response: {result}"
    );
    let ok = &result["ok"];
    assert!(ok.is_object(), "{name}: an ok_response: {result}");
    assert_eq!(
        header(name, &ok["headers"], "x-verdict-sub"),
        Some(sub),
        "{name}: {result}"
    );
    assert_eq!(
        header(name, &ok["headers"], "x-verdict-scope"),
        scope,
        "{name}: {result}"
    );
    for h in ok["headers"].as_array().expect("headers") {
        assert_eq!(
            h["append_action"], "OVERWRITE_IF_EXISTS_OR_ADD",
            "{name}: claim headers must replace what the client sent: {result}"
        );
    }
    let removed: Vec<&str> = ok["headers_to_remove"]
        .as_array()
        .expect("headers_to_remove")
        .iter()
        .map(|v| v.as_str().expect("header name"))
        .collect();
    assert_eq!(
        removed.contains(&"x-verdict-scope"),
        scope.is_none(),
        "{name}: a claim the token lacks is removed, one it has is not: {result}"
    );
    let metadata = &result["dynamic_metadata"]["verdict"];
    assert_eq!(metadata["provider"], "corp", "{name}: {result}");
    assert_eq!(metadata["alg"], "RS256", "{name}: {result}");
    assert_eq!(metadata["claims"]["sub"], sub, "{name}: {result}");
    assert_eq!(
        metadata["claims"]["iss"], "https://idp.example.com",
        "{name}: {result}"
    );
}

fn check_denied(name: &str, result: &Value, expect: Expect) {
    assert_eq!(
        result["code"],
        expect.grpc_code(),
        "{name}: status code: {result}"
    );
    assert!(result["ok"].is_null(), "{name}: no ok_response: {result}");
    assert!(
        result["dynamic_metadata"].is_null(),
        "{name}: no claims for a denied request: {result}"
    );
    let denied = &result["denied"];
    assert_eq!(
        denied["status"],
        expect.http_status(),
        "{name}: denied_response status: {result}"
    );
    let challenge = header(name, &denied["headers"], "www-authenticate")
        .unwrap_or_else(|| panic!("{name}: www-authenticate in denied_response: {result}"));
    expect.check_challenge(name, challenge);
}

#[test]
fn grpcio_client_gets_allow_and_deny_answers() {
    let server = Server::start(&provider_with_metadata(), &[("jwks.json", &example_jwks())]);
    let tokens = Tokens::new();
    let cases = tokens.cases();
    let mut requests: Vec<Value> = Vec::new();
    for case in &cases {
        let mut headers = json!({"x-request-id": case.name});
        if let Some(authorization) = &case.authorization {
            headers["authorization"] = json!(authorization);
        }
        // A forged claim header must never survive: verdict answers with its own value.
        headers["x-verdict-sub"] = json!("mallory");
        requests.push(json!({"name": case.name, "path": "/orders", "headers": headers}));
        // The same request the way Envoy sends it with `encode_raw_headers: true`.
        requests.push(json!({
            "name": format!("{}/raw", case.name),
            "path": "/orders",
            "headers": headers,
            "raw": true,
        }));
    }
    let results = run_client(&server, &requests);
    for (i, case) in cases.iter().enumerate() {
        for result in &results[2 * i..2 * i + 2] {
            let name = result["name"].as_str().expect("name");
            match case.expect {
                Expect::Allow => check_allowed(name, result, "alice", Some(SCOPE)),
                expect => check_denied(name, result, expect),
            }
        }
    }
    let logs = server.logs();
    for case in &cases {
        if let Some(authorization) = &case.authorization {
            let token = authorization.split_once(' ').map_or("", |(_, t)| t);
            assert!(
                token.len() < 16 || !logs.contains(token),
                "{}: a token must never be logged:\n{logs}",
                case.name
            );
        }
    }
}

#[test]
fn grpcio_client_sees_absent_claims_removed() {
    let server = Server::start(&provider_with_metadata(), &[("jwks.json", &example_jwks())]);
    let tokens = Tokens::new();
    // A token with the required scope but no `sub`: x-verdict-sub must be removed, not kept
    // from the client.
    let mut claims = common::claims(authz_cases::ISSUER, authz_cases::AUDIENCE, "unused");
    claims.as_object_mut().expect("claims object").remove("sub");
    claims["scope"] = json!("orders:read");
    let token = tokens.mint(&claims);
    let results = run_client(
        &server,
        &[json!({
            "name": "no_sub",
            "headers": {"authorization": format!("Bearer {token}"), "x-verdict-sub": "mallory"},
        })],
    );
    let result = &results[0];
    assert_eq!(result["code"], 0, "{result}");
    let ok = &result["ok"];
    assert_eq!(header("no_sub", &ok["headers"], "x-verdict-sub"), None);
    assert_eq!(
        header("no_sub", &ok["headers"], "x-verdict-scope"),
        Some("orders:read")
    );
    assert_eq!(
        ok["headers_to_remove"],
        json!(["x-verdict-sub"]),
        "{result}"
    );
}

#[test]
fn grpcio_client_sees_many_checks_on_one_channel() {
    // Many allowed and denied checks, one after another on one HTTP/2 connection: every answer
    // carries its own token's claims (no cross-talk through the caches).
    let server = Server::start(&provider_with_metadata(), &[("jwks.json", &example_jwks())]);
    let tokens = Tokens::new();
    let subs: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let requests: Vec<Value> = subs
        .iter()
        .enumerate()
        .map(|(i, sub)| {
            let authorization = if i % 3 == 2 {
                "Bearer garbage".to_owned()
            } else {
                format!("Bearer {}", tokens.valid(sub))
            };
            json!({"name": sub, "headers": {"authorization": authorization}})
        })
        .collect();
    let results = run_client(&server, &requests);
    for (i, (sub, result)) in subs.iter().zip(&results).enumerate() {
        if i % 3 == 2 {
            check_denied(sub, result, Expect::InvalidToken);
        } else {
            check_allowed(sub, result, sub, Some(SCOPE));
        }
    }
}
