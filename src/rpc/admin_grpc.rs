//! `verdict.v1.RevocationAdmin`: the admin API's revocation routes over gRPC, on the same
//! listener as ext_authz and `verdict.v1.Verifier`.
//!
//! Everything but the wire format is [`super::admin`]'s: the bearer token is checked by
//! [`AdminApi::authenticate`] in an interceptor, before the request message is read (so a bad
//! call is refused without decoding anything, and nothing changes); a `RevokeRequest` becomes a
//! [`RevokeInput`] and is validated by the same [`super::admin::validate`] as the JSON body; the
//! store calls run on tokio's blocking pool, never on the worker's own thread, so an fsync does
//! not stall the checks this core serves.

use super::admin::{AdminApi, ApiError, MAX_ADMIN_BODY_BYTES, RevokeInput};
use super::proto::revocation_admin_server::{RevocationAdmin, RevocationAdminServer};
use super::proto::{self, revocation, revoke_request};
use crate::revocation::{Revocation, Selector};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::{Request, Response, Status};

/// The service.
#[derive(Clone)]
pub struct RevocationAdminService {
    api: AdminApi,
}

impl std::fmt::Debug for RevocationAdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationAdminService")
            .field("enabled", &self.api.token.is_some())
            .finish_non_exhaustive()
    }
}

/// The interceptor that checks `authorization: Bearer <admin token>` before the message is read.
#[derive(Clone)]
pub struct AdminAuth(AdminApi);

impl Interceptor for AdminAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        self.0.authenticate(presented).map_err(Status::from)?;
        Ok(request)
    }
}

/// The server as added to the router: the token check in front, messages over 64 KiB refused.
pub type RevocationAdminGrpc =
    InterceptedService<RevocationAdminServer<RevocationAdminService>, AdminAuth>;

impl RevocationAdminService {
    /// A service over the same state as the HTTP admin API.
    pub fn new(api: AdminApi) -> Self {
        RevocationAdminService { api }
    }

    /// The service behind its token check, ready for the tonic router.
    pub fn server(api: AdminApi) -> RevocationAdminGrpc {
        let auth = AdminAuth(api.clone());
        let server = RevocationAdminServer::new(RevocationAdminService::new(api))
            .max_decoding_message_size(MAX_ADMIN_BODY_BYTES);
        InterceptedService::new(server, auth)
    }
}

#[tonic::async_trait]
impl RevocationAdmin for RevocationAdminService {
    async fn revoke(
        &self,
        request: Request<proto::RevokeRequest>,
    ) -> Result<Response<proto::Revocation>, Status> {
        let (entry, created) = self.api.revoke(input_of(request.into_inner())).await?;
        Ok(Response::new(to_proto(entry, created)))
    }

    async fn list_revocations(
        &self,
        _request: Request<proto::ListRevocationsRequest>,
    ) -> Result<Response<proto::ListRevocationsResponse>, Status> {
        let entries = self.api.revocations().await?;
        Ok(Response::new(proto::ListRevocationsResponse {
            revocations: entries.into_iter().map(|e| to_proto(e, false)).collect(),
        }))
    }

    async fn unrevoke(
        &self,
        request: Request<proto::UnrevokeRequest>,
    ) -> Result<Response<proto::UnrevokeResponse>, Status> {
        let id = request.into_inner().id;
        if id.is_empty() {
            return Err(Status::from(ApiError {
                kind: super::admin::ErrorKind::InvalidRequest,
                field: Some("id".into()),
                message: "\"id\" is required".into(),
            }));
        }
        let removed = self.api.unrevoke(id).await?;
        Ok(Response::new(proto::UnrevokeResponse {
            removed: Some(to_proto(removed, false)),
        }))
    }
}

/// The request as the common input: an empty `provider` (proto3's unset) is a missing one; a
/// set oneof member is given even when empty (and then refused as empty, as over HTTP).
fn input_of(request: proto::RevokeRequest) -> RevokeInput {
    let mut input = RevokeInput {
        provider: (!request.provider.is_empty()).then_some(request.provider),
        reason: request.reason,
        expires_at: request.expires_at,
        ..RevokeInput::default()
    };
    match request.selector {
        Some(revoke_request::Selector::Jti(v)) => input.jti = Some(v),
        Some(revoke_request::Selector::Sub(v)) => input.sub = Some(v),
        Some(revoke_request::Selector::Sid(v)) => input.sid = Some(v),
        Some(revoke_request::Selector::Kid(v)) => input.kid = Some(v),
        Some(revoke_request::Selector::IssuedBefore(t)) => input.issued_before = Some(t),
        None => {}
    }
    input
}

