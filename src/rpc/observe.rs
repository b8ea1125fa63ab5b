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
    /// This worker's `verdict_checks_total` series, resolved once each: looking a labelled
    /// counter up in the registry on every check costs a key allocation and a shared lock.
    static CHECK_COUNTERS: RefCell<Vec<CheckCounter>> = const { RefCell::new(Vec::new()) };
}

/// One `verdict_checks_total` series and its handle.
struct CheckCounter {
    result: &'static str,
    reason: &'static str,
    alg: &'static str,
    provider: Box<str>,
    counter: metrics::Counter,
}

/// Series kept per worker; past this many (a config with very many providers) the rest are
/// looked up in the registry on each check.
const MAX_CHECK_COUNTERS: usize = 512;

fn count_check(result: &'static str, reason: &'static str, provider: &str, alg: &'static str) {
    let counted = CHECK_COUNTERS.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return false;
        };
        if let Some(known) = cache.iter().find(|c| {
            c.reason == reason && c.result == result && c.alg == alg && *c.provider == *provider
        }) {
            known.counter.increment(1);
            return true;
        }
        if cache.len() >= MAX_CHECK_COUNTERS {
            return false;
        }
        let counter = checks_counter(result, reason, provider, alg);
        counter.increment(1);
        cache.push(CheckCounter {
            result,
            reason,
            alg,
            provider: provider.into(),
            counter,
        });
        true
    });
    if !counted {
        checks_counter(result, reason, provider, alg).increment(1);
    }
}

fn checks_counter(
    result: &'static str,
    reason: &'static str,
    provider: &str,
    alg: &'static str,
) -> metrics::Counter {
    metrics::counter!(
        names::CHECKS_TOTAL,
        "result" => result,
        "reason" => reason,
        "provider" => provider.to_owned(),
        "alg" => alg,
    )
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
    count_check(result, reason, provider, alg);
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
