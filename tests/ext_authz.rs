//! ext_authz v3 as Envoy sees it, against the real binary: what an allowed answer carries, how
//! each kind of bad credential is denied (gRPC code, HTTP status, RFC 6750 challenge), where
//! credentials are read from, provider selection by `iss`, the check counter, and Envoy's
//! `header_map` request form.
mod common;

use common::*;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
    attribute_context,
};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value as PbValue};
use serde_json::json;

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";
const UNAUTHENTICATED: i32 = 16;
const PERMISSION_DENIED: i32 = 7;
const CHALLENGE_MISSING: &str = r#"Bearer realm="verdict""#;
const CHALLENGE_INVALID: &str = r#"Bearer realm="verdict", error="invalid_token""#;
const CHALLENGE_SCOPE: &str = r#"Bearer realm="verdict", error="insufficient_scope""#;

fn example_server() -> Server {
    Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())])
}

fn ok_response(response: &CheckResponse) -> &OkHttpResponse {
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("expected an ok_response, got {other:?}"),
    }
}

fn denied_response(response: &CheckResponse) -> &DeniedHttpResponse {
    match &response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied,
        other => panic!("expected a denied_response, got {other:?}"),
    }
}

fn header<'a>(headers: &'a [HeaderValueOption], key: &str) -> Option<&'a HeaderValueOption> {
    headers
        .iter()
        .find(|h| h.header.as_ref().is_some_and(|h| h.key == key))
}

fn header_value<'a>(headers: &'a [HeaderValueOption], key: &str) -> Option<&'a str> {
    header(headers, key)
        .and_then(|h| h.header.as_ref())
        .map(|h| h.value.as_str())
}

fn field<'a>(s: &'a Struct, key: &str) -> &'a PbValue {
    s.fields
        .get(key)
        .unwrap_or_else(|| panic!("metadata has no {key:?}: {s:?}"))
}

fn as_struct(value: &PbValue) -> &Struct {
    match &value.kind {
        Some(Kind::StructValue(s)) => s,
        other => panic!("expected a struct, got {other:?}"),
    }
}

