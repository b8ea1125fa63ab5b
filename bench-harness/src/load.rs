//! The load engine: N connections × M streams, closed or open loop, warm-up, stop by duration
//! or request count, a hard deadline, live progress and the timeline.
//!
//! Every stream has at most one request in flight. In closed loop a stream sends its next
//! request as soon as the previous one is answered; the latency is the service time.
//!
//! In open loop the total rate R is split evenly over the C streams: stream g intends to send
//! its k-th request at `start + (g + k·C) / R`. A stream that is late (its previous answer came
//! after the next intended start) sends at once, and every latency is measured from the
//! intended start, so a stall is charged to every request that was scheduled behind it, as
//! wrk2 does. The harness's own lateness (timer granularity, client scheduling) is not charged:
//! the latency is computed on the ideal timeline, where request k starts at
//! `max(intended_k, ideal completion of k-1)` and takes its measured service time. The raw
//! service times are kept as a second histogram.

use crate::outcome::{Outcome, Tally, classify_check, classify_verify};
use crate::scenario::{Action, ActionKind, RpcKind, Scenario};
use crate::spawn::{proc_cpu_seconds, self_cpu_seconds, send_signal};
use crate::tokens::{Kind, TokenPool};
use crate::tokens_file::{SourceCount, TokenFile, TokenFileSummary};
use crate::wire::{
    CHECK_PATH, RawCodec, SlimBatchResponse, SlimCheckResponse, SlimVerifyResponse,
    VERIFY_BATCH_PATH, Wire,
};
use anyhow::{Context, anyhow};
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context,
};
use envoy_types::pb::google::protobuf::Timestamp;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tonic::client::Grpc;
use tonic::codegen::Bytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

/// Largest latency recorded (larger values are clamped): 10 minutes, in nanoseconds.
pub const HIST_MAX_NS: u64 = 600_000_000_000;

/// A latency histogram in nanoseconds, 3 significant digits.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).map_err(|e| anyhow!("histogram: {e}"))
}

/// Everything the engine needs to know about the load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Which RPC.
    pub rpc: RpcKind,
    /// Tokens per VerifyBatch call.
    pub batch_size: usize,
    /// Connections.
    pub connections: usize,
    /// Streams per connection.
    pub streams: usize,
    /// Open-loop total rate (requests/s); `None` = closed loop.
    pub rate: Option<f64>,
    /// Warm-up (excluded).
    pub warmup: Duration,
    /// Measured duration (when `requests` is 0).
    pub duration: Duration,
    /// Measured requests instead of a duration (0 = use the duration).
    pub requests: u64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Hard deadline from the start.
    pub deadline: Duration,
    /// Seeds the per-stream samplers.
    pub seed: u64,
    /// Cores the client's runtime threads are pinned to (empty = not pinned).
    pub client_cpus: Vec<usize>,
    /// Runtime worker threads.
    pub worker_threads: usize,
    /// Show the live progress line (on a terminal).
    pub progress: bool,
    /// Scenario name, for the progress line.
    pub label: String,
    /// Send the tokens of this file (round-robin, all expected allowed) instead of the pool's.
    pub tokens_file: Option<Arc<TokenFile>>,
}

impl LoadPlan {
    /// The plan a scenario describes (not pinned, one thread per available core).
    pub fn from_scenario(s: &Scenario) -> LoadPlan {
        LoadPlan {
            rpc: s.load.rpc,
            batch_size: s.load.batch_size,
            connections: s.load.connections,
            streams: s.load.streams,
            rate: s.load.open_loop().then_some(s.load.rate),
            warmup: s.load.warmup.0,
            duration: s.load.duration.0,
            requests: s.load.requests,
            timeout: s.load.timeout.0,
            deadline: s.load.hard_deadline(),
            seed: s.tokens.seed,
            client_cpus: Vec::new(),
            worker_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: false,
            label: s.name.clone(),
            tokens_file: None,
        }
    }

    /// Total concurrent streams.
    pub fn total_streams(&self) -> usize {
        self.connections * self.streams
    }
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the measurement started (negative during the warm-up).
    pub t_s: f64,
    /// Requests answered in this interval.
    pub requests: u64,
    /// Requests per second in this interval.
    pub rate: f64,
    /// Median latency (ms).
    pub p50_ms: f64,
    /// 99th percentile latency (ms).
    pub p99_ms: f64,
    /// Largest latency (ms).
    pub max_ms: f64,
    /// Transport errors and unexpected verdicts in this interval.
    pub errors: u64,
}

