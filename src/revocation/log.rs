//! The durable revocation log: one JSON object per line, `{"op":"add",...entry}` or
//! `{"op":"remove","id":...,"at":...}`, appended with one `write` and then `fdatasync`ed before
//! the change is published or acknowledged.
//!
//! At start the log is replayed. A torn last line (a crash in the middle of an append, which
//! was therefore never acknowledged) is cut off with a warning; any other unreadable line stops
//! the start, naming the line, because silently dropping a revocation would re-admit a token.
//! Compaction rewrites the live entries to a temporary file, fsyncs it, renames it over the log
//! and fsyncs the directory, so a crash at any point leaves either the old log or the new one.
//!
//! Appends go through io_uring where it is available (see [`super::uring`]: a write and an
//! `fdatasync` submitted by a dedicated io_uring thread), plain blocking file I/O otherwise;
//! either way the caller (an admin handler, in `spawn_blocking`) returns only once the line is
//! on disk. Replay and compaction use plain file I/O.

use super::Revocation;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LogRecord {
    /// An entry accepted.
    Add(Revocation),
    /// An entry removed by id.
    Remove {
        /// The removed entry's id.
        id: String,
        /// When (Unix seconds).
        at: u64,
    },
}

/// Why the log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Opening, reading, writing or syncing failed.
    #[error("revocation log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A complete line that is not a log record.
    #[error("revocation log {path}:{line}: {why}")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// What replaying the log found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every record, in order.
    pub records: Vec<LogRecord>,
    /// Bytes of a torn last line that were cut off (0 when the log ended cleanly).
    pub torn_bytes: usize,
}

/// How appends reach the disk.
#[derive(Debug)]
enum Sink {
    /// `write` + `fdatasync` on this thread.
    Plain(File),
    /// io_uring, on the log's writer thread.
    #[cfg(target_os = "linux")]
    Uring(super::uring::UringWriter),
}

/// The open log.
#[derive(Debug)]
pub struct RevocationLog {
    path: PathBuf,
    sink: Sink,
    lines: usize,
}

impl RevocationLog {
    /// Opens (creating it if needed) and replays the log at `path`; appends go through
    /// io_uring when `io_uring` is set and it works here.
    pub fn open(path: &Path, io_uring: bool) -> Result<(RevocationLog, Replay), LogError> {
        let io_error = |source| LogError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error)?;
        let replay = replay(path, &bytes)?;
        if replay.torn_bytes > 0 {
            let keep = bytes.len() - replay.torn_bytes;
            file.set_len(keep as u64).map_err(io_error)?;
            file.sync_data().map_err(io_error)?;
        }
        let lines = replay.records.len();
        let sink = Sink::new(file, path, io_uring).map_err(io_error)?;
        Ok((
            RevocationLog {
                path: path.to_owned(),
                sink,
                lines,
            },
            replay,
        ))
    }

    /// Whether appends go through io_uring.
    pub fn uses_io_uring(&self) -> bool {
        match self.sink {
            Sink::Plain(_) => false,
            #[cfg(target_os = "linux")]
            Sink::Uring(_) => true,
        }
    }

    /// Appends `record` and waits until it is on disk; returns how long the fsync took.
    pub fn append(&mut self, record: &LogRecord) -> Result<Duration, LogError> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends `records` with one write and one fsync (a batch applied from the fleet's
    /// stream) and waits until they are on disk; returns how long the fsync took.
    pub fn append_all(&mut self, records: &[LogRecord]) -> Result<Duration, LogError> {
        let mut line = Vec::new();
        for record in records {
            serde_json::to_writer(&mut line, record).map_err(|e| LogError::Io {
                path: self.path.clone(),
                source: io::Error::other(e),
            })?;
            line.push(b'\n');
        }
        let io_error = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        let fsync = match &mut self.sink {
            Sink::Plain(file) => {
                file.write_all(&line).map_err(io_error)?;
                let started = Instant::now();
                file.sync_data().map_err(io_error)?;
                started.elapsed()
            }
            #[cfg(target_os = "linux")]
            Sink::Uring(writer) => writer.append(line).map_err(io_error)?,
        };
        self.lines += records.len();
        Ok(fsync)
    }

    /// Lines in the log now.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Rewrites the log to hold exactly `live`, atomically (temporary file, fsync, rename,
    /// directory fsync).
    pub fn compact<'a>(
        &mut self,
        live: impl Iterator<Item = &'a Revocation>,
    ) -> Result<(), LogError> {
        let io_error = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        let temporary = self.path.with_extension("compacting");
        let mut out = io::BufWriter::new(File::create(&temporary).map_err(io_error)?);
        let mut lines = 0;
        for entry in live {
            let record = LogRecord::Add(entry.clone());
            serde_json::to_writer(&mut out, &record).map_err(|e| io_error(io::Error::other(e)))?;
            out.write_all(b"\n").map_err(io_error)?;
            lines += 1;
        }
        let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
        file.sync_all().map_err(io_error)?;
        drop(file);
        std::fs::rename(&temporary, &self.path).map_err(io_error)?;
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io_error)?;
        match &mut self.sink {
            Sink::Plain(old) => *old = file,
            #[cfg(target_os = "linux")]
            Sink::Uring(writer) => {
                let len = file.metadata().map_err(io_error)?.len();
                writer.replace(file, len).map_err(io_error)?;
            }
        }
        self.lines = lines;
        Ok(())
    }
}

impl Sink {
    fn new(file: File, path: &Path, io_uring: bool) -> io::Result<Sink> {
        #[cfg(target_os = "linux")]
        if io_uring {
            let len = file.metadata()?.len();
            let fallback = file.try_clone()?;
            return match super::uring::start(file, len, path.to_owned()) {
                Ok(writer) => Ok(Sink::Uring(writer)),
                Err(error) => {
                    tracing::info!(%error, log = %path.display(), "io_uring unavailable for the revocation log; plain file I/O");
                    Ok(Sink::Plain(fallback))
                }
            };
        }
        let _ = (path, io_uring);
        Ok(Sink::Plain(file))
    }
}

/// Parses the log's bytes: every complete line must be a record; an incomplete last line is
/// torn (never acknowledged) and reported for truncation.
fn replay(path: &Path, bytes: &[u8]) -> Result<Replay, LogError> {
    let mut replay = Replay::default();
    let mut rest = bytes;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            // No newline: the append that wrote this was cut short.
            replay.torn_bytes = rest.len();
            break;
        };
        let (line, after) = rest.split_at(end);
        rest = after.get(1..).unwrap_or_default();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice::<LogRecord>(line).map_err(|e| {
            // A crash can leave zero-filled blocks at the end of a file: torn too, when nothing
            // but zeros and newlines follows.
            LogError::Corrupt {
                path: path.to_owned(),
                line: line_no,
                why: e.to_string(),
            }
        });
        match record {
            Ok(record) => replay.records.push(record),
            Err(_) if is_zero_tail(line, rest) => {
                replay.torn_bytes = line.len() + 1 + rest.len();
                break;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(replay)
}

fn is_zero_tail(line: &[u8], rest: &[u8]) -> bool {
    !line.is_empty() && line.iter().all(|&b| b == 0) && rest.iter().all(|&b| b == 0 || b == b'\n')
}
