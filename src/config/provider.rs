//! `[[providers]]`: one trusted token issuer, its defaults, and its checks.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use super::headers::{check_claims_to_headers, check_credential_sources};
use super::introspection::{ClientAuth, ProviderType, Unavailable, check_introspection};
use super::key_source::{KeySource, check_key_source};
use super::server::ServerConfig;
use crate::jose::{Algorithm, ClaimRules};
use crate::policy::TokenPolicy;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Largest accepted `providers[].leeway_s`, in seconds.
pub const MAX_LEEWAY_S: u64 = 300;
/// Longest accepted provider name (it becomes a metrics label).
pub const MAX_PROVIDER_NAME_LEN: usize = 64;

/// `[[providers]]`: one trusted token issuer and what it must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `name` (required): unique, `[a-z0-9_-]+`, at most 64 characters; used in logs, metrics
    /// and the `verdict.v1` API.
    pub name: String,
    /// `type` (default `"jwt"`): `"jwt"` verifies signed JWTs with the provider's keys;
    /// `"introspection"` asks the provider's RFC 7662 endpoint about any credential that is not
    /// JWT-shaped.
    #[serde(default, rename = "type")]
    pub r#type: ProviderType,
    /// `issuer` (required): the exact `iss` value of this provider's tokens; non-empty and
    /// unique across providers.
    pub issuer: String,
    /// `audiences` (default empty): the token's `aud` must contain at least one of these;
    /// empty = `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `jwks_file` (key source): a local JWKS file; relative paths are resolved against the
    /// config file's directory. Must exist at load. Exactly one of `jwks_file`, `jwks_uri`,
    /// `discovery_uri`, `jwks_inline` is set.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// `jwks_uri` (key source): a JWKS URL; `https://`, or `http://` only to `127.0.0.1`,
    /// `[::1]` or `localhost`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// `discovery_uri` (key source): an OpenID Connect discovery URL
    /// (`…/.well-known/openid-configuration`); same scheme rule as `jwks_uri`.
    #[serde(default)]
    pub discovery_uri: Option<String>,
    /// `jwks_inline` (key source): a JWKS JSON document (`{"keys":[…]}`) written in the config;
    /// must hold at least one usable verification key.
    #[serde(default)]
    pub jwks_inline: Option<String>,
    /// `algorithms` (default: every asymmetric algorithm): the allow-list of JWS algorithms;
    /// non-empty. HMAC (`HS*`) is only ever allowed when listed explicitly.
    #[serde(default = "default_algorithms", deserialize_with = "de_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// `leeway_s` (default 30, at most 300): clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway_s")]
    pub leeway_s: u64,
    /// `max_lifetime_s` (default none = unlimited): longest accepted token lifetime
    /// (`exp - iat`, and `exp - now`), in seconds; at least 1 when set.
    #[serde(default)]
    pub max_lifetime_s: Option<u64>,
    /// `required_claims` (default empty): claims that must be present (any value).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// `require_exp` (default true): reject tokens without `exp` (they would be valid forever).
    #[serde(default = "default_true")]
    pub require_exp: bool,
    /// `typ` (default none = not checked): required JOSE header `typ`, e.g. `"at+jwt"` for
    /// RFC 9068 access tokens (compared case-insensitively, `application/` optional).
    #[serde(default)]
    pub typ: Option<String>,
    /// `required_scopes` (default empty): every one must be present in the space-separated
    /// `scope` claim or the `scp` array, else the request is denied with 403.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// `claims_to_headers` (default empty): claim name → request header added on success.
    /// Header names are lowercase HTTP tokens, unique, and not hop-by-hop, `authorization`,
    /// `host`, `content-length` or `:`-pseudo headers.
    #[serde(default)]
    pub claims_to_headers: BTreeMap<String, String>,
    /// `claims_to_metadata` (default empty = no dynamic metadata): claims put into the
    /// ext_authz answer's `dynamic_metadata` under `verdict.claims` (with `verdict.provider`
    /// and `verdict.alg`); `["*"]` = every claim. Off by default because Envoy pays for it on
    /// every call (about 13 µs measured).
    #[serde(default)]
    pub claims_to_metadata: Vec<String>,
    /// `token_header` (default `"authorization"`): the request header carrying the credential
    /// (case-insensitive; stored lower-cased).
    #[serde(default = "default_token_header")]
    pub token_header: String,
    /// `token_scheme` (default `"Bearer"`): the scheme before the token in `token_header`,
    /// matched case-insensitively; `""` = the raw header value is the token.
    #[serde(default = "default_token_scheme")]
    pub token_scheme: String,
    /// `token_cookie` (default none): also accept the token from this cookie.
    #[serde(default)]
    pub token_cookie: Option<String>,
    /// `token_query` (default none): also accept the token from this query parameter.
    #[serde(default)]
    pub token_query: Option<String>,
    /// `refresh_interval_s` (default 300, at least 1): how often remote key sources
    /// (`jwks_uri`, `discovery_uri`) are refetched; ignored for local ones.
    #[serde(default = "default_refresh_interval_s")]
    pub refresh_interval_s: u64,
    /// `min_refresh_s` (default 60, at least 1): the shortest refresh period an IdP's
    /// `Cache-Control: max-age` (or `no-cache`) can ask for.
    #[serde(default = "default_min_refresh_s")]
    pub min_refresh_s: u64,
    /// `max_refresh_s` (default 3600, at least `min_refresh_s`): the longest refresh period an
    /// IdP's `max-age` can ask for, so a removed key stops verifying within this bound.
    #[serde(default = "default_max_refresh_s")]
    pub max_refresh_s: u64,
    /// `kid_miss_refetch_interval_s` (default 5, at least 1): at most one refetch per this
    /// period for tokens whose `kid` is not in the key set (a forged-`kid` flood costs the IdP
    /// one fetch per period).
    #[serde(default = "default_kid_miss_refetch_interval_s")]
    pub kid_miss_refetch_interval_s: u64,
    /// `kid_miss_wait_ms` (default 500, at most 10000; 0 = never wait): how long a check whose
    /// `kid` is unknown waits for that refetch before it is denied.
    #[serde(default = "default_kid_miss_wait_ms")]
    pub kid_miss_wait_ms: u64,
    /// `max_stale_s` (default 86400, at least 1): how long the last good remote key set keeps
    /// serving while its IdP fails; then the provider fails closed (`no_keys`, `/readyz` 503).
    #[serde(default = "default_max_stale_s")]
    pub max_stale_s: u64,
    /// `fetch_timeout_ms` (default 10000, 100 to 60000): the whole of one discovery or JWKS
    /// fetch, connection included (a server dripping its answer is cut off at this bound).
    #[serde(default = "default_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
    /// `max_response_bytes` (default 1048576, 1024 to 16777216): the largest discovery or JWKS
    /// document accepted.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// `introspection_uri` (introspection providers): the RFC 7662 endpoint; or set
    /// `discovery_uri` and its `introspection_endpoint` is used. Same scheme rule as `jwks_uri`.
    #[serde(default)]
    pub introspection_uri: Option<String>,
    /// `client_id` (introspection providers, required): verdict's client id at the endpoint.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `client_secret_file` (introspection providers): the client secret (whitespace trimmed).
    /// Exactly one of `client_secret_file` and `client_key_file`.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// `client_key_file` (introspection providers): a PKCS#8 PEM private key (RSA → RS256,
    /// P-256 → ES256, Ed25519 → EdDSA) signing RFC 7523 client assertions (`private_key_jwt`).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// `client_auth` (default `client_secret_basic` with a secret, `private_key_jwt` with a
    /// key): `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// `introspection_unavailable` (default `"deny"`): when the endpoint cannot answer (down,
    /// errors, circuit open), `"deny"`, or `"allow_cached"`: allow a token an earlier call found
    /// active, until its `exp`.
    #[serde(default)]
    pub introspection_unavailable: Option<Unavailable>,
}

