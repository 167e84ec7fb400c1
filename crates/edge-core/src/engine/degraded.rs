//! Degraded mode (docs §4.17): Redis is unavailable (timeouts, errors, the breaker open), so
//! the isolate shields the origin on its own.
//!
//! - A shared variant the L1 holds is served: fresh as a HIT, stale inside
//!   stale-while-revalidate as STALE (refreshed in the background, once per key), each with
//!   `Cache-Status: …; detail=redis-unavailable`.
//! - Otherwise one request per key per isolate fetches (the isolate-local single flight), keeps
//!   the answer in the L1 (and tries Redis), and the requests behind it get its result, as
//!   waiters do behind the Redis lock (`X-Cache: HIT`, collapsed). A copy inside
//!   stale-if-error answers instead of an origin error.
//! - Never a variant keyed on the session or the cookies, and nothing for a request whose
//!   session could not be checked: those go to the origin (`BYPASS`, `detail=redis-unavailable`)
//!   as before, with the shared stale-if-error copy as their fallback.
//!
//! The weaker promise meanwhile: one origin fetch per key per isolate, not per fleet (docs §8).

use futures::FutureExt;
use http::HeaderValue;

use super::fill::keyed_on_session;
use super::lookup::Lookup;
use super::poll_board::PollOutcome;
use super::refresh::servable_stale;
use super::served::{from_entry, origin_error_response, passed, stale_for_error_status, Served};
use super::{may_answer, Cache, CacheRequest, SharedEntry};
use crate::hygiene::CACHE_STATUS;
use crate::phase::{CachePhase, NoCacheReason};
use crate::runtime::{Origin, Runtime};
use crate::stats::Counter;
use crate::store::Store;

/// How often a waiter behind this isolate's own fetch checks that the fetch still runs (its
/// result wakes it at once; this only bounds the wait after a fetch that ended unpublished).
const LEADER_CHECK_MS: u64 = 50;

/// The `Cache-Status` detail of an answer given while Redis is unavailable.
const DETAIL: &str = "detail=redis-unavailable";

