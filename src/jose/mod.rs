//! The sans-IO token core: bounded compact-JWS parsing, JWK parsing, claim rules.
//!
//! Nothing here does I/O or reads a clock: `now` is always an argument, so every rule is
//! deterministic under test.
#![forbid(unsafe_code)]

pub mod alg;
pub mod b64;
pub mod claims;
pub mod json;
pub mod jwk;
pub mod jws;
pub mod reject;
mod roca;

pub use alg::{Algorithm, Curve, KeyFamily};
pub use claims::{ClaimRules, Claims};
pub use jwk::{Jwk, JwkError, KeyMaterial, ParsedJwks, parse_jwk, parse_jwks};
pub use jws::{CompactJws, Header, Limits, parse_compact, payload_issuer};
pub use reject::Reject;