fn default_algorithms() -> Vec<Algorithm> {
    Algorithm::ALL
        .into_iter()
        .filter(|alg| !alg.is_symmetric())
        .collect()
}

const fn default_leeway_s() -> u64 {
    30
}

const fn default_true() -> bool {
    true
}

fn default_token_header() -> String {
    "authorization".to_owned()
}

fn default_token_scheme() -> String {
    "Bearer".to_owned()
}

const fn default_refresh_interval_s() -> u64 {
    300
}

const fn default_min_refresh_s() -> u64 {
    60
}

const fn default_max_refresh_s() -> u64 {
    3600
}

const fn default_kid_miss_refetch_interval_s() -> u64 {
    5
}

const fn default_kid_miss_wait_ms() -> u64 {
    500
}

const fn default_max_stale_s() -> u64 {
    86_400
}

const fn default_fetch_timeout_ms() -> u64 {
    10_000
}

const fn default_max_response_bytes() -> usize {
    1 << 20
}

/// Bounds of the key-fetch settings, checked by [`check_provider`].
const MAX_KID_MISS_WAIT_MS: u64 = 10_000;
const FETCH_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
const MAX_RESPONSE_BYTES: std::ops::RangeInclusive<usize> = 1024..=(16 << 20);

/// One algorithm name; a newtype so that a bad name's error carries its array index.
struct AlgorithmName(Algorithm);

