//! Per-check observations: counters through the `metrics` facade and latency into the calling
//! worker's own histogram recorder (a thread-local, so recording takes no lock).

use crate::policy::Decision;
use crate::telemetry::LatencyRecorder;
use crate::telemetry::names;
use std::cell::RefCell;
use std::time::Duration;

thread_local! {
    static LATENCY: RefCell<Option<LatencyRecorder>> = const { RefCell::new(None) };
}

/// Gives the current (worker) thread its latency recorder.
pub fn install_latency_recorder(recorder: LatencyRecorder) {
    LATENCY.with(|slot| *slot.borrow_mut() = Some(recorder));
}

/// Records one ext_authz check.
pub fn record_check(decision: &Decision, elapsed: Duration) {
    let (result, reason, provider, alg) = match decision {
        Decision::Allow(allowed) => (
            "allow",
            "ok",
            allowed.provider.as_str(),
            allowed.alg.map_or("", |a| a.name()),
        ),
        Decision::Deny(denied, provider) => (
            "deny",
            denied.reason.code(),
            provider.as_deref().unwrap_or(""),
            denied.alg.map_or("", |a| a.name()),
        ),
    };
    metrics::counter!(
        names::CHECKS_TOTAL,
        "result" => result,
        "reason" => reason,
        "provider" => provider.to_owned(),
        "alg" => alg,
    )
    .increment(1);
    LATENCY.with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut()
            && let Some(recorder) = slot.as_mut()
        {
            recorder.record(elapsed);
        }
    });
}
