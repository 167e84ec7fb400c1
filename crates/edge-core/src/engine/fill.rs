//! Filling a variant (docs §4.5): take the lock or wait for whoever holds it; the holder
//! fetches, decides, stores (or marks hit-for-pass) in one background pipeline, and answers.

use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::FutureExt;
use http::Method;

use super::lock::{release_op, LockAttempt};
use super::lookup::{fresh_marker, Lookup, HIT_FOR_PASS_MARKER};
use super::poll_board::PollOutcome;
use super::revalidate::validators_of;
use super::served::{
    from_entry, origin_error_response, passed, set_cache_headers, stale_for_error_status, Served,
};
use super::{authorized, may_answer, Cache, CacheRequest, SharedEntry};
use crate::cache_control::CacheControl;
use crate::entry::{storable_headers, CacheEntry};
use crate::hygiene::{carries_session_directive, is_reserved};
use crate::key::{normalized_path, vary_names, CacheKeys};
use crate::phase::{CachePhase, NoCacheReason};
use crate::policy::{
    error_status_passes, origin_age, response_decision, reusable_with_authorization, Freshness,
};
use crate::purge::{index_ops, indexed_prefixes, prune_index_sample};
use crate::runtime::{Collected, Origin, OriginError, OriginResponse, Runtime};
use crate::stats::Counter;
use crate::store::{Op, Store};
use crate::tags::tags_from_headers;

/// One fill in this many prunes a sample of an index set.
const PRUNE_ONE_IN: u16 = 32;

/// How long requests for a key skip the lock after an uncacheable answer.
pub const HIT_FOR_PASS_MS: u64 = 60_000;