impl<'de> Deserialize<'de> for AlgorithmName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse()
            .map(AlgorithmName)
            .map_err(serde::de::Error::custom)
    }
}

fn de_algorithms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Algorithm>, D::Error> {
    let names = Vec::<AlgorithmName>::deserialize(deserializer)?;
    Ok(names.into_iter().map(|name| name.0).collect())
}

impl ProviderConfig {
    /// A provider with every optional key at its default.
    pub fn new(name: impl Into<String>, issuer: impl Into<String>, source: KeySource) -> Self {
        let mut provider = ProviderConfig {
            name: name.into(),
            r#type: ProviderType::Jwt,
            issuer: issuer.into(),
            audiences: Vec::new(),
            jwks_file: None,
            jwks_uri: None,
            discovery_uri: None,
            jwks_inline: None,
            algorithms: default_algorithms(),
            leeway_s: default_leeway_s(),
            max_lifetime_s: None,
            required_claims: Vec::new(),
            require_exp: true,
            typ: None,
            required_scopes: Vec::new(),
            claims_to_headers: BTreeMap::new(),
            claims_to_metadata: Vec::new(),
            token_header: default_token_header(),
            token_scheme: default_token_scheme(),
            token_cookie: None,
            token_query: None,
            refresh_interval_s: default_refresh_interval_s(),
            min_refresh_s: default_min_refresh_s(),
            max_refresh_s: default_max_refresh_s(),
            kid_miss_refetch_interval_s: default_kid_miss_refetch_interval_s(),
            kid_miss_wait_ms: default_kid_miss_wait_ms(),
            max_stale_s: default_max_stale_s(),
            fetch_timeout_ms: default_fetch_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
            introspection_uri: None,
            client_id: None,
            client_secret_file: None,
            client_key_file: None,
            client_auth: None,
            introspection_unavailable: None,
        };
        match source {
            KeySource::File(path) => provider.jwks_file = Some(path),
            KeySource::Uri(uri) => provider.jwks_uri = Some(uri),
            KeySource::Discovery(uri) => provider.discovery_uri = Some(uri),
            KeySource::Inline(jwks) => provider.jwks_inline = Some(jwks),
        }
        provider
    }

