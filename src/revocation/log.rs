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
//! Plain blocking file I/O, run off the request path (admin handlers call it through
//! `spawn_blocking`); io_uring would save little here, since each append waits for its fsync.

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

/// The open log.
#[derive(Debug)]
pub struct RevocationLog {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl RevocationLog {
    /// Opens (creating it if needed) and replays the log at `path`.
    pub fn open(path: &Path) -> Result<(RevocationLog, Replay), LogError> {
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
        Ok((
            RevocationLog {
                path: path.to_owned(),
                file,
                lines,
            },
            replay,
        ))
    }

    /// Appends `record` and waits until it is on disk; returns how long the fsync took.
    pub fn append(&mut self, record: &LogRecord) -> Result<Duration, LogError> {
        let mut line = serde_json::to_vec(record).map_err(|e| LogError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        line.push(b'\n');
        let io_error = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(io_error)?;
        let started = Instant::now();
        self.file.sync_data().map_err(io_error)?;
        self.lines += 1;
        Ok(started.elapsed())
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
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io_error)?;
        self.lines = lines;
        Ok(())
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
