//! `[crypto]`: which signature-verification engine runs (see [`crate::crypto`]).
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use serde::Deserialize;
use std::path::PathBuf;

/// `backend`: the engine choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CryptoBackend {
    /// `"auto"` (default): per algorithm, crypto_mb where it loads, passes its start-up probe
    /// and a short self-benchmark says it is faster at that batch size; aws-lc-rs otherwise.
    #[default]
    Auto,
    /// `"aws-lc"`: aws-lc-rs for everything.
    AwsLc,
    /// `"crypto-mb"`: Intel crypto_mb for every algorithm and key it serves (RSA 2048/3072/4096
    /// with e = 65537, ES256, ES384, EdDSA), even single verifications; aws-lc-rs for the
    /// rest, and for everything when crypto_mb cannot be loaded or this CPU cannot run it
    /// (logged as a warning).
    CryptoMb,
    /// `"openssl"`: recognised, but that engine is not built yet; the config is refused.
    Openssl,
}

impl CryptoBackend {
    /// The value as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            CryptoBackend::Auto => "auto",
            CryptoBackend::AwsLc => "aws-lc",
            CryptoBackend::CryptoMb => "crypto-mb",
            CryptoBackend::Openssl => "openssl",
        }
    }
}

/// `[crypto]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoConfig {
    /// `backend` (default `"auto"`): `"auto"`, `"aws-lc"` or `"crypto-mb"` (`"openssl"` is
    /// refused: not built yet).
    pub backend: CryptoBackend,
    /// `crypto_mb_library` (default unset = `libcrypto_mb.so` on the loader's search path): the
    /// Intel crypto_mb shared library; relative to the config file's directory. The Intel
    /// runtime libraries beside it (`libsvml.so`, `libimf.so`, `libirng.so`, `libintlc.so.5`)
    /// are loaded first. A library that is missing or cannot run here is not a config error:
    /// verdict logs why and verifies with aws-lc-rs.
    pub crypto_mb_library: Option<PathBuf>,
    /// `auto_benchmark` (default true): with `backend = "auto"`, measure crypto_mb against
    /// aws-lc-rs at start (about 240 ms) to choose from which batch size crypto_mb is used.
    /// `false` skips it (faster starts) and uses batches of 3 or more, the break-even measured
    /// on AVX-512 IFMA hosts.
    pub auto_benchmark: bool,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        CryptoConfig {
            backend: CryptoBackend::default(),
            crypto_mb_library: None,
            auto_benchmark: true,
        }
    }
}

pub(super) fn check_crypto(crypto: &CryptoConfig) -> Result<(), Invalid> {
    if crypto.backend == CryptoBackend::Openssl {
        return Err(invalid(
            "crypto.backend",
            "\"openssl\" is a recognised engine but it is not built yet; use \"auto\", \
             \"aws-lc\" or \"crypto-mb\"",
        ));
    }
    if let Some(path) = &crypto.crypto_mb_library
        && path.as_os_str().is_empty()
    {
        return Err(invalid(
            "crypto.crypto_mb_library",
            "must not be empty (omit it to use the loader's search path)",
        ));
    }
    Ok(())
}
