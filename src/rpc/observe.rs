//! Per-check observations: counters through the `metrics` facade and latency into the calling
//! worker's own histogram recorder (a thread-local, so recording takes no lock).

use crate::policy::Decision;
use crate::telemetry::LatencyRecorder;
use crate::telemetry::audit::{self, Entry};
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

/// Hands one ext_authz check to the calling worker's audit writer (see
/// [`crate::telemetry::audit`]); `token` is the raw credential, of which only a digest prefix
/// is kept. A no-op on a thread without a writer. Call it beside [`record_check`].
pub fn audit_check(decision: &Decision, token: Option<&str>, elapsed: Duration) {
    if !audit::auditing() {
        return;
    }
    let (allowed, reason, provider, sub) = match decision {
        Decision::Allow(allowed) => (
            true,
            names::labels::OK,
            Some(allowed.provider.clone()),
            allowed
                .claims
                .get("sub")
                .and_then(|sub| sub.as_str())
                .map(str::to_owned),
        ),
        Decision::Deny(denied, provider) => (false, denied.reason.code(), provider.clone(), None),
    };
    audit::record(Entry {
        time_ms: audit::unix_ms(),
        allowed,
        reason,
        provider,
        sub,
        token: token.map(|t| Entry::token_digest(t.as_bytes())),
        latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    });
}
