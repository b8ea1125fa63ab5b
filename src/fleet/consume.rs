//! The consumer: reads the stream with `XREAD BLOCK` from the last applied id, applies other
//! instances' changes to the local store, and keeps the cursor durable. On every (re)connection
//! and once a second it checks for gaps (epoch marker changed: Redis lost its data; entries
//! deleted past the cursor: trimmed unread) and measures the lag.

use super::conn::Backoff;
use super::{Shared, wire};
use crate::telemetry::names;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadReply};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Entries per `XREAD`.
const READ_COUNT: usize = 512;
/// How long one `XREAD` waits for new entries (ms); also the period of the gap and lag checks.
const BLOCK_MS: u64 = 1000;
/// Entries counted at most when measuring the lag.
const LAG_COUNT_MAX: usize = 10_000;

/// Why a session with Redis ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// A change could not be applied locally (the revocation log could not be written): the
    /// cursor stays before it and it is read again.
    #[error("applying a fleet change failed: {0}")]
    Apply(String),
}

pub(super) async fn run(shared: Arc<Shared>) {
    let started = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        let mut conn = match shared.connector.connect().await {
            Ok(conn) => conn,
            Err(error) => {
                shared.set_connected(true, false);
                shared.set_error(Some(format!(
                    "cannot connect to Redis at {}: {error}",
                    shared.connector.shown
                )));
                tracing::debug!(%error, "fleet consumer: cannot connect to Redis");
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        shared.set_connected(true, true);
        tracing::info!(redis = %shared.connector.shown, "fleet: connected");
        let error = session(&shared, &mut conn, &mut backoff, started).await;
        shared.set_connected(true, false);
        shared.set_error(Some(format!("Redis connection lost: {error}")));
        tracing::warn!(%error, "fleet: connection to Redis lost; resuming from the last applied id once it is back");
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

async fn session(
    shared: &Arc<Shared>,
    conn: &mut MultiplexedConnection,
    backoff: &mut Backoff,
    started: Instant,
) -> SessionError {
    match serve(shared, conn, backoff, started).await {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

async fn serve(
    shared: &Arc<Shared>,
    conn: &mut MultiplexedConnection,
    backoff: &mut Backoff,
    started: Instant,
) -> Result<std::convert::Infallible, SessionError> {
    let mut info = check_gaps(shared, conn).await?;
    // The end of the stream as of now: reaching it is the catch-up `/readyz` waits for.
    let target = info.last_generated;
    shared.set_error(None);
    let mut next_check = Instant::now() + Duration::from_millis(BLOCK_MS);
    loop {
        let cursor = shared.state().cursor;
        if !shared.caught_up.load(Ordering::Acquire)
            && target.is_none_or(|end| wire::parse_id(&cursor).is_some_and(|at| at >= end))
        {
            shared.caught_up.store(true, Ordering::Release);
            tracing::info!(
                cursor = %cursor,
                ms = started.elapsed().as_millis() as u64,
                "fleet: caught up with the stream"
            );
        }
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&shared.stream)
            .arg(&cursor)
            .query_async(conn)
            .await?;
        backoff.reset();
        let entries: Vec<&StreamId> = reply
            .iter()
            .flat_map(|r| r.keys.iter())
            .flat_map(|k| k.ids.iter())
            .collect();
        if let Some(last) = entries.last().map(|e| e.id.clone()) {
            // Applied as one batch (one log fsync); on failure the cursor stays before it.
            apply(shared, &entries).await.map_err(SessionError::Apply)?;
            if let Some((ms, _)) = wire::parse_id(&last) {
                metrics::gauge!(names::FLEET_LAST_APPLIED_ID_MS).set(ms as f64);
            }
            shared.update_state(|state| state.cursor = last).await;
        }
        if Instant::now() >= next_check {
            next_check = Instant::now() + Duration::from_millis(BLOCK_MS);
            info = check_gaps(shared, conn).await?;
            measure_lag(shared, conn, &info).await?;
        }
    }
}

/// Applies stream entries (other instances' only) to the store as one batch.
async fn apply(shared: &Arc<Shared>, entries: &[&StreamId]) -> Result<(), String> {
    let mut changes = Vec::with_capacity(entries.len());
    let mut published_ms = Vec::with_capacity(entries.len());
    for entry in entries {
        match wire::decode(&entry.map) {
            Ok((origin, _)) if origin == shared.instance_id => {}
            Ok((_, record)) => {
                changes.push(record);
                published_ms.push(wire::parse_id(&entry.id).map_or(0, |(ms, _)| ms));
            }
            Err(error) => {
                tracing::warn!(id = %entry.id, %error, "fleet: unreadable stream entry skipped");
            }
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let now = (shared.clock)();
    let store = Arc::clone(&shared.store);
    let changed = tokio::task::spawn_blocking(move || store.apply_remote_batch(changes, now))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for (changed, ms) in changed.into_iter().zip(published_ms) {
        let result = if changed {
            metrics::histogram!(names::FLEET_APPLY_DELAY_SECONDS)
                .record(now_ms.saturating_sub(ms) as f64 / 1000.0);
            names::labels::APPLIED
        } else {
            names::labels::DUPLICATE
        };
        metrics::counter!(names::FLEET_APPLIED_TOTAL, names::labels::RESULT => result).increment(1);
    }
    Ok(())
}

/// What `XINFO STREAM` says (all `None` while the stream does not exist).
#[derive(Debug, Default)]
struct StreamInfo {
    last_generated: Option<(u64, u64)>,
    max_deleted: Option<(u64, u64)>,
}

async fn stream_info(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<StreamInfo> {
    let reply: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(&shared.stream)
        .query_async(conn)
        .await;
    let value = match reply {
        Ok(value) => value,
        // No stream yet: nothing to catch up with, nothing trimmed.
        Err(error) if error.to_string().contains("no such key") => {
            return Ok(StreamInfo::default());
        }
        Err(error) => return Err(error),
    };
    let pairs: Vec<(redis::Value, redis::Value)> = match value {
        redis::Value::Map(pairs) => pairs,
        redis::Value::Array(items) => {
            let mut pairs = Vec::new();
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        _ => Vec::new(),
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let mut info = StreamInfo::default();
    for (key, value) in &pairs {
        match text(key).as_deref() {
            Some("last-generated-id") => {
                info.last_generated = text(value).and_then(|id| wire::parse_id(&id));
            }
            Some("max-deleted-entry-id") => {
                info.max_deleted = text(value).and_then(|id| wire::parse_id(&id));
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Checks the epoch marker and trimming against the cursor; on a gap, re-reads from the start
/// and re-publishes own live entries. Returns the stream's info.
async fn check_gaps(
    shared: &Arc<Shared>,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<StreamInfo> {
    let fresh = super::state::fresh_epoch();
    let _: Option<String> = redis::cmd("SET")
        .arg(&shared.epoch_key)
        .arg(&fresh)
        .arg("NX")
        .query_async(conn)
        .await?;
    let current: Option<String> = redis::cmd("GET")
        .arg(&shared.epoch_key)
        .query_async(conn)
        .await?;
    let current = current.unwrap_or(fresh);
    let state = shared.state();
    match &state.epoch {
        None => {
            let epoch = current.clone();
            shared.update_state(|s| s.epoch = Some(epoch)).await;
        }
        Some(seen) if *seen == current => {}
        Some(_) => {
            gap(shared, names::labels::RESET, &state.cursor, &current).await;
        }
    }
    let info = stream_info(shared, conn).await?;
    let cursor = shared.state().cursor;
    let at = wire::parse_id(&cursor).filter(|_| cursor != wire::START);
    if let Some(at) = at {
        if info.last_generated.is_none_or(|end| end < at) {
            // The stream ends before what this instance already read: a failover to a replica
            // that had not received the last entries (the epoch survived), or the stream was
            // deleted. Entries may be gone: treat it as a reset.
            gap(shared, names::labels::RESET, &cursor, &current).await;
        } else if info.max_deleted.is_some_and(|deleted| deleted > at) {
            gap(shared, names::labels::TRIMMED, &cursor, &current).await;
        }
    }
    Ok(info)
}

async fn gap(shared: &Arc<Shared>, cause: &'static str, cursor: &str, epoch: &str) {
    metrics::counter!(names::FLEET_GAPS_TOTAL, names::labels::CAUSE => cause).increment(1);
    let republished = shared.republish_own().await;
    tracing::warn!(
        cause,
        cursor,
        republished,
        "fleet: gap in the stream (entries this instance had not read are gone); re-reading it \
         from the start and publishing this instance's live entries again"
    );
    let epoch = epoch.to_owned();
    shared
        .update_state(|s| {
            s.epoch = Some(epoch);
            s.cursor = wire::START.to_owned();
        })
        .await;
}

/// Sets the lag gauges: entries after the cursor (counted up to [`LAG_COUNT_MAX`]) and the
/// age of the oldest of them.
async fn measure_lag(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    info: &StreamInfo,
) -> redis::RedisResult<()> {
    let cursor = shared.state().cursor;
    let behind = match (info.last_generated, wire::parse_id(&cursor)) {
        (Some(end), Some(at)) => end > at,
        _ => false,
    };
    let (entries, seconds) = if behind {
        let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&shared.stream)
            .arg(format!("({cursor}"))
            .arg("+")
            .arg("COUNT")
            .arg(LAG_COUNT_MAX)
            .query_async(conn)
            .await?;
        let oldest = ids
            .first()
            .and_then(|(id, _)| wire::parse_id(id))
            .map_or(0, |(ms, _)| ms);
        let now_ms = (shared.clock)().saturating_mul(1000);
        (ids.len(), now_ms.saturating_sub(oldest) as f64 / 1000.0)
    } else {
        (0, 0.0)
    };
    metrics::gauge!(names::FLEET_LAG_ENTRIES).set(entries as f64);
    metrics::gauge!(names::FLEET_LAG_SECONDS).set(seconds);
    metrics::gauge!(names::FLEET_PUBLISH_QUEUE).set(shared.queue.len() as f64);
    Ok(())
}
