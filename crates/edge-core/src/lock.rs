//! The stampede lock's owner token and timings (CONTRACT §4).
//!
//! A lock is `SET lock_key <token> NX PX <ttl>`; its value is a random owner token so that it
//! is released by compare-and-delete ([`crate::store::Op::CompareAndDelete`]): a holder that
//! outlived its lock never deletes the next holder's lock. The TTL bounds how long a crashed
//! holder blocks others.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A fresh random owner token (128 bits from the platform CSPRNG).
pub fn new_lock_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// How long a lock lives: as long as the holder may legitimately work (the origin timeout),
/// plus a margin for storing the result.
pub fn lock_ttl_ms(origin_timeout_ms: u64) -> u64 {
    origin_timeout_ms.saturating_add(2_000)
}

/// The first wait between a waiter's polls for the holder's result; each poll backs off by
/// [`POLL_BACKOFF`] up to [`POLL_MAX_MS`], so a long wait costs few Redis requests while a
/// short fetch is noticed quickly.
pub const POLL_FIRST_MS: u64 = 10;
pub const POLL_MAX_MS: u64 = 80;
pub const POLL_BACKOFF: f64 = 1.5;

/// How often a waiter checks its isolate's poll board (no I/O but a timer): bounds how long
/// after the result is known in the isolate a waiter answers.
pub const LOCAL_CHECK_MS: u64 = 15;

/// The least time between two Redis polls for one key in one isolate, growing with how long
/// the waiters have waited: quick for a fast origin, cheap for a slow one.
pub fn poll_gap_ms(waited_ms: u64) -> u64 {
    (waited_ms / 5).clamp(POLL_FIRST_MS, POLL_MAX_MS)
}

/// The delay before poll number `attempt` (0-based).
pub fn poll_delay_ms(attempt: u32) -> u64 {
    let delay = POLL_FIRST_MS as f64 * POLL_BACKOFF.powi(attempt.min(32) as i32);
    (delay as u64).clamp(POLL_FIRST_MS, POLL_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let tokens: HashSet<String> = (0..1_000).map(|_| new_lock_token().unwrap()).collect();
        assert_eq!(tokens.len(), 1_000);
        assert!(tokens
            .iter()
            .all(|t| t.len() == 22 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')));
    }

    #[test]
    fn the_poll_gap_grows_with_the_wait() {
        assert_eq!(poll_gap_ms(0), POLL_FIRST_MS);
        assert_eq!(poll_gap_ms(200), 40);
        assert_eq!(poll_gap_ms(60_000), POLL_MAX_MS);
    }

    #[test]
    fn polls_back_off_to_a_cap() {
        let delays: Vec<u64> = (0..10).map(poll_delay_ms).collect();
        assert_eq!(delays[0], POLL_FIRST_MS);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), POLL_MAX_MS);
    }
}
