//! Cross-request Ed25519 batches, per core.
//!
//! Requests that reach their signature check on the same core in the same scheduling round
//! have their Ed25519 signatures checked as one batch (one multiscalar multiplication; ~13 µs
//! per signature for tokens from one issuer key against ~43 µs alone, see BENCHMARKS.md). The
//! first request to need a check opens a batch and spawns its flush on the current runtime; the
//! flush yields once, so every request already ready on this core joins, then checks the batch
//! and answers each waiter. Nothing waits on a timer: at low load a batch holds one signature
//! and the waiter checks it alone, so batching adds a scheduling round, not latency. A batch
//! that fails (at least one bad signature) answers "check it alone" to every waiter, so one
//! forgery never changes its neighbours' verdicts; it costs them one batch's work on top of
//! their single checks (~13 + 43 µs per signature instead of 43 µs), which bounds what an
//! attacker mixing bad signatures into the traffic can take away; and after a failed batch the
//! core checks its next [`PAUSE_AFTER_FAILURE`] batches' signatures alone before trying again,
//! so sustained bad signatures cost about nothing over not batching. Splitting failed batches
//! in halves was tried and left out: with many bad signatures its repeated batches cost more.
//!
//! Requests on one core never wait for another core: the open batch is found through a
//! thread-local, and the flush runs on the same single-threaded runtime.

use crate::crypto::{Ed25519BatchKey, verify_ed25519_batch};
use crate::telemetry::names::{self, labels};
use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// Most signatures in one batch; past ~64 the per-signature cost stops falling.
pub const MAX_BATCH: usize = 128;

/// An Ed25519 signature: `R || s`.
const SIGNATURE_BYTES: usize = 64;

/// Fewest signatures worth a batch (a batch of two already beats two single checks).
const MIN_BATCH: usize = 2;

struct Job {
    key: Ed25519BatchKey,
    message: Box<[u8]>,
    signature: Box<[u8]>,
    reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    /// Set when the flush has taken the jobs, or the batch is full: later requests open a new
    /// batch.
    closed: bool,
}

type Shared = Arc<Mutex<Batch>>;

/// After a failed batch, this many of the core's next batches are not attempted (their
/// signatures are checked alone), so bad signatures in the traffic cost about nothing over not
/// batching; then batching is tried again.
pub const PAUSE_AFTER_FAILURE: u32 = 16;

thread_local! {
    /// The batch this core's requests are joining, if one is open.
    static OPEN: RefCell<Option<Shared>> = const { RefCell::new(None) };
    /// Batches still to skip after a failure on this core.
    static PAUSED: Cell<u32> = const { Cell::new(0) };
}

/// Checks `signature` over `message` by `key` in this core's current batch. `true`: verified
/// as part of a passing batch. `false`: not verified here (alone on the core, in a failed
/// batch, or not 64 bytes); the caller checks it alone, exactly as without batching.
///
/// Must run inside a tokio runtime (it spawns the flush).
pub async fn verify(key: Ed25519BatchKey, message: &[u8], signature: &[u8]) -> bool {
    // A malformed signature cannot verify: it would only cost its batch a split.
    if signature.len() != SIGNATURE_BYTES {
        return false;
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        key,
        message: message.into(),
        signature: signature.into(),
        reply,
    };
    if let Some(opened) = join_or_open(job) {
        tokio::spawn(flush(opened));
    }
    // A dropped sender (runtime shutting down) means "check it alone".
    answer.await.unwrap_or(false)
}

/// Adds `job` to the open batch; when there is none (or it is closed or full), opens a new one
/// holding `job` and returns it for the caller to schedule its flush.
fn join_or_open(job: Job) -> Option<Shared> {
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        let mut job = Some(job);
        if let Some(batch) = open.as_ref() {
            let mut batch = batch.lock().unwrap_or_else(PoisonError::into_inner);
            if !batch.closed {
                batch.jobs.extend(job.take());
                batch.closed = batch.jobs.len() >= MAX_BATCH;
            }
        }
        let job = job?;
        let batch = Arc::new(Mutex::new(Batch {
            jobs: vec![job],
            closed: false,
        }));
        *open = Some(Arc::clone(&batch));
        Some(batch)
    })
}

