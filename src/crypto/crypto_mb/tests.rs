//! Unit tests of the crypto_mb engine. They need `libcrypto_mb.so`: `$VERDICT_CRYPTO_MB_LIBRARY`,
//! else `<repo>/.venv/lib/libcrypto_mb.so` (`python3 tests/support/ensure_venv.py` installs it).
//! On a CPU with AVX-512 IFMA a library that does not load fails the test; elsewhere the tests
//! that need the library print why they could not run.
#![allow(clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use super::*;
use crate::crypto::AwsLcBackend;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};

fn library_path() -> PathBuf {
    std::env::var_os("VERDICT_CRYPTO_MB_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            ensure_venv();
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/lib/libcrypto_mb.so")
        })
}

/// Runs `tests/support/ensure_venv.py` once per test process, so a fresh clone's
/// `cargo test` installs the pinned wheels before these tests look for the library (the
/// integration tests do the same through `tests/venv`). A failure is reported by the test that
/// then cannot load the library, with the script's output.
fn ensure_venv() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python3 = std::env::var("VERDICT_PYTHON3").unwrap_or_else(|_| "python3".to_owned());
        match std::process::Command::new(&python3)
            .arg(root.join("tests/support/ensure_venv.py"))
            .current_dir(&root)
            .output()
        {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "ensure_venv.py failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => eprintln!("cannot run {python3} tests/support/ensure_venv.py: {error}"),
        }
    });
}

fn cpu_has_ifma() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|flags| flags.split_whitespace().any(|f| f == "avx512ifma"))
        })
        .unwrap_or(false)
}

/// The engine, or `None` (printed) where this machine cannot run it.
fn engine() -> Option<CryptoMbBackend> {
    let options = CryptoMbOptions {
        library: Some(library_path()),
        force_cpu_unable: false,
    };
    match CryptoMbBackend::load(&options) {
        Ok(engine) => Some(engine),
        Err(error) if cpu_has_ifma() => {
            panic!("this CPU has AVX-512 IFMA, so crypto_mb must run here, but: {error}")
        }
        Err(error) => {
            eprintln!("crypto_mb not tested on this machine: {error}");
            None
        }
    }
}

fn rsa_material(pair: &RsaKeyPair) -> KeyMaterial {
    let PublicKeyComponents { n, e } = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    KeyMaterial::Rsa { n, e }
}

fn rsa_sign(pair: &RsaKeyPair, padding: &'static dyn signature::RsaEncoding, m: &[u8]) -> Vec<u8> {
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(padding, &SystemRandom::new(), m, &mut sig)
        .expect("RSA signing");
    sig
}

#[test]
fn limbs_and_big_endian_helpers() {
    let be: Vec<u8> = (1..=16).collect();
    assert_eq!(
        be_to_limbs(&be),
        vec![0x090a_0b0c_0d0e_0f10, 0x0102_0304_0506_0708]
    );
    let mut a = [0x01, 0x00, 0x00];
    be_sub_in_place(&mut a, &[0x00, 0x00, 0x01]);
    assert_eq!(a, [0x00, 0xff, 0xff]);
    assert!(be_less(&[0, 1], &[0, 2]));
    assert!(!be_less(&[0, 2], &[0, 2]));
    assert!(!in_scalar_range(&[0, 0], &[0, 5]));
    assert!(in_scalar_range(&[0, 4], &[0, 5]));
    assert!(!in_scalar_range(&[0, 5], &[0, 5]));
    assert!(ed25519_scalar_canonical(&[0u8; 32]));
    assert!(!ed25519_scalar_canonical(&ED25519_ORDER_LE));
    let mut below = ED25519_ORDER_LE;
    below[0] -= 1;
    assert!(ed25519_scalar_canonical(&below));
}

/// On this machine every family loads and passes its probe.
#[test]
fn every_family_passes_its_probe() {
    let Some(engine) = engine() else { return };
    for (family, result) in engine.probes() {
        assert_eq!(result, &Ok(()), "{family}");
        assert!(engine.serves(*family), "{family}");
    }
    for alg in [
        Algorithm::RS256,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ] {
        assert_eq!(engine.engine_for(alg), "crypto-mb", "{alg}");
    }
    for alg in [Algorithm::HS256, Algorithm::ES256K] {
        assert_eq!(engine.engine_for(alg), "aws-lc-rs", "{alg}");
    }
}

