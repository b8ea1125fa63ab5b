//! The provider and the credentials that the independent-client tests (`grpcio_client.rs`,
//! `envoy.rs`) send through verdict: one valid token and one for each way a token goes wrong.
#![allow(dead_code)]

use crate::common::{EXAMPLE_PROVIDER, TestKey, b64, claims, now};
use serde_json::json;

/// The issuer the provider trusts.
pub const ISSUER: &str = "https://idp.example.com";
/// The audience the provider requires.
pub const AUDIENCE: &str = "api://orders";

/// The example provider (`common::EXAMPLE_PROVIDER`: RS256 example key, claim headers for
/// `sub` and `scope`), also requiring the `orders:read` scope.
pub fn provider() -> String {
    let config = EXAMPLE_PROVIDER.replace(
        "leeway_s = 30\n",
        "leeway_s = 30\nrequired_scopes = [\"orders:read\"]\n",
    );
    assert_ne!(
        config, EXAMPLE_PROVIDER,
        "EXAMPLE_PROVIDER no longer has `leeway_s = 30`"
    );
    config
}

/// The scope claim of [`Tokens::valid`].
pub const SCOPE: &str = "orders:read orders:write";

/// What verdict must answer for a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Allowed.
    Allow,
    /// 401 with a bare `Bearer realm=...` challenge (no credential at all).
    MissingCredential,
    /// 401 with `error="invalid_token"`.
    InvalidToken,
    /// 403 with `error="insufficient_scope"`.
    InsufficientScope,
}

impl Expect {
    /// `CheckResponse.status.code`.
    pub fn grpc_code(self) -> i64 {
        match self {
            Expect::Allow => 0,
            Expect::InsufficientScope => 7,
            Expect::MissingCredential | Expect::InvalidToken => 16,
        }
    }

    /// The HTTP status the client sees.
    pub fn http_status(self) -> u16 {
        match self {
            Expect::Allow => 200,
            Expect::InsufficientScope => 403,
            Expect::MissingCredential | Expect::InvalidToken => 401,
        }
    }

    /// Checks a `www-authenticate` value against RFC 6750 for this outcome.
    pub fn check_challenge(self, name: &str, challenge: &str) {
        assert!(
            challenge.starts_with("Bearer "),
            "{name}: www-authenticate must be a Bearer challenge, got {challenge:?}"
        );
        assert!(
            challenge.contains("realm=\"verdict\""),
            "{name}: www-authenticate must name the realm, got {challenge:?}"
        );
        let error = match self {
            Expect::Allow => panic!("{name}: an allowed request has no challenge"),
            Expect::MissingCredential => None,
            Expect::InvalidToken => Some("error=\"invalid_token\""),
            Expect::InsufficientScope => Some("error=\"insufficient_scope\""),
        };
        match error {
            Some(error) => assert!(
                challenge.contains(error),
                "{name}: www-authenticate must carry {error}, got {challenge:?}"
            ),
            None => assert!(
                !challenge.contains("error="),
                "{name}: a missing credential gets a bare challenge (RFC 6750 §3.1), got \
                 {challenge:?}"
            ),
        }
    }
}

/// One request's credential and the answer it must get.
#[derive(Debug, Clone)]
pub struct Case {
    /// A short name for failure messages.
    pub name: &'static str,
    /// The `authorization` header value, if any.
    pub authorization: Option<String>,
    /// The expected outcome.
    pub expect: Expect,
}

/// Tokens signed with the example key.
pub struct Tokens {
    key: TestKey,
}

impl Tokens {
    /// The example RSA key.
    pub fn new() -> Tokens {
        Tokens {
            key: TestKey::example_rsa(),
        }
    }

    /// Signs `claims`.
    pub fn mint(&self, claims: &serde_json::Value) -> String {
        self.key.mint(claims)
    }

    /// A valid token for `sub` with [`SCOPE`].
    pub fn valid(&self, sub: &str) -> String {
        self.mint(&claims(ISSUER, AUDIENCE, sub))
    }

    /// Every denied credential, and one valid token.
    pub fn cases(&self) -> Vec<Case> {
        let now = now();
        let valid = self.valid("alice");
        let mut expired = claims(ISSUER, AUDIENCE, "alice");
        expired["iat"] = json!(now - 7200);
        expired["exp"] = json!(now - 3600);
        let mut tampered = valid.clone().into_bytes();
        // Flip a bit in the middle of the signature (not its last character, whose low bits
        // base64url may ignore).
        let at = tampered.len() - 20;
        if let Some(byte) = tampered.get_mut(at) {
            *byte = if *byte == b'A' { b'B' } else { b'A' };
        }
        let tampered = String::from_utf8(tampered).expect("ascii token");
        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims(ISSUER, AUDIENCE, "alice").to_string().as_bytes())
        );
        let mut no_scope = claims(ISSUER, AUDIENCE, "alice");
        no_scope["scope"] = json!("profile");
        let bearer = |token: String| Some(format!("Bearer {token}"));
        let case = |name, authorization, expect| Case {
            name,
            authorization,
            expect,
        };
        vec![
            case("valid", bearer(valid.clone()), Expect::Allow),
            case(
                "valid_lowercase_scheme",
                Some(format!("bearer {valid}")),
                Expect::Allow,
            ),
            case("missing", None, Expect::MissingCredential),
            case(
                "malformed",
                bearer("not-a.jwt".into()),
                Expect::InvalidToken,
            ),
            case("expired", bearer(self.mint(&expired)), Expect::InvalidToken),
            case(
                "wrong_audience",
                bearer(self.mint(&claims(ISSUER, "api://billing", "alice"))),
                Expect::InvalidToken,
            ),
            case(
                "wrong_issuer",
                bearer(self.mint(&claims("https://evil.example.com", AUDIENCE, "alice"))),
                Expect::InvalidToken,
            ),
            case("bad_signature", bearer(tampered), Expect::InvalidToken),
            case("alg_none", bearer(unsigned), Expect::InvalidToken),
            case(
                "insufficient_scope",
                bearer(self.mint(&no_scope)),
                Expect::InsufficientScope,
            ),
        ]
    }
}
