//! The decision for an introspected (opaque) token: the endpoint's answer goes through the same
//! claim rules, scopes and claim headers as a JWT's claims.
//!
//! Routing: a credential that is JWT-shaped (three dot-separated parts whose first decodes to a
//! JSON object) goes to the JWT providers by its `iss`; anything else goes to the first
//! `type = "introspection"` provider reading that credential source.

use super::provider::{Decision, Denied, Provider, allow, has_scopes};
use crate::jose::{Algorithm, Claims, Header, Reject};
use crate::keys::introspect::{Introspected, Unavailable};
use serde_json::Value;

/// Whether `token` looks like a compact JWS/JWT (and so is judged by signature, not
/// introspection).
pub fn is_jwt_shaped(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // `{"` in base64url starts with `ey`; a decoded check would cost more and decide the same.
    header.starts_with("ey")
}

/// An opaque token routed to an introspection provider, waiting for the endpoint's answer.
#[derive(Debug)]
pub struct PendingIntrospection<'t, 'p> {
    provider: &'p Provider,
    token: &'t str,
}

impl<'t, 'p> PendingIntrospection<'t, 'p> {
    pub(super) fn new(provider: &'p Provider, token: &'t str) -> Self {
        PendingIntrospection { provider, token }
    }

    /// The provider whose endpoint decides.
    pub fn provider(&self) -> &'p Provider {
        self.provider
    }

    /// The credential to introspect.
    pub fn token(&self) -> &'t str {
        self.token
    }

    /// Given the endpoint's answer, applies the provider's claim rules (issuer, audiences,
    /// `exp`/`nbf`/`iat` with leeway, required claims) and scopes at `now`, and renders the
    /// claim headers. A response without `iss` speaks for the provider's issuer.
    pub fn finish(self, answer: Result<Introspected, Unavailable>, now: u64) -> Decision {
        let provider = self.provider;
        let deny =
            |reason| Decision::Deny(Denied { reason, alg: None }, Some(provider.name.clone()));
        let members = match answer {
            Err(_) => return deny(Reject::IntrospectionUnavailable),
            Ok(Introspected::Inactive) => return deny(Reject::InactiveToken),
            Ok(Introspected::Active(members)) => members,
        };
        let mut members = (*members).clone();
        if let Some(issuer) = &provider.policy.rules.issuer {
            members
                .entry("iss")
                .or_insert_with(|| Value::String(issuer.clone()));
        }
        let Ok(payload) = serde_json::to_vec(&members) else {
            return deny(Reject::BadClaims);
        };
        // The rules read no header member but `typ`, which introspection providers never set.
        let header = Header {
            alg: Algorithm::EdDSA,
            kid: None,
            typ: None,
        };
        let claims = match Claims::parse_and_check(payload, &header, &provider.policy.rules, now) {
            Ok(claims) => claims,
            Err(reason) => return deny(reason),
        };
        if !has_scopes(claims.members(), &provider.required_scopes) {
            return deny(Reject::InsufficientScope);
        }
        let expires_at = claims.expires_at();
        allow(provider, None, None, claims.into_members(), expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(is_jwt_shaped("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
        for token in [
            "opaque-token-value",
            "a.b.c",
            "eyJ.x",
            "eyJ.a.b.c",
            "2YotnFZFEjr1zCsicMWpAA",
        ] {
            assert!(!is_jwt_shaped(token), "{token}");
        }
    }
}