/// RSA through the library: both encodings, each hash, and every batch fill from 1 to 8, with
/// the same answers as aws-lc-rs.
#[test]
fn rsa_batches_match_aws_lc() {
    let Some(engine) = engine() else { return };
    let reference = AwsLcBackend::default();
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let material = rsa_material(&pair);
    let cases: [(Algorithm, &'static dyn signature::RsaEncoding); 6] = [
        (Algorithm::RS256, &signature::RSA_PKCS1_SHA256),
        (Algorithm::RS384, &signature::RSA_PKCS1_SHA384),
        (Algorithm::RS512, &signature::RSA_PKCS1_SHA512),
        (Algorithm::PS256, &signature::RSA_PSS_SHA256),
        (Algorithm::PS384, &signature::RSA_PSS_SHA384),
        (Algorithm::PS512, &signature::RSA_PSS_SHA512),
    ];
    for (alg, padding) in cases {
        let key = engine.prepare(&material, alg).expect("prepare");
        assert!(key.mb().is_some(), "{alg}: crypto_mb form");
        let ref_key = reference.prepare(&material, alg).expect("prepare");
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'm', i]).collect();
        let mut signatures: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| rsa_sign(&pair, padding, m))
            .collect();
        // Lanes 3 and 6 are forged.
        signatures[3][100] ^= 0x10;
        signatures[6][0] ^= 0x01;
        for fill in 1..=8 {
            let jobs: Vec<VerifyJob<'_>> = (0..fill)
                .map(|i| VerifyJob {
                    key: &key,
                    message: &messages[i],
                    signature: &signatures[i],
                })
                .collect();
            let mut results = Vec::new();
            engine.verify_batch(&jobs, &mut results);
            for (i, result) in results.iter().enumerate() {
                let expected = reference.verify(&ref_key, &messages[i], &signatures[i]);
                assert_eq!(*result, expected, "{alg} fill {fill} lane {i}");
                assert_eq!(result.is_ok(), i != 3 && i != 6, "{alg} lane {i}");
                assert_eq!(
                    engine.verify(&key, &messages[i], &signatures[i]),
                    expected,
                    "{alg} single {i}"
                );
            }
        }
    }
}

/// A library path that does not exist is an error naming it.
#[test]
fn missing_library_is_an_error() {
    let options = CryptoMbOptions {
        library: Some(PathBuf::from("/nonexistent/libcrypto_mb.so")),
        force_cpu_unable: false,
    };
    let error = CryptoMbBackend::load(&options).expect_err("no library there");
    assert!(
        matches!(&error, CryptoMbError::Load { library, .. } if library.contains("/nonexistent/")),
        "{error}"
    );
    assert!(error.to_string().contains("no such file"), "{error}");
}

/// A CPU without AVX-512 (the test hook) is refused by the library's own check.
#[test]
fn cpu_forced_unable_is_an_error() {
    if engine().is_none() {
        return;
    }
    let options = CryptoMbOptions {
        library: Some(library_path()),
        force_cpu_unable: true,
    };
    let error = CryptoMbBackend::load(&options).expect_err("a CPU without AVX-512");
    assert!(
        matches!(error, CryptoMbError::CpuUnable { features: 0x4, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("cannot run on this CPU"),
        "{error}"
    );
}

/// Algorithms crypto_mb lacks (HMAC, secp256k1, RSA with another exponent or size) are
/// answered by aws-lc-rs through the same backend, alone and in batches mixed with served ones.
#[test]
fn algorithms_it_lacks_fall_back_to_aws_lc() {
    let Some(engine) = engine() else { return };
    let hmac = engine
        .prepare(&KeyMaterial::Oct { k: vec![7u8; 32] }, Algorithm::HS256)
        .expect("hmac key");
    assert!(hmac.mb().is_none());
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7u8; 32]),
        b"m",
    );
    assert_eq!(engine.verify(&hmac, b"m", tag.as_ref()), Ok(()));
    assert_eq!(
        engine.verify(&hmac, b"x", tag.as_ref()),
        Err(Reject::BadSignature)
    );
    // A served RSA key, mixed into the same batch.
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let rsa = engine
        .prepare(&rsa_material(&pair), Algorithm::RS256)
        .expect("rsa key");
    let sig = rsa_sign(&pair, &signature::RSA_PKCS1_SHA256, b"m");
    let k256 = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
    )
    .expect("keygen");
    let point = k256.public_key().as_ref();
    let es256k = engine
        .prepare(
            &KeyMaterial::Ec {
                curve: Curve::Secp256k1,
                x: point[1..33].to_vec(),
                y: point[33..].to_vec(),
            },
            Algorithm::ES256K,
        )
        .expect("secp256k1 key");
    assert!(es256k.mb().is_none());
    let es256k_sig = k256
        .sign(&SystemRandom::new(), b"m")
        .expect("sign")
        .as_ref()
        .to_vec();
    let jobs = [
        VerifyJob {
            key: &hmac,
            message: b"m",
            signature: tag.as_ref(),
        },
        VerifyJob {
            key: &rsa,
            message: b"m",
            signature: &sig,
        },
        VerifyJob {
            key: &es256k,
            message: b"m",
            signature: &es256k_sig,
        },
        VerifyJob {
            key: &es256k,
            message: b"n",
            signature: &es256k_sig,
        },
        VerifyJob {
            key: &rsa,
            message: b"n",
            signature: &sig,
        },
    ];
    let mut results = Vec::new();
    engine.verify_batch(&jobs, &mut results);
    assert_eq!(
        results,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Err(Reject::BadSignature),
            Err(Reject::BadSignature)
        ]
    );
    // A family switched off: its keys are prepared without a crypto_mb form.
    let mut engine = engine;
    engine.disable(MbFamily::Rsa2048);
    let rsa = engine
        .prepare(&rsa_material(&pair), Algorithm::RS256)
        .expect("rsa key");
    assert!(rsa.mb().is_none());
    assert_eq!(engine.verify(&rsa, b"m", &sig), Ok(()));
}

