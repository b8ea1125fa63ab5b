//! gRPC services: Envoy ext_authz v3, `verdict.v1`, health and reflection.
//!
//! Services translate protocol messages to and from the policy layer; they never verify
//! anything themselves.
#![forbid(unsafe_code)]

pub mod ext_authz;
pub mod observe;
pub mod verifier;

use crate::crypto::{Backend, VerifyJob};
use crate::jose::Reject;
use crate::policy::Providers;
use crate::runtime::ed25519_batcher;
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
    /// here when it is an Ed25519 signature whose key can batch
    /// ([`crate::runtime::ed25519_batcher`]), otherwise alone with the engine.
    pub async fn check_signature(&self, job: VerifyJob<'_>) -> Result<(), Reject> {
        if let Some(key) = job.key.ed25519_batch_key()
            && ed25519_batcher::verify(key, job.message, job.signature).await
        {
            return Ok(());
        }
        self.backend.verify(job.key, job.message, job.signature)
    }
}

/// The system clock in Unix seconds.
pub fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
