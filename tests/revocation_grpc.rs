//! `verdict.v1.RevocationAdmin` against the real binary: Revoke, ListRevocations and Unrevoke
//! behind the admin bearer token, enforced on the next ext_authz check and visible through the
//! HTTP admin API; bad tokens and bad inputs refused with nothing stored.

mod common;

use common::{
    CALL_TIMEOUT, EXAMPLE_PROVIDER, Server, TestKey, admin_call, bearer_check, check, claims,
    connect, example_jwks, grpc_code, now,
};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;
use verdict::rpc::proto::revocation_admin_client::RevocationAdminClient;
use verdict::rpc::proto::{
    ListRevocationsRequest, Revocation, RevokeRequest, UnrevokeRequest, revocation, revoke_request,
};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "api://orders";
const TOKEN: &str = "test-admin-token-0123456789";
const GRPC_OK: i32 = 0;
const GRPC_UNAUTHENTICATED: i32 = 16;

fn start(admin: bool) -> Server {
    let mut config = String::new();
    if admin {
        config.push_str("[admin]\ntoken_file = \"admin.token\"\n\n");
    }
    config.push_str(EXAMPLE_PROVIDER);
    Server::start(
        &config,
        &[
            ("jwks.json", example_jwks().as_slice()),
            ("admin.token", format!("{TOKEN}\n").as_bytes()),
        ],
    )
}

async fn client(server: &Server) -> RevocationAdminClient<Channel> {
    RevocationAdminClient::new(connect(server.grpc).await)
}

/// `message` with `authorization: <value>` (none when `None`).
fn with_auth<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("metadata value"));
    }
    request
}

fn admin<T>(message: T) -> tonic::Request<T> {
    with_auth(message, Some(&format!("Bearer {TOKEN}")))
}

fn by_jti(jti: &str) -> RevokeRequest {
    RevokeRequest {
        provider: "corp".into(),
        selector: Some(revoke_request::Selector::Jti(jti.into())),
        reason: None,
        expires_at: None,
    }
}

async fn list(client: &mut RevocationAdminClient<Channel>) -> Vec<Revocation> {
    client
        .list_revocations(admin(ListRevocationsRequest {}))
        .await
        .expect("ListRevocations")
        .into_inner()
        .revocations
}

