//! The native `verdict.v1.Verifier` API, `grpc.health.v1` and server reflection, against the
//! real binary.
mod common;

use common::*;
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use verdict::rpc::proto::verifier_client::VerifierClient;
use verdict::rpc::proto::{
    Verdict, VerifyBatchRequest, VerifyJwsRequest, VerifyJwsResponse, VerifyRequest, VerifyResponse,
};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";
const EDGE_ISS: &str = "https://edge.example.net";

/// corp (RS256, the example key) and edge (EdDSA, a fresh key).
fn two_provider_server(edge: &TestKey) -> Server {
    let config = format!(
        r#"{EXAMPLE_PROVIDER}
[[providers]]
name = "edge"
issuer = "{EDGE_ISS}"
audiences = ["api://orders"]
jwks_file = "edge.jwks.json"
algorithms = ["EdDSA"]
"#
    );
    Server::start(
        &config,
        &[
            ("jwks.json", &example_jwks()),
            ("edge.jwks.json", edge.jwks().as_bytes()),
        ],
    )
}

async fn verifier(server: &Server) -> VerifierClient<Channel> {
    VerifierClient::new(connect(server.grpc).await)
}

async fn verify(
    client: &mut VerifierClient<Channel>,
    token: &str,
    provider: &str,
) -> VerifyResponse {
    client
        .verify(VerifyRequest {
            token: token.to_owned(),
            provider: provider.to_owned(),
        })
        .await
        .expect("Verify")
        .into_inner()
}

fn patched(base: serde_json::Value, patch: serde_json::Value) -> serde_json::Value {
    let mut base = base;
    if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

#[tokio::test]
async fn verify_answers_valid_with_claims_and_each_invalid_reason() {
    let edge = TestKey::ed25519("edge-1");
    let server = two_provider_server(&edge);
    let corp = TestKey::example_rsa();
    let mut client = verifier(&server).await;

    let valid = verify(&mut client, &corp.mint(&claims(ISS, AUD, "alice")), "").await;
    assert_eq!(valid.verdict, Verdict::Valid as i32, "{valid:?}");
    assert_eq!(valid.reason, "");
    assert_eq!(valid.provider, "corp");
    assert_eq!(valid.alg, "RS256");
    let claims_json: serde_json::Value =
        serde_json::from_str(&valid.claims_json).expect("claims_json is JSON");
    assert_eq!(claims_json["sub"], "alice");
    assert_eq!(claims_json["iss"], ISS);

    let valid = verify(&mut client, &edge.mint(&claims(EDGE_ISS, AUD, "bot")), "").await;
    assert_eq!(
        (valid.verdict, valid.provider.as_str(), valid.alg.as_str()),
        (Verdict::Valid as i32, "edge", "EdDSA"),
        "{valid:?}"
    );
    // Selecting the provider by name works too.
    let named = verify(
        &mut client,
        &edge.mint(&claims(EDGE_ISS, AUD, "bot")),
        "edge",
    )
    .await;
    assert_eq!(named.verdict, Verdict::Valid as i32, "{named:?}");

    let now = now();
    let base = claims(ISS, AUD, "alice");
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "expired",
            corp.mint(&patched(
                base.clone(),
                json!({"iat": now - 7200, "exp": now - 3600}),
            )),
            "",
            "expired",
        ),
        (
            "not yet valid",
            corp.mint(&patched(base.clone(), json!({"nbf": now + 3600}))),
            "",
            "not_yet_valid",
        ),
        (
            "issued in the future",
            corp.mint(&patched(
                base.clone(),
                json!({"iat": now + 3600, "exp": now + 7200}),
            )),
            "",
            "issued_in_future",
        ),
        (
            "no exp",
            corp.mint(&json!({"iss": ISS, "aud": AUD, "sub": "alice", "iat": now})),
            "",
            "missing_claim",
        ),
        (
            "wrong audience",
            corp.mint(&patched(base.clone(), json!({"aud": "api://billing"}))),
            "",
            "wrong_audience",
        ),
        (
            "wrong issuer for the named provider",
            corp.mint(&patched(base.clone(), json!({"iss": EDGE_ISS}))),
            "corp",
            "wrong_issuer",
        ),
        (
            "unknown issuer",
            corp.mint(&patched(
                base.clone(),
                json!({"iss": "https://nobody.example"}),
            )),
            "",
            "wrong_issuer",
        ),
        (
            "bad signature",
            tamper_signature(&corp.mint(&base)),
            "",
            "bad_signature",
        ),
        ("alg none", alg_none(&base), "corp", "alg_none"),
        ("malformed", "a.b".to_owned(), "corp", "malformed"),
        ("bad base64", "a$.b$.c$".to_owned(), "corp", "bad_base64"),
        (
            "unknown kid",
            corp.mint_with_header(
                &json!({"alg": "RS256", "kid": "rotated-away", "typ": "JWT"}),
                &base,
            ),
            "",
            "unknown_key",
        ),
        (
            "algorithm not allowed for the provider",
            hs256(
                b"0123456789abcdef0123456789abcdef",
                &json!({"alg": "HS256", "kid": "example-2026"}),
                base.to_string().as_bytes(),
            ),
            "",
            "algorithm_not_allowed",
        ),
        (
            "EdDSA signature under the RSA key's kid",
            edge.mint_with_header(
                &json!({"alg": "EdDSA", "kid": "example-2026", "typ": "JWT"}),
                &base,
            ),
            "",
            "algorithm_not_allowed",
        ),
        (
            "EdDSA token from a kid the provider does not have",
            edge.mint(&base),
            "",
            "unknown_key",
        ),
    ];
    for (case, token, provider, reason) in &cases {
        let answer = verify(&mut client, token, provider).await;
        assert_eq!(
            answer.verdict,
            Verdict::Invalid as i32,
            "{case}: {answer:?}"
        );
        assert_eq!(answer.reason, *reason, "{case}: {answer:?}");
        assert!(answer.claims_json.is_empty(), "{case}: claims leaked");
    }
}

