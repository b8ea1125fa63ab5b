//! Thread-per-core: placement, pinning, one single-threaded runtime per worker, the acceptor
//! that balances connections across workers, and shutdown. No business logic lives here: a
//! worker runs whatever `serve` future it is given over its own stream of connections.
//!
//! Each worker runs a tokio-uring runtime where io_uring is available (for the files the
//! server writes), otherwise a plain tokio current-thread runtime; sockets stay on tokio's
//! reactor either way. No work-stealing runtime is on the request path.

pub mod balance;
pub mod batcher;
pub mod conn;
pub mod placement;
pub mod uring_probe;

use crate::telemetry::names;
use balance::Loads;
use conn::CountedStream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// Which runtime a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// tokio-uring (io_uring for file I/O).
    IoUring,
    /// tokio current-thread.
    Tokio,
}

impl RuntimeKind {
    /// The metric/log label.
    pub fn label(self) -> &'static str {
        match self {
            RuntimeKind::IoUring => "io_uring",
            RuntimeKind::Tokio => "tokio",
        }
    }
}

/// What a worker knows about itself.
#[derive(Debug, Clone, Copy)]
pub struct WorkerContext {
    /// Worker index (0-based).
    pub index: usize,
    /// The core it is pinned to, if pinned.
    pub core: Option<usize>,
    /// Its runtime.
    pub kind: RuntimeKind,
}

/// The connections handed to one worker.
pub type Incoming = Pin<Box<dyn Stream<Item = io::Result<CountedStream>> + Send>>;

/// A future that resolves when the server should stop accepting and drain.
pub type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Builds the serving future of one worker, on that worker's thread.
pub type ServeFn = Arc<
    dyn Fn(WorkerContext, Incoming, ShutdownSignal) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Runtime options (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Workers (0 = one per CPU in the affinity mask).
    pub workers: usize,
    /// Try io_uring first.
    pub io_uring: bool,
    /// Connections beyond this wait in the listen backlog until one closes.
    pub max_connections: usize,
}

/// A running set of workers and their acceptor.
#[derive(Debug)]
pub struct Running {
    workers: Vec<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    loads: Arc<Loads>,
}

/// One listener and the serving future its connections are handed to on every worker.
pub struct Listener {
    /// The bound socket.
    pub socket: std::net::TcpListener,
    /// What each worker runs over the connections accepted here.
    pub serve: ServeFn,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// Starts the acceptor on `listener` and the workers.
pub fn start(
    options: RuntimeOptions,
    listener: std::net::TcpListener,
    serve: ServeFn,
) -> io::Result<Running> {
    start_listeners(
        options,
        vec![Listener {
            socket: listener,
            serve,
        }],
    )
}

/// Starts the workers and one acceptor for all of `listeners`: every accepted connection, from
/// whichever listener, goes to the least-loaded worker (one count across listeners, so
/// `max_connections` bounds them together), which serves it with that listener's `serve`.
pub fn start_listeners(options: RuntimeOptions, listeners: Vec<Listener>) -> io::Result<Running> {
    let placement = placement::plan(options.workers);
    let loads = Loads::new(placement.cores.len());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let serves: Vec<ServeFn> = listeners.iter().map(|l| Arc::clone(&l.serve)).collect();
    // senders[listener][worker]
    let mut senders: Vec<Vec<mpsc::UnboundedSender<std::net::TcpStream>>> =
        listeners.iter().map(|_| Vec::new()).collect();
    let mut workers = Vec::with_capacity(placement.cores.len());
    for (index, core) in placement.cores.iter().copied().enumerate() {
        let mut receivers = Vec::with_capacity(serves.len());
        for per_listener in &mut senders {
            let (tx, rx) = mpsc::unbounded_channel::<std::net::TcpStream>();
            per_listener.push(tx);
            receivers.push(rx);
        }
        let served: Vec<_> = receivers.into_iter().zip(serves.iter().cloned()).collect();
        let loads = Arc::clone(&loads);
        let shutdown = shutdown_rx.clone();
        let io_uring = options.io_uring;
        workers.push(
            std::thread::Builder::new()
                .name(format!("verdict-w{index}"))
                .spawn(move || run_worker(index, core, io_uring, served, loads, shutdown))?,
        );
    }
    let mut sockets = Vec::with_capacity(listeners.len());
    for listener in listeners {
        listener.socket.set_nonblocking(true)?;
        sockets.push(listener.socket);
    }
    let acceptor_loads = Arc::clone(&loads);
    let acceptor_shutdown = shutdown_rx;
    let max_connections = options.max_connections;
    let acceptor = std::thread::Builder::new()
        .name("verdict-accept".into())
        .spawn(move || {
            accept_all(
                sockets,
                senders,
                acceptor_loads,
                acceptor_shutdown,
                max_connections,
            )
        })?;
    Ok(Running {
        workers,
        acceptor: Some(acceptor),
        shutdown: shutdown_tx,
        loads,
    })
}

impl Running {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Open connections per worker.
    pub fn loads(&self) -> &Arc<Loads> {
        &self.loads
    }

