//! The tamper-evident decision log (`[audit] dir`): one line per ext_authz check, in one
//! hash-chained JSON-lines file per worker; [`verify_chain`] (`verdict audit verify FILE`)
//! checks a file.
//!
//! Design choices:
//!
//! - **Off the request path.** Each worker thread has its own [`AuditWriter`] in a
//!   thread-local ([`install_writer`], like the latency recorder). [`record`] pushes one small
//!   [`Entry`] (no formatting, no hashing but the token digest, no I/O) into the worker's
//!   bounded queue: a `Vec` behind a mutex that only that worker and its writer thread touch,
//!   the writer holding it just long enough to swap in an empty `Vec`. A full queue never
//!   blocks the check: the line is dropped and counted
//!   (`verdict_audit_lines_total{result="dropped"}`). Senders never wake the writer (no
//!   syscall per check); the writer wakes every [`FLUSH_INTERVAL`].
//! - **One writer thread per worker**, so a worker's lines keep their order and its chain has
//!   a single author, and writing scales with the workers. Each batch is formatted, hashed and
//!   appended with one `write` (plain buffered file I/O, not io_uring: one syscall per batch
//!   is already cheap, and the file stays out of the workers' rings). Lines reach the kernel
//!   within a flush interval (they survive a crash of the process); the file is fsynced when
//!   it is closed (rotation, shutdown), so a power loss can lose the unsynced tail.
//! - **Files.** `worker-<n>-<start unix time>-<part>.jsonl` (part zero-padded to 6 digits, so
//!   a worker's files of one run sort in order); a file is closed and the next part opened once
//!   it has passed `max_file_bytes`. Files are created, never reopened or overwritten.
//! - **Lines.** One JSON object per line, keys always in this order:
//!   `{"seq":1,"time":1764769680.123,"worker":0,"decision":"allow","reason":"ok",
//!   "provider":"corp","sub":"alice","token_sha256":"0123456789abcdef","latency_us":42,
//!   "prev":"<64 hex>","hash":"<64 hex>"}`. `time` is Unix seconds with milliseconds; `reason`
//!   is the stable reject code (`ok` when allowed); `provider` is omitted when no provider was
//!   selected, `sub` unless allowed (and cut at [`MAX_SUB_BYTES`]), `token_sha256` when there
//!   was no credential. `token_sha256` is the first 8 bytes (hex) of SHA-256 of the raw token,
//!   so an operator holding a token can find its lines; the token itself is never written.
//! - **The chain.** `seq` counts the file's lines from 1. `hash` = SHA-256(previous hash, 32
//!   bytes ‖ the line's exact bytes without `,"hash":"…"`), and `prev` is the previous line's
//!   `hash`. A file's first `prev` is its genesis value: for a worker's first file a digest of
//!   the worker, the start time and 16 random bytes; after a rotation, the last hash of the
//!   file before (so a run's files also link up). Each file therefore verifies on its own.
//!   An edited line fails its hash; a deleted, inserted, duplicated or moved line breaks `seq`
//!   (or the `prev` link); a rewritten hash fails too. What a chain alone cannot show is a
//!   truncated tail (the file simply ends earlier) or a file rewritten from the edited line
//!   on by someone who recomputes every later hash: there is no secret in the chain. Ship the
//!   files (or the last hash, which is logged when a file is closed and printed by `verify`)
//!   off the host to anchor them.
#![forbid(unsafe_code)]

use super::names;
use aws_lc_rs::digest::{Context, SHA256, digest};
use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a writer thread drains its worker's queue.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// Bytes of the token's SHA-256 kept in a line.
pub const TOKEN_DIGEST_BYTES: usize = 8;
/// Longest `sub` written (longer ones are cut at a character boundary).
pub const MAX_SUB_BYTES: usize = 1024;
/// Longest line [`verify_chain`] reads; verdict's own lines stay far below it.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Bytes of a hash.
const HASH_BYTES: usize = 32;
/// What ends every line (before its newline): `,"hash":"` 64 hex digits `"}`.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
const HASH_TAIL_BYTES: usize = HASH_FIELD.len() + 2 * HASH_BYTES + 2;

