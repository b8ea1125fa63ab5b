//! The typed, validated configuration (`verdict serve --config FILE`, `verdict check-config FILE`).
//!
//! The file is TOML. Its key names are a contract (see `DESIGN.md`): extend them, never rename
//! them. Every table denies unknown keys, so a typo is an error naming the key rather than a
//! silently ignored setting. [`load`] and [`from_toml_str`] parse, normalise (relative paths are
//! resolved against the config file's directory, `token_header` is lower-cased) and validate;
//! every error is a [`ConfigError`] that renders as `FILE: KEY: REASON`.
//!
//! `tests/data/config/full.toml` is the annotated reference holding every key.
#![forbid(unsafe_code)]

use crate::jose::{Algorithm, ClaimRules, Limits, parse_jwks};
use crate::policy::TokenPolicy;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Largest accepted `server.workers`.
pub const MAX_WORKERS: usize = 1024;
/// Largest accepted `providers[].leeway_s`, in seconds.
pub const MAX_LEEWAY_S: u64 = 300;
/// Largest accepted `server.max_token_bytes` (1 MiB): far above any real bearer token.
pub const MAX_TOKEN_BYTES_CAP: usize = 1 << 20;
/// Longest accepted provider name (it becomes a metrics label).
pub const MAX_PROVIDER_NAME_LEN: usize = 64;
/// The key-source keys of a provider, exactly one of which must be set.
pub const KEY_SOURCE_KEYS: [&str; 4] = ["jwks_file", "jwks_uri", "discovery_uri", "jwks_inline"];

/// Header names a provider may not set from claims: hop-by-hop headers (RFC 9110 §7.6.1 and
/// their legacy forms), framing (`content-length`), and the two headers the gateway routes and
/// authenticates on.
const RESERVED_HEADERS: [&str; 12] = [
    "authorization",
    "host",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: listeners, workers, connection handling, size caps, logging. Optional; every
    /// key has a default (see [`ServerConfig`]).
    #[serde(default)]
    pub server: ServerConfig,
    /// `[admin]`: where the admin API's bearer token comes from. Optional; absent = the admin
    /// write API is disabled (metrics and health stay open).
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[[providers]]`: the token issuers this appliance trusts. At least one is required.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `grpc_listen` (default `127.0.0.1:9191`): the gRPC listener serving ext_authz v3,
    /// `verdict.v1`, `grpc.health.v1` and reflection. Port 0 picks a free port.
    pub grpc_listen: SocketAddr,
    /// `admin_listen` (default `127.0.0.1:9901`): the HTTP listener serving `/metrics`,
    /// `/healthz`, `/readyz` and the admin API. Must differ from `grpc_listen` (port 0 excepted).
    pub admin_listen: SocketAddr,
    /// `workers` (default 0): worker threads, one pinned per core; 0 = one per CPU in the
    /// process affinity mask. At most [`MAX_WORKERS`].
    pub workers: usize,
    /// `max_connection_age_s` (default 300): after this many seconds a connection is sent a
    /// GOAWAY so clients reconnect and rebalance across workers; 0 = unlimited.
    pub max_connection_age_s: u64,
    /// `max_connections` (default 10000): open connections accepted across all workers; further
    /// connections wait in the listen backlog. At least 1.
    pub max_connections: usize,
    /// `drain_timeout_s` (default 10): on shutdown, seconds to let in-flight requests finish
    /// after GOAWAY before connections are closed.
    pub drain_timeout_s: u64,
    /// `io_uring` (default true): use tokio-uring for file I/O where the kernel supports it;
    /// false (or no support) = ordinary blocking file I/O on a helper thread.
    pub io_uring: bool,
    /// `max_token_bytes` (default 8192): longest accepted compact token, checked before any
    /// parsing; longer credentials are rejected. 1 to [`MAX_TOKEN_BYTES_CAP`].
    pub max_token_bytes: usize,
    /// `max_header_bytes` (default 1024): longest accepted decoded JOSE header. At least 1.
    pub max_header_bytes: usize,
    /// `max_payload_bytes` (default 6144): longest accepted decoded claims set. At least 1.
    pub max_payload_bytes: usize,
    /// `log_format` (default `"text"`): `"text"` for humans, `"json"` for one JSON object per
    /// line.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = Limits::default();
        ServerConfig {
            grpc_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9191),
            admin_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901),
            workers: 0,
            max_connection_age_s: 300,
            max_connections: 10_000,
            drain_timeout_s: 10,
            io_uring: true,
            max_token_bytes: limits.max_token_bytes,
            max_header_bytes: limits.max_header_bytes,
            max_payload_bytes: limits.max_payload_bytes,
            log_format: LogFormat::Text,
        }
    }
}

impl ServerConfig {
    /// The parser's size caps.
    pub fn limits(&self) -> Limits {
        Limits {
            max_token_bytes: self.max_token_bytes,
            max_header_bytes: self.max_header_bytes,
            max_payload_bytes: self.max_payload_bytes,
        }
    }
}

/// `server.log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `"text"` (the default): human-readable lines.
    #[default]
    Text,
    /// `"json"`: one JSON object per line.
    Json,
}

