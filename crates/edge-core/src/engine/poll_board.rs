//! Waiters of one isolate share their polls for a lock holder's result without sharing I/O.
//!
//! workerd forbids one request from touching I/O objects (fetches, streams) started by another,
//! so waiters cannot await a single shared poll future. Instead each waiter sleeps on its own
//! timer and, when it wakes, first reads this board: if another waiter of the isolate has
//! already learnt the outcome, it takes it without asking Redis; if another waiter's poll is in
//! flight (or just finished), it waits again. Only one Redis poll per key is in flight per
//! isolate at a time, and the results it publishes are plain Rust values.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::entry::CacheEntry;

/// What a poll learnt.
#[derive(Clone)]
pub enum PollOutcome {
    /// The holder stored its result: serve it.
    Ready(Rc<CacheEntry>),
    /// The holder found the answer uncacheable: go to the origin at once.
    HitForPass,
    /// The lock is gone without a result, or the variant changed: look up again.
    LookAgain,
    TimedOut,
    Unavailable,
}

#[derive(Default)]
struct KeyState {
    in_flight: bool,
    last_poll_ms: u64,
    /// The latest outcome and when it was learnt.
    outcome: Option<(u64, PollOutcome)>,
}

/// Per-isolate board, keyed by lock key. Clones share it.
#[derive(Clone, Default)]
pub struct PollBoard {
    keys: Rc<RefCell<HashMap<String, KeyState>>>,
}

/// Entries older than this are dropped on the next access.
const FORGET_AFTER_MS: u64 = 120_000;

impl PollBoard {
    /// An outcome learnt at or after `since_ms` by any waiter of this isolate.
    pub fn outcome_since(&self, key: &str, since_ms: u64) -> Option<PollOutcome> {
        let keys = self.keys.try_borrow().ok()?;
        match keys.get(key)?.outcome.as_ref() {
            Some((at, outcome)) if *at >= since_ms => Some(outcome.clone()),
            _ => None,
        }
    }

    /// Claims the next Redis poll for `key` unless one is in flight or one finished less than
    /// `min_gap_ms` ago. The claim is released when the returned guard is dropped, so a waiter
    /// whose request goes away mid-poll does not block the others.
    pub fn try_claim(&self, key: &str, now_ms: u64, min_gap_ms: u64) -> Option<PollClaim> {
        let mut keys = self.keys.try_borrow_mut().ok()?;
        if keys.len() > 1_000 {
            keys.retain(|_, s| s.in_flight || now_ms.saturating_sub(s.last_poll_ms) < FORGET_AFTER_MS);
        }
        let state = keys.entry(key.to_string()).or_default();
        if state.in_flight
            || (state.last_poll_ms != 0 && now_ms.saturating_sub(state.last_poll_ms) < min_gap_ms)
        {
            return None;
        }
        state.in_flight = true;
        Some(PollClaim { board: self.clone(), key: key.to_string() })
    }

    /// Publishes an outcome learnt without polling (the lock holder of this isolate, as it
    /// finishes): its waiters take it at their next check instead of asking Redis.
    pub fn publish(&self, key: &str, now_ms: u64, outcome: PollOutcome) {
        if let Ok(mut keys) = self.keys.try_borrow_mut() {
            keys.entry(key.to_string()).or_default().outcome = Some((now_ms, outcome));
        }
    }

    fn release(&self, key: &str, now_ms: Option<u64>, outcome: Option<PollOutcome>) {
        if let Ok(mut keys) = self.keys.try_borrow_mut() {
            if let Some(state) = keys.get_mut(key) {
                state.in_flight = false;
                if let Some(now) = now_ms {
                    state.last_poll_ms = now;
                    if let Some(outcome) = outcome {
                        state.outcome = Some((now, outcome));
                    }
                }
            }
        }
    }
}

/// The right to run the one Redis poll in flight for a key.
pub struct PollClaim {
    board: PollBoard,
    key: String,
}

impl PollClaim {
    /// Ends the poll: records when it finished and, if it learnt something, the outcome.
    pub fn finish(self, now_ms: u64, outcome: Option<PollOutcome>) {
        self.board.release(&self.key, Some(now_ms), outcome);
        std::mem::forget(self);
    }
}

impl Drop for PollClaim {
    fn drop(&mut self) {
        self.board.release(&self.key, None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_and_outcomes_are_shared() {
        let board = PollBoard::default();
        let claim = board.try_claim("k", 100, 10).expect("first claim");
        assert!(board.try_claim("k", 101, 10).is_none(), "in flight");
        claim.finish(105, None);
        assert!(board.try_claim("k", 110, 10).is_none(), "too soon after the last poll");
        let claim = board.try_claim("k", 115, 10).expect("due again");
        claim.finish(120, Some(PollOutcome::HitForPass));
        assert!(matches!(board.outcome_since("k", 100), Some(PollOutcome::HitForPass)));
        assert!(board.outcome_since("k", 121).is_none(), "not for waiters that came later");
    }

    #[test]
    fn a_dropped_claim_frees_the_key() {
        let board = PollBoard::default();
        drop(board.try_claim("k", 100, 10));
        assert!(board.try_claim("k", 100, 0).is_some());
    }
}