#[tokio::test]
async fn verify_batch_answers_mixed_eddsa_tokens_in_order() {
    let edge = TestKey::ed25519("edge-1");
    let server = two_provider_server(&edge);
    let corp = TestKey::example_rsa();
    let stranger = TestKey::ed25519("edge-1");
    let now = now();
    // 96 tokens: mostly EdDSA (the batch path), a few RS256, with failures sprinkled in.
    let mut requests = Vec::new();
    let mut expected: Vec<(Verdict, &str, String)> = Vec::new();
    for i in 0..96 {
        let sub = format!("user-{i}");
        let good = claims(EDGE_ISS, AUD, &sub);
        let (token, verdict, reason) = match i % 8 {
            1 => (
                tamper_signature(&edge.mint(&good)),
                Verdict::Invalid,
                "bad_signature",
            ),
            3 => (
                edge.mint(&patched(
                    good,
                    json!({"iat": now - 7200, "exp": now - 3600}),
                )),
                Verdict::Invalid,
                "expired",
            ),
            4 => (stranger.mint(&good), Verdict::Invalid, "bad_signature"),
            5 => (
                edge.mint(&patched(good, json!({"aud": "api://elsewhere"}))),
                Verdict::Invalid,
                "wrong_audience",
            ),
            6 if i % 16 == 6 => (corp.mint(&claims(ISS, AUD, &sub)), Verdict::Valid, ""),
            7 if i % 24 == 7 => ("garbage".to_owned(), Verdict::Invalid, "malformed"),
            _ => (edge.mint(&good), Verdict::Valid, ""),
        };
        requests.push(VerifyRequest {
            token,
            provider: String::new(),
        });
        expected.push((verdict, reason, sub));
    }
    let valid_count = expected.iter().filter(|e| e.0 == Verdict::Valid).count();
    assert!(
        valid_count >= 32,
        "the batch must hold at least 32 valid EdDSA tokens"
    );
    let mut client = verifier(&server).await;
    let answer = client
        .verify_batch(VerifyBatchRequest { requests })
        .await
        .expect("VerifyBatch")
        .into_inner();
    assert_eq!(answer.responses.len(), expected.len());
    for (index, (response, (verdict, reason, sub))) in
        answer.responses.iter().zip(&expected).enumerate()
    {
        assert_eq!(response.verdict, *verdict as i32, "#{index}: {response:?}");
        assert_eq!(response.reason, *reason, "#{index}: {response:?}");
        if *verdict == Verdict::Valid {
            let claims: serde_json::Value =
                serde_json::from_str(&response.claims_json).expect("claims JSON");
            assert_eq!(
                claims["sub"],
                sub.as_str(),
                "#{index} answered out of order"
            );
        }
    }
}

