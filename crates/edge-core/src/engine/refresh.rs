//! STALE (docs §4.4): a stale copy is served at once while one background refresh per key,
//! guarded by the Redis lock (and, within this isolate, by a set so that other stale requests
//! do not even try the lock, and by degraded mode's single flight), fetches the new one.

use futures::future::FutureExt;

use super::degraded::LocalFill;
use super::lock::LockAttempt;
use super::lookup::Lookup;
use super::{Cache, CacheRequest, SharedEntry};
use crate::entry::CacheEntry;
use crate::runtime::{Origin, Runtime};
use crate::store::Store;

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// Starts the refresh of a stale entry stored at `seen_stored_at`, unless this isolate
    /// already refreshes it.
    pub(super) fn refresh_in_background<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: O,
        stale: SharedEntry,
    ) {
        let seen_stored_at = stale.stored_at_ms;
        if self.isolate.backoff.active(&lookup.keys.stale, self.rt.now_ms()) {
            return;
        }
        if !self.isolate.refreshing.borrow_mut().insert(lookup.keys.fresh.clone()) {
            return;
        }
        let cache = self.clone();
        let req = req.clone();
        let lookup = lookup.detached();
        // After the answer: a stale answer costs one Redis request (its lookup), as a hit does.
        self.rt.spawn_after_answer(
            async move {
                // This isolate's one fetch of the key (§8.6): not beside a degraded-mode fetch
                // of it, and requests that lose Redis meanwhile wait for this one.
                let flight = cache.flight_key(&req);
                let Some(_local) = LocalFill::lead(&cache, &flight, false) else {
                    cache.isolate.refreshing.borrow_mut().remove(&lookup.keys.fresh);
                    return;
                };
                // Already refreshed elsewhere since our lookup, held by another, or the copy is from
                // before a purge of everything: nothing to do.
                if let Ok(LockAttempt::Taken(token)) = cache.try_lock(&lookup, Some(seen_stored_at)).await {
                    // With the stale copy, so that a validator revalidates it (a 304 costs no body).
                    let work = cache.fetch_as_holder(&req, &lookup, &origin, &token, Some(stale), true);
                    let _ = cache.renewing(&lookup.keys, &token, work).await;
                }
                cache.isolate.refreshing.borrow_mut().remove(&lookup.keys.fresh);
            }
            .boxed_local(),
        );
    }
}

/// Whether a stale copy may be served at once (with a background refresh). An entry that is
/// stale only because it was soft-purged (still fresh by its own clock) is served only when it
/// has a stale-while-revalidate window, as Fastly's soft purge does; otherwise it is refetched
/// behind the lock.
pub(super) fn servable_stale(entry: &CacheEntry, now_ms: u64) -> bool {
    if entry.fresh_remaining_secs(now_ms) > 0 {
        entry.freshness.swr > 0
    } else {
        entry.within_swr(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::lookup::Found;
    use crate::engine::testing::{entry, Harness, ScriptedOrigin};
    use crate::phase::CachePhase;

    #[test]
    fn stale_is_served_only_inside_its_window() {
        let now = 1_000_000_000;
        let mut e = entry(200, b"x", now - 70_000); // 60 s ttl, expired 10 s ago
        assert!(!servable_stale(&e, now), "no swr window");
        e.freshness.swr = 30;
        assert!(servable_stale(&e, now));
        assert!(!servable_stale(&e, now + 25_000), "past ttl + swr");
        let soft_purged = entry(200, b"x", now - 1_000);
        assert!(!servable_stale(&soft_purged, now), "soft-purged without swr: refetch");
    }

    #[test]
    fn one_refresh_per_key_replaces_the_stale_copy() {
        let h = Harness::new();
        let req = h.get("https://example.com/s");
        let keys = h.run(h.cache().lookup(&req, &[])).keys;
        let mut old = entry(200, b"old", h.rt.now_ms() - 70_000);
        old.freshness.swr = 60;
        h.store_entry(&keys, &old, false);
        let origin = ScriptedOrigin::answering(vec![Ok((
            200,
            vec![("cache-control", "max-age=60")],
            b"new".to_vec(),
        ))]);
        for _ in 0..3 {
            let lookup = h.run(h.cache().lookup(&req, &[]));
            let served = h.run(h.cache().serve(&req, lookup, origin.clone()));
            assert_eq!(served.phase, CachePhase::Stale);
        }
        h.drain();
        assert_eq!(origin.fetches.get(), 1, "three stale answers, one refresh");
        let lookup = h.run(h.cache().lookup(&req, &[]));
        assert!(matches!(lookup.found, Found::Fresh(ref e) if e.body == b"new"));
        assert!(h.isolate.refreshing.borrow().is_empty());
    }
}