/// One audited decision, as a worker hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the check was answered, in Unix milliseconds.
    pub time_ms: u64,
    /// Allowed (`true`) or denied.
    pub allowed: bool,
    /// The reject code, or `ok`.
    pub reason: &'static str,
    /// The provider that judged the token, when one was selected.
    pub provider: Option<String>,
    /// The token's `sub`, when allowed and present.
    pub sub: Option<String>,
    /// The first bytes of SHA-256 of the raw token, when there was one.
    pub token: Option<[u8; TOKEN_DIGEST_BYTES]>,
    /// How long the check took, in microseconds.
    pub latency_us: u64,
}

impl Entry {
    /// The [`Entry::token`] digest prefix of `token`.
    pub fn token_digest(token: &[u8]) -> [u8; TOKEN_DIGEST_BYTES] {
        let full = digest(&SHA256, token);
        let mut prefix = [0; TOKEN_DIGEST_BYTES];
        for (out, byte) in prefix.iter_mut().zip(full.as_ref()) {
            *out = *byte;
        }
        prefix
    }
}

/// The current Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---- The request path: the per-worker queue and its thread-local handle ----

struct Pending {
    entries: Vec<Entry>,
    /// Set by the writer's last drain: later entries are dropped.
    closed: bool,
}

/// A worker's bounded queue of entries waiting for its writer thread.
struct Queue {
    pending: Mutex<Pending>,
    capacity: usize,
}

impl Queue {
    fn new(capacity: usize) -> Queue {
        Queue {
            pending: Mutex::new(Pending {
                entries: Vec::new(),
                closed: false,
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `entry`; false (the entry dropped) when the queue is full or closed.
    fn push(&self, entry: Entry) -> bool {
        let mut pending = self.lock();
        if pending.closed || pending.entries.len() >= self.capacity {
            return false;
        }
        pending.entries.push(entry);
        true
    }
}

/// One worker's handle on its audit queue (cheap to clone).
#[derive(Clone)]
pub struct AuditWriter {
    queue: Arc<Queue>,
}

impl fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditWriter")
            .field("capacity", &self.queue.capacity)
            .finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Queues one entry without blocking on I/O; a full queue drops it (and counts it).
    pub fn record(&self, entry: Entry) {
        if !self.queue.push(entry) {
            metrics::counter!(names::AUDIT_LINES_TOTAL, names::labels::RESULT => names::labels::DROPPED)
                .increment(1);
        }
    }
}

thread_local! {
    static WRITER: RefCell<Option<AuditWriter>> = const { RefCell::new(None) };
}

/// Gives the current (worker) thread its audit writer.
pub fn install_writer(writer: AuditWriter) {
    WRITER.with(|slot| *slot.borrow_mut() = Some(writer));
}

/// Whether the current thread audits its checks (so callers skip building entries otherwise).
pub fn auditing() -> bool {
    WRITER.with(|slot| slot.try_borrow().is_ok_and(|w| w.is_some()))
}

/// Records one entry on the current thread's writer; a no-op on a thread without one.
pub fn record(entry: Entry) {
    WRITER.with(|slot| {
        if let Ok(slot) = slot.try_borrow()
            && let Some(writer) = slot.as_ref()
        {
            writer.record(entry);
        }
    });
}

// ---- The writer threads ----

/// Where and how the audit log is written (from `[audit]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// The directory of the files (created if missing).
    pub dir: PathBuf,
    /// A file is closed and the next opened once it has grown past this.
    pub max_file_bytes: u64,
    /// Entries each worker may have queued.
    pub queue_lines: usize,
}

/// The running audit log: one queue, one open file and one writer thread per worker.
pub struct AuditLog {
    queues: Vec<Arc<Queue>>,
    threads: Mutex<Vec<std::thread::Thread>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("workers", &self.queues.len())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Creates the directory, opens the first file of each of `workers` workers and starts
    /// their writer threads. Fails (before anything is served) when a file cannot be created.
    pub fn open(options: &AuditOptions, workers: usize) -> io::Result<AuditLog> {
        std::fs::create_dir_all(&options.dir)?;
        let started = unix_ms() / 1000;
        let stop = Arc::new(AtomicBool::new(false));
        let mut queues = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for worker in 0..workers {
            let chain = ChainWriter::create(
                &options.dir,
                worker,
                started,
                options.max_file_bytes,
                genesis(worker, started),
            )?;
            let queue = Arc::new(Queue::new(options.queue_lines));
            queues.push(Arc::clone(&queue));
            let stop = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name(format!("verdict-audit{worker}"))
                .spawn(move || drain_loop(&queue, chain, &stop))?;
            threads.push(handle.thread().clone());
            handles.push(handle);
        }
        for result in [
            names::labels::WRITTEN,
            names::labels::DROPPED,
            names::labels::FAILED,
        ] {
            metrics::counter!(names::AUDIT_LINES_TOTAL, names::labels::RESULT => result)
                .increment(0);
        }
        tracing::info!(dir = %options.dir.display(), workers, "audit log open");
        Ok(AuditLog {
            queues,
            threads: Mutex::new(threads),
            handles: Mutex::new(handles),
            stop,
            dir: options.dir.clone(),
        })
    }

    /// The writer of worker `index` (`None` beyond the workers it was opened for).
    pub fn writer(&self, index: usize) -> Option<AuditWriter> {
        self.queues.get(index).map(|queue| AuditWriter {
            queue: Arc::clone(queue),
        })
    }

    /// Stops the writers after they have written everything queued so far (entries queued
    /// later are dropped and counted), and closes and fsyncs their files. Idempotent.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        for thread in self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            thread.unpark();
        }
        let handles: Vec<JoinHandle<()>> = self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A worker's first genesis value: unique per worker and run.
fn genesis(worker: usize, started: u64) -> [u8; HASH_BYTES] {
    let mut nonce = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut nonce).is_err() {
        // Uniqueness then rests on the worker, the start time and the clock's nanoseconds.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for (out, byte) in nonce.iter_mut().zip(nanos.to_le_bytes()) {
            *out = byte;
        }
    }
    let mut context = Context::new(&SHA256);
    context.update(b"verdict audit genesis\0");
    context.update(&(worker as u64).to_le_bytes());
    context.update(&started.to_le_bytes());
    context.update(&nonce);
    to_hash(context.finish().as_ref())
}

