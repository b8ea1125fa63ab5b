//! The admin API's write side on `admin_listen`: `/v1/revocations` (POST, GET, DELETE by id),
//! behind the bearer admin token; merged into the telemetry router (`/metrics`, `/healthz`,
//! `/readyz` stay open).
//!
//! Order of checks, so a bad call never changes anything: no admin token configured → 403 for
//! every `/v1/` path; a wrong or missing bearer → 401 (before the body is read); a body over
//! 64 KiB → 413; then the body is validated field by field (400 naming the field, 404 for an
//! unknown provider or id), and only then is the store changed, durably, before the answer.

use crate::config::AdminConfig;
use crate::policy::Providers;
use crate::revocation::{MAX_VALUE_BYTES, NewRevocation, RevocationStore, Selector, StoreError};
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

/// A refused admin call: its status, a stable code, the field at fault and a message, answered
/// as `{"error": code, "field": field, "message": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::from(self.code));
        if let Some(field) = self.field {
            body.insert("field".into(), Value::from(field));
        }
        body.insert("message".into(), Value::from(self.message));
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}

fn error(status: StatusCode, code: &'static str, field: Option<&str>, message: String) -> ApiError {
    ApiError {
        status,
        code,
        field: field.map(str::to_owned),
        message,
    }
}

fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some(field),
        message.into(),
    )
}

async fn authenticate(State(api): State<AdminApi>, request: Request, next: Next) -> Response {
    let Some(token) = &api.token else {
        return error(
            StatusCode::FORBIDDEN,
            "admin_api_disabled",
            None,
            "the admin API is off: set [admin] token_file or token_env".into(),
        )
        .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !token.authorizes(presented) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
            "a valid admin bearer token is required".into(),
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"verdict-admin\""),
        );
        return response;
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        None,
        "no such admin route".into(),
    )
}

async fn list(State(api): State<AdminApi>) -> Response {
    let store = Arc::clone(&api.store);
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(entries) => axum::Json(json!({ "revocations": entries })).into_response(),
        Err(_) => internal().into_response(),
    }
}

async fn create(State(api): State<AdminApi>, body: Bytes) -> Response {
    let now = (api.clock)();
    let new = match parse_new(&body, &api.providers.load(), now) {
        Ok(new) => new,
        Err(refused) => return refused.into_response(),
    };
    let store = Arc::clone(&api.store);
    match tokio::task::spawn_blocking(move || store.add(new, now)).await {
        Ok(Ok((entry, true))) => (StatusCode::CREATED, axum::Json(entry)).into_response(),
        Ok(Ok((entry, false))) => (StatusCode::OK, axum::Json(entry)).into_response(),
        Ok(Err(e)) => store_error(e).into_response(),
        Err(_) => internal().into_response(),
    }
}

async fn remove(State(api): State<AdminApi>, Path(id): Path<String>) -> Response {
    let now = (api.clock)();
    let store = Arc::clone(&api.store);
    match tokio::task::spawn_blocking(move || store.remove(&id, now)).await {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => store_error(e).into_response(),
        Err(_) => internal().into_response(),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(id) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("id"),
            format!("no revocation with id {id:?}"),
        ),
        StoreError::Full(max) => error(
            StatusCode::INSUFFICIENT_STORAGE,
            "revocation_set_full",
            None,
            format!("{max} revocations are live (revocation.max_entries)"),
        ),
        StoreError::Log(e) => {
            tracing::error!(error = %e, "revocation log write failed; nothing changed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_failed",
                None,
                "the revocation log could not be written; nothing changed".into(),
            )
        }
    }
}

fn internal() -> ApiError {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        None,
        "internal error".into(),
    )
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

/// Validates a POST body into a revocation, or the 400/404 answer naming what is wrong.
pub fn parse_new(body: &[u8], providers: &Providers, now: u64) -> Result<NewRevocation, ApiError> {
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
    let provider_name = text(&object, "provider")?
        .ok_or_else(|| bad_field("provider", "\"provider\" is required"))?;
    let provider = providers
        .list()
        .iter()
        .find(|p| p.name == provider_name)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "unknown_provider",
                Some("provider"),
                format!("no provider named {provider_name:?}"),
            )
        })?;
    let mut selector = None;
    for kind in ["jti", "sub", "sid", "kid", "issued_before"] {
        let found = match kind {
            "issued_before" => time(&object, kind)?.map(Selector::IssuedBefore),
            _ => text(&object, kind)?.map(|value| {
                let value = value.to_owned();
                match kind {
                    "jti" => Selector::Jti(value),
                    "sub" => Selector::Sub(value),
                    "sid" => Selector::Sid(value),
                    _ => Selector::Kid(value),
                }
            }),
        };
        if let Some(found) = found {
            if selector.is_some() {
                return Err(bad_field(
                    kind,
                    "exactly one of jti, sub, sid, kid, issued_before may be given",
                ));
            }
            selector = Some(found);
        }
    }
    let selector = selector.ok_or_else(|| {
        bad_field(
            "selector",
            "exactly one of jti, sub, sid, kid, issued_before is required",
        )
    })?;
    let reason = text(&object, "reason")?.map(str::to_owned);
    let expires_at = match time(&object, "expires_at")? {
        Some(at) if at <= now => {
            return Err(bad_field("expires_at", "must be in the future"));
        }
        Some(at) => Some(at),
        None => default_expiry(&selector, &provider.policy.rules, now),
    };
    Ok(NewRevocation {
        provider: provider_name.to_owned(),
        selector,
        reason,
        expires_at,
    })
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

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(bad_field(field, "must not be empty")),
        Some(Value::String(s)) if s.len() > MAX_VALUE_BYTES => Err(bad_field(
            field,
            format!("longer than {MAX_VALUE_BYTES} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_field(field, "must be a string")),
    }
}

fn time(object: &Map<String, Value>, field: &str) -> Result<Option<u64>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(t) if (1..=MAX_TIME).contains(&t) => Ok(Some(t)),
            _ => Err(bad_field(
                field,
                "must be a positive whole number of Unix seconds",
            )),
        },
        Some(_) => Err(bad_field(field, "must be a number (Unix seconds)")),
    }
}