    /// The key source. A validated provider has exactly one; an unvalidated one with none
    /// yields an empty inline key set, which verifies nothing (fail closed).
    pub fn key_source(&self) -> KeySource {
        if let Some(path) = &self.jwks_file {
            KeySource::File(path.clone())
        } else if let Some(uri) = &self.jwks_uri {
            KeySource::Uri(uri.clone())
        } else if let Some(uri) = &self.discovery_uri {
            KeySource::Discovery(uri.clone())
        } else if let Some(jwks) = &self.jwks_inline {
            KeySource::Inline(jwks.clone())
        } else {
            KeySource::Inline(r#"{"keys":[]}"#.to_owned())
        }
    }

    /// The claim rules: issuer, audiences, leeway, lifetime, required claims, `exp`, `typ`.
    pub fn claim_rules(&self) -> ClaimRules {
        ClaimRules {
            issuer: Some(self.issuer.clone()),
            audiences: self.audiences.clone(),
            leeway_s: self.leeway_s,
            max_lifetime_s: self.max_lifetime_s,
            required_claims: self.required_claims.clone(),
            // RFC 7662 makes `exp` optional: an introspected token's `active` is the authority.
            require_exp: self.require_exp && self.r#type == ProviderType::Jwt,
            typ: self.typ.clone(),
        }
    }

    /// The verification policy: this provider's algorithms and claim rules, the server's size
    /// caps. (`required_scopes` is applied after it, by the decision, as a 403.)
    pub fn token_policy(&self, server: &ServerConfig) -> TokenPolicy {
        TokenPolicy {
            algorithms: self.algorithms.clone(),
            rules: self.claim_rules(),
            limits: server.limits(),
        }
    }

    /// The HMAC algorithms this provider allows (explicit opt-in; worth a warning).
    pub fn symmetric_algorithms(&self) -> Vec<Algorithm> {
        self.algorithms
            .iter()
            .copied()
            .filter(|alg| alg.is_symmetric())
            .collect()
    }
}

pub(super) fn check_provider(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
    let name = &provider.name;
    if name.is_empty()
        || name.len() > MAX_PROVIDER_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(invalid(
            format!("{at}.name"),
            format!(
                "{name:?} is not a provider name: 1 to {MAX_PROVIDER_NAME_LEN} characters of [a-z0-9_-]"
            ),
        ));
    }
    if provider.issuer.is_empty() {
        return Err(invalid(format!("{at}.issuer"), "must not be empty"));
    }
    check_strings(&provider.audiences, &format!("{at}.audiences"))?;
    check_introspection(provider, at)?;
    if provider.r#type == ProviderType::Jwt {
        check_key_source(provider, at)?;
    }
    if provider.algorithms.is_empty() {
        return Err(invalid(
            format!("{at}.algorithms"),
            "must list at least one algorithm",
        ));
    }
    if provider.leeway_s > MAX_LEEWAY_S {
        return Err(invalid(
            format!("{at}.leeway_s"),
            format!(
                "must be at most {MAX_LEEWAY_S} seconds, got {}",
                provider.leeway_s
            ),
        ));
    }
    if provider.max_lifetime_s == Some(0) {
        return Err(invalid(
            format!("{at}.max_lifetime_s"),
            "must be at least 1 (omit it for no limit)",
        ));
    }
    check_strings(&provider.required_claims, &format!("{at}.required_claims"))?;
    if provider.typ.as_deref() == Some("") {
        return Err(invalid(
            format!("{at}.typ"),
            "must not be empty (omit it to not check typ)",
        ));
    }
    for (index, scope) in provider.required_scopes.iter().enumerate() {
        if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                format!("{at}.required_scopes[{index}]"),
                format!("{scope:?} is not a scope: non-empty, no whitespace"),
            ));
        }
    }
    check_claims_to_headers(&provider.claims_to_headers, at)?;
    check_claims_to_metadata(&provider.claims_to_metadata, at)?;
    check_credential_sources(provider, at)?;
    check_refresh(provider, at)
}