/// What a request behind the isolate's fetch learnt.
enum LocalWait {
    Outcome(PollOutcome),
    /// The fetching request finished without a result for its waiters (an origin error, or it
    /// went away).
    LeaderGone,
    TimedOut,
}

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// The single flight's key: the key URL's (with its rule's parts), at version 0, without
    /// `Vary`. A request whose lookup failed knows neither the URL's `Vary` names nor the cache
    /// version a purge of everything just set; one whose lock attempt failed knows both: they
    /// may fetch the same variant, so they share one flight (§8.6; the model test's finds).
    /// Other variants of the URL wait for it to end, then fetch their own.
    pub(super) fn flight_key(&self, req: &CacheRequest) -> String {
        self.keys_for(req, 0, &[]).stale
    }

    /// A request that reached Redis, behind this isolate's fetch of the variant made without
    /// Redis (§8.6: one fetch per key per isolate, a flapping Redis included): its result, or
    /// `None` when there is no such fetch or it ended without one (then the fleet lock).
    pub(super) async fn behind_degraded_fetch<B>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        deadline: u64,
    ) -> Option<Served<B>> {
        let flight = self.flight_key(req);
        if self.isolate.local_fills.borrow().get(&flight) != Some(&true) {
            return None;
        }
        match self.wait_for_local_fill(lookup, &flight, deadline).await {
            LocalWait::Outcome(PollOutcome::Ready(entry)) if may_answer(req, &entry) => {
                self.stats.add(Counter::Hit);
                Some(from_entry(&entry, CachePhase::Collapsed, false, self.rt.now_ms()))
            }
            _ => None,
        }
    }

    /// Answers without Redis.
    pub(super) async fn degraded<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        head_only: bool,
    ) -> Served<O::Body> {
        let shared = !keyed_on_session(&lookup.vary);
        let personal = req.session_id.is_some() || req.session_unconfirmed;
        let deadline = self.rt.now_ms().saturating_add(self.settings.lock_wait_ms);
        loop {
            let now = self.rt.now_ms();
            // A request with Authorization takes only what the origin marked shareable (§2.1).
            let copy = if shared { self.isolate.l1.any(&lookup.keys.stale, now) } else { None }
                .filter(|(entry, _)| may_answer(req, entry));
            if let Some((entry, fresh_marker)) = &copy {
                if *fresh_marker && entry.is_fresh(now) {
                    self.stats.add(Counter::Hit);
                    return marked(from_entry(entry, CachePhase::Hit, head_only, now));
                }
                if servable_stale(entry, now) {
                    self.stats.add(Counter::Stale);
                    if !personal {
                        self.refresh_locally(req, lookup, origin.clone(), entry.clone());
                    }
                    return marked(from_entry(entry, CachePhase::Stale, head_only, now));
                }
            }
            let copy = copy.map(|(entry, _)| entry);
            if let Some(stale) = copy.as_ref().filter(|c| c.within_sie(now)) {
                if self.isolate.backoff.active(&lookup.keys.stale, now) {
                    self.stats.add(Counter::Stale);
                    return marked(from_entry(stale, CachePhase::StaleIfError, head_only, now));
                }
            }
            if head_only || personal || !shared {
                return self.pass_degraded(origin, head_only, copy).await;
            }
            let flight = self.flight_key(req);
            if let Some(_leading) = LocalFill::lead(self, &flight, true) {
                let served = self.fetch_and_store(req, lookup, origin, Vec::new(), copy, false).await;
                return marked(served);
            }
            match self.wait_for_local_fill(lookup, &flight, deadline).await {
                LocalWait::Outcome(PollOutcome::Ready(entry)) if may_answer(req, &entry) => {
                    self.stats.add(Counter::Hit);
                    return marked(from_entry(&entry, CachePhase::Collapsed, false, self.rt.now_ms()));
                }
                // The fetch was for a session, not shared (§8.3 "per-session"): one of its
                // waiters fetches next, the others wait for that one (§8.6; the model's find).
                LocalWait::Outcome(PollOutcome::LookAgain) if self.rt.now_ms() < deadline => {}
                LocalWait::LeaderGone if self.rt.now_ms() < deadline => {
                    // Its origin failed: a copy inside stale-if-error answers without asking
                    // again; without one, this request fetches next.
                    let now = self.rt.now_ms();
                    if let Some(stale) = copy.filter(|c| c.within_sie(now)) {
                        self.stats.add(Counter::Stale);
                        return marked(from_entry(&stale, CachePhase::StaleIfError, false, now));
                    }
                }
                _ => return self.pass_degraded(origin, false, copy).await,
            }
        }
    }

    /// Straight to the origin (`BYPASS`, `detail=redis-unavailable`), with a shared copy inside
    /// stale-if-error as the answer to an origin error.
    async fn pass_degraded<O: Origin>(
        &self,
        origin: &O,
        head_only: bool,
        copy: Option<SharedEntry>,
    ) -> Served<O::Body> {
        self.stats.add(Counter::Bypass);
        self.stats.add(Counter::OriginFetch);
        let result = origin.fetch(head_only).await;
        let now = self.rt.now_ms();
        let usable = copy.filter(|c| c.within_sie(now));
        match (result, usable) {
            (Ok(response), Some(stale)) if response.status >= 500 => {
                marked(stale_for_error_status(&stale, response.status, now))
            }
            (Ok(response), _) => passed(response, CachePhase::Bypass(NoCacheReason::RedisUnavailable)),
            (Err(_), Some(stale)) => marked(from_entry(&stale, CachePhase::StaleIfError, head_only, now)),
            (Err(e), None) => origin_error_response(&e),
        }
    }

    /// Waits for this isolate's fetch of the key: woken by the result it publishes on the poll
    /// board (a wake signal of this request's own, as waiters behind a Redis lock are), with a
    /// coarse timer only to notice a fetch that ended without publishing.
    async fn wait_for_local_fill(&self, lookup: &Lookup, flight: &str, deadline: u64) -> LocalWait {
        let board = &self.isolate.polls;
        let mut waiting = board.wait(&lookup.keys.lock);
        loop {
            let fetching = self.isolate.local_fills.borrow().contains_key(flight);
            match waiting.outcome() {
                // A Redis waiter's failed poll is no news of this isolate's own fetch: keep
                // waiting for it rather than fetching beside it (§8.6; the model test's find).
                Some(PollOutcome::Unavailable) if fetching => waiting = board.wait(&lookup.keys.lock),
                Some(outcome) => return LocalWait::Outcome(outcome),
                None => {}
            }
            if !fetching {
                return LocalWait::LeaderGone;
            }
            let now = self.rt.now_ms();
            if now >= deadline {
                return LocalWait::TimedOut;
            }
            let (wake, woken) = self.rt.wake_signal();
            let _sleeping = board.sleep_on(&lookup.keys.lock, wake);
            let timer = std::pin::pin!(self.rt.sleep(LEADER_CHECK_MS.min(deadline - now)));
            let _ = futures::future::select(woken, timer).await;
        }
    }

    /// Refreshes a stale L1 copy in the background, unless this isolate already fetches it.
    fn refresh_locally<O: Origin>(&self, req: &CacheRequest, lookup: &Lookup, origin: O, stale: SharedEntry) {
        let now = self.rt.now_ms();
        let flight = self.flight_key(req);
        if self.isolate.local_fills.borrow().contains_key(&flight)
            || self.isolate.backoff.active(&lookup.keys.stale, now)
        {
            return;
        }
        let cache = self.clone();
        let (req, lookup) = (req.clone(), lookup.detached());
        self.rt.spawn(
            async move {
                if let Some(_leading) = LocalFill::lead(&cache, &flight, true) {
                    let _ =
                        cache.fetch_and_store(&req, &lookup, &origin, Vec::new(), Some(stale), true).await;
                }
            }
            .boxed_local(),
        );
    }
}

