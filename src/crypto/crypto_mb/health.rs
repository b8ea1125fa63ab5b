//! Per family: crypto_mb switched off after repeated engine errors, for a cool-down
//! ([`crate::crypto::cooldown`]), with one log line and the `verdict_engine_cooling_down` gauge
//! each way.

use super::MbFamily;
use crate::crypto::cooldown::{Breaker, Change};
use crate::telemetry::names;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// One family's health.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// Set while the family is cooling down: the hot path reads only this.
    off: AtomicBool,
    breaker: Mutex<Breaker>,
}

impl Health {
    /// Whether crypto_mb may take `family`'s jobs now (ending a cool-down that is over).
    pub(super) fn usable(&self, family: MbFamily) -> bool {
        if !self.off.load(Ordering::Relaxed) {
            return true;
        }
        let mut breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        let (usable, change) = breaker.allows(Instant::now());
        if change == Change::SwitchedOn {
            self.off.store(false, Ordering::Relaxed);
            tracing::info!(
                family = family.name(),
                "crypto_mb: cool-down over, trying the engine again"
            );
            gauge(family).set(0.0);
        }
        usable
    }

    /// Records a library call of `family` that failed at least one lane.
    pub(super) fn record_error(&self, family: MbFamily) {
        let mut breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        if breaker.record_error(Instant::now()) == Change::SwitchedOff {
            self.off.store(true, Ordering::Relaxed);
            tracing::warn!(
                family = family.name(),
                errors = crate::crypto::cooldown::ERRORS_TO_SWITCH_OFF,
                window_s = crate::crypto::cooldown::ERROR_WINDOW.as_secs(),
                "crypto_mb: repeated engine errors; aws-lc-rs verifies this family during a \
                 cool-down"
            );
            gauge(family).set(1.0);
        }
    }

    /// Replaces the thresholds (unit tests: a short cool-down).
    #[cfg(test)]
    pub(super) fn set_breaker(&self, breaker: Breaker) {
        *self.breaker.lock().unwrap_or_else(PoisonError::into_inner) = breaker;
        self.off.store(false, Ordering::Relaxed);
    }

    /// Whether the family is cooling down.
    pub(super) fn is_off(&self) -> bool {
        self.off.load(Ordering::Relaxed)
    }
}

fn gauge(family: MbFamily) -> metrics::Gauge {
    metrics::gauge!(
        names::ENGINE_COOLING_DOWN,
        names::labels::ENGINE => "crypto-mb",
        names::labels::FAMILY => family.name(),
    )
}
