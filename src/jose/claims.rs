//! JWT claims (RFC 7519) and the rules a provider applies to them. Pure: `now` is an argument.

use super::json::{StrictJsonError, parse_object};
use super::jws::Header;
use super::reject::Reject;
use serde_json::{Map, Value};

/// The decoded claims set of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    members: Map<String, Value>,
}

impl Claims {
    /// Parses a payload as a strict JSON object (duplicate member names rejected).
    pub fn parse(payload: &[u8]) -> Result<Claims, Reject> {
        parse_object(payload)
            .map(|members| Claims { members })
            .map_err(|e| match e {
                StrictJsonError::DuplicateMember => Reject::DuplicateMember,
                StrictJsonError::Invalid => Reject::BadClaims,
            })
    }

    /// All members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    /// Consumes the claims, returning the members.
    pub fn into_members(self) -> Map<String, Value> {
        self.members
    }

    /// One member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// A string-valued registered claim; another type is `BadClaims`.
    pub fn string(&self, name: &str) -> Result<Option<&str>, Reject> {
        match self.members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Reject::BadClaims),
        }
    }

    /// A NumericDate claim (seconds since the epoch, possibly fractional); a non-number is
    /// `BadNumericDate`.
    pub fn numeric_date(&self, name: &str) -> Result<Option<f64>, Reject> {
        match self.members.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(Reject::BadNumericDate),
            Some(_) => Err(Reject::BadNumericDate),
        }
    }

    /// `exp` as whole seconds, when present and valid (for cache lifetimes).
    pub fn expires_at(&self) -> Option<u64> {
        let exp = self.numeric_date("exp").ok().flatten()?;
        (exp.is_finite() && exp >= 0.0).then(|| exp.floor().min(u64::MAX as f64) as u64)
    }

    /// The `aud` claim as a list: a single string or an array of strings.
    pub fn audiences(&self) -> Result<Vec<&str>, Reject> {
        match self.members.get("aud") {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.as_str()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(Reject::BadClaims))
                .collect(),
            Some(_) => Err(Reject::BadClaims),
        }
    }
}

/// What a provider requires of a token's claims and header. Defaults are secure: `exp`
/// required, 30 s leeway, nothing else checked until configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// Exact match on `iss` (`None` = not checked; providers always set it).
    pub issuer: Option<String>,
    /// `aud` must contain at least one of these; empty = not checked.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_s: u64,
    /// Maximum accepted lifetime (`exp - iat`, and `exp - now`), in seconds.
    pub max_lifetime_s: Option<u64>,
    /// Claims that must be present (any value).
    pub required_claims: Vec<String>,
    /// Require `exp` (default true: a token without expiry is valid forever).
    pub require_exp: bool,
    /// Required header `typ`, compared per RFC 7515 §4.1.9 (case-insensitive, the
    /// `application/` prefix optional), e.g. `at+jwt` for RFC 9068 access tokens.
    pub typ: Option<String>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        ClaimRules {
            issuer: None,
            audiences: Vec::new(),
            leeway_s: 30,
            max_lifetime_s: None,
            required_claims: Vec::new(),
            require_exp: true,
            typ: None,
        }
    }
}

impl ClaimRules {
    /// Applies every rule. `now` is seconds since the Unix epoch.
    pub fn check(&self, header: &Header, claims: &Claims, now: u64) -> Result<(), Reject> {
        // Types first, so a malformed claim is reported as such rather than as a policy failure.
        let exp = claims.numeric_date("exp")?;
        let nbf = claims.numeric_date("nbf")?;
        let iat = claims.numeric_date("iat")?;
        let iss = claims.string("iss")?;
        let audiences = claims.audiences()?;

        let now = now as f64;
        let leeway = self.leeway_s as f64;
        match exp {
            Some(exp) if now >= exp + leeway => return Err(Reject::Expired),
            None if self.require_exp => return Err(Reject::MissingClaim),
            _ => {}
        }
        if let Some(nbf) = nbf
            && now + leeway < nbf
        {
            return Err(Reject::NotYetValid);
        }
        if let Some(iat) = iat
            && iat > now + leeway
        {
            return Err(Reject::IssuedInFuture);
        }
        if let (Some(max), Some(exp)) = (self.max_lifetime_s, exp) {
            let max = max as f64;
            let issued = iat.unwrap_or(now);
            if exp - issued > max || exp - now > max + leeway {
                return Err(Reject::LifetimeTooLong);
            }
        }
        if let Some(expected) = &self.issuer
            && iss != Some(expected.as_str())
        {
            return Err(Reject::WrongIssuer);
        }
        if !self.audiences.is_empty()
            && !audiences
                .iter()
                .any(|aud| self.audiences.iter().any(|want| want == aud))
        {
            return Err(Reject::WrongAudience);
        }
        if self
            .required_claims
            .iter()
            .any(|name| claims.get(name).is_none())
        {
            return Err(Reject::MissingClaim);
        }
        if let Some(want) = &self.typ {
            let matches = header
                .typ
                .as_deref()
                .is_some_and(|typ| media_type_eq(typ, want));
            if !matches {
                return Err(Reject::WrongType);
            }
        }
        Ok(())
    }
}