#[tokio::test]
async fn verify_batch_limits() {
    let edge = TestKey::ed25519("edge-1");
    let server = two_provider_server(&edge);
    let mut client = verifier(&server).await;

    // Exactly the limit: every one answered, all valid.
    let token = edge.mint(&claims(EDGE_ISS, AUD, "bot"));
    let full: Vec<VerifyRequest> = (0..1024)
        .map(|_| VerifyRequest {
            token: token.clone(),
            provider: String::new(),
        })
        .collect();
    let answer = client
        .verify_batch(VerifyBatchRequest { requests: full })
        .await
        .expect("a batch of 1024")
        .into_inner();
    assert_eq!(answer.responses.len(), 1024);
    assert!(
        answer
            .responses
            .iter()
            .all(|r| r.verdict == Verdict::Valid as i32)
    );

    // One over: refused as a whole.
    let over: Vec<VerifyRequest> = (0..1025)
        .map(|_| VerifyRequest {
            token: "x".into(),
            provider: String::new(),
        })
        .collect();
    let status = client
        .verify_batch(VerifyBatchRequest { requests: over })
        .await
        .expect_err("a batch of 1025 must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // An empty batch is an empty answer.
    let answer = client
        .verify_batch(VerifyBatchRequest { requests: vec![] })
        .await
        .expect("empty batch")
        .into_inner();
    assert!(answer.responses.is_empty());
}

async fn verify_jws(
    client: &mut VerifierClient<Channel>,
    jws: &str,
    jwk: &str,
    algorithms: &[&str],
) -> Result<VerifyJwsResponse, tonic::Status> {
    client
        .verify_jws(VerifyJwsRequest {
            jws: jws.to_owned(),
            jwk: jwk.to_owned(),
            algorithms: algorithms.iter().map(|a| (*a).to_owned()).collect(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn verify_jws_against_a_supplied_jwk() {
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())]);
    let mut client = verifier(&server).await;
    let key = TestKey::ed25519("k1");
    let jwk = key.public_jwk();

    // Any payload, no claim rules: an expired claims set and a non-JSON payload both verify.
    let now = now();
    let expired = json!({"iss": "whoever", "exp": now - 100_000});
    for payload in [
        expired.to_string().into_bytes(),
        b"hello, raw bytes".to_vec(),
    ] {
        let header = json!({"alg": "EdDSA", "kid": "k1"});
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(&payload));
        let jws = format!("{input}.{}", b64(&key.sign(input.as_bytes())));
        let answer = verify_jws(&mut client, &jws, &jwk, &[])
            .await
            .expect("VerifyJws");
        assert_eq!(answer.verdict, Verdict::Valid as i32, "{answer:?}");
        assert_eq!(answer.alg, "EdDSA");
        assert_eq!(answer.payload, payload);

        let answer = verify_jws(&mut client, &tamper_signature(&jws), &jwk, &[])
            .await
            .expect("VerifyJws");
        assert_eq!(answer.verdict, Verdict::Invalid as i32);
        assert_eq!(answer.reason, "bad_signature");
        assert!(
            answer.payload.is_empty(),
            "a bad JWS must not return its payload"
        );
    }

    // RS256 with the example key's public JWK; the wrong key does not verify it.
    let rsa = TestKey::example_rsa();
    let rs = rsa.mint(&claims(ISS, AUD, "alice"));
    let answer = verify_jws(&mut client, &rs, &rsa.public_jwk(), &["RS256"])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.verdict, Verdict::Valid as i32, "{answer:?}");
    let answer = verify_jws(&mut client, &rs, &jwk, &[])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.verdict, Verdict::Invalid as i32, "{answer:?}");

    // HMAC: an oct JWK is refused unless HS256 is asked for explicitly.
    let secret = b"0123456789abcdef0123456789abcdef-secret";
    let oct = json!({"kty": "oct", "k": b64(secret)}).to_string();
    let hs = hs256(secret, &json!({"alg": "HS256"}), b"{\"sub\":\"svc\"}");
    let answer = verify_jws(&mut client, &hs, &oct, &[])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.verdict, Verdict::Invalid as i32, "{answer:?}");
    assert_eq!(answer.reason, "algorithm_not_allowed");
    let answer = verify_jws(&mut client, &hs, &oct, &["RS256", "EdDSA"])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.verdict, Verdict::Invalid as i32, "{answer:?}");
    let answer = verify_jws(&mut client, &hs, &oct, &["HS256"])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.verdict, Verdict::Valid as i32, "{answer:?}");
    assert_eq!(answer.alg, "HS256");
    assert_eq!(answer.payload, b"{\"sub\":\"svc\"}");
    let wrong = hs256(
        b"another-secret-another-secret-xx",
        &json!({"alg": "HS256"}),
        b"{}",
    );
    let answer = verify_jws(&mut client, &wrong, &oct, &["HS256"])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.reason, "bad_signature", "{answer:?}");

    // Key confusion: an HS256 JWS "signed" with the RSA public key's JWK text as the secret
    // never verifies against that RSA JWK, even when HS256 is allowed.
    let rsa_jwk = rsa.public_jwk();
    let confused = hs256(rsa_jwk.as_bytes(), &json!({"alg": "HS256"}), b"{}");
    for algorithms in [&["HS256"][..], &["HS256", "RS256"][..]] {
        let answer = verify_jws(&mut client, &confused, &rsa_jwk, algorithms)
            .await
            .expect("VerifyJws");
        assert_eq!(
            answer.verdict,
            Verdict::Invalid as i32,
            "{algorithms:?}: {answer:?}"
        );
    }

    // alg none is refused whatever is allowed.
    let none = alg_none(&json!({"sub": "x"}));
    let answer = verify_jws(&mut client, &none, &jwk, &[])
        .await
        .expect("VerifyJws");
    assert_eq!(answer.verdict, Verdict::Invalid as i32, "{answer:?}");

    // A JWK that is not one, or an unknown algorithm name, is a bad request.
    let status = verify_jws(&mut client, &rs, "{not json", &[])
        .await
        .expect_err("bad JWK");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = verify_jws(&mut client, &rs, &jwk, &["RS257"])
        .await
        .expect_err("bad algorithm");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())]);
    let mut health = HealthClient::new(connect(server.grpc).await);
    for service in [
        "",
        "envoy.service.auth.v3.Authorization",
        "verdict.v1.Verifier",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check {service:?}: {e}"))
            .into_inner();
        assert_eq!(
            answer.status,
            ServingStatus::Serving as i32,
            "{service:?}: {answer:?}"
        );
    }
    let status = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_verifier() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())]);
    let mut reflection = ServerReflectionClient::new(connect(server.grpc).await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "verdict.v1.Verifier".into(),
            )),
        },
    ];
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
        services.iter().any(|s| s == "verdict.v1.Verifier"),
        "{services:?}"
    );
    assert!(
        services.iter().any(|s| s == "grpc.health.v1.Health"),
        "{services:?}"
    );
    let second = tokio::time::timeout(CALL_TIMEOUT, answers.message())
        .await
        .expect("reflection timed out")
        .expect("reflection stream")
        .expect("a descriptor answer");
    match second.message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => {
            assert!(!files.file_descriptor_proto.is_empty());
            let raw = files.file_descriptor_proto.concat();
            assert!(
                String::from_utf8_lossy(&raw).contains("VerifyBatch"),
                "the descriptor describes the Verifier"
            );
        }
        other => panic!("expected a file descriptor, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_provider_names_are_invalid_arguments_and_early_failures_report_the_alg() {
    let edge = TestKey::ed25519("edge-1");
    let server = two_provider_server(&edge);
    let mut client = verifier(&server).await;
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let status = client
        .verify(VerifyRequest {
            token: token.clone(),
            provider: "no-such-provider".into(),
        })
        .await
        .expect_err("unknown provider name");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("no-such-provider"), "{status:?}");

    // The header parsed, so the algorithm is known even though no key matches.
    let unknown_kid = TestKey::ed25519("not-published").mint(&claims(EDGE_ISS, AUD, "bob"));
    let answer = verify(&mut client, &unknown_kid, "").await;
    assert_eq!(answer.reason, "unknown_key");
    assert_eq!(answer.alg, "EdDSA");
}

