//! The admin API's write side on `admin_listen`: `/v1/revocations` (POST, GET, DELETE by id),
//! behind the bearer admin token; merged into the telemetry router (`/metrics`, `/healthz`,
//! `/readyz` stay open).
//!
//! Order of checks, so a bad call never changes anything: no admin token configured → 403 for
//! every `/v1/` path; a wrong or missing bearer → 401 (before the body is read); a body over
//! 64 KiB → 413; then the body is validated field by field (400 naming the field, 404 for an
//! unknown provider or id), and only then is the store changed, durably, before the answer.
//!
//! The gRPC twin, `verdict.v1.RevocationAdmin` ([`super::admin_grpc`]), shares all of it: the
//! token check ([`AdminApi::authenticate`]), the rules ([`validate`], fed by [`parse_body`] here
//! and by the `RevokeRequest` there) and the store calls ([`AdminApi::revoke`] and friends).

use crate::config::AdminConfig;
use crate::policy::Providers;
use crate::revocation::{
    MAX_VALUE_BYTES, NewRevocation, Revocation, RevocationStore, Selector, StoreError,
};
use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Largest admin request body accepted.
pub const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024;

/// The admin bearer token, kept only as its SHA-256 so comparing takes the same time whatever
/// the guess.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// The token `[admin]` names (`token_file`, whitespace trimmed, or `token_env`); `None`
    /// when neither is set (the admin API is off).
    pub fn load(config: &AdminConfig) -> Result<Option<AdminToken>, String> {
        let token = if let Some(path) = &config.token_file {
            std::fs::read_to_string(path)
                .map_err(|e| format!("admin.token_file: cannot read {}: {e}", path.display()))?
        } else if let Some(name) = &config.token_env {
            std::env::var(name).map_err(|_| {
                format!("admin.token_env: the environment variable {name} is not set")
            })?
        } else {
            return Ok(None);
        };
        let token = token.trim();
        if token.len() < 16 {
            return Err("admin token: must be at least 16 characters".into());
        }
        Ok(Some(AdminToken(digest(token.as_bytes()))))
    }

    /// Whether `presented` is the token.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let theirs = digest(presented);
        self.0
            .iter()
            .zip(theirs.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Whether `headers` carry `authorization: Bearer <token>`.
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(scheme_end) = value.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, rest) = value.split_at(scheme_end);
        scheme.eq_ignore_ascii_case(b"bearer") && self.matches(rest.trim_ascii())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// What the admin handlers need.
#[derive(Clone)]
pub struct AdminApi {
    /// The admin token; `None` = the admin API is off (403).
    pub token: Option<AdminToken>,
    /// The revocation store.
    pub store: Arc<RevocationStore>,
    /// The providers, to refuse unknown names and to bound an entry's life.
    pub providers: Arc<ArcSwap<Providers>>,
    /// The clock (Unix seconds).
    pub clock: fn() -> u64,
}

/// The `/v1/` routes (every one behind [`AdminToken`]), to merge into the admin router.
pub fn admin_api_router(api: AdminApi) -> Router {
    let v1 = Router::new()
        .route("/revocations", post(create).get(list))
        .route("/revocations/{id}", delete(remove))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES))
        .layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api);
    Router::new().nest("/v1", v1)
}

/// Why an admin call was refused, independent of the protocol: HTTP maps it to a status and a
/// stable code, gRPC to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad request field (HTTP 400, gRPC INVALID_ARGUMENT).
    InvalidRequest,
    /// No provider has the name given (404, NOT_FOUND).
    UnknownProvider,
    /// No such revocation id, or no such route (404, NOT_FOUND).
    NotFound,
    /// `revocation.max_entries` are live (507, RESOURCE_EXHAUSTED).
    Full,
    /// The revocation log could not be written; nothing changed (500, INTERNAL).
    StorageFailed,
    /// Anything else that went wrong inside (500, INTERNAL).
    Internal,
    /// No admin token is configured: the admin API is off (403, PERMISSION_DENIED).
    Disabled,
    /// A wrong or missing admin bearer token (401, UNAUTHENTICATED).
    Unauthorized,
}

impl ErrorKind {
    /// The HTTP status answered.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::UnknownProvider | ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Full => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::StorageFailed | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Disabled => StatusCode::FORBIDDEN,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }

