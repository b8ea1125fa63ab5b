//! Helpers shared by the config unit tests: the test data directory and small config texts.
#![forbid(unsafe_code)]

use super::{Config, ConfigError, ProviderConfig, from_toml_str};
use std::path::{Path, PathBuf};

/// The directory holding the test configs and `jwks.json`.
pub(super) fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config")
}

/// A pretend origin beside `jwks.json`, so `jwks_file = "jwks.json"` resolves.
pub(super) fn origin() -> PathBuf {
    data_dir().join("inline-test.toml")
}

pub(super) const PROVIDER: &str = r#"
[[providers]]
name = "corp"
issuer = "https://idp.example.com"
jwks_file = "jwks.json"
"#;

/// One valid provider followed by `extra` keys in the same table.
pub(super) fn provider_with(extra: &str) -> String {
    format!("{PROVIDER}{extra}\n")
}

/// A provider table with no key source, followed by `extra`.
pub(super) fn sourceless_with(extra: &str) -> String {
    format!("[[providers]]\nname = \"corp\"\nissuer = \"https://idp.example.com\"\n{extra}\n")
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    from_toml_str(text, &origin())
}

pub(super) fn ok(text: &str) -> Config {
    parse(text).expect("the config should be valid")
}

pub(super) fn provider(text: &str) -> ProviderConfig {
    ok(text).providers.into_iter().next().expect("one provider")
}

/// Asserts `text` is rejected, that the error names `key` in its key and its message.
pub(super) fn rejects(text: &str, key: &str) -> ConfigError {
    let error = parse(text).expect_err("the config should be rejected");
    assert_eq!(error.key, key, "wrong key in: {error}");
    let shown = error.to_string();
    assert!(
        shown.contains(&format!(": {key}: ")),
        "message does not name {key}: {shown}"
    );
    error
}

pub(super) fn server(extra: &str) -> String {
    format!("[server]\n{extra}\n{PROVIDER}")
}
