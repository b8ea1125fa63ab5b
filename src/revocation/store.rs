//! The live revocations: the authoritative entries behind the published [`RevocationSet`], kept
//! durable through the [`RevocationLog`].
//!
//! Every change runs under one mutex (admin calls only; the request path reads the published
//! snapshot and never takes it): log first (fsynced), then the entries, then a new snapshot is
//! published. So an acknowledged change is both durable and enforced.

use super::log::{LogError, LogRecord, RevocationLog};
use super::set::{KeySet, MAX_DELTA, RevocationSet};
use super::{Revocation, Selector, provider_hash};
use crate::telemetry::names;
use arc_swap::ArcSwap;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// A revocation as the API asks for it (validated by the caller, which knows the providers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    /// The provider.
    pub provider: String,
    /// What it matches.
    pub selector: Selector,
    /// Why.
    pub reason: Option<String>,
    /// When it can be forgotten, if ever.
    pub expires_at: Option<u64>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The log could not be written: nothing changed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// No live entry has this id.
    #[error("no revocation with id {0:?}")]
    NotFound(String),
    /// `max_entries` live entries already.
    #[error("the revocation set is full ({0} entries)")]
    Full(usize),
}

/// What opening the store found, for the start-up log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Live entries after replay.
    pub live: usize,
    /// Log records replayed.
    pub records: usize,
    /// Entries dropped because they had expired.
    pub expired: usize,
    /// Bytes of a torn last line cut off.
    pub torn_bytes: usize,
    /// Whether appends go through io_uring.
    pub io_uring: bool,
}

/// Told of every change accepted here (not of those applied from the fleet), in log order,
/// after the log append and before the change is acknowledged: the fleet's publish queue.
pub type ChangeObserver = Box<dyn Fn(&LogRecord) + Send + Sync>;

/// The store.
pub struct RevocationStore {
    inner: Mutex<Inner>,
    published: Arc<ArcSwap<RevocationSet>>,
    max_entries: usize,
    observer: std::sync::OnceLock<ChangeObserver>,
}

impl std::fmt::Debug for RevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationStore")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Inner {
    log: Option<RevocationLog>,
    entries: HashMap<String, Revocation>,
    /// (provider, selector) → id: one live entry per selector, so a repeated POST is idempotent.
    by_selector: HashMap<(String, Selector), String>,
    /// Hashed key → live entries holding it.
    counts: HashMap<u64, u32>,
    /// (expires_at, id) of entries that expire.
    expiries: BTreeSet<(u64, String)>,
    snapshot: RevocationSet,
    /// Replaying the log: the base is built once at the end instead of deltas on the way.
    bulk: bool,
}

impl RevocationStore {
    /// Opens the store: replays the log at `log_path` (none = in memory only), drops what has
    /// expired by `now`, and publishes the result.
    pub fn open(
        log_path: Option<&Path>,
        max_entries: usize,
        now: u64,
    ) -> Result<(RevocationStore, Opened), LogError> {
        Self::open_with(log_path, max_entries, now, true)
    }

    /// [`RevocationStore::open`], choosing whether appends may use io_uring.
    pub fn open_with(
        log_path: Option<&Path>,
        max_entries: usize,
        now: u64,
        io_uring: bool,
    ) -> Result<(RevocationStore, Opened), LogError> {
        let mut inner = Inner {
            bulk: true,
            ..Inner::default()
        };
        let mut opened = Opened::default();
        if let Some(path) = log_path {
            let (log, replay) = RevocationLog::open(path, io_uring)?;
            opened.io_uring = log.uses_io_uring();
            opened.records = replay.records.len();
            opened.torn_bytes = replay.torn_bytes;
            for record in replay.records {
                match record {
                    LogRecord::Add(entry) => inner.insert(entry),
                    LogRecord::Remove { id, .. } => {
                        inner.delete(&id);
                    }
                }
            }
            inner.log = Some(log);
        }
        opened.expired = inner.purge(now).len();
        inner.rebuild_base();
        inner.bulk = false;
        opened.live = inner.entries.len();
        let store = RevocationStore {
            published: Arc::new(ArcSwap::from_pointee(inner.snapshot.clone())),
            inner: Mutex::new(inner),
            max_entries,
            observer: std::sync::OnceLock::new(),
        };
        {
            let mut inner = store.lock();
            store.maybe_compact(&mut inner);
            store.publish(&inner);
        }
        Ok((store, opened))
    }