fn to_hash(bytes: &[u8]) -> [u8; HASH_BYTES] {
    let mut hash = [0; HASH_BYTES];
    for (out, byte) in hash.iter_mut().zip(bytes) {
        *out = *byte;
    }
    hash
}

fn drain_loop(queue: &Queue, mut chain: ChainWriter, stop: &AtomicBool) {
    let mut batch: Vec<Entry> = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        {
            let mut pending = queue.lock();
            std::mem::swap(&mut pending.entries, &mut batch);
            if stopping {
                pending.closed = true;
            }
        }
        if !batch.is_empty() {
            chain.append(&batch, &mut buffer);
            batch.clear();
        }
        if stopping {
            chain.close();
            return;
        }
        std::thread::park_timeout(FLUSH_INTERVAL);
    }
}

/// One worker's current file and the state of its chain.
struct ChainWriter {
    dir: PathBuf,
    worker: usize,
    started: u64,
    max_file_bytes: u64,
    /// The next part number to create.
    next_part: u32,
    /// The open file; `None` after a write error, until the next batch opens a fresh one.
    file: Option<File>,
    path: PathBuf,
    bytes: u64,
    seq: u64,
    prev: [u8; HASH_BYTES],
    failing: bool,
}

impl ChainWriter {
    fn create(
        dir: &Path,
        worker: usize,
        started: u64,
        max_file_bytes: u64,
        genesis: [u8; HASH_BYTES],
    ) -> io::Result<ChainWriter> {
        let mut chain = ChainWriter {
            dir: dir.to_path_buf(),
            worker,
            started,
            max_file_bytes,
            next_part: 0,
            file: None,
            path: PathBuf::new(),
            bytes: 0,
            seq: 0,
            prev: genesis,
            failing: false,
        };
        chain.open_next()?;
        Ok(chain)
    }

