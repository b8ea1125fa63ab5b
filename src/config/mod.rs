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

mod admin;
mod audit;
mod cache;
mod crypto;
mod error;
mod fleet;
mod headers;
mod introspection;
mod key_source;
mod provider;
mod revocation;
mod server;
#[cfg(test)]
mod test_support;

pub use admin::AdminConfig;
pub use audit::{
    AuditConfig, DEFAULT_AUDIT_MAX_FILE_BYTES, DEFAULT_AUDIT_QUEUE_LINES, MAX_AUDIT_QUEUE_LINES,
    MIN_AUDIT_MAX_FILE_BYTES,
};
pub use cache::CacheConfig;
pub use crypto::{CryptoBackend, CryptoConfig};
pub use error::{ConfigError, ConfigErrorKind, ConfigWarning, Location};
pub use fleet::{FleetConfig, MIN_FLEET_RETENTION_S};
pub use introspection::{
    ClientAuth, ClientCredential, ProviderType, Unavailable, read_client_secret,
};
pub use key_source::{KEY_SOURCE_KEYS, KeySource};
pub use provider::{MAX_LEEWAY_S, MAX_PROVIDER_NAME_LEN, ProviderConfig};
pub use revocation::RevocationConfig;
pub use server::{LogFormat, MAX_TOKEN_BYTES_CAP, MAX_WORKERS, ServerConfig};

