//! Choosing the engine per algorithm at start (`[crypto] backend`), with the probes' and the
//! self-benchmark's results for the log line and the `verdict_engine_selected` gauge.

use super::crypto_mb::{Calibration, CryptoMbBackend, CryptoMbOptions, MbFamily};
use super::{AwsLcBackend, Backend};
use crate::jose::Algorithm;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What the operator asked for (`[crypto] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// crypto_mb where it runs and is faster at the batch size, else aws-lc-rs.
    Auto,
    /// aws-lc-rs only.
    AwsLc,
    /// crypto_mb for every key it serves, even alone.
    CryptoMb,
}

/// How long `auto`'s self-benchmark may take, in all.
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
    /// `"aws-lc-rs"` or `"crypto-mb"`.
    pub engine: &'static str,
    /// For crypto-mb: which key sizes, from what batch size (empty for aws-lc-rs).
    pub detail: String,
}

/// The result of [`select`].
pub struct EngineSelection {
    /// The backend every key is prepared and verified with.
    pub backend: Arc<dyn Backend>,
    /// Per algorithm (every [`Algorithm::ALL`]), the engine that verifies it.
    pub per_algorithm: Vec<AlgorithmEngine>,
    /// Why crypto_mb is not used (or not for everything): load failures, probe failures.
    pub notes: Vec<String>,
    /// crypto_mb: where it was loaded from, or why it could not be (`None`: not tried, for
    /// `"aws-lc"`).
    pub crypto_mb: Option<Result<String, String>>,
    /// crypto_mb's probe result per family (empty when it did not load).
    pub probes: Vec<(MbFamily, Result<(), String>)>,
    /// What `auto`'s self-benchmark measured (empty for the other choices).
    pub calibrations: Vec<Calibration>,
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

/// Builds the backend for `choice`. Never fails: whatever crypto_mb cannot do is left to
/// aws-lc-rs, and `notes` says why.
pub fn select(
    choice: EngineChoice,
    crypto_mb_library: Option<&Path>,
    auto_benchmark: bool,
) -> EngineSelection {
    let aws_lc_only = |notes: Vec<String>, crypto_mb| EngineSelection {
        backend: Arc::new(AwsLcBackend::default()),
        per_algorithm: Algorithm::ALL
            .iter()
            .map(|alg| AlgorithmEngine {
                alg: *alg,
                engine: "aws-lc-rs",
                detail: String::new(),
            })
            .collect(),
        notes,
        crypto_mb,
        probes: Vec::new(),
        calibrations: Vec::new(),
    };
    if choice == EngineChoice::AwsLc {
        return aws_lc_only(Vec::new(), None);
    }
    let options = CryptoMbOptions {
        library: crypto_mb_library.map(Path::to_path_buf),
        force_cpu_unable: false,
    };
    let mut engine = match CryptoMbBackend::load(&options) {
        Ok(engine) => engine,
        Err(error) => return aws_lc_only(vec![error.to_string()], Some(Err(error.to_string()))),
    };
    let mut notes: Vec<String> = engine
        .probes()
        .iter()
        .filter_map(|(family, result)| {
            result
                .as_ref()
                .err()
                .map(|why| format!("crypto_mb {family} stays on aws-lc-rs: {why}"))
        })
        .collect();
    let mut calibrations = Vec::new();
    if choice == EngineChoice::Auto && !auto_benchmark {
        for family in MbFamily::ALL {
            if engine.serves(family) {
                engine.set_min_batch(family, UNMEASURED_MIN_BATCH);
            }
        }
        notes.push(format!(
            "auto_benchmark = false: crypto_mb takes batches of {UNMEASURED_MIN_BATCH}+ unmeasured"
        ));
    } else if choice == EngineChoice::Auto {
        calibrations = engine.calibrate(AUTO_BENCHMARK_BUDGET);
        for measured in &calibrations {
            if measured.min_batch > super::crypto_mb::LANES {
                notes.push(format!(
                    "crypto_mb {} is slower than aws-lc-rs even in full batches \
                     ({:.0} vs {:.0} ops/s): not used",
                    measured.family, measured.crypto_mb_ops_per_s, measured.aws_lc_ops_per_s
                ));
                engine.disable(measured.family);
            }
        }
    }
    let per_algorithm = Algorithm::ALL
        .iter()
        .map(|alg| {
            let served: Vec<MbFamily> = MbFamily::for_algorithm(*alg)
                .iter()
                .copied()
                .filter(|f| engine.serves(*f))
                .collect();
            if served.is_empty() {
                return AlgorithmEngine {
                    alg: *alg,
                    engine: "aws-lc-rs",
                    detail: String::new(),
                };
            }
            let detail = served
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
            AlgorithmEngine {
                alg: *alg,
                engine: "crypto-mb",
                detail,
            }
        })
        .collect();
    EngineSelection {
        crypto_mb: Some(Ok(engine.library_path().to_owned())),
        probes: engine.probes().to_vec(),
        backend: Arc::new(engine),
        per_algorithm,
        notes,
        calibrations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_lc_choice_never_loads_crypto_mb() {
        let selection = select(
            EngineChoice::AwsLc,
            Some(Path::new("/nonexistent/lib.so")),
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
}