    /// Opens the next part (never an existing file); its chain starts from `self.prev`.
    fn open_next(&mut self) -> io::Result<()> {
        // Bounded: a name taken (a restart within the same second) moves on to the next part.
        for _ in 0..1000 {
            let path = self.dir.join(format!(
                "worker-{}-{}-{:06}.jsonl",
                self.worker, self.started, self.next_part
            ));
            self.next_part = self.next_part.saturating_add(1);
            match OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o640)
                .open(&path)
            {
                Ok(file) => {
                    tracing::debug!(file = %path.display(), "audit file opened");
                    self.file = Some(file);
                    self.path = path;
                    self.bytes = 0;
                    self.seq = 0;
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free audit file name",
        ))
    }

    /// Fsyncs and closes the current file, logging its last hash (an anchor for the chain).
    fn close(&mut self) {
        if let Some(file) = self.file.take() {
            if let Err(error) = file.sync_data() {
                tracing::warn!(file = %self.path.display(), %error, "audit file fsync failed");
            }
            tracing::info!(
                file = %self.path.display(),
                lines = self.seq,
                last_hash = %hex(&self.prev),
                "audit file closed"
            );
        }
    }

    /// Formats, chains and writes a batch: one write per batch (and one more per rotation).
    fn append(&mut self, batch: &[Entry], buffer: &mut Vec<u8>) {
        buffer.clear();
        let mut lines = 0u64;
        for (done, entry) in batch.iter().enumerate() {
            if self.file.is_none()
                && let Err(error) = self.open_next()
            {
                self.failed(batch.len() - done, &error);
                return;
            }
            self.seq += 1;
            let start = buffer.len();
            self.prev = render_line(entry, self.worker, self.seq, &self.prev, buffer);
            self.bytes += (buffer.len() - start) as u64;
            lines += 1;
            if self.bytes >= self.max_file_bytes {
                self.write(buffer, lines);
                lines = 0;
                buffer.clear();
                self.close();
            }
        }
        self.write(buffer, lines);
        buffer.clear();
    }

    fn write(&mut self, buffer: &[u8], lines: u64) {
        if lines == 0 {
            return;
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(buffer) {
            Ok(()) => {
                metrics::counter!(names::AUDIT_LINES_TOTAL, names::labels::RESULT => names::labels::WRITTEN)
                    .increment(lines);
                if self.failing {
                    self.failing = false;
                    tracing::info!(file = %self.path.display(), "audit log writing again");
                }
            }
            Err(error) => {
                // The file may now end in a partial batch: leave it (verify names the line)
                // and start a fresh file with the next batch.
                self.file = None;
                self.failed(usize::try_from(lines).unwrap_or(usize::MAX), &error);
            }
        }
    }

    fn failed(&mut self, lines: usize, error: &io::Error) {
        metrics::counter!(names::AUDIT_LINES_TOTAL, names::labels::RESULT => names::labels::FAILED)
            .increment(lines as u64);
        if !self.failing {
            self.failing = true;
            tracing::error!(
                worker = self.worker,
                file = %self.path.display(),
                %error,
                "cannot write the audit log; lines are lost until it recovers"
            );
        }
    }
}

// ---- The line format ----

/// Appends one line (with its newline) for `entry` to `out` and returns its hash.
fn render_line(
    entry: &Entry,
    worker: usize,
    seq: u64,
    prev: &[u8; HASH_BYTES],
    out: &mut Vec<u8>,
) -> [u8; HASH_BYTES] {
    use std::io::Write as _;
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"seq\":{seq},\"time\":{}.{:03},\"worker\":{worker},\"decision\":\"{}\",\"reason\":",
        entry.time_ms / 1000,
        entry.time_ms % 1000,
        if entry.allowed { "allow" } else { "deny" },
    );
    json_string(out, entry.reason);
    if let Some(provider) = &entry.provider {
        out.extend_from_slice(b",\"provider\":");
        json_string(out, provider);
    }
    if let Some(sub) = &entry.sub {
        out.extend_from_slice(b",\"sub\":");
        json_string(out, truncate(sub, MAX_SUB_BYTES));
    }
    if let Some(token) = &entry.token {
        out.extend_from_slice(b",\"token_sha256\":\"");
        out.extend_from_slice(hex(token).as_bytes());
        out.push(b'"');
    }
    let _ = write!(
        out,
        ",\"latency_us\":{},\"prev\":\"{}\"",
        entry.latency_us,
        hex(prev)
    );
    let hash = chain_hash(prev, out.get(start..).unwrap_or_default());
    out.extend_from_slice(HASH_FIELD);
    out.extend_from_slice(hex(&hash).as_bytes());
    out.extend_from_slice(b"\"}\n");
    hash
}