fn as_str(value: &PbValue) -> &str {
    match &value.kind {
        Some(Kind::StringValue(s)) => s,
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The denial an invalid credential must get: 16 + 401 + `error="invalid_token"`, and nothing
/// about the token in the answer.
fn assert_invalid_token(response: &CheckResponse, token: &str, case: &str) {
    assert_eq!(grpc_code(response), UNAUTHENTICATED, "{case}: {response:?}");
    let denied = denied_response(response);
    assert_eq!(
        denied.status.as_ref().map(|s| s.code),
        Some(401),
        "{case}: {response:?}"
    );
    assert_eq!(
        header_value(&denied.headers, "www-authenticate"),
        Some(CHALLENGE_INVALID),
        "{case}"
    );
    assert_no_token_detail(response, token, case);
}

/// No part of the token, and no error description, may leave in a denial.
fn assert_no_token_detail(response: &CheckResponse, token: &str, case: &str) {
    let rendered = format!("{response:?}");
    for part in token.split('.').filter(|p| p.len() >= 8) {
        assert!(
            !rendered.contains(part),
            "{case}: the answer echoes part of the token: {rendered}"
        );
    }
    assert!(
        !rendered.contains("error_description"),
        "{case}: {rendered}"
    );
    let status = response.status.as_ref().expect("status");
    assert!(
        status.message.is_empty(),
        "{case}: status message {:?}",
        status.message
    );
    assert!(status.details.is_empty(), "{case}");
    assert!(response.dynamic_metadata.is_none(), "{case}");
    assert!(denied_response(response).body.is_empty(), "{case}");
}

#[tokio::test]
async fn valid_token_is_allowed_with_claim_headers_and_metadata() {
    let server = example_server();
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let mut client = server.authz().await;
    // The client also sends its own x-verdict-sub: Envoy must overwrite it, not append.
    let request = envoy_check(
        "/orders",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-verdict-sub", "mallory"),
        ],
    );
    let response = check(&mut client, request).await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");
    let ok = ok_response(&response);
    for (key, want) in [
        ("x-verdict-sub", "alice"),
        ("x-verdict-scope", "orders:read orders:write"),
    ] {
        let option = header(&ok.headers, key).unwrap_or_else(|| panic!("no {key}: {ok:?}"));
        assert_eq!(option.header.as_ref().map(|h| h.value.as_str()), Some(want));
        assert_eq!(
            option.append_action,
            HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            "{key} must replace whatever the client sent"
        );
    }
    assert!(ok.headers_to_remove.is_empty(), "{ok:?}");

    // No metadata unless the provider asks for it: Envoy pays for it on every call.
    assert!(response.dynamic_metadata.is_none(), "{response:?}");
}

#[tokio::test]
async fn claims_to_metadata_puts_the_named_claims_or_all_into_dynamic_metadata() {
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    for (setting, want, absent) in [
        (
            r#"["sub", "scope", "missing"]"#,
            vec!["sub", "scope"],
            vec!["iss", "missing"],
        ),
        (
            r#"["*"]"#,
            vec!["sub", "scope", "iss", "aud", "exp"],
            vec![],
        ),
    ] {
        let config = EXAMPLE_PROVIDER.replace(
            "leeway_s = 30\n",
            &format!("leeway_s = 30\nclaims_to_metadata = {setting}\n"),
        );
        let server = Server::start(&config, &[("jwks.json", &example_jwks())]);
        let mut client = server.authz().await;
        let response = check(&mut client, bearer_check(&token)).await;
        assert_eq!(grpc_code(&response), 0, "{setting}: {response:?}");
        let metadata = response
            .dynamic_metadata
            .as_ref()
            .expect("dynamic_metadata");
        let verdict = as_struct(field(metadata, "verdict"));
        assert_eq!(as_str(field(verdict, "provider")), "corp");
        assert_eq!(as_str(field(verdict, "alg")), "RS256");
        let claims = as_struct(field(verdict, "claims"));
        for name in want {
            assert!(
                claims.fields.contains_key(name),
                "{setting}: {name} in {claims:?}"
            );
        }
        for name in absent {
            assert!(
                !claims.fields.contains_key(name),
                "{setting}: no {name} in {claims:?}"
            );
        }
        assert_eq!(as_str(field(claims, "sub")), "alice");
        // A cached answer carries the same metadata.
        let again = check(&mut client, bearer_check(&token)).await;
        assert_eq!(again, response, "{setting}");
    }
}

#[tokio::test]
async fn configured_claim_header_without_its_claim_is_removed() {
    let server = example_server();
    let now = now();
    // No `scope` claim: x-verdict-scope must be stripped so a client cannot forge it.
    let token = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "sub": "bob", "iat": now, "exp": now + 600,
    }));
    let mut client = server.authz().await;
    let request = envoy_check(
        "/orders",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-verdict-scope", "orders:admin"),
        ],
    );
    let response = check(&mut client, request).await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");
    let ok = ok_response(&response);
    assert_eq!(header_value(&ok.headers, "x-verdict-sub"), Some("bob"));
    assert!(header(&ok.headers, "x-verdict-scope").is_none(), "{ok:?}");
    assert_eq!(ok.headers_to_remove, vec!["x-verdict-scope".to_owned()]);
}