    /// The gRPC status code answered.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorKind::InvalidRequest => tonic::Code::InvalidArgument,
            ErrorKind::UnknownProvider | ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::Full => tonic::Code::ResourceExhausted,
            ErrorKind::StorageFailed | ErrorKind::Internal => tonic::Code::Internal,
            ErrorKind::Disabled => tonic::Code::PermissionDenied,
            ErrorKind::Unauthorized => tonic::Code::Unauthenticated,
        }
    }

    /// The stable machine-readable code (the JSON `error` member).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownProvider => "unknown_provider",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Full => "revocation_set_full",
            ErrorKind::StorageFailed => "storage_failed",
            ErrorKind::Internal => "internal",
            ErrorKind::Disabled => "admin_api_disabled",
            ErrorKind::Unauthorized => "unauthorized",
        }
    }
}

/// A refused admin call: why, the field at fault and a message. HTTP answers it as
/// `{"error": code, "field": field, "message": message}`; gRPC as its status code with the
/// message `"field: message"` and the field in the `verdict-field` metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Why.
    pub kind: ErrorKind,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// For the operator.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::from(self.kind.code()));
        if let Some(field) = self.field {
            body.insert("field".into(), Value::from(field));
        }
        body.insert("message".into(), Value::from(self.message));
        (self.kind.http_status(), axum::Json(Value::Object(body))).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> tonic::Status {
        let message = match &e.field {
            Some(field) => format!("{field}: {}", e.message),
            None => e.message.clone(),
        };
        let mut status = tonic::Status::new(e.kind.grpc_code(), message);
        if let Some(field) = e.field
            && let Ok(value) = tonic::metadata::MetadataValue::try_from(field)
        {
            status.metadata_mut().insert("verdict-field", value);
        }
        status
    }
}

fn error(kind: ErrorKind, field: Option<&str>, message: String) -> ApiError {
    ApiError {
        kind,
        field: field.map(str::to_owned),
        message,
    }
}

fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
    error(ErrorKind::InvalidRequest, Some(field), message.into())
}

/// The answer when no admin token is configured.
pub fn disabled() -> ApiError {
    error(
        ErrorKind::Disabled,
        None,
        "the admin API is off: set [admin] token_file or token_env".into(),
    )
}

/// The answer to a wrong or missing bearer token.
pub fn unauthorized() -> ApiError {
    error(
        ErrorKind::Unauthorized,
        None,
        "a valid admin bearer token is required".into(),
    )
}

impl AdminApi {
    /// Whether a call presenting this `authorization` value may go on: [`disabled`] when no
    /// admin token is configured, [`unauthorized`] when it is not `Bearer <the token>`.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Err(disabled());
        };
        if !token.authorizes(authorization) {
            return Err(unauthorized());
        }
        Ok(())
    }

    /// Validates `input` ([`validate`]) and stores it durably (off the calling thread): the
    /// entry, and whether it is new (`false`: an identical live entry is answered instead).
    pub async fn revoke(&self, input: RevokeInput) -> Result<(Revocation, bool), ApiError> {
        let now = (self.clock)();
        let new = validate(input, &self.providers.load(), now)?;
        let store = Arc::clone(&self.store);
        off_thread(move || store.add(new, now))
            .await?
            .map_err(store_error)
    }

    /// Removes the entry `id` durably (off the calling thread); the removed entry.
    pub async fn unrevoke(&self, id: String) -> Result<Revocation, ApiError> {
        let now = (self.clock)();
        let store = Arc::clone(&self.store);
        off_thread(move || store.remove(&id, now))
            .await?
            .map_err(store_error)
    }

    /// The live entries, oldest first (read off the calling thread: a change in progress holds
    /// the store's lock through its fsync).
    pub async fn revocations(&self) -> Result<Vec<Revocation>, ApiError> {
        let store = Arc::clone(&self.store);
        off_thread(move || store.list()).await
    }
}

/// Runs a store call, which may block on an fsync, on tokio's blocking pool. Every runtime
/// verdict serves on has one: the control runtime and the workers' current-thread runtimes
/// (tokio-uring's included, which is a tokio current-thread runtime inside).
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| internal())
}

