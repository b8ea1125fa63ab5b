//! The batcher's rules, on a real single-threaded tokio runtime with the aws-lc-rs engine
//! (dalek Ed25519 batches); crypto_mb's per-lane batches are tested with the real library in
//! `crypto::crypto_mb::tests`.
#![allow(clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use super::*;
use crate::crypto::aws_lc::ED25519_BATCH_CLASS;
use crate::crypto::{AwsLcBackend, PrepareError};
use crate::jose::{Algorithm, KeyMaterial};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

/// What the engine was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Single,
    Batch(usize),
}

/// aws-lc-rs, recording its calls, with the batch class of the test (`answers` decides).
struct Recording {
    inner: AwsLcBackend,
    answers: BatchAnswers,
    /// The class id it reports.
    id: u32,
    calls: Mutex<Vec<Call>>,
}

impl Recording {
    fn new(answers: BatchAnswers) -> Arc<Recording> {
        Recording::with_id(answers, 1)
    }

    fn with_id(answers: BatchAnswers, id: u32) -> Arc<Recording> {
        Arc::new(Recording {
            inner: AwsLcBackend::default(),
            answers,
            id,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, call: Call) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

impl Backend for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn prepare(&self, material: &KeyMaterial, alg: Algorithm) -> Result<PreparedKey, PrepareError> {
        self.inner.prepare(material, alg)
    }
    fn verify(&self, key: &PreparedKey, message: &[u8], signature: &[u8]) -> Result<(), Reject> {
        self.record(Call::Single);
        self.inner.verify(key, message, signature)
    }
    fn verify_batch(&self, jobs: &[VerifyJob<'_>], results: &mut Vec<Result<(), Reject>>) {
        self.record(Call::Batch(jobs.len()));
        self.inner.verify_batch(jobs, results);
    }
    fn batch_class(&self, key: &PreparedKey) -> Option<BatchClass> {
        let class = self.inner.batch_class(key)?;
        Some(BatchClass {
            id: self.id,
            answers: self.answers,
            ..class
        })
    }
}

struct Signer {
    pair: Ed25519KeyPair,
    key: PreparedKey,
}

impl Signer {
    fn new(backend: &dyn Backend) -> Signer {
        let pair = Ed25519KeyPair::generate().expect("key");
        let x: [u8; 32] = pair.public_key().as_ref().try_into().expect("32 bytes");
        let key = backend
            .prepare(&KeyMaterial::Ed25519 { x }, Algorithm::EdDSA)
            .expect("prepared");
        Signer { pair, key }
    }

    /// `count` messages signed, those `bad(i)` says tampered.
    fn signed(&self, count: usize, bad: impl Fn(usize) -> bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..count)
            .map(|i| {
                let message = format!("token {i}").into_bytes();
                let mut signature = self.pair.sign(&message).as_ref().to_vec();
                if bad(i) {
                    signature[5] ^= 1;
                }
                (message, signature)
            })
            .collect()
    }
}

/// Runs every check as its own task on `runtime` (all ready together) and returns the answers.
pub(crate) fn check_all(
    runtime: &tokio::runtime::Runtime,
    backend: &Arc<dyn Backend>,
    key: &PreparedKey,
    checks: &[(Vec<u8>, Vec<u8>)],
) -> Vec<Result<(), Reject>> {
    let class = backend.batch_class(key).expect("a batching key");
    runtime.block_on(async {
        let tasks: Vec<_> = checks
            .iter()
            .cloned()
            .map(|(message, signature)| {
                let backend = Arc::clone(backend);
                let key = key.clone();
                tokio::spawn(async move {
                    let job = VerifyJob {
                        key: &key,
                        message: &message,
                        signature: &signature,
                    };
                    verify(&backend, class, job).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task"));
        }
        answers
    })
}

pub(crate) fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn expected(checks: usize, bad: impl Fn(usize) -> bool) -> Vec<Result<(), Reject>> {
    (0..checks)
        .map(|i| {
            if bad(i) {
                Err(Reject::BadSignature)
            } else {
                Ok(())
            }
        })
        .collect()
}

/// All-or-nothing (dalek): ready checks share a batch; a bad one makes every member be checked
/// alone with its own verdict, and pauses the class for [`PAUSE_AFTER_FAILURE`] batches, then
/// batching resumes; alone, a check is verified at once.
#[test]
fn all_or_nothing_batches_keep_verdicts_and_pause_after_a_failure() {
    let engine = Recording::new(BatchAnswers::AllOrNothing);
    let backend: Arc<dyn Backend> = engine.clone();
    let signer = Signer::new(&*backend);
    let runtime = current_thread();

    let good = signer.signed(40, |_| false);
    assert_eq!(
        check_all(&runtime, &backend, &signer.key, &good),
        expected(40, |_| false)
    );
    assert_eq!(
        engine.take_calls(),
        vec![Call::Batch(40)],
        "one shared batch"
    );

    let bad = |i: usize| i % 7 == 3;
    let mixed = signer.signed(40, bad);
    assert_eq!(
        check_all(&runtime, &backend, &signer.key, &mixed),
        expected(40, bad)
    );
    assert_eq!(engine.take_calls(), vec![Call::Batch(40)]);

    // Paused: the next batches are checked alone, then batching resumes.
    let four = signer.signed(4, |_| false);
    for round in 0..PAUSE_AFTER_FAILURE {
        assert_eq!(
            check_all(&runtime, &backend, &signer.key, &four),
            expected(4, |_| false)
        );
        assert_eq!(
            engine.take_calls(),
            vec![Call::Single; 4],
            "paused round {round}"
        );
    }
    check_all(&runtime, &backend, &signer.key, &four);
    assert_eq!(
        engine.take_calls(),
        vec![Call::Batch(4)],
        "batching resumes"
    );

    // Alone, a check is verified at once, without a batch.
    let one = signer.signed(1, |_| false);
    assert_eq!(
        check_all(&runtime, &backend, &signer.key, &one),
        vec![Ok(())]
    );
    assert_eq!(engine.take_calls(), vec![Call::Single]);

    // A signature of the wrong size is refused in the batch, its neighbours verified.
    let mut short = signer.signed(6, |_| false);
    short[2].1.truncate(63);
    assert_eq!(
        check_all(&runtime, &backend, &signer.key, &short),
        expected(6, |i| i == 2)
    );
    assert_eq!(engine.take_calls(), vec![Call::Batch(6)]);
}

/// Batches close when full: 300 ready checks of a class capped at 128 make 128 + 128 + 44.
#[test]
fn a_full_batch_closes_and_the_next_opens() {
    let engine = Recording::new(BatchAnswers::AllOrNothing);
    let backend: Arc<dyn Backend> = engine.clone();
    let signer = Signer::new(&*backend);
    let runtime = current_thread();
    let checks = signer.signed(300, |_| false);
    assert_eq!(
        check_all(&runtime, &backend, &signer.key, &checks),
        expected(300, |_| false)
    );
    let max = ED25519_BATCH_CLASS.max;
    let mut calls = engine.take_calls();
    calls.sort_by_key(|call| match call {
        Call::Batch(n) => *n,
        Call::Single => 0,
    });
    assert_eq!(
        calls,
        vec![
            Call::Batch(300 - 2 * max),
            Call::Batch(max),
            Call::Batch(max)
        ]
    );
}

/// Per-lane classes answer each lane and never pause: a batch with bad signatures is followed
/// by batches again.
#[test]
fn per_lane_batches_never_pause() {
    let engine = Recording::new(BatchAnswers::PerLane);
    let backend: Arc<dyn Backend> = engine.clone();
    let signer = Signer::new(&*backend);
    let runtime = current_thread();
    let bad = |i: usize| i.is_multiple_of(3);
    let mixed = signer.signed(20, bad);
    assert_eq!(
        check_all(&runtime, &backend, &signer.key, &mixed),
        expected(20, bad)
    );
    let good = signer.signed(5, |_| false);
    check_all(&runtime, &backend, &signer.key, &good);
    assert_eq!(engine.take_calls(), vec![Call::Batch(20), Call::Batch(5)]);
}

/// The pause is per class: a failure in one class leaves another batching.
#[test]
fn the_pause_is_per_class() {
    let dalek = Recording::new(BatchAnswers::AllOrNothing);
    let dalek_backend: Arc<dyn Backend> = dalek.clone();
    let signer = Signer::new(&*dalek_backend);
    let runtime = current_thread();
    let mixed = signer.signed(10, |i| i == 4);
    check_all(&runtime, &dalek_backend, &signer.key, &mixed);
    // A second all-or-nothing class on the same core.
    let other = Recording::with_id(BatchAnswers::AllOrNothing, 2);
    let other_backend: Arc<dyn Backend> = other.clone();
    let good = signer.signed(4, |_| false);
    check_all(&runtime, &other_backend, &signer.key, &good);
    assert_eq!(other.take_calls(), vec![Call::Batch(4)]);
    dalek.take_calls();
    check_all(&runtime, &dalek_backend, &signer.key, &good);
    assert_eq!(dalek.take_calls(), vec![Call::Single; 4], "still paused");
}