#[tokio::test]
async fn missing_credential_is_401_with_a_bare_challenge() {
    let server = example_server();
    let mut client = server.authz().await;
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let basic = format!("Basic {token}");
    for (case, headers) in [
        ("no headers", vec![]),
        ("other headers only", vec![("accept", "application/json")]),
        ("basic scheme", vec![("authorization", basic.as_str())]),
        ("scheme without token", vec![("authorization", "Bearer")]),
        ("scheme and blanks", vec![("authorization", "Bearer    ")]),
    ] {
        let response = check(&mut client, envoy_check("/orders", &headers)).await;
        assert_eq!(
            grpc_code(&response),
            UNAUTHENTICATED,
            "{case}: {response:?}"
        );
        let denied = denied_response(&response);
        assert_eq!(denied.status.as_ref().map(|s| s.code), Some(401), "{case}");
        assert_eq!(
            header_value(&denied.headers, "www-authenticate"),
            Some(CHALLENGE_MISSING),
            "{case}: no error code when no credential was sent (RFC 6750 3.1)"
        );
        assert_no_token_detail(&response, &token, case);
    }
    let missing = server.metric_where(
        "verdict_checks_total",
        &[("result", "deny"), ("reason", "missing_credential")],
    );
    assert_eq!(missing, Some(5.0));
}

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token_for_the_right_reason() {
    let server = example_server();
    let key = TestKey::example_rsa();
    let now = now();
    let claims_with = |patch: serde_json::Value| {
        let mut c = claims(ISS, AUD, "alice");
        if let (Some(c), Some(patch)) = (c.as_object_mut(), patch.as_object()) {
            for (k, v) in patch {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    };
    let other_key = TestKey::ed25519("example-2026");
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed", "not-a-jwt".to_owned(), "malformed"),
        (
            "four parts",
            format!("{}.extra", key.mint(&claims(ISS, AUD, "alice"))),
            "malformed",
        ),
        (
            "expired",
            key.mint(&claims_with(json!({"iat": now - 7200, "exp": now - 3600}))),
            "expired",
        ),
        (
            "wrong audience",
            key.mint(&claims_with(json!({"aud": "api://billing"}))),
            "wrong_audience",
        ),
        (
            "wrong issuer",
            key.mint(&claims_with(json!({"iss": "https://evil.example.com"}))),
            "wrong_issuer",
        ),
        (
            "bad signature",
            tamper_signature(&key.mint(&claims(ISS, AUD, "alice"))),
            "bad_signature",
        ),
        ("alg none", alg_none(&claims(ISS, AUD, "alice")), "alg_none"),
        (
            "signed by a stranger under the right kid, header claims RS256",
            {
                // The header says RS256 with the trusted kid, but the signature is an Ed25519
                // one from another key: it must not verify.
                let header = json!({"alg": "RS256", "kid": "example-2026", "typ": "JWT"});
                other_key.mint_with_header(&header, &claims(ISS, AUD, "alice"))
            },
            "bad_signature",
        ),
    ];
    let mut client = server.authz().await;
    for (case, token, _) in &cases {
        let response = check(&mut client, bearer_check(token)).await;
        assert_invalid_token(&response, token, case);
    }
    // Each was denied for its own reason (the counter is labelled by reason).
    let exposition = server.metrics_text();
    for (case, _, reason) in &cases {
        let count = find_series(
            &exposition,
            "verdict_checks_total",
            &[("result", "deny"), ("reason", reason)],
        );
        assert!(
            count.is_some_and(|c| c >= 1.0),
            "{case}: no deny with reason {reason} in\n{exposition}"
        );
    }
    assert!(
        find_series(&exposition, "verdict_checks_total", &[("result", "allow")]).is_none(),
        "nothing may have been allowed"
    );
    let logs = server.logs();
    for (case, token, _) in &cases {
        if token.len() > 20 {
            assert!(!logs.contains(token.as_str()), "{case}: token logged");
        }
    }
}

#[tokio::test]
async fn missing_required_scope_is_403_insufficient_scope() {
    let provider = EXAMPLE_PROVIDER.replace(
        "leeway_s = 30",
        "leeway_s = 30\nrequired_scopes = [\"orders:admin\"]",
    );
    let server = Server::start(&provider, &[("jwks.json", &example_jwks())]);
    let key = TestKey::example_rsa();
    let mut client = server.authz().await;

    // claims() grants "orders:read orders:write" only.
    let token = key.mint(&claims(ISS, AUD, "alice"));
    let response = check(&mut client, bearer_check(&token)).await;
    assert_eq!(grpc_code(&response), PERMISSION_DENIED, "{response:?}");
    let denied = denied_response(&response);
    assert_eq!(denied.status.as_ref().map(|s| s.code), Some(403));
    assert_eq!(
        header_value(&denied.headers, "www-authenticate"),
        Some(CHALLENGE_SCOPE)
    );
    assert_no_token_detail(&response, &token, "insufficient scope");
    assert_eq!(
        server.metric_where(
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "insufficient_scope")]
        ),
        Some(1.0)
    );

    // Granted through the space-separated `scope` string, or through an `scp` array.
    let now = now();
    for granted in [
        json!({"scope": "orders:read orders:admin"}),
        json!({"scp": ["orders:admin"]}),
    ] {
        let mut c = json!({"iss": ISS, "aud": AUD, "sub": "root", "iat": now, "exp": now + 600});
        if let (Some(c), Some(g)) = (c.as_object_mut(), granted.as_object()) {
            c.extend(g.clone());
        }
        let response = check(&mut client, bearer_check(&key.mint(&c))).await;
        assert_eq!(grpc_code(&response), 0, "{granted}: {response:?}");
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let server = example_server();
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let mut client = server.authz().await;
    for scheme in ["bearer", "BEARER", "BeArEr", "Bearer"] {
        let value = format!("{scheme} {token}");
        let response = check(&mut client, envoy_check("/", &[("authorization", &value)])).await;
        assert_eq!(grpc_code(&response), 0, "{scheme}: {response:?}");
    }
}