/// This isolate's one origin fetch of a key while Redis is unavailable (or its Redis lock
/// holder's, which requests that lose Redis meanwhile wait for too); dropping it (the fetch
/// finished, or its request went away) lets the next request fetch.
pub(super) struct LocalFill<'a> {
    fills: &'a std::cell::RefCell<std::collections::HashMap<String, bool>>,
    key: String,
}

impl<'a> LocalFill<'a> {
    /// Leads the fetch of the URL whose [`Cache::flight_key`] is `key`, unless one runs;
    /// `without_redis`: a degraded-mode fetch, which requests that reach Redis wait for too.
    pub(super) fn lead<S, R>(cache: &'a Cache<S, R>, key: &str, without_redis: bool) -> Option<Self> {
        let fills = &cache.isolate.local_fills;
        let mut running = fills.borrow_mut();
        if running.contains_key(key) {
            return None;
        }
        running.insert(key.to_string(), without_redis);
        Some(LocalFill { fills, key: key.to_string() })
    }
}

impl Drop for LocalFill<'_> {
    fn drop(&mut self) {
        if let Ok(mut fills) = self.fills.try_borrow_mut() {
            fills.remove(&self.key);
        }
    }
}

/// Sets `detail=redis-unavailable` in `Cache-Status`, in place of any detail the answer gave:
/// `X-Cache` keeps its meaning.
fn marked<B>(mut served: Served<B>) -> Served<B> {
    let value = served.headers.get(CACHE_STATUS).and_then(|v| v.to_str().ok()).unwrap_or("");
    if value.is_empty() {
        return served;
    }
    // One `detail` per entry (RFC 9211): that Redis was not asked is what an operator must
    // see, so it replaces a reason the answer already gave (e.g. `private`).
    let without_detail = match value.find("; detail=") {
        Some(at) => &value[..at],
        None => value,
    };
    if let Ok(marked) = HeaderValue::from_str(&format!("{without_detail}; {DETAIL}")) {
        served.headers.insert(CACHE_STATUS, marked);
    }
    served
}
