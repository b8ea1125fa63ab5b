//! JWT claims (RFC 7519) and the rules a provider applies to them. Pure: `now` is an argument.
//!
//! Parsing is one strict pass over the payload that keeps only the registered claims the rules
//! read (`iss`, `aud`, `exp`, `nbf`, `iat`); the full member map is built only when something
//! asks for it (claim headers, metadata, the CLI), so the hot path allocates almost nothing.

use super::json::{
    Shallow, StrictJsonError, WantedNames, parse_object, walk_object, walk_object_wanted,
};
use super::jws::Header;
use super::reject::Reject;
use arrayvec::ArrayVec;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;

/// The decoded claims set of a verified token: the exact JSON that was signed (validated
/// strictly) and the registered claims the rules use.
#[derive(Debug, Clone)]
pub struct Claims {
    json: String,
    registered: Registered,
    members: OnceLock<Map<String, Value>>,
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

/// A registered claim as found: absent, present with the expected type, or present with another.
#[derive(Debug, Clone, Default, PartialEq)]
enum Member<T> {
    #[default]
    Absent,
    Present(T),
    WrongType,
}

/// A string claim: a byte range of the payload when it had no escapes, else its decoded text.
#[derive(Debug, Clone, PartialEq)]
enum Text {
    Span(usize, usize),
    Decoded(Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
enum Audience {
    One(Text),
    Many(Vec<Text>),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Registered {
    iss: Member<Text>,
    aud: Member<Audience>,
    exp: Member<f64>,
    nbf: Member<f64>,
    iat: Member<f64>,
}

/// The registered claims read while parsing, in [`Registered`]'s order.
const REGISTERED: [&str; 5] = ["iss", "aud", "exp", "nbf", "iat"];

impl Claims {
    /// Parses a payload as a strict JSON object (duplicate member names rejected at any depth).
    pub fn parse(payload: &[u8]) -> Result<Claims, Reject> {
        Claims::from_payload(payload.to_vec())
    }

    /// Like [`Claims::parse`], taking ownership of the decoded payload (no copy).
    pub fn from_payload(payload: Vec<u8>) -> Result<Claims, Reject> {
        Claims::read(payload, &[]).map(|(claims, _)| claims)
    }

    /// Parses a payload and checks `rules` in one pass over it: the claims `rules` require are
    /// looked for during the parse instead of by a second walk.
    pub fn parse_and_check(
        payload: Vec<u8>,
        header: &Header,
        rules: &ClaimRules,
        now: u64,
    ) -> Result<Claims, Reject> {
        let (claims, required_present) = Claims::read(payload, &rules.required_claims)?;
        rules.check_with(header, &claims, now, required_present)?;
        Ok(claims)
    }

    /// Parses, also reporting whether every name in `required` is a member (`None` when the list
    /// is too long to note in one pass).
    fn read(payload: Vec<u8>, required: &[String]) -> Result<(Claims, Option<bool>), Reject> {
        const MAX_NOTED: usize = 24;
        // Registered names are answered from `registered`; the others join the walk.
        let mut unregistered = required
            .iter()
            .map(String::as_str)
            .filter(|name| !REGISTERED.contains(name));
        let extra: ArrayVec<&str, MAX_NOTED> = unregistered.by_ref().take(MAX_NOTED).collect();
        let complete = unregistered.next().is_none();
        let mut extra_found = 0u32;

        // Strict JSON is UTF-8 throughout, so check that once, up front.
        let json = String::from_utf8(payload).map_err(|_| Reject::BadClaims)?;
        let mut registered = Registered::default();
        let base = json.as_ptr() as usize;
        // A borrowed string is a slice of `json`, so its position is its offset from the start.
        let text = |s: Cow<'_, str>| match s {
            Cow::Borrowed(b) => {
                let start = (b.as_ptr() as usize).wrapping_sub(base);
                Text::Span(start, start + b.len())
            }
            Cow::Owned(o) => Text::Decoded(o.into_boxed_str()),
        };
        let date = |value: Shallow<'_>| match value {
            Shallow::Number(n) => Member::Present(n),
            _ => Member::WrongType,
        };
        // The registered names alone (the usual case) have their tags computed at compile time.
        const REGISTERED_ONLY: WantedNames<'static> = WantedNames::new(&REGISTERED);
        let mut names: ArrayVec<&str, { REGISTERED.len() + MAX_NOTED }> = ArrayVec::new();
        let prepared;
        let wanted = if extra.is_empty() {
            &REGISTERED_ONLY
        } else {
            names.extend(REGISTERED);
            names.extend(extra.iter().copied());
            prepared = WantedNames::new(&names);
            &prepared
        };
        walk_object_wanted(&json, wanted, &mut |index, value| match index {
            0 => {
                registered.iss = match value {
                    Shallow::String(s) => Member::Present(text(s)),
                    _ => Member::WrongType,
                }
            }
            1 => {
                registered.aud = match value {
                    Shallow::String(s) => Member::Present(Audience::One(text(s))),
                    Shallow::StringArray(items) => {
                        Member::Present(Audience::Many(items.into_iter().map(text).collect()))
                    }
                    _ => Member::WrongType,
                }
            }
            2 => registered.exp = date(value),
            3 => registered.nbf = date(value),
            4 => registered.iat = date(value),
            extra => extra_found |= 1 << (extra - REGISTERED.len()),
        })
        .map_err(|e| match e {
            StrictJsonError::DuplicateMember => Reject::DuplicateMember,
            StrictJsonError::Invalid => Reject::BadClaims,
        })?;
        let claims = Claims {
            json,
            registered,
            members: OnceLock::new(),
        };
        let required_present = complete.then(|| {
            required.iter().all(|name| match name.as_str() {
                "iss" => claims.registered.iss != Member::Absent,
                "aud" => claims.registered.aud != Member::Absent,
                "exp" => claims.registered.exp != Member::Absent,
                "nbf" => claims.registered.nbf != Member::Absent,
                "iat" => claims.registered.iat != Member::Absent,
                other => extra
                    .iter()
                    .position(|name| *name == other)
                    .is_some_and(|bit| extra_found & (1 << bit) != 0),
            })
        });
        Ok((claims, required_present))
    }

    /// The claims set exactly as signed (strict JSON object).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// All members, built on first use.
    pub fn members(&self) -> &Map<String, Value> {
        self.members.get_or_init(|| self.build_members())
    }

    /// Consumes the claims, returning the members.
    pub fn into_members(mut self) -> Map<String, Value> {
        match self.members.take() {
            Some(members) => members,
            None => self.build_members(),
        }
    }

    fn build_members(&self) -> Map<String, Value> {
        // Cannot fail: the same strict parser accepted this text when the claims were read (and
        // serde_json's own reader would not do: it refuses some numbers this one accepts).
        parse_object(self.json.as_bytes()).unwrap_or_default()
    }

    /// One member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members().get(name)
    }

