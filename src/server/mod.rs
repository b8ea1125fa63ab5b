//! `verdict serve`: wires configuration, key sets, the gRPC services, the thread-per-core
//! runtime and the admin listener together, and handles signals (SIGHUP reload, SIGTERM/SIGINT
//! graceful shutdown).
#![forbid(unsafe_code)]

mod key_sources;

pub use key_sources::probe_remote;

use crate::config::{self, Config, KeySource, ProviderConfig};
use crate::crypto::{self as engines, Backend, EngineChoice};
use crate::fleet::Fleet;
use crate::jose::b64;
use crate::policy::Providers;
use crate::revocation::RevocationStore;
use crate::rpc::admin::{AdminApi, AdminToken, admin_api_router};
use crate::rpc::admin_grpc::RevocationAdminService;
use crate::rpc::ext_authz::ExtAuthz;
use crate::rpc::forward_auth::{self, ForwardAuth};
use crate::rpc::proto::revocation_admin_server::RevocationAdminServer;
use crate::rpc::proto::verifier_server::VerifierServer;
use crate::rpc::verifier::VerifierService;
use crate::rpc::{ServiceState, observe, system_clock};
use crate::runtime::{self, RuntimeOptions, ServeFn};
use crate::telemetry::{self, ProviderReadiness, Readiness, Telemetry, names};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
use key_sources::{Snapshot, SourceTask};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Exit status when the server cannot start (bad config, port in use).
pub const EXIT_START_FAILURE: u8 = 1;

/// How `serve` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The config file; `None` starts the embedded demo.
    pub config: Option<PathBuf>,
    /// Overrides `server.log_format`.
    pub log_format: Option<telemetry::LogFormat>,
}

/// The demo issuer's key, generated at start; only the public half leaves this process.
struct Demo {
    token: String,
}

/// Shards of each answer cache: enough that writers on different cores rarely share one.
const ANSWER_CACHE_SHARDS: usize = 64;

/// Builds the verification backend `[crypto]` asks for: loads and probes crypto_mb when it may
/// be used (and, for `auto`, measures it against aws-lc-rs), logs one line naming the engine of
/// every algorithm, and sets `verdict_engine_selected{alg,engine}`. Whatever crypto_mb cannot
/// do stays on aws-lc-rs. Read once at start: a reload keeps the engines.
fn choose_engines(crypto: &config::CryptoConfig) -> Arc<dyn Backend> {
    let choice = match crypto.backend {
        config::CryptoBackend::Auto => EngineChoice::Auto,
        config::CryptoBackend::AwsLc => EngineChoice::AwsLc,
        config::CryptoBackend::CryptoMb => EngineChoice::CryptoMb,
        config::CryptoBackend::Openssl => EngineChoice::Openssl,
    };
    let selection = engines::select(
        choice,
        crypto.crypto_mb_library.as_deref(),
        &crypto.openssl_options(),
        crypto.auto_benchmark,
    );
    for note in &selection.notes {
        if matches!(choice, EngineChoice::CryptoMb | EngineChoice::Openssl) {
            tracing::warn!(%note, "signature engine fallback");
        } else {
            tracing::info!(%note, "signature engine fallback");
        }
    }
    tracing::info!(
        backend = crypto.backend.name(),
        engines = %selection.summary(),
        "signature engines"
    );
    for chosen in &selection.per_algorithm {
        metrics::gauge!(
            names::ENGINE_SELECTED,
            names::labels::ALG => chosen.alg.name(),
            names::labels::ENGINE => chosen.engine,
        )
        .set(1.0);
    }
    selection.backend
}