fn to_proto(entry: Revocation, created: bool) -> proto::Revocation {
    let selector = match entry.selector {
        Selector::Jti(v) => revocation::Selector::Jti(v),
        Selector::Sub(v) => revocation::Selector::Sub(v),
        Selector::Sid(v) => revocation::Selector::Sid(v),
        Selector::Kid(v) => revocation::Selector::Kid(v),
        Selector::IssuedBefore(t) => revocation::Selector::IssuedBefore(t),
    };
    proto::Revocation {
        id: entry.id,
        provider: entry.provider,
        selector: Some(selector),
        reason: entry.reason,
        created_at: entry.created_at,
        expires_at: entry.expires_at,
        created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::admin::{ErrorKind, parse_body};

    /// Both wire formats become the same input, so `validate` judges them alike.
    #[test]
    fn a_revoke_request_and_its_json_body_are_the_same_input() {
        let cases = [
            (
                proto::RevokeRequest {
                    provider: "corp".into(),
                    selector: Some(revoke_request::Selector::Jti("t-1".into())),
                    reason: Some("leaked".into()),
                    expires_at: Some(2_000_000_000),
                },
                r#"{"provider":"corp","jti":"t-1","reason":"leaked","expires_at":2000000000}"#,
            ),
            (
                proto::RevokeRequest {
                    provider: String::new(),
                    selector: Some(revoke_request::Selector::Sub(String::new())),
                    reason: None,
                    expires_at: None,
                },
                r#"{"sub":""}"#,
            ),
            (
                proto::RevokeRequest {
                    provider: "corp".into(),
                    selector: Some(revoke_request::Selector::IssuedBefore(0)),
                    reason: Some(String::new()),
                    expires_at: Some(0),
                },
                r#"{"provider":"corp","issued_before":0,"reason":"","expires_at":0}"#,
            ),
            (
                proto::RevokeRequest {
                    provider: "corp".into(),
                    selector: None,
                    reason: None,
                    expires_at: None,
                },
                r#"{"provider":"corp"}"#,
            ),
        ];
        for (request, body) in cases {
            let json = parse_body(body.as_bytes()).expect("a well-formed body");
            assert_eq!(input_of(request), json, "{body}");
        }
    }

    #[test]
    fn refusals_map_to_grpc_codes_naming_the_field() {
        let status = Status::from(ApiError {
            kind: ErrorKind::InvalidRequest,
            field: Some("jti".into()),
            message: "must not be empty".into(),
        });
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "jti: must not be empty");
        assert_eq!(
            status
                .metadata()
                .get("verdict-field")
                .and_then(|v| v.to_str().ok()),
            Some("jti")
        );
    }

    /// The store calls run on tokio's blocking pool: it is there on a worker's current-thread
    /// runtime, tokio-uring's included (where io_uring is available; not in every sandbox).
    #[test]
    fn store_calls_work_on_the_worker_runtimes() {
        let (store, _) = crate::revocation::RevocationStore::open(None, 8, 1_000).expect("store");
        let api = AdminApi {
            token: None,
            store: std::sync::Arc::new(store),
            providers: std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
                crate::policy::Providers::default(),
            )),
            clock: || 1_000,
        };
        let calls = |api: AdminApi| async move {
            assert_eq!(api.revocations().await, Ok(Vec::new()));
            let refused = api.unrevoke("rv-0000000000000000".into()).await;
            assert_eq!(refused.map_err(|e| e.kind), Err(ErrorKind::NotFound));
        };
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        tokio.block_on(calls(api.clone()));
        #[cfg(target_os = "linux")]
        if let Ok(uring) = tokio_uring::Runtime::new(&tokio_uring::builder()) {
            uring.block_on(calls(api));
        }
    }
}
