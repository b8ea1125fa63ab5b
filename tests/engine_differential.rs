//! Differential tests: crypto_mb's batch answers must equal aws-lc-rs's single answers.
//!
//! Per algorithm crypto_mb serves (RS256/384/512, PS256/384/512, ES256, ES384, ES512, EdDSA), 10,000
//! random cases checked in batches of every fill from 1 to 8 (and larger ones, which take several
//! library calls): valid signatures, a flipped bit in the signature, a changed message, another
//! key's signature (for RSA, of another modulus size too), the other RSA padding, and malformed
//! signatures (wrong length, zero, all ones or at least the modulus, out-of-range ECDSA scalars).
//! RSA keys of 2048, 3072 and 4096 bits share batches. A last test mixes every algorithm,
//! including the ones crypto_mb leaves to aws-lc-rs, in the same batches.
//!
//! Deterministic: a fixed-seed generator picks the cases (the keys and signatures are fresh
//! each run). Needs the crypto_mb library (`tests/engines`); on a CPU without AVX-512 IFMA the
//! tests say why they could not run.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is how a test fails"
)]

mod engines;
mod venv;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use std::sync::OnceLock;
use verdict::crypto::{AwsLcBackend, Backend, CryptoMbBackend, PreparedKey, VerifyJob};
use verdict::jose::{Algorithm, Curve, KeyMaterial};

const CASES: usize = 10_000;
/// Signatures made per key; cases are drawn (and altered) from this pool.
const POOL: usize = 16;

/// xorshift64*: small, deterministic, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// One signing key: its public material, the algorithm its key is prepared for, and how to
/// sign (and, for RSA, how to sign with the other padding of the same hash).
struct Signer {
    alg: Algorithm,
    material: KeyMaterial,
    sign: SignFn,
    sign_other: Option<SignFn>,
}

fn rsa_pairs() -> &'static [RsaKeyPair] {
    static PAIRS: OnceLock<Vec<RsaKeyPair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        [
            KeySize::Rsa2048,
            KeySize::Rsa2048,
            KeySize::Rsa3072,
            KeySize::Rsa4096,
        ]
        .into_iter()
        .map(|size| RsaKeyPair::generate(size).expect("RSA keygen"))
        .collect()
    })
}

fn rsa_encoding(alg: Algorithm) -> (&'static dyn signature::RsaEncoding, Algorithm) {
    match alg {
        Algorithm::RS256 => (&signature::RSA_PKCS1_SHA256, Algorithm::PS256),
        Algorithm::RS384 => (&signature::RSA_PKCS1_SHA384, Algorithm::PS384),
        Algorithm::RS512 => (&signature::RSA_PKCS1_SHA512, Algorithm::PS512),
        Algorithm::PS256 => (&signature::RSA_PSS_SHA256, Algorithm::RS256),
        Algorithm::PS384 => (&signature::RSA_PSS_SHA384, Algorithm::RS384),
        Algorithm::PS512 => (&signature::RSA_PSS_SHA512, Algorithm::RS512),
        other => panic!("{other} is not RSA"),
    }
}

fn rsa_signers(alg: Algorithm) -> Vec<Signer> {
    rsa_pairs()
        .iter()
        .map(|pair| {
            let PublicKeyComponents { n, e } =
                PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let (padding, other) = rsa_encoding(alg);
            let (other_padding, _) = rsa_encoding(other);
            let sign_with = move |padding: &'static dyn signature::RsaEncoding| -> SignFn {
                Box::new(move |m: &[u8]| {
                    let mut sig = vec![0u8; pair.public_modulus_len()];
                    pair.sign(padding, &SystemRandom::new(), m, &mut sig)
                        .expect("RSA signing");
                    sig
                })
            };
            Signer {
                alg,
                material: KeyMaterial::Rsa { n, e },
                sign: sign_with(padding),
                sign_other: Some(sign_with(other_padding)),
            }
        })
        .collect()
}

fn ec_signers(alg: Algorithm) -> Vec<Signer> {
    let (signing, curve, len) = match alg {
        Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, Curve::P256, 32),
        Algorithm::ES384 => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, Curve::P384, 48),
        Algorithm::ES512 => (&signature::ECDSA_P521_SHA512_FIXED_SIGNING, Curve::P521, 66),
        other => panic!("{other} is not ECDSA"),
    };
    (0..3)
        .map(|_| {
            let pair = EcdsaKeyPair::generate(signing).expect("EC keygen");
            let point = pair.public_key().as_ref().to_vec();
            Signer {
                alg,
                material: KeyMaterial::Ec {
                    curve,
                    x: point[1..1 + len].to_vec(),
                    y: point[1 + len..].to_vec(),
                },
                sign: Box::new(move |m: &[u8]| {
                    pair.sign(&SystemRandom::new(), m)
                        .expect("ECDSA signing")
                        .as_ref()
                        .to_vec()
                }),
                sign_other: None,
            }
        })
        .collect()
}

