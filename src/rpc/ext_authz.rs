//! `envoy.service.auth.v3.Authorization/Check`.
//!
//! Allowed: `OK` with the configured claim headers (overwriting any the client sent, and
//! removing those the token did not provide) and the claims in `dynamic_metadata` under
//! `verdict`. Denied: `UNAUTHENTICATED` + 401 or `PERMISSION_DENIED` + 403, with a
//! `www-authenticate` header per RFC 6750 that carries only the RFC error code.

use super::ServiceState;
use crate::jose::Reject;
use crate::policy::{Allowed, Decision, RequestView};
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value as PbValue, value::Kind};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use serde_json::{Map, Value};
use std::borrow::Cow;

use super::check_wire::framed_message;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Instant;
use tonic::{Request, Response, Status};

/// gRPC status codes used in `CheckResponse.status`.
const GRPC_OK: i32 = 0;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;
/// `HeaderValueOption.append_action`: replace whatever the client sent.
const OVERWRITE_IF_EXISTS_OR_ADD: i32 = 2;
/// The realm reported in `www-authenticate`.
const REALM: &str = "verdict";

/// The ext_authz service.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    state: ServiceState,
}

impl ExtAuthz {
    /// A service reading the shared state.
    pub fn new(state: ServiceState) -> Self {
        ExtAuthz { state }
    }

    /// Decides a `CheckRequest` (the whole handler, without the transport); the signature is
    /// checked by [`ServiceState::check_signature`].
    pub async fn decide(&self, request: &CheckRequest) -> Decision {
        let (headers, path) = request_headers(request);
        let view = RequestView {
            headers: &*headers,
            path,
        };
        self.state.decide(&view).await
    }
}

/// The request's headers (names lower-cased) and path, from whichever header form Envoy sent.
fn request_headers(request: &CheckRequest) -> (Cow<'_, HashMap<String, String>>, &str) {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    match http {
        Some(http) if http.headers.is_empty() && http.header_map.is_some() => {
            // Envoy sends `header_map` instead of `headers` with `encode_raw_headers`.
            let headers = http
                .header_map
                .iter()
                .flat_map(|m| m.headers.iter())
                .map(|h| {
                    let value = if h.value.is_empty() {
                        String::from_utf8_lossy(&h.raw_value).into_owned()
                    } else {
                        h.value.clone()
                    };
                    (h.key.to_ascii_lowercase(), value)
                })
                .collect();
            (Cow::Owned(headers), http.path.as_str())
        }
        Some(http) => (Cow::Borrowed(&http.headers), http.path.as_str()),
        None => (Cow::Owned(HashMap::new()), ""),
    }
}

impl ExtAuthz {
    /// Decides one request and records it (metrics, latency, audit): the one path both the
    /// lean wire handler ([`super::grpc_server`]) and the tonic service take.
    pub async fn judge(&self, view: &RequestView<'_>) -> Decision {
        let started = Instant::now();
        let decision = self.state.decide(view).await;
        let elapsed = started.elapsed();
        super::observe::record_check(&decision, elapsed);
        if crate::telemetry::audit::auditing() {
            // The credential as the current providers read it (the one just judged).
            let providers = self.state.providers.load();
            let token = providers.credential_at(view).map(|(token, _)| token);
            super::observe::audit_check(&decision, token, elapsed);
        }
        decision
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let (headers, path) = request_headers(request.get_ref());
        let view = RequestView {
            headers: &*headers,
            path,
        };
        let decision = self.judge(&view).await;
        Ok(Response::new(render(&decision)))
    }
}

