//! Coordinated omission: against a test ext_authz server that stalls 200 ms once every N
//! requests, the open-loop latency (measured from each request's intended start) must show the
//! stall in its high percentiles, while closed-loop (and raw service-time) percentiles hide it.
//! Also: the hard deadline stops a run against a server that never answers, and timeouts are
//! counted as transport errors.

use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, OkHttpResponse};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tonic::{Request, Response, Status};
use verdict_load::load::{LoadPlan, LoadResult, run};
use verdict_load::scenario::{Scenario, TokenMix};
use verdict_load::tokens::{SigningKeys, TokenPool};

/// Allows everything; every `every`-th request (counted across connections) first sleeps
/// `stall`.
#[derive(Clone)]
struct Stalling {
    seen: Arc<AtomicU64>,
    every: u64,
    stall: Duration,
}

#[tonic::async_trait]
impl Authorization for Stalling {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.every) {
            tokio::time::sleep(self.stall).await;
        }
        Ok(Response::new(CheckResponse {
            status: Some(RpcStatus {
                code: 0,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            ..Default::default()
        }))
    }
}

/// The test server on its own thread and runtime; stops when dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(every: u64, stall: Duration) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let service = Stalling {
                    seen: Arc::new(AtomicU64::new(0)),
                    every,
                    stall,
                };
                let _ = tonic::transport::Server::builder()
                    .add_service(AuthorizationServer::new(service))
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(listener),
                        async {
                            let _ = stop_rx.await;
                        },
                    )
                    .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Graceful shutdown may wait on handlers that are still stalling: wait a little,
        // then leave the thread to the end of the test process.
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

fn pool() -> Arc<TokenPool> {
    let keys = SigningKeys::generate("load").expect("keys");
    let mix = TokenMix {
        algorithms: [("EdDSA".to_owned(), 1.0)].into_iter().collect(),
        distinct: 10,
        ..TokenMix::default()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    Arc::new(TokenPool::build(&mix, &keys, now).expect("pool"))
}

fn plan(streams: usize, rate: Option<f64>, duration: Duration) -> LoadPlan {
    let mut plan = LoadPlan::from_scenario(&Scenario::default());
    plan.connections = 1;
    plan.streams = streams;
    plan.rate = rate;
    plan.warmup = Duration::from_millis(300);
    plan.duration = duration;
    plan.timeout = Duration::from_secs(5);
    plan.deadline = plan.warmup + duration + Duration::from_secs(10);
    plan
}

fn p(result: &LoadResult, q: f64) -> Duration {
    Duration::from_nanos(result.latency.value_at_quantile(q))
}

fn service_p(result: &LoadResult, q: f64) -> Duration {
    Duration::from_nanos(result.service.value_at_quantile(q))
}

#[test]
fn open_loop_latency_shows_the_stall_that_closed_loop_hides() {
    const STALL: Duration = Duration::from_millis(200);
    let server = TestServer::start(400, STALL);
    let pool = pool();

    // Open loop: 500 requests/s over 5 streams = one request every 10 ms per stream. A 200 ms
    // stall holds up the ~20 requests scheduled behind it on that stream; measured from their
    // intended starts they took 200, 190, ... 10 ms. About 5 stalls in 2000 requests put
    // ~2.5 % of the requests above 100 ms: the corrected p99 must show it.
    let open = run(
        &plan(5, Some(500.0), Duration::from_secs(4)),
        server.addr,
        Arc::clone(&pool),
        &[],
        None,
    )
    .expect("open-loop run");
    eprintln!(
        "open loop: {} requests, p50 {:?} p90 {:?} p99 {:?} p99.9 {:?}; service p99 {:?} p99.9 {:?}",
        open.tally.requests,
        p(&open, 0.5),
        p(&open, 0.9),
        p(&open, 0.99),
        p(&open, 0.999),
        service_p(&open, 0.99),
        service_p(&open, 0.999)
    );
    assert_eq!(open.tally.transport_total(), 0, "{:?}", open.tally);
    assert_eq!(open.tally.unexpected_total(), 0, "{:?}", open.tally);
    let rate = open.tally.requests as f64 / open.measured_s;
    assert!(
        (450.0..550.0).contains(&rate),
        "open loop held {rate} req/s, asked for 500"
    );
    assert!(
        p(&open, 0.99) >= Duration::from_millis(100),
        "corrected p99 {:?} hides the 200 ms stalls",
        p(&open, 0.99)
    );
    assert!(p(&open, 0.999) >= Duration::from_millis(180));
    assert!(Duration::from_nanos(open.latency.max()) >= STALL);
    // The uncorrected service time of the same run sees only the stalled requests themselves
    // (0.25 %): its p99 stays low, which is exactly what coordinated omission looks like.
    assert!(
        service_p(&open, 0.99) < Duration::from_millis(50),
        "service p99 {:?}",
        service_p(&open, 0.99)
    );
    assert!(service_p(&open, 0.999) >= Duration::from_millis(180));

    // Closed loop against the same server: the stalled stream just waits, so only the stalled
    // requests are slow and p99 looks healthy although the server stalled repeatedly.
    let closed = run(
        &plan(5, None, Duration::from_secs(2)),
        server.addr,
        pool,
        &[],
        None,
    )
    .expect("closed-loop run");
    eprintln!(
        "closed loop: {} requests, p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        closed.tally.requests,
        p(&closed, 0.5),
        p(&closed, 0.99),
        p(&closed, 0.999),
        Duration::from_nanos(closed.latency.max())
    );
    assert_eq!(closed.tally.transport_total(), 0, "{:?}", closed.tally);
    assert!(closed.tally.requests > 200, "{}", closed.tally.requests);
    assert!(
        Duration::from_nanos(closed.latency.max()) >= STALL,
        "the closed loop saw stalls"
    );
    assert!(
        p(&closed, 0.99) < Duration::from_millis(50),
        "closed-loop p99 {:?}",
        p(&closed, 0.99)
    );
    assert!(p(&open, 0.99) > p(&closed, 0.99) * 2);
}

#[test]
fn a_server_that_never_answers_is_stopped_by_the_deadline() {
    // Every request stalls for a minute; the per-request timeout is longer than the deadline.
    let server = TestServer::start(1, Duration::from_secs(60));
    let mut plan = plan(2, None, Duration::from_secs(1));
    plan.timeout = Duration::from_secs(30);
    plan.deadline = Duration::from_secs(2);
    let started = Instant::now();
    let result = run(&plan, server.addr, pool(), &[], None).expect("run");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let why = result.aborted.expect("marked aborted");
    assert!(why.contains("hard deadline"), "{why}");
    drop(server);
}

#[test]
fn timeouts_are_transport_errors() {
    let server = TestServer::start(1, Duration::from_secs(60));
    let mut plan = plan(2, None, Duration::from_millis(500));
    plan.warmup = Duration::ZERO;
    plan.timeout = Duration::from_millis(200);
    let result = run(&plan, server.addr, pool(), &[], None).expect("run");
    assert!(result.aborted.is_none());
    let timeouts = result.tally.transport.get("timeout").copied().unwrap_or(0);
    assert!(timeouts >= 2, "{:?}", result.tally);
    assert_eq!(result.tally.requests, 0);
    drop(server);
}
