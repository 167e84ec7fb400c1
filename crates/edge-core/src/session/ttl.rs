//! Session lifetimes: a sliding idle TTL, capped by an absolute TTL since creation.
//!
//! Redis's key TTL is the idle clock. Every use may push it back to `SESSION_TTL`, but never
//! past `created + SESSION_ABSOLUTE_TTL`. To keep most requests write-free, the TTL is pushed
//! back only when that gains more than a tenth of the idle TTL ([`slide_slack_ms`]): a session
//! idle for `SESSION_TTL` is gone after between 90% and 100% of it, and an active session costs
//! at most one TTL write per tenth of `SESSION_TTL` (33.6 hours with the defaults).

use super::settings::SessionSettings;

/// The TTL (ms) a session's record should get when written or slid at `now_ms`:
/// `min(idle TTL, time left before the absolute deadline)`. `None` once the absolute lifetime
/// is over: the session is dead and its record should be deleted.
pub fn ttl_ms(now_ms: u64, created_ms: u64, settings: &SessionSettings) -> Option<u64> {
    let deadline_ms = created_ms.saturating_add(settings.absolute_ttl_ms());
    let left_ms = deadline_ms.checked_sub(now_ms).filter(|&left| left > 0)?;
    let ttl = left_ms.min(settings.idle_ttl_ms());
    (ttl > 0).then_some(ttl)
}

/// How much a slide must gain before it is worth a write: a tenth of the idle TTL.
pub fn slide_slack_ms(settings: &SessionSettings) -> u64 {
    settings.idle_ttl_ms() / 10
}

/// Whether to refresh the record's TTL to [`ttl_ms`] now. `remaining_pttl_ms` is Redis's
/// `PTTL` answer: `-2` (no such key) never slides, `-1` (no TTL, which this worker never
/// writes) always does if the session is alive, so a TTL-less record is repaired.
///
/// Slides only when the new TTL beats the remaining one by more than [`slide_slack_ms`]. Far
/// from the absolute deadline that means "the remaining TTL has dropped below 90% of the idle
/// TTL"; near it, the new TTL is capped and no longer gains anything, so nothing is written
/// even though the remaining TTL is low. Whenever this says yes, re-send the cookie too
/// ([`super::set_cookie_header`]) so the browser's `Max-Age` slides along.
pub fn should_slide(
    remaining_pttl_ms: i64,
    now_ms: u64,
    created_ms: u64,
    settings: &SessionSettings,
) -> bool {
    let Some(new_ttl_ms) = ttl_ms(now_ms, created_ms, settings) else {
        return false;
    };
    match remaining_pttl_ms {
        -1 => true,
        remaining if remaining < 0 => false,
        remaining => {
            let remaining = u64::try_from(remaining).unwrap_or(u64::MAX);
            new_ttl_ms > remaining.saturating_add(slide_slack_ms(settings))
        }
    }
}