impl LogFormat {
    /// The config spelling.
    pub const fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[admin]`: the admin API's bearer token. Both absent = the admin write API is disabled
/// (metrics and health endpoints stay open); setting both is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `token_file` (default none): a file holding the admin token (surrounding whitespace is
    /// ignored). A relative path is resolved against the config file's directory.
    pub token_file: Option<PathBuf>,
    /// `token_env` (default none): the name of an environment variable holding the admin token.
    pub token_env: Option<String>,
}

impl AdminConfig {
    /// Whether the admin write API is enabled (a token source is configured).
    pub fn enabled(&self) -> bool {
        self.token_file.is_some() || self.token_env.is_some()
    }
}

/// Where a provider's verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// `jwks_file`: a local JWKS file (path already resolved against the config's directory).
    File(PathBuf),
    /// `jwks_uri`: a JWKS fetched over HTTPS (or plain HTTP on loopback).
    Uri(String),
    /// `discovery_uri`: an OpenID Connect discovery document whose `jwks_uri` is fetched.
    Discovery(String),
    /// `jwks_inline`: a JWKS given in the config itself.
    Inline(String),
}

impl KeySource {
    /// Whether keys are fetched over the network (and refreshed every `refresh_interval_s`).
    pub fn is_remote(&self) -> bool {
        matches!(self, KeySource::Uri(_) | KeySource::Discovery(_))
    }

    /// The config key that sets this source.
    pub fn key(&self) -> &'static str {
        match self {
            KeySource::File(_) => "jwks_file",
            KeySource::Uri(_) => "jwks_uri",
            KeySource::Discovery(_) => "discovery_uri",
            KeySource::Inline(_) => "jwks_inline",
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "jwks_file {}", path.display()),
            KeySource::Uri(uri) => write!(f, "jwks_uri {uri}"),
            KeySource::Discovery(uri) => write!(f, "discovery_uri {uri}"),
            KeySource::Inline(_) => f.write_str("jwks_inline"),
        }
    }
}

/// `[[providers]]`: one trusted token issuer and what it must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `name` (required): unique, `[a-z0-9_-]+`, at most 64 characters; used in logs, metrics
    /// and the `verdict.v1` API.
    pub name: String,
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
            token_header: default_token_header(),
            token_scheme: default_token_scheme(),
            token_cookie: None,
            token_query: None,
            refresh_interval_s: default_refresh_interval_s(),
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
            require_exp: self.require_exp,
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

/// What went wrong, broadly (for exit codes and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// The config file could not be read.
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key is unknown, has the wrong type, or its value breaks a rule.
    Invalid,
}

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// A configuration error: the file, the key path (e.g. `providers[1].jwks_file`), the reason.
///
/// Renders as `FILE: KEY: REASON`, with ` (line L, column C)` appended when the position is
/// known; syntax errors (no key) render as `FILE:LINE:COLUMN: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// The key path, e.g. `server.workers` or `providers[1].algorithms[0]`; empty for errors
    /// about the whole file (I/O, syntax).
    pub key: String,
    /// Where in the file, when known (syntax and type errors).
    pub location: Option<Location>,
    /// The broad kind.
    pub kind: ConfigErrorKind,
    /// Why.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.key.is_empty(), self.location) {
            (false, Some(at)) => write!(
                f,
                "{file}: {}: {} (line {}, column {})",
                self.key, self.reason, at.line, at.column
            ),
            (false, None) => write!(f, "{file}: {}: {}", self.key, self.reason),
            (true, Some(at)) => write!(f, "{file}:{}:{}: {}", at.line, at.column, self.reason),
            (true, None) => write!(f, "{file}: {}", self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something allowed but worth a log line (e.g. HMAC algorithms enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The key path.
    pub key: String,
    /// Why it is worth attention.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A rule broken by one key (the file is added by the caller).
struct Invalid {
    key: String,
    reason: String,
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Invalid {
    fn in_file(self, file: &Path) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            key: self.key,
            location: None,
            kind: ConfigErrorKind::Invalid,
            reason: self.reason,
        }
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        location: None,
        kind: ConfigErrorKind::Io,
        reason: format!("cannot read the config file: {e}"),
    })?;
    from_toml_str(&text, path)
}

/// Parses and validates config text. `origin` is the file it came from: errors name it, and
/// relative paths in it are resolved against its directory (files they name must exist).
pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| ConfigError {
        file: origin.to_path_buf(),
        key: String::new(),
        location: e.span().map(|span| location(text, span.start)),
        kind: ConfigErrorKind::Syntax,
        reason: e.message().trim_end().to_owned(),
    })?;
    let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = key_path(e.path());
        let inner = e.into_inner();
        let (key, reason) = refine(key, inner.message().trim_end());
        ConfigError {
            file: origin.to_path_buf(),
            key,
            location: inner.span().map(|span| location(text, span.start)),
            kind: ConfigErrorKind::Invalid,
            reason,
        }
    })?;
    let base = origin.parent().unwrap_or_else(|| Path::new(""));
    config.normalize(base);
    config.validate(origin)?;
    Ok(config)
}

/// Renders a serde path as `providers[1].jwks_file`; the root is the empty string.
fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key: name }
            | serde_path_to_error::Segment::Enum { variant: name } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(name);
            }
            serde_path_to_error::Segment::Unknown => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push('?');
            }
        }
    }
    key
}

/// Moves the key named in serde's "missing field" / "unknown field" messages into the path.
fn refine(key: String, message: &str) -> (String, String) {
    let join = |name: &str| {
        if key.is_empty() {
            name.to_owned()
        } else {
            format!("{key}.{name}")
        }
    };
    if let Some(name) = backquoted_after(message, "missing field `") {
        return (join(name), "required key is missing".to_owned());
    }
    if let Some(name) = backquoted_after(message, "unknown field `")
        && key != name
        && !key.ends_with(&format!(".{name}"))
    {
        return (join(name), message.to_owned());
    }
    (key, message.to_owned())
}

fn backquoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// The 1-based line and column of a byte offset.
fn location(text: &str, offset: usize) -> Location {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Location { line, column }
}

impl Config {
    /// Resolves relative paths against `base` (the config file's directory) and lower-cases
    /// header names the HTTP layer compares case-insensitively.
    fn normalize(&mut self, base: &Path) {
        if let Some(path) = &mut self.admin.token_file
            && path.is_relative()
            && !path.as_os_str().is_empty()
        {
            *path = base.join(&*path);
        }
        for provider in &mut self.providers {
            if let Some(path) = &mut provider.jwks_file
                && path.is_relative()
                && !path.as_os_str().is_empty()
            {
                *path = base.join(&*path);
            }
            provider.token_header.make_ascii_lowercase();
        }
    }