#[tokio::test]
async fn token_from_cookie_query_or_custom_header() {
    let provider = r#"
[[providers]]
name = "web"
issuer = "https://idp.example.com"
audiences = ["api://orders"]
jwks_file = "jwks.json"
algorithms = ["RS256"]
claims_to_headers = { sub = "x-verdict-sub" }
token_header = "X-Api-Token"
token_scheme = ""
token_cookie = "session"
token_query = "access_token"
"#;
    let server = Server::start(provider, &[("jwks.json", &example_jwks())]);
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "carol"));
    let cookie = format!("theme=dark; session={token}; lang=en");
    let query_path = format!("/orders?page=2&access_token={token}&x=1");
    let mut client = server.authz().await;
    for (case, request) in [
        (
            "custom header, no scheme",
            envoy_check("/orders", &[("x-api-token", &token)]),
        ),
        ("cookie", envoy_check("/orders", &[("cookie", &cookie)])),
        ("query parameter", envoy_check(&query_path, &[])),
    ] {
        let response = check(&mut client, request).await;
        assert_eq!(grpc_code(&response), 0, "{case}: {response:?}");
        assert_eq!(
            header_value(&ok_response(&response).headers, "x-verdict-sub"),
            Some("carol"),
            "{case}"
        );
    }
    // This provider does not read `authorization`: a bearer token there is no credential.
    let response = check(&mut client, bearer_check(&token)).await;
    assert_eq!(grpc_code(&response), UNAUTHENTICATED);
    assert_eq!(
        header_value(&denied_response(&response).headers, "www-authenticate"),
        Some(CHALLENGE_MISSING)
    );
    // A bad token in the cookie is an invalid credential, not a missing one.
    let bad = tamper_signature(&token);
    let response = check(
        &mut client,
        envoy_check("/orders", &[("cookie", &format!("session={bad}"))]),
    )
    .await;
    assert_invalid_token(&response, &bad, "tampered cookie");
}

