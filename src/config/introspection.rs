//! `type = "introspection"` providers (RFC 7662 opaque tokens): their keys and checks.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use super::key_source::check_fetch_uri;
use super::provider::ProviderConfig;
use serde::Deserialize;
use std::path::PathBuf;

/// `type`: how a provider judges its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// `"jwt"` (default): signed JWTs, verified here with the provider's keys.
    #[default]
    Jwt,
    /// `"introspection"`: any credential, asked of the provider's RFC 7662 endpoint.
    Introspection,
}

/// `client_auth`: how verdict authenticates to the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1); the default with a secret.
    ClientSecretBasic,
    /// The client id and secret as form fields.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523); the only method with a key.
    PrivateKeyJwt,
}

/// `introspection_unavailable`: what to do when the endpoint cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// `"deny"` (default): deny (fail closed).
    #[default]
    Deny,
    /// `"allow_cached"`: allow a token an earlier call found active, until its own `exp`, even
    /// after the cache bound; deny the others.
    AllowCached,
}

/// The introspection keys a JWT provider must not set.
const INTROSPECTION_KEYS: [&str; 6] = [
    "introspection_uri",
    "client_id",
    "client_secret_file",
    "client_key_file",
    "client_auth",
    "introspection_unavailable",
];

/// The client credential of an introspection provider, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredential {
    /// A shared secret read from this file (whitespace trimmed).
    Secret(PathBuf),
    /// A PKCS#8 PEM private key (RSA, P-256 or Ed25519) read from this file.
    Key(PathBuf),
}

impl ProviderConfig {
    /// The client authentication method: `client_auth`, else the default for the credential.
    pub fn client_auth_method(&self) -> ClientAuth {
        self.client_auth
            .unwrap_or(if self.client_key_file.is_some() {
                ClientAuth::PrivateKeyJwt
            } else {
                ClientAuth::ClientSecretBasic
            })
    }

    /// The client credential, when one is configured.
    pub fn client_credential(&self) -> Option<ClientCredential> {
        match (&self.client_secret_file, &self.client_key_file) {
            (Some(path), _) => Some(ClientCredential::Secret(path.clone())),
            (None, Some(path)) => Some(ClientCredential::Key(path.clone())),
            (None, None) => None,
        }
    }
}

/// Reads a client secret file: surrounding whitespace trimmed, never empty.
pub fn read_client_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

