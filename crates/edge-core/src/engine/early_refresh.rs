//! Early refresh (docs §4.16): a hot entry is refreshed shortly before it expires, in the
//! background under the lock, so that its requests keep getting fresh hits across expiries
//! instead of a STALE (or MISS) window after each.
//!
//! Probabilistic early expiration (XFetch; Vattani, Chierichetti, Lowenstein, "Optimal
//! Probabilistic Cache Stampede Prevention", VLDB 2015): each hit refreshes when
//! `now − δ·β·ln(u) ≥ expiry`, u uniform in (0, 1], δ the time the entry's last fill took (the
//! fresh marker carries it). The closer the expiry and the slower the fill, the likelier; with
//! many requests one of them starts the refresh about δ·β·ln(rate·δ·β) before the expiry, and
//! the lock keeps it to one refresh per key across the fleet. On for entries with
//! stale-while-revalidate (the origin said a copy a little off is fine; early is the other
//! side of that), `CACHE_EARLY_REFRESH_BETA` = β (0 turns it off).

use super::lookup::Lookup;
use super::{Cache, CacheRequest, SharedEntry};
use crate::entry::CacheEntry;
use crate::runtime::{Origin, Runtime};
use crate::store::Store;

/// β when `CACHE_EARLY_REFRESH_BETA` is unset: the paper's default.
pub const DEFAULT_EARLY_REFRESH_BETA: f64 = 1.0;

/// δ for an entry whose marker does not say how long its fill took (an older writer's).
const UNKNOWN_FILL_MS: u64 = 100;

/// The least δ: a refresh costs more than the origin fetch the marker measures (the lock's and
/// the store's Redis round trips), and a δ of a few milliseconds (a fast origin next door)
/// would start it too late to finish before the expiry.
const MIN_DELTA_MS: u64 = 50;

/// `−ln(u)` never exceeds this for a u drawn from 53 random bits: an entry with more time left
/// than δ·β·this is not due, and no randomness is drawn for it (the common case of a hit).
const MAX_EXPONENT: f64 = 37.0;

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// Starts a background refresh of a fresh `entry` when XFetch says it is due.
    pub(super) fn maybe_refresh_early<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        entry: &SharedEntry,
    ) {
        let beta = self.isolate.early_refresh_beta;
        if beta <= 0.0 || entry.freshness.swr == 0 {
            return;
        }
        let remaining = remaining_ms(entry, self.rt.now_ms());
        let delta = lookup.fill_ms.unwrap_or(UNKNOWN_FILL_MS).max(MIN_DELTA_MS);
        if remaining > 0 && xfetch_due(remaining as f64, delta as f64, beta, || uniform(self.rt.random_u64()))
        {
            self.refresh_in_background(req, lookup, origin.clone(), entry.clone());
        }
    }
}

/// Milliseconds of freshness left (≤ 0 once stale).
fn remaining_ms(entry: &CacheEntry, now_ms: u64) -> i64 {
    let ttl_ms = i64::from(entry.freshness.ttl) * 1_000;
    let elapsed = i64::try_from(now_ms.saturating_sub(entry.stored_at_ms)).unwrap_or(i64::MAX);
    ttl_ms.saturating_sub(elapsed)
}

/// XFetch's test, `δ·β·(−ln u) ≥ time left`, drawing u only when it could come true.
pub(super) fn xfetch_due(
    remaining_ms: f64,
    delta_ms: f64,
    beta: f64,
    draw: impl FnOnce() -> Option<f64>,
) -> bool {
    let scale = delta_ms * beta;
    if remaining_ms > scale * MAX_EXPONENT {
        return false;
    }
    match draw() {
        Some(u) if u > 0.0 && u <= 1.0 => scale * -u.ln() >= remaining_ms,
        _ => false,
    }
}

/// A uniform draw in (0, 1] from 64 random bits; `None` without them (then no refresh).
fn uniform(random: Option<u64>) -> Option<f64> {
    let bits = random? >> 11;
    Some((bits as f64 + 1.0) / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_from_expiry_nothing_is_drawn_or_due() {
        let drawn = std::cell::Cell::new(false);
        let draw = || {
            drawn.set(true);
            Some(1e-300)
        };
        assert!(!xfetch_due(10_000.0, 100.0, 1.0, draw), "10 s left, δ 100 ms: never");
        assert!(!drawn.get(), "no randomness spent on a plain hit");
    }

    #[test]
    fn the_test_is_xfetchs() {
        // δ·β·(−ln u) ≥ remaining.
        let u = (-2.0f64).exp(); // −ln u = 2
        assert!(xfetch_due(200.0, 100.0, 1.0, || Some(u)));
        assert!(!xfetch_due(201.0, 100.0, 1.0, || Some(u)));
        assert!(xfetch_due(400.0, 100.0, 2.0, || Some(u)), "β scales it");
        assert!(!xfetch_due(1.0, 100.0, 1.0, || Some(1.0)), "u = 1: −ln u = 0");
        assert!(!xfetch_due(1.0, 100.0, 1.0, || None), "no randomness: no refresh");
        assert!(!xfetch_due(1.0, 100.0, 1.0, || Some(0.0)), "outside (0, 1]");
    }

    #[test]
    fn draws_are_in_the_unit_interval_and_the_rate_matches_the_formula() {
        let random = || {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).ok().map(|()| u64::from_le_bytes(bytes))
        };
        let draws: Vec<f64> = (0..20_000).filter_map(|_| uniform(random())).collect();
        assert_eq!(draws.len(), 20_000);
        assert_eq!(uniform(Some(0)), Some(1.0 / (1u64 << 53) as f64), "never 0");
        assert_eq!(uniform(Some(u64::MAX)), Some(1.0));
        assert_eq!(uniform(None), None);
        assert!(draws.iter().all(|u| *u > 0.0 && *u <= 1.0));
        // P(δ·(−ln u) ≥ r) = e^(−r/δ): at r = δ, 1/e.
        let due = draws.iter().filter(|u| 100.0 * -u.ln() >= 100.0).count() as f64 / 20_000.0;
        assert!((due - (-1.0f64).exp()).abs() < 0.02, "{due}");
    }
}