/// `calibrate` measures every served family and sets a threshold in 1..=9; below it, jobs go
/// to aws-lc-rs with the same answers.
#[test]
fn calibration_sets_thresholds_and_small_groups_fall_back() {
    let Some(mut engine) = engine() else { return };
    let measured = engine.calibrate(std::time::Duration::from_millis(120));
    assert_eq!(measured.len(), MbFamily::ALL.len());
    for c in &measured {
        println!(
            "{}: aws-lc-rs {:.0} ops/s single, crypto_mb {:.0} ops/s in calls of 8: \
             batches of {}+ go to crypto_mb",
            c.family, c.aws_lc_ops_per_s, c.crypto_mb_ops_per_s, c.min_batch
        );
        assert!((1..=LANES + 1).contains(&c.min_batch), "{c:?}");
        assert_eq!(engine.min_batch(c.family), c.min_batch);
    }
    engine.set_min_batch(MbFamily::Rsa2048, 3);
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let key = engine
        .prepare(&rsa_material(&pair), Algorithm::RS256)
        .expect("key");
    let good = rsa_sign(&pair, &signature::RSA_PKCS1_SHA256, b"m");
    let mut bad = good.clone();
    bad[5] ^= 1;
    for fill in 1..=5 {
        let jobs: Vec<VerifyJob<'_>> = (0..fill)
            .map(|i| VerifyJob {
                key: &key,
                message: b"m",
                signature: if i % 2 == 0 { &good } else { &bad },
            })
            .collect();
        let mut results = Vec::new();
        engine.verify_batch(&jobs, &mut results);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), i % 2 == 0, "fill {fill} lane {i}");
        }
    }
    assert_eq!(engine.verify(&key, b"m", &good), Ok(()));
    assert_eq!(engine.verify(&key, b"m", &bad), Err(Reject::BadSignature));
}

/// A lane the library fails (any status but OK or SIGNATURE_ERR) in the middle of a batch is
/// answered by aws-lc-rs, and its neighbours keep the library's answers.
#[test]
fn a_lane_failing_mid_batch_is_answered_by_aws_lc() {
    let Some(engine) = engine() else { return };
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let key = engine
        .prepare(&rsa_material(&pair), Algorithm::PS256)
        .expect("key");
    let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 40]).collect();
    let mut signatures: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| rsa_sign(&pair, &signature::RSA_PSS_SHA256, m))
        .collect();
    signatures[2][7] ^= 0x80;
    signatures[5][7] ^= 0x80;
    let jobs: Vec<VerifyJob<'_>> = messages
        .iter()
        .zip(&signatures)
        .map(|(m, s)| VerifyJob {
            key: &key,
            message: m,
            signature: s,
        })
        .collect();
    // Lanes 1 (valid), 2 (forged) and 4 (valid) fail in the library.
    engine
        .fail_lanes
        .store(0b0001_0110, std::sync::atomic::Ordering::Relaxed);
    let mut results = Vec::new();
    engine.verify_batch(&jobs, &mut results);
    let expected: Vec<bool> = (0..8).map(|i| i != 2 && i != 5).collect();
    assert_eq!(
        results.iter().map(Result::is_ok).collect::<Vec<_>>(),
        expected
    );
    // Every lane failing: all answered by aws-lc-rs, still right.
    engine
        .fail_lanes
        .store(0xff, std::sync::atomic::Ordering::Relaxed);
    engine.verify_batch(&jobs, &mut results);
    assert_eq!(
        results.iter().map(Result::is_ok).collect::<Vec<_>>(),
        expected
    );
    // The probe treats a failed lane as a failure.
    assert!(engine.probe(MbFamily::Rsa2048).is_err());
}