/// SHA-256(prev ‖ body ‖ `}`): `body` is the line up to, not including, `,"hash":…}`.
fn chain_hash(prev: &[u8; HASH_BYTES], body: &[u8]) -> [u8; HASH_BYTES] {
    let mut context = Context::new(&SHA256);
    context.update(prev);
    context.update(body);
    context.update(b"}");
    to_hash(context.finish().as_ref())
}

fn json_string(out: &mut Vec<u8>, value: &str) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        // Unreachable (strings always serialise); keep the line well-formed regardless.
        out.extend_from_slice(b"\"\"");
    }
}

fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let digit = |d: u8| char::from_digit(u32::from(d), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(digit(byte >> 4));
        out.push(digit(byte & 0x0f));
    }
    out
}

fn unhex(text: &str) -> Option<[u8; HASH_BYTES]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * HASH_BYTES {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0; HASH_BYTES];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let &[high, low] = <&[u8; 2]>::try_from(pair).ok()?;
        *slot = (value(high)? << 4) | value(low)?;
    }
    Some(out)
}

// ---- Verification ----

/// An intact file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lines checked.
    pub lines: u64,
    /// The last line's hash (`None` for an empty file): compare it with an anchor kept
    /// elsewhere to detect a truncated tail.
    pub last_hash: Option<[u8; HASH_BYTES]>,
}

/// Why a file does not verify.
#[derive(Debug)]
pub enum VerifyError {
    /// The first bad line (1-based) and why.
    BadLine {
        /// The line number.
        line: u64,
        /// What is wrong with it.
        why: String,
    },
    /// The file could not be read.
    Io(io::Error),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::BadLine { line, why } => write!(f, "line {line}: {why}"),
            VerifyError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks a file's chain line by line (streaming; memory is bounded by [`MAX_LINE_BYTES`]):
/// each line is a complete JSON object with the expected fields, its `seq` is its line number,
/// its `prev` is the previous line's `hash`, and its `hash` matches its bytes. Stops at the
/// first bad line.
pub fn verify_chain(reader: impl BufRead) -> Result<Verified, VerifyError> {
    let mut reader = reader;
    let mut line = Vec::with_capacity(512);
    let mut number = 0u64;
    let mut prev: Option<[u8; HASH_BYTES]> = None;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(VerifyError::Io)?;
        if read == 0 {
            return Ok(Verified {
                lines: number,
                last_hash: prev,
            });
        }
        number += 1;
        let bad = |why: String| VerifyError::BadLine { line: number, why };
        let Some(text) = line.strip_suffix(b"\n") else {
            return Err(bad(if line.len() > MAX_LINE_BYTES {
                format!("longer than {MAX_LINE_BYTES} bytes")
            } else {
                "incomplete line (no newline at the end of the file)".to_owned()
            }));
        };
        let hash = check_line(text, number, prev.as_ref()).map_err(bad)?;
        prev = Some(hash);
    }
}

