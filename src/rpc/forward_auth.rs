//! Forward auth over HTTP: the call nginx `auth_request`, Traefik `ForwardAuth`, Caddy
//! `forward_auth` and Envoy's ext_authz `http_service` make before they pass a request on.
//!
//! Every method on every path gets the same decision as ext_authz ([`ServiceState::decide`]):
//! the credential is read from the forwarded headers, and the original URI (for a query
//! parameter token) from one header family, all or nothing: `X-Forwarded-Uri` (Traefik,
//! Caddy), else `X-Original-URI` / `X-Original-URL` (nginx), else the request line itself
//! (Envoy `http_service` appends the original path). Nothing is redirected or normalised.
//!
//! Allowed: `200`, an empty body and every configured claim header present: its rendered value,
//! or empty when the token did not provide it (or it could not be rendered unchanged), so that
//! the gateway overwrites a copy the client sent. Denied: `401` or `403` with the
//! `WWW-Authenticate` of [`super::ext_authz::deny_answer`]. Cannot decide (no usable keys, the
//! introspection endpoint unreachable): `503`.
//!
//! Connections speak HTTP/1.1 (keep-alive) or h2c, with caps on the header block
//! ([`Limits::max_header_bytes`], [`Limits::max_headers`]: over them, `431` and the connection
//! is closed), a header read timeout against slow clients and an idle timeout longer than the
//! gateways' own pools.

use super::ServiceState;
use super::ext_authz::deny_answer;
use crate::policy::{Decision, RequestView};
use crate::runtime::{Incoming, ShutdownSignal};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::StreamExt;

/// The caps and timeouts of the forward-auth listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request header block (HTTP/1.1 request line and headers; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// A request's header block must arrive within this long of its first byte.
    pub header_read_timeout: Duration,
    /// A connection that reads nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request body received (and discarded) before the answer; a longer one, or one
    /// that takes longer than the header read timeout, closes the connection after the answer.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3700),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// The forward-auth service.
#[derive(Debug, Clone)]
pub struct ForwardAuth {
    state: ServiceState,
}

/// The original request as a gateway forwarded it.
#[derive(Debug)]
pub struct Forwarded<'a> {
    /// Headers with lower-case names; repeated fields joined (`, `, or `; ` for cookies).
    pub headers: HashMap<String, String>,
    /// The original path and query.
    pub path: Cow<'a, str>,
}

impl<'a> Forwarded<'a> {
    /// Reads the forwarded request from a forward-auth call's request line and headers.
    pub fn read(request_target: &'a str, headers: &HeaderMap) -> Forwarded<'a> {
        let mut map: HashMap<String, String> = HashMap::with_capacity(headers.keys_len());
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            match map.get_mut(name.as_str()) {
                Some(joined) => {
                    joined.push_str(if name == http::header::COOKIE {
                        "; "
                    } else {
                        ", "
                    });
                    joined.push_str(&value);
                }
                None => {
                    map.insert(name.as_str().to_owned(), value.into_owned());
                }
            }
        }
        let family = ["x-forwarded-uri", "x-original-uri", "x-original-url"]
            .iter()
            .find_map(|name| map.get(*name));
        let path = match family {
            Some(uri) => Cow::Owned(path_of(uri).to_owned()),
            None => Cow::Borrowed(request_target),
        };
        Forwarded { headers: map, path }
    }

    /// The view the decision reads.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            headers: &self.headers,
            path: &self.path,
        }
    }
}

/// The path and query of `uri`: itself, or the part after the authority when it is an absolute
/// URL (`X-Original-URL: https://host/p?q`). Never decoded or normalised.
fn path_of(uri: &str) -> &str {
    let lower = |n: usize| uri.get(..n).map(str::to_ascii_lowercase);
    let scheme_len = if lower(8).as_deref() == Some("https://") {
        8
    } else if lower(7).as_deref() == Some("http://") {
        7
    } else {
        return uri;
    };
    let rest = uri.get(scheme_len..).unwrap_or("");
    match rest.find(['/', '?']) {
        Some(at) => rest.get(at..).unwrap_or(""),
        None => "",
    }
}

impl ForwardAuth {
    /// A service reading the shared state.
    pub fn new(state: ServiceState) -> Self {
        ForwardAuth { state }
    }

    /// Decides one forward-auth call (without the transport).
    pub async fn decide(&self, request_target: &str, headers: &HeaderMap) -> Decision {
        let forwarded = Forwarded::read(request_target, headers);
        self.state.decide(&forwarded.view()).await
    }