    /// Checks every rule (and that `jwks_file`s exist and hold a JWKS). `origin` is the file
    /// named in errors; paths are taken as they are (already resolved by [`from_toml_str`]).
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        self.check().map_err(|e| e.in_file(origin))
    }

    fn check(&self) -> Result<(), Invalid> {
        check_server(&self.server)?;
        check_admin(&self.admin)?;
        if self.providers.is_empty() {
            return Err(invalid(
                "providers",
                "at least one [[providers]] table is required",
            ));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut issuers: HashMap<&str, usize> = HashMap::new();
        for (index, provider) in self.providers.iter().enumerate() {
            let at = format!("providers[{index}]");
            check_provider(provider, &at)?;
            if let Some(first) = names.insert(&provider.name, index) {
                return Err(invalid(
                    format!("{at}.name"),
                    format!(
                        "duplicate provider name {:?} (also providers[{first}].name)",
                        provider.name
                    ),
                ));
            }
            if let Some(first) = issuers.insert(&provider.issuer, index) {
                return Err(invalid(
                    format!("{at}.issuer"),
                    format!(
                        "duplicate issuer {:?} (also providers[{first}].issuer)",
                        provider.issuer
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Allowed settings worth a warning at startup (and in `check-config`).
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        for (index, provider) in self.providers.iter().enumerate() {
            let symmetric = provider.symmetric_algorithms();
            if !symmetric.is_empty() {
                let names: Vec<&str> = symmetric.iter().map(|alg| alg.name()).collect();
                warnings.push(ConfigWarning {
                    key: format!("providers[{index}].algorithms"),
                    message: format!(
                        "HMAC algorithms enabled ({}): anyone holding the shared secret can mint tokens",
                        names.join(", ")
                    ),
                });
            }
            if !provider.require_exp {
                warnings.push(ConfigWarning {
                    key: format!("providers[{index}].require_exp"),
                    message: "tokens without `exp` are accepted and never expire".to_owned(),
                });
            }
            let source = provider.key_source();
            if source.is_remote() {
                warnings.push(ConfigWarning {
                    key: format!("providers[{index}].{}", source.key()),
                    message: "remote key sources are not fetched by this version yet: the \
                              provider stays not-ready and denies its tokens with `no_keys` \
                              (use jwks_file or jwks_inline)"
                        .to_owned(),
                });
            }
        }
        warnings
    }

    /// The provider with this name.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|provider| provider.name == name)
    }
}

fn check_server(server: &ServerConfig) -> Result<(), Invalid> {
    if server.workers > MAX_WORKERS {
        return Err(invalid(
            "server.workers",
            format!(
                "must be at most {MAX_WORKERS} (0 = one per CPU), got {}",
                server.workers
            ),
        ));
    }
    if listeners_conflict(server.grpc_listen, server.admin_listen) {
        return Err(invalid(
            "server.admin_listen",
            format!(
                "{} conflicts with server.grpc_listen {}: the listeners must be distinct",
                server.admin_listen, server.grpc_listen
            ),
        ));
    }
    if server.max_connections == 0 {
        return Err(invalid("server.max_connections", "must be at least 1"));
    }
    if server.max_token_bytes == 0 || server.max_token_bytes > MAX_TOKEN_BYTES_CAP {
        return Err(invalid(
            "server.max_token_bytes",
            format!(
                "must be between 1 and {MAX_TOKEN_BYTES_CAP}, got {}",
                server.max_token_bytes
            ),
        ));
    }
    if server.max_header_bytes == 0 {
        return Err(invalid("server.max_header_bytes", "must be at least 1"));
    }
    if server.max_payload_bytes == 0 {
        return Err(invalid("server.max_payload_bytes", "must be at least 1"));
    }
    Ok(())
}

/// Two listeners conflict when they would bind the same port on overlapping addresses: the
/// same IP, or a wildcard covering the other (`0.0.0.0` covers IPv4, `[::]` both families).
/// Port 0 (pick a free port) never conflicts.
fn listeners_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    let covers =
        |wild: IpAddr, other: IpAddr| wild.is_unspecified() && (wild.is_ipv6() || other.is_ipv4());
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip()))
}

fn check_admin(admin: &AdminConfig) -> Result<(), Invalid> {
    if admin.token_file.is_some() && admin.token_env.is_some() {
        return Err(invalid(
            "admin.token_env",
            "set either admin.token_file or admin.token_env, not both",
        ));
    }
    if let Some(path) = &admin.token_file
        && path.as_os_str().is_empty()
    {
        return Err(invalid("admin.token_file", "must not be empty"));
    }
    if let Some(name) = &admin.token_env
        && !is_env_name(name)
    {
        return Err(invalid(
            "admin.token_env",
            format!("{name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
        ));
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_provider(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
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
    check_key_source(provider, at)?;
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
    check_credential_sources(provider, at)?;
    if provider.refresh_interval_s == 0 {
        return Err(invalid(
            format!("{at}.refresh_interval_s"),
            "must be at least 1 second",
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

fn check_key_source(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
    let set: Vec<&str> = [
        provider.jwks_file.is_some(),
        provider.jwks_uri.is_some(),
        provider.discovery_uri.is_some(),
        provider.jwks_inline.is_some(),
    ]
    .into_iter()
    .zip(KEY_SOURCE_KEYS)
    .filter_map(|(is_set, key)| is_set.then_some(key))
    .collect();
    match set.as_slice() {
        [] => {
            return Err(invalid(
                at,
                format!(
                    "no key source: set exactly one of {}",
                    KEY_SOURCE_KEYS.join(", ")
                ),
            ));
        }
        [_] => {}
        [first, second, ..] => {
            return Err(invalid(
                format!("{at}.{second}"),
                format!(
                    "conflicts with {at}.{first}: set exactly one of {}",
                    KEY_SOURCE_KEYS.join(", ")
                ),
            ));
        }
    }
    match provider.key_source() {
        KeySource::File(path) => {
            let key = format!("{at}.jwks_file");
            if path.as_os_str().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| invalid(&key, format!("cannot read {}: {e}", path.display())))?;
            parse_jwks(&bytes)
                .map_err(|e| invalid(&key, format!("{} is not a JWKS: {e}", path.display())))?;
        }
        KeySource::Uri(uri) => {
            check_fetch_uri(&uri).map_err(|reason| invalid(format!("{at}.jwks_uri"), reason))?;
        }
        KeySource::Discovery(uri) => {
            check_fetch_uri(&uri)
                .map_err(|reason| invalid(format!("{at}.discovery_uri"), reason))?;
        }
        KeySource::Inline(jwks) => {
            let key = format!("{at}.jwks_inline");
            let parsed = parse_jwks(jwks.as_bytes())
                .map_err(|e| invalid(&key, format!("not a JWKS: {e}")))?;
            if parsed.keys.is_empty() {
                let why: Vec<String> = parsed
                    .skipped
                    .iter()
                    .map(|(index, _, reason)| format!("keys[{index}]: {reason}"))
                    .collect();
                let detail = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                };
                return Err(invalid(
                    key,
                    format!("holds no usable verification key{detail}"),
                ));
            }
        }
    }
    Ok(())
}

/// A key-fetch URL must be `https://`, or plain `http://` to a loopback host.
fn check_fetch_uri(uri: &str) -> Result<(), String> {
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{uri:?} contains whitespace or control characters"));
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri:?} is not an absolute URL (https://host/path)"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{uri:?} must not contain user information"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{uri:?} has an unterminated IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{uri:?} has a malformed authority"))?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{uri:?} has no host"));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{uri:?} has an invalid port {port:?}"));
    }
    if scheme.eq_ignore_ascii_case("https") {
        Ok(())
    } else if scheme.eq_ignore_ascii_case("http") {
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1";
        if loopback {
            Ok(())
        } else {
            Err(format!(
                "{uri:?}: plain http:// is only allowed to 127.0.0.1, [::1] or localhost; use https://"
            ))
        }
    } else {
        Err(format!(
            "{uri:?}: unsupported scheme {scheme:?}; use https:// (or http:// on loopback)"
        ))
    }
}

/// An HTTP field-name token (RFC 9110 §5.6.2).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_header_name(name: &str) -> Result<(), String> {
    if name.starts_with(':') {
        return Err(format!("{name:?} is a pseudo-header"));
    }
    if !is_token(name) {
        return Err(format!("{name:?} is not a valid HTTP header name"));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{name:?} must be lowercase (HTTP/2 header names are)"
        ));
    }
    if RESERVED_HEADERS.contains(&name) {
        return Err(format!(
            "{name:?} is reserved (hop-by-hop, framing, authorization or host)"
        ));
    }
    Ok(())
}

fn check_claims_to_headers(map: &BTreeMap<String, String>, at: &str) -> Result<(), Invalid> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (claim, header) in map {
        if claim.is_empty() {
            return Err(invalid(
                format!("{at}.claims_to_headers"),
                "a claim name is empty",
            ));
        }
        let key = format!("{at}.claims_to_headers.{claim}");
        check_header_name(header).map_err(|reason| invalid(&key, reason))?;
        if let Some(other) = seen.insert(header, claim) {
            return Err(invalid(
                key,
                format!("header {header:?} is also set from claim {other:?}"),
            ));
        }
    }
    Ok(())
}

fn check_credential_sources(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
    let header = &provider.token_header;
    if header.starts_with(':') || !is_token(header) {
        return Err(invalid(
            format!("{at}.token_header"),
            format!("{header:?} is not a valid HTTP header name"),
        ));
    }
    let scheme = &provider.token_scheme;
    if !scheme.is_empty() && !is_token(scheme) {
        return Err(invalid(
            format!("{at}.token_scheme"),
            format!("{scheme:?} is not an auth scheme (one token, no spaces; \"\" = raw value)"),
        ));
    }
    if let Some(cookie) = &provider.token_cookie
        && !is_token(cookie)
    {
        return Err(invalid(
            format!("{at}.token_cookie"),
            format!("{cookie:?} is not a valid cookie name"),
        ));
    }
    if let Some(param) = &provider.token_query
        && (param.is_empty()
            || !param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
    {
        return Err(invalid(
            format!("{at}.token_query"),
            format!("{param:?} is not a query parameter name ([A-Za-z0-9-._~]+)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory holding the test configs and `jwks.json`.
    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config")
    }

    /// A pretend origin beside `jwks.json`, so `jwks_file = "jwks.json"` resolves.
    fn origin() -> PathBuf {
        data_dir().join("inline-test.toml")
    }

    const PROVIDER: &str = r#"
[[providers]]
name = "corp"
issuer = "https://idp.example.com"
jwks_file = "jwks.json"
"#;

    /// One valid provider followed by `extra` keys in the same table.
    fn provider_with(extra: &str) -> String {
        format!("{PROVIDER}{extra}\n")
    }

    /// A provider table with no key source, followed by `extra`.
    fn sourceless_with(extra: &str) -> String {
        format!("[[providers]]\nname = \"corp\"\nissuer = \"https://idp.example.com\"\n{extra}\n")
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        from_toml_str(text, &origin())
    }

    fn ok(text: &str) -> Config {
        parse(text).expect("the config should be valid")
    }

    fn provider(text: &str) -> ProviderConfig {
        ok(text).providers.into_iter().next().expect("one provider")
    }

    /// Asserts `text` is rejected, that the error names `key` in its key and its message.
    fn rejects(text: &str, key: &str) -> ConfigError {
        let error = parse(text).expect_err("the config should be rejected");
        assert_eq!(error.key, key, "wrong key in: {error}");
        let shown = error.to_string();
        assert!(
            shown.contains(&format!(": {key}: ")),
            "message does not name {key}: {shown}"
        );
        error
    }

    fn server(extra: &str) -> String {
        format!("[server]\n{extra}\n{PROVIDER}")
    }

    // ---- whole files ----

    #[test]
    fn minimal_file_takes_every_default() {
        let config = load(&data_dir().join("minimal.toml")).expect("minimal.toml loads");
        assert_eq!(config.server, ServerConfig::default());
        assert_eq!(config.admin, AdminConfig::default());
        assert!(!config.admin.enabled());
        assert_eq!(config.providers.len(), 1);
        let p = config.providers.first().expect("one provider");
        let expected = ProviderConfig::new(
            "example",
            "https://idp.example.com",
            KeySource::File(data_dir().join("jwks.json")),
        );
        assert_eq!(p, &expected);
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn full_file_reads_every_key() {
        let config = load(&data_dir().join("full.toml")).expect("full.toml loads");
        let s = &config.server;
        assert_eq!(s.grpc_listen, "127.0.0.1:19191".parse().expect("addr"));
        assert_eq!(s.admin_listen, "127.0.0.1:19901".parse().expect("addr"));
        assert_eq!(s.workers, 4);
        assert_eq!(s.max_connection_age_s, 600);
        assert_eq!(s.max_connections, 20_000);
        assert_eq!(s.drain_timeout_s, 5);
        assert!(!s.io_uring);
        assert_eq!(s.max_token_bytes, 16_384);
        assert_eq!(s.max_header_bytes, 2048);
        assert_eq!(s.max_payload_bytes, 12_288);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(
            config.admin.token_file,
            Some(data_dir().join("admin.token"))
        );
        assert_eq!(config.admin.token_env, None);

        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["corp", "partner", "workforce", "ci_bots"]);
        let corp = config.provider("corp").expect("corp");
        assert_eq!(corp.issuer, "https://idp.example.com");
        assert_eq!(corp.audiences, ["api://orders", "api://billing"]);
        assert_eq!(
            corp.key_source(),
            KeySource::File(data_dir().join("jwks.json"))
        );
        assert_eq!(
            corp.algorithms,
            [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        );
        assert_eq!(corp.leeway_s, 60);
        assert_eq!(corp.max_lifetime_s, Some(86_400));
        assert_eq!(corp.required_claims, ["sub", "jti"]);
        assert!(!corp.require_exp);
        assert_eq!(corp.typ.as_deref(), Some("at+jwt"));
        assert_eq!(corp.required_scopes, ["orders:read", "orders:write"]);
        let headers: Vec<(&str, &str)> = corp
            .claims_to_headers
            .iter()
            .map(|(c, h)| (c.as_str(), h.as_str()))
            .collect();
        assert_eq!(
            headers,
            [("scope", "x-verdict-scope"), ("sub", "x-verdict-sub")]
        );
        assert_eq!(corp.token_header, "x-auth");
        assert_eq!(corp.token_scheme, "Token");
        assert_eq!(corp.token_cookie.as_deref(), Some("session"));
        assert_eq!(corp.token_query.as_deref(), Some("access_token"));
        assert_eq!(corp.refresh_interval_s, 120);

        let partner = config.provider("partner").expect("partner");
        assert_eq!(
            partner.key_source(),
            KeySource::Uri("https://login.partner.example/.well-known/jwks.json".into())
        );
        assert!(partner.key_source().is_remote());
        assert_eq!(partner.refresh_interval_s, 600);
        let workforce = config.provider("workforce").expect("workforce");
        assert!(
            matches!(workforce.key_source(), KeySource::Discovery(uri) if uri.starts_with("http://127.0.0.1:8080/"))
        );
        let bots = config.provider("ci_bots").expect("ci_bots");
        assert!(matches!(bots.key_source(), KeySource::Inline(jwks) if jwks.contains("\"ci-1\"")));
        assert_eq!(bots.algorithms, [Algorithm::EdDSA]);

        // require_exp = false is allowed but flagged, and so are the remote key sources this
        // version does not fetch yet.
        let warnings = config.warnings();
        let warnings: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            warnings,
            [
                "providers[0].require_exp",
                "providers[1].jwks_uri",
                "providers[2].discovery_uri"
            ]
        );
    }

    /// The names serde expects in one table, read from its unknown-field error.
    fn expected_keys(text: &str) -> Vec<String> {
        let error = parse(text).expect_err("unknown key");
        let (_, expected) = error
            .reason
            .split_once("expected")
            .expect("the reason lists the expected keys");
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn full_file_documents_every_key() {
        let full = std::fs::read_to_string(data_dir().join("full.toml")).expect("full.toml");
        let documented = |key: &str| {
            full.lines().any(|line| {
                let line = line.trim_start().trim_start_matches("# ");
                line.starts_with(&format!("{key} = "))
            })
        };
        let tables = [
            (
                "server",
                format!("[server]\nzz_unknown = 1\n{PROVIDER}"),
                11,
            ),
            ("admin", format!("[admin]\nzz_unknown = 1\n{PROVIDER}"), 2),
            ("providers", provider_with("zz_unknown = 1"), 20),
            ("top level", format!("zz_unknown = 1\n{PROVIDER}"), 3),
        ];
        for (table, text, count) in tables {
            let keys = expected_keys(&text);
            assert_eq!(keys.len(), count, "{table}: {keys:?}");
            if table == "top level" {
                for key in &keys {
                    assert!(
                        full.contains(&format!("[{key}]")) || full.contains(&format!("[[{key}]]"))
                    );
                }
                continue;
            }
            for key in keys {
                assert!(
                    documented(&key),
                    "full.toml does not document {table}.{key}"
                );
            }
        }
    }

    // ---- errors and their rendering ----

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let text = "[server]\nworkers = 4\ngrpc_listen = \n";
        let error = parse(text).expect_err("syntax error");
        assert_eq!(error.kind, ConfigErrorKind::Syntax);
        assert_eq!(error.key, "");
        let at = error.location.expect("location");
        assert_eq!(at.line, 3);
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("{}:3:{}: ", origin().display(), at.column)),
            "{shown}"
        );
    }

    #[test]
    fn display_is_file_key_reason() {
        let error = rejects(&server("workers = 2000"), "server.workers");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: server.workers: must be at most 1024 (0 = one per CPU), got 2000",
                origin().display()
            )
        );
        assert_eq!(error.kind, ConfigErrorKind::Invalid);
    }

    #[test]
    fn type_errors_name_the_key_and_position() {
        let error = rejects(&server("workers = \"4\""), "server.workers");
        assert_eq!(error.location.map(|at| at.line), Some(2));
        assert!(
            error.to_string().ends_with("(line 2, column 11)"),
            "{error}"
        );
        rejects(&server("workers = -1"), "server.workers");
        rejects(&server("io_uring = \"yes\""), "server.io_uring");
        rejects(&provider_with("leeway_s = \"30\""), "providers[0].leeway_s");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = rejects(&server("workerz = 4"), "server.workerz");
        assert!(error.reason.contains("unknown field `workerz`"), "{error}");
        rejects(
            &provider_with("audience = [\"a\"]"),
            "providers[0].audience",
        );
        rejects(
            &format!("[admin]\ntoken = \"x\"\n{PROVIDER}"),
            "admin.token",
        );
        rejects(&format!("[servers]\nworkers = 1\n{PROVIDER}"), "servers");
        let second = format!(
            "{PROVIDER}\n[[providers]]\nname = \"b\"\nissuer = \"b\"\njwks_file = \"jwks.json\"\nlewway_s = 1\n"
        );
        rejects(&second, "providers[1].lewway_s");
    }

    #[test]
    fn load_reports_an_unreadable_file() {
        let path = data_dir().join("does-not-exist.toml");
        let error = load(&path).expect_err("missing file");
        assert_eq!(error.kind, ConfigErrorKind::Io);
        assert!(
            error.to_string().starts_with(&format!(
                "{}: cannot read the config file: ",
                path.display()
            )),
            "{error}"
        );
    }

    // ---- [server] ----

    #[test]
    fn server_listeners() {
        let c = ok(&server(
            "grpc_listen = \"0.0.0.0:7000\"\nadmin_listen = \"[::1]:7001\"",
        ));
        assert_eq!(c.server.grpc_listen, "0.0.0.0:7000".parse().expect("addr"));
        assert_eq!(c.server.admin_listen, "[::1]:7001".parse().expect("addr"));
        let d = ok(PROVIDER);
        assert_eq!(d.server.grpc_listen.to_string(), "127.0.0.1:9191");
        assert_eq!(d.server.admin_listen.to_string(), "127.0.0.1:9901");
        rejects(
            &server("grpc_listen = \"localhost:9191\""),
            "server.grpc_listen",
        );
        rejects(
            &server("admin_listen = \"127.0.0.1\""),
            "server.admin_listen",
        );
    }

    #[test]
    fn server_listeners_must_be_distinct() {
        let e = rejects(
            &server("grpc_listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\""),
            "server.admin_listen",
        );
        assert!(e.reason.contains("server.grpc_listen"), "{e}");
        rejects(
            &server("grpc_listen = \"0.0.0.0:9000\"\nadmin_listen = \"127.0.0.1:9000\""),
            "server.admin_listen",
        );
        rejects(
            &server("admin_listen = \"127.0.0.1:9191\""),
            "server.admin_listen",
        );
        rejects(
            &server("grpc_listen = \"[::]:9000\"\nadmin_listen = \"127.0.0.1:9000\""),
            "server.admin_listen",
        );
        // Port 0 picks a free port for each: no conflict. Different IPs: no conflict.
        ok(&server(
            "grpc_listen = \"0.0.0.0:9000\"\nadmin_listen = \"[::1]:9000\"",
        ));
        ok(&server(
            "grpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"",
        ));
        ok(&server(
            "grpc_listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.2:9000\"",
        ));
    }

    #[test]
    fn server_workers() {
        assert_eq!(ok(PROVIDER).server.workers, 0);
        assert_eq!(ok(&server("workers = 8")).server.workers, 8);
        assert_eq!(ok(&server("workers = 1024")).server.workers, 1024);
        rejects(&server("workers = 1025"), "server.workers");
    }

    #[test]
    fn server_connection_settings() {
        let d = ok(PROVIDER).server;
        assert_eq!(
            (d.max_connection_age_s, d.max_connections, d.drain_timeout_s),
            (300, 10_000, 10)
        );
        let c = ok(&server(
            "max_connection_age_s = 0\nmax_connections = 1\ndrain_timeout_s = 0",
        ))
        .server;
        assert_eq!(
            (c.max_connection_age_s, c.max_connections, c.drain_timeout_s),
            (0, 1, 0)
        );
        rejects(&server("max_connections = 0"), "server.max_connections");
    }

    #[test]
    fn server_io_uring() {
        assert!(ok(PROVIDER).server.io_uring);
        assert!(!ok(&server("io_uring = false")).server.io_uring);
    }

    #[test]
    fn server_size_caps() {
        assert_eq!(ok(PROVIDER).server.limits(), Limits::default());
        let c = ok(&server(
            "max_token_bytes = 4096\nmax_header_bytes = 512\nmax_payload_bytes = 3000",
        ));
        assert_eq!(
            c.server.limits(),
            Limits {
                max_token_bytes: 4096,
                max_header_bytes: 512,
                max_payload_bytes: 3000
            }
        );
        rejects(&server("max_token_bytes = 0"), "server.max_token_bytes");
        rejects(
            &server("max_token_bytes = 1048577"),
            "server.max_token_bytes",
        );
        ok(&server("max_token_bytes = 1048576"));
        rejects(&server("max_header_bytes = 0"), "server.max_header_bytes");
        rejects(&server("max_payload_bytes = 0"), "server.max_payload_bytes");
    }

    #[test]
    fn server_log_format() {
        assert_eq!(ok(PROVIDER).server.log_format, LogFormat::Text);
        assert_eq!(
            ok(&server("log_format = \"json\"")).server.log_format,
            LogFormat::Json
        );
        assert_eq!(
            ok(&server("log_format = \"text\"")).server.log_format,
            LogFormat::Text
        );
        assert_eq!(LogFormat::Json.to_string(), "json");
        let e = rejects(&server("log_format = \"xml\""), "server.log_format");
        assert!(e.reason.contains("text"), "{e}");
    }

    // ---- [admin] ----

    fn admin(extra: &str) -> String {
        format!("[admin]\n{extra}\n{PROVIDER}")
    }

    #[test]
    fn admin_token_file_is_resolved() {
        let c = ok(&admin("token_file = \"secrets/admin.token\""));
        assert_eq!(
            c.admin.token_file,
            Some(data_dir().join("secrets/admin.token"))
        );
        assert!(c.admin.enabled());
        let c = ok(&admin("token_file = \"/etc/verdict/admin.token\""));
        assert_eq!(
            c.admin.token_file,
            Some(PathBuf::from("/etc/verdict/admin.token"))
        );
        rejects(&admin("token_file = \"\""), "admin.token_file");
    }

    #[test]
    fn admin_token_env() {
        let c = ok(&admin("token_env = \"VERDICT_ADMIN_TOKEN\""));
        assert_eq!(c.admin.token_env.as_deref(), Some("VERDICT_ADMIN_TOKEN"));
        assert!(c.admin.enabled());
        rejects(&admin("token_env = \"1BAD\""), "admin.token_env");
        rejects(&admin("token_env = \"\""), "admin.token_env");
        rejects(&admin("token_env = \"A-B\""), "admin.token_env");
    }

    #[test]
    fn admin_sources_are_exclusive() {
        let e = rejects(
            &admin("token_file = \"t\"\ntoken_env = \"T\""),
            "admin.token_env",
        );
        assert!(e.reason.contains("admin.token_file"), "{e}");
    }

    // ---- [[providers]] ----

    #[test]
    fn at_least_one_provider() {
        rejects("", "providers");
        rejects("[server]\nworkers = 1\n", "providers");
        rejects("providers = []\n", "providers");
    }

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
    fn provider_names_and_issuers_are_unique() {
        let dup_name = format!(
            "{PROVIDER}\n[[providers]]\nname = \"corp\"\nissuer = \"other\"\njwks_file = \"jwks.json\"\n"
        );
        let e = rejects(&dup_name, "providers[1].name");
        assert!(e.reason.contains("providers[0].name"), "{e}");
        let dup_issuer = format!(
            "{PROVIDER}\n[[providers]]\nname = \"other\"\nissuer = \"https://idp.example.com\"\njwks_file = \"jwks.json\"\n"
        );
        let e = rejects(&dup_issuer, "providers[1].issuer");
        assert!(e.reason.contains("providers[0].issuer"), "{e}");
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
    fn provider_jwks_file_is_resolved_and_must_exist() {
        assert_eq!(
            provider(PROVIDER).jwks_file,
            Some(data_dir().join("jwks.json"))
        );
        let absolute = data_dir().join("jwks.json");
        let text = sourceless_with(&format!("jwks_file = {:?}", absolute.display().to_string()));
        assert_eq!(provider(&text).key_source(), KeySource::File(absolute));

        let e = rejects(
            &sourceless_with("jwks_file = \"keys/missing.json\""),
            "providers[0].jwks_file",
        );
        let resolved = data_dir().join("keys/missing.json");
        assert!(
            e.reason.contains(&resolved.display().to_string()),
            "the error names the resolved path: {e}"
        );
        let e = rejects(
            &sourceless_with("jwks_file = \"minimal.toml\""),
            "providers[0].jwks_file",
        );
        assert!(e.reason.contains("not a JWKS"), "{e}");
        rejects(
            &sourceless_with("jwks_file = \"\""),
            "providers[0].jwks_file",
        );
    }

    #[test]
    fn provider_needs_exactly_one_key_source() {
        let e = rejects(&sourceless_with(""), "providers[0]");
        for key in KEY_SOURCE_KEYS {
            assert!(e.reason.contains(key), "{e}");
        }
        let e = rejects(
            &provider_with("jwks_uri = \"https://idp.example.com/jwks\""),
            "providers[0].jwks_uri",
        );
        assert!(e.reason.contains("providers[0].jwks_file"), "{e}");
        rejects(
            &sourceless_with("discovery_uri = \"https://a/\"\njwks_inline = '{\"keys\":[]}'"),
            "providers[0].jwks_inline",
        );
    }

    #[test]
    fn provider_remote_uris() {
        for good in [
            "https://idp.example.com/jwks",
            "HTTPS://idp.example.com:8443/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            for key in ["jwks_uri", "discovery_uri"] {
                let p = provider(&sourceless_with(&format!("{key} = \"{good}\"")));
                let expected = if key == "jwks_uri" {
                    KeySource::Uri(good.to_owned())
                } else {
                    KeySource::Discovery(good.to_owned())
                };
                assert_eq!(p.key_source(), expected);
                assert!(p.key_source().is_remote());
            }
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://127.0.0.1.evil.example/jwks",
            "http://localhost@evil.example/jwks",
            "ftp://idp.example.com/jwks",
            "idp.example.com/jwks",
            "https:///jwks",
            "https://idp.example.com:99999/jwks",
            "https://idp.example.com/a b",
            "http://[::1/jwks",
        ] {
            for key in ["jwks_uri", "discovery_uri"] {
                rejects(
                    &sourceless_with(&format!("{key} = \"{bad}\"")),
                    &format!("providers[0].{key}"),
                );
            }
        }
    }

    #[test]
    fn provider_jwks_inline() {
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let p = provider(&sourceless_with(&format!("jwks_inline = '{jwks}'")));
        assert_eq!(p.key_source(), KeySource::Inline(jwks.to_owned()));
        assert!(!p.key_source().is_remote());
        for bad in ["not json", "{\"kty\":\"RSA\"}", "[]", "{\"keys\":{}}"] {
            let e = rejects(
                &sourceless_with(&format!("jwks_inline = '{bad}'")),
                "providers[0].jwks_inline",
            );
            assert!(e.reason.contains("not a JWKS"), "{e}");
        }
        let e = rejects(
            &sourceless_with("jwks_inline = '{\"keys\":[{\"kty\":\"XYZ\"}]}'"),
            "providers[0].jwks_inline",
        );
        assert!(e.reason.contains("no usable"), "{e}");
        rejects(
            &sourceless_with("jwks_inline = '{\"keys\":[]}'"),
            "providers[0].jwks_inline",
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
    fn provider_claims_to_headers() {
        assert!(provider(PROVIDER).claims_to_headers.is_empty());
        let p = provider(&provider_with(
            "claims_to_headers = { sub = \"x-verdict-sub\", \"https://example.com/tenant\" = \"x-tenant\" }",
        ));
        assert_eq!(
            p.claims_to_headers.get("sub").map(String::as_str),
            Some("x-verdict-sub")
        );
        assert_eq!(
            p.claims_to_headers
                .get("https://example.com/tenant")
                .map(String::as_str),
            Some("x-tenant")
        );
        for bad in [
            "X-Verdict-Sub",
            "authorization",
            "host",
            "connection",
            "transfer-encoding",
            "te",
            "upgrade",
            "keep-alive",
            "content-length",
            ":path",
            "x bad",
            "",
        ] {
            let text = provider_with(&format!("claims_to_headers = {{ sub = \"{bad}\" }}"));
            rejects(&text, "providers[0].claims_to_headers.sub");
        }
        let e = rejects(
            &provider_with("claims_to_headers = { sub = \"x-a\", email = \"x-a\" }"),
            "providers[0].claims_to_headers.sub",
        );
        assert!(e.reason.contains("email"), "{e}");
        rejects(
            &provider_with("claims_to_headers = { \"\" = \"x-a\" }"),
            "providers[0].claims_to_headers",
        );
    }

    #[test]
    fn provider_token_header_and_scheme() {
        let p = provider(PROVIDER);
        assert_eq!(p.token_header, "authorization");
        assert_eq!(p.token_scheme, "Bearer");
        let p = provider(&provider_with(
            "token_header = \"X-Auth-Token\"\ntoken_scheme = \"\"",
        ));
        assert_eq!(
            p.token_header, "x-auth-token",
            "header names are lower-cased"
        );
        assert_eq!(p.token_scheme, "", "empty scheme = the raw header value");
        assert_eq!(
            provider(&provider_with("token_scheme = \"DPoP\"")).token_scheme,
            "DPoP"
        );
        rejects(
            &provider_with("token_header = \"x auth\""),
            "providers[0].token_header",
        );
        rejects(
            &provider_with("token_header = \":authority\""),
            "providers[0].token_header",
        );
        rejects(
            &provider_with("token_header = \"\""),
            "providers[0].token_header",
        );
        rejects(
            &provider_with("token_scheme = \"Bearer x\""),
            "providers[0].token_scheme",
        );
    }

    #[test]
    fn provider_token_cookie_and_query() {
        let p = provider(PROVIDER);
        assert_eq!(
            (p.token_cookie.clone(), p.token_query.clone()),
            (None, None)
        );
        let p = provider(&provider_with(
            "token_cookie = \"__Host-session\"\ntoken_query = \"access_token\"",
        ));
        assert_eq!(p.token_cookie.as_deref(), Some("__Host-session"));
        assert_eq!(p.token_query.as_deref(), Some("access_token"));
        rejects(
            &provider_with("token_cookie = \"a;b\""),
            "providers[0].token_cookie",
        );
        rejects(
            &provider_with("token_cookie = \"\""),
            "providers[0].token_cookie",
        );
        rejects(
            &provider_with("token_query = \"a&b\""),
            "providers[0].token_query",
        );
        rejects(
            &provider_with("token_query = \"\""),
            "providers[0].token_query",
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
    fn errors_in_later_providers_name_their_index() {
        let text = format!(
            "{PROVIDER}\n[[providers]]\nname = \"b\"\nissuer = \"b\"\njwks_file = \"nope.json\"\n"
        );
        rejects(&text, "providers[1].jwks_file");
        let text = format!(
            "{PROVIDER}\n[[providers]]\nname = \"b\"\nissuer = \"b\"\njwks_file = \"jwks.json\"\nalgorithms = [\"XS1\"]\n"
        );
        rejects(&text, "providers[1].algorithms[0]");
    }

    // ---- derived values ----

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

    #[test]
    fn provider_new_round_trips_key_sources() {
        for source in [
            KeySource::File(PathBuf::from("/k.json")),
            KeySource::Uri("https://a/jwks".into()),
            KeySource::Discovery("https://a/.well-known/openid-configuration".into()),
            KeySource::Inline("{\"keys\":[]}".into()),
        ] {
            let p = ProviderConfig::new("p", "i", source.clone());
            assert_eq!(p.key_source(), source);
            let set = [
                p.jwks_file.is_some(),
                p.jwks_uri.is_some(),
                p.discovery_uri.is_some(),
                p.jwks_inline.is_some(),
            ];
            assert_eq!(set.iter().filter(|is_set| **is_set).count(), 1);
            assert!(KEY_SOURCE_KEYS.contains(&source.key()));
            assert_eq!(p.leeway_s, 30);
            assert_eq!(p.refresh_interval_s, 300);
        }
    }

    #[test]
    fn validate_checks_programmatic_configs() {
        let config = Config {
            server: ServerConfig::default(),
            admin: AdminConfig::default(),
            providers: vec![ProviderConfig::new(
                "demo",
                "http://127.0.0.1:9191",
                KeySource::File(data_dir().join("jwks.json")),
            )],
        };
        config.validate(Path::new("<demo>")).expect("valid");
        let mut broken = config.clone();
        broken.server.workers = 5000;
        let e = broken.validate(Path::new("<demo>")).expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "<demo>: server.workers: must be at most 1024 (0 = one per CPU), got 5000"
        );
    }
}
