//! verdict: a token and signature verification appliance for API gateways.
//!
//! Layers, each a module; data flows down this list, never back up:
//! - [`jose`]: the sans-IO token core (parsing, JWKs, claim rules);
//! - [`crypto`]: verification engines behind the [`crypto::Backend`] trait;
//! - [`keys`]: prepared key sets per issuer;
//! - [`policy`]: providers' rules and the verification pipeline.

pub mod crypto;
pub mod jose;
pub mod keys;
pub mod policy;