    /// Answers one forward-auth call, recording it as ext_authz records a check.
    pub async fn answer<B>(&self, request: Request<B>) -> Response<Empty<Bytes>> {
        let started = Instant::now();
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let forwarded = Forwarded::read(target, request.headers());
        let view = forwarded.view();
        let decision = self.state.decide(&view).await;
        let response = render(&decision);
        let elapsed = started.elapsed();
        super::observe::record_check(&decision, elapsed);
        if crate::telemetry::audit::auditing() {
            let providers = self.state.providers.load();
            let token = providers.credential_at(&view).map(|(token, _)| token);
            super::observe::audit_check(&decision, token, elapsed);
        }
        response
    }
}

/// The HTTP answer for a decision.
pub fn render(decision: &Decision) -> Response<Empty<Bytes>> {
    let mut response = Response::new(Empty::new());
    match decision {
        Decision::Allow(allowed) => {
            let headers = response.headers_mut();
            for (name, value) in &allowed.headers {
                let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                    continue;
                };
                // The policy renders only values a header carries unchanged; should one slip
                // through, the header goes out empty, never as another value.
                let value =
                    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
                headers.insert(name, value);
            }
            for name in &allowed.headers_to_remove {
                if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                    headers.insert(name, HeaderValue::from_static(""));
                }
            }
        }
        Decision::Deny(denied, _) if denied.reason.is_unavailable() => {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        Decision::Deny(denied, _) => {
            let (_, status, challenge) = deny_answer(denied.reason);
            *response.status_mut() = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::UNAUTHORIZED);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
        }
    }
    response
}

/// Serves forward-auth connections on one worker until `shutdown`, then lets every open
/// connection finish its requests (HTTP/1.1 closes once idle, HTTP/2 gets a GOAWAY).
pub async fn serve(
    service: ForwardAuth,
    limits: Limits,
    mut incoming: Incoming,
    shutdown: ShutdownSignal,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        // Our own header read timeout (below): hyper's also runs between requests on a
        // keep-alive connection, which would cut gateways' idle pools short.
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = shutdown;
    loop {
        let stream = tokio::select! {
            next = incoming.next() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(_)) => continue,
                None => break,
            },
            _ = &mut shutdown => break,
        };
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let service = service.clone();
        let in_service = Arc::clone(&activity);
        let handler = hyper::service::service_fn(move |request| {
            in_service.head_done();
            let service = service.clone();
            let answered = Answered(Arc::clone(&in_service));
            async move {
                // verdict never reads a body, but it is received whole before the answer, so
                // the bytes that follow the answer are the next request's head.
                let (head, body) = request.into_parts();
                let drained = drain(body, limits.max_body_bytes, limits.header_read_timeout).await;
                let mut response = service.answer(Request::from_parts(head, ())).await;
                if !drained {
                    response
                        .headers_mut()
                        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response.map(|_| answered))
            }
        });
        let builder = Arc::clone(&builder);
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection(io, handler);
            drive(connection, &activity, &limits, stop).await;
        });
    }
    drop(incoming);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver: this returns once they have all finished.
    stop_tx.closed().await;
}

