//! The admin HTTP surface: Prometheus scrape, liveness and readiness.
//!
//! Kept apart from the gRPC listeners so a scrape or a probe never queues behind check traffic,
//! and so the `rpc` layer can merge further admin routes (revocations) into the same router.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::Telemetry;

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Whether the appliance can verify tokens: one entry per configured provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every configured provider, in configuration order.
    pub providers: Vec<ProviderReadiness>,
    /// The fleet's shared revocations, when `[fleet]` is on.
    pub fleet: Option<FleetReadiness>,
}

impl Readiness {
    /// True when every provider has a usable key set (any provider without one would fail
    /// closed, denying every token it should accept) and, in a fleet, the stream has been
    /// replayed once since start (before that, revocations made elsewhere may be missing here).
    pub fn is_ready(&self) -> bool {
        self.providers.iter().all(|provider| provider.ready)
            && self.fleet.as_ref().is_none_or(|fleet| fleet.ready)
    }
}

/// The fleet's state, as reported by `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetReadiness {
    /// True once the stream has been replayed up to its end as of the first connection.
    pub ready: bool,
    /// Whether the connection to Redis is up now.
    pub connected: bool,
    /// Why it is not ready (or what is wrong now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One provider's key-set state, as reported by `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderReadiness {
    /// The provider's configured name.
    pub name: String,
    /// True when the provider has a usable key set (at least one key it can verify with).
    pub ready: bool,
    /// Usable keys in the current key set.
    pub keys: usize,
    /// Seconds since the current key set was loaded or last confirmed by its source; absent
    /// before the first good one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
    /// The key source's last failure while it keeps failing (why a provider is not ready, or
    /// why its keys are getting stale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `/readyz`: the overall verdict first so a human reading it with curl sees it.
#[derive(Serialize)]
struct ReadyzBody<'a> {
    ready: bool,
    providers: &'a [ProviderReadiness],
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: Option<&'a FleetReadiness>,
}

/// What the handlers need; the readiness probe is a closure so this layer does not depend on the
/// key-set types above it.
#[derive(Clone)]
struct AdminState {
    telemetry: Arc<Telemetry>,
    readiness: Arc<dyn Fn() -> Readiness + Send + Sync>,
}

/// The admin router: `GET /metrics` (Prometheus text), `GET /healthz` (200 `ok` while the process
/// serves), `GET /readyz` (200 when every provider has a usable key set and a fleet has caught
/// up, 503 otherwise; the JSON body lists the providers, and the fleet, either way). Other paths answer 404.
pub fn admin_router(
    telemetry: Arc<Telemetry>,
    readiness: Arc<dyn Fn() -> Readiness + Send + Sync>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AdminState {
            telemetry,
            readiness,
        })
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes in-flight requests
/// and returns.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.telemetry.render(),
    )
        .into_response()
}

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let readiness = (state.readiness)();
    let ready = readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ReadyzBody {
        ready,
        providers: &readiness.providers,
        fleet: readiness.fleet.as_ref(),
    };
    match serde_json::to_string(&body) {
        Ok(json) => (status, [(header::CONTENT_TYPE, "application/json")], json).into_response(),
        // Serialising strings and integers cannot fail; answer 500 rather than panic if it did.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn readiness(ready: bool) -> Arc<dyn Fn() -> Readiness + Send + Sync> {
        Arc::new(move || Readiness {
            providers: vec![
                ProviderReadiness {
                    name: "corp".to_owned(),
                    ready: true,
                    keys: 2,
                    age_s: Some(17),
                    error: None,
                },
                ProviderReadiness {
                    name: "partner".to_owned(),
                    ready,
                    keys: usize::from(ready),
                    age_s: Some(3),
                    error: (!ready).then(|| "jwks https://idp/jwks: HTTP status 500".to_owned()),
                },
            ],
            fleet: None,
        })
    }

    async fn get(router: Router, path: &str) -> (StatusCode, Option<String>, String) {
        let response = router
            .oneshot(
                Request::get(path)
                    .body(Body::empty())
                    .expect("valid request"),
            )
            .await
            .expect("router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().expect("ascii content type").to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("utf-8 body"),
        )
    }

    fn router(ready: bool) -> Router {
        admin_router(Telemetry::install().expect("install"), readiness(ready))
    }

    #[tokio::test]
    async fn metrics_is_prometheus_text() {
        // Install before recording: until then the facade discards everything.
        let router = router(true);
        metrics::counter!(
            crate::telemetry::names::CONNECTIONS_ACCEPTED_TOTAL,
            "worker" => "admin-test"
        )
        .increment(2);
        let (status, content_type, body) = get(router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(METRICS_CONTENT_TYPE));
        assert!(
            body.contains("verdict_connections_accepted_total{worker=\"admin-test\"} 2"),
            "{body}"
        );
        assert!(body.contains("verdict_check_duration_seconds_count "));
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let (status, _, body) = get(router(false), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "ok");
    }

    #[tokio::test]
    async fn readyz_200_when_all_ready() {
        let (status, content_type, body) = get(router(true), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let json: serde_json::Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(json["ready"], true);
        assert_eq!(json["providers"][0]["name"], "corp");
        assert_eq!(json["providers"][0]["keys"], 2);
        assert_eq!(json["providers"][0]["age_s"], 17);
        assert_eq!(json["providers"][1]["ready"], true);
    }

    #[tokio::test]
    async fn readyz_503_with_same_body_when_one_is_not_ready() {
        let (status, _, body) = get(router(false), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let json: serde_json::Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(json["ready"], false);
        assert_eq!(json["providers"][1]["name"], "partner");
        assert_eq!(json["providers"][1]["ready"], false);
        assert_eq!(json["providers"][1]["keys"], 0);
        // The body names why: the provider's last key-source error.
        assert_eq!(
            json["providers"][1]["error"],
            "jwks https://idp/jwks: HTTP status 500"
        );
        assert!(json["providers"][0].get("error").is_none());
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let (status, _, _) = get(router(true), "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn serve_admin_answers_over_tcp_and_shuts_down() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_admin(listener, router(true), async {
            let _ = stopped.await;
        }));

        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read response");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok"), "{response}");

        stop.send(()).expect("server still running");
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("graceful shutdown completes")
            .expect("server task")
            .expect("serve_admin result");
    }
}
