//! Cross-request signature batches, per core: the one batcher every batching engine uses
//! (crypto_mb's eight-lane calls, dalek's Ed25519 multiscalar check).
//!
//! A signature whose key has a [`BatchClass`] (`Backend::batch_class`) joins its core's open
//! batch of that class. The rules, for every class:
//!
//! - The first check of a class on a core opens a batch and spawns its flush on that core's
//!   runtime; the flush yields once, so every check already ready on the core joins, then
//!   verifies the batch. Nothing waits on a timer: alone on its core a check is a batch of one,
//!   verified at once by `Backend::verify`, so batching adds a scheduling round, not latency.
//! - A batch closes when it is full ([`BatchClass::max`]); later checks open the next one.
//! - Requests on one core never wait for another core: the open batches are found through a
//!   thread-local, and the flush runs on the same single-threaded runtime.
//! - Every check gets exactly the answer `Backend::verify` would give it (up to the documented
//!   Ed25519 torsion exception, `crypto::ed25519_batch`). An engine that answers each lane on
//!   its own ([`BatchAnswers::PerLane`]) answers each lane of a batch; an all-or-nothing engine
//!   ([`BatchAnswers::AllOrNothing`]) answers a failed batch's members by single verification,
//!   so one forgery never changes a neighbour's verdict.
//! - Bad-signature storms: after an all-or-nothing batch with a bad signature, the core checks
//!   the signatures of its next [`PAUSE_AFTER_FAILURE`] batches of that class alone, then
//!   tries batching again. A failed dalek batch costs its members the batch's work on top of
//!   their single checks (~13 + 43 µs per signature instead of 43 µs), so sustained bad
//!   signatures would otherwise make batching a loss; the pause bounds that to about nothing.
//!   Splitting failed batches in halves was tried and left out: with many bad signatures its
//!   repeated batches cost more. Per-lane classes never pause: a bad lane costs the same call as
//!   a good one, and checking a crypto_mb batch alone would cost 3-4× more per signature (one
//!   aws-lc-rs verification against an eighth of a call, BENCHMARKS.md "Engines"), so a pause
//!   could only slow a storm down, never bound it.

use crate::crypto::{Backend, BatchAnswers, BatchClass, PreparedKey, VerifyJob};
use crate::jose::Reject;
use crate::telemetry::names::{self, labels};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// After a failed all-or-nothing batch, this many of the core's next batches of that class are
/// not attempted (their signatures are checked alone); then batching is tried again.
pub const PAUSE_AFTER_FAILURE: u32 = 16;

struct Job {
    key: PreparedKey,
    message: Box<[u8]>,
    signature: Box<[u8]>,
    reply: oneshot::Sender<Result<(), Reject>>,
}

#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    /// Set when the flush has taken the jobs, or the batch is full.
    closed: bool,
}

type Shared = Arc<Mutex<Batch>>;

/// One class's state on this core.
struct ClassState {
    id: u32,
    open: Option<Shared>,
    /// Batches still to check alone after a failure.
    paused: u32,
}