/// Reads and discards a request body; false when it is over `max` bytes, fails or takes longer
/// than `within` (the connection is then closed after the answer).
async fn drain(mut body: hyper::body::Incoming, max: usize, within: Duration) -> bool {
    use http_body_util::BodyExt;
    let read = async {
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Some(data) = frame.data_ref() {
                total = total.saturating_add(data.len());
                if total > max {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(within, read).await.unwrap_or(false)
}

/// Runs one connection, closing it on the header read timeout, the idle timeout or shutdown.
async fn drive<I, S, B>(
    connection: auto::Connection<'_, I, S, TokioExecutor>,
    activity: &Activity,
    limits: &Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response<B>>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    TokioExecutor: auto::HttpServerConnExec<S::Future, B>,
{
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    let mut next_check = activity.next_check(limits);
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = tokio::time::sleep_until(next_check.into()) => {
                match activity.expired(limits) {
                    Some(Expired::HeaderRead) => return,
                    Some(Expired::Idle) if closing => return,
                    Some(Expired::Idle) => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        next_check = Instant::now() + GRACE;
                    }
                    None => next_check = activity.next_check(limits),
                }
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// How long a connection told to close gets before it is dropped when it read nothing.
const GRACE: Duration = Duration::from_secs(5);

/// Which timeout ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    HeaderRead,
    Idle,
}

/// What a connection read, and when (milliseconds since it was accepted).
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// The last read that returned bytes.
    last_read_ms: AtomicU64,
    /// The first read since the last request head was complete, plus one (0 = none pending).
    head_since_ms: AtomicU64,
    /// HTTP/2 (its frames arrive between requests: only the idle timeout applies).
    h2: AtomicBool,
    /// Requests whose head arrived and whose answer is not written yet: bytes read meanwhile
    /// (a body) start no header timer.
    busy: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_read_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            busy: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read(&self, first_bytes: &[u8]) {
        let now = self.now_ms();
        self.last_read_ms.store(now, Ordering::Relaxed);
        if first_bytes.starts_with(b"PRI * HTTP/2") {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.busy.load(Ordering::Relaxed) > 0 {
            return;
        }
        let _ = self.head_since_ms.compare_exchange(
            0,
            now.saturating_add(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn head_done(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.head_since_ms.store(0, Ordering::Relaxed);
    }

    fn answered(&self) {
        self.busy.fetch_sub(1, Ordering::Relaxed);
        self.head_since_ms.store(0, Ordering::Relaxed);
    }

    fn expired(&self, limits: &Limits) -> Option<Expired> {
        let now = self.now_ms();
        let header_ms = u64::try_from(limits.header_read_timeout.as_millis()).unwrap_or(u64::MAX);
        let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let since = self.head_since_ms.load(Ordering::Relaxed);
        if since != 0
            && !self.h2.load(Ordering::Relaxed)
            && now.saturating_sub(since - 1) >= header_ms
        {
            return Some(Expired::HeaderRead);
        }
        let last = self.last_read_ms.load(Ordering::Relaxed);
        (now.saturating_sub(last) >= idle_ms).then_some(Expired::Idle)
    }

    fn next_check(&self, limits: &Limits) -> Instant {
        let last = Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed));
        let mut at = self.start + last + limits.idle_timeout;
        let since = self.head_since_ms.load(Ordering::Relaxed);
        if since != 0 && !self.h2.load(Ordering::Relaxed) {
            at = at.min(self.start + Duration::from_millis(since - 1) + limits.header_read_timeout);
        }
        // Re-check at least once a header timeout, so a head that starts later is timed too.
        at.min(Instant::now() + limits.header_read_timeout)
    }
}

/// The (empty) body of an answer. hyper drops it once the answer is written, which tells the
/// connection's [`Activity`] that bytes read from then on belong to the next request.
struct Answered(Arc<Activity>);

impl hyper::body::Body for Answered {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(0)
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.answered();
    }
}

/// A connection that reports what it reads to its [`Activity`].
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled
            && let Some(new) = buf.filled().get(before..)
            && !new.is_empty()
        {
            self.activity.read(new);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn the_path_comes_from_one_header_family() {
        let traefik = headers(&[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/a?t=1"),
            ("X-Original-URI", "/b?t=2"),
        ]);
        assert_eq!(Forwarded::read("/auth", &traefik).path, "/a?t=1");
        let nginx = headers(&[("X-Original-URI", "/b?t=2")]);
        assert_eq!(Forwarded::read("/auth", &nginx).path, "/b?t=2");
        let ingress = headers(&[("X-Original-URL", "https://Host.example:8443/c/../d?t=3")]);
        assert_eq!(Forwarded::read("/auth", &ingress).path, "/c/../d?t=3");
        let bare = headers(&[("X-Original-URL", "http://host?t=4")]);
        assert_eq!(Forwarded::read("/auth", &bare).path, "?t=4");
        let envoy = headers(&[("Authorization", "Bearer x")]);
        assert_eq!(
            Forwarded::read("/orders//x/%2e?t=5", &envoy).path,
            "/orders//x/%2e?t=5"
        );
    }

    #[test]
    fn repeated_headers_are_joined() {
        let map = headers(&[
            ("Cookie", "a=1"),
            ("cookie", "b=2"),
            ("X-Thing", "1"),
            ("x-thing", "2"),
        ]);
        let forwarded = Forwarded::read("/", &map);
        assert_eq!(forwarded.headers["cookie"], "a=1; b=2");
        assert_eq!(forwarded.headers["x-thing"], "1, 2");
    }
}
