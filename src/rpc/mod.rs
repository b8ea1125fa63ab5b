//! gRPC services: Envoy ext_authz v3, `verdict.v1` (Verifier, RevocationAdmin), health and
//! reflection; the HTTP forward-auth endpoint; and the HTTP admin API.
//!
//! Services translate protocol messages to and from the policy layer; they never verify
//! anything themselves.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_grpc;
pub mod answers;
pub mod check_wire;
pub mod ext_authz;
pub mod forward_auth;
pub mod grpc_server;
pub mod observe;
pub mod verifier;

use crate::crypto::{Backend, VerifyJob};
use crate::jose::Reject;
use crate::keys::live::KidMiss;
use crate::policy::{Deciding, Decision, Providers, RequestView, decide_begin};
use crate::revocation::RevocationSet;
use crate::runtime::batcher;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Generated `verdict.v1` types, server and client.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("verdict.v1");

    /// Encoded descriptors of `verdict.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("verdict_v1_descriptor");
}

/// What every service reads: the current providers snapshot and the engine.
#[derive(Clone)]
pub struct ServiceState {
    /// Providers, swapped whole on reload or key refresh; readers never block.
    pub providers: Arc<ArcSwap<Providers>>,
    /// The verification engine.
    pub backend: Arc<dyn Backend>,
    /// The clock, in Unix seconds (a function so tests can pin it).
    pub clock: fn() -> u64,
    /// The answer caches; `None` when `[cache]` turns them off.
    pub answers: Option<Arc<answers::Answers>>,
    /// The live revocations, loaded on every check (cached answers included).
    pub revocations: Arc<ArcSwap<RevocationSet>>,
}

impl std::fmt::Debug for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceState")
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl ServiceState {
    /// Checks one request's signature on this core: in a batch with the other requests ready
    /// here when the engine batches its key ([`crate::runtime::batcher`]), otherwise alone
    /// with the engine.
    pub async fn check_signature(&self, job: VerifyJob<'_>) -> Result<(), Reject> {
        if let Some(class) = self.backend.batch_class(job.key) {
            return batcher::verify(&self.backend, class, job).await;
        }
        self.backend.verify(job.key, job.message, job.signature)
    }
}

impl ServiceState {
    /// Decides one request, then refuses it if a live revocation matches the token (checked on
    /// every answer, cached or fresh, so a revocation applies at once everywhere).
    pub async fn decide(&self, view: &RequestView<'_>) -> Decision {
        let decision = self.decide_unrevoked(view).await;
        self.unless_revoked(decision)
    }

    /// `decision`, or `revoked` when it allows a token a live revocation matches.
    pub fn unless_revoked(&self, decision: Decision) -> Decision {
        if let Decision::Allow(allowed) = &decision
            && self.revocations.load().revokes(&allowed.revocable)
        {
            return Decision::Deny(
                crate::policy::Denied {
                    reason: Reject::Revoked,
                    alg: allowed.alg,
                },
                Some(allowed.provider.clone()),
            );
        }
        decision
    }

    /// Decides one request: from the answer caches when a stored answer still stands (see
    /// [`answers`]), else on the current providers snapshot, with concurrent misses of one
    /// credential waiting for the first.
    async fn decide_unrevoked(&self, view: &RequestView<'_>) -> Decision {
        let Some(answers) = &self.answers else {
            return self.decide_fresh(view).await;
        };
        let judged_on = self.providers.load_full();
        let Some((token, source)) = judged_on.credential_at(view) else {
            return self.decide_fresh(view).await;
        };
        let now = (self.clock)();
        let key = answers.key(source, token);
        let _leader = match answers.lookup(key, &judged_on, now) {
            answers::Lookup::Hit(decision) => return decision,
            answers::Lookup::Miss(_, leader) => leader,
            answers::Lookup::Wait(_, follower) => {
                follower.wait().await;
                let current = self.providers.load();
                if let Some(decision) = answers.get(key, &current, (self.clock)()) {
                    return decision;
                }
                // The leader's answer was not cacheable (or it was cancelled): decide here.
                None
            }
        };
        let decision = self.decide_fresh(view).await;
        let current = self.providers.load();
        answers.store(key, token, &decision, &judged_on, &current, now);
        decision
    }

    /// Decides one request on the current providers snapshot, without the caches. A token
    /// whose `kid` its provider's key set lacks waits, at most the provider's
    /// `kid_miss_wait_ms`, for a refetch of that key set (rate-limited and single-flight, see
    /// [`crate::keys::live`]) and is then decided again on the new snapshot; every other
    /// request is decided without waiting.
    pub async fn decide_fresh(&self, view: &RequestView<'_>) -> Decision {
        let providers = self.providers.load_full();
        let decision = self.decide_on(view, &providers).await;
        let Some((provider, kid)) = providers.unknown_kid(&decision, view) else {
            return decision;
        };
        let Some(live) = provider.live.clone() else {
            return decision;
        };
        if live.on_unknown_kid(&kid, provider.keys_generation).await != KidMiss::Refetched {
            return decision;
        }
        let fresh = self.providers.load_full();
        let decision = self.decide_on(view, &fresh).await;
        if let Some((provider, kid)) = fresh.unknown_kid(&decision, view)
            && let Some(live) = &provider.live
        {
            live.remember_absent(&kid, provider.keys_generation);
        }
        decision
    }

    async fn decide_on(&self, view: &RequestView<'_>, providers: &Providers) -> Decision {
        match decide_begin(view, providers) {
            Deciding::Done(decision) => decision,
            Deciding::Signature(pending) => {
                let signature = self.check_signature(pending.job()).await;
                pending.finish(signature, (self.clock)())
            }
            Deciding::Introspect(pending) => {
                let now = (self.clock)();
                let answer = match &pending.provider().introspection {
                    Some(client) => client.introspect(pending.token(), now).await,
                    None => Err(crate::keys::introspect::Unavailable(
                        "no introspection client".into(),
                    )),
                };
                pending.finish(answer, now)
            }
        }
    }
}

/// The system clock in Unix seconds.
pub fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
