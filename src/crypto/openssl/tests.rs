//! The OpenSSL engine against the providers Debian ships: `default` serves every algorithm,
//! `legacy` none of the signature algorithms, a name that does not exist is refused at load,
//! and so is an ENGINE id that does not exist, while a real ENGINE without RSA or EC methods
//! leaves them to the provider; an `openssl_conf` file that activates `default`
//! serves everything. The conformance suites (tests/wycheproof.rs, tests/interop.rs) run the
//! engine on every vector.
#![allow(clippy::expect_used)]

use super::keys::{MAX_ECDSA_DER, jose_to_der};
use super::*;
use crate::crypto::probe_vectors;
use crate::jose::b64;

fn load(options: &OpensslOptions) -> OpensslBackend {
    OpensslBackend::load(options).expect("OpenSSL loads")
}

#[test]
fn default_provider_serves_every_algorithm_but_hmac() {
    for options in [
        OpensslOptions::default(),
        OpensslOptions {
            provider: Some("default".to_owned()),
            ..OpensslOptions::default()
        },
    ] {
        let engine = load(&options);
        for (alg, result) in engine.probes() {
            assert_eq!(result.as_deref(), Ok("provider default"), "{alg}");
            assert!(engine.serves(*alg));
        }
        assert_eq!(engine.probes().len(), ALGORITHMS.len());
        assert!(!engine.serves(Algorithm::HS256));
    }
}

#[test]
fn legacy_provider_lacks_the_signatures_so_they_stay_on_aws_lc() {
    let engine = load(&OpensslOptions {
        provider: Some("legacy".to_owned()),
        ..OpensslOptions::default()
    });
    assert!(engine.description().contains("provider legacy"));
    for (alg, result) in engine.probes() {
        let why = result.as_ref().expect_err("legacy has no signatures");
        assert!(why.contains("the legacy provider has no"), "{alg}: {why}");
        assert!(!engine.serves(*alg));
    }
    // Keys still verify, on aws-lc-rs.
    let material = KeyMaterial::Ed25519 {
        x: b64::decode(probe_vectors::ED25519_KEY.as_bytes())
            .expect("b64")
            .try_into()
            .expect("32"),
    };
    let key = engine.prepare(&material, Algorithm::EdDSA).expect("key");
    assert_eq!(engine.key_engine(&key), "aws-lc-rs");
    let sig = b64::decode(probe_vectors::ED25519_SIG.as_bytes()).expect("b64");
    assert_eq!(engine.verify(&key, probe_vectors::MESSAGE, &sig), Ok(()));
}

#[test]
fn a_provider_that_does_not_exist_is_refused_at_load() {
    let error = OpensslBackend::load(&OpensslOptions {
        provider: Some("no-such-provider".to_owned()),
        ..OpensslOptions::default()
    })
    .expect_err("no such provider");
    let text = error.to_string();
    assert!(matches!(error, OpensslError::Provider { .. }), "{text}");
    assert!(text.contains("\"no-such-provider\""), "{text}");
}

#[test]
fn an_engine_that_does_not_exist_is_refused_at_load() {
    let error = OpensslBackend::load(&OpensslOptions {
        engine: Some("no-such-engine".to_owned()),
        ..OpensslOptions::default()
    })
    .expect_err("no such engine");
    assert!(matches!(error, OpensslError::Engine { .. }), "{error}");
    assert!(error.to_string().contains("ENGINE_by_id"), "{error}");
}

/// A real ENGINE (Debian's `loader_attic`, in `libssl3`) that implements neither RSA nor EC:
/// it loads and initialises, and every algorithm goes to the provider path.
#[test]
fn an_engine_without_rsa_or_ec_leaves_the_signatures_to_the_provider() {
    let engine = load(&OpensslOptions {
        engine: Some("loader_attic".to_owned()),
        ..OpensslOptions::default()
    });
    assert!(
        engine.description().contains("engine loader_attic"),
        "{}",
        engine.description()
    );
    for (alg, result) in engine.probes() {
        assert_eq!(result.as_deref(), Ok("provider default"), "{alg}");
    }
}

#[test]
fn a_config_file_that_activates_the_default_provider() {
    let dir = std::env::temp_dir().join(format!("verdict-openssl-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("openssl.cnf");
    std::fs::write(
        &file,
        "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n\
         [provider_sect]\ndefault = default_sect\n[default_sect]\nactivate = 1\n",
    )
    .expect("write");
    let engine = load(&OpensslOptions {
        conf: Some(file.clone()),
        ..OpensslOptions::default()
    });
    assert!(
        engine.description().contains("config "),
        "{}",
        engine.description()
    );
    assert!(
        ALGORITHMS.iter().all(|a| engine.serves(*a)),
        "{:?}",
        engine.probes()
    );
    let missing = OpensslBackend::load(&OpensslOptions {
        conf: Some(dir.join("missing.cnf")),
        ..OpensslOptions::default()
    })
    .expect_err("missing file");
    assert!(matches!(missing, OpensslError::Config { .. }), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jose_signatures_become_canonical_der() {
    use ::openssl::bn::BigNum;
    use ::openssl::ecdsa::EcdsaSig;
    for len in [32usize, 48, 66] {
        for (r_first, s_first) in [(0x00u8, 0x7f), (0x80, 0x01), (0x00, 0x00), (0xff, 0x00)] {
            let mut sig = vec![0x11u8; 2 * len];
            sig[0] = r_first;
            sig[len] = s_first;
            if r_first == 0 {
                sig[1] = 0x00;
                sig[2] = 0x80;
            }
            let mut out = [0u8; MAX_ECDSA_DER];
            let ours = jose_to_der(&sig, len, &mut out).expect("fits").to_vec();
            let want = EcdsaSig::from_private_components(
                BigNum::from_slice(&sig[..len]).expect("r"),
                BigNum::from_slice(&sig[len..]).expect("s"),
            )
            .expect("sig")
            .to_der()
            .expect("der");
            assert_eq!(ours, want, "len {len} r0 {r_first:#x} s0 {s_first:#x}");
        }
        let mut out = [0u8; MAX_ECDSA_DER];
        assert!(jose_to_der(&vec![1; 2 * len + 1], len, &mut out).is_none());
    }
}

#[test]
fn auto_calibration_keeps_only_what_is_faster() {
    let mut engine = load(&OpensslOptions::default());
    let measured = engine.calibrate(std::time::Duration::from_millis(60));
    assert_eq!(measured.len(), ALGORITHMS.len());
    for m in &measured {
        assert!(m.aws_lc_ops_per_s > 0.0 && m.openssl_ops_per_s > 0.0);
        assert_eq!(engine.serves(m.alg), m.chosen, "{m:?}");
        assert_eq!(m.chosen, m.openssl_ops_per_s > m.aws_lc_ops_per_s, "{m:?}");
    }
}
