//! Waiters of one isolate share their polls for a lock holder's result without sharing I/O.
//!
//! workerd forbids one request from touching I/O objects (fetches, streams) started by another,
//! so waiters cannot await a single shared poll future. Instead each waiter sleeps on its own
//! timer and, when it wakes, first reads this board: if another waiter of the isolate has
//! already learnt the outcome, it takes it without asking Redis; if another waiter's poll is in
//! flight (or just finished), it waits again. Only one Redis poll per key is in flight per
//! isolate at a time, and the results it publishes are plain Rust values.
//!
//! Bounded (docs §4.6): a key is on the board only while a waiter waits for it ([`Waiting`]),
//! an outcome is kept for [`OUTCOME_KEPT_MS`] at most, and entries held for waiters take at
//! most [`MAX_READY_BYTES`]; past that a holder publishes "look again" and its waiters read
//! the entry from Redis.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::entry::CacheEntry;

/// How long an outcome stays on the board.
pub const OUTCOME_KEPT_MS: u64 = 5_000;
/// The most entry bytes the board holds for waiters at once.
pub const MAX_READY_BYTES: usize = 8 * 1024 * 1024;

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

impl PollOutcome {
    /// What holding this outcome costs in memory (entries' bodies and headers).
    fn bytes(&self) -> usize {
        match self {
            PollOutcome::Ready(entry) => {
                entry.body.len() + entry.headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
            }
            _ => 0,
        }
    }
}

#[derive(Default)]
struct KeyState {
    waiters: u32,
    in_flight: bool,
    last_poll_ms: u64,
    /// The latest outcome and when it was learnt.
    outcome: Option<(u64, PollOutcome)>,
}

/// Per-isolate board, keyed by lock key. Clones share it.
#[derive(Clone, Default)]
pub struct PollBoard {
    keys: Rc<RefCell<HashMap<String, KeyState>>>,
    /// Bytes of the `Ready` outcomes on the board.
    bytes: Rc<Cell<usize>>,
}

impl PollBoard {
    /// Registers a waiter for `key` until the returned guard is dropped.
    pub fn wait(&self, key: &str) -> Waiting {
        if let Ok(mut keys) = self.keys.try_borrow_mut() {
            keys.entry(key.to_string()).or_default().waiters += 1;
        }
        Waiting { board: self.clone(), key: key.to_string() }
    }

    /// An outcome learnt at or after `since_ms` (and not too long ago) by this isolate.
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
        let state = keys.get_mut(key)?;
        if state.in_flight
            || (state.last_poll_ms != 0 && now_ms.saturating_sub(state.last_poll_ms) < min_gap_ms)
        {
            return None;
        }
        state.in_flight = true;
        Some(PollClaim { board: self.clone(), key: key.to_string() })
    }

    /// Publishes an outcome learnt without polling (the lock holder of this isolate, as it
    /// finishes): its waiters take it at their next check instead of asking Redis. Kept only
    /// while someone waits; an entry over the byte budget is published as "look again".
    pub fn publish(&self, key: &str, now_ms: u64, outcome: PollOutcome) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        let Some(state) = keys.get_mut(key).filter(|state| state.waiters > 0) else { return };
        self.set_outcome(state, now_ms, outcome);
    }

    fn set_outcome(&self, state: &mut KeyState, now_ms: u64, outcome: PollOutcome) {
        let freed = state.outcome.take().map_or(0, |(_, old)| old.bytes());
        let held = self.bytes.get().saturating_sub(freed);
        let outcome = if held + outcome.bytes() > MAX_READY_BYTES { PollOutcome::LookAgain } else { outcome };
        self.bytes.set(held + outcome.bytes());
        state.outcome = Some((now_ms, outcome));
    }

    fn release(&self, key: &str, now_ms: Option<u64>, outcome: Option<PollOutcome>) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        let Some(state) = keys.get_mut(key) else { return };
        state.in_flight = false;
        if let Some(now) = now_ms {
            state.last_poll_ms = now;
            if let Some(outcome) = outcome {
                self.set_outcome(state, now, outcome);
            }
        }
    }

    fn leave(&self, key: &str) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        let Some(state) = keys.get_mut(key) else { return };
        state.waiters = state.waiters.saturating_sub(1);
        if state.waiters == 0 && !state.in_flight {
            if let Some(state) = keys.remove(key) {
                let freed = state.outcome.map_or(0, |(_, outcome)| outcome.bytes());
                self.bytes.set(self.bytes.get().saturating_sub(freed));
            }
        }
    }

    /// Outcomes older than [`OUTCOME_KEPT_MS`] are forgotten (their waiters poll again).
    pub fn forget_old(&self, now_ms: u64) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        for state in keys.values_mut() {
            if state.outcome.as_ref().is_some_and(|(at, _)| now_ms.saturating_sub(*at) > OUTCOME_KEPT_MS) {
                let freed = state.outcome.take().map_or(0, |(_, outcome)| outcome.bytes());
                self.bytes.set(self.bytes.get().saturating_sub(freed));
            }
        }
    }

    /// Keys on the board and the entry bytes it holds.
    #[cfg(test)]
    pub fn footprint(&self) -> (usize, usize) {
        (self.keys.try_borrow().map_or(0, |keys| keys.len()), self.bytes.get())
    }
}

/// A waiter's place on the board; leaving (drop) removes the key once nobody waits for it.
pub struct Waiting {
    board: PollBoard,
    key: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.board.leave(&self.key);
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
    use crate::engine::testing::entry;

    #[test]
    fn one_claim_at_a_time_and_outcomes_are_shared() {
        let board = PollBoard::default();
        let _waiting = board.wait("k");
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
        let _waiting = board.wait("k");
        drop(board.try_claim("k", 100, 10));
        assert!(board.try_claim("k", 100, 0).is_some());
    }

    #[test]
    fn outcomes_are_kept_only_while_someone_waits() {
        let board = PollBoard::default();
        let ready = || PollOutcome::Ready(Rc::new(entry(200, &[b'x'; 1_000], 1)));
        board.publish("nobody", 100, ready());
        assert_eq!(board.footprint(), (0, 0), "a fill nobody waits for is not kept");
        let waiting = board.wait("k");
        board.publish("k", 100, ready());
        assert!(matches!(board.outcome_since("k", 0), Some(PollOutcome::Ready(_))));
        assert!(board.footprint().1 >= 1_000);
        drop(waiting);
        assert_eq!(board.footprint(), (0, 0), "the last waiter leaving frees the key and its bytes");
    }

    #[test]
    fn entries_past_the_byte_budget_become_look_again_and_old_outcomes_go() {
        let board = PollBoard::default();
        let (_a, _b) = (board.wait("a"), board.wait("b"));
        let big = |n| PollOutcome::Ready(Rc::new(entry(200, &vec![b'x'; n], 1)));
        board.publish("a", 100, big(MAX_READY_BYTES - 100));
        board.publish("b", 100, big(1_000));
        assert!(matches!(board.outcome_since("a", 0), Some(PollOutcome::Ready(_))));
        assert!(matches!(board.outcome_since("b", 0), Some(PollOutcome::LookAgain)));
        board.forget_old(100 + OUTCOME_KEPT_MS + 1);
        assert!(board.outcome_since("a", 0).is_none());
        assert_eq!(board.footprint().1, 0);
    }
}