    /// Whether a member is present, without building the member map.
    pub fn contains(&self, name: &str) -> bool {
        if let Some(members) = self.members.get() {
            return members.contains_key(name);
        }
        let mut found = false;
        let walked = walk_object(self.json.as_bytes(), &[name], &mut |_, _| found = true);
        walked.is_ok() && found
    }

    fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        match text {
            Text::Span(start, end) => self.json.get(*start..*end).unwrap_or(""),
            Text::Decoded(s) => s,
        }
    }

    /// `iss`; a non-string is `BadClaims`.
    pub fn issuer(&self) -> Result<Option<&str>, Reject> {
        match &self.registered.iss {
            Member::Absent => Ok(None),
            Member::Present(text) => Ok(Some(self.text(text))),
            Member::WrongType => Err(Reject::BadClaims),
        }
    }

    /// A registered NumericDate claim (`exp`, `nbf` or `iat`: seconds since the epoch, possibly
    /// fractional); a non-number is `BadNumericDate`, another name is `None`.
    pub fn numeric_date(&self, name: &str) -> Result<Option<f64>, Reject> {
        let member = match name {
            "exp" => &self.registered.exp,
            "nbf" => &self.registered.nbf,
            "iat" => &self.registered.iat,
            _ => return Ok(None),
        };
        match member {
            Member::Absent => Ok(None),
            Member::Present(n) => Ok(Some(*n)),
            Member::WrongType => Err(Reject::BadNumericDate),
        }
    }

    /// `exp` as whole seconds, when present and valid (for cache lifetimes).
    pub fn expires_at(&self) -> Option<u64> {
        let exp = self.numeric_date("exp").ok().flatten()?;
        (exp.is_finite() && exp >= 0.0).then(|| exp.floor().min(u64::MAX as f64) as u64)
    }

    /// The `aud` values, borrowed: a single string or each string of an array; another type is
    /// `BadClaims`.
    fn audience_values(&self) -> Result<impl Iterator<Item = &str>, Reject> {
        let texts: &[Text] = match &self.registered.aud {
            Member::Absent => &[],
            Member::Present(Audience::One(text)) => std::slice::from_ref(text),
            Member::Present(Audience::Many(items)) => items,
            Member::WrongType => return Err(Reject::BadClaims),
        };
        Ok(texts.iter().map(|text| self.text(text)))
    }

    /// The `aud` claim as a list: a single string or an array of strings; another type is
    /// `BadClaims`.
    pub fn audiences(&self) -> Result<Vec<&str>, Reject> {
        Ok(self.audience_values()?.collect())
    }

    /// Whether `aud` names any of `wanted` (no allocation); another type is `BadClaims`.
    fn audience_matches(&self, wanted: &[String]) -> Result<bool, Reject> {
        Ok(self
            .audience_values()?
            .any(|aud| wanted.iter().any(|want| want == aud)))
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
        self.check_with(header, claims, now, None)
    }

