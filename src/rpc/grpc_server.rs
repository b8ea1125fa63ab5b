//! The gRPC listener's connections: HTTP/2 served by hyper directly, Envoy's `Check` answered
//! on a lean path, every other method handed to tonic's generated services.
//!
//! `Check` is the call every gateway request pays for, so its path skips what a generic gRPC
//! stack does per call: the router, the codec layers, building the whole `CheckRequest`
//! (see [`super::check_wire`]) and encoding the answer again for every request (an allow's
//! frame is encoded once per token and stored with it). The decision itself is the same one
//! every protocol uses ([`ExtAuthz::judge`]).
//!
//! A connection's streams are served by the worker that accepted it, like everything else.
//! `max_concurrent_streams` is what is advertised in `SETTINGS`: Envoy opens another
//! connection when a connection's streams are all in use (and the acceptor balances that
//! connection to the least-loaded worker), while grpc-go and tonic clients queue calls on the
//! connection they have.

use super::check_wire::{CheckView, unframe};
use super::ext_authz::{ExtAuthz, answer_frame};
use crate::policy::RequestView;
use crate::runtime::{Incoming, ShutdownSignal, conn};
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Either};
use hyper::body::{Body, Frame, Incoming as IncomingBody, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::service::Routes;

/// The method answered on the lean path.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// Largest `CheckRequest` accepted (tonic's default decode limit): Envoy sends the request
/// headers, and a body only when `with_request_body` is set.
const MAX_CHECK_BYTES: usize = 4 * 1024 * 1024;

/// Answers a worker computes before it lets its connections write them: a write is a
/// syscall, so not after every answer, and few enough that the client keeps sending.
const ANSWERS_PER_WRITE: u32 = 8;

/// gRPC status codes written in trailers.
const GRPC_INTERNAL: &str = "13";
const GRPC_RESOURCE_EXHAUSTED: &str = "8";

/// How the gRPC listener serves its connections (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct GrpcOptions {
    /// HTTP/2 PING interval that keeps idle connections through middleboxes.
    pub keepalive_interval: Duration,
    /// After this long a connection is sent a GOAWAY (clients reconnect, and the acceptor
    /// rebalances); `None`: never.
    pub max_connection_age: Option<Duration>,
    /// How long a connection told to go away may finish its streams.
    pub max_connection_age_grace: Duration,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` advertised to clients.
    pub max_concurrent_streams: u32,
}

/// The per-connection service: the lean `Check`, else tonic's routes.
#[derive(Clone)]
struct Front {
    ext_authz: ExtAuthz,
    routes: Routes,
}

type FrontBody = Either<UnaryBody, tonic::body::Body>;
type FrontFuture = Pin<Box<dyn Future<Output = Result<Response<FrontBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<IncomingBody>> for Front {
    type Response = Response<FrontBody>;
    type Error = Infallible;
    type Future = FrontFuture;

    fn call(&self, request: Request<IncomingBody>) -> Self::Future {
        if request.method() == Method::POST && request.uri().path() == CHECK_PATH {
            let ext_authz = self.ext_authz.clone();
            return Box::pin(async move { Ok(check(&ext_authz, request).await.map(Either::Left)) });
        }
        let mut routes = self.routes.clone();
        Box::pin(async move {
            let response = tonic::codegen::Service::call(&mut routes, request).await;
            Ok(response.map_or_else(|never| match never {}, |r| r.map(Either::Right)))
        })
    }
}

/// Answers one `Check` call.
async fn check(ext_authz: &ExtAuthz, request: Request<IncomingBody>) -> Response<UnaryBody> {
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(status) => return status,
    };
    let message = match unframe(&body) {
        Ok(message) => message,
        Err(error) => return failed(GRPC_INTERNAL, error),
    };
    let view = match CheckView::decode(message) {
        Ok(view) => view,
        Err(error) => return failed(GRPC_INTERNAL, error),
    };
    if conn::unwritten_answers() >= ANSWERS_PER_WRITE {
        // Let the connection tasks write what is ready first (see `conn::unwritten_answers`).
        tokio::task::yield_now().await;
    }
    let decision = ext_authz
        .judge(&RequestView {
            headers: &view,
            path: view.path(),
        })
        .await;
    conn::answer_produced();
    answer(answer_frame(&decision))
}

/// The whole request body (one DATA frame from Envoy: kept as it arrived, no copy).
async fn read_body(mut body: IncomingBody) -> Result<Bytes, Response<UnaryBody>> {
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(failed(GRPC_INTERNAL, "request body ended early"));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = first.as_ref().map_or(0, Bytes::len)
            + more.as_ref().map_or(0, BytesMut::len)
            + data.remaining();
        if total > MAX_CHECK_BYTES {
            return Err(failed(
                GRPC_RESOURCE_EXHAUSTED,
                "CheckRequest larger than 4 MiB",
            ));
        }
        match (&mut first, &mut more) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut joined = BytesMut::with_capacity(total);
                joined.extend_from_slice(head);
                joined.extend_from_slice(&data);
                more = Some(joined);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&data),
        }
    }
    Ok(match more {
        Some(joined) => joined.freeze(),
        None => first.unwrap_or_default(),
    })
}

fn grpc_headers(response: &mut Response<UnaryBody>) {
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
}

/// `200` with one message and `grpc-status: 0` in the trailers.
fn answer(frame: Bytes) -> Response<UnaryBody> {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(UnaryBody {
        data: Some(frame),
        trailers: Some(trailers),
    });
    grpc_headers(&mut response);
    response
}

/// A trailers-only gRPC error (`grpc-status` and `grpc-message` in the response headers).
fn failed(code: &'static str, why: impl std::fmt::Display) -> Response<UnaryBody> {
    let mut response = Response::new(UnaryBody {
        data: None,
        trailers: None,
    });
    grpc_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static(code));
    if let Ok(message) = HeaderValue::from_str(&why.to_string()) {
        headers.insert("grpc-message", message);
    }
    response
}

/// A unary gRPC response body: one message, then the trailers.
#[derive(Debug)]
pub struct UnaryBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for UnaryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// Serves gRPC connections on one worker until `shutdown`, then sends every open connection a
/// GOAWAY and returns once they have finished their streams.
pub async fn serve(
    ext_authz: ExtAuthz,
    routes: Routes,
    options: GrpcOptions,
    mut incoming: Incoming,
    mut shutdown: ShutdownSignal,
) {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(options.keepalive_interval)
        .max_concurrent_streams(options.max_concurrent_streams)
        // Clients ignore it and it costs a clock read and a header per answer.
        .auto_date_header(false);
    let builder = Arc::new(builder);
    let front = Front {
        ext_authz,
        routes: routes.prepare(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        let stream = tokio::select! {
            next = incoming.next() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(_)) => continue,
                None => break,
            },
            _ = &mut shutdown => break,
        };
        let builder = Arc::clone(&builder);
        let front = front.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), front);
            let mut connection = std::pin::pin!(connection);
            let age = async {
                match options.max_connection_age {
                    Some(age) => tokio::time::sleep(age).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = age => {}
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
            connection.as_mut().graceful_shutdown();
            // Past the grace, in-flight streams are abandoned with the connection.
            let _ = tokio::time::timeout(options.max_connection_age_grace, connection).await;
        });
    }
    drop(incoming);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver: this returns once they have all finished.
    stop_tx.closed().await;
}
