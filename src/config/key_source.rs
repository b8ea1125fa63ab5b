//! A provider's key source (`jwks_file`, `jwks_uri`, `discovery_uri`, `jwks_inline`) and its
//! checks.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use super::provider::ProviderConfig;
use crate::jose::parse_jwks;
use std::fmt;
use std::path::PathBuf;

/// The key-source keys of a provider, exactly one of which must be set.
pub const KEY_SOURCE_KEYS: [&str; 4] = ["jwks_file", "jwks_uri", "discovery_uri", "jwks_inline"];

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

pub(super) fn check_key_source(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
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
pub(super) fn check_fetch_uri(uri: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{
        PROVIDER, data_dir, provider, provider_with, rejects, sourceless_with,
    };

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
}
