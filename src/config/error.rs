//! Configuration errors and warnings, and the key-level rule violation the checks return.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

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
pub(super) struct Invalid {
    key: String,
    reason: String,
}

pub(super) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Invalid {
    pub(super) fn in_file(self, file: &Path) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            key: self.key,
            location: None,
            kind: ConfigErrorKind::Invalid,
            reason: self.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{origin, rejects, server};

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
}