    /// Stops accepting and tells every worker to drain.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits up to `timeout` for workers to finish draining; true when all did.
    pub fn join(mut self, timeout: Duration) -> bool {
        self.begin_shutdown();
        let deadline = Instant::now() + timeout;
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        while Instant::now() < deadline {
            if self.workers.iter().all(JoinHandle::is_finished) {
                for worker in self.workers.drain(..) {
                    let _ = worker.join();
                }
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// The connections of one listener handed to a worker, and what serves them.
type Served = (mpsc::UnboundedReceiver<std::net::TcpStream>, ServeFn);

fn run_worker(
    index: usize,
    core: Option<usize>,
    io_uring: bool,
    served: Vec<Served>,
    loads: Arc<Loads>,
    shutdown: watch::Receiver<bool>,
) {
    let pinned = core.is_some_and(placement::pin_current_thread);
    let make = move |kind: RuntimeKind| {
        let ctx = WorkerContext {
            index,
            core: if pinned { core } else { None },
            kind,
        };
        metrics::gauge!(
            names::WORKER_RUNTIME,
            names::labels::WORKER => index.to_string(),
            names::labels::KIND => kind.label()
        )
        .set(1.0);
        tracing::info!(
            worker = index,
            core = ?ctx.core,
            runtime = kind.label(),
            "worker started"
        );
        let serving: Vec<_> = served
            .into_iter()
            .map(|(rx, serve)| {
                let worker_loads = Arc::clone(&loads);
                let incoming: Incoming = Box::pin(UnboundedReceiverStream::new(rx).filter_map(
                    move |std_stream| match tokio::net::TcpStream::from_std(std_stream) {
                        Ok(stream) => Some(Ok(CountedStream::new(
                            stream,
                            index,
                            Arc::clone(&worker_loads),
                        ))),
                        Err(error) => {
                            worker_loads.release(index);
                            tracing::warn!(worker = index, %error, "dropping a handed-over connection");
                            None
                        }
                    },
                ));
                let mut shutdown = shutdown.clone();
                let signal: ShutdownSignal = Box::pin(async move {
                    while !*shutdown.borrow() {
                        if shutdown.changed().await.is_err() {
                            break;
                        }
                    }
                });
                serve(ctx, incoming, signal)
            })
            .collect();
        async move {
            // Each listener's serving future runs as a task of this worker's runtime (one
            // thread: they share the core and its thread-locals).
            let handles: Vec<_> = serving.into_iter().map(tokio::spawn).collect();
            for handle in handles {
                let _ = handle.await;
            }
        }
    };
    if io_uring {
        if let Ok(runtime) = tokio_uring::Runtime::new(&tokio_uring::builder()) {
            runtime.block_on(make(RuntimeKind::IoUring));
            return;
        }
        tracing::info!(
            worker = index,
            "io_uring unavailable; using the tokio runtime"
        );
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(make(RuntimeKind::Tokio)),
        Err(error) => tracing::error!(worker = index, %error, "cannot build the worker runtime"),
    }
}

/// The acceptor thread: one task per listener on one current-thread runtime.
fn accept_all(
    listeners: Vec<std::net::TcpListener>,
    senders: Vec<Vec<mpsc::UnboundedSender<std::net::TcpStream>>>,
    loads: Arc<Loads>,
    shutdown: watch::Receiver<bool>,
    max_connections: usize,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot build the acceptor runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for (listener, senders) in listeners.into_iter().zip(senders) {
            tasks.spawn(accept_loop(
                listener,
                senders,
                Arc::clone(&loads),
                shutdown.clone(),
                max_connections,
            ));
        }
        while tasks.join_next().await.is_some() {}
    });
}

async fn accept_loop(
    listener: std::net::TcpListener,
    senders: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    loads: Arc<Loads>,
    mut shutdown: watch::Receiver<bool>,
    max_connections: usize,
) {
    {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "cannot register the listener");
                return;
            }
        };
        let mut at_limit = false;
        loop {
            // At the limit, leave new connections in the listen backlog, as
            // `server.max_connections` documents: they are served as soon as a slot frees.
            // (Accepting and closing them, as this loop used to, fails clients that would have
            // been served a moment later.) Only the acceptor thread adds load; with several
            // listeners the count can pass the limit by at most one connection per listener.
            if loads.total() >= max_connections {
                if !at_limit {
                    tracing::warn!(
                        max_connections,
                        "connection limit reached; new connections wait in the listen backlog"
                    );
                    at_limit = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => continue,
                    _ = shutdown.changed() => break,
                }
            }
            at_limit = false;
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => break,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(std_stream) = stream.into_std() else {
                continue;
            };
            let worker = loads.assign();
            metrics::counter!(
                names::CONNECTIONS_ACCEPTED_TOTAL,
                names::labels::WORKER => worker.to_string()
            )
            .increment(1);
            let sent = senders
                .get(worker)
                .map(|tx| tx.send(std_stream).is_ok())
                .unwrap_or(false);
            if !sent {
                loads.release(worker);
            }
        }
    }
}