fn http_stored(server: &Server) -> Vec<Value> {
    let (status, text) = admin_call(server.admin, "GET", "/v1/revocations", Some(TOKEN), None);
    assert_eq!(status, 200, "GET /v1/revocations: {text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    body["revocations"].as_array().expect("array").clone()
}

fn token_with(extra: Value) -> String {
    let mut claims = claims(ISSUER, AUDIENCE, "alice");
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    TestKey::example_rsa().mint(&claims)
}

async fn code_of(server: &Server, token: &str) -> i32 {
    let mut client = server.authz().await;
    grpc_code(&check(&mut client, bearer_check(token)).await)
}

#[tokio::test]
async fn revoke_list_unrevoke_over_grpc() {
    let server = start(true);
    let mut admin_client = client(&server).await;
    let token = token_with(json!({"jti": "g-1"}));
    let bystander = token_with(json!({"jti": "g-2"}));
    // Allowed twice: the second answer is the cached one.
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);

    let mut request = by_jti("g-1");
    request.reason = Some("leaked in a log".into());
    let before = now();
    let entry = admin_client
        .revoke(admin(request.clone()))
        .await
        .expect("Revoke")
        .into_inner();
    assert!(entry.created, "{entry:?}");
    assert!(entry.id.starts_with("rv-"), "{entry:?}");
    assert_eq!(entry.provider, "corp");
    assert_eq!(
        entry.selector,
        Some(revocation::Selector::Jti("g-1".into()))
    );
    assert_eq!(entry.reason.as_deref(), Some("leaked in a log"));
    assert!(entry.created_at >= before && entry.created_at <= now() + 1);

    // Enforced on the next check (the cached answer included); others unaffected.
    assert_eq!(code_of(&server, &token).await, GRPC_UNAUTHENTICATED);
    assert_eq!(code_of(&server, &bystander).await, GRPC_OK);

    // The HTTP API sees the same entry.
    let http = http_stored(&server);
    assert_eq!(http.len(), 1, "{http:?}");
    assert_eq!(http[0]["id"], entry.id.as_str());
    assert_eq!(http[0]["jti"], "g-1");
    assert_eq!(http[0]["reason"], "leaked in a log");
    assert_eq!(http[0]["created_at"], entry.created_at);

    // The same selector again: the same entry, not created.
    let again = admin_client
        .revoke(admin(request))
        .await
        .expect("Revoke again")
        .into_inner();
    assert!(!again.created, "{again:?}");
    assert_eq!(again.id, entry.id);

    let listed = list(&mut admin_client).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, entry.id);
    assert_eq!(listed[0].selector, entry.selector);
    assert!(!listed[0].created);

    // Unrevoke: allowed again, gone from both lists.
    let removed = admin_client
        .unrevoke(admin(UnrevokeRequest {
            id: entry.id.clone(),
        }))
        .await
        .expect("Unrevoke")
        .into_inner()
        .removed
        .expect("the removed entry");
    assert_eq!(removed.id, entry.id);
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
    assert!(list(&mut admin_client).await.is_empty());
    assert!(http_stored(&server).is_empty());

    // Unknown (and now removed) ids; an empty one.
    for id in [entry.id.as_str(), "rv-0000000000000000"] {
        let status = admin_client
            .unrevoke(admin(UnrevokeRequest { id: id.into() }))
            .await
            .expect_err("unknown id");
        assert_eq!(status.code(), Code::NotFound, "{id}: {status:?}");
    }
    let status = admin_client
        .unrevoke(admin(UnrevokeRequest { id: String::new() }))
        .await
        .expect_err("empty id");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("id:"), "{status:?}");

    // The other selectors go through too; issued_before gets its default expiry.
    let cutoff = now() + 1;
    let entry = admin_client
        .revoke(admin(RevokeRequest {
            provider: "corp".into(),
            selector: Some(revoke_request::Selector::IssuedBefore(cutoff)),
            reason: None,
            expires_at: None,
        }))
        .await
        .expect("Revoke issued_before")
        .into_inner();
    assert!(entry.created);
    assert_eq!(code_of(&server, &bystander).await, GRPC_UNAUTHENTICATED);
    let http = http_stored(&server);
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["issued_before"], cutoff);
    assert_eq!(http[0]["expires_at"].as_u64(), entry.expires_at);

    // And the other way round: an entry POSTed over HTTP is listed, and removable, over gRPC.
    let (status, text) = admin_call(
        server.admin,
        "POST",
        "/v1/revocations",
        Some(TOKEN),
        Some(
            json!({"provider": "corp", "sub": "carol"})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(status, 201, "{text}");
    let posted: Value = serde_json::from_str(&text).expect("json");
    let listed = list(&mut admin_client).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Oldest first, but both may share a second (ids break the tie): find it by id.
    let from_http = listed
        .iter()
        .find(|e| e.id == posted["id"].as_str().expect("id"))
        .unwrap_or_else(|| panic!("the HTTP entry is listed: {listed:?}"));
    assert_eq!(
        from_http.selector,
        Some(revocation::Selector::Sub("carol".into()))
    );
    for entry in listed {
        admin_client
            .unrevoke(admin(UnrevokeRequest { id: entry.id }))
            .await
            .expect("Unrevoke");
    }
    assert!(http_stored(&server).is_empty());
}

#[tokio::test]
async fn bad_tokens_and_bad_inputs_are_refused_and_store_nothing() {
    let server = start(true);
    let mut admin_client = client(&server).await;
    let token = token_with(json!({"jti": "g-1"}));

    // Authentication first: nothing is read or stored without the token.
    let basic = format!("Basic {TOKEN}");
    for (case, authorization) in [
        ("missing", None),
        ("wrong", Some("Bearer not-the-admin-token-at-all")),
        ("empty bearer", Some("Bearer ")),
        ("other scheme", Some(basic.as_str())),
    ] {
        let status = admin_client
            .revoke(with_auth(by_jti("g-1"), authorization))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        let status = admin_client
            .list_revocations(with_auth(ListRevocationsRequest {}, authorization))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        let status = admin_client
            .unrevoke(with_auth(
                UnrevokeRequest {
                    id: "rv-0000000000000000".into(),
                },
                authorization,
            ))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(list(&mut admin_client).await.is_empty(), "{case}");
    }
    // A bad token with an oversized message: refused as unauthenticated, before it is read.
    let mut huge = by_jti("g-1");
    huge.reason = Some("r".repeat(70 * 1024));
    let status = admin_client
        .revoke(with_auth(huge.clone(), None))
        .await
        .expect_err("huge, no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // With the token: over the 64 KiB cap.
    let status = admin_client.revoke(admin(huge)).await.expect_err("huge");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    let long = "x".repeat(1025);
    let request = |provider: &str, selector: Option<revoke_request::Selector>| RevokeRequest {
        provider: provider.into(),
        selector,
        reason: None,
        expires_at: None,
    };
    use revoke_request::Selector as S;
    let cases: Vec<(&str, RevokeRequest, Code, &str)> = vec![
        (
            "no provider",
            request("", Some(S::Jti("g-1".into()))),
            Code::InvalidArgument,
            "provider",
        ),
        (
            "unknown provider",
            request("nope", Some(S::Jti("g-1".into()))),
            Code::NotFound,
            "provider",
        ),
        (
            "no selector",
            request("corp", None),
            Code::InvalidArgument,
            "selector",
        ),
        (
            "empty jti",
            request("corp", Some(S::Jti(String::new()))),
            Code::InvalidArgument,
            "jti",
        ),
        (
            "empty sub",
            request("corp", Some(S::Sub(String::new()))),
            Code::InvalidArgument,
            "sub",
        ),
        (
            "kid too long",
            request("corp", Some(S::Kid(long.clone()))),
            Code::InvalidArgument,
            "kid",
        ),
        (
            "issued_before zero",
            request("corp", Some(S::IssuedBefore(0))),
            Code::InvalidArgument,
            "issued_before",
        ),
        (
            "empty reason",
            RevokeRequest {
                reason: Some(String::new()),
                ..by_jti("g-1")
            },
            Code::InvalidArgument,
            "reason",
        ),
        (
            "reason too long",
            RevokeRequest {
                reason: Some(long.clone()),
                ..by_jti("g-1")
            },
            Code::InvalidArgument,
            "reason",
        ),
        (
            "expires_at in the past",
            RevokeRequest {
                expires_at: Some(1000),
                ..by_jti("g-1")
            },
            Code::InvalidArgument,
            "expires_at",
        ),
        (
            "expires_at now",
            RevokeRequest {
                expires_at: Some(now()),
                ..by_jti("g-1")
            },
            Code::InvalidArgument,
            "expires_at",
        ),
    ];
    for (case, request, want, field) in cases {
        let status = admin_client.revoke(admin(request)).await.expect_err(case);
        assert_eq!(status.code(), want, "{case}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{case}: the message names {field}: {status:?}"
        );
        assert_eq!(
            status
                .metadata()
                .get("verdict-field")
                .and_then(|v| v.to_str().ok()),
            Some(field),
            "{case}: {status:?}"
        );
        assert!(
            list(&mut admin_client).await.is_empty(),
            "{case} stored something"
        );
    }
    assert!(http_stored(&server).is_empty());
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
}

#[tokio::test]
async fn without_an_admin_token_the_grpc_admin_api_is_off() {
    let server = start(false);
    let mut admin_client = client(&server).await;
    let token = token_with(json!({"jti": "g-1"}));
    for authorization in [None, Some(format!("Bearer {TOKEN}"))] {
        let status = admin_client
            .revoke(with_auth(by_jti("g-1"), authorization.as_deref()))
            .await
            .expect_err("off");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains("admin API is off"), "{status:?}");
        let status = admin_client
            .list_revocations(with_auth(
                ListRevocationsRequest {},
                authorization.as_deref(),
            ))
            .await
            .expect_err("off");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        let status = admin_client
            .unrevoke(with_auth(
                UnrevokeRequest {
                    id: "rv-0000000000000000".into(),
                },
                authorization.as_deref(),
            ))
            .await
            .expect_err("off");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    assert_eq!(code_of(&server, &token).await, GRPC_OK);
}

#[tokio::test]
async fn the_admin_service_is_healthy_and_reflected() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = start(true);
    let mut health = HealthClient::new(connect(server.grpc).await);
    let answer = health
        .check(HealthCheckRequest {
            service: "verdict.v1.RevocationAdmin".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(answer.status, ServingStatus::Serving as i32);

    let mut reflection = ServerReflectionClient::new(connect(server.grpc).await);
    let requests = vec![ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }];
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection")
        .into_inner();
    let first = tokio::time::timeout(CALL_TIMEOUT, answers.message())
        .await
        .expect("reflection timed out")
        .expect("reflection stream")
        .expect("a list answer");
    let services: Vec<String> = match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    assert!(
        services.iter().any(|s| s == "verdict.v1.RevocationAdmin"),
        "{services:?}"
    );
}