fn ed25519_signers() -> Vec<Signer> {
    (0..3)
        .map(|_| {
            let pair = Ed25519KeyPair::generate().expect("Ed25519 keygen");
            let x: [u8; 32] = pair.public_key().as_ref().try_into().expect("32 bytes");
            Signer {
                alg: Algorithm::EdDSA,
                material: KeyMaterial::Ed25519 { x },
                sign: Box::new(move |m: &[u8]| pair.sign(m).as_ref().to_vec()),
                sign_other: None,
            }
        })
        .collect()
}

fn hmac_signers() -> Vec<Signer> {
    (0..2u8)
        .map(|i| {
            let k = vec![i + 1; 32];
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &k);
            Signer {
                alg: Algorithm::HS256,
                material: KeyMaterial::Oct { k },
                sign: Box::new(move |m: &[u8]| aws_lc_rs::hmac::sign(&key, m).as_ref().to_vec()),
                sign_other: None,
            }
        })
        .collect()
}

/// A signed message from the pool.
struct Signed {
    key: usize,
    message: Vec<u8>,
    signature: Vec<u8>,
    other: Option<Vec<u8>>,
}

/// One case: a key index, a message and a signature.
struct Case {
    key: usize,
    message: Vec<u8>,
    signature: Vec<u8>,
}

/// Draws one case of a random kind from the pool.
fn draw(rng: &mut Rng, pool: &[Signed], keys: usize) -> Case {
    let base = &pool[rng.below(pool.len())];
    let mut case = Case {
        key: base.key,
        message: base.message.clone(),
        signature: base.signature.clone(),
    };
    match rng.below(10) {
        // Valid (four in ten).
        0..=3 => {}
        // A flipped bit in the signature.
        4 => {
            let bit = rng.below(case.signature.len() * 8);
            case.signature[bit / 8] ^= 1 << (bit % 8);
        }
        // A changed message.
        5 => {
            if case.message.is_empty() || rng.below(4) == 0 {
                case.message.push(rng.next() as u8);
            } else {
                let at = rng.below(case.message.len());
                case.message[at] ^= 1 << rng.below(8);
            }
        }
        // Another key (of the same algorithm; for RSA maybe another size).
        6 => case.key = (case.key + 1 + rng.below(keys.max(2) - 1)) % keys,
        // The other RSA padding with the same hash, else another pool signature.
        7 => {
            case.signature = match &base.other {
                Some(other) => other.clone(),
                None => pool[rng.below(pool.len())].signature.clone(),
            }
        }
        // Malformed signatures.
        _ => {
            let len = case.signature.len();
            case.signature = match rng.below(7) {
                0 => case.signature[..len - 1].to_vec(),
                1 => {
                    let mut s = case.signature.clone();
                    s.push(0);
                    s
                }
                2 => vec![0; len],
                3 => vec![0xff; len],
                4 => rng.bytes(len),
                // ECDSA: r or s zeroed; RSA: a leading zero byte lost.
                5 => {
                    let mut s = case.signature.clone();
                    for byte in s.iter_mut().take(len / 2) {
                        *byte = 0;
                    }
                    s
                }
                _ => {
                    let mut s = case.signature.clone();
                    for byte in s.iter_mut().skip(len / 2) {
                        *byte = 0xff;
                    }
                    s
                }
            };
        }
    }
    case
}

