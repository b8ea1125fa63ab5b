//! `[audit]`: the tamper-evident decision log (see [`crate::telemetry::audit`]).
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use serde::Deserialize;
use std::path::PathBuf;

/// Default `max_file_bytes`: 64 MiB.
pub const DEFAULT_AUDIT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default `queue_lines`.
pub const DEFAULT_AUDIT_QUEUE_LINES: usize = 65_536;
/// Smallest `max_file_bytes` accepted (a few lines per file).
pub const MIN_AUDIT_MAX_FILE_BYTES: u64 = 4096;
/// Largest `queue_lines` accepted per worker.
pub const MAX_AUDIT_QUEUE_LINES: usize = 16 * 1024 * 1024;

/// `[audit]`: one hash-chained JSON-lines file per worker recording every ext_authz decision.
/// Absent, or without `dir`, the audit log is off (the default).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// `dir` (default unset = off): the directory the audit files are written to, created if
    /// missing. A relative path is resolved against the config file's directory.
    pub dir: Option<PathBuf>,
    /// `max_file_bytes` (default 64 MiB, at least 4096): a worker's file is closed and a new
    /// one (with a chain of its own) started once it has grown past this size.
    pub max_file_bytes: u64,
    /// `queue_lines` (default 65536, 1 to 16777216): lines each worker may have waiting for
    /// its writer thread; a check that finds its queue full is answered anyway and its line is
    /// dropped and counted (`verdict_audit_lines_total{result="dropped"}`).
    pub queue_lines: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            dir: None,
            max_file_bytes: DEFAULT_AUDIT_MAX_FILE_BYTES,
            queue_lines: DEFAULT_AUDIT_QUEUE_LINES,
        }
    }
}

impl AuditConfig {
    /// Whether decisions are audited.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }
}

pub(super) fn check_audit(audit: &AuditConfig) -> Result<(), Invalid> {
    if let Some(dir) = &audit.dir
        && dir.as_os_str().is_empty()
    {
        return Err(invalid(
            "audit.dir",
            "must not be empty (omit it to turn the audit log off)",
        ));
    }
    if audit.max_file_bytes < MIN_AUDIT_MAX_FILE_BYTES {
        return Err(invalid(
            "audit.max_file_bytes",
            format!(
                "must be at least {MIN_AUDIT_MAX_FILE_BYTES}, got {}",
                audit.max_file_bytes
            ),
        ));
    }
    if audit.queue_lines == 0 || audit.queue_lines > MAX_AUDIT_QUEUE_LINES {
        return Err(invalid(
            "audit.queue_lines",
            format!(
                "must be between 1 and {MAX_AUDIT_QUEUE_LINES}, got {}",
                audit.queue_lines
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{PROVIDER, data_dir, ok, rejects};

    fn audit(extra: &str) -> String {
        format!("[audit]\n{extra}\n{PROVIDER}")
    }

    #[test]
    fn off_by_default() {
        let c = ok(PROVIDER);
        assert_eq!(c.audit, AuditConfig::default());
        assert!(!c.audit.enabled());
        let c = ok(&audit(""));
        assert!(!c.audit.enabled());
        assert_eq!(c.audit.max_file_bytes, 64 * 1024 * 1024);
        assert_eq!(c.audit.queue_lines, 65_536);
    }

    #[test]
    fn dir_is_resolved_against_the_config_file() {
        let c = ok(&audit("dir = \"audit\""));
        assert_eq!(c.audit.dir, Some(data_dir().join("audit")));
        assert!(c.audit.enabled());
        let c = ok(&audit("dir = \"/var/log/verdict/audit\""));
        assert_eq!(c.audit.dir, Some(PathBuf::from("/var/log/verdict/audit")));
        rejects(&audit("dir = \"\""), "audit.dir");
    }

    #[test]
    fn bounds_are_checked() {
        let c = ok(&audit(
            "dir = \"a\"\nmax_file_bytes = 4096\nqueue_lines = 1",
        ));
        assert_eq!((c.audit.max_file_bytes, c.audit.queue_lines), (4096, 1));
        rejects(&audit("max_file_bytes = 4095"), "audit.max_file_bytes");
        rejects(&audit("queue_lines = 0"), "audit.queue_lines");
        rejects(&audit("queue_lines = 16777217"), "audit.queue_lines");
        rejects(&audit("queue_lines = -1"), "audit.queue_lines");
        rejects(&audit("max_file_bytes = \"big\""), "audit.max_file_bytes");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = rejects(&audit("directory = \"a\""), "audit.directory");
        assert!(e.reason.contains("unknown field `directory`"), "{e}");
    }
}