/// The answer to `decision` as gRPC frame bytes: an allow's is encoded once and kept with its
/// (possibly cached) `Allowed`; the three deny answers are encoded once per process.
pub fn answer_frame(decision: &Decision) -> Bytes {
    static DENY_FRAMES: LazyLock<[Bytes; 3]> = LazyLock::new(|| {
        [
            Reject::InsufficientScope,
            Reject::MissingCredential,
            Reject::Expired,
        ]
        .map(|reason| {
            framed_message(&render(&Decision::Deny(
                crate::policy::Denied { reason, alg: None },
                None,
            )))
        })
    });
    match decision {
        Decision::Allow(allowed) => allowed
            .encoded_answer
            .get_or_init(|| framed_message(&render(decision)))
            .clone(),
        Decision::Deny(denied, _) => {
            let index = if denied.reason.is_forbidden() {
                0
            } else if denied.reason == Reject::MissingCredential {
                1
            } else {
                2
            };
            DENY_FRAMES.get(index).cloned().unwrap_or_default()
        }
    }
}

/// `{"verdict": {"provider", "alg", "claims": {...}}}`, built straight from the claims, without
/// an intermediate JSON copy.
fn metadata(allowed: &Allowed, claims: &Map<String, Value>) -> Struct {
    let string = |s: &str| PbValue {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    let verdict = Struct {
        fields: [
            ("provider".to_owned(), string(&allowed.provider)),
            (
                "alg".to_owned(),
                string(allowed.alg.map_or("", |a| a.name())),
            ),
            (
                "claims".to_owned(),
                PbValue {
                    kind: Some(Kind::StructValue(to_struct(claims))),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    Struct {
        fields: [(
            "verdict".to_owned(),
            PbValue {
                kind: Some(Kind::StructValue(verdict)),
            },
        )]
        .into_iter()
        .collect(),
    }
}

/// Renders a decision as Envoy expects it.
pub fn render(decision: &Decision) -> CheckResponse {
    match decision {
        Decision::Allow(allowed) => {
            let headers = allowed
                .headers
                .iter()
                .map(|(key, value)| HeaderValueOption {
                    header: Some(HeaderValue {
                        key: key.clone(),
                        value: value.clone(),
                        ..Default::default()
                    }),
                    append_action: OVERWRITE_IF_EXISTS_OR_ADD,
                    ..Default::default()
                })
                .collect();
            // Only when the provider asks for it: Envoy pays for metadata on every call.
            let dynamic_metadata = allowed
                .metadata
                .as_ref()
                .map(|claims| metadata(allowed, claims));
            CheckResponse {
                status: Some(RpcStatus {
                    code: GRPC_OK,
                    ..Default::default()
                }),
                dynamic_metadata,
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers,
                    headers_to_remove: allowed.headers_to_remove.clone(),
                    ..Default::default()
                })),
            }
        }
        Decision::Deny(denied, _) => {
            let (grpc, http, challenge) = deny_answer(denied.reason);
            CheckResponse {
                status: Some(RpcStatus {
                    code: grpc,
                    message: String::new(),
                    details: Vec::new(),
                }),
                dynamic_metadata: None,
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: http }),
                    headers: vec![HeaderValueOption {
                        header: Some(HeaderValue {
                            key: "www-authenticate".into(),
                            value: challenge,
                            ..Default::default()
                        }),
                        append_action: OVERWRITE_IF_EXISTS_OR_ADD,
                        ..Default::default()
                    }],
                    body: String::new(),
                })),
            }
        }
    }
}

/// `(gRPC code, HTTP status, WWW-Authenticate value)` for a reject reason (RFC 6750 §3).
pub fn deny_answer(reason: Reject) -> (i32, i32, String) {
    if reason.is_forbidden() {
        (
            GRPC_PERMISSION_DENIED,
            403,
            format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\""),
        )
    } else if reason == Reject::MissingCredential {
        // No credential at all: a bare challenge, no error code (RFC 6750 §3.1).
        (
            GRPC_UNAUTHENTICATED,
            401,
            format!("Bearer realm=\"{REALM}\""),
        )
    } else {
        (
            GRPC_UNAUTHENTICATED,
            401,
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
        )
    }
}

fn to_struct(map: &Map<String, Value>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), to_pb_value(v)))
            .collect(),
    }
}

fn to_pb_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_pb_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    PbValue { kind: Some(kind) }
}
