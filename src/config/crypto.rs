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
    /// and a short self-benchmark says it is faster at that batch size; for single
    /// verifications, OpenSSL where an `openssl_*` key is set and it measured faster than
    /// aws-lc-rs; aws-lc-rs otherwise.
    #[default]
    Auto,
    /// `"aws-lc"`: aws-lc-rs for everything.
    AwsLc,
    /// `"crypto-mb"`: Intel crypto_mb for every algorithm and key it serves (RSA 2048/3072/4096
    /// with e = 65537, ES256, ES384, EdDSA), even single verifications; aws-lc-rs for the
    /// rest, and for everything when crypto_mb cannot be loaded or this CPU cannot run it
    /// (logged as a warning).
    CryptoMb,
    /// `"openssl"`: OpenSSL 3 (its default provider, or what `openssl_provider`,
    /// `openssl_engine` and `openssl_conf` load) for every algorithm it passes its start-up
    /// probe for, HMAC excepted; aws-lc-rs for the rest, and for everything when OpenSSL
    /// cannot load what is named (logged as a warning).
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
    /// `backend` (default `"auto"`): `"auto"`, `"aws-lc"`, `"crypto-mb"` or `"openssl"`.
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
    /// `openssl_provider` (default unset = OpenSSL's built-in `default` provider, or what
    /// `openssl_conf` activates): an OpenSSL 3 provider to load by name (such as `qatprovider`)
    /// into verdict's own library context; signature operations are fetched with the property
    /// query `?provider=<name>`, and an algorithm that provider does not serve stays on
    /// aws-lc-rs. A provider that cannot be loaded is not a config error: verdict logs why and
    /// verifies with aws-lc-rs. Used by `backend = "openssl"`, and by `"auto"` when set.
    pub openssl_provider: Option<String>,
    /// `openssl_engine` (default unset): a legacy OpenSSL ENGINE to load by id (such as
    /// `qatengine`) for the RSA and EC keys it implements; the other algorithms go to the
    /// provider. Not loadable: logged, aws-lc-rs for everything.
    pub openssl_engine: Option<String>,
    /// `openssl_conf` (default unset): an OpenSSL config file (the `openssl_conf` section:
    /// providers to activate, default properties, engines) loaded into verdict's library
    /// context; relative to the config file's directory.
    pub openssl_conf: Option<PathBuf>,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        CryptoConfig {
            backend: CryptoBackend::default(),
            crypto_mb_library: None,
            auto_benchmark: true,
            openssl_provider: None,
            openssl_engine: None,
            openssl_conf: None,
        }
    }
}

impl CryptoConfig {
    /// What the OpenSSL engine loads (`openssl_provider`, `openssl_engine`, `openssl_conf`).
    pub fn openssl_options(&self) -> crate::crypto::OpensslOptions {
        crate::crypto::OpensslOptions {
            provider: self.openssl_provider.clone(),
            engine: self.openssl_engine.clone(),
            conf: self.openssl_conf.clone(),
        }
    }
}

pub(super) fn check_crypto(crypto: &CryptoConfig) -> Result<(), Invalid> {
    for (key, value) in [
        ("crypto.openssl_provider", &crypto.openssl_provider),
        ("crypto.openssl_engine", &crypto.openssl_engine),
    ] {
        if let Some(name) = value
            && (name.is_empty() || name.contains('\0'))
        {
            return Err(invalid(key, "must be a non-empty name (omit it for none)"));
        }
    }
    if let Some(path) = &crypto.openssl_conf
        && path.as_os_str().is_empty()
    {
        return Err(invalid(
            "crypto.openssl_conf",
            "must not be empty (omit it for none)",
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
