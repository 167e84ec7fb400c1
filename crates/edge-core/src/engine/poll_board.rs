//! Waiters of one isolate share their polls for a lock holder's result without sharing I/O.
//!
//! workerd forbids one request from touching I/O objects (fetches, streams) started by another,
//! so waiters cannot await a single shared poll future. Instead one waiter per key is the
//! isolate's poller ([`PollClaim`]): it alone sleeps on a timer and asks Redis, and publishes
//! what it learns here as plain Rust values. The other waiters sleep with no timer but their
//! deadline: each leaves a [`Wake`] on the board (a promise of its own request, in workerd), and
//! the board calls them all when an outcome is published (by the poller or by a lock holder of
//! this isolate) or when the poller goes (so that another takes over). A waiter thus answers as
//! soon as the isolate knows, at the cost of one timer per key rather than one per waiter.
//!
//! Bounded (docs §4.6): a key is on the board only while a waiter waits for it ([`Waiting`]),
//! an outcome is kept for [`OUTCOME_KEPT_MS`] at most, and entries held for waiters take at
//! most [`MAX_READY_BYTES`]; past that a holder publishes "look again" and its waiters read
//! the entry from Redis.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::entry::CacheEntry;
use crate::runtime::Wake;

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
    /// The latest outcome: when it was learnt, its number on the board, and what it is.
    outcome: Option<(u64, u64, PollOutcome)>,
    /// Waiters asleep until something changes, by ticket ([`Sleeping`] removes its own).
    sleepers: Vec<(u64, Wake)>,
}

/// Per-isolate board, keyed by lock key. Clones share it.
#[derive(Clone, Default)]
pub struct PollBoard {
    keys: Rc<RefCell<HashMap<String, KeyState>>>,
    /// Bytes of the `Ready` outcomes on the board.
    bytes: Rc<Cell<usize>>,
    /// The next sleeper's ticket.
    tickets: Rc<Cell<u64>>,
    /// Outcomes published so far: a waiter takes only those numbered after it joined. Times
    /// cannot tell them apart: a round's "look again" and the next round's wait can fall in
    /// one millisecond, and a waiter taking the old outcome would look again, and again, until
    /// it gave up and fetched beside the new holder (found by the model test).
    published: Rc<Cell<u64>>,
}

impl PollBoard {
    /// Registers a waiter for `key` until the returned guard is dropped; the guard reads the
    /// outcomes published after it ([`Waiting::outcome`]).
    pub fn wait(&self, key: &str) -> Waiting {
        if let Ok(mut keys) = self.keys.try_borrow_mut() {
            keys.entry(key.to_string()).or_default().waiters += 1;
        }
        Waiting { board: self.clone(), key: key.to_string(), joined: self.published.get() }
    }

    /// The outcome for `key` published after number `after` (and not forgotten).
    fn outcome_after(&self, key: &str, after: u64) -> Option<PollOutcome> {
        let keys = self.keys.try_borrow().ok()?;
        match keys.get(key)?.outcome.as_ref() {
            Some((_, number, outcome)) if *number > after => Some(outcome.clone()),
            _ => None,
        }
    }

