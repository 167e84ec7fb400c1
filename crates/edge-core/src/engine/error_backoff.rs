//! Origin-error backoff (docs §4.8): after the origin failed for a key that still has a copy
//! inside stale-if-error, this isolate serves that copy for the next second instead of asking
//! the origin again. Without it a failing origin gets a fetch per request for its hot keys:
//! each STALE answer starts a refresh once the previous one failed, and each request past
//! stale-while-revalidate takes the freed lock and fetches again.

use std::cell::RefCell;
use std::collections::HashMap;

/// How long after an origin error a key with a stale-if-error copy is not fetched again.
pub const ORIGIN_ERROR_BACKOFF_MS: u64 = 1_000;

/// Bounds the keys remembered (expired ones are dropped first).
const MAX_KEYS: usize = 10_000;

/// Keys (stale keys) and until when their origin is left alone.
#[derive(Default)]
pub(super) struct ErrorBackoff {
    until: RefCell<HashMap<String, u64>>,
}

impl ErrorBackoff {
    pub fn note_failure(&self, key: &str, now_ms: u64) {
        let Ok(mut until) = self.until.try_borrow_mut() else { return };
        if until.len() >= MAX_KEYS {
            until.retain(|_, at| *at > now_ms);
            if until.len() >= MAX_KEYS {
                until.clear();
            }
        }
        until.insert(key.to_string(), now_ms.saturating_add(ORIGIN_ERROR_BACKOFF_MS));
    }

    pub fn active(&self, key: &str, now_ms: u64) -> bool {
        self.until.try_borrow().ok().and_then(|until| until.get(key).copied()).is_some_and(|at| at > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_holds_the_key_back_for_the_backoff_only() {
        let backoff = ErrorBackoff::default();
        assert!(!backoff.active("k", 0));
        backoff.note_failure("k", 1_000);
        assert!(backoff.active("k", 1_999));
        assert!(!backoff.active("k", 2_000));
        assert!(!backoff.active("other", 1_500));
    }

    #[test]
    fn it_stays_bounded() {
        let backoff = ErrorBackoff::default();
        for i in 0..MAX_KEYS + 10 {
            backoff.note_failure(&format!("k{i}"), 0);
        }
        assert!(backoff.until.borrow().len() <= MAX_KEYS);
        assert!(backoff.active(&format!("k{}", MAX_KEYS + 9), 1));
    }
}