/// Checks one line (without its newline); returns its hash.
fn check_line(
    text: &[u8],
    number: u64,
    prev: Option<&[u8; HASH_BYTES]>,
) -> Result<[u8; HASH_BYTES], String> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    let field = |name: &str| {
        object
            .get(name)
            .ok_or_else(|| format!("field `{name}` is missing"))
    };
    let uint = |name: &str| {
        field(name)?
            .as_u64()
            .ok_or_else(|| format!("field `{name}` is not an unsigned integer"))
    };
    let string = |name: &str| {
        field(name)?
            .as_str()
            .ok_or_else(|| format!("field `{name}` is not a string"))
    };
    let hash_of = |name: &str| {
        unhex(string(name)?)
            .ok_or_else(|| format!("field `{name}` is not 64 lower-case hex digits"))
    };
    let seq = uint("seq")?;
    if seq != number {
        return Err(format!(
            "seq is {seq}, expected {number} (a line was deleted, inserted or moved)"
        ));
    }
    let line_prev = hash_of("prev")?;
    if let Some(expected) = prev
        && &line_prev != expected
    {
        return Err(format!(
            "prev does not match the hash of line {} (a line was deleted, inserted, moved or \
             rewritten)",
            number - 1
        ));
    }
    let claimed = hash_of("hash")?;
    field("time")?
        .as_f64()
        .ok_or_else(|| "field `time` is not a number".to_owned())?;
    uint("worker")?;
    uint("latency_us")?;
    string("reason")?;
    match string("decision")? {
        "allow" | "deny" => {}
        other => return Err(format!("decision {other:?} is neither allow nor deny")),
    }
    let body_end = text
        .len()
        .checked_sub(HASH_TAIL_BYTES)
        .filter(|&end| text.get(end..end + HASH_FIELD.len()) == Some(HASH_FIELD))
        .ok_or_else(|| "`hash` is not the last field of the line".to_owned())?;
    let computed = chain_hash(&line_prev, text.get(..body_end).unwrap_or_default());
    if computed != claimed {
        return Err("hash does not match the line (the line was edited)".to_owned());
    }
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Entry {
        Entry {
            time_ms: 1_764_769_680_123 + i,
            allowed: !i.is_multiple_of(3),
            reason: if !i.is_multiple_of(3) {
                "ok"
            } else {
                "bad_signature"
            },
            provider: Some("corp".into()),
            sub: (!i.is_multiple_of(3)).then(|| format!("user-{i}")),
            token: Some(Entry::token_digest(format!("token-{i}").as_bytes())),
            latency_us: 10 + i,
        }
    }

    /// A chain of `n` lines, as a writer would produce it.
    fn chain(n: u64) -> Vec<String> {
        let mut prev = genesis(0, 1);
        let mut out = Vec::new();
        for seq in 1..=n {
            let mut buffer = Vec::new();
            prev = render_line(&entry(seq), 0, seq, &prev, &mut buffer);
            out.push(String::from_utf8(buffer).expect("utf-8"));
        }
        out
    }

    fn verify(lines: &[String]) -> Result<Verified, VerifyError> {
        verify_chain(lines.concat().as_bytes())
    }

    fn bad_line(lines: &[String]) -> (u64, String) {
        match verify(lines) {
            Err(VerifyError::BadLine { line, why }) => (line, why),
            other => panic!("expected a bad line, got {other:?}"),
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let lines = chain(10);
        let verified = verify(&lines).expect("intact");
        assert_eq!(verified.lines, 10);
        let last: serde_json::Value = serde_json::from_str(&lines[9]).expect("json");
        assert_eq!(
            verified.last_hash.map(|h| hex(&h)).as_deref(),
            last["hash"].as_str()
        );
        assert_eq!(verify(&[]).expect("empty").lines, 0);
    }

    #[test]
    fn lines_carry_the_documented_fields() {
        let lines = chain(2);
        let line: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(line["seq"], 2);
        assert_eq!(line["time"].as_f64(), Some(1_764_769_680.125));
        assert_eq!(line["worker"], 0);
        assert_eq!(line["decision"], "allow");
        assert_eq!(line["reason"], "ok");
        assert_eq!(line["provider"], "corp");
        assert_eq!(line["sub"], "user-2");
        assert_eq!(line["latency_us"], 12);
        let digest = digest(&SHA256, b"token-2");
        assert_eq!(line["token_sha256"], hex(&digest.as_ref()[..8]));
        assert!(!lines[1].contains("token-2"));
        let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(line["prev"], first["hash"]);
        // Keys in a fixed order, hash last.
        assert!(lines[1].starts_with("{\"seq\":2,\"time\":1764769680.125,\"worker\":0,"));
        assert!(lines[1].ends_with("\"}\n"));
        let denied: serde_json::Value = serde_json::from_str(&chain(3)[2]).expect("json");
        assert_eq!(denied["decision"], "deny");
        assert_eq!(denied["reason"], "bad_signature");
        assert!(denied.get("sub").is_none());
    }

    #[test]
    fn an_edited_field_is_found_at_its_line() {
        let mut lines = chain(8);
        lines[4] = lines[4].replace("\"user-5\"", "\"mallory\"");
        let (line, why) = bad_line(&lines);
        assert_eq!(line, 5);
        assert!(why.contains("hash does not match"), "{why}");

        let mut lines = chain(8);
        assert!(lines[5].contains("\"deny\""));
        lines[5] = lines[5].replace("\"deny\"", "\"allow\"");
        assert_eq!(bad_line(&lines).0, 6);

        // Whitespace counts too: the hash covers the exact bytes.
        let mut lines = chain(8);
        lines[2] = lines[2].replacen(",", ", ", 1);
        assert_eq!(bad_line(&lines).0, 3);
    }

    #[test]
    fn a_deleted_line_is_found() {
        let mut lines = chain(8);
        lines.remove(3);
        let (line, why) = bad_line(&lines);
        assert_eq!(line, 4);
        assert!(why.contains("seq is 5, expected 4"), "{why}");
        // The first line too.
        let mut lines = chain(8);
        lines.remove(0);
        assert_eq!(bad_line(&lines).0, 1);
    }

    #[test]
    fn swapped_lines_are_found() {
        let mut lines = chain(8);
        lines.swap(2, 3);
        assert_eq!(bad_line(&lines).0, 3);
    }

    #[test]
    fn an_inserted_line_is_found() {
        let mut lines = chain(8);
        let copy = lines[1].clone();
        lines.insert(5, copy);
        assert_eq!(bad_line(&lines).0, 6);
        // A forged line that chains correctly still breaks the next line's seq.
        let mut lines = chain(8);
        let prev: serde_json::Value = serde_json::from_str(&lines[4]).expect("json");
        let prev = unhex(prev["hash"].as_str().expect("hash")).expect("hex");
        let mut forged = Vec::new();
        render_line(&entry(99), 0, 6, &prev, &mut forged);
        lines.insert(5, String::from_utf8(forged).expect("utf-8"));
        let (line, why) = bad_line(&lines);
        assert_eq!(line, 7);
        assert!(why.contains("seq is 6, expected 7"), "{why}");
    }

    #[test]
    fn a_changed_hash_is_found() {
        let mut lines = chain(8);
        let value: serde_json::Value = serde_json::from_str(&lines[6]).expect("json");
        let hash = value["hash"].as_str().expect("hash").to_owned();
        let flipped = if hash.starts_with('0') { "1" } else { "0" };
        lines[6] = lines[6].replace(&hash, &format!("{flipped}{}", &hash[1..]));
        let (line, why) = bad_line(&lines);
        assert_eq!(line, 7);
        assert!(why.contains("hash does not match"), "{why}");
        // A line rewritten with a recomputed hash breaks the next line's prev.
        let mut lines = chain(8);
        let prev: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        let prev = unhex(prev["prev"].as_str().expect("prev")).expect("hex");
        let mut forged = entry(2);
        forged.allowed = false;
        let mut rewritten = Vec::new();
        render_line(&forged, 0, 2, &prev, &mut rewritten);
        lines[1] = String::from_utf8(rewritten).expect("utf-8");
        let (line, why) = bad_line(&lines);
        assert_eq!(line, 3);
        assert!(
            why.contains("prev does not match the hash of line 2"),
            "{why}"
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        let mut lines = chain(4);
        lines[1] = "not json\n".into();
        assert!(bad_line(&lines).1.contains("not valid JSON"));
        let mut lines = chain(4);
        lines[3].pop();
        let (line, why) = bad_line(&lines);
        assert_eq!(line, 4);
        assert!(why.contains("incomplete"), "{why}");
        let mut lines = chain(4);
        lines[2] = "[1,2]\n".into();
        assert_eq!(bad_line(&lines), (3, "not a JSON object".to_owned()));
        let long = format!("{}\n", "x".repeat(MAX_LINE_BYTES + 10));
        let (line, why) = bad_line(&[long]);
        assert_eq!(line, 1);
        assert!(why.contains("longer than"), "{why}");
    }

    #[test]
    fn long_subjects_are_cut_at_a_char_boundary() {
        let sub = "é".repeat(MAX_SUB_BYTES);
        let cut = truncate(&sub, MAX_SUB_BYTES);
        assert_eq!(cut.len(), MAX_SUB_BYTES);
        assert!(truncate("abc", 2) == "ab");
        let mut e = entry(1);
        e.sub = Some(format!("{sub}\"\n"));
        let mut out = Vec::new();
        render_line(&e, 0, 1, &genesis(0, 1), &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.matches('\n').count(), 1);
        verify_chain(text.as_bytes()).expect("verifies");
    }

    #[test]
    fn a_full_queue_drops_and_a_closed_one_refuses() {
        let queue = Queue::new(2);
        assert!(queue.push(entry(1)));
        assert!(queue.push(entry(2)));
        assert!(!queue.push(entry(3)));
        queue.lock().entries.clear();
        assert!(queue.push(entry(4)));
        queue.lock().closed = true;
        assert!(!queue.push(entry(5)));
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "verdict-audit-unit-{tag}-{}-{}",
            std::process::id(),
            unix_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_writer_drains_rotates_and_links_files() {
        let dir = scratch("rotate");
        let log = AuditLog::open(
            &AuditOptions {
                dir: dir.clone(),
                max_file_bytes: 4096,
                queue_lines: 1000,
            },
            2,
        )
        .expect("open");
        let writer = log.writer(1).expect("worker 1");
        assert!(log.writer(2).is_none());
        for i in 0..100 {
            writer.record(entry(i));
        }
        log.shutdown();
        // Queued after shutdown: dropped.
        writer.record(entry(100));
        let all = files(&dir);
        let worker1: Vec<&PathBuf> = all
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("worker-1-"))
            })
            .collect();
        assert!(worker1.len() > 1, "no rotation: {all:?}");
        assert_eq!(all.len(), worker1.len() + 1, "{all:?}");
        let mut total = 0;
        let mut last: Option<[u8; HASH_BYTES]> = None;
        for path in &worker1 {
            let text = std::fs::read_to_string(path).expect("read");
            let verified = verify_chain(text.as_bytes()).expect("each file verifies");
            if let Some(previous) = last {
                // The file's genesis is the previous file's last hash.
                let first: serde_json::Value =
                    serde_json::from_str(text.lines().next().expect("a line")).expect("json");
                assert_eq!(first["prev"].as_str(), Some(hex(&previous).as_str()));
            }
            assert!(text.len() as u64 <= 4096 + 1024, "{}", text.len());
            total += verified.lines;
            last = verified.last_hash;
        }
        assert_eq!(total, 100);
        // Worker 0 wrote nothing: its file is empty and verifies.
        let worker0 = all
            .iter()
            .find(|p| !worker1.contains(p))
            .expect("worker 0 file");
        assert_eq!(std::fs::metadata(worker0).expect("meta").len(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_thread_local_writer_records_only_where_installed() {
        assert!(!auditing());
        record(entry(1)); // no writer: a no-op
        let dir = scratch("local");
        let log = AuditLog::open(
            &AuditOptions {
                dir: dir.clone(),
                max_file_bytes: 1 << 20,
                queue_lines: 10,
            },
            1,
        )
        .expect("open");
        let writer = log.writer(0).expect("worker 0");
        std::thread::spawn(move || {
            install_writer(writer);
            assert!(auditing());
            for i in 0..3 {
                record(entry(i));
            }
        })
        .join()
        .expect("thread");
        log.shutdown();
        let all = files(&dir);
        assert_eq!(all.len(), 1);
        let text = std::fs::read_to_string(&all[0]).expect("read");
        assert_eq!(verify_chain(text.as_bytes()).expect("verifies").lines, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
