//! The start-up checks of the OpenSSL engine: a known-answer probe per algorithm (through
//! OpenSSL itself, never the fallback) and `auto`'s single-verification race against aws-lc-rs.

use super::keys::{Answer, OsslKey, Route};
use super::{ALGORITHMS, OpensslBackend, index};
use crate::crypto::{Backend, PreparedKey, probe_vectors};
use crate::jose::{Algorithm, Curve, KeyMaterial, b64};
use std::time::{Duration, Instant};

/// What [`OpensslBackend::calibrate`] measured for one algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct OpensslCalibration {
    /// The algorithm.
    pub alg: Algorithm,
    /// aws-lc-rs, one verification at a time: operations per second.
    pub aws_lc_ops_per_s: f64,
    /// OpenSSL, one verification at a time: operations per second.
    pub openssl_ops_per_s: f64,
    /// Whether OpenSSL is kept for it (it was faster).
    pub chosen: bool,
}

/// The probe key and valid signature of `alg`.
fn probe_vector(alg: Algorithm) -> Option<(KeyMaterial, Vec<u8>)> {
    let decode = |s: &str| b64::decode(s.as_bytes());
    let rsa = |n: &str| -> Option<KeyMaterial> {
        Some(KeyMaterial::Rsa {
            n: decode(n)?,
            e: vec![1, 0, 1],
        })
    };
    let ec = |vector: &probe_vectors::EcProbe, curve| -> Option<(KeyMaterial, Vec<u8>)> {
        Some((
            KeyMaterial::Ec {
                curve,
                x: decode(vector.x)?,
                y: decode(vector.y)?,
            },
            decode(vector.sig)?,
        ))
    };
    let first = probe_vectors::RSA.first()?;
    match alg {
        Algorithm::RS256 => Some((rsa(first.n)?, decode(first.rs256)?)),
        Algorithm::PS256 => Some((rsa(first.n)?, decode(first.ps256)?)),
        Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS384 | Algorithm::PS512 => {
            let (_, sig) = probe_vectors::RSA_2048_B_SIGS
                .iter()
                .find(|(a, _)| *a == alg)?;
            Some((rsa(probe_vectors::RSA_2048_B_N)?, decode(sig)?))
        }
        Algorithm::ES256 => ec(&probe_vectors::P256, Curve::P256),
        Algorithm::ES384 => ec(&probe_vectors::P384, Curve::P384),
        Algorithm::ES512 => ec(&probe_vectors::P521, Curve::P521),
        Algorithm::ES256K => ec(&probe_vectors::SECP256K1, Curve::Secp256k1),
        Algorithm::EdDSA => Some((
            KeyMaterial::Ed25519 {
                x: decode(probe_vectors::ED25519_KEY)?.try_into().ok()?,
            },
            decode(probe_vectors::ED25519_SIG)?,
        )),
        _ => None,
    }
}

impl OpensslBackend {
    /// Probes every algorithm and enables those that pass.
    pub(super) fn probe_all(&mut self, engine_id: Option<&str>) {
        let mut probes = Vec::new();
        for alg in ALGORITHMS {
            let route = self.route_for(alg);
            let result = self.probe(alg, route).map(|provider| match route {
                Route::Engine => format!("engine {}", engine_id.unwrap_or("?")),
                Route::Provider => format!("provider {provider}"),
            });
            if result.is_ok()
                && let Some(slot) = index(alg).and_then(|i| self.routes.get_mut(i))
            {
                *slot = Some(route);
            }
            probes.push((alg, result));
        }
        self.probes = probes;
    }

    /// Known-answer check of `alg` through OpenSSL: the probe signature must verify, and the
    /// same signature with one bit flipped, and the probe signature over another message, must
    /// not. On the provider path, the provider that ran it must be the one named (when one is).
    /// `Ok(the provider's name)`.
    fn probe(&self, alg: Algorithm, route: Route) -> Result<String, String> {
        let (material, signature) = probe_vector(alg).ok_or("no probe vector")?;
        let key = OsslKey::new(&self.context, &material, alg, route)
            .map_err(|why| format!("OpenSSL cannot make the {alg} probe key: {why}"))?;
        let mut flipped = signature.clone();
        if let Some(byte) = flipped.get_mut(signature.len() / 2) {
            *byte ^= 0x04;
        }
        let message = probe_vectors::MESSAGE;
        let (valid, provider) = key.verify_named(message, &signature);
        let answers = [
            valid,
            key.verify(message, &flipped),
            key.verify(b"another message", &signature),
        ];
        let expected = [Answer::Verified, Answer::Bad, Answer::Bad];
        if answers != expected {
            return Err(format!(
                "{alg} known-answer probe: expected {expected:?}, OpenSSL gave {answers:?}"
            ));
        }
        let provider = provider.unwrap_or_else(|| "(legacy path)".to_owned());
        if route == Route::Provider
            && let Some(required) = &self.context.required_provider
            && *required != provider
        {
            return Err(format!(
                "the {required} provider has no {alg} signature (OpenSSL would run it on \
                 {provider})"
            ));
        }
        Ok(provider)
    }

    /// The probe key of `alg` prepared by this engine, and its valid signature.
    fn probe_key(&self, alg: Algorithm) -> Option<(PreparedKey, Vec<u8>)> {
        let (material, signature) = probe_vector(alg)?;
        let key = self.prepare(&material, alg).ok()?;
        key.openssl().is_some().then_some((key, signature))
    }

    /// Measures, per served algorithm, aws-lc-rs's single verification against OpenSSL's, for
    /// about `budget` in all, and leaves each algorithm where OpenSSL is not faster to aws-lc-rs.
    /// Used by `backend = "auto"`.
    pub fn calibrate(&mut self, budget: Duration) -> Vec<OpensslCalibration> {
        let served: Vec<Algorithm> = ALGORITHMS.into_iter().filter(|a| self.serves(*a)).collect();
        let slice = budget / (2 * served.len().max(1) as u32);
        let mut out = Vec::new();
        for alg in served {
            let Some((key, signature)) = self.probe_key(alg) else {
                continue;
            };
            let message = probe_vectors::MESSAGE;
            let time_per = |run: &dyn Fn()| {
                run();
                let start = Instant::now();
                let mut rounds = 0u32;
                while start.elapsed() < slice || rounds < 2 {
                    run();
                    rounds += 1;
                }
                start.elapsed().as_secs_f64() / f64::from(rounds)
            };
            let aws_lc = time_per(&|| {
                let _ = self.fallback.verify(&key, message, &signature);
            });
            let openssl = time_per(&|| {
                let _ = self.verify(&key, message, &signature);
            });
            let chosen = openssl < aws_lc;
            out.push(OpensslCalibration {
                alg,
                aws_lc_ops_per_s: 1.0 / aws_lc,
                openssl_ops_per_s: 1.0 / openssl,
                chosen,
            });
        }
        for measured in &out {
            if !measured.chosen {
                self.disable(measured.alg);
            }
        }
        out
    }
}
