//! A fleet of verdicts sharing revocations through one Redis stream (`[fleet]`).
//!
//! - Publish ([`publish`]): every change accepted here is queued durably ([`queue`]) inside the
//!   store's change, after the revocation log's fsync, and `XADD`ed by a background task once
//!   Redis answers (retried with backoff; the admin API never waits for Redis).
//! - Consume ([`consume`]): a second connection reads the stream with `XREAD BLOCK` from the
//!   last applied id ([`state`]), applies other instances' changes to the local store (which
//!   logs them and publishes them to every core), deduplicated by entry id, and skips its own.
//!   Until the first replay after start reaches the stream's end, `/readyz` says the fleet is
//!   not caught up.
//! - Gaps: an epoch marker key (`<stream>:epoch`, set once with `SET NX`) changes when Redis
//!   lost its data; `max-deleted-entry-id` beyond the last applied id means entries were trimmed
//!   unread. Either way the instance re-reads the whole stream, re-publishes its own live
//!   entries, logs it and counts it (`verdict_fleet_gaps_total`).
//! - Trimming: `XTRIM MINID` drops what is older than `retention_s`; each instance re-publishes
//!   its own live entries before they would be dropped, so the stream always holds every live
//!   revocation and its size stays bounded.
#![forbid(unsafe_code)]

mod conn;
mod consume;
mod publish;
pub mod queue;
pub mod state;
pub mod wire;

use crate::config::FleetConfig;
use crate::revocation::RevocationStore;
use crate::telemetry::{FleetReadiness, names};
use conn::Connector;
use queue::PublishQueue;
use serde::{Deserialize, Serialize};
use state::State;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why a change is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Accepted here.
    Change,
    /// Own live entry, again after a gap.
    Republish,
    /// Own live entry, again before retention drops it.
    Refresh,
}

impl Cause {
    fn label(self) -> &'static str {
        match self {
            Cause::Change => names::labels::CHANGE,
            Cause::Republish => names::labels::REPUBLISH,
            Cause::Refresh => names::labels::REFRESH,
        }
    }
}

/// A running fleet membership.
#[derive(Debug, Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
}

struct Shared {
    stream: String,
    epoch_key: String,
    retention_s: u64,
    instance_id: String,
    store: Arc<RevocationStore>,
    queue: Arc<PublishQueue>,
    state_path: Option<PathBuf>,
    state: Mutex<State>,
    /// Held across a state write, so writes land one at a time and in order.
    state_write: tokio::sync::Mutex<()>,
    connector: Connector,
    caught_up: AtomicBool,
    reader_connected: AtomicBool,
    writer_connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Own entry id → when it was last published (Unix seconds), for refreshes.
    last_published: Mutex<HashMap<String, u64>>,
    clock: fn() -> u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("stream", &self.stream)
            .field("instance_id", &self.instance_id)
            .field("redis", &self.connector)
            .finish_non_exhaustive()
    }
}