/// Through the per-core batcher (a real runtime, the real library): engine errors in the middle
/// of cross-request batches — one lane, then whole calls after the first of a batch — leave
/// every check with exactly aws-lc-rs's answer and are counted; repeated errors switch the
/// family off for a cool-down (no library calls, the gauge at 1), after which it is tried again.
#[test]
fn engine_errors_mid_batch_are_answered_by_aws_lc_and_cool_the_family_down() {
    use crate::crypto::cooldown::Breaker;
    use crate::runtime::batcher::tests::{check_all, current_thread};
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    let Some(engine) = engine() else { return };
    let cool_down = Duration::from_millis(300);
    engine.health[MbFamily::Rsa2048.index()].set_breaker(Breaker::new(
        3,
        Duration::from_secs(60),
        cool_down,
    ));
    let engine = Arc::new(engine);
    let backend: Arc<dyn Backend> = engine.clone();
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let key = backend
        .prepare(&rsa_material(&pair), Algorithm::RS256)
        .expect("key");
    let class = backend.batch_class(&key).expect("RSA-2048 batches");
    assert_eq!(class.answers, crate::crypto::BatchAnswers::PerLane);
    let aws_lc = AwsLcBackend::default();
    let aws_key = aws_lc
        .prepare(&rsa_material(&pair), Algorithm::RS256)
        .expect("key");
    let checks: Vec<(Vec<u8>, Vec<u8>)> = (0..24u8)
        .map(|i| {
            let message = vec![i; 60];
            let mut signature = rsa_sign(&pair, &signature::RSA_PKCS1_SHA256, &message);
            if i % 5 == 2 {
                signature[9] ^= 0x10;
            }
            (message, signature)
        })
        .collect();
    let want = |n: usize| -> Vec<Result<(), Reject>> {
        checks[..n]
            .iter()
            .map(|(m, s)| aws_lc.verify(&aws_key, m, s))
            .collect()
    };
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = current_thread();
    metrics::with_local_recorder(&recorder, || {
        // One lane of one call fails: 1 error call of 3 allowed.
        engine.fail_lanes.store(0b0000_1000, Relaxed);
        assert_eq!(check_all(&runtime, &backend, &key, &checks[..8]), want(8));
        engine.fail_lanes.store(0, Relaxed);
        assert!(!engine.cooling_down(MbFamily::Rsa2048));
        // 24 checks: three calls; the first answers, the next two fail whole.
        let calls = engine.calls.load(Relaxed);
        engine.fail_from_call.store(calls + 1, Relaxed);
        assert_eq!(check_all(&runtime, &backend, &key, &checks), want(24));
        assert_eq!(engine.calls.load(Relaxed), calls + 3);
        assert!(engine.cooling_down(MbFamily::Rsa2048), "three failed calls");
        // Cooling down: aws-lc-rs answers, the library is not called.
        engine.fail_from_call.store(usize::MAX, Relaxed);
        let calls = engine.calls.load(Relaxed);
        assert_eq!(check_all(&runtime, &backend, &key, &checks), want(24));
        assert_eq!(engine.calls.load(Relaxed), calls, "no library call");
        // After the cool-down, crypto_mb is tried again.
        std::thread::sleep(cool_down + Duration::from_millis(50));
        assert_eq!(check_all(&runtime, &backend, &key, &checks), want(24));
        assert_eq!(engine.calls.load(Relaxed), calls + 3);
        assert!(!engine.cooling_down(MbFamily::Rsa2048));
    });
    let text = handle.render();
    assert!(
        text.contains(r#"verdict_engine_errors_total{engine="crypto-mb",alg="RS256"} 17"#),
        "1 failed lane + 2 failed calls of 8 lanes, each re-run on aws-lc-rs:\n{text}"
    );
    assert!(
        text.contains(r#"verdict_engine_cooling_down{engine="crypto-mb",family="RSA-2048"} 0"#),
        "{text}"
    );
}
