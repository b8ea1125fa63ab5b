//! The real binary serves ext_authz: one allowed and one denied check.
mod common;

use common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context,
};

fn check_request(authorization: Option<&str>) -> CheckRequest {
    let mut headers = std::collections::HashMap::new();
    if let Some(value) = authorization {
        headers.insert("authorization".to_owned(), value.to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: "/orders".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn allows_a_valid_token_and_denies_a_missing_one() {
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())]);
    let token =
        TestKey::example_rsa().mint(&claims("https://idp.example.com", "api://orders", "alice"));
    let mut client = AuthorizationClient::connect(server.grpc_url())
        .await
        .expect("connect");
    let ok = client
        .check(check_request(Some(&format!("Bearer {token}"))))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(ok.status.expect("status").code, 0);
    let denied = client
        .check(check_request(None))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(denied.status.expect("status").code, 16);
    assert!(
        !server.logs().contains(&token),
        "a token must never be logged"
    );
}
