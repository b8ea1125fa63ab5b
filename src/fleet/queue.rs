//! The publish queue: local changes waiting to reach the stream, kept durably so a change
//! accepted while Redis is unreachable (or just before a crash) is still published later.
//!
//! Each change is appended, as one JSON line with a sequence number, to a file beside the
//! revocation log and fsynced, inside the store's change (before the admin API answers). The
//! fleet state's `published_seq` says how far the file has been published; once everything is,
//! the file is emptied. Refreshes (live entries published again before the stream's retention
//! would drop them) are queued in memory only: they are derived from the log at any time.

use super::Cause;
use crate::revocation::{LogRecord, Revocation};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One queued change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its sequence number in the file; `None` for one queued in memory only.
    pub seq: Option<u64>,
    /// Why it is published.
    pub cause: Cause,
    /// The change.
    pub record: LogRecord,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    cause: Cause,
    record: LogRecord,
}

/// The queue.
#[derive(Debug)]
pub struct PublishQueue {
    inner: Mutex<Inner>,
    /// Wakes the publisher.
    pub notify: tokio::sync::Notify,
}

#[derive(Debug)]
struct Inner {
    path: Option<PathBuf>,
    file: Option<File>,
    pending: VecDeque<Item>,
    next_seq: u64,
    /// Lines in the file (published or not), to know when emptying it is worth it.
    lines: usize,
    /// Ids removed since [`PublishQueue::begin_snapshot`]: a snapshot of live entries taken
    /// before the removal must not publish them again after it.
    removed: std::collections::HashSet<String>,
}