/// Runs the appliance until SIGTERM/SIGINT.
pub fn serve(options: ServeOptions) -> ExitCode {
    let (config, demo) = match &options.config {
        Some(path) => match config::load(path) {
            Ok(config) => (config, None),
            Err(error) => {
                eprintln!("verdict: {error}");
                return ExitCode::from(crate::cli::EXIT_USAGE);
            }
        },
        None => match demo_config() {
            Ok((config, demo)) => (config, Some(demo)),
            Err(error) => {
                eprintln!("verdict: cannot set up the demo: {error}");
                return ExitCode::from(EXIT_START_FAILURE);
            }
        },
    };
    let log_format = options
        .log_format
        .unwrap_or(match config.server.log_format {
            config::LogFormat::Text => telemetry::LogFormat::Text,
            config::LogFormat::Json => telemetry::LogFormat::Json,
        });
    telemetry::init_logging(log_format);
    // One descriptor per gateway connection: lift the soft limit to the hard one, as proxies do,
    // so a default 1024 does not cap connections far below `max_connections`.
    match rlimit::increase_nofile_limit(config.server.max_connections as u64 + 1024) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    for warning in config.warnings() {
        tracing::warn!(%warning, "config");
    }
    let telemetry = match Telemetry::install() {
        Ok(t) => t,
        Err(error) => {
            eprintln!("verdict: {error}");
            return ExitCode::from(EXIT_START_FAILURE);
        }
    };
    // The control runtime: signals, the admin listener, key fetches and introspection calls.
    let control = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("verdict: cannot build the control runtime: {error}");
            return ExitCode::from(EXIT_START_FAILURE);
        }
    };
    let backend = choose_engines(&config.crypto);
    let snapshot = Snapshot {
        providers: Arc::new(ArcSwap::from_pointee(Providers::default())),
        epoch: Arc::new(AtomicU64::new(0)),
    };
    let (providers, sources) = key_sources::build(
        &config,
        &backend,
        &snapshot,
        control.handle(),
        None,
        system_clock(),
    );
    snapshot.providers.store(Arc::new(providers));
    // Sized once at start: a reload keeps the caches (answers of the old configuration are
    // never served again; see `policy::cached`).
    let answers = match crate::rpc::answers::Answers::new(&config.cache, ANSWER_CACHE_SHARDS) {
        Ok(answers) => answers.map(Arc::new),
        Err(error) => {
            eprintln!("verdict: {error}");
            return ExitCode::from(EXIT_START_FAILURE);
        }
    };
    let revocations = match open_revocations(&config) {
        Ok(store) => Arc::new(store),
        Err(message) => {
            eprintln!("verdict: {message}");
            return ExitCode::from(EXIT_START_FAILURE);
        }
    };
    let fleet = match join_fleet(&config, &revocations, control.handle()) {
        Ok(fleet) => fleet,
        Err(message) => {
            eprintln!("verdict: {message}");
            return ExitCode::from(EXIT_START_FAILURE);
        }
    };
    let state = ServiceState {
        providers: Arc::clone(&snapshot.providers),
        backend,
        clock: system_clock,
        answers,
        revocations: revocations.published(),
    };
    let keys = KeyWiring {
        snapshot,
        sources,
        revocations,
        fleet,
    };
    match run(
        config,
        options.config,
        state,
        keys,
        control,
        telemetry,
        demo,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("verdict: {message}");
            ExitCode::from(EXIT_START_FAILURE)
        }
    }
}

/// The shared snapshot and the first configuration's source tasks, spawned once the control
/// runtime exists.
struct KeyWiring {
    snapshot: Snapshot,
    sources: Vec<SourceTask>,
    revocations: Arc<RevocationStore>,
    fleet: Option<Fleet>,
}

