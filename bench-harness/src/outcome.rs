//! Judging answers: what the server said for each credential against what it should have said,
//! and the tally of a run (expected allows and denials, revoked tokens apart, unexpected
//! verdicts, transport errors).

use crate::tokens::{Expected, Kind};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use verdict::rpc::proto::{Verdict, VerifyResponse};

/// gRPC OK in `CheckResponse.status.code`.
const GRPC_OK: i32 = 0;
/// gRPC UNAUTHENTICATED in `CheckResponse.status.code`.
const GRPC_UNAUTHENTICATED: i32 = 16;

/// The judgement of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed, as expected.
    Allowed,
    /// Denied as expected; the reason code (from the server with verify-batch, from the token
    /// kind with ext_authz, whose answer carries no reason code).
    Denied(String),
    /// A revoked token was allowed: verdict does not enforce revocation yet.
    RevokedNotEnforced,
    /// A revoked token was denied.
    RevokedEnforced,
    /// Not what the server should have answered.
    Unexpected(String),
}

/// Judges an ext_authz answer for a credential of `kind`.
pub fn classify_check(kind: Kind, response: &CheckResponse) -> Outcome {
    let code = response.status.as_ref().map_or(-1, |s| s.code);
    let (http, challenge) = match &response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => (
            denied.status.as_ref().map_or(0, |s| s.code),
            denied
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key.eq_ignore_ascii_case("www-authenticate"))
                .map(|h| h.value.as_str()),
        ),
        Some(HttpResponse::OkResponse(_)) => (200, None),
        _ => (0, None),
    };
    let allowed = code == GRPC_OK && http == 200;
    match kind.expected() {
        Expected::Allow if allowed => Outcome::Allowed,
        Expected::Allow => {
            Outcome::Unexpected(format!("{kind} token denied (grpc {code}, http {http})"))
        }
        Expected::Revoked if allowed => Outcome::RevokedNotEnforced,
        Expected::Revoked if code == GRPC_UNAUTHENTICATED => Outcome::RevokedEnforced,
        Expected::Revoked => Outcome::Unexpected(format!("{kind} token: grpc {code}, http {http}")),
        Expected::Deny(reason) => {
            if allowed || code == GRPC_OK {
                return Outcome::Unexpected(format!("{kind} token allowed"));
            }
            if code != GRPC_UNAUTHENTICATED || http != 401 {
                return Outcome::Unexpected(format!(
                    "{kind} token: grpc {code}, http {http} (expected 16 / 401)"
                ));
            }
            // RFC 6750: no error code without a credential, `invalid_token` for a bad one.
            let challenge = challenge.unwrap_or("");
            let has_invalid = challenge.contains("error=\"invalid_token\"");
            let fits = if kind == Kind::NoCredential {
                challenge.starts_with("Bearer") && !challenge.contains("error=")
            } else {
                has_invalid
            };
            if fits {
                Outcome::Denied(reason.to_owned())
            } else {
                Outcome::Unexpected(format!(
                    "{kind} token: www-authenticate {challenge:?} does not fit"
                ))
            }
        }
    }
}

/// Judges a `verdict.v1` answer for a token of `kind`.
pub fn classify_verify(kind: Kind, response: &VerifyResponse) -> Outcome {
    let valid = response.verdict == Verdict::Valid as i32;
    let invalid = response.verdict == Verdict::Invalid as i32;
    let reason = response.reason.as_str();
    match kind.expected() {
        Expected::Allow if valid => Outcome::Allowed,
        Expected::Allow => Outcome::Unexpected(format!("{kind} token judged invalid: {reason}")),
        Expected::Revoked if valid => Outcome::RevokedNotEnforced,
        Expected::Revoked if invalid && reason == "revoked" => Outcome::RevokedEnforced,
        Expected::Revoked => Outcome::Unexpected(format!("{kind} token: reason {reason}")),
        Expected::Deny(_) if valid => Outcome::Unexpected(format!("{kind} token judged valid")),
        Expected::Deny(_) if !invalid => Outcome::Unexpected(format!(
            "{kind} token: verdict {} (neither valid nor invalid)",
            response.verdict
        )),
        // An empty token has no "missing credential" in verdict.v1: any invalid reason fits.
        Expected::Deny(_) if kind == Kind::NoCredential => Outcome::Denied(reason.to_owned()),
        Expected::Deny(expected) if reason == expected => Outcome::Denied(reason.to_owned()),
        Expected::Deny(expected) => Outcome::Unexpected(format!(
            "{kind} token: reason {reason} (expected {expected})"
        )),
    }
}

/// Most distinct error samples kept.
pub const MAX_SAMPLES: usize = 10;

/// What a run got back, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// RPCs answered at the transport level.
    pub requests: u64,
    /// Tokens judged (= requests for Check; batch size × requests for VerifyBatch).
    pub tokens: u64,
    /// Expected allows.
    pub allowed: u64,
    /// Expected denials by reason code.
    pub denied: BTreeMap<String, u64>,
    /// Revoked tokens that were allowed ("revoked (not enforced yet)"): not errors.
    pub revoked_not_enforced: u64,
    /// Revoked tokens that were denied.
    pub revoked_enforced: u64,
    /// Unexpected verdicts (e.g. a valid token denied), by description.
    pub unexpected: BTreeMap<String, u64>,
    /// Transport errors (timeouts, gRPC status errors, broken connections), by kind.
    pub transport: BTreeMap<String, u64>,
    /// The first few distinct error messages, for diagnosis.
    pub samples: Vec<String>,
}

