//! `verdict-load`: the load harness of verdict.
//!
//! It loads a verdict server over gRPC (Envoy's ext_authz v3 `Check`, or `verdict.v1`
//! `VerifyBatch`) from N connections × M concurrent streams, in closed loop (maximum
//! throughput) or open loop at a fixed rate with coordinated-omission-correct latency, with
//! token mixes it signs itself or tokens read from a file. See `bench-harness/README.md`.
//!
//! - [`scenario`]: scenario files (TOML) and their validation;
//! - [`tokens`]: the harness's signing keys and the pre-signed token pool;
//! - [`tokens_file`]: tokens read from a file (a real identity provider's), re-read on demand;
//! - [`setup`]: the work directory (keys, JWKS, verdict config, revocation list);
//! - [`spawn`]: starting, pinning, accounting and stopping a verdict server;
//! - [`load`]: the load engine;
//! - [`outcome`]: judging answers;
//! - [`report`]: the table and the JSON report;
//! - [`plot`]: the SVG percentile plot;
//! - [`wire`]: pre-encoded requests and slim answers (a light client);
//! - [`cli`]: the command line.

pub mod cli;
pub mod load;
pub mod outcome;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod setup;
pub mod spawn;
pub mod tokens;
pub mod tokens_file;
pub mod wire;
