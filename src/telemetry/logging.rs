//! Process logging (tracing-subscriber) and the one safe way to refer to a token in a log.

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The spelling accepted by [`FromStr`] and printed by [`fmt::Display`].
    pub const fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`LogFormat`] from anything but `text` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?} (expected \"text\" or \"json\")")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_owned())),
        }
    }
}

/// Installs the global tracing subscriber, writing to stderr (stdout is reserved for output a
/// user asked for, such as the demo's sample token). The filter comes from `RUST_LOG`, defaulting
/// to `info`; invalid directives are reported and skipped rather than failing startup.
///
/// Idempotent: if a subscriber is already installed (a second call, or a test harness), this
/// leaves it in place and returns quietly.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a global subscriber exists already, which is the idempotence
    // we want, so the error is deliberately dropped.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            // Event fields at the top level (`"message": …`), not nested under `"fields"`, so
            // log queries stay short.
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// The first 8 hex characters of the SHA-256 of `token`: enough to correlate log lines about the
/// same token, far too little to recover or replay it. This is the only form in which a token may
/// ever appear in a log.
pub fn token_digest_prefix(token: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    digest
        .as_ref()
        .iter()
        .take(4)
        .fold(String::with_capacity(8), |mut hex, byte| {
            use fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_prefix_is_eight_hex_chars_of_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea …
        assert_eq!(token_digest_prefix(b"abc"), "ba7816bf");
        assert_eq!(token_digest_prefix(b""), "e3b0c442");
    }

    #[test]
    fn digest_prefix_never_contains_the_token() {
        for token in [
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            "abcd",
            "a",
            "deadbeef",
            "ba7816bf",
        ] {
            let prefix = token_digest_prefix(token.as_bytes());
            assert_eq!(prefix.len(), 8);
            assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()));
            // A token equal to its own digest prefix would be a fixed point of SHA-256's first
            // 32 bits; the test tokens include the prefix of "abc" to show it is not echoed.
            assert_ne!(prefix, token);
            if token.len() >= 4 {
                assert!(!prefix.contains(token), "{token} leaked into {prefix}");
            }
        }
    }

    #[test]
    fn log_format_parses_and_displays() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("TEXT".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Json.to_string(), "json");
    }

    #[test]
    fn init_logging_twice_is_harmless() {
        init_logging(LogFormat::Json);
        init_logging(LogFormat::Text);
        tracing::info!(token = %token_digest_prefix(b"x"), "logging initialised twice");
    }
}