impl PublishQueue {
    /// Opens the queue file at `path` (none = in memory only) and keeps the lines not yet
    /// published (sequence above `published_seq`). An unreadable line (a torn last append) is
    /// skipped with a warning.
    pub fn open(path: Option<&Path>, published_seq: u64) -> std::io::Result<PublishQueue> {
        let mut pending = VecDeque::new();
        let mut next_seq = published_seq + 1;
        let mut lines = 0;
        let file = match path {
            Some(path) => {
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(path)?;
                for (number, line) in BufReader::new(&file).lines().enumerate() {
                    let line = line?;
                    lines += 1;
                    match serde_json::from_str::<Line>(&line) {
                        Ok(line) if line.seq > published_seq => {
                            next_seq = next_seq.max(line.seq + 1);
                            pending.push_back(Item {
                                seq: Some(line.seq),
                                cause: line.cause,
                                record: line.record,
                            });
                        }
                        Ok(line) => next_seq = next_seq.max(line.seq + 1),
                        Err(error) => tracing::warn!(
                            file = %path.display(),
                            line = number + 1,
                            %error,
                            "fleet publish queue: unreadable line skipped"
                        ),
                    }
                }
                Some(file)
            }
            None => None,
        };
        Ok(PublishQueue {
            inner: Mutex::new(Inner {
                path: path.map(Path::to_owned),
                file,
                pending,
                next_seq,
                lines,
                removed: std::collections::HashSet::new(),
            }),
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Sets the queue-depth gauge.
    fn gauge(&self, depth: usize) {
        metrics::gauge!(crate::telemetry::names::FLEET_PUBLISH_QUEUE).set(depth as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `record` durably (appended and fsynced before this returns). A write failure is
    /// logged and the change stays queued in memory: it is enforced here either way.
    pub fn push(&self, record: LogRecord, cause: Cause) {
        let depth = {
            let mut inner = self.lock();
            Self::push_locked(&mut inner, record, cause, true);
            inner.pending.len()
        };
        self.gauge(depth);
        self.notify.notify_one();
    }

    /// Appends one change (fsynced when `sync`: a batch syncs once, after its last line).
    fn push_locked(inner: &mut Inner, record: LogRecord, cause: Cause, sync: bool) {
        {
            if let LogRecord::Remove { id, .. } = &record {
                inner.removed.insert(id.clone());
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            if let Some(file) = &mut inner.file {
                let line = Line {
                    seq,
                    cause,
                    record: record.clone(),
                };
                let written = serde_json::to_vec(&line)
                    .map_err(std::io::Error::other)
                    .and_then(|mut bytes| {
                        bytes.push(b'\n');
                        file.write_all(&bytes)?;
                        if sync { file.sync_data() } else { Ok(()) }
                    });
                match written {
                    Ok(()) => inner.lines += 1,
                    Err(error) => tracing::error!(
                        %error,
                        "fleet publish queue: cannot write the queue file; the change is queued in memory only"
                    ),
                }
            }
            inner.pending.push_back(Item {
                seq: Some(seq),
                cause,
                record,
            });
        }
    }

    /// Starts a snapshot of live entries (call before listing them): removals from now on are
    /// remembered so [`PublishQueue::push_snapshot`] skips what they removed.
    pub fn begin_snapshot(&self) {
        self.lock().removed.clear();
    }

    /// Queues adds of `entries` (listed after [`PublishQueue::begin_snapshot`]) except those
    /// removed since: durably, or in memory only (a refresh). Returns how many were queued.
    pub fn push_snapshot(&self, entries: Vec<Revocation>, cause: Cause, durable: bool) -> usize {
        let mut queued = 0;
        {
            let mut inner = self.lock();
            for entry in entries {
                if inner.removed.contains(&entry.id) {
                    continue;
                }
                queued += 1;
                if durable {
                    Self::push_locked(&mut inner, LogRecord::Add(entry), cause, false);
                } else {
                    inner.pending.push_back(Item {
                        seq: None,
                        cause,
                        record: LogRecord::Add(entry),
                    });
                }
            }
            if durable
                && queued > 0
                && let Some(file) = &inner.file
                && let Err(error) = file.sync_data()
            {
                tracing::error!(%error, "fleet publish queue: cannot sync the queue file");
            }
            self.gauge(inner.pending.len());
        }
        self.notify.notify_one();
        queued
    }

    /// The first `max` queued changes, still queued.
    pub fn peek(&self, max: usize) -> Vec<Item> {
        self.lock().pending.iter().take(max).cloned().collect()
    }

    /// Changes queued.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the first `count` changes (published); returns the highest file sequence among
    /// them, if any. Empties the file once nothing durable is pending.
    pub fn ack(&self, count: usize) -> Option<u64> {
        let mut inner = self.lock();
        let mut highest = None;
        for _ in 0..count {
            if let Some(item) = inner.pending.pop_front()
                && let Some(seq) = item.seq
            {
                highest = Some(seq);
            }
        }
        let durable_pending = inner.pending.iter().any(|item| item.seq.is_some());
        if !durable_pending && inner.lines > 0 {
            let emptied = inner.file.as_ref().map(|file| file.set_len(0));
            match emptied {
                Some(Ok(())) => inner.lines = 0,
                Some(Err(error)) => {
                    let file = inner.path.as_ref().map(|p| p.display().to_string());
                    tracing::warn!(?file, %error, "fleet publish queue: cannot empty the file");
                }
                None => {}
            }
        }
        self.gauge(inner.pending.len());
        highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(id: &str) -> LogRecord {
        LogRecord::Remove {
            id: id.into(),
            at: 1,
        }
    }

    #[test]
    fn unpublished_changes_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("verdict-fleet-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q");
        let _ = std::fs::remove_file(&path);
        let queue = PublishQueue::open(Some(&path), 0).expect("open");
        queue.push(remove("a"), Cause::Change);
        queue.push(remove("b"), Cause::Change);
        queue.begin_snapshot();
        queue.push(remove("gone"), Cause::Change);
        let live = |id: &str| Revocation {
            id: id.into(),
            provider: "corp".into(),
            selector: crate::revocation::Selector::Sub(id.into()),
            reason: None,
            created_at: 1,
            expires_at: None,
            origin: None,
        };
        // "gone" was removed after the snapshot was listed: it is not published again.
        assert_eq!(
            queue.push_snapshot(vec![live("c"), live("gone")], Cause::Refresh, false),
            1
        );
        assert_eq!(queue.ack(1), Some(1));
        assert_eq!(queue.ack(1), Some(2));
        drop(queue);
        // Restarted with "a" and "b" published: "gone" is still queued, the refresh is not.
        let queue = PublishQueue::open(Some(&path), 2).expect("reopen");
        let items = queue.peek(10);
        assert_eq!(items.len(), 1);
        assert_eq!(items.first().map(|i| &i.record), Some(&remove("gone")));
        assert_eq!(queue.ack(1), Some(3));
        assert_eq!(std::fs::metadata(&path).expect("file").len(), 0);
        queue.push(remove("d"), Cause::Change);
        assert_eq!(queue.peek(1).first().and_then(|i| i.seq), Some(4));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