/// What happened to a scheduled action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLog {
    /// The kind.
    pub kind: String,
    /// When it was scheduled (seconds after the measurement started).
    pub at_s: f64,
    /// When it ran, if it did.
    pub ran_at_s: Option<f64>,
    /// "ok", or what went wrong, or why it was skipped.
    pub result: String,
}

/// The raw result of a run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Open loop?
    pub open_loop: bool,
    /// Seconds from the end of the warm-up to the last measured answer.
    pub measured_s: f64,
    /// Requests answered during the warm-up (not in the results).
    pub warmup_requests: u64,
    /// The measured answers.
    pub tally: Tally,
    /// Latency: from the intended start (open loop) or the service time (closed loop), ns.
    pub latency: Histogram<u64>,
    /// Service time (send to answer), ns.
    pub service: Histogram<u64>,
    /// Open loop: measured requests the schedule called for but that were never sent because
    /// the run ended while the stream was still catching up.
    pub unsent: u64,
    /// One point per second.
    pub timeline: Vec<TimelinePoint>,
    /// The actions.
    pub actions: Vec<ActionLog>,
    /// Why the run stopped early, if it did (hard deadline, interrupt).
    pub aborted: Option<String>,
    /// Client (this process) CPU seconds over the measurement.
    pub client_cpu_s: Option<f64>,
    /// Server CPU seconds over the measurement (when its pid is known).
    pub server_cpu_s: Option<f64>,
    /// How many times the pool of new tokens wrapped around.
    pub new_pool_wraps: u64,
    /// With a tokens file: its re-reads and the requests per token source.
    pub tokens_file: Option<TokenFileSummary>,
}

/// Per-connection statistics, shared by its streams (one short lock per answer).
struct Stats {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    interval: Histogram<u64>,
    interval_requests: u64,
    interval_errors: u64,
    measured_requests: u64,
    tally: Tally,
    warmup_requests: u64,
    unsent: u64,
    last_done: Option<Instant>,
    /// With a tokens file: measured tokens and allows per source.
    sources: Vec<SourceCount>,
}

impl Stats {
    fn new() -> anyhow::Result<Stats> {
        Ok(Stats {
            latency: new_histogram()?,
            service: new_histogram()?,
            interval: new_histogram()?,
            interval_requests: 0,
            interval_errors: 0,
            measured_requests: 0,
            tally: Tally::default(),
            warmup_requests: 0,
            unsent: 0,
            last_done: None,
            sources: Vec::new(),
        })
    }
}

fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A CheckRequest as Envoy's ext_authz filter builds it for `GET /orders/42` over HTTP/1.1,
/// with `authorization: Bearer TOKEN` when a token is given.
pub fn envoy_check_request(token: Option<&str>, request_id: u64) -> CheckRequest {
    let socket = |address: &str, port: u32| Address {
        address: Some(AddressKind::SocketAddress(SocketAddress {
            address: address.into(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let uuid = format!(
        "6a3c1f0e-8b2d-4c5a-9e7f-{:012x}",
        request_id & 0xffff_ffff_ffff
    );
    let mut headers: HashMap<String, String> = [
        (":authority", "api.load.test"),
        (":path", "/orders/42"),
        (":method", "GET"),
        (":scheme", "https"),
        ("user-agent", "verdict-load/0.1"),
        ("accept", "*/*"),
        ("x-forwarded-proto", "https"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    headers.insert("x-request-id".into(), uuid);
    if let Some(token) = token {
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(attribute_context::Peer {
                address: Some(socket("127.0.0.1", 40_000 + (request_id % 20_000) as u32)),
                ..Default::default()
            }),
            destination: Some(attribute_context::Peer {
                address: Some(socket("127.0.0.1", 10_000)),
                ..Default::default()
            }),
            request: Some(attribute_context::Request {
                time: Some(Timestamp {
                    seconds: i64::try_from(now.as_secs()).unwrap_or(0),
                    nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
                }),
                http: Some(attribute_context::HttpRequest {
                    id: request_id.to_string(),
                    method: "GET".into(),
                    headers,
                    path: "/orders/42".into(),
                    host: "api.load.test".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/1.1".into(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

struct Shared {
    plan: LoadPlan,
    pool: Arc<TokenPool>,
    wire: Wire,
    start: Instant,
    warm_end: Instant,
    /// End of the measured window in duration mode.
    end: Option<Instant>,
    tickets: Option<AtomicU64>,
    stop: AtomicBool,
}

impl Shared {
    fn take_ticket(&self) -> bool {
        match &self.tickets {
            None => true,
            Some(t) => t
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Opens `connections` HTTP/2 connections to `target`.
async fn connect_all(target: SocketAddr, plan: &LoadPlan) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        let endpoint = Endpoint::from_shared(format!("http://{target}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = tokio::time::timeout(Duration::from_secs(10), endpoint.connect())
            .await
            .map_err(|_| anyhow!("connection {i} to {target} timed out"))?
            .with_context(|| format!("cannot connect to {target}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Runs the load against `target` and returns the measured result. Builds (and drops) its
/// own tokio runtime.
pub fn run(
    plan: &LoadPlan,
    target: SocketAddr,
    pool: Arc<TokenPool>,
    actions: &[Action],
    server_pid: Option<u32>,
) -> anyhow::Result<LoadResult> {
    // One client thread: a current-thread runtime driven by the calling thread (no
    // work-stealing machinery on the measured path). More: a multi-thread runtime.
    let single = plan.worker_threads <= 1 && std::env::var_os("VERDICT_LOAD_MULTI").is_none();
    let mut builder = if single {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(plan.worker_threads.max(1));
        b
    };
    builder.thread_name("verdict-load").enable_all();
    if !plan.client_cpus.is_empty() {
        let cpus = plan.client_cpus.clone();
        if single && let Some(&id) = cpus.first() {
            core_affinity::set_for_current(core_affinity::CoreId { id });
        }
        let next = Arc::new(AtomicUsize::new(0));
        builder.on_thread_start(move || {
            let i = next.fetch_add(1, Ordering::Relaxed) % cpus.len();
            if let Some(&id) = cpus.get(i) {
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
        });
    }
    let runtime = builder.build().context("building the client runtime")?;
    let result = runtime.block_on(run_async(plan, target, pool, actions, server_pid));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run_async(
    plan: &LoadPlan,
    target: SocketAddr,
    pool: Arc<TokenPool>,
    actions: &[Action],
    server_pid: Option<u32>,
) -> anyhow::Result<LoadResult> {
    let wire = Wire::build(&pool, plan.rpc);
    let channels = connect_all(target, plan).await?;
    let start = Instant::now();
    let warm_end = start + plan.warmup;
    let deadline = start + plan.deadline;
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        pool: Arc::clone(&pool),
        wire,
        start,
        warm_end,
        end: (plan.requests == 0).then(|| warm_end + plan.duration),
        tickets: (plan.requests > 0).then(|| AtomicU64::new(plan.requests)),
        stop: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut all_stats = Vec::with_capacity(plan.connections);
    let mut tasks = Vec::with_capacity(plan.total_streams());
    for (c, channel) in channels.into_iter().enumerate() {
        let stats = Arc::new(Mutex::new(Stats::new()?));
        all_stats.push(Arc::clone(&stats));
        for s in 0..plan.streams {
            let client = Grpc::new(channel.clone());
            let stream_index = c * plan.streams + s;
            tasks.push(tokio::spawn(stream_loop(
                Arc::clone(&shared),
                client,
                stream_index,
                Arc::clone(&stats),
                stop_rx.clone(),
            )));
        }
    }

    let bar = progress_bar(plan);
    let (done_tx, done_rx) = watch::channel(false);
    let progress = tokio::spawn(progress_loop(
        Arc::clone(&shared),
        all_stats.clone(),
        bar.clone(),
        done_rx.clone(),
    ));
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(warm_end.into()).await;
        (self_cpu_seconds(), server_pid.and_then(proc_cpu_seconds))
    });
    let reloader = plan.tokens_file.as_ref().and_then(|file| {
        let every = file.reload_every()?;
        Some(tokio::spawn(reload_loop(
            Arc::clone(file),
            every,
            done_rx.clone(),
        )))
    });
    let actions_task = tokio::spawn(run_actions(actions.to_vec(), warm_end, server_pid, done_rx));

    let mut aborted = None;
    let mut handles = tasks;
    let join_all = async {
        for handle in handles.iter_mut() {
            let _ = handle.await;
        }
    };
    tokio::select! {
        () = join_all => {}
        () = tokio::time::sleep_until(deadline.into()) => {
            aborted = Some(format!(
                "hard deadline: still running {:.1} s after the start; in-flight requests abandoned",
                plan.deadline.as_secs_f64()
            ));
        }
        _ = tokio::signal::ctrl_c() => {
            aborted = Some("interrupted (SIGINT)".into());
        }
        () = terminated() => {
            aborted = Some("terminated (SIGTERM)".into());
        }
    }
    if aborted.is_some() {
        shared.stop.store(true, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        // Give the streams one timeout to finish what is in flight, then abandon them.
        let grace = Instant::now() + plan.timeout.min(Duration::from_secs(2));
        for handle in &handles {
            let remaining = grace.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let _ = tokio::time::timeout(remaining, async {
                while !handle.is_finished() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        for handle in &handles {
            handle.abort();
        }
    }
    let client_end = self_cpu_seconds();
    let server_end = server_pid.and_then(proc_cpu_seconds);
    let _ = done_tx.send(true);
    let timeline = progress.await.unwrap_or_default();
    bar.finish_and_clear();
    let action_logs = actions_task.await.unwrap_or_default();
    if let Some(reloader) = reloader {
        let _ = reloader.await;
    }
    let (client_start, server_start) = if cpu_at_start.is_finished() {
        cpu_at_start.await.unwrap_or((None, None))
    } else {
        cpu_at_start.abort();
        (None, None)
    };

    let mut latency = new_histogram()?;
    let mut service = new_histogram()?;
    let mut tally = Tally::default();
    let mut warmup_requests = 0;
    let mut unsent = 0;
    let mut last_done: Option<Instant> = None;
    let mut sources: Vec<SourceCount> = Vec::new();
    for stats in &all_stats {
        let s = lock(stats);
        if sources.len() < s.sources.len() {
            sources.resize(s.sources.len(), SourceCount::default());
        }
        for (total, count) in sources.iter_mut().zip(&s.sources) {
            total.requests += count.requests;
            total.allowed += count.allowed;
        }
        latency
            .add(&s.latency)
            .map_err(|e| anyhow!("merging: {e}"))?;
        service
            .add(&s.service)
            .map_err(|e| anyhow!("merging: {e}"))?;
        tally.merge(&s.tally);
        warmup_requests += s.warmup_requests;
        unsent += s.unsent;
        last_done = last_done.max(s.last_done);
    }
    let window_end = match (shared.end, last_done) {
        (Some(end), Some(done)) if aborted.is_none() => end.max(done),
        (_, Some(done)) => done,
        (_, None) => warm_end,
    };
    let measured_s = window_end.saturating_duration_since(warm_end).as_secs_f64();
    Ok(LoadResult {
        open_loop: plan.rate.is_some(),
        measured_s,
        warmup_requests,
        tally,
        latency,
        service,
        unsent,
        timeline,
        actions: action_logs,
        aborted,
        client_cpu_s: client_start.zip(client_end).map(|(a, b)| b - a),
        server_cpu_s: server_start.zip(server_end).map(|(a, b)| b - a),
        new_pool_wraps: pool.new_pool_wraps(),
        tokens_file: plan.tokens_file.as_ref().map(|f| f.summary(&sources)),
    })
}

/// Re-reads the tokens file every `every` until the run is done (each read on a blocking
/// thread, so a slow file system never stalls the streams).
async fn reload_loop(file: Arc<TokenFile>, every: Duration, mut done: watch::Receiver<bool>) {
    let mut next = Instant::now() + every;
    while sleep_or_stop(next, &mut done).await {
        let file = Arc::clone(&file);
        let _ = tokio::task::spawn_blocking(move || file.reload()).await;
        next = (next + every).max(Instant::now());
    }
}

/// Resolves on SIGTERM (never, if the handler cannot be installed).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

/// Sleeps until `at` unless told to stop first; true when the sleep completed.
async fn sleep_or_stop(at: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => true,
        _ = stop.changed() => false,
    }
}

async fn stream_loop(
    shared: Arc<Shared>,
    mut client: Grpc<Channel>,
    stream_index: usize,
    stats: Arc<Mutex<Stats>>,
    mut stop: watch::Receiver<bool>,
) {
    let plan = &shared.plan;
    let mut rng = SmallRng::seed_from_u64(
        plan.seed ^ (stream_index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let total_streams = plan.total_streams() as f64;
    let g = stream_index as f64;
    let mut k: u64 = 0;
    // Open loop: when the previous request would have completed on the ideal timeline.
    let mut ideal_free = shared.start;
    let mut kinds: Vec<Kind> = Vec::with_capacity(plan.batch_size);
    // With a tokens file: the source of each token of the request.
    let mut sources: Vec<u32> = Vec::with_capacity(plan.batch_size);
    let mut body: Vec<u8> = Vec::new();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let intended = match plan.rate {
            Some(rate) => {
                shared.start + Duration::from_secs_f64((g + k as f64 * total_streams) / rate)
            }
            None => Instant::now(),
        };
        if let Some(end) = shared.end {
            if intended >= end {
                break;
            }
            if let Some(rate) = plan.rate
                && Instant::now() >= end
            {
                // Too late to send what the schedule still holds: count it as unsent.
                let window_s = |t: Instant| t.saturating_duration_since(shared.start).as_secs_f64();
                let k_end = ((window_s(end) * rate - g) / total_streams).ceil().max(0.0) as u64;
                let k_first = ((window_s(shared.warm_end) * rate - g) / total_streams)
                    .ceil()
                    .max(0.0) as u64;
                let missed = k_end.saturating_sub(k.max(k_first));
                lock(&stats).unsent += missed;
                break;
            }
        }
        let measured = intended >= shared.warm_end;
        if measured && !shared.take_ticket() {
            break;
        }
        if plan.rate.is_some()
            && intended > Instant::now()
            && !sleep_or_stop(intended, &mut stop).await
        {
            break;
        }
        kinds.clear();
        sources.clear();
        let (send_at, done, answer) = match plan.rpc {
            RpcKind::Check => {
                let body = match &plan.tokens_file {
                    Some(file) => {
                        let (body, source) = file.pick();
                        kinds.push(Kind::Valid);
                        sources.push(source);
                        body
                    }
                    None => {
                        let pick = shared.pool.pick(&mut rng);
                        kinds.push(pick.kind);
                        shared.wire.check(&pick)
                    }
                };
                let send_at = Instant::now();
                let answer = tokio::time::timeout(plan.timeout, async {
                    client.ready().await.map_err(not_ready)?;
                    client
                        .unary(
                            tonic::Request::new(body),
                            PathAndQuery::from_static(CHECK_PATH),
                            RawCodec::<SlimCheckResponse>::default(),
                        )
                        .await
                })
                .await;
                let answer = answer.map(|r| {
                    r.map(|r| Answer::Check(Box::new(r.into_inner().into_check_response())))
                });
                (send_at, Instant::now(), answer)
            }
            RpcKind::VerifyBatch => {
                body.clear();
                for _ in 0..plan.batch_size {
                    match &plan.tokens_file {
                        Some(file) => {
                            let (entry, source) = file.pick();
                            kinds.push(Kind::Valid);
                            sources.push(source);
                            body.extend_from_slice(&entry);
                        }
                        None => {
                            let pick = shared.pool.pick(&mut rng);
                            kinds.push(pick.kind);
                            body.extend_from_slice(shared.wire.batch_entry(&pick));
                        }
                    }
                }
                let request = tonic::Request::new(Bytes::copy_from_slice(&body));
                let send_at = Instant::now();
                let answer = tokio::time::timeout(plan.timeout, async {
                    client.ready().await.map_err(not_ready)?;
                    client
                        .unary(
                            request,
                            PathAndQuery::from_static(VERIFY_BATCH_PATH),
                            RawCodec::<SlimBatchResponse>::default(),
                        )
                        .await
                })
                .await;
                let answer = answer.map(|r| {
                    r.map(|r| {
                        Answer::Batch(
                            r.into_inner()
                                .responses
                                .into_iter()
                                .map(SlimVerifyResponse::into_verify_response)
                                .collect(),
                        )
                    })
                });
                (send_at, Instant::now(), answer)
            }
        };
        let service = done.saturating_duration_since(send_at);
        let latency = match plan.rate {
            Some(_) => {
                let ideal_send = intended.max(ideal_free);
                ideal_free = ideal_send + service;
                ideal_free.saturating_duration_since(intended)
            }
            None => service,
        };
        record(
            &stats, measured, latency, service, done, &kinds, &sources, answer,
        );
        k += 1;
    }
}

fn not_ready(e: tonic::transport::Error) -> tonic::Status {
    tonic::Status::unavailable(format!("connection not ready: {e}"))
}

enum Answer {
    Check(Box<envoy_types::pb::envoy::service::auth::v3::CheckResponse>),
    Batch(Vec<verdict::rpc::proto::VerifyResponse>),
}

/// Counts one answer. `sources` (empty without a tokens file) holds the token source of each
/// of `kinds`.
#[allow(clippy::too_many_arguments)]
fn record(
    stats: &Mutex<Stats>,
    measured: bool,
    latency: Duration,
    service: Duration,
    done: Instant,
    kinds: &[Kind],
    sources: &[u32],
    answer: Result<Result<Answer, tonic::Status>, tokio::time::error::Elapsed>,
) {
    let mut s = lock(stats);
    let s = &mut *s;
    s.interval_requests += 1;
    let answered = matches!(answer, Ok(Ok(_)));
    if answered {
        s.interval.saturating_record(nanos(latency));
    } else {
        s.interval_errors += 1;
    }
    if !measured {
        s.warmup_requests += 1;
        return;
    }
    s.last_done = Some(done);
    s.measured_requests += 1;
    // Per token source: every measured token counts as sent, allows are added below.
    for &source in sources {
        let at = usize::try_from(source).unwrap_or(usize::MAX);
        if at >= s.sources.len() && at < crate::tokens_file::MAX_SOURCES {
            s.sources.resize(at + 1, SourceCount::default());
        }
        if let Some(count) = s.sources.get_mut(at) {
            count.requests += 1;
        }
    }
    let allow = |s: &mut Stats, i: usize, outcome: &Outcome| {
        let at = sources
            .get(i)
            .and_then(|&source| usize::try_from(source).ok());
        if *outcome == Outcome::Allowed
            && let Some(count) = at.and_then(|at| s.sources.get_mut(at))
        {
            count.allowed += 1;
        }
    };
    match answer {
        Err(_) => s
            .tally
            .transport_error("timeout", "no answer within the request timeout"),
        Ok(Err(status)) => {
            let kind = format!("grpc {:?}", status.code());
            s.tally.transport_error(&kind, status.message());
        }
        Ok(Ok(answer)) => {
            s.tally.requests += 1;
            s.latency.saturating_record(nanos(latency));
            s.service.saturating_record(nanos(service));
            let mut unexpected = false;
            match answer {
                Answer::Check(response) => {
                    let kind = kinds.first().copied().unwrap_or(Kind::NoCredential);
                    let outcome = classify_check(kind, &response);
                    allow(s, 0, &outcome);
                    unexpected |= s.tally.count(outcome);
                }
                Answer::Batch(responses) => {
                    if responses.len() != kinds.len() {
                        unexpected |= s.tally.count(Outcome::Unexpected(format!(
                            "batch of {} answered with {} verdicts",
                            kinds.len(),
                            responses.len()
                        )));
                    }
                    for (i, (kind, response)) in kinds.iter().zip(&responses).enumerate() {
                        let outcome = classify_verify(*kind, response);
                        allow(s, i, &outcome);
                        unexpected |= s.tally.count(outcome);
                    }
                }
            }
            if unexpected {
                s.interval_errors += 1;
            }
        }
    }
}

fn progress_bar(plan: &LoadPlan) -> ProgressBar {
    if !plan.progress {
        return ProgressBar::hidden();
    }
    let (len, template) = if plan.requests > 0 {
        (
            plan.requests,
            "{spinner} {prefix:.bold} [{elapsed_precise}] {wide_bar} {pos}/{len} requests  {msg}",
        )
    } else {
        (
            u64::try_from((plan.warmup + plan.duration).as_millis()).unwrap_or(u64::MAX),
            "{spinner} {prefix:.bold} [{elapsed_precise}] {wide_bar}  {msg}",
        )
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(plan.label.clone());
    bar
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

async fn progress_loop(
    shared: Arc<Shared>,
    stats: Vec<Arc<Mutex<Stats>>>,
    bar: ProgressBar,
    mut done: watch::Receiver<bool>,
) -> Vec<TimelinePoint> {
    let mut timeline = Vec::new();
    let Ok(mut merged) = new_histogram() else {
        return timeline;
    };
    let mut last = shared.start;
    let mut errors_total: u64 = 0;
    let mut tick = 1u32;
    loop {
        let next = shared.start + Duration::from_secs(u64::from(tick));
        let finished = !sleep_or_stop(next, &mut done).await;
        let now = Instant::now();
        merged.reset();
        let (mut requests, mut errors, mut measured) = (0, 0, 0);
        for s in &stats {
            let mut s = lock(s);
            let _ = merged.add(&s.interval);
            s.interval.reset();
            requests += s.interval_requests;
            errors += s.interval_errors;
            s.interval_requests = 0;
            s.interval_errors = 0;
            measured += s.measured_requests;
        }
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        last = now;
        let measured_total = measured;
        errors_total += errors;
        let rate = if elapsed > 0.0 {
            requests as f64 / elapsed
        } else {
            0.0
        };
        let in_warmup = now < shared.warm_end;
        let t_s = if in_warmup {
            -shared.warm_end.saturating_duration_since(now).as_secs_f64()
        } else {
            now.saturating_duration_since(shared.warm_end).as_secs_f64()
        };
        if requests > 0 || !finished {
            timeline.push(TimelinePoint {
                t_s,
                requests,
                rate,
                p50_ms: ms(merged.value_at_quantile(0.5)),
                p99_ms: ms(merged.value_at_quantile(0.99)),
                max_ms: ms(merged.max()),
                errors,
            });
        }
        if shared.plan.requests > 0 {
            bar.set_position(measured_total);
        } else {
            bar.set_position(
                u64::try_from(now.saturating_duration_since(shared.start).as_millis())
                    .unwrap_or(u64::MAX),
            );
        }
        let phase = if in_warmup { "warm-up" } else { "measuring" };
        if in_warmup {
            bar.set_message(format!("{phase}  {rate:>9.0} req/s"));
        } else {
            bar.set_message(format!(
                "{phase}  {rate:>9.0} req/s  p99 {:.3} ms  errors {errors_total}",
                ms(merged.value_at_quantile(0.99))
            ));
        }
        if finished {
            break;
        }
        tick += 1;
    }
    timeline
}

async fn run_actions(
    actions: Vec<Action>,
    warm_end: Instant,
    server_pid: Option<u32>,
    mut done: watch::Receiver<bool>,
) -> Vec<ActionLog> {
    let mut logs = Vec::with_capacity(actions.len());
    let mut finished = false;
    for action in actions {
        let mut log = ActionLog {
            kind: action.kind.name().into(),
            at_s: action.at.as_secs_f64(),
            ran_at_s: None,
            result: String::new(),
        };
        if finished || !sleep_or_stop(warm_end + action.at, &mut done).await {
            finished = true;
            log.result = "skipped: the run ended first".into();
            logs.push(log);
            continue;
        }
        log.ran_at_s = Some(
            Instant::now()
                .saturating_duration_since(warm_end)
                .as_secs_f64(),
        );
        log.result = match (action.kind, server_pid) {
            (ActionKind::Sighup, Some(pid)) => {
                match tokio::task::spawn_blocking(move || send_signal(pid, "HUP")).await {
                    Ok(Ok(())) => "ok".into(),
                    Ok(Err(e)) => format!("failed: {e}"),
                    Err(e) => format!("failed: {e}"),
                }
            }
            (ActionKind::Sighup, None) => {
                "failed: no server pid (use --spawn or --server-pid)".into()
            }
        };
        logs.push(log);
    }
    logs
}