async fn authenticate(State(api): State<AdminApi>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if let Err(refused) = api.authenticate(presented) {
        let unauthorized = refused.kind == ErrorKind::Unauthorized;
        let mut response = refused.into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"verdict-admin\""),
            );
        }
        return response;
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    error(ErrorKind::NotFound, None, "no such admin route".into())
}

async fn list(State(api): State<AdminApi>) -> Response {
    match api.revocations().await {
        Ok(entries) => axum::Json(json!({ "revocations": entries })).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn create(State(api): State<AdminApi>, body: Bytes) -> Response {
    let input = match parse_body(&body) {
        Ok(input) => input,
        Err(refused) => return refused.into_response(),
    };
    match api.revoke(input).await {
        Ok((entry, true)) => (StatusCode::CREATED, axum::Json(entry)).into_response(),
        Ok((entry, false)) => (StatusCode::OK, axum::Json(entry)).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn remove(State(api): State<AdminApi>, Path(id): Path<String>) -> Response {
    match api.unrevoke(id).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused.into_response(),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(id) => error(
            ErrorKind::NotFound,
            Some("id"),
            format!("no revocation with id {id:?}"),
        ),
        StoreError::Full(max) => error(
            ErrorKind::Full,
            None,
            format!("{max} revocations are live (revocation.max_entries)"),
        ),
        StoreError::Log(e) => {
            tracing::error!(error = %e, "revocation log write failed; nothing changed");
            error(
                ErrorKind::StorageFailed,
                None,
                "the revocation log could not be written; nothing changed".into(),
            )
        }
    }
}

fn internal() -> ApiError {
    error(ErrorKind::Internal, None, "internal error".into())
}

/// Fields a POST body may carry.
const FIELDS: [&str; 8] = [
    "provider",
    "jti",
    "sub",
    "sid",
    "kid",
    "issued_before",
    "reason",
    "expires_at",
];

/// Largest Unix time accepted (year 9999): keeps arithmetic on it far from overflow.
const MAX_TIME: u64 = 253_402_300_799;

/// A revocation as a caller asked for it, before validation: both the JSON body of
/// `POST /v1/revocations` ([`parse_body`]) and the gRPC `RevokeRequest` become one, and
/// [`validate`] holds the one set of rules for both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokeInput {
    /// The provider's name.
    pub provider: Option<String>,
    /// Selector: the token with this `jti`.
    pub jti: Option<String>,
    /// Selector: every token with this `sub`.
    pub sub: Option<String>,
    /// Selector: every token with this `sid`.
    pub sid: Option<String>,
    /// Selector: every token signed with the key of this `kid`.
    pub kid: Option<String>,
    /// Selector: every token issued before this Unix time.
    pub issued_before: Option<u64>,
    /// Why.
    pub reason: Option<String>,
    /// When the entry may be forgotten (Unix seconds).
    pub expires_at: Option<u64>,
}

/// Reads a POST body into a [`RevokeInput`]: refuses what only JSON can get wrong (not an
/// object, an unknown member, a member of the wrong type), each with a 400 naming the field;
/// `null` is the same as absent. Everything else is [`validate`]'s.
pub fn parse_body(body: &[u8]) -> Result<RevokeInput, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad_field("body", format!("not a JSON object: {e}")))?;
    let Value::Object(object) = value else {
        return Err(bad_field("body", "not a JSON object"));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(bad_field(
            unknown,
            format!("unknown field {unknown:?} (expected one of {FIELDS:?})"),
        ));
    }
    Ok(RevokeInput {
        provider: json_text(&object, "provider")?,
        jti: json_text(&object, "jti")?,
        sub: json_text(&object, "sub")?,
        sid: json_text(&object, "sid")?,
        kid: json_text(&object, "kid")?,
        issued_before: json_time(&object, "issued_before")?,
        reason: json_text(&object, "reason")?,
        expires_at: json_time(&object, "expires_at")?,
    })
}