fn run(
    config: Config,
    config_path: Option<PathBuf>,
    state: ServiceState,
    keys: KeyWiring,
    control: tokio::runtime::Runtime,
    telemetry: Arc<Telemetry>,
    demo: Option<Demo>,
) -> Result<(), String> {
    let grpc_listener = std::net::TcpListener::bind(config.server.grpc_listen).map_err(|e| {
        format!(
            "server.grpc_listen: cannot listen on {}: {e}",
            config.server.grpc_listen
        )
    })?;
    let admin_listener = std::net::TcpListener::bind(config.server.admin_listen).map_err(|e| {
        format!(
            "server.admin_listen: cannot listen on {}: {e}",
            config.server.admin_listen
        )
    })?;
    let forward_auth_listener = match config.server.forward_auth_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("server.forward_auth_listen: cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let grpc_addr = grpc_listener.local_addr().map_err(|e| e.to_string())?;
    let forward_auth_addr = match &forward_auth_listener {
        Some(listener) => Some(listener.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    control.block_on(async {
        health_reporter
            .set_serving::<AuthorizationServer<ExtAuthz>>()
            .await;
        health_reporter
            .set_serving::<VerifierServer<VerifierService>>()
            .await;
        health_reporter
            .set_serving::<RevocationAdminServer<RevocationAdminService>>()
            .await;
    });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::rpc::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("cannot build reflection: {e}"))?;

    // The audit files are created before anything is served: a directory verdict cannot write
    // to fails the start, not the first check.
    let audit = match &config.audit.dir {
        Some(dir) => {
            let workers = runtime::placement::plan(config.server.workers).cores.len();
            let options = telemetry::audit::AuditOptions {
                dir: dir.clone(),
                max_file_bytes: config.audit.max_file_bytes,
                queue_lines: config.audit.queue_lines,
            };
            let log = telemetry::audit::AuditLog::open(&options, workers).map_err(|e| {
                format!(
                    "audit.dir: cannot write the audit log in {}: {e}",
                    dir.display()
                )
            })?;
            Some(Arc::new(log))
        }
        None => None,
    };

    // One admin state for both admin APIs: the HTTP routes on the admin listener and
    // `verdict.v1.RevocationAdmin` on every worker.
    let admin_api = AdminApi {
        token: AdminToken::load(&config.admin)?,
        store: Arc::clone(&keys.revocations),
        providers: Arc::clone(&state.providers),
        clock: system_clock,
    };

    let grpc_options = crate::rpc::grpc_server::GrpcOptions {
        keepalive_interval: Duration::from_secs(30),
        max_connection_age: (config.server.max_connection_age_s > 0)
            .then(|| Duration::from_secs(config.server.max_connection_age_s)),
        max_connection_age_grace: Duration::from_secs(10),
        max_concurrent_streams: config.server.grpc_max_concurrent_streams,
    };
    let serve_state = state.clone();
    let serve_admin = admin_api.clone();
    let serve_audit = audit.clone();
    let serve_telemetry = Arc::clone(&telemetry);
    let serve: ServeFn = Arc::new(move |ctx, incoming, shutdown| {
        observe::install_latency_recorder(serve_telemetry.latency_recorder(ctx.index));
        if let Some(audit) = &serve_audit {
            match audit.writer(ctx.index) {
                Some(writer) => telemetry::audit::install_writer(writer),
                None => tracing::error!(worker = ctx.index, "no audit writer for this worker"),
            }
        }
        let routes = tonic::service::Routes::new(AuthorizationServer::new(ExtAuthz::new(
            serve_state.clone(),
        )))
        .add_service(VerifierServer::new(VerifierService::new(
            serve_state.clone(),
        )))
        .add_service(RevocationAdminService::server(serve_admin.clone()))
        .add_service(health_service.clone())
        .add_service(reflection.clone());
        Box::pin(crate::rpc::grpc_server::serve(
            ExtAuthz::new(serve_state.clone()),
            routes,
            grpc_options,
            incoming,
            shutdown,
        ))
    });
    let mut listeners = vec![runtime::Listener {
        socket: grpc_listener,
        serve,
    }];
    if let Some(socket) = forward_auth_listener {
        // Served by the same workers; the latency recorder and audit writer the gRPC serve
        // installs on each worker thread above record these checks too.
        let forward_auth = ForwardAuth::new(state.clone());
        let defaults = forward_auth::Limits::default();
        let limits = forward_auth::Limits {
            idle_timeout: Duration::from_secs(config.server.forward_auth_idle_timeout_s),
            // Room for the longest accepted token beside the other headers.
            max_header_bytes: defaults
                .max_header_bytes
                .max(config.server.max_token_bytes.saturating_add(8 * 1024)),
            ..defaults
        };
        let serve: ServeFn = Arc::new(move |_ctx, incoming, shutdown| {
            Box::pin(forward_auth::serve(
                forward_auth.clone(),
                limits,
                incoming,
                shutdown,
            ))
        });
        listeners.push(runtime::Listener { socket, serve });
    }
    let running = runtime::start_listeners(
        RuntimeOptions {
            workers: config.server.workers,
            io_uring: config.server.io_uring,
            max_connections: config.server.max_connections,
        },
        listeners,
    )
    .map_err(|e| format!("cannot start workers: {e}"))?;

    // The admin listener runs on the control runtime: it never competes with check traffic.
    let readiness_state = state.clone();
    let readiness_fleet = keys.fleet.clone();
    let readiness: Arc<dyn Fn() -> Readiness + Send + Sync> = Arc::new(move || Readiness {
        fleet: readiness_fleet.as_ref().map(Fleet::readiness),
        ..readiness_of(&readiness_state.providers.load(), system_clock())
    });
    let router = telemetry::admin_router(Arc::clone(&telemetry), readiness)
        .merge(admin_api_router(admin_api));
    let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin_task = control.block_on(async {
        admin_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(admin_listener)?;
        Ok::<_, std::io::Error>(tokio::spawn(telemetry::serve_admin(
            listener,
            router,
            async move {
                let _ = admin_stop_rx.await;
            },
        )))
    });
    let admin_task = admin_task.map_err(|e| format!("server.admin_listen: {e}"))?;

    tracing::info!(
        grpc = %grpc_addr,
        admin = %admin_addr,
        forward_auth = forward_auth_addr.map(|a| a.to_string()),
        workers = running.workers(),
        "verdict serving"
    );
    if let Some(demo) = &demo {
        print_demo_banner(grpc_addr, admin_addr, demo);
    }

    let drain = Duration::from_secs(config.server.drain_timeout_s);
    let tasks = keys.sources.into_iter().map(|t| control.spawn(t)).collect();
    let purge = control.spawn(purge_expired_revocations(Arc::clone(&keys.revocations)));
    control.block_on(control_loop(
        config,
        config_path,
        &state,
        &keys.snapshot,
        tasks,
    ));
    purge.abort();
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    let drained = running.join(drain);
    if !drained {
        tracing::warn!(timeout_s = drain.as_secs(), "drain timed out");
    }
    if let Some(audit) = &audit {
        // After the drain: every answered check's line is queued; write them all.
        audit.shutdown();
    }
    let _ = admin_stop_tx.send(());
    control.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(2), admin_task).await;
    });
    tracing::info!("stopped");
    Ok(())
}

