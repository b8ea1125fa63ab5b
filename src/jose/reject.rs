//! The reject reason: one small `Copy` value per distinct failure, with a stable string code.
//!
//! The code is what metrics labels, logs and responses carry, so it never changes once released;
//! new failures get new variants and new codes.

use std::fmt;

macro_rules! reject_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, )+) => {
        /// Why a credential was rejected. Cheap to copy, cheap to compare, safe to log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reject {
            $( $(#[$doc])* $variant, )+
        }

        impl Reject {
            /// Every reason, in declaration order (for metrics pre-registration and docs).
            pub const ALL: &'static [Reject] = &[ $( Reject::$variant, )+ ];

            /// The stable machine-readable code (snake_case), e.g. `bad_signature`.
            pub const fn code(self) -> &'static str {
                match self { $( Reject::$variant => $code, )+ }
            }
        }
    };
}

reject_reasons! {
    /// No credential was presented where one is required.
    MissingCredential => "missing_credential",
    /// The whole token is longer than the configured cap.
    TokenTooLarge => "token_too_large",
    /// The decoded JOSE header is longer than the configured cap.
    HeaderTooLarge => "header_too_large",
    /// The decoded payload is longer than the configured cap.
    PayloadTooLarge => "payload_too_large",
    /// Not a compact JWS: wrong number of parts, or an empty header or signature.
    Malformed => "malformed",
    /// A part is not strict unpadded base64url.
    BadBase64 => "bad_base64",
    /// The header is not a JSON object with a string `alg`, or a header member has the wrong type.
    BadHeader => "bad_header",
    /// A JSON object in the header or the claims repeats a member name.
    DuplicateMember => "duplicate_member",
    /// A JWE (five parts) was presented; only JWS is accepted.
    JweUnsupported => "jwe_unsupported",
    /// `b64: false` (RFC 7797 unencoded payload) is not accepted.
    UnencodedPayload => "unencoded_payload",
    /// `crit` lists an extension this verifier does not understand, or is malformed.
    CritUnsupported => "crit_unsupported",
    /// `alg: none` (an unsecured JWS) is never accepted.
    AlgNone => "alg_none",
    /// The `alg` is not a JWS algorithm this verifier implements.
    UnsupportedAlgorithm => "unsupported_algorithm",
    /// The `alg` is not on the provider's allow-list or does not match the key.
    AlgorithmNotAllowed => "algorithm_not_allowed",
    /// No usable key matches the token's `kid` (and algorithm).
    UnknownKey => "unknown_key",
    /// More than one usable key matches and the token does not say which.
    AmbiguousKey => "ambiguous_key",
    /// The issuer has no usable key set yet (fail closed).
    NoKeys => "no_keys",
    /// The signature does not verify.
    BadSignature => "bad_signature",
    /// The payload is not a JSON object, or a registered claim has the wrong type.
    BadClaims => "bad_claims",
    /// `exp`, `nbf` or `iat` is not a JSON number.
    BadNumericDate => "bad_numeric_date",
    /// `exp` is in the past (beyond the leeway).
    Expired => "expired",
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid => "not_yet_valid",
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture => "issued_in_future",
    /// `exp - iat` (or `exp - now`) exceeds the provider's maximum lifetime.
    LifetimeTooLong => "lifetime_too_long",
    /// `iss` is missing or is not the provider's issuer.
    WrongIssuer => "wrong_issuer",
    /// `aud` does not contain any of the provider's audiences.
    WrongAudience => "wrong_audience",
    /// A claim the provider requires is absent.
    MissingClaim => "missing_claim",
    /// The header `typ` is not the one the provider requires.
    WrongType => "wrong_type",
    /// A claim the provider requires holds a value its claim header cannot carry unchanged (a
    /// control character; an array element that is empty or holds a comma).
    UnrenderableClaim => "unrenderable_claim",
    /// The token was revoked.
    Revoked => "revoked",
    /// The token is valid but lacks a required scope.
    InsufficientScope => "insufficient_scope",
    /// The provider's RFC 7662 introspection endpoint says the token is not active.
    InactiveToken => "inactive_token",
    /// The provider's introspection endpoint could not answer (and no earlier answer could
    /// stand in for it).
    IntrospectionUnavailable => "introspection_unavailable",
}

impl Reject {
    /// True when the credential is acceptable as a credential but not allowed (HTTP 403); false
    /// when it is missing or invalid (HTTP 401).
    pub const fn is_forbidden(self) -> bool {
        matches!(self, Reject::InsufficientScope)
    }

    /// True when the request could not be decided (no usable keys yet, the introspection
    /// endpoint unreachable): the forward-auth listener answers these `503`, not `401`.
    pub const fn is_unavailable(self) -> bool {
        matches!(self, Reject::NoKeys | Reject::IntrospectionUnavailable)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for Reject {}

#[cfg(test)]
mod tests {
    use super::Reject;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for reason in Reject::ALL {
            let code = reason.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "code {code} is not snake_case"
            );
        }
        assert!(std::mem::size_of::<Reject>() == 1);
    }
}
