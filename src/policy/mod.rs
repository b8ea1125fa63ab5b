//! Token policy and the verification pipeline, in jwt-simple's bounded order:
//! size caps → header only → algorithm on the allow-list → key by `kid` and algorithm →
//! signature over the raw signing input → claims parsed and checked last.
//!
//! The pipeline is split in two ([`begin`] and [`Pending::finish`]) so the runtime can collect
//! the signature checks of many requests into one batch between the two halves.
#![forbid(unsafe_code)]

pub mod cached;
pub mod introspection;
pub mod provider;

pub use cached::{CachedAllow, CachedDeny};
pub use introspection::PendingIntrospection;
pub use provider::{
    Allowed, CredentialSource, Deciding, Decision, Denied, Failed, HeaderLookup, Judged,
    PendingDecision, PendingJudgment, Provider, Providers, RequestView, Selector, decide_begin,
    judge_batch, judge_begin, revocation_keys,
};

use crate::crypto::{Backend, PreparedKey, VerifyJob};
use crate::jose::{Algorithm, ClaimRules, Claims, CompactJws, Header, Limits, Reject};
use crate::keys::KeySet;

/// What a provider accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Allowed algorithms; a key is only ever prepared for these.
    pub algorithms: Vec<Algorithm>,
    /// Claim rules.
    pub rules: ClaimRules,
    /// Size caps.
    pub limits: Limits,
}

impl Default for TokenPolicy {
    /// Asymmetric algorithms only; HMAC needs an explicit opt-in.
    fn default() -> Self {
        TokenPolicy {
            algorithms: Algorithm::ALL
                .into_iter()
                .filter(|alg| !alg.is_symmetric())
                .collect(),
            rules: ClaimRules::default(),
            limits: Limits::default(),
        }
    }
}

/// A verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The header.
    pub header: Header,
    /// The claims.
    pub claims: Claims,
}

/// A token whose header is parsed and key chosen, waiting for its signature check.
#[derive(Debug)]
pub struct Pending<'t, 'k> {
    jws: CompactJws<'t>,
    key: &'k PreparedKey,
}

/// First half: parse within the limits, check the algorithm, pick the key.
pub fn begin<'t, 'k>(
    token: &'t [u8],
    policy: &TokenPolicy,
    keys: &'k KeySet,
) -> Result<Pending<'t, 'k>, Reject> {
    begin_parsed(
        crate::jose::parse_compact(token, &policy.limits)?,
        policy,
        keys,
    )
}

/// [`begin`] for a token already parsed within `policy.limits` (routing by `iss` parses it once).
pub fn begin_parsed<'t, 'k>(
    jws: CompactJws<'t>,
    policy: &TokenPolicy,
    keys: &'k KeySet,
) -> Result<Pending<'t, 'k>, Reject> {
    if !policy.algorithms.contains(&jws.header.alg) {
        return Err(Reject::AlgorithmNotAllowed);
    }
    let key = keys.select(&jws.header)?;
    Ok(Pending { jws, key })
}

impl<'t, 'k> Pending<'t, 'k> {
    /// The signature check to run.
    pub fn job(&self) -> VerifyJob<'_> {
        VerifyJob {
            key: self.key,
            message: self.jws.signing_input,
            signature: self.jws.signature(),
        }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.jws.header
    }

    /// The decoded payload: only meaningful once the signature verified.
    pub fn payload(&self) -> &[u8] {
        self.jws.payload()
    }

    /// Second half: given the signature result, parse and check the claims at `now` (seconds
    /// since the Unix epoch).
    pub fn finish(
        self,
        signature: Result<(), Reject>,
        rules: &ClaimRules,
        now: u64,
    ) -> Result<Verified, Reject> {
        signature?;
        let (header, payload) = self.jws.into_parts();
        let claims = Claims::parse_and_check(payload, &header, rules, now)?;
        Ok(Verified { header, claims })
    }
}

/// Verifies one JWT end to end.
pub fn verify_token(
    token: &[u8],
    policy: &TokenPolicy,
    keys: &KeySet,
    backend: &dyn Backend,
    now: u64,
) -> Result<Verified, Reject> {
    let pending = begin(token, policy, keys)?;
    let job = pending.job();
    let signature = backend.verify(job.key, job.message, job.signature);
    pending.finish(signature, &policy.rules, now)
}

/// Verifies a compact JWS's signature only (no claim rules; the payload need not be JSON) and
/// returns its header and decoded payload.
pub fn verify_jws(
    token: &[u8],
    algorithms: &[Algorithm],
    limits: &Limits,
    keys: &KeySet,
    backend: &dyn Backend,
) -> Result<(Header, Vec<u8>), Reject> {
    let jws = crate::jose::parse_compact(token, limits)?;
    if !algorithms.contains(&jws.header.alg) {
        return Err(Reject::AlgorithmNotAllowed);
    }
    let key = keys.select(&jws.header)?;
    backend.verify(key, jws.signing_input, jws.signature())?;
    Ok(jws.into_parts())
}
