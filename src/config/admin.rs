//! `[admin]`: where the admin API's bearer token comes from.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use serde::Deserialize;
use std::path::PathBuf;

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

pub(super) fn check_admin(admin: &AdminConfig) -> Result<(), Invalid> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{PROVIDER, data_dir, ok, rejects};

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
}