thread_local! {
    /// The classes seen on this core (a handful: one per engine family in use).
    static CLASSES: RefCell<Vec<ClassState>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this core's state of class `id`, creating it on first use.
fn with_class<T>(id: u32, f: impl FnOnce(&mut ClassState) -> T) -> T {
    CLASSES.with(|classes| {
        let mut classes = classes.borrow_mut();
        if !classes.iter().any(|c| c.id == id) {
            classes.push(ClassState::new(id));
        }
        let mut fresh = ClassState::new(id);
        let state = classes
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or(&mut fresh);
        f(state)
    })
}

impl ClassState {
    fn new(id: u32) -> ClassState {
        ClassState {
            id,
            open: None,
            paused: 0,
        }
    }
}

/// Checks `job` in this core's current batch of `class` on `backend`; the answer is what
/// `backend.verify` would give. Must run inside a tokio runtime (it spawns the flush).
pub async fn verify(
    backend: &Arc<dyn Backend>,
    class: BatchClass,
    job: VerifyJob<'_>,
) -> Result<(), Reject> {
    let (reply, answer) = oneshot::channel();
    let owned = Job {
        key: job.key.clone(),
        message: job.message.into(),
        signature: job.signature.into(),
        reply,
    };
    if let Some(opened) = join_or_open(class, owned) {
        tokio::spawn(flush(Arc::clone(backend), class, opened));
    }
    match answer.await {
        Ok(result) => result,
        // The flush went away (runtime shutting down): check it here.
        Err(_) => backend.verify(job.key, job.message, job.signature),
    }
}

/// Adds `job` to the open batch of `class`; when there is none (or it is closed), opens a new
/// one holding `job` and returns it for the caller to schedule its flush.
fn join_or_open(class: BatchClass, job: Job) -> Option<Shared> {
    with_class(class.id, |state| {
        let mut job = Some(job);
        if let Some(batch) = &state.open {
            let mut batch = batch.lock().unwrap_or_else(PoisonError::into_inner);
            if !batch.closed {
                batch.jobs.extend(job.take());
                batch.closed = batch.jobs.len() >= class.max;
            }
        }
        let job = job?;
        let batch = Arc::new(Mutex::new(Batch {
            jobs: vec![job],
            closed: class.max <= 1,
        }));
        state.open = Some(Arc::clone(&batch));
        Some(batch)
    })
}

/// What became of one batch, for the metric and the pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// One signature: checked alone.
    Single,
    /// Checked alone while the class is paused.
    Paused,
    /// Verified by a per-lane engine, each lane on its own.
    Engine,
    /// All-or-nothing: every signature verified together.
    Valid,
    /// All-or-nothing: at least one did not, so each was checked alone.
    Invalid,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Single => labels::SINGLE,
            Outcome::Paused => labels::PAUSED,
            Outcome::Engine => labels::ENGINE_BATCH,
            Outcome::Valid => labels::VALID,
            Outcome::Invalid => labels::INVALID,
        }
    }
}

/// How to check a batch of `len` signatures of a class whose pause counter is `paused`, and the
/// counter's next value before the answer is known. `None`: verify the batch with the engine.
fn plan(answers: BatchAnswers, len: usize, paused: &mut u32) -> Option<Outcome> {
    if len < 2 {
        return Some(Outcome::Single);
    }
    if answers == BatchAnswers::AllOrNothing && *paused > 0 {
        *paused -= 1;
        return Some(Outcome::Paused);
    }
    None
}

/// Lets every check already ready on this core join, then verifies the batch and answers.
async fn flush(backend: Arc<dyn Backend>, class: BatchClass, batch: Shared) {
    tokio::task::yield_now().await;
    let jobs = {
        let mut batch = batch.lock().unwrap_or_else(PoisonError::into_inner);
        batch.closed = true;
        std::mem::take(&mut batch.jobs)
    };
    let planned = with_class(class.id, |state| {
        plan(class.answers, jobs.len(), &mut state.paused)
    });
    let mut results = Vec::with_capacity(jobs.len());
    let outcome = match planned {
        Some(alone) => {
            results.extend(
                jobs.iter()
                    .map(|job| backend.verify(&job.key, &job.message, &job.signature)),
            );
            alone
        }
        None => {
            let views: Vec<VerifyJob<'_>> = jobs
                .iter()
                .map(|job| VerifyJob {
                    key: &job.key,
                    message: &job.message,
                    signature: &job.signature,
                })
                .collect();
            backend.verify_batch(&views, &mut results);
            match class.answers {
                BatchAnswers::PerLane => Outcome::Engine,
                // All valid together, or the engine checked each alone after a failure.
                BatchAnswers::AllOrNothing if results.iter().all(Result::is_ok) => Outcome::Valid,
                BatchAnswers::AllOrNothing => {
                    with_class(class.id, |state| state.paused = PAUSE_AFTER_FAILURE);
                    Outcome::Invalid
                }
            }
        }
    };
    metrics::counter!(names::SIGNATURE_BATCHES_TOTAL, labels::RESULT => outcome.label())
        .increment(1);
    metrics::counter!(names::SIGNATURE_BATCH_SIGNATURES_TOTAL, labels::RESULT => outcome.label())
        .increment(jobs.len() as u64);
    let mut results = results.into_iter();
    for job in jobs {
        let answer = results.next().unwrap_or(Err(Reject::BadSignature));
        // A waiter that went away (its request was cancelled) needs no answer.
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
pub(crate) mod tests;