/// Validates a request into a revocation, or the refusal naming what is wrong
/// ([`ErrorKind::InvalidRequest`] naming the field, [`ErrorKind::UnknownProvider`]): the
/// provider is required and must be configured; exactly one selector; text values non-empty
/// and at most [`MAX_VALUE_BYTES`]; times positive (and at most year 9999); `expires_at` in
/// the future, by default when no token the selector matches can still be valid (from the
/// provider's `max_lifetime_s`). The HTTP and gRPC APIs both call this.
pub fn validate(
    input: RevokeInput,
    providers: &Providers,
    now: u64,
) -> Result<NewRevocation, ApiError> {
    let provider_name = text("provider", input.provider)?
        .ok_or_else(|| bad_field("provider", "\"provider\" is required"))?;
    let provider = providers
        .list()
        .iter()
        .find(|p| p.name == provider_name)
        .ok_or_else(|| {
            error(
                ErrorKind::UnknownProvider,
                Some("provider"),
                format!("no provider named {provider_name:?}"),
            )
        })?;
    let mut selector = None;
    one_selector(
        &mut selector,
        "jti",
        text("jti", input.jti)?.map(Selector::Jti),
    )?;
    one_selector(
        &mut selector,
        "sub",
        text("sub", input.sub)?.map(Selector::Sub),
    )?;
    one_selector(
        &mut selector,
        "sid",
        text("sid", input.sid)?.map(Selector::Sid),
    )?;
    one_selector(
        &mut selector,
        "kid",
        text("kid", input.kid)?.map(Selector::Kid),
    )?;
    one_selector(
        &mut selector,
        "issued_before",
        time("issued_before", input.issued_before)?.map(Selector::IssuedBefore),
    )?;
    let selector = selector.ok_or_else(|| {
        bad_field(
            "selector",
            "exactly one of jti, sub, sid, kid, issued_before is required",
        )
    })?;
    let reason = text("reason", input.reason)?;
    let expires_at = match time("expires_at", input.expires_at)? {
        Some(at) if at <= now => {
            return Err(bad_field("expires_at", "must be in the future"));
        }
        Some(at) => Some(at),
        None => default_expiry(&selector, &provider.policy.rules, now),
    };
    Ok(NewRevocation {
        provider: provider_name,
        selector,
        reason,
        expires_at,
    })
}

/// Keeps `found` as the selector, refusing a second one (naming the second's field).
fn one_selector(
    selector: &mut Option<Selector>,
    kind: &str,
    found: Option<Selector>,
) -> Result<(), ApiError> {
    if let Some(found) = found {
        if selector.is_some() {
            return Err(bad_field(
                kind,
                "exactly one of jti, sub, sid, kid, issued_before may be given",
            ));
        }
        *selector = Some(found);
    }
    Ok(())
}

/// When no token the selector matches can still be valid, from the provider's rules: with a
/// `max_lifetime_s`, every token valid now expires within it (plus leeway on both bounds);
/// without one, never (the entry lives until it is removed).
fn default_expiry(selector: &Selector, rules: &crate::jose::ClaimRules, now: u64) -> Option<u64> {
    let lifetime = rules.max_lifetime_s?;
    let slack = lifetime.saturating_add(2 * rules.leeway_s);
    let from = match selector {
        // A token issued before T expires by T + lifetime; but no earlier than now.
        Selector::IssuedBefore(before) => (*before).max(now),
        _ => now,
    };
    Some(from.saturating_add(slack))
}

/// A text value: non-empty, at most [`MAX_VALUE_BYTES`].
fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(s) if s.is_empty() => Err(bad_field(field, "must not be empty")),
        Some(s) if s.len() > MAX_VALUE_BYTES => Err(bad_field(
            field,
            format!("longer than {MAX_VALUE_BYTES} bytes"),
        )),
        value => Ok(value),
    }
}

/// A time: whole Unix seconds, at least 1, at most [`MAX_TIME`].
fn time(field: &str, value: Option<u64>) -> Result<Option<u64>, ApiError> {
    match value {
        Some(t) if !(1..=MAX_TIME).contains(&t) => Err(bad_field(field, TIME_RANGE)),
        value => Ok(value),
    }
}

const TIME_RANGE: &str = "must be a positive whole number of Unix seconds";

fn json_text(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_field(field, "must be a string")),
    }
}

fn json_time(object: &Map<String, Value>, field: &str) -> Result<Option<u64>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad_field(field, TIME_RANGE)),
        Some(_) => Err(bad_field(field, "must be a number (Unix seconds)")),
    }
}