/// Compares `typ` values as RFC 7515 §4.1.9 says: case-insensitively, `application/` optional.
fn media_type_eq(a: &str, b: &str) -> bool {
    fn strip(s: &str) -> &str {
        let prefix = "application/";
        match s.get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(prefix) => s.get(prefix.len()..).unwrap_or(""),
            _ => s,
        }
    }
    strip(a).eq_ignore_ascii_case(strip(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::Algorithm;

    const NOW: u64 = 1_700_000_000;

    fn header(typ: Option<&str>) -> Header {
        Header {
            alg: Algorithm::RS256,
            kid: None,
            typ: typ.map(str::to_owned),
        }
    }

    fn check(rules: &ClaimRules, claims: &str) -> Result<(), Reject> {
        let claims = Claims::parse(claims.as_bytes())?;
        rules.check(&header(Some("JWT")), &claims, NOW)
    }

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: Some("https://idp.example".into()),
            audiences: vec!["api://a".into(), "api://b".into()],
            ..ClaimRules::default()
        }
    }

    #[test]
    fn accepts_a_good_token() {
        let c = format!(
            r#"{{"iss":"https://idp.example","aud":"api://b","exp":{},"iat":{}}}"#,
            NOW + 60,
            NOW
        );
        assert_eq!(check(&rules(), &c), Ok(()));
        let c = format!(
            r#"{{"iss":"https://idp.example","aud":["x","api://a"],"exp":{}.5}}"#,
            NOW + 60
        );
        assert_eq!(check(&rules(), &c), Ok(()));
    }

    #[test]
    fn time_rules_with_leeway() {
        let r = rules();
        let base =
            |extra: &str| format!(r#"{{"iss":"https://idp.example","aud":"api://a",{extra}}}"#);
        // exp within leeway is still accepted; at exp + leeway it is expired.
        assert_eq!(check(&r, &base(&format!(r#""exp":{}"#, NOW - 29))), Ok(()));
        assert_eq!(
            check(&r, &base(&format!(r#""exp":{}"#, NOW - 30))),
            Err(Reject::Expired)
        );
        assert_eq!(
            check(
                &r,
                &base(&format!(r#""exp":{},"nbf":{}"#, NOW + 99, NOW + 31))
            ),
            Err(Reject::NotYetValid)
        );
        assert_eq!(
            check(
                &r,
                &base(&format!(r#""exp":{},"nbf":{}"#, NOW + 99, NOW + 30))
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &r,
                &base(&format!(r#""exp":{},"iat":{}"#, NOW + 99, NOW + 31))
            ),
            Err(Reject::IssuedInFuture)
        );
        assert_eq!(check(&r, &base(r#""sub":"x""#)), Err(Reject::MissingClaim));
        assert_eq!(
            check(&r, &base(r#""exp":"tomorrow""#)),
            Err(Reject::BadNumericDate)
        );
        assert_eq!(
            check(&r, &base(&format!(r#""exp":{},"iat":null"#, NOW + 1))),
            Err(Reject::BadNumericDate)
        );
    }

    #[test]
    fn lifetime_issuer_audience_required_typ() {
        let mut r = rules();
        r.max_lifetime_s = Some(3600);
        let c = format!(
            r#"{{"iss":"https://idp.example","aud":"api://a","exp":{},"iat":{}}}"#,
            NOW + 7200,
            NOW
        );
        assert_eq!(check(&r, &c), Err(Reject::LifetimeTooLong));

        let c = format!(
            r#"{{"iss":"https://idp.example/","aud":"api://a","exp":{}}}"#,
            NOW + 9
        );
        assert_eq!(check(&rules(), &c), Err(Reject::WrongIssuer));
        let c = format!(r#"{{"aud":"api://a","exp":{}}}"#, NOW + 9);
        assert_eq!(check(&rules(), &c), Err(Reject::WrongIssuer));
        let c = format!(r#"{{"iss":7,"aud":"api://a","exp":{}}}"#, NOW + 9);
        assert_eq!(check(&rules(), &c), Err(Reject::BadClaims));

        let c = format!(
            r#"{{"iss":"https://idp.example","aud":["api://c"],"exp":{}}}"#,
            NOW + 9
        );
        assert_eq!(check(&rules(), &c), Err(Reject::WrongAudience));
        let c = format!(r#"{{"iss":"https://idp.example","exp":{}}}"#, NOW + 9);
        assert_eq!(check(&rules(), &c), Err(Reject::WrongAudience));
        let c = format!(
            r#"{{"iss":"https://idp.example","aud":[1],"exp":{}}}"#,
            NOW + 9
        );
        assert_eq!(check(&rules(), &c), Err(Reject::BadClaims));

        let mut r = rules();
        r.required_claims = vec!["sub".into()];
        let c = format!(
            r#"{{"iss":"https://idp.example","aud":"api://a","exp":{}}}"#,
            NOW + 9
        );
        assert_eq!(check(&r, &c), Err(Reject::MissingClaim));

        let mut r = rules();
        r.typ = Some("at+jwt".into());
        let claims = Claims::parse(c.as_bytes()).expect("claims");
        assert_eq!(
            r.check(&header(Some("JWT")), &claims, NOW),
            Err(Reject::WrongType)
        );
        assert_eq!(r.check(&header(None), &claims, NOW), Err(Reject::WrongType));
        assert_eq!(
            r.check(&header(Some("application/AT+JWT")), &claims, NOW),
            Ok(())
        );
    }

    #[test]
    fn claims_must_be_a_strict_object() {
        assert_eq!(Claims::parse(b"[1]").err(), Some(Reject::BadClaims));
        assert_eq!(Claims::parse(b"foo").err(), Some(Reject::BadClaims));
        assert_eq!(
            Claims::parse(br#"{"sub":"a","sub":"b"}"#).err(),
            Some(Reject::DuplicateMember)
        );
    }
}
