//! The start-up checks of the crypto_mb engine: a known-answer probe per family (through the
//! library itself, never the fallback) and `auto`'s self-benchmark against aws-lc-rs.

use super::{CryptoMbBackend, LANES, LaneAnswer, MbFamily};
use crate::crypto::probe_vectors;
use crate::crypto::{Backend, PreparedKey, VerifyJob};
use crate::jose::{Algorithm, Curve, KeyMaterial, b64};

/// What [`CryptoMbBackend::calibrate`] measured for one family.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The family.
    pub family: MbFamily,
    /// aws-lc-rs, one verification at a time: operations per second.
    pub aws_lc_ops_per_s: f64,
    /// crypto_mb, full calls of eight: operations per second.
    pub crypto_mb_ops_per_s: f64,
    /// The smallest batch a library call now takes (`LANES + 1` = none: aws-lc-rs is faster).
    pub min_batch: usize,
}

/// The smallest fill at which one library call (`per_call` seconds, whatever its fill) costs
/// less than verifying that many jobs one by one with aws-lc-rs (`single` seconds each);
/// `LANES + 1` when not even a full call does.
pub fn break_even_fill(single: f64, per_call: f64) -> usize {
    (1..=LANES)
        .find(|fill| per_call < single * *fill as f64)
        .unwrap_or(LANES + 1)
}

impl CryptoMbBackend {
    /// Measures, per served family, aws-lc-rs's single verification against one crypto_mb
    /// call of eight, for about `budget` in all, and sets each family's smallest batch to the
    /// fill from which a call costs less than verifying its jobs one by one (a call costs
    /// about the same whatever its fill). Used by `backend = "auto"`.
    pub fn calibrate(&mut self, budget: std::time::Duration) -> Vec<Calibration> {
        let served: Vec<MbFamily> = MbFamily::ALL
            .into_iter()
            .filter(|f| self.serves(*f))
            .collect();
        let slice = budget / (2 * served.len().max(1) as u32);
        let mut out = Vec::new();
        for family in served {
            let Some((key, signature)) = self.probe_key(family) else {
                continue;
            };
            let message = probe_vectors::MESSAGE;
            let job = VerifyJob {
                key: &key,
                message,
                signature: &signature,
            };
            let time_per = |mut run: Box<dyn FnMut() + '_>, ops: usize| {
                run();
                let start = std::time::Instant::now();
                let mut rounds = 0u32;
                while start.elapsed() < slice || rounds < 2 {
                    run();
                    rounds += 1;
                }
                start.elapsed().as_secs_f64() / (f64::from(rounds) * ops as f64)
            };
            let single = time_per(
                Box::new(|| {
                    let _ = self.fallback.verify(job.key, job.message, job.signature);
                }),
                1,
            );
            let jobs = [job; LANES];
            let mut answers = Vec::new();
            let per_op = time_per(
                Box::new(|| self.run_chunk(family, &jobs, &mut answers)),
                LANES,
            );
            let min_batch = break_even_fill(single, per_op * LANES as f64);
            self.set_min_batch(family, min_batch);
            out.push(Calibration {
                family,
                aws_lc_ops_per_s: 1.0 / single,
                crypto_mb_ops_per_s: 1.0 / per_op,
                min_batch,
            });
        }
        out
    }

    /// The probe key of `family`, prepared by this engine, and its valid signature.
    fn probe_key(&self, family: MbFamily) -> Option<(PreparedKey, Vec<u8>)> {
        let decode = |s: &str| b64::decode(s.as_bytes());
        let (material, alg, signature) = match family {
            MbFamily::Rsa2048 | MbFamily::Rsa3072 | MbFamily::Rsa4096 => {
                let bits = family.rsa_bits()?;
                let vector = probe_vectors::RSA.iter().find(|v| v.bits == bits)?;
                let material = KeyMaterial::Rsa {
                    n: decode(vector.n)?,
                    e: vec![1, 0, 1],
                };
                (material, Algorithm::RS256, decode(vector.rs256)?)
            }
            MbFamily::P256 | MbFamily::P384 | MbFamily::P521 => {
                let (vector, curve, alg) = match family {
                    MbFamily::P256 => (&probe_vectors::P256, Curve::P256, Algorithm::ES256),
                    MbFamily::P384 => (&probe_vectors::P384, Curve::P384, Algorithm::ES384),
                    _ => (&probe_vectors::P521, Curve::P521, Algorithm::ES512),
                };
                let material = KeyMaterial::Ec {
                    curve,
                    x: decode(vector.x)?,
                    y: decode(vector.y)?,
                };
                (material, alg, decode(vector.sig)?)
            }
            MbFamily::Ed25519 => {
                let x: [u8; 32] = decode(probe_vectors::ED25519_KEY)?.try_into().ok()?;
                (
                    KeyMaterial::Ed25519 { x },
                    Algorithm::EdDSA,
                    decode(probe_vectors::ED25519_SIG)?,
                )
            }
        };
        let key = self.prepare(&material, alg).ok()?;
        key.mb().is_some().then_some((key, signature))
    }

    /// Known-answer check of one family through the library itself (never the fallback): the
    /// probe signature must verify, and the same signature with one bit flipped, and the
    /// probe signature over another message, must not.
    pub(super) fn probe(&self, family: MbFamily) -> Result<(), String> {
        if let Some(bits) = family.rsa_bits() {
            // PS256 too: the same public operation, verdict's other encoding check.
            let vector = probe_vectors::RSA
                .iter()
                .find(|v| v.bits == bits)
                .ok_or("no probe vector")?;
            let decode = |s: &str| b64::decode(s.as_bytes()).ok_or("bad probe vector");
            let material = KeyMaterial::Rsa {
                n: decode(vector.n)?,
                e: vec![1, 0, 1],
            };
            let key = self
                .prepare(&material, Algorithm::PS256)
                .map_err(|e| format!("PS256 probe key: {e}"))?;
            self.probe_one(family, &key, &decode(vector.ps256)?)?;
        }
        let (key, signature) = self
            .probe_key(family)
            .ok_or_else(|| format!("{family} probe key has no crypto_mb form"))?;
        self.probe_one(family, &key, &signature)
    }

    fn probe_one(
        &self,
        family: MbFamily,
        key: &PreparedKey,
        signature: &[u8],
    ) -> Result<(), String> {
        let alg = key.algorithm();
        if key.mb().is_none() {
            return Err(format!("{alg} probe key has no crypto_mb form"));
        }
        let mut flipped = signature.to_vec();
        // The byte after the middle: inside ECDSA's `s` or Ed25519's `S` but never its top
        // byte, so the flipped value stays in range (P-521's `s` starts with 0x00 or 0x01).
        if let Some(byte) = flipped.get_mut(signature.len() / 2 + 1) {
            *byte ^= 0x04;
        }
        let message = probe_vectors::MESSAGE;
        let jobs = [
            VerifyJob {
                key,
                message,
                signature,
            },
            VerifyJob {
                key,
                message,
                signature: &flipped,
            },
            VerifyJob {
                key,
                message: b"another message",
                signature,
            },
        ];
        let mut answers = Vec::new();
        self.run_chunk(family, &jobs, &mut answers);
        let expected = [LaneAnswer::Verified, LaneAnswer::Bad, LaneAnswer::Bad];
        if answers.as_slice() == expected {
            Ok(())
        } else {
            Err(format!(
                "{alg} known-answer probe: expected {expected:?}, the library gave {answers:?}"
            ))
        }
    }
}