/// Opens the revocation store from `[revocation]`, replaying its log.
fn open_revocations(config: &Config) -> Result<RevocationStore, String> {
    let log_file = config.revocation.log_file.as_deref();
    let started = std::time::Instant::now();
    let (store, opened) = RevocationStore::open_with(
        log_file,
        config.revocation.max_entries,
        system_clock(),
        config.server.io_uring,
    )
    .map_err(|e| format!("revocation.log_file: {e}"))?;
    match log_file {
        Some(path) => tracing::info!(
            log = %path.display(),
            live = opened.live,
            records = opened.records,
            expired = opened.expired,
            torn_bytes = opened.torn_bytes,
            io_uring = opened.io_uring,
            ms = started.elapsed().as_millis() as u64,
            "revocations loaded"
        ),
        None => tracing::warn!(
            "revocation.log_file is not set: revocations are kept in memory only and lost on restart"
        ),
    }
    if opened.torn_bytes > 0 {
        tracing::warn!(
            bytes = opened.torn_bytes,
            "the revocation log ended in a torn (never acknowledged) line; it was cut off"
        );
    }
    Ok(store)
}

/// Joins the fleet `[fleet]` names, if any: its tasks run on the control runtime.
fn join_fleet(
    config: &Config,
    store: &Arc<RevocationStore>,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<Fleet>, String> {
    if !config.fleet.enabled() {
        return Ok(None);
    }
    Fleet::start(
        &config.fleet,
        config.revocation.log_file.as_deref(),
        Arc::clone(store),
        runtime,
        system_clock,
    )
    .map(Some)
}

/// Drops expired revocations once a second (off the request path).
async fn purge_expired_revocations(store: Arc<RevocationStore>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || store.purge_expired(system_clock())).await;
    }
}

/// Waits for signals: SIGHUP reloads, SIGTERM/SIGINT return. Also keeps the key-set gauges
/// current.
async fn control_loop(
    mut config: Config,
    config_path: Option<PathBuf>,
    state: &ServiceState,
    snapshot: &Snapshot,
    mut sources: Vec<tokio::task::JoinHandle<()>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                if let Some(path) = &config_path {
                    config = reload(path, config, state, snapshot, &mut sources);
                } else {
                    tracing::info!("SIGHUP: the demo has no config file to reload");
                }
            }
            _ = tick.tick() => publish_keyset_gauges(&state.providers.load(), system_clock()),
        }
    }
}