#[tokio::test]
async fn two_providers_are_selected_by_issuer_each_with_its_own_key() {
    let ci_key = TestKey::ed25519("ci-1");
    // Both ask for metadata, which names the provider that judged the token.
    let corp = EXAMPLE_PROVIDER.replace(
        "leeway_s = 30\n",
        "leeway_s = 30\nclaims_to_metadata = [\"sub\"]\n",
    );
    let config = format!(
        r#"{corp}
[[providers]]
name = "ci"
issuer = "urn:example:ci"
audiences = ["api://orders"]
jwks_file = "ci.jwks.json"
algorithms = ["EdDSA"]
claims_to_headers = {{ sub = "x-ci-sub" }}
claims_to_metadata = ["sub"]
"#
    );
    let server = Server::start(
        &config,
        &[
            ("jwks.json", &example_jwks()),
            ("ci.jwks.json", ci_key.jwks().as_bytes()),
        ],
    );
    let corp_key = TestKey::example_rsa();
    let mut client = server.authz().await;

    let corp = corp_key.mint(&claims(ISS, AUD, "alice"));
    let response = check(&mut client, bearer_check(&corp)).await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");
    let metadata = response.dynamic_metadata.as_ref().expect("metadata");
    assert_eq!(
        as_str(field(as_struct(field(metadata, "verdict")), "provider")),
        "corp"
    );
    assert_eq!(
        header_value(&ok_response(&response).headers, "x-verdict-sub"),
        Some("alice")
    );

    let ci = ci_key.mint(&claims("urn:example:ci", AUD, "build-bot"));
    let response = check(&mut client, bearer_check(&ci)).await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");
    let metadata = response.dynamic_metadata.as_ref().expect("metadata");
    let verdict = as_struct(field(metadata, "verdict"));
    assert_eq!(as_str(field(verdict, "provider")), "ci");
    assert_eq!(as_str(field(verdict, "alg")), "EdDSA");
    let ok = ok_response(&response);
    assert_eq!(header_value(&ok.headers, "x-ci-sub"), Some("build-bot"));
    assert!(header(&ok.headers, "x-verdict-sub").is_none());

    // Each issuer only trusts its own key: the corp key cannot mint for ci, nor ci's for corp.
    let forged_ci = corp_key.mint(&claims("urn:example:ci", AUD, "build-bot"));
    let response = check(&mut client, bearer_check(&forged_ci)).await;
    assert_invalid_token(&response, &forged_ci, "corp key, ci issuer");
    let forged_corp = TestKey::ed25519("example-2026").mint(&claims(ISS, AUD, "alice"));
    let response = check(&mut client, bearer_check(&forged_corp)).await;
    assert_invalid_token(&response, &forged_corp, "ed25519 key, corp issuer");
    // An issuer nobody configured.
    let stranger = ci_key.mint(&claims("https://stranger.example", AUD, "x"));
    let response = check(&mut client, bearer_check(&stranger)).await;
    assert_invalid_token(&response, &stranger, "unknown issuer");

    let exposition = server.metrics_text();
    for (provider, alg) in [("corp", "RS256"), ("ci", "EdDSA")] {
        assert_eq!(
            find_series(
                &exposition,
                "verdict_checks_total",
                &[("result", "allow"), ("provider", provider), ("alg", alg)]
            ),
            Some(1.0),
            "{exposition}"
        );
    }
    assert!(
        find_series(
            &exposition,
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "wrong_issuer")]
        )
        .is_some(),
        "{exposition}"
    );
}

#[tokio::test]
async fn expired_checks_increment_the_labelled_counter() {
    let server = example_server();
    let now = now();
    let expired = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "iat": now - 7200, "exp": now - 3600,
    }));
    let series =
        r#"verdict_checks_total{result="deny",reason="expired",provider="corp",alg="RS256"}"#;
    assert_eq!(server.metric(series), None, "no check answered yet");
    let mut client = server.authz().await;
    for round in 1..=3u32 {
        let response = check(&mut client, bearer_check(&expired)).await;
        assert_invalid_token(&response, &expired, "expired");
        assert_eq!(
            server.metric(series),
            Some(f64::from(round)),
            "{}",
            server.metrics_text()
        );
    }
}

