//! Engines side by side: ops/s per algorithm for aws-lc-rs single verification against OpenSSL 3
//! single verification (its default provider, loaded by name into verdict's library context)
//! and Intel crypto_mb in batches of 8 (one library call) and of 1 (`Backend::verify`), in one
//! run.
//!
//! Groups `engines_<ALG>-<bits>` (RS256 on 2048/3072/4096-bit keys, PS256-2048, ES256, ES384,
//! ES512, EdDSA), each with `aws_lc_single`, `openssl_single`, `crypto_mb_batch8` and
//! `crypto_mb_batch1`. Throughput is
//! in signatures, so criterion's elem/s is ops/s for every function. Messages are 450 random
//! bytes (a JWT signing input's size); every signature is valid and checked before timing.
//!
//! crypto_mb is loaded from `$VERDICT_CRYPTO_MB_LIBRARY`, else `<repo>/.venv/lib/libcrypto_mb.so`
//! (`python3 tests/support/ensure_venv.py` installs it); when it cannot run here the bench says
//! why and measures aws-lc-rs alone. Each call has the engine's full per-call work (for RSA,
//! the library converts the moduli and builds the Montgomery constants on every call).
//!
//! Run: `cargo bench --bench engines -- --warm-up-time 1 --measurement-time 3`; the medians
//! are printed at the end as ops/s.
#![allow(clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use verdict::crypto::{
    AwsLcBackend, Backend, CryptoMbBackend, CryptoMbOptions, OpensslBackend, OpensslOptions,
    VerifyJob,
};
use verdict::jose::{Algorithm, Curve, KeyMaterial};

const LANES: usize = 8;

struct Case {
    name: String,
    alg: Algorithm,
    material: KeyMaterial,
    messages: Vec<Vec<u8>>,
    signatures: Vec<Vec<u8>>,
}

fn messages() -> Vec<Vec<u8>> {
    (0..LANES)
        .map(|i| (0..450).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect()
}

fn rsa_case(size: KeySize, bits: u32, alg: Algorithm) -> Case {
    let pair = RsaKeyPair::generate(size).expect("RSA keygen");
    let PublicKeyComponents { n, e } = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let padding: &'static dyn signature::RsaEncoding = match alg {
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        _ => &signature::RSA_PKCS1_SHA256,
    };
    let messages = messages();
    let signatures = messages
        .iter()
        .map(|m| {
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign(padding, &SystemRandom::new(), m, &mut sig)
                .expect("sign");
            sig
        })
        .collect();
    Case {
        name: format!("{alg}-{bits}"),
        alg,
        material: KeyMaterial::Rsa { n, e },
        messages,
        signatures,
    }
}

fn ec_case(alg: Algorithm) -> Case {
    let (signing, curve, len) = match alg {
        Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, Curve::P256, 32),
        Algorithm::ES384 => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, Curve::P384, 48),
        _ => (&signature::ECDSA_P521_SHA512_FIXED_SIGNING, Curve::P521, 66),
    };
    let pair = EcdsaKeyPair::generate(signing).expect("EC keygen");
    let point = pair.public_key().as_ref().to_vec();
    let messages = messages();
    let signatures = messages
        .iter()
        .map(|m| {
            pair.sign(&SystemRandom::new(), m)
                .expect("sign")
                .as_ref()
                .to_vec()
        })
        .collect();
    Case {
        // P-521's coordinates are 66 bytes.
        name: format!("{alg}-{}", if len == 66 { 521 } else { len * 8 }),
        alg,
        material: KeyMaterial::Ec {
            curve,
            x: point[1..1 + len].to_vec(),
            y: point[1 + len..].to_vec(),
        },
        messages,
        signatures,
    }
}

fn ed25519_case() -> Case {
    let pair = Ed25519KeyPair::generate().expect("Ed25519 keygen");
    let x: [u8; 32] = pair.public_key().as_ref().try_into().expect("32 bytes");
    let messages = messages();
    let signatures = messages
        .iter()
        .map(|m| pair.sign(m).as_ref().to_vec())
        .collect();
    Case {
        name: "EdDSA-255".to_owned(),
        alg: Algorithm::EdDSA,
        material: KeyMaterial::Ed25519 { x },
        messages,
        signatures,
    }
}

fn crypto_mb() -> Option<CryptoMbBackend> {
    let library = std::env::var_os("VERDICT_CRYPTO_MB_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/lib/libcrypto_mb.so")
        });
    match CryptoMbBackend::load(&CryptoMbOptions {
        library: Some(library),
        force_cpu_unable: false,
    }) {
        Ok(engine) => Some(engine),
        Err(error) => {
            eprintln!("crypto_mb not measured: {error}");
            None
        }
    }
}

