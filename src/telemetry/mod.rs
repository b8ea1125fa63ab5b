//! Telemetry: metrics through the `metrics` facade, exported in the Prometheus text format;
//! per-worker check latency in hdrhistograms; logs; and the admin HTTP endpoints that expose them.
//!
//! - [`Telemetry::install`] installs the process-wide recorder once and hands out the shared
//!   [`Telemetry`]; [`Telemetry::render`] is the `/metrics` body.
//! - [`Telemetry::latency_recorder`] gives each worker a [`LatencyRecorder`] that records without
//!   locks or contention; a scrape merges all workers.
//! - [`names`] holds every metric name and label; [`names::describe_all`] their descriptions.
//! - [`init_logging`] sets up tracing; [`token_digest_prefix`] is the only way to log a token.
//! - [`audit`] is the hash-chained decision log (`[audit]`) and its verifier.
//! - [`admin_router`] / [`serve_admin`] serve `/metrics`, `/healthz` and `/readyz`.

mod admin;
pub mod audit;
mod latency;
mod logging;
pub mod names;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use admin::{
    FleetReadiness, METRICS_CONTENT_TYPE, ProviderReadiness, Readiness, admin_router, serve_admin,
};
pub use latency::LatencyRecorder;
pub use logging::{LogFormat, UnknownLogFormat, init_logging, token_digest_prefix};

use latency::Latency;

/// Why telemetry could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Some other code installed a global `metrics` recorder first; verdict's metrics would go to
    /// it and never reach `/metrics`, so refusing is better than exporting nothing.
    #[error(
        "a different global metrics recorder is already installed in this process; \
         verdict's telemetry must install the only one"
    )]
    RecorderAlreadyInstalled,
    /// The latency histogram bounds were rejected (a programming error in the constants).
    #[error("latency histogram bounds rejected: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

/// The process's telemetry: the Prometheus recorder behind the `metrics` facade and the
/// per-worker latency histograms. Shared as `Arc<Telemetry>`; there is one per process.
#[derive(Debug)]
pub struct Telemetry {
    /// Reads the installed recorder's state for rendering.
    prometheus: PrometheusHandle,
    /// Check latency, per worker.
    latency: Latency,
}

/// The installed instance; set once, then every `install` returns it.
static INSTALLED: OnceLock<Arc<Telemetry>> = OnceLock::new();
/// Serialises the first installation so two racing callers cannot both try to set the global
/// recorder (the loser would get a spurious error).
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

impl Telemetry {
    /// Installs the global `metrics` recorder (Prometheus), describes every metric in [`names`],
    /// sets [`names::BUILD_INFO`], and returns the shared instance.
    ///
    /// Idempotent: later calls (tests call it many times) return the same `Arc`.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::RecorderAlreadyInstalled`] when another global recorder was installed
    /// by something other than this function.
    pub fn install() -> Result<Arc<Telemetry>, TelemetryError> {
        if let Some(installed) = INSTALLED.get() {
            return Ok(Arc::clone(installed));
        }
        let _guard = INSTALL_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(installed) = INSTALLED.get() {
            return Ok(Arc::clone(installed));
        }

        let latency = Latency::new()?;
        let recorder = PrometheusBuilder::new().build_recorder();
        let prometheus = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|_| TelemetryError::RecorderAlreadyInstalled)?;
        let telemetry = Arc::new(Telemetry {
            prometheus,
            latency,
        });
        // Cannot already be set: we hold the install lock and checked above.
        let _ = INSTALLED.set(Arc::clone(&telemetry));

        names::describe_all();
        metrics::gauge!(
            names::BUILD_INFO,
            names::labels::VERSION => env!("CARGO_PKG_VERSION")
        )
        .set(1.0);
        Ok(telemetry)
    }

    /// The recorder for `worker`'s check latencies. Call it once per worker at startup and keep
    /// the recorder on that worker; a second call for the same index shares the same counters.
    pub fn latency_recorder(&self, worker: usize) -> LatencyRecorder {
        self.latency.recorder(worker)
    }

    /// The Prometheus text exposition: every metric recorded through the `metrics` facade, then
    /// the check-latency summary (all workers, cumulative since start) with its `_max` gauge and
    /// the per-worker p99. Never blocks on workers.
    pub fn render(&self) -> String {
        let mut out = self.prometheus.render();
        if !out.is_empty() && !out.ends_with("\n\n") {
            // Families are separated by a blank line, as the recorder does between its own.
            out.push('\n');
        }
        self.latency.render_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn install_is_idempotent() {
        let first = Telemetry::install().expect("first install");
        let second = Telemetry::install().expect("second install");
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn render_contains_recorded_counters_and_gauges() {
        let telemetry = Telemetry::install().expect("install");
        metrics::counter!(
            names::CHECKS_TOTAL,
            names::labels::RESULT => names::labels::DENY,
            names::labels::REASON => "bad_signature",
            names::labels::PROVIDER => "telemetry-render-test",
            names::labels::ALG => "RS256",
        )
        .increment(3);
        metrics::counter!(
            names::CONFIG_RELOADS_TOTAL,
            names::labels::RESULT => names::labels::ERROR,
        )
        .increment(1);
        metrics::gauge!(
            names::KEYSET_KEYS,
            names::labels::PROVIDER => "telemetry-render-test",
        )
        .set(4.0);
        telemetry
            .latency_recorder(4242)
            .record(Duration::from_micros(250));

        let rendered = telemetry.render();
        let line = |needle: &[&str]| {
            rendered
                .lines()
                .find(|line| needle.iter().all(|part| line.contains(part)))
                .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{rendered}"))
                .to_owned()
        };
        let checks = line(&[
            "verdict_checks_total{",
            "result=\"deny\"",
            "reason=\"bad_signature\"",
            "provider=\"telemetry-render-test\"",
            "alg=\"RS256\"",
        ]);
        assert!(checks.ends_with(" 3"), "{checks}");
        assert!(line(&["verdict_config_reloads_total{", "result=\"error\""]).ends_with(" 1"));
        assert!(
            line(&["verdict_keyset_keys{", "provider=\"telemetry-render-test\""]).ends_with(" 4")
        );
        assert!(line(&["verdict_build_info{", "version=\""]).ends_with(" 1"));
        assert!(rendered.contains("# HELP verdict_checks_total "));
        assert!(rendered.contains("# TYPE verdict_check_duration_seconds summary"));
        line(&["verdict_check_duration_seconds{quantile=\"0.99\"}"]);
        line(&["verdict_check_duration_seconds{worker=\"4242\",quantile=\"0.99\"}"]);
        line(&["verdict_check_duration_seconds_count "]);
    }
}
