//! What a cached answer must carry to be served again safely, and the checks a hit runs.
//!
//! A verified token's answer is stored with the facts that can end its validity: the
//! configuration it was judged under, its provider, the key set's generation and the
//! fingerprint of the key that verified it (so a key leaving the set ends it at once, while a
//! key joining does not), and its expiry. A hit re-checks those and nothing else: it parses
//! nothing and renders nothing. Denials are cached only when the token's own bytes decide them
//! (malformed, bad signature, unknown issuer, expired...), and only for the snapshot that made
//! them, so a refetch that brings a missing key is never hidden by an older denial.

use super::provider::{Allowed, Decision, Denied, Providers, token_header};
use crate::jose::{Header, Reject};
use std::sync::Arc;

/// A positive answer and what decides whether it still stands.
#[derive(Debug, Clone)]
pub struct CachedAllow {
    /// The rendered answer.
    pub allowed: Arc<Allowed>,
    config_id: u64,
    provider: u32,
    keys_generation: u64,
    key_fingerprint: u64,
}

/// A negative answer, valid for one providers snapshot.
#[derive(Debug, Clone)]
pub struct CachedDeny {
    /// Why.
    pub denied: Denied,
    /// The provider that denied it, when one did.
    pub provider: Option<String>,
    snapshot_id: u64,
}

impl CachedAllow {
    /// The cache entry for a JWT allowed by `decision` (`None` for any other answer, e.g. an
    /// introspected token, whose client has its own cache), with the time it must stop being
    /// served: `min(exp, now + max_ttl_s)`.
    pub fn of(
        decision: &Decision,
        token: &str,
        providers: &Providers,
        now: u64,
        max_ttl_s: u64,
    ) -> Option<(CachedAllow, u64)> {
        let Decision::Allow(allowed) = decision else {
            return None;
        };
        let alg = allowed.alg?;
        let index = providers
            .list()
            .iter()
            .position(|p| p.name == allowed.provider)?;
        let provider = providers.list().get(index)?;
        let header = token_header(token)?;
        let key = provider.keys.select(&Header {
            alg,
            kid: header.kid,
            typ: None,
        });
        let key_fingerprint = provider.keys.fingerprint_of(key.ok()?)?;
        let ttl_end = now.saturating_add(max_ttl_s);
        let expires_at = allowed.expires_at.map_or(ttl_end, |exp| exp.min(ttl_end));
        Some((
            CachedAllow {
                allowed: Arc::clone(allowed),
                config_id: providers.config_id(),
                provider: u32::try_from(index).ok()?,
                keys_generation: provider.keys_generation,
                key_fingerprint,
            },
            expires_at,
        ))
    }

    /// Whether this answer still stands on `providers` (expiry is the cache's own check): the
    /// same configuration, the provider still has keys, and the key that verified the token
    /// is still published.
    pub fn stands(&self, providers: &Providers) -> bool {
        if providers.config_id() != self.config_id {
            return false;
        }
        let Some(provider) = providers.list().get(self.provider as usize) else {
            return false;
        };
        provider.keys_generation == self.keys_generation
            || provider.keys.has_fingerprint(self.key_fingerprint)
    }
}

impl CachedDeny {
    /// The cache entry for a denial the token's own bytes decide, on this snapshot.
    pub fn of(decision: &Decision, providers: &Providers) -> Option<CachedDeny> {
        let Decision::Deny(denied, provider) = decision else {
            return None;
        };
        is_token_intrinsic(denied.reason).then(|| CachedDeny {
            denied: *denied,
            provider: provider.clone(),
            snapshot_id: providers.snapshot_id(),
        })
    }

    /// Whether this denial still stands on `providers`: only the snapshot that made it.
    pub fn stands(&self, providers: &Providers) -> bool {
        providers.snapshot_id() == self.snapshot_id
    }

    /// The denial again.
    pub fn decision(&self) -> Decision {
        Decision::Deny(self.denied, self.provider.clone())
    }
}

/// Denials that the token and the snapshot decide for good. Not cached: time-dependent ones
/// (`not_yet_valid`, `issued_in_future`: they may pass later), key-set misses (`unknown_key`,
/// `ambiguous_key`, `no_keys`: a refetch may fix them), `revoked` (a revocation can be
/// removed), and the introspection answers (their client caches them under its own rules).
pub fn is_token_intrinsic(reason: Reject) -> bool {
    matches!(
        reason,
        Reject::TokenTooLarge
            | Reject::HeaderTooLarge
            | Reject::PayloadTooLarge
            | Reject::Malformed
            | Reject::BadBase64
            | Reject::BadHeader
            | Reject::DuplicateMember
            | Reject::JweUnsupported
            | Reject::UnencodedPayload
            | Reject::CritUnsupported
            | Reject::AlgNone
            | Reject::UnsupportedAlgorithm
            | Reject::AlgorithmNotAllowed
            | Reject::BadSignature
            | Reject::BadClaims
            | Reject::BadNumericDate
            | Reject::Expired
            | Reject::LifetimeTooLong
            | Reject::WrongIssuer
            | Reject::WrongAudience
            | Reject::MissingClaim
            | Reject::WrongType
            | Reject::UnrenderableClaim
            | Reject::InsufficientScope
    )
}