/// Loads the config again; a bad one is refused and the old one keeps serving.
/// The new configuration's providers carry over the keys of remote providers whose source is
/// unchanged, and its source tasks replace the old ones.
fn reload(
    path: &Path,
    current: Config,
    state: &ServiceState,
    snapshot: &Snapshot,
    sources: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Config {
    match config::load(path) {
        Ok(new) => {
            if new.server.grpc_listen != current.server.grpc_listen
                || new.server.admin_listen != current.server.admin_listen
                || new.server.forward_auth_listen != current.server.forward_auth_listen
                || new.server.forward_auth_idle_timeout_s
                    != current.server.forward_auth_idle_timeout_s
                || new.server.workers != current.server.workers
                || new.server.grpc_max_concurrent_streams
                    != current.server.grpc_max_concurrent_streams
                || new.server.max_connection_age_s != current.server.max_connection_age_s
                || new.audit != current.audit
            {
                tracing::warn!(
                    "reload: listener settings, workers and [audit] only change on restart; keeping the running ones"
                );
            }
            let previous = state.providers.load_full();
            let (providers, tasks) = key_sources::build(
                &new,
                &state.backend,
                snapshot,
                &tokio::runtime::Handle::current(),
                Some((&current, &previous)),
                system_clock(),
            );
            for old in sources.drain(..) {
                old.abort();
            }
            state.providers.store(Arc::new(providers));
            sources.extend(tasks.into_iter().map(tokio::spawn));
            metrics::counter!(names::CONFIG_RELOADS_TOTAL, names::labels::RESULT => "ok")
                .increment(1);
            tracing::info!(file = %path.display(), "configuration reloaded");
            new
        }
        Err(error) => {
            metrics::counter!(names::CONFIG_RELOADS_TOTAL, names::labels::RESULT => "error")
                .increment(1);
            tracing::error!(%error, "reload refused; the previous configuration keeps serving");
            current
        }
    }
}

fn readiness_of(providers: &Providers, now: u64) -> Readiness {
    Readiness {
        providers: providers
            .list()
            .iter()
            .map(|p| ProviderReadiness {
                name: p.name.clone(),
                ready: !p.keys.is_empty() || p.introspection.is_some(),
                keys: p.keys.len(),
                age_s: p.keys_loaded_at.map(|at| now.saturating_sub(at)),
                error: match &p.introspection {
                    Some(client) if client.breaker_open() => Some(
                        "introspection endpoint failing: circuit open, calls refused".to_owned(),
                    ),
                    _ => p.keys_error.clone(),
                },
            })
            .collect(),
        fleet: None,
    }
}

fn publish_keyset_gauges(providers: &Providers, now: u64) {
    for p in providers.list() {
        if let Some(at) = p.keys_loaded_at {
            metrics::gauge!(names::KEYSET_AGE_SECONDS, names::labels::PROVIDER => p.name.clone())
                .set(now.saturating_sub(at) as f64);
        }
        metrics::gauge!(names::KEYSET_STALE_SECONDS, names::labels::PROVIDER => p.name.clone())
            .set(p.key_state().stale_s(now) as f64);
        if let Some(client) = &p.introspection {
            metrics::gauge!(names::INTROSPECTION_CIRCUIT_OPEN, names::labels::PROVIDER => p.name.clone())
                .set(if client.breaker_open() { 1.0 } else { 0.0 });
        }
        metrics::gauge!(names::KEYSET_KEYS, names::labels::PROVIDER => p.name.clone())
            .set(p.keys.len() as f64);
    }
}

/// The demo: one provider whose Ed25519 key is generated now, an inline JWKS, loopback
/// listeners at the defaults, and a token valid for a day.
fn demo_config() -> Result<(Config, Demo), String> {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let key = Ed25519KeyPair::generate().map_err(|e| format!("key generation failed: {e}"))?;
    let x = b64::encode(key.public_key().as_ref());
    let jwks = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"demo-1","use":"sig","alg":"EdDSA","x":"{x}"}}]}}"#
    );
    let issuer = "https://demo.verdict.local";
    let mut provider = ProviderConfig::new("demo", issuer, KeySource::Inline(jwks));
    provider.audiences = vec!["api://demo".into()];
    provider.claims_to_headers = [
        ("sub".to_owned(), "x-verdict-sub".to_owned()),
        ("scope".to_owned(), "x-verdict-scope".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = Config {
        server: config::ServerConfig::default(),
        admin: config::AdminConfig::default(),
        cache: config::CacheConfig::default(),
        revocation: config::RevocationConfig::default(),
        fleet: config::FleetConfig::default(),
        audit: config::AuditConfig::default(),
        crypto: config::CryptoConfig::default(),
        providers: vec![provider],
    };
    let now = system_clock();
    let header = b64::encode(br#"{"alg":"EdDSA","kid":"demo-1","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": issuer,
        "sub": "demo-user",
        "aud": "api://demo",
        "scope": "demo:read",
        "iat": now,
        "exp": now + 86_400,
    });
    let payload = b64::encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = key.sign(signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64::encode(signature.as_ref()));
    Ok((config, Demo { token }))
}

fn print_demo_banner(grpc: std::net::SocketAddr, admin: std::net::SocketAddr, demo: &Demo) {
    println!("verdict demo: no config given, so an issuer key was generated for this run.");
    println!("  ext_authz + verdict.v1 gRPC: {grpc}");
    println!("  admin (metrics, health):     http://{admin}/metrics  /healthz  /readyz");
    println!();
    println!("Sample token (issuer https://demo.verdict.local, audience api://demo, valid 24 h):");
    println!("  {}", demo.token);
    println!();
    println!("Check it through ext_authz from another terminal:");
    println!(
        "  cargo run --release -- authz --addr {grpc} {}",
        demo.token
    );
    println!();
    println!("Stop with Ctrl-C.");
}