fn bench_engines(c: &mut Criterion) {
    let cases = [
        rsa_case(KeySize::Rsa2048, 2048, Algorithm::RS256),
        rsa_case(KeySize::Rsa3072, 3072, Algorithm::RS256),
        rsa_case(KeySize::Rsa4096, 4096, Algorithm::RS256),
        rsa_case(KeySize::Rsa2048, 2048, Algorithm::PS256),
        ec_case(Algorithm::ES256),
        ec_case(Algorithm::ES384),
        ec_case(Algorithm::ES512),
        ed25519_case(),
    ];
    let aws_lc = AwsLcBackend::default();
    let openssl = OpensslBackend::load(&OpensslOptions {
        provider: Some("default".to_owned()),
        ..OpensslOptions::default()
    })
    .expect("OpenSSL 3 loads its default provider");
    let engine = crypto_mb();
    if let Ok(model) = std::fs::read_to_string("/proc/cpuinfo")
        && let Some(line) = model.lines().find(|l| l.starts_with("model name"))
    {
        eprintln!("CPU: {line}");
    }
    for case in &cases {
        let mut group = c.benchmark_group(format!("engines_{}", case.name));
        let key = aws_lc.prepare(&case.material, case.alg).expect("prepare");
        for (m, s) in case.messages.iter().zip(&case.signatures) {
            assert!(aws_lc.verify(&key, m, s).is_ok(), "{}", case.name);
        }
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("aws_lc_single", |b| {
            b.iter(|| {
                i = (i + 1) % LANES;
                black_box(aws_lc.verify(&key, &case.messages[i], &case.signatures[i]))
            })
        });
        let ossl_key = openssl.prepare(&case.material, case.alg).expect("prepare");
        assert_eq!(openssl.key_engine(&ossl_key), "openssl", "{}", case.name);
        for (m, s) in case.messages.iter().zip(&case.signatures) {
            assert!(openssl.verify(&ossl_key, m, s).is_ok(), "{}", case.name);
        }
        let mut i = 0;
        group.bench_function("openssl_single", |b| {
            b.iter(|| {
                i = (i + 1) % LANES;
                black_box(openssl.verify(&ossl_key, &case.messages[i], &case.signatures[i]))
            })
        });
        if let Some(engine) = &engine {
            let mb_key = engine.prepare(&case.material, case.alg).expect("prepare");
            assert_eq!(engine.key_engine(&mb_key), "crypto-mb", "{}", case.name);
            let jobs: Vec<VerifyJob<'_>> = case
                .messages
                .iter()
                .zip(&case.signatures)
                .map(|(m, s)| VerifyJob {
                    key: &mb_key,
                    message: m,
                    signature: s,
                })
                .collect();
            let mut results = Vec::with_capacity(LANES);
            engine.verify_batch(&jobs, &mut results);
            assert!(results.iter().all(Result::is_ok), "{}", case.name);
            group.throughput(Throughput::Elements(LANES as u64));
            group.bench_function("crypto_mb_batch8", |b| {
                b.iter(|| {
                    engine.verify_batch(black_box(&jobs), &mut results);
                    black_box(&results);
                })
            });
            group.throughput(Throughput::Elements(1));
            let mut i = 0;
            group.bench_function("crypto_mb_batch1", |b| {
                b.iter(|| {
                    i = (i + 1) % LANES;
                    black_box(engine.verify(&mb_key, &case.messages[i], &case.signatures[i]))
                })
            });
        }
        group.finish();
    }
}

/// Prints each function's median as ops/s, from criterion's saved estimates.
fn report(_: &mut Criterion) {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion");
    let Ok(groups) = std::fs::read_dir(&root) else {
        return;
    };
    let mut names: Vec<_> = groups
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("engines_"))
        .collect();
    names.sort();
    println!("\nmedians (ops/s per signature):");
    println!(
        "{:<20} {:>14} {:>15} {:>17} {:>17} {:>9} {:>8}",
        "group",
        "aws_lc_single",
        "openssl_single",
        "crypto_mb_batch8",
        "crypto_mb_batch1",
        "ossl/aws",
        "mb8/aws"
    );
    for name in names {
        let ops = |function: &str, per_iter: f64| -> Option<f64> {
            let path = root.join(&name).join(function).join("new/estimates.json");
            let text = std::fs::read_to_string(path).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            let ns = json.get("median")?.get("point_estimate")?.as_f64()?;
            Some(per_iter * 1e9 / ns)
        };
        let single = ops("aws_lc_single", 1.0);
        let openssl = ops("openssl_single", 1.0);
        let batch8 = ops("crypto_mb_batch8", LANES as f64);
        let batch1 = ops("crypto_mb_batch1", 1.0);
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let ratio = |over: Option<f64>| match (over, single) {
            (Some(b), Some(s)) => format!("{:.2}x", b / s),
            _ => "-".to_owned(),
        };
        println!(
            "{:<20} {:>14} {:>15} {:>17} {:>17} {:>9} {:>8}",
            name.trim_start_matches("engines_"),
            show(single),
            show(openssl),
            show(batch8),
            show(batch1),
            ratio(openssl),
            ratio(batch8)
        );
    }
}

criterion_group!(benches, bench_engines, report);
criterion_main!(benches);