use admin::check_admin;
use audit::check_audit;
use cache::check_cache;
use crypto::check_crypto;
use error::{Invalid, invalid};
use fleet::check_fleet;
use provider::check_provider;
use revocation::check_revocation;
use serde::Deserialize;
use server::check_server;
use std::collections::HashMap;
use std::path::Path;

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
    /// `[cache]`: bounds of remembered answers (introspection results today). Optional.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[revocation]`: the durable revocation log. Optional; absent = in memory only.
    #[serde(default)]
    pub revocation: RevocationConfig,
    /// `[audit]`: the hash-chained decision log. Optional; absent (or without `dir`) = off.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[crypto]`: the signature-verification engine. Optional; absent = `backend = "auto"`.
    #[serde(default)]
    pub crypto: CryptoConfig,
    /// `[fleet]`: the Redis stream shared with the other instances. Optional; absent = a single
    /// instance.
    #[serde(default)]
    pub fleet: FleetConfig,
    /// `[[providers]]`: the token issuers this appliance trusts. At least one is required.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
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
        if let Some(path) = &mut self.revocation.log_file
            && path.is_relative()
            && !path.as_os_str().is_empty()
        {
            *path = base.join(&*path);
        }
        if let Some(path) = &mut self.audit.dir
            && path.is_relative()
            && !path.as_os_str().is_empty()
        {
            *path = base.join(&*path);
        }
        for path in [
            &mut self.fleet.password_file,
            &mut self.crypto.crypto_mb_library,
            &mut self.crypto.openssl_conf,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() && !path.as_os_str().is_empty() {
                *path = base.join(&*path);
            }
        }
        for provider in &mut self.providers {
            for path in [
                &mut provider.jwks_file,
                &mut provider.client_secret_file,
                &mut provider.client_key_file,
            ]
            .into_iter()
            .flatten()
            {
                if path.is_relative() && !path.as_os_str().is_empty() {
                    *path = base.join(&*path);
                }
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
        check_cache(&self.cache)?;
        check_revocation(&self.revocation)?;
        check_audit(&self.audit)?;
        check_crypto(&self.crypto)?;
        check_fleet(&self.fleet)?;
        if self.providers.is_empty() {
            return Err(invalid(
                "providers",
                "at least one [[providers]] table is required",
            ));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        // One IdP often issues both JWTs and opaque tokens: an issuer may have one provider of
        // each type (JWTs are routed by `iss`, other credentials to introspection).
        let mut issuers: HashMap<(&str, ProviderType), usize> = HashMap::new();
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
            if let Some(first) = issuers.insert((&provider.issuer, provider.r#type), index) {
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
            if provider.introspection_unavailable == Some(Unavailable::AllowCached) {
                warnings.push(ConfigWarning {
                    key: format!("providers[{index}].introspection_unavailable"),
                    message: "allow_cached: while the endpoint is down, tokens it answered for \
                              stay allowed until their exp, even if revoked meanwhile"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{
        PROVIDER, data_dir, origin, parse, provider_with, rejects, server,
    };
    use crate::jose::Algorithm;

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
        assert_eq!(
            s.forward_auth_listen,
            Some("127.0.0.1:19192".parse().expect("addr"))
        );
        assert_eq!(s.forward_auth_idle_timeout_s, 7200);
        assert_eq!(s.workers, 4);
        assert_eq!(s.max_connection_age_s, 600);
        assert_eq!(s.grpc_max_concurrent_streams, 16);
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
        assert_eq!(names, ["corp", "partner", "workforce", "ci_bots", "opaque"]);
        assert_eq!(
            (
                config.cache.max_entries,
                config.cache.max_ttl_s,
                config.cache.negative_ttl_s
            ),
            (500_000, 120, 5)
        );
        assert_eq!(config.audit.dir, Some(data_dir().join("audit")));
        assert_eq!(
            (config.audit.max_file_bytes, config.audit.queue_lines),
            (16_777_216, 8192)
        );
        assert_eq!(config.crypto.backend, CryptoBackend::AwsLc);
        assert_eq!(
            config.crypto.crypto_mb_library.as_deref(),
            Some(Path::new("/opt/intel/lib/libcrypto_mb.so"))
        );
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
        assert_eq!(
            (
                corp.min_refresh_s,
                corp.max_refresh_s,
                corp.kid_miss_refetch_interval_s,
                corp.kid_miss_wait_ms,
                corp.max_stale_s,
                corp.fetch_timeout_ms,
                corp.max_response_bytes,
            ),
            (30, 1800, 10, 250, 43200, 5000, 262_144)
        );

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
        let opaque = config.provider("opaque").expect("opaque");
        assert_eq!(opaque.r#type, ProviderType::Introspection);
        assert_eq!(
            opaque.introspection_uri.as_deref(),
            Some("https://auth.example.net/oauth2/introspect")
        );
        assert_eq!(opaque.client_id.as_deref(), Some("verdict-gateway"));
        assert_eq!(
            opaque.client_credential(),
            Some(ClientCredential::Secret(
                data_dir().join("introspection.secret")
            ))
        );
        assert_eq!(opaque.client_auth_method(), ClientAuth::ClientSecretPost);
        assert_eq!(
            opaque.introspection_unavailable,
            Some(Unavailable::AllowCached)
        );
        assert_eq!(corp.r#type, ProviderType::Jwt);

        // require_exp = false and allow_cached are allowed but flagged.
        let warnings = config.warnings();
        let warnings: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            warnings,
            [
                "providers[0].require_exp",
                "providers[4].introspection_unavailable"
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
                14,
            ),
            ("admin", format!("[admin]\nzz_unknown = 1\n{PROVIDER}"), 2),
            ("providers", provider_with("zz_unknown = 1"), 35),
            ("cache", format!("[cache]\nzz_unknown = 1\n{PROVIDER}"), 3),
            (
                "revocation",
                format!("[revocation]\nzz_unknown = 1\n{PROVIDER}"),
                2,
            ),
            ("audit", format!("[audit]\nzz_unknown = 1\n{PROVIDER}"), 3),
            ("crypto", format!("[crypto]\nzz_unknown = 1\n{PROVIDER}"), 6),
            ("fleet", format!("[fleet]\nzz_unknown = 1\n{PROVIDER}"), 7),
            ("top level", format!("zz_unknown = 1\n{PROVIDER}"), 8),
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

    #[test]
    fn crypto_backend_values() {
        for (value, want) in [
            ("auto", CryptoBackend::Auto),
            ("aws-lc", CryptoBackend::AwsLc),
            ("crypto-mb", CryptoBackend::CryptoMb),
            ("openssl", CryptoBackend::Openssl),
        ] {
            let config = parse(&format!("[crypto]\nbackend = \"{value}\"\n{PROVIDER}"))
                .expect("valid backend");
            assert_eq!(config.crypto.backend, want);
            assert_eq!(want.name(), value);
        }
        assert_eq!(
            parse(PROVIDER).expect("no [crypto]").crypto,
            CryptoConfig::default()
        );
        let config = parse(&format!(
            "[crypto]\nbackend = \"openssl\"\nopenssl_provider = \"qatprovider\"\n\
             openssl_engine = \"qatengine\"\nopenssl_conf = \"qat.cnf\"\n{PROVIDER}"
        ))
        .expect("openssl");
        assert_eq!(config.crypto.backend, CryptoBackend::Openssl);
        assert_eq!(
            config.crypto.openssl_provider.as_deref(),
            Some("qatprovider")
        );
        assert_eq!(config.crypto.openssl_engine.as_deref(), Some("qatengine"));
        assert!(
            config
                .crypto
                .openssl_conf
                .expect("set")
                .ends_with("qat.cnf")
        );
        for key in ["openssl_provider", "openssl_engine", "openssl_conf"] {
            let error = parse(&format!("[crypto]\n{key} = \"\"\n{PROVIDER}")).expect_err("empty");
            assert_eq!(error.key, format!("crypto.{key}"));
        }
        let error =
            parse(&format!("[crypto]\nbackend = \"qat\"\n{PROVIDER}")).expect_err("unknown engine");
        assert_eq!(error.key, "crypto.backend");
        let error = parse(&format!("[crypto]\ncrypto_mb_library = \"\"\n{PROVIDER}"))
            .expect_err("empty path");
        assert_eq!(error.key, "crypto.crypto_mb_library");
        let config = parse(&format!(
            "[crypto]\ncrypto_mb_library = \"lib/libcrypto_mb.so\"\n{PROVIDER}"
        ))
        .expect("relative path");
        assert!(
            config
                .crypto
                .crypto_mb_library
                .expect("set")
                .ends_with("lib/libcrypto_mb.so")
        );
    }

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

    #[test]
    fn at_least_one_provider() {
        rejects("", "providers");
        rejects("[server]\nworkers = 1\n", "providers");
        rejects("providers = []\n", "providers");
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

    #[test]
    fn validate_checks_programmatic_configs() {
        let config = Config {
            server: ServerConfig::default(),
            admin: AdminConfig::default(),
            cache: CacheConfig::default(),
            revocation: RevocationConfig::default(),
            fleet: FleetConfig::default(),
            audit: AuditConfig::default(),
            crypto: CryptoConfig::default(),
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