    /// The published snapshot, for every core to load on every check.
    pub fn published(&self) -> Arc<ArcSwap<RevocationSet>> {
        Arc::clone(&self.published)
    }

    /// Adds a revocation durably and publishes it. Returns the entry and whether it is new
    /// (`false`: an identical live entry already existed and is returned instead).
    pub fn add(&self, new: NewRevocation, now: u64) -> Result<(Revocation, bool), StoreError> {
        let mut inner = self.lock();
        let selector_key = (new.provider.clone(), new.selector.clone());
        if let Some(id) = inner.by_selector.get(&selector_key)
            && let Some(existing) = inner.entries.get(id)
        {
            return Ok((existing.clone(), false));
        }
        if inner.entries.len() >= self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        let entry = Revocation {
            id: new_id(),
            provider: new.provider,
            selector: new.selector,
            reason: new.reason,
            created_at: now,
            expires_at: new.expires_at,
            origin: None,
        };
        let record = LogRecord::Add(entry.clone());
        if let Some(log) = &mut inner.log {
            let fsync = log.append(&record)?;
            metrics::histogram!(names::REVOCATION_LOG_FSYNC_SECONDS).record(fsync.as_secs_f64());
        }
        self.observe(&record);
        metrics::counter!(names::REVOCATIONS_TOTAL, names::labels::KIND => entry.selector.kind())
            .increment(1);
        inner.insert(entry.clone());
        self.maybe_compact(&mut inner);
        self.publish(&inner);
        Ok((entry, true))
    }