/// Concurrent `Verify` calls with EdDSA tokens share the core's signature batches, and each
/// still gets its own verdict (a stranger's signature among them is `bad_signature`).
#[tokio::test]
async fn concurrent_verify_calls_share_signature_batches() {
    let edge = TestKey::ed25519("edge-1");
    let server = two_provider_server(&edge);
    let stranger = TestKey::ed25519("edge-1");
    let client = verifier(&server).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64usize {
        let sub = format!("user-{n}");
        let forged = n % 13 == 6;
        let key = if forged { &stranger } else { &edge };
        let token = key.mint(&claims(EDGE_ISS, AUD, &sub));
        let mut client = client.clone();
        tasks.spawn(async move { (forged, sub, verify(&mut client, &token, "").await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (forged, sub, response) = joined.expect("verify task");
        if forged {
            assert_eq!(
                response.verdict,
                Verdict::Invalid as i32,
                "{sub}: {response:?}"
            );
            assert_eq!(response.reason, "bad_signature", "{sub}");
        } else {
            assert_eq!(
                response.verdict,
                Verdict::Valid as i32,
                "{sub}: {response:?}"
            );
            let claims: serde_json::Value =
                serde_json::from_str(&response.claims_json).expect("claims JSON");
            assert_eq!(claims["sub"], sub.as_str());
        }
    }
    let signatures = server.metric_sum("verdict_signature_batch_signatures_total");
    assert_eq!(
        signatures, 64.0,
        "every EdDSA signature went through the batcher"
    );
    assert!(
        server.metric_sum("verdict_signature_batches_total") < signatures,
        "some calls shared a batch"
    );
}