/// The checks of an introspection provider, or that a JWT provider sets none of its keys.
pub(super) fn check_introspection(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
    let set = |key: &str| match key {
        "introspection_uri" => provider.introspection_uri.is_some(),
        "client_id" => provider.client_id.is_some(),
        "client_secret_file" => provider.client_secret_file.is_some(),
        "client_key_file" => provider.client_key_file.is_some(),
        "client_auth" => provider.client_auth.is_some(),
        _ => provider.introspection_unavailable.is_some(),
    };
    if provider.r#type == ProviderType::Jwt {
        if let Some(key) = INTROSPECTION_KEYS.into_iter().find(|key| set(key)) {
            return Err(invalid(
                format!("{at}.{key}"),
                "only applies to type = \"introspection\" providers",
            ));
        }
        return Ok(());
    }
    for key in ["jwks_file", "jwks_uri", "jwks_inline"] {
        let present = match key {
            "jwks_file" => provider.jwks_file.is_some(),
            "jwks_uri" => provider.jwks_uri.is_some(),
            _ => provider.jwks_inline.is_some(),
        };
        if present {
            return Err(invalid(
                format!("{at}.{key}"),
                "an introspection provider has no keys: set introspection_uri or discovery_uri",
            ));
        }
    }
    match (&provider.introspection_uri, &provider.discovery_uri) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{at}.introspection_uri"),
                "conflicts with discovery_uri: set exactly one",
            ));
        }
        (None, None) => {
            return Err(invalid(
                at,
                "an introspection provider needs introspection_uri or discovery_uri",
            ));
        }
        (Some(uri), None) => check_fetch_uri(uri)
            .map_err(|reason| invalid(format!("{at}.introspection_uri"), reason))?,
        (None, Some(uri)) => {
            check_fetch_uri(uri).map_err(|reason| invalid(format!("{at}.discovery_uri"), reason))?
        }
    }
    match &provider.client_id {
        None => {
            return Err(invalid(
                format!("{at}.client_id"),
                "required key is missing",
            ));
        }
        Some(id) if id.is_empty() || id.chars().any(char::is_control) => {
            return Err(invalid(
                format!("{at}.client_id"),
                "must be non-empty, without control characters",
            ));
        }
        Some(_) => {}
    }
    match (&provider.client_secret_file, &provider.client_key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{at}.client_key_file"),
                "conflicts with client_secret_file: set exactly one",
            ));
        }
        (None, None) => {
            return Err(invalid(
                at,
                "an introspection provider needs client_secret_file or client_key_file",
            ));
        }
        (Some(path), None) => {
            read_client_secret(path)
                .map_err(|reason| invalid(format!("{at}.client_secret_file"), reason))?;
            if provider.client_auth == Some(ClientAuth::PrivateKeyJwt) {
                return Err(invalid(
                    format!("{at}.client_auth"),
                    "private_key_jwt needs client_key_file",
                ));
            }
        }
        (None, Some(path)) => {
            let pem = std::fs::read(path).map_err(|e| {
                invalid(
                    format!("{at}.client_key_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            crate::keys::introspect::ClientKey::from_pem(&pem).map_err(|reason| {
                invalid(
                    format!("{at}.client_key_file"),
                    format!("{}: {reason}", path.display()),
                )
            })?;
            if provider
                .client_auth
                .is_some_and(|m| m != ClientAuth::PrivateKeyJwt)
            {
                return Err(invalid(
                    format!("{at}.client_auth"),
                    "a client_key_file authenticates with private_key_jwt only",
                ));
            }
        }
    }
    if provider.typ.is_some() {
        return Err(invalid(
            format!("{at}.typ"),
            "an introspected token has no JOSE header to check",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn introspection(extra: &str, dir: &std::path::Path) -> String {
        let secret = dir.join("secret");
        std::fs::write(&secret, "  s3cret\n").expect("secret");
        format!(
            "[[providers]]\nname = \"opaque\"\ntype = \"introspection\"\nissuer = \"https://idp.example.com\"\nintrospection_uri = \"https://idp.example.com/introspect\"\nclient_id = \"verdict\"\nclient_secret_file = \"{}\"\n{extra}",
            secret.display()
        )
    }

    #[test]
    fn an_introspection_provider_and_its_rules() {
        let dir =
            std::env::temp_dir().join(format!("verdict-introspection-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let c = ok(&introspection("", &dir));
        let p = c.providers.first().expect("provider");
        assert_eq!(p.r#type, ProviderType::Introspection);
        assert_eq!(p.client_auth_method(), ClientAuth::ClientSecretBasic);
        assert_eq!(p.introspection_unavailable, None);
        assert_eq!(
            read_client_secret(&dir.join("secret")).as_deref(),
            Ok("s3cret")
        );
        let post = ok(&introspection(
            "client_auth = \"client_secret_post\"\nintrospection_unavailable = \"allow_cached\"",
            &dir,
        ));
        let p = post.providers.first().expect("provider");
        assert_eq!(p.client_auth_method(), ClientAuth::ClientSecretPost);
        assert_eq!(p.introspection_unavailable, Some(Unavailable::AllowCached));
        for (extra, key) in [
            (
                "client_auth = \"private_key_jwt\"",
                "providers[0].client_auth",
            ),
            (
                "jwks_uri = \"https://idp.example.com/jwks\"",
                "providers[0].jwks_uri",
            ),
            (
                "discovery_uri = \"https://idp.example.com/.well-known/openid-configuration\"",
                "providers[0].introspection_uri",
            ),
            ("typ = \"at+jwt\"", "providers[0].typ"),
            (
                "introspection_unavailable = \"maybe\"",
                "providers[0].introspection_unavailable",
            ),
        ] {
            rejects(&introspection(extra, &dir), key);
        }
        let no_client = introspection("", &dir).replace("client_id = \"verdict\"\n", "");
        rejects(&no_client, "providers[0].client_id");
        let http = introspection("", &dir).replace(
            "https://idp.example.com/introspect",
            "http://idp.example.com/introspect",
        );
        rejects(&http, "providers[0].introspection_uri");
        let blank = introspection("", &dir);
        std::fs::write(dir.join("secret"), " \n").expect("secret");
        rejects(&blank, "providers[0].client_secret_file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn jwt_providers_refuse_introspection_keys() {
        rejects(
            &provider_with("client_id = \"x\""),
            "providers[0].client_id",
        );
        rejects(
            &provider_with("introspection_uri = \"https://idp.example.com/i\""),
            "providers[0].introspection_uri",
        );
    }

    #[test]
    fn cache_defaults_and_bounds() {
        let c = ok(PROVIDER);
        assert_eq!(c.cache, crate::config::CacheConfig::default());
        let c = ok(&format!(
            "[cache]\nmax_entries = 0\nmax_ttl_s = 60\nnegative_ttl_s = 0\n{PROVIDER}"
        ));
        assert_eq!(
            (
                c.cache.max_entries,
                c.cache.max_ttl_s,
                c.cache.negative_ttl_s
            ),
            (0, 60, 0)
        );
        rejects(
            &format!("[cache]\nmax_ttl_s = 0\n{PROVIDER}"),
            "cache.max_ttl_s",
        );
        rejects(&format!("[cache]\nzz = 1\n{PROVIDER}"), "cache.zz");
    }
}