/// The key-fetch timing and bounds.
fn check_refresh(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
    for (key, value) in [
        ("refresh_interval_s", provider.refresh_interval_s),
        ("min_refresh_s", provider.min_refresh_s),
        ("max_refresh_s", provider.max_refresh_s),
        (
            "kid_miss_refetch_interval_s",
            provider.kid_miss_refetch_interval_s,
        ),
        ("max_stale_s", provider.max_stale_s),
    ] {
        if value == 0 {
            return Err(invalid(format!("{at}.{key}"), "must be at least 1 second"));
        }
    }
    if provider.max_refresh_s < provider.min_refresh_s {
        return Err(invalid(
            format!("{at}.max_refresh_s"),
            format!(
                "{} is below min_refresh_s ({})",
                provider.max_refresh_s, provider.min_refresh_s
            ),
        ));
    }
    if provider.kid_miss_wait_ms > MAX_KID_MISS_WAIT_MS {
        return Err(invalid(
            format!("{at}.kid_miss_wait_ms"),
            format!("at most {MAX_KID_MISS_WAIT_MS} ms"),
        ));
    }
    if !FETCH_TIMEOUT_MS.contains(&provider.fetch_timeout_ms) {
        return Err(invalid(
            format!("{at}.fetch_timeout_ms"),
            format!(
                "must be between {} and {} ms",
                FETCH_TIMEOUT_MS.start(),
                FETCH_TIMEOUT_MS.end()
            ),
        ));
    }
    if !MAX_RESPONSE_BYTES.contains(&provider.max_response_bytes) {
        return Err(invalid(
            format!("{at}.max_response_bytes"),
            format!(
                "must be between {} and {} bytes",
                MAX_RESPONSE_BYTES.start(),
                MAX_RESPONSE_BYTES.end()
            ),
        ));
    }
    Ok(())
}

fn check_strings(values: &[String], key: &str) -> Result<(), Invalid> {
    match values.iter().position(String::is_empty) {
        Some(index) => Err(invalid(format!("{key}[{index}]"), "must not be empty")),
        None => Ok(()),
    }
}

/// At most this many claims in `claims_to_metadata`.
const MAX_METADATA_CLAIMS: usize = 64;