/// Lets every request already ready on this core join, then checks the batch and answers.
async fn flush(batch: Shared) {
    tokio::task::yield_now().await;
    let jobs = {
        let mut batch = batch.lock().unwrap_or_else(PoisonError::into_inner);
        batch.closed = true;
        std::mem::take(&mut batch.jobs)
    };
    let paused = PAUSED.get();
    let attempt = jobs.len() >= MIN_BATCH && paused == 0;
    let valid = attempt && {
        let triples: Vec<(Ed25519BatchKey, &[u8], &[u8])> = jobs
            .iter()
            .map(|job| (job.key, &*job.message, &*job.signature))
            .collect();
        verify_ed25519_batch(&triples)
    };
    let result = if jobs.len() < MIN_BATCH {
        labels::SINGLE
    } else if !attempt {
        PAUSED.set(paused - 1);
        labels::PAUSED
    } else if valid {
        labels::VALID
    } else {
        PAUSED.set(PAUSE_AFTER_FAILURE);
        labels::INVALID
    };
    metrics::counter!(names::SIGNATURE_BATCHES_TOTAL, labels::RESULT => result).increment(1);
    metrics::counter!(names::SIGNATURE_BATCH_SIGNATURES_TOTAL, labels::RESULT => result)
        .increment(jobs.len() as u64);
    for job in jobs {
        // A waiter that went away (its request was cancelled) needs no answer.
        let _ = job.reply.send(valid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{AwsLcBackend, Backend, PreparedKey};
    use crate::jose::{Algorithm, KeyMaterial};
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    fn prepared(pair: &Ed25519KeyPair) -> PreparedKey {
        let x: [u8; 32] = pair.public_key().as_ref().try_into().expect("32 bytes");
        AwsLcBackend::default()
            .prepare(&KeyMaterial::Ed25519 { x }, Algorithm::EdDSA)
            .expect("prepared")
    }

    /// Many requests on one single-threaded runtime: the valid ones verify in shared batches;
    /// with bad ones mixed in, the batch fails and every request is told to check alone.
    #[test]
    fn concurrent_requests_share_batches_and_keep_their_own_verdicts() {
        let pair = Ed25519KeyPair::generate().expect("key");
        let key = prepared(&pair);
        let batch_key = key.ed25519_batch_key().expect("batchable");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for bad_every in [0usize, 7] {
            let outcomes = runtime.block_on(async {
                let tasks: Vec<_> = (0..40usize)
                    .map(|n| {
                        let message = format!("token {n}").into_bytes();
                        let mut signature = pair.sign(&message).as_ref().to_vec();
                        let bad = bad_every > 0 && n % bad_every == 3;
                        if bad {
                            signature[5] ^= 1;
                        }
                        tokio::spawn(
                            async move { (bad, verify(batch_key, &message, &signature).await) },
                        )
                    })
                    .collect();
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.expect("task"));
                }
                outcomes
            });
            for (n, (bad, batched)) in outcomes.iter().enumerate() {
                if *bad || bad_every > 0 {
                    assert!(
                        !batched,
                        "request {n}: a batch with a bad signature says no"
                    );
                } else {
                    assert!(
                        batched,
                        "request {n}: 40 ready requests share valid batches"
                    );
                }
            }
        }
        // The failed batch paused batching on this core: the next batches are checked alone,
        // then batching resumes.
        let group = |count: usize| {
            runtime.block_on(async {
                let tasks: Vec<_> = (0..count)
                    .map(|n| {
                        let message = format!("again {n}").into_bytes();
                        let signature = pair.sign(&message).as_ref().to_vec();
                        tokio::spawn(async move { verify(batch_key, &message, &signature).await })
                    })
                    .collect();
                let mut batched = Vec::new();
                for task in tasks {
                    batched.push(task.await.expect("task"));
                }
                batched
            })
        };
        for round in 0..PAUSE_AFTER_FAILURE {
            assert!(group(4).iter().all(|b| !b), "paused round {round}");
        }
        assert!(group(4).iter().all(|b| *b), "batching resumes");
        // A signature of the wrong size never joins a batch.
        let short = runtime.block_on(verify(batch_key, b"m", &[0u8; 63]));
        assert!(!short);
        // Alone, a request is told to check its signature itself.
        let message = b"alone".to_vec();
        let signature = pair.sign(&message).as_ref().to_vec();
        let alone = runtime.block_on(verify(batch_key, &message, &signature));
        assert!(!alone);
        assert_eq!(
            AwsLcBackend::default().verify(&key, &message, &signature),
            Ok(())
        );
    }
}
