//! A per-isolate circuit breaker for Redis.
//!
//! When Redis is down or slow, every request would otherwise pay a full `REDIS_TIMEOUT_MS`
//! before failing open. After a failure the breaker opens for a short window during which calls
//! fail at once; the first call after the window is a trial: success closes the breaker,
//! failure re-opens it. A dead Redis therefore costs about one timeout per window, not one per
//! request.
//!
//! The window is short (docs §4.17): while it is open the isolate runs in degraded mode, so
//! each window after Redis answers again costs offload. A trial is sent every window even
//! while an earlier one still waits for a slow Redis (that one counts as abandoned), so the
//! first trial sent after Redis's return comes at most one window later, whatever
//! `REDIS_TIMEOUT_MS` is.

use std::cell::Cell;
use std::rc::Rc;

/// How long the breaker stays open after a failure, and the time between trials.
pub const DEFAULT_OPEN_MS: u64 = 250;

/// Clones share state.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    open_until_ms: Rc<Cell<u64>>,
    /// When the trial call in flight after the window started: others keep failing fast. A
    /// trial older than the window counts as abandoned (its request was dropped before it
    /// could record anything), so the breaker can never stay stuck open.
    trial_started_ms: Rc<Cell<Option<u64>>>,
    open_ms: u64,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(DEFAULT_OPEN_MS)
    }
}

/// What the breaker says about a call about to be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed: call as usual.
    Call,
    /// The window has passed: this call is the trial.
    Trial,
    /// Open: do not call.
    Refuse,
}

impl CircuitBreaker {
    pub fn new(open_ms: u64) -> Self {
        CircuitBreaker {
            open_until_ms: Rc::new(Cell::new(0)),
            trial_started_ms: Rc::new(Cell::new(None)),
            open_ms,
        }
    }

    pub fn admit(&self, now_ms: u64) -> Admission {
        let until = self.open_until_ms.get();
        if until == 0 {
            Admission::Call
        } else if now_ms < until
            || self.trial_started_ms.get().is_some_and(|at| now_ms.saturating_sub(at) < self.open_ms)
        {
            Admission::Refuse
        } else {
            self.trial_started_ms.set(Some(now_ms));
            Admission::Trial
        }
    }

    pub fn record_success(&self) {
        self.open_until_ms.set(0);
        self.trial_started_ms.set(None);
    }

    pub fn record_failure(&self, now_ms: u64) {
        self.open_until_ms.set(now_ms.saturating_add(self.open_ms).max(1));
        self.trial_started_ms.set(None);
    }

    pub fn is_open(&self) -> bool {
        self.open_until_ms.get() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_failure_then_admits_one_trial() {
        let b = CircuitBreaker::new(1_000);
        assert_eq!(b.admit(10), Admission::Call);
        b.record_failure(10);
        assert_eq!(b.admit(500), Admission::Refuse);
        assert_eq!(b.admit(1_010), Admission::Trial);
        assert_eq!(b.admit(1_011), Admission::Refuse, "only one trial at a time");
        b.record_failure(1_020);
        assert_eq!(b.admit(1_500), Admission::Refuse);
        assert_eq!(b.admit(2_020), Admission::Trial);
        b.record_success();
        assert_eq!(b.admit(2_021), Admission::Call);
        assert!(!b.is_open());
    }

    #[test]
    fn a_dropped_trial_never_leaves_the_breaker_stuck() {
        let b = CircuitBreaker::new(1_000);
        b.record_failure(0);
        assert_eq!(b.admit(1_000), Admission::Trial);
        // The trial's request goes away: nothing is ever recorded.
        assert_eq!(b.admit(1_500), Admission::Refuse, "the trial may still answer");
        assert_eq!(b.admit(2_000), Admission::Trial, "abandoned after a window: try again");
    }

    #[test]
    fn a_slow_trial_does_not_hold_back_the_next_one() {
        // Redis answers again at 1_100 while the trial of 1_000 still waits on its timeout.
        let b = CircuitBreaker::new(DEFAULT_OPEN_MS);
        b.record_failure(750);
        assert_eq!(b.admit(1_000), Admission::Trial);
        assert_eq!(b.admit(1_100), Admission::Refuse);
        assert_eq!(b.admit(1_250), Admission::Trial, "one window later, another trial");
        b.record_success();
        assert_eq!(b.admit(1_260), Admission::Call, "recovered 160 ms after Redis did");
    }

    #[test]
    fn clones_share_state() {
        let a = CircuitBreaker::new(1_000);
        let b = a.clone();
        a.record_failure(0);
        assert_eq!(b.admit(1), Admission::Refuse);
    }
}
