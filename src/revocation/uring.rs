//! Revocation-log appends through io_uring: one thread runs a tokio-uring runtime that owns the
//! log file and performs each append as an io_uring write followed by an io_uring `fdatasync`,
//! answering the caller when both have completed. Callers (the admin handlers, already off the
//! request path in `spawn_blocking`) block on that answer exactly as on a plain `sync_data`, so
//! the durability contract is the same; the worker runtimes never wait on the disk.
//!
//! Where io_uring cannot be set up (an old kernel, a seccomp profile that forbids it), [`start`]
//! fails and the log falls back to plain file I/O.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

enum Job {
    /// Write these bytes at the end and fdatasync; answer with the fsync's duration.
    Append(Vec<u8>, std_mpsc::SyncSender<io::Result<Duration>>),
    /// The log was replaced (compaction): continue with this file.
    Replace(File, u64, std_mpsc::SyncSender<io::Result<()>>),
}

/// The io_uring log writer's handle.
#[derive(Debug)]
pub(super) struct UringWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Append(..) => "Append",
            Job::Replace(..) => "Replace",
        })
    }
}

/// Starts the writer thread owning `file` (opened for appending; `len` is its length), or
/// fails when io_uring is unavailable here.
pub(super) fn start(file: File, len: u64, path: PathBuf) -> io::Result<UringWriter> {
    let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
    let (ready_tx, ready_rx) = std_mpsc::sync_channel::<io::Result<()>>(1);
    std::thread::Builder::new()
        .name("verdict-revlog".into())
        .spawn(move || {
            let runtime = match tokio_uring::Runtime::new(&tokio_uring::builder()) {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                let mut file = tokio_uring::fs::File::from_std(file);
                let mut end = len;
                let _ = ready_tx.send(Ok(()));
                while let Some(job) = receiver.recv().await {
                    match job {
                        Job::Append(bytes, reply) => {
                            let written = bytes.len() as u64;
                            let (result, _) = file.write_all_at(bytes, end).await;
                            let answer = match result {
                                Ok(()) => {
                                    end += written;
                                    let started = Instant::now();
                                    file.sync_data().await.map(|()| started.elapsed())
                                }
                                Err(error) => Err(error),
                            };
                            let _ = reply.send(answer);
                        }
                        Job::Replace(next, next_len, reply) => {
                            let old =
                                std::mem::replace(&mut file, tokio_uring::fs::File::from_std(next));
                            end = next_len;
                            let _ = reply.send(old.close().await);
                        }
                    }
                }
                tracing::debug!(log = %path.display(), "revocation log writer stopped");
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(UringWriter { jobs }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(io::Error::other("the io_uring log writer did not start")),
    }
}

impl UringWriter {
    /// Appends `bytes` and waits until they are on disk; the fsync's duration.
    pub(super) fn append(&self, bytes: Vec<u8>) -> io::Result<Duration> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.jobs
            .send(Job::Append(bytes, reply))
            .map_err(|_| io::Error::other("the io_uring log writer stopped"))?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the io_uring log writer stopped"))?
    }

    /// Continues with `file` (of length `len`), closing the old one.
    pub(super) fn replace(&self, file: File, len: u64) -> io::Result<()> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.jobs
            .send(Job::Replace(file, len, reply))
            .map_err(|_| io::Error::other("the io_uring log writer stopped"))?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the io_uring log writer stopped"))?
    }
}