impl Tally {
    /// Counts one judged answer; true when it was unexpected.
    pub fn count(&mut self, outcome: Outcome) -> bool {
        self.tokens += 1;
        match outcome {
            Outcome::Allowed => self.allowed += 1,
            Outcome::Denied(reason) => match self.denied.get_mut(&reason) {
                Some(n) => *n += 1,
                None => {
                    self.denied.insert(reason, 1);
                }
            },
            Outcome::RevokedNotEnforced => self.revoked_not_enforced += 1,
            Outcome::RevokedEnforced => self.revoked_enforced += 1,
            Outcome::Unexpected(what) => {
                self.sample(&what);
                *self.unexpected.entry(what).or_insert(0) += 1;
                return true;
            }
        }
        false
    }

    /// Counts a transport error of `kind`, with its message as a sample.
    pub fn transport_error(&mut self, kind: &str, message: &str) {
        *self.transport.entry(kind.to_owned()).or_insert(0) += 1;
        self.sample(&format!("{kind}: {message}"));
    }

    fn sample(&mut self, text: &str) {
        if self.samples.len() < MAX_SAMPLES && !self.samples.iter().any(|s| s == text) {
            let mut text = text.to_owned();
            text.truncate(300);
            self.samples.push(text);
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.tokens += other.tokens;
        self.allowed += other.allowed;
        for (k, v) in &other.denied {
            *self.denied.entry(k.clone()).or_insert(0) += v;
        }
        self.revoked_not_enforced += other.revoked_not_enforced;
        self.revoked_enforced += other.revoked_enforced;
        for (k, v) in &other.unexpected {
            *self.unexpected.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.transport {
            *self.transport.entry(k.clone()).or_insert(0) += v;
        }
        for s in &other.samples {
            self.sample(s);
        }
    }

    /// All unexpected verdicts.
    pub fn unexpected_total(&self) -> u64 {
        self.unexpected.values().sum()
    }

    /// All transport errors.
    pub fn transport_total(&self) -> u64 {
        self.transport.values().sum()
    }

    /// All expected denials.
    pub fn denied_total(&self) -> u64 {
        self.denied.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
    use envoy_types::pb::envoy::service::auth::v3::{DeniedHttpResponse, OkHttpResponse};
    use envoy_types::pb::envoy::r#type::v3::HttpStatus;
    use envoy_types::pb::google::rpc::Status;

    fn ok() -> CheckResponse {
        CheckResponse {
            status: Some(Status {
                code: 0,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            ..Default::default()
        }
    }

    fn denied(challenge: &str) -> CheckResponse {
        CheckResponse {
            status: Some(Status {
                code: 16,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus { code: 401 }),
                headers: vec![HeaderValueOption {
                    header: Some(HeaderValue {
                        key: "www-authenticate".into(),
                        value: challenge.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                body: String::new(),
            })),
            ..Default::default()
        }
    }

    const INVALID: &str = "Bearer realm=\"verdict\", error=\"invalid_token\"";

    #[test]
    fn check_answers() {
        assert_eq!(classify_check(Kind::Valid, &ok()), Outcome::Allowed);
        assert!(matches!(
            classify_check(Kind::Valid, &denied(INVALID)),
            Outcome::Unexpected(_)
        ));
        assert_eq!(
            classify_check(Kind::BadSignature, &denied(INVALID)),
            Outcome::Denied("bad_signature".into())
        );
        assert!(matches!(
            classify_check(Kind::Expired, &ok()),
            Outcome::Unexpected(_)
        ));
        assert_eq!(
            classify_check(Kind::NoCredential, &denied("Bearer realm=\"verdict\"")),
            Outcome::Denied("missing_credential".into())
        );
        assert!(matches!(
            classify_check(Kind::NoCredential, &denied(INVALID)),
            Outcome::Unexpected(_)
        ));
        assert_eq!(
            classify_check(Kind::Revoked, &ok()),
            Outcome::RevokedNotEnforced
        );
        assert_eq!(
            classify_check(Kind::Revoked, &denied(INVALID)),
            Outcome::RevokedEnforced
        );
    }

    #[test]
    fn verify_answers() {
        let answer = |verdict: Verdict, reason: &str| VerifyResponse {
            verdict: verdict as i32,
            reason: reason.into(),
            ..Default::default()
        };
        assert_eq!(
            classify_verify(Kind::New, &answer(Verdict::Valid, "")),
            Outcome::Allowed
        );
        assert_eq!(
            classify_verify(Kind::UnknownKid, &answer(Verdict::Invalid, "unknown_key")),
            Outcome::Denied("unknown_key".into())
        );
        assert!(matches!(
            classify_verify(Kind::Expired, &answer(Verdict::Invalid, "bad_signature")),
            Outcome::Unexpected(_)
        ));
        assert_eq!(
            classify_verify(Kind::Revoked, &answer(Verdict::Valid, "")),
            Outcome::RevokedNotEnforced
        );
        assert_eq!(
            classify_verify(Kind::NoCredential, &answer(Verdict::Invalid, "malformed")),
            Outcome::Denied("malformed".into())
        );
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::default();
        a.count(Outcome::Allowed);
        a.count(Outcome::Denied("expired".into()));
        a.transport_error("timeout", "5s");
        let mut b = Tally::default();
        b.count(Outcome::Denied("expired".into()));
        b.count(Outcome::Unexpected("valid token denied".into()));
        b.merge(&a);
        assert_eq!(b.tokens, 4);
        assert_eq!(b.denied.get("expired"), Some(&2));
        assert_eq!(b.unexpected_total(), 1);
        assert_eq!(b.transport_total(), 1);
        assert_eq!(b.samples.len(), 2);
    }
}