#[tokio::test]
async fn envoy_header_map_form_is_understood() {
    let server = example_server();
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "dave"));
    let bearer = format!("Bearer {token}");
    let request = |header: HeaderValue| CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: "/orders".into(),
                    header_map: Some(HeaderMap {
                        headers: vec![
                            HeaderValue {
                                key: ":authority".into(),
                                value: "orders.example.com".into(),
                                ..Default::default()
                            },
                            header,
                        ],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let mut client = server.authz().await;
    for (case, header) in [
        (
            "value",
            HeaderValue {
                key: "authorization".into(),
                value: bearer.clone(),
                ..Default::default()
            },
        ),
        (
            "raw_value (encode_raw_headers)",
            HeaderValue {
                key: "authorization".into(),
                raw_value: bearer.clone().into_bytes(),
                ..Default::default()
            },
        ),
        (
            "mixed-case name",
            HeaderValue {
                key: "Authorization".into(),
                raw_value: bearer.clone().into_bytes(),
                ..Default::default()
            },
        ),
    ] {
        let response = check(&mut client, request(header)).await;
        assert_eq!(grpc_code(&response), 0, "{case}: {response:?}");
        assert_eq!(
            header_value(&ok_response(&response).headers, "x-verdict-sub"),
            Some("dave"),
            "{case}"
        );
    }
    // A bad token in header_map is still judged (not treated as missing).
    let bad = tamper_signature(&token);
    let response = check(
        &mut client,
        request(HeaderValue {
            key: "authorization".into(),
            raw_value: format!("Bearer {bad}").into_bytes(),
            ..Default::default()
        }),
    )
    .await;
    assert_invalid_token(&response, &bad, "header_map bad signature");
}

#[tokio::test]
async fn claim_values_render_as_safe_header_values() {
    let provider = EXAMPLE_PROVIDER.replace(
        r#"claims_to_headers = { sub = "x-verdict-sub", scope = "x-verdict-scope" }"#,
        r#"claims_to_headers = { sub = "x-verdict-sub", roles = "x-roles", tenant = "x-tenant", admin = "x-admin", org = "x-org", gone = "x-gone" }"#,
    );
    assert_ne!(provider, EXAMPLE_PROVIDER, "EXAMPLE_PROVIDER changed shape");
    let server = Server::start(&provider, &[("jwks.json", &example_jwks())]);
    let now = now();
    let token = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "iat": now, "exp": now + 600,
        // A claim trying to smuggle a second header line.
        "sub": "alice\r\nx-injected: yes",
        "roles": ["reader", "writer"],
        "tenant": 42,
        "admin": false,
        "org": {"id": "o-1"},
        "gone": null,
    }));
    let mut client = server.authz().await;
    let response = check(&mut client, bearer_check(&token)).await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");
    let ok = ok_response(&response);
    // A value with control characters is never rewritten into another value: the header is
    // left out, and removed so the client cannot supply its own.
    assert!(header(&ok.headers, "x-verdict-sub").is_none(), "{ok:?}");
    assert_eq!(header_value(&ok.headers, "x-roles"), Some("reader,writer"));
    assert_eq!(header_value(&ok.headers, "x-tenant"), Some("42"));
    assert_eq!(header_value(&ok.headers, "x-admin"), Some("false"));
    assert_eq!(header_value(&ok.headers, "x-org"), Some(r#"{"id":"o-1"}"#));
    // A null claim is as good as absent: the header is removed, not set to "null".
    assert!(header(&ok.headers, "x-gone").is_none(), "{ok:?}");
    let mut removed = ok.headers_to_remove.clone();
    removed.sort();
    assert_eq!(
        removed,
        vec!["x-gone".to_owned(), "x-verdict-sub".to_owned()]
    );
    assert!(header(&ok.headers, "x-injected").is_none());

    // NUL, DEL or TAB inside, or an array element holding a comma (["a,b"] and ["a","b"] would
    // render alike): left out and counted, each time.
    for (case, sub, roles) in [
        ("NUL", json!("ad\u{0000}min"), json!(["reader"])),
        ("DEL", json!("ad\u{007f}min"), json!(["reader"])),
        ("TAB", json!("ad\tmin"), json!(["reader"])),
        (
            "comma in an element",
            json!("admin"),
            json!(["reader,writer"]),
        ),
        ("empty element", json!("admin"), json!(["reader", ""])),
    ] {
        let token = TestKey::example_rsa().mint(&json!({
            "iss": ISS, "aud": AUD, "iat": now, "exp": now + 600, "sub": sub, "roles": roles,
        }));
        let response = check(&mut client, bearer_check(&token)).await;
        assert_eq!(grpc_code(&response), 0, "{case}: {response:?}");
        let ok = ok_response(&response);
        let (refused, kept) = if case.contains("element") {
            ("x-roles", "x-verdict-sub")
        } else {
            ("x-verdict-sub", "x-roles")
        };
        assert!(header(&ok.headers, refused).is_none(), "{case}: {ok:?}");
        assert!(
            ok.headers_to_remove.iter().any(|h| h == refused),
            "{case}: {ok:?}"
        );
        assert!(header(&ok.headers, kept).is_some(), "{case}: {ok:?}");
    }
    let refused = |header: &str| {
        server
            .metric_where(
                "verdict_claim_headers_refused_total",
                &[("provider", "corp"), ("header", header)],
            )
            .unwrap_or(0.0)
    };
    assert_eq!(refused("x-verdict-sub"), 4.0);
    assert_eq!(refused("x-roles"), 2.0);
}

/// A claim the provider requires and cannot render unchanged denies the request instead.
#[tokio::test]
async fn a_required_claim_that_cannot_be_rendered_denies() {
    let provider = EXAMPLE_PROVIDER.replace(
        "leeway_s = 30\n",
        "leeway_s = 30\nrequired_claims = [\"sub\"]\n",
    );
    let server = Server::start(&provider, &[("jwks.json", &example_jwks())]);
    let mut client = server.authz().await;
    let now = now();
    let token = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "iat": now, "exp": now + 600, "sub": "ad\u{0000}min",
    }));
    let response = check(&mut client, bearer_check(&token)).await;
    assert_invalid_token(&response, &token, "unrenderable required sub");
    assert_eq!(
        server.metric_where(
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "unrenderable_claim")]
        ),
        Some(1.0)
    );
    let fine = TestKey::example_rsa().mint(&claims(ISS, AUD, "admin"));
    assert_eq!(grpc_code(&check(&mut client, bearer_check(&fine)).await), 0);
}

