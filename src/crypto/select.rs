//! Choosing the engine per algorithm at start (`[crypto] backend`), with the probes' and the
//! self-benchmark's results for the log line and the `verdict_engine_selected` gauge.

use super::crypto_mb::{Calibration, CryptoMbBackend, CryptoMbOptions, MbFamily};
use super::openssl::{OpensslBackend, OpensslCalibration, OpensslOptions};
use super::{AwsLcBackend, Backend};
use crate::jose::Algorithm;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What the operator asked for (`[crypto] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// Per algorithm, the fastest engine that loads and passes its probe: crypto_mb for batches
    /// from its measured break-even; for single verifications, OpenSSL (when configured) where
    /// it measured faster than aws-lc-rs; aws-lc-rs otherwise.
    Auto,
    /// aws-lc-rs only.
    AwsLc,
    /// crypto_mb for every key it serves, even alone.
    CryptoMb,
    /// OpenSSL for every algorithm it passed its probe for.
    Openssl,
}

/// How long `auto`'s self-benchmark may take, in all (shared between crypto_mb and OpenSSL
/// when both are tried).
pub const AUTO_BENCHMARK_BUDGET: Duration = Duration::from_millis(240);

/// The smallest batch `auto` sends to crypto_mb when the self-benchmark is skipped
/// (`[crypto] auto_benchmark = false`): the break-even measured on AVX-512 IFMA hosts (one call
/// of eight costs about as much as three aws-lc-rs verifications; see BENCHMARKS.md, "Engines").
pub const UNMEASURED_MIN_BATCH: usize = 3;

/// The engine chosen for one algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmEngine {
    /// The algorithm.
    pub alg: Algorithm,
    /// `"aws-lc-rs"`, `"crypto-mb"` or `"openssl"`.
    pub engine: &'static str,
    /// For crypto-mb: which key sizes, from what batch size; for openssl: what runs it
    /// (`provider default`, `engine qatengine`); empty for aws-lc-rs.
    pub detail: String,
}

/// The result of [`select`].
pub struct EngineSelection {
    /// The backend every key is prepared and verified with.
    pub backend: Arc<dyn Backend>,
    /// Per algorithm (every [`Algorithm::ALL`]), the engine that verifies it.
    pub per_algorithm: Vec<AlgorithmEngine>,
    /// Why an engine is not used (or not for everything): load failures, probe failures.
    pub notes: Vec<String>,
    /// crypto_mb: where it was loaded from, or why it could not be (`None`: not tried).
    pub crypto_mb: Option<Result<String, String>>,
    /// crypto_mb's probe result per family (empty when it did not load).
    pub probes: Vec<(MbFamily, Result<(), String>)>,
    /// What `auto`'s self-benchmark measured for crypto_mb (empty for the other choices).
    pub calibrations: Vec<Calibration>,
    /// OpenSSL: what was loaded, or why it could not be (`None`: not tried).
    pub openssl: Option<Result<String, String>>,
    /// OpenSSL's probe result per algorithm: what ran it, or why it failed.
    pub openssl_probes: Vec<(Algorithm, Result<String, String>)>,
    /// What `auto` measured for OpenSSL against aws-lc-rs (single verifications).
    pub openssl_calibrations: Vec<OpensslCalibration>,
}

impl EngineSelection {
    /// One line: `RS256=crypto-mb(...) ES256=... HS256=aws-lc-rs ...`.
    pub fn summary(&self) -> String {
        let mut line = String::new();
        for (i, choice) in self.per_algorithm.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let _ = write!(line, "{}={}", choice.alg, choice.engine);
            if !choice.detail.is_empty() {
                let _ = write!(line, "({})", choice.detail);
            }
        }
        line
    }
}

/// What OpenSSL serves, per algorithm, as `AlgorithmEngine`s (aws-lc-rs for the rest).
fn openssl_or_aws_lc(openssl: Option<&OpensslBackend>, alg: Algorithm) -> AlgorithmEngine {
    let by = openssl.filter(|o| o.serves(alg)).and_then(|o| {
        o.probes()
            .iter()
            .find(|(a, _)| *a == alg)
            .and_then(|(_, r)| r.as_ref().ok().cloned())
    });
    match by {
        Some(detail) => AlgorithmEngine {
            alg,
            engine: "openssl",
            detail,
        },
        None => AlgorithmEngine {
            alg,
            engine: "aws-lc-rs",
            detail: String::new(),
        },
    }
}

/// Loads OpenSSL for `choice` when it may be used; notes say what stays on aws-lc-rs and why.
fn load_openssl(
    choice: EngineChoice,
    options: &OpensslOptions,
    auto_benchmark: bool,
    budget: Duration,
    selection: &mut EngineSelection,
) -> Option<OpensslBackend> {
    let wanted =
        choice == EngineChoice::Openssl || (choice == EngineChoice::Auto && options.configured());
    if !wanted {
        return None;
    }
    let mut engine = match OpensslBackend::load(options) {
        Ok(engine) => engine,
        Err(error) => {
            selection.notes.push(error.to_string());
            selection.openssl = Some(Err(error.to_string()));
            return None;
        }
    };
    selection.openssl = Some(Ok(engine.description().to_owned()));
    selection.openssl_probes = engine.probes().to_vec();
    for (alg, result) in engine.probes() {
        if let Err(why) = result {
            selection
                .notes
                .push(format!("openssl {alg} stays on aws-lc-rs: {why}"));
        }
    }
    if choice == EngineChoice::Auto {
        if auto_benchmark {
            selection.openssl_calibrations = engine.calibrate(budget);
            for m in selection.openssl_calibrations.iter().filter(|m| !m.chosen) {
                selection.notes.push(format!(
                    "openssl {} is not faster than aws-lc-rs ({:.0} vs {:.0} ops/s): not used",
                    m.alg, m.openssl_ops_per_s, m.aws_lc_ops_per_s
                ));
            }
        } else {
            for alg in super::openssl::ALGORITHMS {
                engine.disable(alg);
            }
            selection.notes.push(
                "auto_benchmark = false: openssl is not measured, so not used (backend = \
                 \"openssl\" uses it unmeasured)"
                    .to_owned(),
            );
        }
    }
    Some(engine)
}

/// Builds the backend for `choice`. Never fails: whatever crypto_mb or OpenSSL cannot do is
/// left to aws-lc-rs, and `notes` says why.
///
/// With `auto`, OpenSSL is tried only when something OpenSSL-specific is configured
/// (`openssl`); when crypto_mb also runs, crypto_mb keeps its batches as measured, and OpenSSL
/// (where faster) or aws-lc-rs answers single verifications and groups under the break-even.
pub fn select(
    choice: EngineChoice,
    crypto_mb_library: Option<&Path>,
    openssl: &OpensslOptions,
    auto_benchmark: bool,
) -> EngineSelection {
    let mut selection = EngineSelection {
        backend: Arc::new(AwsLcBackend::default()),
        per_algorithm: Algorithm::ALL
            .iter()
            .map(|alg| openssl_or_aws_lc(None, *alg))
            .collect(),
        notes: Vec::new(),
        crypto_mb: None,
        probes: Vec::new(),
        calibrations: Vec::new(),
        openssl: None,
        openssl_probes: Vec::new(),
        openssl_calibrations: Vec::new(),
    };
    if choice == EngineChoice::AwsLc {
        return selection;
    }
    let both = choice == EngineChoice::Auto && openssl.configured();
    let budget = if both {
        AUTO_BENCHMARK_BUDGET / 2
    } else {
        AUTO_BENCHMARK_BUDGET
    };
    let ossl = load_openssl(choice, openssl, auto_benchmark, budget, &mut selection)
        .filter(|engine| super::openssl::ALGORITHMS.iter().any(|a| engine.serves(*a)))
        .map(Arc::new);
    let openssl_only = |selection: &mut EngineSelection, ossl: Option<Arc<OpensslBackend>>| {
        selection.per_algorithm = Algorithm::ALL
            .iter()
            .map(|alg| openssl_or_aws_lc(ossl.as_deref(), *alg))
            .collect();
        if let Some(engine) = ossl {
            selection.backend = engine;
        }
    };
    if choice == EngineChoice::Openssl {
        openssl_only(&mut selection, ossl);
        return selection;
    }
    let options = CryptoMbOptions {
        library: crypto_mb_library.map(Path::to_path_buf),
        force_cpu_unable: false,
    };
    let mut engine = match CryptoMbBackend::load(&options) {
        Ok(engine) => engine,
        Err(error) => {
            selection.notes.push(error.to_string());
            selection.crypto_mb = Some(Err(error.to_string()));
            openssl_only(&mut selection, ossl);
            return selection;
        }
    };
    if let Some(fallback) = &ossl {
        engine.set_fallback(Arc::clone(fallback) as Arc<dyn Backend>);
    }
    selection
        .notes
        .extend(engine.probes().iter().filter_map(|(family, result)| {
            result
                .as_ref()
                .err()
                .map(|why| format!("crypto_mb {family} stays on aws-lc-rs: {why}"))
        }));
    if choice == EngineChoice::Auto && !auto_benchmark {
        for family in MbFamily::ALL {
            if engine.serves(family) {
                engine.set_min_batch(family, UNMEASURED_MIN_BATCH);
            }
        }
        selection.notes.push(format!(
            "auto_benchmark = false: crypto_mb takes batches of {UNMEASURED_MIN_BATCH}+ unmeasured"
        ));
    } else if choice == EngineChoice::Auto {
        selection.calibrations = engine.calibrate(budget);
        for measured in &selection.calibrations {
            if measured.min_batch > super::crypto_mb::LANES {
                selection.notes.push(format!(
                    "crypto_mb {} is slower than aws-lc-rs even in full batches \
                     ({:.0} vs {:.0} ops/s): not used",
                    measured.family, measured.crypto_mb_ops_per_s, measured.aws_lc_ops_per_s
                ));
                engine.disable(measured.family);
            }
        }
    }
    selection.per_algorithm = Algorithm::ALL
        .iter()
        .map(|alg| {
            let below = openssl_or_aws_lc(ossl.as_deref(), *alg);
            let served: Vec<MbFamily> = MbFamily::for_algorithm(*alg)
                .iter()
                .copied()
                .filter(|f| engine.serves(*f))
                .collect();
            if served.is_empty() {
                return below;
            }
            let mut detail = served
                .iter()
                .map(|family| {
                    let from = engine.min_batch(*family);
                    let batches = if from <= 1 {
                        "every batch".to_owned()
                    } else {
                        format!("batches of {from}+")
                    };
                    if family.rsa_bits().is_some() {
                        format!("{family} e=65537: {batches}")
                    } else {
                        batches
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            if below.engine == "openssl" {
                detail.push_str("; otherwise openssl");
            }
            AlgorithmEngine {
                alg: *alg,
                engine: "crypto-mb",
                detail,
            }
        })
        .collect();
    selection.crypto_mb = Some(Ok(engine.library_path().to_owned()));
    selection.probes = engine.probes().to_vec();
    selection.backend = Arc::new(engine);
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_lc_choice_never_loads_crypto_mb() {
        let selection = select(
            EngineChoice::AwsLc,
            Some(Path::new("/nonexistent/lib.so")),
            &OpensslOptions {
                provider: Some("no-such-provider".to_owned()),
                ..OpensslOptions::default()
            },
            true,
        );
        assert_eq!(selection.backend.name(), "aws-lc-rs");
        assert!(selection.notes.is_empty());
        assert!(
            selection
                .per_algorithm
                .iter()
                .all(|a| a.engine == "aws-lc-rs")
        );
        assert!(selection.summary().starts_with("HS256=aws-lc-rs "));
    }

    #[test]
    fn a_missing_library_falls_back_with_a_reason() {
        for choice in [EngineChoice::Auto, EngineChoice::CryptoMb] {
            let selection = select(
                choice,
                Some(Path::new("/nonexistent/libcrypto_mb.so")),
                &OpensslOptions::default(),
                true,
            );
            assert_eq!(selection.backend.name(), "aws-lc-rs");
            assert_eq!(selection.notes.len(), 1, "{:?}", selection.notes);
            assert!(
                selection.notes[0].contains("/nonexistent/"),
                "{:?}",
                selection.notes
            );
        }
    }

    /// `auto` between two engines of different speed: crypto_mb takes a batch only from the fill
    /// where one call beats that many aws-lc-rs verifications, and nothing when it is slower.
    #[test]
    fn auto_picks_the_faster_engine_at_each_batch_size() {
        use super::super::crypto_mb::{LANES, break_even_fill};
        let single = 10e-6;
        // One call costs 3.5 single verifications: crypto_mb from 4 jobs on.
        assert_eq!(break_even_fill(single, 35e-6), 4);
        // Much faster (a call as cheap as one verification and a bit): from 2.
        assert_eq!(break_even_fill(single, 11e-6), 2);
        // Cheaper than one verification: every batch, even alone.
        assert_eq!(break_even_fill(single, 9e-6), 1);
        // Slower even full (a call costs more than 8 verifications): never.
        assert_eq!(break_even_fill(single, 81e-6), LANES + 1);
        // Exactly even at a fill is not a win: the next fill.
        assert_eq!(break_even_fill(single, 40e-6), 5);
    }

    fn provider(name: &str) -> OpensslOptions {
        OpensslOptions {
            provider: Some(name.to_owned()),
            ..OpensslOptions::default()
        }
    }

    #[test]
    fn openssl_choice_serves_every_probed_algorithm() {
        let selection = select(EngineChoice::Openssl, None, &provider("default"), true);
        assert_eq!(selection.backend.name(), "openssl");
        assert!(selection.notes.is_empty(), "{:?}", selection.notes);
        for chosen in &selection.per_algorithm {
            let want = if chosen.alg.is_symmetric() {
                "aws-lc-rs"
            } else {
                "openssl"
            };
            assert_eq!(chosen.engine, want, "{chosen:?}");
        }
        assert!(
            selection
                .summary()
                .contains("RS256=openssl(provider default)"),
            "{}",
            selection.summary()
        );
    }

    /// A provider that does not exist, or one that lacks every signature algorithm (Debian's
    /// `legacy`): everything stays on aws-lc-rs, and the notes say why.
    #[test]
    fn openssl_falls_back_with_a_reason() {
        let missing = select(
            EngineChoice::Openssl,
            None,
            &provider("no-such-provider"),
            true,
        );
        assert_eq!(missing.backend.name(), "aws-lc-rs");
        assert!(matches!(&missing.openssl, Some(Err(why)) if why.contains("no-such-provider")));
        assert_eq!(missing.notes.len(), 1, "{:?}", missing.notes);
        let legacy = select(EngineChoice::Openssl, None, &provider("legacy"), true);
        assert_eq!(legacy.backend.name(), "aws-lc-rs");
        assert!(legacy.per_algorithm.iter().all(|a| a.engine == "aws-lc-rs"));
        assert_eq!(legacy.notes.len(), super::super::openssl::ALGORITHMS.len());
        assert!(
            legacy.notes[0].contains("stays on aws-lc-rs: the legacy provider has no RS256"),
            "{:?}",
            legacy.notes
        );
    }

    /// `auto` with OpenSSL configured (and no crypto_mb here): each algorithm goes to whichever
    /// of OpenSSL and aws-lc-rs measured faster.
    #[test]
    fn auto_races_openssl_against_aws_lc() {
        let selection = select(
            EngineChoice::Auto,
            Some(Path::new("/nonexistent/libcrypto_mb.so")),
            &provider("default"),
            true,
        );
        assert_eq!(selection.openssl_calibrations.len(), 11);
        for measured in &selection.openssl_calibrations {
            let chosen = selection
                .per_algorithm
                .iter()
                .find(|a| a.alg == measured.alg)
                .expect("every algorithm");
            let want = if measured.chosen {
                "openssl"
            } else {
                "aws-lc-rs"
            };
            assert_eq!(chosen.engine, want, "{measured:?}");
        }
        let unmeasured = select(
            EngineChoice::Auto,
            Some(Path::new("/nonexistent/libcrypto_mb.so")),
            &provider("default"),
            false,
        );
        assert!(
            unmeasured
                .per_algorithm
                .iter()
                .all(|a| a.engine == "aws-lc-rs")
        );
    }
}