    /// Removes the entry `id` durably and publishes the change.
    pub fn remove(&self, id: &str, now: u64) -> Result<Revocation, StoreError> {
        let mut inner = self.lock();
        if !inner.entries.contains_key(id) {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let record = LogRecord::Remove {
            id: id.to_owned(),
            at: now,
        };
        if let Some(log) = &mut inner.log {
            let fsync = log.append(&record)?;
            metrics::histogram!(names::REVOCATION_LOG_FSYNC_SECONDS).record(fsync.as_secs_f64());
        }
        self.observe(&record);
        let removed = inner
            .delete(id)
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        self.maybe_compact(&mut inner);
        self.publish(&inner);
        Ok(removed)
    }

    /// Sets the [`ChangeObserver`] (once; a second call is refused with `false`).
    pub fn set_observer(&self, observer: ChangeObserver) -> bool {
        self.observer.set(observer).is_ok()
    }

    fn observe(&self, record: &LogRecord) {
        if let Some(observer) = self.observer.get() {
            observer(record);
        }
    }

    /// Applies an entry accepted by another fleet instance, keeping its id: durably logged and
    /// published like a local one, but not told to the observer. Returns `false` (nothing
    /// changed) when an entry with this id is already live or it has expired by `now`.
    /// `max_entries` does not apply: refusing another instance's revocation would leave a hole.
    pub fn apply_remote(&self, entry: Revocation, now: u64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.entries.contains_key(&entry.id) || entry.expired(now) {
            return Ok(false);
        }
        if let Some(log) = &mut inner.log {
            let fsync = log.append(&LogRecord::Add(entry.clone()))?;
            metrics::histogram!(names::REVOCATION_LOG_FSYNC_SECONDS).record(fsync.as_secs_f64());
        }
        inner.insert(entry);
        self.maybe_compact(&mut inner);
        self.publish(&inner);
        Ok(true)
    }

    /// Applies a batch of other fleet instances' changes, in order, with one log write and one
    /// fsync, then publishes once: each add keeps its id, duplicates (an id already live, or
    /// expired by `now`) and removals of unknown ids change nothing. Not told to the observer;
    /// `max_entries` does not apply. Returns, per change, whether it changed the set.
    pub fn apply_remote_batch(
        &self,
        changes: Vec<LogRecord>,
        now: u64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut inner = self.lock();
        let mut present: HashMap<&str, bool> = HashMap::new();
        let mut effective = Vec::with_capacity(changes.len());
        for change in &changes {
            let (id, add) = match change {
                LogRecord::Add(entry) => (entry.id.as_str(), Some(entry)),
                LogRecord::Remove { id, .. } => (id.as_str(), None),
            };
            let live = *present
                .entry(id)
                .or_insert_with(|| inner.entries.contains_key(id));
            let changes_set = match add {
                Some(entry) => !live && !entry.expired(now),
                None => live,
            };
            if changes_set {
                present.insert(id, add.is_some());
            }
            effective.push(changes_set);
        }
        let logged: Vec<LogRecord> = changes
            .iter()
            .zip(&effective)
            .filter(|(_, changed)| **changed)
            .map(|(change, _)| change.clone())
            .collect();
        if logged.is_empty() {
            return Ok(effective);
        }
        if let Some(log) = &mut inner.log {
            let fsync = log.append_all(&logged)?;
            metrics::histogram!(names::REVOCATION_LOG_FSYNC_SECONDS).record(fsync.as_secs_f64());
        }
        for change in logged {
            match change {
                LogRecord::Add(entry) => inner.insert(entry),
                LogRecord::Remove { id, .. } => {
                    inner.delete(&id);
                }
            }
        }
        self.maybe_compact(&mut inner);
        self.publish(&inner);
        Ok(effective)
    }

    /// Applies a removal made by another fleet instance: durably, not told to the observer.
    /// Returns `false` when no entry has this id (already removed, or never seen).
    pub fn remove_remote(&self, id: &str, at: u64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.entries.contains_key(id) {
            return Ok(false);
        }
        if let Some(log) = &mut inner.log {
            let record = LogRecord::Remove {
                id: id.to_owned(),
                at,
            };
            let fsync = log.append(&record)?;
            metrics::histogram!(names::REVOCATION_LOG_FSYNC_SECONDS).record(fsync.as_secs_f64());
        }
        inner.delete(id);
        self.maybe_compact(&mut inner);
        self.publish(&inner);
        Ok(true)
    }

    /// The live entries, oldest first.
    pub fn list(&self) -> Vec<Revocation> {
        let inner = self.lock();
        let mut entries: Vec<Revocation> = inner.entries.values().cloned().collect();
        entries.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        entries
    }

    /// Drops the entries expired at `now` (no log line: expiry follows from the entry itself,
    /// and replay drops them again); returns how many.
    pub fn purge_expired(&self, now: u64) -> usize {
        let mut inner = self.lock();
        let purged = inner.purge(now).len();
        if purged > 0 {
            self.maybe_compact(&mut inner);
            self.publish(&inner);
        }
        purged
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the entries half-changed in a way that
        // matters more than refusing every later admin call would: keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, inner: &Inner) {
        self.published.store(Arc::new(inner.snapshot.clone()));
        let mut by_kind = [0usize; super::SELECTOR_KINDS.len()];
        for entry in inner.entries.values() {
            if let Some(count) = super::SELECTOR_KINDS
                .iter()
                .position(|k| *k == entry.selector.kind())
                .and_then(|slot| by_kind.get_mut(slot))
            {
                *count += 1;
            }
        }
        for (kind, count) in super::SELECTOR_KINDS.iter().zip(by_kind) {
            metrics::gauge!(names::REVOCATIONS, names::labels::KIND => *kind).set(count as f64);
        }
    }

    /// Rewrites the log once it holds more than twice the live entries (and some slack), so
    /// its size, and the time to replay it, stay proportional to what is live.
    fn maybe_compact(&self, inner: &mut Inner) {
        let live = inner.entries.len();
        let Some(log) = &mut inner.log else {
            return;
        };
        if log.lines() <= 2 * live + 1024 {
            return;
        }
        let mut entries: Vec<&Revocation> = inner.entries.values().collect();
        entries.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        if let Err(error) = log.compact(entries.into_iter()) {
            // The old log is still whole (the rename is the commit point): keep appending to it.
            tracing::warn!(%error, "revocation log compaction failed; will retry");
        }
    }
}

impl Inner {
    fn insert(&mut self, entry: Revocation) {
        if self.entries.contains_key(&entry.id) {
            return;
        }
        // Two instances of a fleet may revoke the same selector at once: both entries stay live
        // (either keeps it revoked); a repeated POST answers the first.
        self.by_selector
            .entry((entry.provider.clone(), entry.selector.clone()))
            .or_insert_with(|| entry.id.clone());
        if let Some(key) = entry.selector.key(&entry.provider) {
            let count = self.counts.entry(key).or_insert(0);
            *count += 1;
            if *count == 1 {
                self.mark(key, true);
            }
        }
        if let Some(at) = entry.expires_at {
            self.expiries.insert((at, entry.id.clone()));
        }
        let issued_before = matches!(entry.selector, Selector::IssuedBefore(_));
        let provider = entry.provider.clone();
        self.entries.insert(entry.id.clone(), entry);
        if issued_before {
            self.refresh_issued_before(&provider);
        }
        self.snapshot.entries = self.entries.len();
    }