#[cfg(test)]
mod steady_load {
    use std::rc::Rc;

    use http::HeaderMap;

    use crate::engine::testing::{Harness, ManualRuntime};
    use crate::engine::{CacheSettings, IsolateCache, TierSettings};
    use crate::phase::CachePhase;
    use crate::runtime::{Collected, Origin, OriginError, OriginResponse, Runtime};

    /// An origin that takes `fill_ms` of the manual clock to answer `s-maxage=3,
    /// stale-while-revalidate=10`, and counts its fetches.
    #[derive(Clone)]
    struct SlowOrigin {
        rt: ManualRuntime,
        fill_ms: u64,
        fetches: Rc<std::cell::Cell<u32>>,
    }

    impl Origin for SlowOrigin {
        type Body = Vec<u8>;
        async fn fetch(&self, _head_only: bool) -> Result<OriginResponse<Vec<u8>>, OriginError> {
            self.fetches.set(self.fetches.get() + 1);
            self.rt.sleep(self.fill_ms).await;
            let mut headers = HeaderMap::new();
            headers.insert("cache-control", "s-maxage=3, stale-while-revalidate=10".parse().unwrap());
            Ok(OriginResponse { status: 200, headers, body: b"hot".to_vec() })
        }
        async fn revalidate(&self, _: &HeaderMap) -> Result<OriginResponse<Vec<u8>>, OriginError> {
            self.fetch(false).await
        }
        async fn collect(&self, body: Vec<u8>, _: u64) -> Result<Collected<Vec<u8>>, OriginError> {
            Ok(Collected::Whole(body))
        }
    }

    /// A request every 10 ms for 30 s (ten expiries of a 3 s entry), background work run
    /// after each: answers that were not fresh hits, and origin fetches.
    fn steady_load(beta: f64, l1_bytes: u64) -> (usize, u32) {
        let mut h = Harness::new();
        // The manual clock jumps on every sleep: a lock renewed every millisecond keeps the
        // holder's renewals from jumping it by a third of the default lease.
        h.settings = Rc::new(CacheSettings { lock_ttl_ms: 3, ..(*h.settings).clone() });
        h.isolate =
            Rc::new(IsolateCache::new(TierSettings { l1_bytes, l1_ttl_ms: 1_000, early_refresh_beta: beta }));
        let origin = SlowOrigin { rt: h.rt.clone(), fill_ms: 50, fetches: Rc::default() };
        let req = h.get("https://example.com/hot");
        let end = h.rt.now_ms() + 30_000;
        let mut not_hits = 0;
        while h.rt.now_ms() < end {
            let lookup = h.run(h.cache().lookup(&req, &[]));
            let served = h.run(h.cache().serve(&req, lookup, origin.clone()));
            if served.phase != CachePhase::Hit {
                not_hits += 1;
            }
            h.drain();
            h.rt.clock.advance(10);
        }
        (not_hits, origin.fetches.get())
    }

    #[test]
    fn a_hot_key_is_refreshed_before_it_expires() {
        for l1_bytes in [0, 1 << 20] {
            let (not_hits, fetches) = steady_load(1.0, l1_bytes);
            // About 2,900 answers: one MISS to start, then at most 1% STALE or MISS.
            assert!(not_hits <= 29, "{not_hits} answers were not fresh hits (L1 {l1_bytes})");
            eprintln!("early refresh, L1 {l1_bytes}: {not_hits} not fresh hits, {fetches} fetches");
            // One refresh per expiry or so: early, not often.
            assert!((9..=13).contains(&fetches), "{fetches} origin fetches (L1 {l1_bytes})");
        }
    }

    #[test]
    fn without_early_refresh_each_expiry_shows_stale_answers() {
        let (not_hits, fetches) = steady_load(0.0, 1 << 20);
        assert!(not_hits >= 10, "{not_hits}/{fetches}: the first request after each expiry is STALE");
        assert!((9..=12).contains(&fetches), "{fetches}");
    }
}
