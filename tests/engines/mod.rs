//! The verification engines the conformance suites run on, so that one test body runs once per
//! engine (DESIGN: every backend must pass every vector).
//!
//! Intel crypto_mb comes from the PyPI wheels pinned in `tests/support/requirements.txt`
//! (`ipp-crypto`, `intel-cmplr-lib-rt`), installed into `<repo>/.venv` by
//! `tests/support/ensure_venv.py`; `$VERDICT_CRYPTO_MB_LIBRARY` points elsewhere. The engine
//! loads the Intel runtime libraries found beside `libcrypto_mb.so` by absolute path, so no
//! `LD_LIBRARY_PATH` is needed. On a CPU with AVX-512 IFMA crypto_mb must load and pass every
//! probe, or the test fails; elsewhere the suites say why it did not run and go on with the
//! other engines.
//!
//! OpenSSL 3 (Debian `libssl3`, installed by `.ci/run`) always runs: its `default` provider,
//! loaded by name into verdict's own library context, must pass every probe.
#![allow(dead_code, clippy::expect_used)]

use std::path::PathBuf;
use verdict::crypto::{
    AwsLcBackend, Backend, CryptoMbBackend, CryptoMbOptions, OpensslBackend, OpensslOptions,
};

/// Where the tests load `libcrypto_mb.so` from (setting the venv up first when it is the
/// venv's).
pub fn crypto_mb_library() -> PathBuf {
    if let Some(path) = std::env::var_os("VERDICT_CRYPTO_MB_LIBRARY") {
        return PathBuf::from(path);
    }
    let python = crate::venv::python();
    python
        .parent()
        .and_then(|bin| bin.parent())
        .expect("the venv python lives in .venv/bin")
        .join("lib/libcrypto_mb.so")
}

/// Whether this CPU advertises AVX-512 IFMA (`/proc/cpuinfo`).
pub fn cpu_has_ifma() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|flags| flags.split_whitespace().any(|f| f == "avx512ifma"))
        })
        .unwrap_or(false)
}

/// The crypto_mb engine, or `None` with the reason printed when this machine cannot run it.
/// Panics on an IFMA CPU when it does not load or a family fails its probe.
pub fn crypto_mb() -> Option<CryptoMbBackend> {
    let options = CryptoMbOptions {
        library: Some(crypto_mb_library()),
        force_cpu_unable: false,
    };
    match CryptoMbBackend::load(&options) {
        Ok(engine) => {
            for (family, result) in engine.probes() {
                assert!(
                    result.is_ok(),
                    "crypto_mb loaded but {family} failed its probe: {result:?}"
                );
            }
            Some(engine)
        }
        Err(error) if cpu_has_ifma() => panic!(
            "this CPU has AVX-512 IFMA, so crypto_mb must run here, but it could not: {error}"
        ),
        Err(error) => {
            eprintln!("crypto_mb engine NOT tested on this machine: {error}");
            None
        }
    }
}

/// The OpenSSL engine on its `default` provider. Panics when it does not load or an algorithm
/// fails its probe.
pub fn openssl() -> OpensslBackend {
    let engine = OpensslBackend::load(&OpensslOptions {
        provider: Some("default".to_owned()),
        ..OpensslOptions::default()
    })
    .expect("OpenSSL 3 loads its default provider");
    for (alg, result) in engine.probes() {
        assert!(result.is_ok(), "OpenSSL failed its {alg} probe: {result:?}");
    }
    engine
}

/// Every engine, by name: aws-lc-rs first (the reference), then OpenSSL, then crypto_mb when
/// it runs here.
pub fn all() -> Vec<(&'static str, Box<dyn Backend>)> {
    let mut engines: Vec<(&'static str, Box<dyn Backend>)> = vec![
        ("aws-lc", Box::new(AwsLcBackend::default())),
        ("openssl", Box::new(openssl())),
    ];
    if let Some(engine) = crypto_mb() {
        engines.push(("crypto-mb", Box::new(engine)));
    }
    engines
}