    fn delete(&mut self, id: &str) -> Option<Revocation> {
        let entry = self.entries.remove(id)?;
        let selector_key = (entry.provider.clone(), entry.selector.clone());
        if self.by_selector.get(&selector_key).is_some_and(|i| i == id) {
            self.by_selector.remove(&selector_key);
        }
        if let Some(key) = entry.selector.key(&entry.provider)
            && let Some(count) = self.counts.get_mut(&key)
        {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&key);
                self.mark(key, false);
            }
        }
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, entry.id.clone()));
        }
        if matches!(entry.selector, Selector::IssuedBefore(_)) {
            self.refresh_issued_before(&entry.provider);
        }
        self.snapshot.entries = self.entries.len();
        Some(entry)
    }

    fn purge(&mut self, now: u64) -> Vec<Revocation> {
        let mut purged = Vec::new();
        while let Some((at, id)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(entry) = self.delete(&id) {
                purged.push(entry);
            }
        }
        purged
    }

    /// Records that `key` is (or is no longer) revoked in the snapshot's delta, folding the
    /// delta into a new base once it grows large.
    fn mark(&mut self, key: u64, revoked: bool) {
        if self.bulk {
            return;
        }
        let snapshot = &mut self.snapshot;
        let in_base = snapshot.base.contains(&key);
        snapshot.added.remove(&key);
        snapshot.removed.remove(&key);
        match (revoked, in_base) {
            (true, false) => {
                snapshot.added.insert(key);
            }
            (false, true) => {
                snapshot.removed.insert(key);
            }
            _ => {}
        }
        if snapshot.added.len() + snapshot.removed.len() > MAX_DELTA {
            self.rebuild_base();
        }
    }

    fn rebuild_base(&mut self) {
        let mut base = KeySet::default();
        base.reserve(self.counts.len());
        base.extend(self.counts.keys().copied());
        self.snapshot.base = Arc::new(base);
        self.snapshot.added.clear();
        self.snapshot.removed.clear();
    }

    fn refresh_issued_before(&mut self, provider: &str) {
        let bound = self
            .entries
            .values()
            .filter(|e| e.provider == provider)
            .filter_map(|e| match e.selector {
                Selector::IssuedBefore(t) => Some(t),
                _ => None,
            })
            .max();
        let hash = provider_hash(provider);
        match bound {
            Some(t) => {
                self.snapshot.issued_before.insert(hash, t);
            }
            None => {
                self.snapshot.issued_before.remove(&hash);
            }
        }
    }
}

/// A fresh entry id: `rv-` and 16 random hex digits.
fn new_id() -> String {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failing is not expected; fall back to time and a counter, which are
        // still unique within this process (ids need to be unique, not secret).
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)).to_be_bytes();
    }
    let mut id = String::with_capacity(19);
    id.push_str("rv-");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}