/// EdDSA checks that arrive together on one worker are verified in shared signature batches,
/// and a tampered token among them is still refused on its own while its neighbours pass.
#[tokio::test]
async fn concurrent_eddsa_checks_share_batches_and_keep_their_own_verdicts() {
    let key = TestKey::ed25519("ed-batch");
    let config = EXAMPLE_PROVIDER.replace(
        "[[providers]]",
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n\n[[providers]]",
    );
    let server = Server::start(&config, &[("jwks.json", key.jwks().as_bytes())]);
    let client = server.authz().await;
    const ROUNDS: usize = 3;
    const PER_ROUND: usize = 48;
    for round in 0..ROUNDS {
        // Round 0 holds only valid tokens; later rounds mix in tampered signatures.
        let tampered = |n: usize| round > 0 && n % 11 == 5;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..PER_ROUND {
            let mut token = key.mint(&claims(ISS, AUD, &format!("user-{round}-{n}")));
            if tampered(n) {
                // Change one signature character in the middle: still canonical base64url.
                let at = token.rfind('.').expect("three parts") + 20;
                let swapped = if token.as_bytes()[at] == b'A' {
                    "B"
                } else {
                    "A"
                };
                token.replace_range(at..=at, swapped);
            }
            let mut client = client.clone();
            tasks.spawn(async move {
                let response = check(&mut client, bearer_check(&token)).await;
                (n, token, response)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (n, token, response) = joined.expect("check task");
            if tampered(n) {
                assert_invalid_token(&response, &token, &format!("round {round}, token {n}"));
            } else {
                assert_eq!(
                    grpc_code(&response),
                    0,
                    "round {round}, token {n}: {response:?}"
                );
                let want = format!("user-{round}-{n}");
                assert_eq!(
                    header_value(&ok_response(&response).headers, "x-verdict-sub"),
                    Some(want.as_str())
                );
            }
        }
    }
    // Every EdDSA signature went through the batcher, and checks that arrived together shared
    // batches (counted over all results: a round with a tampered token fails its batch).
    let signatures = server.metric_sum("verdict_signature_batch_signatures_total");
    let batches = server.metric_sum("verdict_signature_batches_total");
    assert_eq!(signatures, (ROUNDS * PER_ROUND) as f64);
    assert!(
        batches < signatures,
        "{signatures} signatures in {batches} batches: none was shared"
    );
}