/// `path` with `suffix` appended to its file name (`revocations.log` → `revocations.log.x`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl Fleet {
    /// Joins the fleet `config` names: opens the state and publish queue beside `log_file`
    /// (none = in memory only), hooks the store's changes into the queue, and starts the
    /// publisher and the consumer on `runtime`.
    pub fn start(
        config: &FleetConfig,
        log_file: Option<&Path>,
        store: Arc<RevocationStore>,
        runtime: &tokio::runtime::Handle,
        clock: fn() -> u64,
    ) -> Result<Fleet, String> {
        let connector = Connector::new(config)?;
        let state_path = log_file.map(|p| beside(p, ".fleet-state"));
        let queue_path = log_file.map(|p| beside(p, ".fleet-queue"));
        let state = state::load(state_path.as_deref(), config.instance_id.as_deref())
            .map_err(|e| e.to_string())?;
        let queue = PublishQueue::open(queue_path.as_deref(), state.published_seq)
            .map_err(|e| format!("fleet publish queue: {e}"))?;
        let queue = Arc::new(queue);
        let hook = Arc::clone(&queue);
        if !store.set_observer(Box::new(move |record| {
            hook.push(record.clone(), Cause::Change);
        })) {
            return Err("the revocation store already has an observer".into());
        }
        tracing::info!(
            redis = %connector.shown,
            stream = %config.stream,
            instance = %state.instance_id,
            cursor = %state.cursor,
            queued = queue.len(),
            "fleet: joining"
        );
        let shared = Arc::new(Shared {
            stream: config.stream.clone(),
            epoch_key: format!("{}:epoch", config.stream),
            retention_s: config.retention_s,
            instance_id: state.instance_id.clone(),
            store,
            queue,
            state_path,
            state: Mutex::new(state),
            state_write: tokio::sync::Mutex::new(()),
            connector,
            caught_up: AtomicBool::new(false),
            reader_connected: AtomicBool::new(false),
            writer_connected: AtomicBool::new(false),
            last_error: Mutex::new(Some("not connected to Redis yet".into())),
            last_published: Mutex::new(HashMap::new()),
            clock,
        });
        metrics::gauge!(names::FLEET_CONNECTED).set(0.0);
        metrics::gauge!(names::FLEET_PUBLISH_QUEUE).set(shared.queue.len() as f64);
        runtime.spawn(publish::run(Arc::clone(&shared)));
        runtime.spawn(consume::run(Arc::clone(&shared)));
        Ok(Fleet { shared })
    }

    /// What `/readyz` reports.
    pub fn readiness(&self) -> FleetReadiness {
        let shared = &self.shared;
        let ready = shared.caught_up.load(Ordering::Acquire);
        let connected = shared.connected();
        let error = lock(&shared.last_error).clone();
        FleetReadiness {
            ready,
            connected,
            error: if ready && connected {
                None
            } else if !ready {
                Some(match error {
                    Some(why) => format!("fleet not caught up: {why}"),
                    None => "fleet not caught up: replaying the stream".into(),
                })
            } else {
                error
            },
        }
    }

    /// This instance's id on the stream.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn connected(&self) -> bool {
        self.reader_connected.load(Ordering::Acquire)
            && self.writer_connected.load(Ordering::Acquire)
    }

    fn set_connected(&self, reader: bool, up: bool) {
        let flag = if reader {
            &self.reader_connected
        } else {
            &self.writer_connected
        };
        flag.store(up, Ordering::Release);
        metrics::gauge!(names::FLEET_CONNECTED).set(if self.connected() { 1.0 } else { 0.0 });
    }

    fn set_error(&self, error: Option<String>) {
        *lock(&self.last_error) = error;
    }

    /// Changes the state under its lock and writes it durably (off the async thread).
    async fn update_state(&self, change: impl FnOnce(&mut State)) {
        let _writing = self.state_write.lock().await;
        let snapshot = {
            let mut state = lock(&self.state);
            change(&mut state);
            state.clone()
        };
        let path = self.state_path.clone();
        let saved = tokio::task::spawn_blocking(move || state::save(path.as_deref(), &snapshot))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(error) = saved {
            tracing::warn!(%error, "fleet: cannot write the fleet state (it is re-derived: entries may be read or published again)");
        }
    }

    fn state(&self) -> State {
        lock(&self.state).clone()
    }

    /// Queues every own live entry for publication again (after a gap), durably.
    async fn republish_own(&self) -> usize {
        self.queue.begin_snapshot();
        let store = Arc::clone(&self.store);
        let queue = Arc::clone(&self.queue);
        tokio::task::spawn_blocking(move || {
            let own: Vec<_> = store
                .list()
                .into_iter()
                .filter(|entry| entry.origin.is_none())
                .collect();
            queue.push_snapshot(own, Cause::Republish, true)
        })
        .await
        .unwrap_or(0)
    }
}