/// Under `SESSION_SAVE_EVERY_REQUEST`, whether to re-send the cookie so that the browser's
/// `Max-Age` keeps up with the record's TTL, which every request pushes back to the idle TTL
/// (the `PEXPIRE` rides in the lookup's round trip, after the `PTTL` that gives
/// `remaining_pttl_ms`). The `PTTL` therefore tells when the previous request came: the
/// cookie is re-sent on the first request of each tenth of the idle TTL since creation, so
/// the browser never drops it more than [`slide_slack_ms`] before Redis would drop the record
/// (as with the default model), and an active session costs one `Set-Cookie` per tenth.
pub fn cookie_needs_refresh(
    remaining_pttl_ms: i64,
    now_ms: u64,
    created_ms: u64,
    settings: &SessionSettings,
) -> bool {
    if ttl_ms(now_ms, created_ms, settings).is_none() {
        return false;
    }
    let Ok(remaining) = u64::try_from(remaining_pttl_ms) else {
        // -1: no TTL (never written so): refresh both; -2: gone.
        return remaining_pttl_ms == -1;
    };
    let slack = slide_slack_ms(settings).max(1);
    let previous_ms = now_ms.saturating_sub(settings.idle_ttl_ms().saturating_sub(remaining));
    let window = |at: u64| at.saturating_sub(created_ms) / slack;
    window(previous_ms) != window(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_every_request_resends_the_cookie_once_per_tenth() {
        // idle 100 s, absolute 1000 s, slack 10 s. Simulate: every request sets the record's
        // TTL to the idle TTL; the browser's cookie expires idle seconds after it was last sent.
        let s = settings();
        let mut record_expiry = T0 + 100 * S;
        let mut cookie_expiry = T0 + 100 * S;
        let mut now = T0;
        let mut resent = 0;
        for step in 0..300u64 {
            now += (step * 7_919) % (30 * S); // irregular gaps under 30 s
            if now >= T0 + 1000 * S {
                break;
            }
            let remaining = record_expiry.saturating_sub(now) as i64;
            if cookie_needs_refresh(remaining, now, T0, &s) {
                cookie_expiry = now + 100 * S;
                resent += 1;
            }
            record_expiry = now + 100 * S;
            assert!(cookie_expiry + 10 * S >= record_expiry, "at {now}: the cookie would go first");
        }
        assert!(resent <= 100 && resent > 5, "{resent} re-sends");
        assert!(cookie_needs_refresh(-1, T0, T0, &s));
        assert!(!cookie_needs_refresh(-2, T0, T0, &s));
        assert!(!cookie_needs_refresh(50_000, T0 + 1000 * S, T0, &s), "dead: nothing to refresh");
    }

    const S: u64 = 1000; // ms per second
    const T0: u64 = 1_700_000_000_000;

    /// idle 100 s, absolute 1000 s: slack is 10 s.
    fn settings() -> SessionSettings {
        SessionSettings::new(&[1u8; 32]).unwrap().with_ttls(100, 1000).unwrap()
    }

    #[test]
    fn ttl_is_idle_capped_by_absolute() {
        let s = settings();
        let cases: &[(u64, Option<u64>)] = &[
            (T0, Some(100 * S)),           // brand new
            (T0 + 500 * S, Some(100 * S)), // mid-life
            (T0 + 900 * S, Some(100 * S)), // exactly idle TTL left
            (T0 + 950 * S, Some(50 * S)),  // capped by the absolute deadline
            (T0 + 1000 * S - 1, Some(1)),  // last millisecond
            (T0 + 1000 * S, None),         // deadline: dead
            (T0 + 5000 * S, None),         // long dead
            (T0 - 10 * S, Some(100 * S)),  // created "in the future" (clock skew)
        ];
        for &(now, want) in cases {
            assert_eq!(ttl_ms(now, T0, &s), want, "now = T0 + {}", now as i64 - T0 as i64);
        }
    }

    #[test]
    fn ttl_survives_extreme_settings() {
        let s = SessionSettings { idle_ttl_s: u64::MAX, absolute_ttl_s: u64::MAX, ..settings() };
        assert_eq!(ttl_ms(T0, T0, &s), Some(u64::MAX - T0));
        let zero = SessionSettings { idle_ttl_s: 0, ..settings() };
        assert_eq!(ttl_ms(T0, T0, &zero), None);
        assert_eq!(ttl_ms(u64::MAX, 0, &settings()), None);
    }

    #[test]
    fn slide_table() {
        let s = settings();
        assert_eq!(slide_slack_ms(&s), 10 * S);
        // (remaining PTTL, now, want)
        let cases: &[(i64, u64, bool)] = &[
            (100_000, T0 + 10 * S, false), // just written
            (95_000, T0 + 10 * S, false),  // 5% used: not worth a write
            (90_000, T0 + 10 * S, false),  // gains exactly the slack: not more
            (89_999, T0 + 10 * S, true),   // below 90%: slide
            (1, T0 + 10 * S, true),        // about to expire
            (0, T0 + 10 * S, true),
            (-1, T0 + 10 * S, true),  // no TTL at all: repair it
            (-2, T0 + 10 * S, false), // no such key
            (-7, T0 + 10 * S, false), // nonsense
            // Near the absolute deadline (1000 s): the new TTL is capped at the time left.
            (50_000, T0 + 950 * S, false), // already runs to the deadline: gains nothing
            (49_000, T0 + 950 * S, false), // gains 1 s < slack (a skewed clock)
            (30_000, T0 + 950 * S, true),  // gains 20 s > slack
            (89_000, T0 + 900 * S, true),  // gains 11 s
            (5_000, T0 + 999 * S, false),  // 1 s left in all: nothing to gain
            (5_000, T0 + 1000 * S, false), // dead: delete, don't slide
            (-1, T0 + 1000 * S, false),    // dead even without a TTL
        ];
        for &(remaining, now, want) in cases {
            assert_eq!(
                should_slide(remaining, now, T0, &s),
                want,
                "remaining {remaining} ms at T0 + {} ms",
                now - T0
            );
        }
    }

    #[test]
    fn default_settings_slide_about_once_a_day_and_a_half() {
        let s = SessionSettings::new(&[1u8; 32]).unwrap();
        let idle = s.idle_ttl_ms();
        assert_eq!(slide_slack_ms(&s), 120_960_000); // 33.6 h
        let fresh = i64::try_from(idle).unwrap();
        assert!(!should_slide(fresh - 3_600_000, T0 + 3_600_000, T0, &s)); // an hour later
        assert!(should_slide(fresh - 2 * 86_400_000, T0 + 2 * 86_400_000, T0, &s));
        // two days
    }

    #[test]
    fn a_session_used_every_minute_writes_rarely_and_dies_at_the_absolute_deadline() {
        // Simulate Redis: the record's expiry, updated only when should_slide says so.
        let s = settings();
        let mut expires_at = T0 + ttl_ms(T0, T0, &s).unwrap();
        let mut writes = 0;
        let mut now = T0;
        let died_at = loop {
            now += 5 * S;
            if now >= expires_at {
                break now;
            }
            let remaining = i64::try_from(expires_at - now).unwrap();
            if should_slide(remaining, now, T0, &s) {
                writes += 1;
                expires_at = now + ttl_ms(now, T0, &s).unwrap();
            }
        };
        assert_eq!(died_at, T0 + 1000 * S, "dies exactly at the absolute deadline");
        // 200 uses over 1000 s; one slide per 10+ s of gain at most: <= 90 writes, and in
        // fact one per 15 s (the first 5 s step past the slack).
        assert!(writes <= 70, "{writes} writes for 200 requests");
        assert!(writes >= 50, "{writes}: the TTL must actually slide");
    }
}
