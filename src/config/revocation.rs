//! `[revocation]`: where revocations are kept durable, and how many may be live.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use serde::Deserialize;
use std::path::PathBuf;

/// `[revocation]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevocationConfig {
    /// `log_file` (default none): the durable revocation log, relative to the config file's
    /// directory. Unset = revocations live in memory only and are lost on restart (logged as a
    /// warning at start).
    pub log_file: Option<PathBuf>,
    /// `max_entries` (default 1000000, at least 1): live revocations at most; a POST past it
    /// is refused with 507.
    pub max_entries: usize,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            log_file: None,
            max_entries: 1_000_000,
        }
    }
}

pub(super) fn check_revocation(revocation: &RevocationConfig) -> Result<(), Invalid> {
    if revocation.max_entries == 0 {
        return Err(invalid("revocation.max_entries", "must be at least 1"));
    }
    if let Some(path) = &revocation.log_file {
        if path.as_os_str().is_empty() {
            return Err(invalid("revocation.log_file", "must not be empty"));
        }
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            return Err(invalid(
                "revocation.log_file",
                format!("{}: its directory does not exist", path.display()),
            ));
        }
    }
    Ok(())
}