    /// Claims the poller's role for `key` (the Redis polls, one at a time) unless another
    /// waiter has it or a poll finished less than `min_gap_ms` ago. The claim is released when
    /// the returned guard is dropped, waking the sleepers, so a waiter whose request goes away
    /// does not leave the others without a poller.
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
        let sleepers = std::mem::take(&mut state.sleepers);
        drop(keys);
        wake_all(sleepers);
    }

    /// Puts a waiter of `key` to sleep until the next outcome or change of poller: `wake` is
    /// called then, unless the returned guard was dropped first.
    pub fn sleep_on(&self, key: &str, wake: Wake) -> Sleeping {
        let ticket = self.tickets.get().wrapping_add(1);
        self.tickets.set(ticket);
        if let Ok(mut keys) = self.keys.try_borrow_mut() {
            if let Some(state) = keys.get_mut(key) {
                state.sleepers.push((ticket, wake));
            }
        }
        Sleeping { board: self.clone(), key: key.to_string(), ticket }
    }

    fn set_outcome(&self, state: &mut KeyState, now_ms: u64, outcome: PollOutcome) {
        let freed = state.outcome.take().map_or(0, |(_, _, old)| old.bytes());
        let held = self.bytes.get().saturating_sub(freed);
        let outcome = if held + outcome.bytes() > MAX_READY_BYTES { PollOutcome::LookAgain } else { outcome };
        self.bytes.set(held + outcome.bytes());
        let number = self.published.get().wrapping_add(1);
        self.published.set(number);
        state.outcome = Some((now_ms, number, outcome));
    }

    /// Records a poll that finished at `now_ms` (and its outcome, if any); `release` also ends
    /// the claim. Sleepers are woken by an outcome, and by a release (one of them polls next).
    fn record(&self, key: &str, now_ms: Option<u64>, outcome: Option<PollOutcome>, release: bool) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        let Some(state) = keys.get_mut(key) else { return };
        if release {
            state.in_flight = false;
        }
        let learnt = outcome.is_some();
        if let Some(now) = now_ms {
            state.last_poll_ms = now;
            if let Some(outcome) = outcome {
                self.set_outcome(state, now, outcome);
            }
        }
        let sleepers = if learnt || release { std::mem::take(&mut state.sleepers) } else { Vec::new() };
        drop(keys);
        wake_all(sleepers);
    }

    fn unsleep(&self, key: &str, ticket: u64) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        if let Some(state) = keys.get_mut(key) {
            state.sleepers.retain(|(t, _)| *t != ticket);
        }
    }

    fn leave(&self, key: &str) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        let Some(state) = keys.get_mut(key) else { return };
        state.waiters = state.waiters.saturating_sub(1);
        if state.waiters == 0 && !state.in_flight {
            if let Some(state) = keys.remove(key) {
                let freed = state.outcome.map_or(0, |(_, _, outcome)| outcome.bytes());
                self.bytes.set(self.bytes.get().saturating_sub(freed));
            }
        }
    }

    /// Outcomes older than [`OUTCOME_KEPT_MS`] are forgotten (their waiters poll again).
    pub fn forget_old(&self, now_ms: u64) {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        for state in keys.values_mut() {
            if state.outcome.as_ref().is_some_and(|(at, _, _)| now_ms.saturating_sub(*at) > OUTCOME_KEPT_MS) {
                let freed = state.outcome.take().map_or(0, |(_, _, outcome)| outcome.bytes());
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
    /// The board's count of published outcomes when this waiter joined.
    joined: u64,
}

impl Waiting {
    /// The outcome this isolate learnt for the key since the waiter joined, if any.
    pub fn outcome(&self) -> Option<PollOutcome> {
        self.board.outcome_after(&self.key, self.joined)
    }
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
    /// Records one poll that finished at `now_ms`, keeping the claim (the poller polls again).
    pub fn record(&self, now_ms: u64, outcome: Option<PollOutcome>) {
        self.board.record(&self.key, Some(now_ms), outcome, false);
    }
}

impl Drop for PollClaim {
    fn drop(&mut self) {
        self.board.record(&self.key, None, None, true);
    }
}

/// A sleeping waiter's place; dropped (woken by its deadline, or its request gone), it takes
/// its [`Wake`] back so that nobody resolves a promise of a finished request.
pub struct Sleeping {
    board: PollBoard,
    key: String,
    ticket: u64,
}

impl Drop for Sleeping {
    fn drop(&mut self) {
        self.board.unsleep(&self.key, self.ticket);
    }
}

fn wake_all(sleepers: Vec<(u64, Wake)>) {
    for (_, wake) in sleepers {
        wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::entry;

    #[test]
    fn one_claim_at_a_time_and_outcomes_are_shared() {
        let board = PollBoard::default();
        let waiting = board.wait("k");
        let claim = board.try_claim("k", 100, 10).expect("first claim");
        assert!(board.try_claim("k", 101, 10).is_none(), "in flight");
        claim.record(105, None);
        drop(claim);
        assert!(board.try_claim("k", 110, 10).is_none(), "too soon after the last poll");
        let claim = board.try_claim("k", 115, 10).expect("due again");
        claim.record(120, Some(PollOutcome::HitForPass));
        drop(claim);
        assert!(matches!(waiting.outcome(), Some(PollOutcome::HitForPass)));
        // Not for a waiter that joins later, even within the same millisecond: the next round.
        let later = board.wait("k");
        assert!(later.outcome().is_none(), "not for waiters that came later");
        board.publish("k", 120, PollOutcome::LookAgain);
        assert!(matches!(later.outcome(), Some(PollOutcome::LookAgain)));
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
        assert!(matches!(waiting.outcome(), Some(PollOutcome::Ready(_))));
        assert!(board.footprint().1 >= 1_000);
        drop(waiting);
        assert_eq!(board.footprint(), (0, 0), "the last waiter leaving frees the key and its bytes");
    }

    #[test]
    fn entries_past_the_byte_budget_become_look_again_and_old_outcomes_go() {
        let board = PollBoard::default();
        let (a, b) = (board.wait("a"), board.wait("b"));
        let big = |n| PollOutcome::Ready(Rc::new(entry(200, &vec![b'x'; n], 1)));
        board.publish("a", 100, big(MAX_READY_BYTES - 100));
        board.publish("b", 100, big(1_000));
        assert!(matches!(a.outcome(), Some(PollOutcome::Ready(_))));
        assert!(matches!(b.outcome(), Some(PollOutcome::LookAgain)));
        board.forget_old(100 + OUTCOME_KEPT_MS + 1);
        assert!(a.outcome().is_none());
        assert_eq!(board.footprint().1, 0);
    }

    #[test]
    fn sleepers_wake_on_an_outcome_or_a_poller_leaving_not_on_an_empty_poll() {
        let board = PollBoard::default();
        let _waiting = board.wait("k");
        let woken = Rc::new(Cell::new(0));
        let sleep = |board: &PollBoard| {
            let woken = woken.clone();
            board.sleep_on("k", Box::new(move || woken.set(woken.get() + 1)))
        };
        let claim = board.try_claim("k", 100, 0).expect("the poller");
        let _a = sleep(&board);
        let gone = sleep(&board);
        drop(gone);
        claim.record(110, None);
        assert_eq!(woken.get(), 0, "a poll that learnt nothing wakes nobody");
        claim.record(120, Some(PollOutcome::HitForPass));
        assert_eq!(woken.get(), 1, "an outcome wakes the sleeper still there, once");
        let _b = sleep(&board);
        drop(claim);
        assert_eq!(woken.get(), 2, "the poller leaving wakes the others: one of them polls next");
        let _c = sleep(&board);
        board.publish("k", 130, PollOutcome::LookAgain);
        assert_eq!(woken.get(), 3, "a lock holder of this isolate publishing wakes them");
    }
}
