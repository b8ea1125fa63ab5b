//! verdict: a token and signature verification appliance for API gateways.
//!
//! Layers, each a module; data flows down this list, never back up:
//! - [`jose`]: the sans-IO token core (parsing, JWKs, claim rules);
//! - [`crypto`]: verification engines behind the [`crypto::Backend`] trait;
//! - [`keys`]: prepared key sets per issuer;
//! - [`cache`]: lock-free sharded caches of answers;
//! - [`policy`]: providers' rules and the verification pipeline.

// Indexing can panic on attacker-controlled lengths: library code uses get() and iterators.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]
// A panic in the appliance is an outage: library code returns errors; tests may `expect`.
#![cfg_attr(not(test), deny(clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod fleet;
pub mod jose;
pub mod keys;
pub mod policy;
pub mod revocation;
pub mod rpc;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod tune;
