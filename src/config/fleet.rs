//! `[fleet]`: the Redis stream through which a fleet of verdicts shares revocations.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use serde::Deserialize;
use std::path::PathBuf;

/// Shortest `retention_s` accepted: trimming and re-publishing run on fractions of it.
pub const MIN_FLEET_RETENTION_S: u64 = 10;

/// `[fleet]`. Without `redis_url` the instance runs alone and the other keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// `redis_url` (default none = a single instance): `redis://HOST:PORT[/DB]`, or
    /// `rediss://` for TLS (rustls, the system's trust store). It must not carry a password:
    /// that comes from `password_file` or `password_env`, so it never shows in a log line.
    pub redis_url: Option<String>,
    /// `stream` (default `verdict:revocations`): the stream key; its epoch marker is the key
    /// `<stream>:epoch`.
    pub stream: String,
    /// `username` (default none): the Redis ACL user (`AUTH username password`).
    pub username: Option<String>,
    /// `password_file` (default none): a file holding the Redis password (whitespace trimmed),
    /// relative to the config file.
    pub password_file: Option<PathBuf>,
    /// `password_env` (default none): an environment variable holding the Redis password.
    pub password_env: Option<String>,
    /// `instance_id` (default none = generated once and kept in the fleet state file): this
    /// instance's name on the stream. Each instance of a fleet needs its own.
    pub instance_id: Option<String>,
    /// `retention_s` (default 86400, at least 10): the stream keeps this much history
    /// (`XTRIM MINID`); every instance re-publishes its own live entries before they would fall
    /// out of it.
    pub retention_s: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            redis_url: None,
            stream: "verdict:revocations".to_owned(),
            username: None,
            password_file: None,
            password_env: None,
            instance_id: None,
            retention_s: 86_400,
        }
    }
}

impl FleetConfig {
    /// Whether this instance is part of a fleet.
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    /// The Redis password, read from `password_file` or `password_env`; `None` when neither is
    /// set. The error names the key, never the value.
    pub fn password(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("fleet.password_file: cannot read {}: {e}", path.display()))?;
            return Ok(Some(text.trim().to_owned()));
        }
        if let Some(name) = &self.password_env {
            let value = std::env::var(name).map_err(|_| {
                format!("fleet.password_env: the environment variable {name} is not set")
            })?;
            return Ok(Some(value.trim().to_owned()));
        }
        Ok(None)
    }
}

pub(super) fn check_fleet(fleet: &FleetConfig) -> Result<(), Invalid> {
    let Some(url) = &fleet.redis_url else {
        return Ok(());
    };
    let parsed =
        url::Url::parse(url).map_err(|e| invalid("fleet.redis_url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(invalid(
            "fleet.redis_url",
            "must start with redis:// or rediss:// (TLS)",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("fleet.redis_url", "names no host"));
    }
    if parsed.password().is_some() {
        return Err(invalid(
            "fleet.redis_url",
            "must not carry a password: use fleet.password_file or fleet.password_env",
        ));
    }
    if fleet.stream.is_empty() || fleet.stream.len() > 256 {
        return Err(invalid("fleet.stream", "must be 1 to 256 bytes"));
    }
    if fleet.password_file.is_some() && fleet.password_env.is_some() {
        return Err(invalid(
            "fleet.password_env",
            "set either fleet.password_file or fleet.password_env, not both",
        ));
    }
    if let Some(id) = &fleet.instance_id
        && (id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    {
        return Err(invalid(
            "fleet.instance_id",
            "must be 1 to 64 characters of [A-Za-z0-9-_.:]",
        ));
    }
    if fleet.retention_s < MIN_FLEET_RETENTION_S {
        return Err(invalid(
            "fleet.retention_s",
            format!("must be at least {MIN_FLEET_RETENTION_S}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{PROVIDER, data_dir, ok, rejects};

    fn fleet(extra: &str) -> String {
        format!("[fleet]\n{extra}\n{PROVIDER}")
    }

    #[test]
    fn fleet_defaults_and_keys() {
        let c = ok(PROVIDER);
        assert!(!c.fleet.enabled());
        assert_eq!(c.fleet.stream, "verdict:revocations");
        let c = ok(&fleet(
            "redis_url = \"rediss://cache.internal:6380/2\"\nstream = \"{v}:rev\"\nusername = \"verdict\"\npassword_file = \"redis.pw\"\ninstance_id = \"gw-1\"\nretention_s = 3600",
        ));
        assert!(c.fleet.enabled());
        assert_eq!(c.fleet.stream, "{v}:rev");
        assert_eq!(c.fleet.password_file, Some(data_dir().join("redis.pw")));
        assert_eq!(c.fleet.retention_s, 3600);
    }

    #[test]
    fn fleet_refusals_name_the_key() {
        rejects(&fleet("redis_url = \"http://x\""), "fleet.redis_url");
        rejects(&fleet("redis_url = \"redis://\""), "fleet.redis_url");
        let e = rejects(
            &fleet("redis_url = \"redis://u:secret@h:6379\""),
            "fleet.redis_url",
        );
        assert!(!e.to_string().contains("secret"), "{e}");
        let url = "redis_url = \"redis://h\"";
        rejects(&fleet(&format!("{url}\nstream = \"\"")), "fleet.stream");
        rejects(
            &fleet(&format!(
                "{url}\npassword_file = \"p\"\npassword_env = \"P\""
            )),
            "fleet.password_env",
        );
        rejects(
            &fleet(&format!("{url}\ninstance_id = \"a b\"")),
            "fleet.instance_id",
        );
        rejects(
            &fleet(&format!("{url}\nretention_s = 9")),
            "fleet.retention_s",
        );
    }
}