/// Runs `CASES` random cases over `signers` and compares every batch answer (and, for every
/// seventh case, crypto_mb's single answer) with aws-lc-rs's single answer.
fn differential(name: &str, signers: Vec<Signer>, engine: &CryptoMbBackend, seed: u64) {
    let reference = AwsLcBackend::default();
    let mut rng = Rng(seed);
    let engine_keys: Vec<PreparedKey> = signers
        .iter()
        .map(|s| engine.prepare(&s.material, s.alg).expect("engine prepares"))
        .collect();
    let reference_keys: Vec<PreparedKey> = signers
        .iter()
        .map(|s| {
            reference
                .prepare(&s.material, s.alg)
                .expect("aws-lc prepares")
        })
        .collect();
    let served = engine_keys
        .iter()
        .filter(|k| engine.key_engine(k) == "crypto-mb")
        .count();
    let mut pool = Vec::new();
    for (key, signer) in signers.iter().enumerate() {
        for _ in 0..POOL {
            let len = rng.below(700);
            let message = rng.bytes(len);
            pool.push(Signed {
                key,
                signature: (signer.sign)(&message),
                other: signer.sign_other.as_ref().map(|sign| sign(&message)),
                message,
            });
        }
    }
    let mut done = 0;
    let mut batches = 0usize;
    let mut fills = [0usize; 9];
    let (mut valid, mut invalid) = (0, 0);
    while done < CASES {
        // Fills 1..=8 in turn, and every ninth batch a larger one (several library calls).
        let fill = if batches % 9 == 8 {
            9 + rng.below(16)
        } else {
            batches % 9 + 1
        }
        .min(CASES - done);
        batches += 1;
        if let Some(count) = fills.get_mut(fill) {
            *count += 1;
        }
        let cases: Vec<Case> = (0..fill)
            .map(|_| draw(&mut rng, &pool, signers.len()))
            .collect();
        let jobs: Vec<VerifyJob<'_>> = cases
            .iter()
            .map(|c| VerifyJob {
                key: &engine_keys[c.key],
                message: &c.message,
                signature: &c.signature,
            })
            .collect();
        let mut results = Vec::new();
        engine.verify_batch(&jobs, &mut results);
        assert_eq!(results.len(), jobs.len(), "{name}: one result per job");
        for (i, (case, batched)) in cases.iter().zip(&results).enumerate() {
            let expected =
                reference.verify(&reference_keys[case.key], &case.message, &case.signature);
            assert_eq!(
                *batched,
                expected,
                "{name}: batch {batches} (fill {fill}) lane {i}: key {} message {} bytes \
                 signature {} bytes",
                case.key,
                case.message.len(),
                case.signature.len()
            );
            if (done + i) % 7 == 0 {
                assert_eq!(
                    engine.verify(&engine_keys[case.key], &case.message, &case.signature),
                    expected,
                    "{name}: single verification of case {}",
                    done + i
                );
            }
            if expected.is_ok() {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        done += fill;
    }
    assert!(
        fills[1..=8].iter().all(|n| *n > 0),
        "{name}: every fill 1..=8"
    );
    assert!(
        valid > CASES / 5 && invalid > CASES / 5,
        "{name}: {valid} valid, {invalid} invalid"
    );
    println!(
        "{name}: {done} cases ({valid} valid, {invalid} invalid) in {batches} batches; \
         {served} of {} keys on crypto-mb; fills {:?}",
        engine_keys.len(),
        &fills[1..]
    );
}

fn engine() -> Option<CryptoMbBackend> {
    engines::crypto_mb()
}

macro_rules! differential_tests {
    ($( $test:ident: $alg:expr => $signers:expr; )+) => {
        $(
            #[test]
            fn $test() {
                let Some(engine) = engine() else { return };
                let alg: Algorithm = $alg;
                assert_eq!(engine.engine_for(alg), "crypto-mb", "{alg} is served");
                let signers: Vec<Signer> = $signers;
                let seed = 0x9e37_79b9_7f4a_7c15 ^ (alg as u64 + 1);
                differential(alg.name(), signers, &engine, seed);
            }
        )+
    };
}

differential_tests! {
    rs256: Algorithm::RS256 => rsa_signers(Algorithm::RS256);
    rs384: Algorithm::RS384 => rsa_signers(Algorithm::RS384);
    rs512: Algorithm::RS512 => rsa_signers(Algorithm::RS512);
    ps256: Algorithm::PS256 => rsa_signers(Algorithm::PS256);
    ps384: Algorithm::PS384 => rsa_signers(Algorithm::PS384);
    ps512: Algorithm::PS512 => rsa_signers(Algorithm::PS512);
    es256: Algorithm::ES256 => ec_signers(Algorithm::ES256);
    es384: Algorithm::ES384 => ec_signers(Algorithm::ES384);
    es512: Algorithm::ES512 => ec_signers(Algorithm::ES512);
    eddsa: Algorithm::EdDSA => ed25519_signers();
}

/// Every algorithm in the same batches, the ones crypto_mb serves and the ones it leaves to
/// aws-lc-rs (HS256): each answer still equals aws-lc-rs's.
#[test]
fn mixed_algorithms_in_one_batch() {
    let Some(engine) = engine() else { return };
    let mut signers = rsa_signers(Algorithm::RS256);
    signers.extend(rsa_signers(Algorithm::PS384));
    signers.extend(ec_signers(Algorithm::ES256));
    signers.extend(ec_signers(Algorithm::ES384));
    signers.extend(ec_signers(Algorithm::ES512));
    signers.extend(ed25519_signers());
    signers.extend(hmac_signers());
    differential("mixed", signers, &engine, 0x5eed);
}