    /// [`ClaimRules::check`], with the presence of the required claims already known (from
    /// the parse) or `None` to look them up.
    fn check_with(
        &self,
        header: &Header,
        claims: &Claims,
        now: u64,
        required_present: Option<bool>,
    ) -> Result<(), Reject> {
        // Types first, so a malformed claim is reported as such rather than as a policy failure.
        let exp = claims.numeric_date("exp")?;
        let nbf = claims.numeric_date("nbf")?;
        let iat = claims.numeric_date("iat")?;
        let iss = claims.issuer()?;
        let audience_matches = claims.audience_matches(&self.audiences)?;

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
        if !self.audiences.is_empty() && !audience_matches {
            return Err(Reject::WrongAudience);
        }
        let required_present = required_present.unwrap_or_else(|| {
            self.required_claims
                .iter()
                .all(|name| claims.contains(name))
        });
        if !required_present {
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
            typ: typ.map(std::sync::Arc::from),
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

    #[test]
    fn registered_claims_read_in_one_pass_and_members_built_on_demand() {
        let json = r#"{"iss":"https:\/\/idp.example","aud":["x","api://a"],"exp":9,"n":{"d":[1]}}"#;
        let claims = Claims::parse(json.as_bytes()).expect("claims");
        assert_eq!(claims.issuer(), Ok(Some("https://idp.example")));
        assert_eq!(claims.audiences(), Ok(vec!["x", "api://a"]));
        assert_eq!(claims.numeric_date("exp"), Ok(Some(9.0)));
        assert_eq!(claims.expires_at(), Some(9));
        assert!(claims.contains("n") && !claims.contains("d"));
        assert_eq!(claims.json(), json);
        assert_eq!(claims.get("n"), Some(&serde_json::json!({"d": [1]})));
        assert!(claims.contains("n"), "also answered from the built map");
        let members = claims.clone().into_members();
        assert_eq!(members.len(), 4);
        assert_eq!(
            members.get("iss"),
            Some(&Value::from("https://idp.example"))
        );
        let wrong = Claims::parse(br#"{"iss":["a"],"aud":{"x":1},"exp":"9"}"#).expect("claims");
        assert_eq!(wrong.issuer(), Err(Reject::BadClaims));
        assert_eq!(wrong.audiences(), Err(Reject::BadClaims));
        assert_eq!(wrong.numeric_date("exp"), Err(Reject::BadNumericDate));
        assert_eq!(wrong.expires_at(), None);
    }

    #[test]
    fn required_claims_found_in_the_parse_agree_with_lookups() {
        let base = format!(
            r#""iss":"https://idp.example","aud":"api://a","exp":{},"s\u0075b":"x","tenant":null"#,
            NOW + 60
        );
        let many: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
        let all_many = many
            .iter()
            .map(|name| format!(r#","{name}":1"#))
            .collect::<String>();
        let cases: Vec<(Vec<String>, String)> = vec![
            (vec![], base.clone()),
            (vec!["sub".into()], base.clone()),
            (vec!["sub".into(), "tenant".into()], base.clone()),
            (vec!["sub".into(), "azp".into()], base.clone()),
            (vec!["exp".into(), "sub".into(), "sub".into()], base.clone()),
            (vec!["nbf".into()], base.clone()),
            (many.clone(), base.clone()),
            (many.clone(), format!("{base}{all_many}")),
        ];
        for (required, members) in cases {
            let json = format!("{{{members}}}");
            let mut r = rules();
            r.required_claims = required.clone();
            let header = header(Some("JWT"));
            let parsed = Claims::parse(json.as_bytes()).expect("claims");
            let looked_up = r.check(&header, &parsed, NOW);
            let in_one_pass =
                Claims::parse_and_check(json.clone().into_bytes(), &header, &r, NOW).map(|_| ());
            assert_eq!(in_one_pass, looked_up, "required {required:?}");
        }
        let mut r = rules();
        r.required_claims = vec!["sub".into(), "azp".into()];
        let json = format!("{{{base}}}");
        assert_eq!(
            Claims::parse_and_check(json.into_bytes(), &header(None), &r, NOW).err(),
            Some(Reject::MissingClaim)
        );
    }

    #[test]
    fn members_are_built_by_the_parser_that_accepted_them() {
        // serde_json (without float_roundtrip) refuses this number; the claims were accepted,
        // so the map must hold every member, not silently none.
        let json = br#"{"sub":"alice","scope":"read","x":1.7976931348623158e308}"#;
        let claims = Claims::parse(json).expect("claims");
        assert_eq!(claims.members().len(), 3);
        assert_eq!(claims.get("sub"), Some(&Value::from("alice")));
        assert!(claims.contains("sub"));
    }
}