fn check_claims_to_metadata(claims: &[String], at: &str) -> Result<(), Invalid> {
    if claims.len() > MAX_METADATA_CLAIMS {
        return Err(invalid(
            format!("{at}.claims_to_metadata"),
            format!("at most {MAX_METADATA_CLAIMS} claims"),
        ));
    }
    for (index, claim) in claims.iter().enumerate() {
        let key = format!("{at}.claims_to_metadata[{index}]");
        if claim.is_empty() {
            return Err(invalid(key, "a claim name must not be empty"));
        }
        if claim == "*" && claims.len() > 1 {
            return Err(invalid(key, "\"*\" (every claim) must stand alone"));
        }
        if claims
            .get(..index)
            .is_some_and(|before| before.contains(claim))
        {
            return Err(invalid(key, format!("{claim:?} is listed twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{PROVIDER, ok, provider, provider_with, rejects};
    use crate::jose::Limits;

    #[test]
    fn provider_name() {
        assert_eq!(provider(PROVIDER).name, "corp");
        let no_name = "[[providers]]\nissuer = \"i\"\njwks_file = \"jwks.json\"\n";
        let e = rejects(no_name, "providers[0].name");
        assert!(e.reason.contains("missing"), "{e}");
        for bad in ["", "Corp", "my corp", "corp.eu", &"a".repeat(65)] {
            let text = format!(
                "[[providers]]\nname = \"{bad}\"\nissuer = \"i\"\njwks_file = \"jwks.json\"\n"
            );
            rejects(&text, "providers[0].name");
        }
        let ok_name =
            "[[providers]]\nname = \"a-b_9\"\nissuer = \"i\"\njwks_file = \"jwks.json\"\n";
        assert_eq!(provider(ok_name).name, "a-b_9");
    }

    #[test]
    fn provider_issuer() {
        assert_eq!(provider(PROVIDER).issuer, "https://idp.example.com");
        rejects(
            "[[providers]]\nname = \"a\"\njwks_file = \"jwks.json\"\n",
            "providers[0].issuer",
        );
        rejects(
            "[[providers]]\nname = \"a\"\nissuer = \"\"\njwks_file = \"jwks.json\"\n",
            "providers[0].issuer",
        );
    }

    #[test]
    fn provider_audiences() {
        assert!(provider(PROVIDER).audiences.is_empty());
        let p = provider(&provider_with("audiences = [\"a\", \"b\"]"));
        assert_eq!(p.audiences, ["a", "b"]);
        rejects(
            &provider_with("audiences = [\"a\", \"\"]"),
            "providers[0].audiences[1]",
        );
        rejects(
            &provider_with("audiences = \"a\""),
            "providers[0].audiences",
        );
    }

    #[test]
    fn provider_algorithms() {
        let p = provider(PROVIDER);
        assert_eq!(p.algorithms, TokenPolicy::default().algorithms);
        assert!(p.algorithms.iter().all(|alg| !alg.is_symmetric()));
        assert_eq!(p.algorithms.len(), 11);
        let p = provider(&provider_with("algorithms = [\"ES256\", \"Ed25519\"]"));
        assert_eq!(p.algorithms, [Algorithm::ES256, Algorithm::EdDSA]);

        let e = rejects(
            &provider_with("algorithms = [\"RS256\", \"RS257\"]"),
            "providers[0].algorithms[1]",
        );
        assert!(e.to_string().contains("providers[0].algorithms"), "{e}");
        assert!(e.reason.contains("RS257"), "{e}");
        rejects(
            &provider_with("algorithms = [\"none\"]"),
            "providers[0].algorithms[0]",
        );
        rejects(
            &provider_with("algorithms = [\"rs256\"]"),
            "providers[0].algorithms[0]",
        );
        rejects(&provider_with("algorithms = []"), "providers[0].algorithms");
    }

    #[test]
    fn provider_hmac_is_allowed_only_explicitly_and_warned() {
        let c = ok(&provider_with("algorithms = [\"HS256\", \"RS256\"]"));
        let p = c.providers.first().expect("provider");
        assert_eq!(p.symmetric_algorithms(), [Algorithm::HS256]);
        let warnings = c.warnings();
        assert_eq!(warnings.len(), 1);
        let w = warnings.first().expect("warning");
        assert_eq!(w.key, "providers[0].algorithms");
        assert!(w.to_string().contains("HS256"), "{w}");
    }

    #[test]
    fn provider_leeway() {
        assert_eq!(provider(PROVIDER).leeway_s, 30);
        assert_eq!(provider(&provider_with("leeway_s = 0")).leeway_s, 0);
        assert_eq!(provider(&provider_with("leeway_s = 300")).leeway_s, 300);
        rejects(&provider_with("leeway_s = 301"), "providers[0].leeway_s");
    }

    #[test]
    fn provider_max_lifetime() {
        assert_eq!(provider(PROVIDER).max_lifetime_s, None);
        assert_eq!(
            provider(&provider_with("max_lifetime_s = 3600")).max_lifetime_s,
            Some(3600)
        );
        rejects(
            &provider_with("max_lifetime_s = 0"),
            "providers[0].max_lifetime_s",
        );
    }

    #[test]
    fn provider_required_claims_and_exp() {
        let p = provider(PROVIDER);
        assert!(p.required_claims.is_empty());
        assert!(p.require_exp);
        let p = provider(&provider_with(
            "required_claims = [\"sub\"]\nrequire_exp = false",
        ));
        assert_eq!(p.required_claims, ["sub"]);
        assert!(!p.require_exp);
        rejects(
            &provider_with("required_claims = [\"\"]"),
            "providers[0].required_claims[0]",
        );
    }

    #[test]
    fn provider_typ() {
        assert_eq!(provider(PROVIDER).typ, None);
        assert_eq!(
            provider(&provider_with("typ = \"at+jwt\"")).typ.as_deref(),
            Some("at+jwt")
        );
        rejects(&provider_with("typ = \"\""), "providers[0].typ");
    }

    #[test]
    fn provider_required_scopes() {
        assert!(provider(PROVIDER).required_scopes.is_empty());
        let p = provider(&provider_with(
            "required_scopes = [\"read\", \"write:all\"]",
        ));
        assert_eq!(p.required_scopes, ["read", "write:all"]);
        rejects(
            &provider_with("required_scopes = [\"read write\"]"),
            "providers[0].required_scopes[0]",
        );
        rejects(
            &provider_with("required_scopes = [\"ok\", \"\"]"),
            "providers[0].required_scopes[1]",
        );
    }

    #[test]
    fn provider_refresh_interval() {
        assert_eq!(provider(PROVIDER).refresh_interval_s, 300);
        assert_eq!(
            provider(&provider_with("refresh_interval_s = 60")).refresh_interval_s,
            60
        );
        rejects(
            &provider_with("refresh_interval_s = 0"),
            "providers[0].refresh_interval_s",
        );
    }

    #[test]
    fn key_fetch_settings_default_and_bounds() {
        let p = provider(PROVIDER);
        assert_eq!(
            (
                p.min_refresh_s,
                p.max_refresh_s,
                p.kid_miss_refetch_interval_s,
                p.kid_miss_wait_ms,
                p.max_stale_s,
                p.fetch_timeout_ms,
                p.max_response_bytes,
            ),
            (60, 3600, 5, 500, 86_400, 10_000, 1 << 20)
        );
        // Every interval may be as short as one second (tests and fast-rotating IdPs).
        let fast = provider(&provider_with(
            "refresh_interval_s = 1\nmin_refresh_s = 1\nmax_refresh_s = 1\nkid_miss_refetch_interval_s = 1\nmax_stale_s = 1\nkid_miss_wait_ms = 0",
        ));
        assert_eq!((fast.min_refresh_s, fast.max_stale_s), (1, 1));
        for (line, key) in [
            ("min_refresh_s = 0", "min_refresh_s"),
            ("max_refresh_s = 0", "max_refresh_s"),
            (
                "kid_miss_refetch_interval_s = 0",
                "kid_miss_refetch_interval_s",
            ),
            ("max_stale_s = 0", "max_stale_s"),
            ("min_refresh_s = 100\nmax_refresh_s = 50", "max_refresh_s"),
            ("kid_miss_wait_ms = 10001", "kid_miss_wait_ms"),
            ("fetch_timeout_ms = 99", "fetch_timeout_ms"),
            ("fetch_timeout_ms = 60001", "fetch_timeout_ms"),
            ("max_response_bytes = 1023", "max_response_bytes"),
            ("max_response_bytes = 16777217", "max_response_bytes"),
        ] {
            rejects(&provider_with(line), &format!("providers[0].{key}"));
        }
    }

    #[test]
    fn token_policy_maps_rules_and_limits() {
        let c = ok(&format!(
            "[server]\nmax_token_bytes = 4000\nmax_header_bytes = 300\nmax_payload_bytes = 2000\n{}",
            provider_with(
                "audiences = [\"api\"]\nalgorithms = [\"ES256\"]\nleeway_s = 5\nmax_lifetime_s = 600\nrequired_claims = [\"sub\"]\nrequire_exp = false\ntyp = \"at+jwt\""
            )
        ));
        let p = c.providers.first().expect("provider");
        let policy = p.token_policy(&c.server);
        assert_eq!(
            policy,
            TokenPolicy {
                algorithms: vec![Algorithm::ES256],
                rules: ClaimRules {
                    issuer: Some("https://idp.example.com".into()),
                    audiences: vec!["api".into()],
                    leeway_s: 5,
                    max_lifetime_s: Some(600),
                    required_claims: vec!["sub".into()],
                    require_exp: false,
                    typ: Some("at+jwt".into()),
                },
                limits: Limits {
                    max_token_bytes: 4000,
                    max_header_bytes: 300,
                    max_payload_bytes: 2000
                },
            }
        );
        // Defaults match the library's secure defaults, with the issuer pinned.
        let d = ok(PROVIDER);
        let policy = d
            .providers
            .first()
            .expect("provider")
            .token_policy(&d.server);
        assert_eq!(
            policy,
            TokenPolicy {
                rules: ClaimRules {
                    issuer: Some("https://idp.example.com".into()),
                    ..ClaimRules::default()
                },
                ..TokenPolicy::default()
            }
        );
    }
}
