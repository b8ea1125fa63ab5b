//! Switching an engine off for one family after repeated run-time errors, and on again after a
//! cool-down.
//!
//! An engine error (a crypto_mb lane whose status is neither "verified" nor "bad signature", or
//! a library call that could not be made) is already answered right: the job is re-run on
//! aws-lc-rs and counted (`verdict_engine_errors_total`). But an engine that keeps failing
//! costs every batch its call and the re-runs, so after [`ERRORS_TO_SWITCH_OFF`] failed calls
//! within [`ERROR_WINDOW`] the family goes to aws-lc-rs for [`COOL_DOWN`], then the engine is
//! tried again; one more failed call within the window after that switches it off again at once.
//!
//! [`Breaker`] is the decision alone, sans-IO: the caller passes `now` (so the tests drive a fake
//! clock) and does the logging and the metric.

use std::time::{Duration, Instant};

/// Failed calls within [`ERROR_WINDOW`] that switch a family off.
pub const ERRORS_TO_SWITCH_OFF: u32 = 4;

/// The window [`ERRORS_TO_SWITCH_OFF`] counts in.
pub const ERROR_WINDOW: Duration = Duration::from_secs(10);

/// How long a family stays off before the engine is tried again.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

/// What a call to [`Breaker`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// The errors just reached the limit: the family is off until the cool-down ends.
    SwitchedOff,
    /// The cool-down just ended: the family is on again (on probation for one window).
    SwitchedOn,
}

/// One family's error count and cool-down.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    window: Duration,
    cool_down: Duration,
    /// When the current counting window began (at its first error).
    window_start: Option<Instant>,
    /// Failed calls in the current window.
    errors: u32,
    /// Off until then.
    off_until: Option<Instant>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new(ERRORS_TO_SWITCH_OFF, ERROR_WINDOW, COOL_DOWN)
    }
}

impl Breaker {
    /// A breaker that switches off after `threshold` errors within `window`, for `cool_down`.
    pub fn new(threshold: u32, window: Duration, cool_down: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            window,
            cool_down,
            window_start: None,
            errors: 0,
            off_until: None,
        }
    }

    /// Whether the engine may be used at `now`, and whether this call ended the cool-down.
    pub fn allows(&mut self, now: Instant) -> (bool, Change) {
        match self.off_until {
            Some(until) if now < until => (false, Change::None),
            Some(_) => {
                self.off_until = None;
                // On probation: one more error within a window switches it off again.
                self.window_start = Some(now);
                self.errors = self.threshold.saturating_sub(1);
                (true, Change::SwitchedOn)
            }
            None => (true, Change::None),
        }
    }

    /// Whether the engine is off at `now` (without ending a cool-down).
    pub fn is_off(&self, now: Instant) -> bool {
        self.off_until.is_some_and(|until| now < until)
    }

    /// Records a failed call at `now`.
    pub fn record_error(&mut self, now: Instant) -> Change {
        if self.off_until.is_some() {
            // Calls already under way when it switched off: nothing more to decide.
            return Change::None;
        }
        let in_window = self
            .window_start
            .is_some_and(|start| now.saturating_duration_since(start) < self.window);
        if !in_window {
            self.window_start = Some(now);
            self.errors = 0;
        }
        self.errors += 1;
        if self.errors < self.threshold {
            return Change::None;
        }
        self.errors = 0;
        self.window_start = None;
        self.off_until = Some(now + self.cool_down);
        Change::SwitchedOff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn repeated_errors_switch_off_for_the_cool_down_then_on_again() {
        let t0 = Instant::now();
        let mut breaker = Breaker::default();
        assert_eq!(breaker.allows(t0), (true, Change::None));
        for second in 0..ERRORS_TO_SWITCH_OFF as u64 - 1 {
            assert_eq!(breaker.record_error(at(t0, second)), Change::None);
            assert!(breaker.allows(at(t0, second)).0);
        }
        // The fourth error within 10 s switches it off for 30 s.
        assert_eq!(breaker.record_error(at(t0, 5)), Change::SwitchedOff);
        assert_eq!(breaker.allows(at(t0, 6)), (false, Change::None));
        assert!(breaker.is_off(at(t0, 34)));
        assert_eq!(breaker.record_error(at(t0, 7)), Change::None);
        assert_eq!(breaker.allows(at(t0, 34)), (false, Change::None));
        // At 35 s the engine is tried again, once announced.
        assert_eq!(breaker.allows(at(t0, 35)), (true, Change::SwitchedOn));
        assert_eq!(breaker.allows(at(t0, 36)), (true, Change::None));
        assert!(!breaker.is_off(at(t0, 36)));
        // On probation, one more error within the window switches it off again.
        assert_eq!(breaker.record_error(at(t0, 40)), Change::SwitchedOff);
        assert_eq!(breaker.allows(at(t0, 41)), (false, Change::None));
        assert_eq!(breaker.allows(at(t0, 70)), (true, Change::SwitchedOn));
        // Past the probation window, errors count from zero again.
        for second in [81, 82, 83] {
            assert_eq!(breaker.record_error(at(t0, second)), Change::None);
        }
        assert!(breaker.allows(at(t0, 84)).0);
    }

    #[test]
    fn errors_spread_wider_than_the_window_never_switch_off() {
        let t0 = Instant::now();
        let mut breaker = Breaker::default();
        for n in 0..20u64 {
            // Three errors per 11 s window, never four in one.
            assert_eq!(breaker.record_error(at(t0, n * 11)), Change::None);
            assert_eq!(breaker.record_error(at(t0, n * 11 + 1)), Change::None);
            assert_eq!(breaker.record_error(at(t0, n * 11 + 2)), Change::None);
            assert!(breaker.allows(at(t0, n * 11 + 3)).0);
        }
    }
}