pub(super) enum Fill<B> {
    Served(Served<B>),
    /// The holder left without a usable result, or the variant changed: look up again.
    LookAgain,
}

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// Takes the lock and fetches, or waits for whoever holds it.
    pub(super) async fn fill<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        stale: Option<SharedEntry>,
        deadline: u64,
    ) -> Fill<O::Body> {
        if let Some(served) = self.behind_degraded_fetch(req, lookup, deadline).await {
            return Fill::Served(served);
        }
        let attempt = self.try_lock(lookup, stale.as_ref().map(|e| e.stored_at_ms)).await;
        let served = match attempt {
            Err(_) => self.degraded(req, lookup, origin, false).await,
            Ok(LockAttempt::AlreadyFilled(entry)) if !may_answer(req, &entry) => {
                self.pass(origin, false, NoCacheReason::Authorization).await
            }
            Ok(LockAttempt::AlreadyFilled(entry)) => {
                self.stats.add(Counter::Hit);
                from_entry(&entry, CachePhase::Hit, false, self.rt.now_ms())
            }
            Ok(LockAttempt::Taken(token)) => {
                let flight = self.flight_key(req);
                if self.isolate.local_fills.borrow().get(&flight) == Some(&true) {
                    // A degraded fetch of this isolate began while we took the lock: it is the
                    // isolate's one fetch (§8.6; the model test's find). The lock goes back.
                    self.release(&lookup.keys, &token);
                    match self.behind_degraded_fetch(req, lookup, deadline).await {
                        Some(served) => return Fill::Served(served),
                        None => return Fill::LookAgain,
                    }
                }
                // Requests of this isolate that lose Redis meanwhile wait for this fetch.
                let _local = super::degraded::LocalFill::lead(self, &flight, false);
                self.hold(req, lookup, origin, token, stale).await
            }
            Ok(LockAttempt::VersionChanged) => return Fill::LookAgain,
            Ok(LockAttempt::Held) => {
                self.stats.add(Counter::LockWait);
                match self.wait_for_holder(lookup, deadline).await {
                    PollOutcome::Ready(entry) if !may_answer(req, &entry) => {
                        self.pass(origin, false, NoCacheReason::Authorization).await
                    }
                    PollOutcome::Ready(entry) => {
                        self.stats.add(Counter::Hit);
                        from_entry(&entry, CachePhase::Collapsed, false, self.rt.now_ms())
                    }
                    PollOutcome::LookAgain => return Fill::LookAgain,
                    PollOutcome::HitForPass => {
                        let phase = CachePhase::MissUnstored(NoCacheReason::HitForPass);
                        self.pass_as(origin, false, phase).await
                    }
                    PollOutcome::TimedOut => {
                        let phase = CachePhase::MissUnstored(NoCacheReason::LockTimeout);
                        self.pass_as(origin, false, phase).await
                    }
                    PollOutcome::Unavailable => self.degraded(req, lookup, origin, false).await,
                }
            }
        };
        Fill::Served(served)
    }

    /// The lock holder's work, run as background work of the request (`waitUntil`) from before
    /// the origin fetch is sent: a client that goes away does not cancel the fill its waiters
    /// (here and in other isolates) depend on. The request takes the answer over a channel.
    async fn hold<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        token: String,
        stale: Option<SharedEntry>,
    ) -> Served<O::Body> {
        let (answer, answered) = futures::channel::oneshot::channel();
        let cache = self.clone();
        let (req, lookup, origin) = (req.clone(), lookup.detached(), origin.clone());
        self.rt.spawn(
            async move {
                let work = cache.fetch_as_holder(&req, &lookup, &origin, &token, stale, false);
                let served = cache.renewing(&lookup.keys, &token, work).await;
                let _ = answer.send(served);
            }
            .boxed_local(),
        );
        match answered.await {
            Ok(served) => served,
            Err(_) => {
                origin_error_response(&OriginError::Unreachable("the fill ended without an answer".into()))
            }
        }
    }

    /// The lock holder's work ([`Cache::fetch_and_store`], releasing the lock with the store).
    pub(super) async fn fetch_as_holder<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        token: &str,
        stale: Option<SharedEntry>,
        background: bool,
    ) -> Served<O::Body> {
        let release = release_op(&lookup.keys, token);
        self.fetch_and_store(req, lookup, origin, vec![release], stale, background).await
    }

    /// Fetch, decide, store (with `finally` in the same background pipeline), answer: the lock
    /// holder's work, and degraded mode's one fetch per key per isolate (nothing to release).
    /// `background` marks a refresh nobody waits on: it counts only as an origin fetch, since
    /// client-facing counters mirror what clients were told.
    pub(super) async fn fetch_and_store<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        finally: Vec<Op>,
        stale: Option<SharedEntry>,
        background: bool,
    ) -> Served<O::Body> {
        let started = self.rt.now_ms();
        let count = |counter| {
            if !background {
                self.stats.add(counter);
            }
        };
        self.stats.add(Counter::OriginFetch);
        // A stale copy with a validator is revalidated rather than fetched whole.
        let validators = stale.as_deref().and_then(validators_of);
        let response = match &validators {
            Some(validators) => origin.revalidate(validators).await,
            None => origin.fetch(false).await,
        };
        let now = self.rt.now_ms();
        if let (Ok(response), Some(stale)) = (&response, &stale) {
            if response.status == 304 && validators.is_some() {
                count(Counter::Hit);
                return self.freshen(req, lookup, stale, &response.headers, finally, started);
            }
        }
        let usable_stale = stale.filter(|s| s.within_sie(now));
        let response = match response {
            Err(e) => {
                self.spawn_ops(finally);
                if let Some(stale) = usable_stale {
                    self.isolate.backoff.note_failure(&lookup.keys.stale, now);
                    count(Counter::Stale);
                    return from_entry(&stale, CachePhase::StaleIfError, false, now);
                }
                count(Counter::Miss);
                return origin_error_response(&e);
            }
            Ok(response) => response,
        };
        if response.status >= 500 {
            // An error never replaces a copy inside its stale-if-error window.
            if let Some(stale) = usable_stale {
                self.spawn_ops(finally);
                self.isolate.backoff.note_failure(&lookup.keys.stale, now);
                count(Counter::Stale);
                return stale_for_error_status(&stale, response.status, now);
            }
            // Without freshness of its own (or a rule's status_ttl) it is transient: no
            // hit-for-pass, the next request (or waiter) tries again. With it, it is stored like
            // any answer.
            if error_status_passes(response.status, &response.headers, self.rule(req)) {
                self.spawn_ops(finally);
                count(Counter::Miss);
                return passed(response, CachePhase::MissUnstored(NoCacheReason::Status));
            }
        }
        count(Counter::Miss);
        if response.status == 304 {
            // An answer to validators the fill never sent says nothing about the URL's
            // cacheability: no hit-for-pass, the next request tries again.
            self.spawn_ops(finally);
            return passed(response, CachePhase::MissUnstored(NoCacheReason::Status));
        }
        self.store_or_mark(req, lookup, origin, response, finally, started).await
    }

    /// Decides whether `response` is stored; stores it (or the hit-for-pass marker) with
    /// `finally` ops in one background pipeline, and answers it.
    async fn store_or_mark<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        response: OriginResponse<O::Body>,
        finally: Vec<Op>,
        started: u64,
    ) -> Served<O::Body> {
        let (freshness, names) = match self.storable(req, &response) {
            Ok(storable) => storable,
            Err(reason) if reason == NoCacheReason::PerSession || authorized(req) => {
                // Says nothing about what the URL answers anyone else: no hit-for-pass.
                self.spawn_ops(finally);
                self.isolate.polls.publish(&lookup.keys.lock, self.rt.now_ms(), PollOutcome::LookAgain);
                return passed(response, CachePhase::MissUnstored(reason));
            }
            Err(reason) => return self.mark_hit_for_pass(lookup, response, reason, finally),
        };
        let OriginResponse { status, headers, body } = response;
        let body = match origin.collect(body, self.settings.max_bytes).await {
            Ok(Collected::Whole(bytes)) => bytes,
            Ok(Collected::TooLarge(rest)) => {
                let response = OriginResponse { status, headers, body: rest };
                return self.mark_hit_for_pass(lookup, response, NoCacheReason::TooLarge, finally);
            }
            Err(e) => {
                self.spawn_ops(finally);
                return origin_error_response(&e);
            }
        };
        let now = self.rt.now_ms();
        let mut tags = tags_from_headers(&headers);
        if let Some(rule) = self.rule(req) {
            tags.extend(rule.tags.iter().cloned());
        }
        tags.sort();
        tags.dedup();
        let entry = CacheEntry {
            status,
            headers: storable_headers(&headers),
            body,
            stored_at_ms: now,
            initial_age_secs: origin_age(&headers, now / 1_000),
            freshness,
            tags,
            vary: names.clone(),
        };
        // The variant key follows the response's own Vary names, which may differ from the
        // names the lookup guessed.
        let same_variant = names == lookup.vary;
        let keys =
            if same_variant { lookup.keys.clone() } else { self.keys_for(req, lookup.version, &names) };
        let path = normalized_path(req.uri.path());
        let fill_ms = Some(now.saturating_sub(started));
        let mut ops = self.entry_ops(&keys, &path, &entry, &names, fill_ms);
        ops.extend(finally);
        self.spawn_ops(ops);
        self.maybe_prune(&path);
        let entry = Rc::new(entry);
        self.keep_stored_in_l1(req, &keys, &entry, fill_ms, lookup);
        // This isolate's waiters need not wait for Redis to hear of it.
        let outcome = if same_variant { PollOutcome::Ready(entry.clone()) } else { PollOutcome::LookAgain };
        self.isolate.polls.publish(&lookup.keys.lock, now, outcome);
        if !same_variant {
            self.remember_vary(&lookup.keys.url_id, &names);
        }
        let mut served = from_entry(&entry, CachePhase::Miss, req.method == Method::HEAD, now);
        crate::hygiene::strip_tag_headers(&mut served.headers);
        served
    }

    /// `CACHE_HEURISTIC_PERCENT`, except for a request that carried a session, cookies or
    /// `Authorization`: a guess at freshness never applies to what may be personal.
    pub(super) fn heuristic_for(&self, req: &CacheRequest) -> u64 {
        let personal =
            req.session_id.is_some() || req.headers.contains_key(http::header::COOKIE) || authorized(req);
        if personal {
            0
        } else {
            self.settings.heuristic_percent
        }
    }

    /// Whether the response may be stored: its freshness and `Vary` names, or why not.
    fn storable<B>(
        &self,
        req: &CacheRequest,
        response: &OriginResponse<B>,
    ) -> Result<(Freshness, Vec<String>), NoCacheReason> {
        let rule = self.rule(req);
        let now_secs = self.rt.now_ms() / 1_000;
        if req.session_unconfirmed {
            return Err(NoCacheReason::PerSession);
        }
        if authorized(req) && !reusable_with_authorization(&response.headers) {
            return Err(NoCacheReason::Authorization);
        }
        let heuristic = self.heuristic_for(req);
        let freshness = response_decision(
            response.status,
            &response.headers,
            rule,
            self.settings.max_bytes,
            now_secs,
            heuristic,
        )
        .map_err(|reason| match reason {
            // Only withheld because the request is personal: says nothing about the URL for
            // others, so no hit-for-pass.
            NoCacheReason::NoFreshness if heuristic == 0 && self.settings.heuristic_percent > 0 => {
                NoCacheReason::PerSession
            }
            reason => reason,
        })?;
        if carries_session_directive(&response.headers) {
            return Err(NoCacheReason::SetCookie);
        }
        let names = vary_names(&response.headers)?;
        if req.session_id.is_some() && !keyed_on_session(&names) && !explicitly_shared(&response.headers) {
            return Err(NoCacheReason::PerSession);
        }
        Ok((freshness, names))
    }

    /// An uncacheable answer: mark the key hit-for-pass (with `finally`), tell this isolate's
    /// waiters to go to the origin, and pass the response on.
    fn mark_hit_for_pass<B>(
        &self,
        lookup: &Lookup,
        response: OriginResponse<B>,
        reason: NoCacheReason,
        finally: Vec<Op>,
    ) -> Served<B> {
        let mut ops = vec![hit_for_pass_op(&lookup.keys)];
        ops.extend(finally);
        self.spawn_ops(ops);
        self.isolate.polls.publish(&lookup.keys.lock, self.rt.now_ms(), PollOutcome::HitForPass);
        passed(response, CachePhase::MissUnstored(reason))
    }

    /// One fill in [`PRUNE_ONE_IN`] samples one of its path's prefix sets for dead members, in
    /// the background (docs §6.5).
    fn maybe_prune(&self, path: &str) {
        let Some(random) = self.rt.random_u64() else { return };
        let dice = random.to_le_bytes();
        if u16::from(dice[0]) % PRUNE_ONE_IN != 0 {
            return;
        }
        let prefixes: Vec<&str> = indexed_prefixes(path).collect();
        // The other byte picks the set: every indexed level gets pruned in turn.
        let Some(prefix) = prefixes.get(usize::from(dice[1]) % prefixes.len().max(1)) else { return };
        let set_key = self.settings.namespace.prefix_set(prefix);
        let store = self.store.clone();
        self.rt.spawn(
            async move {
                let _ = prune_index_sample(&store, &set_key).await;
            }
            .boxed_local(),
        );
    }

    /// The pipeline that stores `entry`: fresh marker, stale copy, Vary spec and purge indexes.
    pub(super) fn entry_ops(
        &self,
        keys: &CacheKeys,
        path: &str,
        entry: &CacheEntry,
        names: &[String],
        fill_ms: Option<u64>,
    ) -> Vec<Op> {
        let fresh_ms = u64::from(entry.freshness.ttl) * 1_000;
        // A copy with a validator is kept a while past its stale windows, to be revalidated (a
        // 304 costs the origin no body) rather than fetched whole: as long as it was fresh,
        // between a minute and an hour.
        let keep_secs = if validators_of(entry).is_some() { entry.freshness.ttl.clamp(60, 3_600) } else { 0 };
        let stale_ms = u64::from(entry.freshness.stale_copy_ttl().saturating_add(keep_secs)) * 1_000;
        let mut ops = Vec::with_capacity(4 + entry.tags.len());
        if fresh_ms > 0 {
            ops.push(Op::Set {
                key: keys.fresh.clone(),
                value: fresh_marker(fill_ms),
                ttl_ms: Some(fresh_ms),
                nx: false,
            });
        } else {
            ops.push(Op::Del(vec![keys.fresh.clone()]));
        }
        ops.push(Op::Set {
            key: keys.stale.clone(),
            value: STANDARD.encode(entry.encode()),
            ttl_ms: Some(stale_ms.max(1)),
            nx: false,
        });
        let spec_key = self.settings.namespace.vary_spec(&keys.url_id);
        if names.is_empty() {
            ops.push(Op::Del(vec![spec_key]));
        } else {
            ops.push(Op::Set {
                key: spec_key,
                value: names.join(","),
                ttl_ms: Some(stale_ms.max(1)),
                nx: false,
            });
        }
        ops.extend(index_ops(&self.settings.namespace, keys, path, &entry.tags, stale_ms));
        ops
    }

    /// Hit-for-pass: straight to the origin, no lock; a now-cacheable answer is stored again.
    pub(super) async fn fetch_unlocked<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        head_only: bool,
        stale: Option<SharedEntry>,
    ) -> Served<O::Body> {
        if head_only {
            return self.pass_as(origin, true, CachePhase::MissUnstored(NoCacheReason::HitForPass)).await;
        }
        self.stats.add(Counter::OriginFetch);
        let now = self.rt.now_ms();
        let started = now;
        match origin.fetch(false).await {
            Err(e) => match stale.filter(|s| s.within_sie(now)) {
                Some(stale) => from_entry(&stale, CachePhase::StaleIfError, false, now),
                None => origin_error_response(&e),
            },
            Ok(response) if response.status >= 500 => {
                passed(response, CachePhase::MissUnstored(NoCacheReason::HitForPass))
            }
            Ok(response) => {
                self.stats.add(Counter::Miss);
                let mut served = self.store_or_mark(req, lookup, origin, response, Vec::new(), started).await;
                if let CachePhase::MissUnstored(_) = served.phase {
                    // Still uncacheable: report why the lock was skipped.
                    served.phase = CachePhase::MissUnstored(NoCacheReason::HitForPass);
                    set_cache_headers(&mut served.headers, served.phase, None);
                }
                served
            }
        }
    }
}

/// Whether a variant keyed on these `Vary` names belongs to one session alone.
pub(super) fn keyed_on_session(vary: &[String]) -> bool {
    vary.iter().any(|name| name == "cookie" || is_reserved(name))
}

/// Whether the origin itself said a shared cache may give this response to anyone.
fn explicitly_shared(headers: &http::HeaderMap) -> bool {
    let cc = CacheControl::for_this_cache(headers);
    cc.public || cc.s_maxage.is_some()
}

fn hit_for_pass_op(keys: &CacheKeys) -> Op {
    Op::Set {
        key: keys.fresh.clone(),
        value: HIT_FOR_PASS_MARKER.into(),
        ttl_ms: Some(HIT_FOR_PASS_MS),
        nx: false,
    }
}

#[cfg(test)]
#[path = "fill_tests.rs"]
mod tests;
