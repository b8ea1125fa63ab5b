//! The publisher: drains the publish queue into the stream (`XADD`, pipelined in batches),
//! records how far it got, trims the stream to its retention and re-publishes own live entries
//! before retention would drop them. Redis being down only delays it: the queue keeps every
//! change and each attempt waits a little longer (backoff) until one lands.

use super::conn::Backoff;
use super::queue::Item;
use super::{Cause, Shared, lock, wire};
use crate::revocation::LogRecord;
use crate::telemetry::names;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Changes per pipelined round trip.
const BATCH: usize = 256;
/// How often the stream is trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(10);

pub(super) async fn run(shared: Arc<Shared>) {
    let mut backoff = Backoff::default();
    let mut next_trim = Instant::now();
    let mut next_refresh = Instant::now() + refresh_every(shared.retention_s);
    loop {
        let mut conn = match shared.connector.connect().await {
            Ok(conn) => conn,
            Err(error) => {
                shared.set_connected(false, false);
                tracing::debug!(%error, "fleet publisher: cannot connect to Redis");
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        shared.set_connected(false, true);
        loop {
            if Instant::now() >= next_refresh {
                next_refresh = Instant::now() + refresh_every(shared.retention_s);
                queue_refreshes(&shared).await;
            }
            let batch = shared.queue.peek(BATCH);
            let outcome = if batch.is_empty() {
                if Instant::now() >= next_trim {
                    next_trim = Instant::now() + TRIM_EVERY;
                    trim(&shared, &mut conn).await
                } else {
                    // Woken by a new change, or at least once a second for the chores above.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        shared.queue.notify.notified(),
                    )
                    .await;
                    Ok(())
                }
            } else {
                publish(&shared, &mut conn, &batch).await
            };
            if let Err(error) = outcome {
                metrics::counter!(names::FLEET_PUBLISH_FAILURES_TOTAL).increment(1);
                tracing::warn!(
                    %error,
                    queued = shared.queue.len(),
                    "fleet: publishing to Redis failed; the changes stay queued and are retried"
                );
                shared.set_connected(false, false);
                tokio::time::sleep(backoff.next_wait()).await;
                break;
            }
            backoff.reset();
        }
    }
}

async fn publish(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    batch: &[Item],
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for item in batch {
        let command = pipe.cmd("XADD").arg(&shared.stream).arg("*");
        for (field, value) in wire::encode(&item.record, &shared.instance_id) {
            command.arg(field).arg(value);
        }
    }
    let _ids: Vec<String> = pipe.query_async(conn).await?;
    let now = (shared.clock)();
    {
        let mut published = lock(&shared.last_published);
        for item in batch {
            match &item.record {
                LogRecord::Add(entry) => {
                    published.insert(entry.id.clone(), now);
                }
                LogRecord::Remove { id, .. } => {
                    published.remove(id);
                }
            }
            metrics::counter!(names::FLEET_PUBLISHED_TOTAL, names::labels::CAUSE => item.cause.label())
                .increment(1);
        }
    }
    if let Some(seq) = shared.queue.ack(batch.len()) {
        shared
            .update_state(|state| state.published_seq = state.published_seq.max(seq))
            .await;
    }
    metrics::gauge!(names::FLEET_PUBLISH_QUEUE).set(shared.queue.len() as f64);
    Ok(())
}

/// Drops stream entries older than the retention (each instance does it; it is idempotent).
async fn trim(shared: &Shared, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    let cut_ms = (shared.clock)()
        .saturating_sub(shared.retention_s)
        .saturating_mul(1000);
    let _: i64 = redis::cmd("XTRIM")
        .arg(&shared.stream)
        .arg("MINID")
        .arg(cut_ms)
        .query_async(conn)
        .await?;
    Ok(())
}

fn refresh_every(retention_s: u64) -> Duration {
    Duration::from_secs((retention_s / 8).clamp(1, 3600))
}

/// Queues (in memory) own live entries last published more than half the retention ago, so
/// the stream never loses a live revocation to trimming. An entry not published since this
/// start counts from its creation.
async fn queue_refreshes(shared: &Arc<Shared>) {
    shared.queue.begin_snapshot();
    let store = Arc::clone(&shared.store);
    let live = tokio::task::spawn_blocking(move || store.list())
        .await
        .unwrap_or_default();
    let now = (shared.clock)();
    let stale_before = now.saturating_sub(shared.retention_s / 2);
    let mut due = Vec::new();
    {
        let mut published = lock(&shared.last_published);
        let ids: std::collections::HashSet<&str> = live.iter().map(|e| e.id.as_str()).collect();
        published.retain(|id, _| ids.contains(id.as_str()));
        for entry in live.iter().filter(|e| e.origin.is_none()) {
            let last = published
                .get(&entry.id)
                .copied()
                .unwrap_or(entry.created_at);
            // Entries expiring before the stream would drop them need no refresh.
            let outlives = entry
                .expires_at
                .is_none_or(|at| at > now + shared.retention_s / 2);
            if last < stale_before && outlives {
                due.push(entry.clone());
                published.insert(entry.id.clone(), now);
            }
        }
    }
    let queued = shared.queue.push_snapshot(due, Cause::Refresh, false);
    if queued > 0 {
        tracing::debug!(
            entries = queued,
            "fleet: refreshing own live entries on the stream"
        );
    }
}
