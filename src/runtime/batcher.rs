//! Cross-request signature batches for engines that verify several signatures in one call
//! (Intel crypto_mb: eight lanes per call), per core.
//!
//! The same rules as the Ed25519 batcher ([`super::ed25519_batcher`]): the first check of a
//! batch class (the engine's family: RSA-2048, P-256, ...) on a core opens a batch and spawns its
//! flush on that core's runtime; the flush yields once, so every check already ready on the core
//! joins, then hands the whole batch to the engine's `verify_batch` and answers each waiter with
//! its own result. Nothing waits on a timer: alone on its core a check is a batch of one, which
//! the engine verifies at once (crypto_mb sends batches below its break-even size to aws-lc-rs).
//! The engine answers every lane on its own, so one forgery never changes a neighbour's verdict
//! and needs no pause. Requests on one core never wait for another core.

use crate::crypto::{Backend, PreparedKey, VerifyJob};
use crate::jose::Reject;
use crate::telemetry::names::{self, labels};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// Most signatures in one batch (the engine splits it into calls of its own width).
pub const MAX_BATCH: usize = 64;

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

thread_local! {
    /// The open batch of each class on this core.
    static OPEN: RefCell<Vec<(u32, Shared)>> = const { RefCell::new(Vec::new()) };
}

/// Checks `job` in this core's current batch of `class` on `backend`; the answer is exactly
/// what `backend.verify` would give. Must run inside a tokio runtime (it spawns the flush).
pub async fn verify(
    backend: &Arc<dyn Backend>,
    class: u32,
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
        tokio::spawn(flush(Arc::clone(backend), opened));
    }
    match answer.await {
        Ok(result) => result,
        // The flush went away (runtime shutting down): check it here.
        Err(_) => backend.verify(job.key, job.message, job.signature),
    }
}

fn join_or_open(class: u32, job: Job) -> Option<Shared> {
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        let mut job = Some(job);
        if let Some((_, batch)) = open.iter().find(|(c, _)| *c == class) {
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
        open.retain(|(c, _)| *c != class);
        open.push((class, Arc::clone(&batch)));
        Some(batch)
    })
}

async fn flush(backend: Arc<dyn Backend>, batch: Shared) {
    tokio::task::yield_now().await;
    let jobs = {
        let mut batch = batch.lock().unwrap_or_else(PoisonError::into_inner);
        batch.closed = true;
        std::mem::take(&mut batch.jobs)
    };
    let views: Vec<VerifyJob<'_>> = jobs
        .iter()
        .map(|job| VerifyJob {
            key: &job.key,
            message: &job.message,
            signature: &job.signature,
        })
        .collect();
    let mut results = Vec::with_capacity(jobs.len());
    backend.verify_batch(&views, &mut results);
    drop(views);
    let result = if jobs.len() < 2 {
        labels::SINGLE
    } else {
        labels::ENGINE_BATCH
    };
    metrics::counter!(names::SIGNATURE_BATCHES_TOTAL, labels::RESULT => result).increment(1);
    metrics::counter!(names::SIGNATURE_BATCH_SIGNATURES_TOTAL, labels::RESULT => result)
        .increment(jobs.len() as u64);
    let mut results = results.into_iter();
    for job in jobs {
        let answer = results.next().unwrap_or(Err(Reject::BadSignature));
        // A waiter that went away (its request was cancelled) needs no answer.
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AwsLcBackend;
    use crate::jose::{Algorithm, KeyMaterial};
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    /// An engine that batches every key and records the batch sizes it was given.
    struct Recording {
        inner: AwsLcBackend,
        sizes: Mutex<Vec<usize>>,
    }

    impl Backend for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }
        fn prepare(
            &self,
            material: &KeyMaterial,
            alg: Algorithm,
        ) -> Result<PreparedKey, crate::crypto::PrepareError> {
            self.inner.prepare(material, alg)
        }
        fn verify(
            &self,
            key: &PreparedKey,
            message: &[u8],
            signature: &[u8],
        ) -> Result<(), Reject> {
            self.inner.verify(key, message, signature)
        }
        fn verify_batch(&self, jobs: &[VerifyJob<'_>], results: &mut Vec<Result<(), Reject>>) {
            self.sizes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(jobs.len());
            self.inner.verify_batch(jobs, results);
        }
        fn batch_class(&self, _key: &PreparedKey) -> Option<u32> {
            Some(7)
        }
    }

    #[test]
    fn checks_ready_together_share_a_batch_and_keep_their_own_answers() {
        let engine = Arc::new(Recording {
            inner: AwsLcBackend::default(),
            sizes: Mutex::new(Vec::new()),
        });
        let backend: Arc<dyn Backend> = engine.clone();
        let pair = Ed25519KeyPair::generate().expect("key");
        let x: [u8; 32] = pair.public_key().as_ref().try_into().expect("32 bytes");
        let key = backend
            .prepare(&KeyMaterial::Ed25519 { x }, Algorithm::EdDSA)
            .expect("prepared");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let messages: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        let signatures: Vec<Vec<u8>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut sig = pair.sign(m).as_ref().to_vec();
                if i % 7 == 3 {
                    sig[10] ^= 1;
                }
                sig
            })
            .collect();
        let answers = runtime.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..messages.len() {
                let backend = Arc::clone(&backend);
                let key = key.clone();
                let message = messages[i].clone();
                let signature = signatures[i].clone();
                tasks.push(tokio::spawn(async move {
                    let job = VerifyJob {
                        key: &key,
                        message: &message,
                        signature: &signature,
                    };
                    verify(&backend, 7, job).await
                }));
            }
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.expect("task"));
            }
            answers
        });
        for (i, answer) in answers.iter().enumerate() {
            let want = if i % 7 == 3 {
                Err(Reject::BadSignature)
            } else {
                Ok(())
            };
            assert_eq!(*answer, want, "check {i}");
        }
        let sizes = engine
            .sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(
            sizes,
            vec![20],
            "all 20 checks were ready together: one batch"
        );

        // Alone on its core, a check is a batch of one, answered at once.
        let alone = runtime.block_on(verify(
            &backend,
            7,
            VerifyJob {
                key: &key,
                message: &messages[0],
                signature: &signatures[0],
            },
        ));
        assert_eq!(alone, Ok(()));
        let sizes = engine
            .sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(sizes, vec![20, 1]);
    }
}
