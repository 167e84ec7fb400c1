//! The cache state machine (CONTRACT §4): HIT, STALE with one background refresh, MISS with one
//! lock holder and coalesced waiters, hit-for-pass, stale-if-error, and fail-open.
//!
//! Storage layout for one variant (keys from [`crate::key::cache_keys`]):
//! - `fresh_key` = `"1"` for `ttl` seconds (the fresh marker), or `"P"` for 60 s (hit-for-pass);
//! - `stale_key` = the encoded [`CacheEntry`] for `ttl + max(swr, sie)` seconds (the stale copy,
//!   which is also the body a hit serves: the body is stored once);
//! - `lock_key` = a random owner token while one request fetches the origin;
//! - `vary_spec_key` = the `Vary` header names the URL answered with, and `version_key` = the
//!   namespace's cache version (bumped by purge-everything).
//!
//! A lookup is one round trip: `MGET version vary_spec fresh stale`, plus whatever the caller
//! adds (the session) in the same pipeline.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::future::FutureExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::cache_status::CacheStatus;
use crate::coalesce::{PollBoard, PollOutcome};
use crate::config::Config;
use crate::entry::{storable_headers, CacheEntry};
use crate::key::{cache_keys, url_id, vary_names, vary_spec_key, vary_values, version_key, CacheKeys};
use crate::lock::{lock_ttl_ms, new_lock_token, poll_gap_ms, LOCAL_CHECK_MS};
use crate::phase::{CachePhase, NoCacheReason};
use crate::policy::{origin_age, request_decision, response_decision, RequestDecision};
use crate::purge::{index_ops, stale_before_key};
use crate::rules::{CacheRules, Rule};
use crate::runtime::{Collected, Origin, OriginError, OriginResponse, Runtime};
use crate::stats::{Counter, Stats};
use crate::store::{Op, Reply, Store, StoreError};
use crate::tags::tags_from_headers;

/// Fresh-marker values.
const FRESH_MARKER: &str = "1";
const HIT_FOR_PASS_MARKER: &str = "P";
/// How long requests for a key skip the lock after an uncacheable answer.
pub const HIT_FOR_PASS_MS: u64 = 60_000;
/// Bounds the re-lookups one request may make (version or Vary changes, lock hand-overs).
const MAX_ROUNDS: u32 = 8;

/// Cache settings derived from the configuration.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub namespace: String,
    pub rules: CacheRules,
    pub max_bytes: u64,
    pub lock_wait_ms: u64,
    pub lock_ttl_ms: u64,
}

impl CacheSettings {
    pub fn from_config(config: &Config) -> Self {
        CacheSettings {
            namespace: config.namespace.clone(),
            rules: config.rules.clone(),
            max_bytes: config.cache_max_bytes,
            lock_wait_ms: config.lock_wait_ms,
            lock_ttl_ms: lock_ttl_ms(config.origin_timeout_ms),
        }
    }
}

/// What one request asks of the cache.
#[derive(Clone, Debug)]
pub struct CacheRequest {
    pub method: Method,
    /// The absolute URL as the client requested it.
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The session id, once confirmed by the store (for `Vary: Cookie`).
    pub session_id: Option<String>,
}

/// What a lookup found for one variant.
#[derive(Clone, Debug)]
pub enum Found {
    /// The fresh marker and the stale copy are both present.
    Fresh(Rc<CacheEntry>),
    /// Only the stale copy (the fresh marker expired or was soft-purged).
    Stale(Rc<CacheEntry>),
    /// The key recently produced an uncacheable answer (the stale copy may remain for sie).
    HitForPass(Option<Rc<CacheEntry>>),
    Absent,
    /// Redis failed: fail open.
    Unavailable(StoreError),
}

impl Found {
    /// The store error, when the lookup failed.
    pub fn error(&self) -> Option<&StoreError> {
        match self {
            Found::Unavailable(e) => Some(e),
            _ => None,
        }
    }
}

/// The result of [`Cache::lookup`]: the cache state and the replies to the caller's extra ops.
pub struct Lookup {
    pub keys: CacheKeys,
    pub found: Found,
    /// Replies to the `extra` ops, or the round trip's error.
    pub extra: Result<Vec<Reply>, StoreError>,
    /// The `Vary` names the keys were computed with.
    pub vary: Vec<String>,
    /// Redis HTTP requests this lookup cost.
    pub round_trips: u32,
}

/// A response to send, with the phase it came from.
pub struct Served<B> {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: ServedBody<B>,
    pub phase: CachePhase,
}

pub enum ServedBody<B> {
    Bytes(Vec<u8>),
    Stream(B),
    Empty,
}

/// Per-isolate cache state: hints that save round trips, and waiters' shared polls.
#[derive(Default)]
pub struct IsolateCache {
    /// The namespace's cache version as last read.
    version: Cell<u64>,
    /// url_id → Vary names, as last read: lets the first lookup target the right variant.
    vary_hints: RefCell<HashMap<String, Vec<String>>>,
    /// Waiters' shared knowledge of lock holders' results.
    polls: PollBoard,
    /// fresh keys with a background refresh started by this isolate.
    refreshing: RefCell<HashSet<String>>,
}

const MAX_VARY_HINTS: usize = 10_000;

/// The cache, for one request. Cheap to build: shares the isolate's state.
pub struct Cache<S, R> {
    store: S,
    rt: R,
    settings: Rc<CacheSettings>,
    isolate: Rc<IsolateCache>,
    stats: Stats,
}

impl<S, R> Clone for Cache<S, R>
where
    S: Clone,
    R: Clone,
{
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            rt: self.rt.clone(),
            settings: self.settings.clone(),
            isolate: self.isolate.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    pub fn new(
        store: S,
        rt: R,
        settings: Rc<CacheSettings>,
        isolate: Rc<IsolateCache>,
        stats: Stats,
    ) -> Self {
        Cache { store, rt, settings, isolate, stats }
    }

    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    pub fn rule_for(&self, uri: &Uri) -> Option<&Rule> {
        self.settings.rules.matching(uri.path())
    }

    /// Whether the request is looked up at all (method, Authorization, rules, reserved paths).
    pub fn decide(&self, req: &CacheRequest) -> RequestDecision {
        if req.uri.path().starts_with("/__edge/") {
            return RequestDecision::Bypass(NoCacheReason::Admin);
        }
        request_decision(&req.method, &req.headers, self.rule_for(&req.uri))
    }

    fn keys_for(&self, req: &CacheRequest, version: u64, vary: &[String]) -> CacheKeys {
        let values = vary_values(&req.headers, vary, req.session_id.as_deref());
        cache_keys(&self.settings.namespace, version, &req.uri, &values)
    }

    /// Looks the request up in one round trip, with `extra` ops (the session) riding in the same
    /// pipeline. Only when the namespace version or the URL's `Vary` names turned out different
    /// from this isolate's hints does it look again (without the extras).
    pub async fn lookup(&self, req: &CacheRequest, extra: &[Op]) -> Lookup {
        let url = url_id(&req.uri);
        let spec_key = vary_spec_key(&self.settings.namespace, &url);
        let mut version = self.isolate.version.get();
        let mut vary = self.vary_hint(&url);
        let mut extra_replies = None;
        let mut round_trips = 0;
        loop {
            let keys = self.keys_for(req, version, &vary);
            let mut ops = vec![Op::MGet(vec![
                version_key(&self.settings.namespace),
                stale_before_key(&self.settings.namespace),
                spec_key.clone(),
                keys.fresh.clone(),
                keys.stale.clone(),
            ])];
            if extra_replies.is_none() {
                ops.extend_from_slice(extra);
            }
            round_trips += 1;
            let replies = self.store.run(&ops).await;
            let (mget, rest) = match replies {
                Err(e) => {
                    let extra = extra_replies.unwrap_or_else(|| Err(e.clone()));
                    return Lookup { keys, found: Found::Unavailable(e), extra, vary, round_trips };
                }
                Ok(mut replies) => {
                    if replies.is_empty() {
                        let e = StoreError::Malformed("empty pipeline answer".into());
                        let extra = extra_replies.unwrap_or_else(|| Err(e.clone()));
                        return Lookup { keys, found: Found::Unavailable(e), extra, vary, round_trips };
                    }
                    let rest = replies.split_off(1);
                    (replies.pop(), rest)
                }
            };
            if extra_replies.is_none() {
                extra_replies = Some(Ok(rest));
            }
            let extra_out = || extra_replies.clone().unwrap_or_else(|| Ok(Vec::new()));
            let values = match mget {
                Some(Reply::Array(values)) if values.len() == 5 => values,
                Some(Reply::Error(e)) => {
                    let e = StoreError::Malformed(e);
                    return Lookup {
                        keys,
                        found: Found::Unavailable(e),
                        extra: extra_out(),
                        vary,
                        round_trips,
                    };
                }
                _ => {
                    let e = StoreError::Malformed("MGET answered the wrong shape".into());
                    return Lookup {
                        keys,
                        found: Found::Unavailable(e),
                        extra: extra_out(),
                        vary,
                        round_trips,
                    };
                }
            };
            let mut values = values.into_iter();
            let stored_version = values.next().and_then(reply_u64).unwrap_or(0);
            let stale_before = values.next().and_then(reply_u64).unwrap_or(0);
            let stored_vary =
                values.next().and_then(Reply::into_bytes).map(|b| parse_vary_spec(&b)).unwrap_or_default();
            let fresh = values.next().and_then(Reply::into_bytes);
            let stale = values.next().and_then(Reply::into_bytes);

            let version_changed = stored_version != version;
            let vary_changed = stored_vary != vary;
            if version_changed {
                self.isolate.version.set(stored_version);
                version = stored_version;
            }
            if vary_changed {
                self.remember_vary(&url, &stored_vary);
                vary = stored_vary;
            }
            if (version_changed || vary_changed) && round_trips < MAX_ROUNDS {
                continue;
            }
            let found = match found_from(fresh.as_deref(), stale.as_deref()) {
                // A soft purge of everything: entries stored before it count as stale.
                Found::Fresh(entry) if entry.stored_at_ms < stale_before => Found::Stale(entry),
                found => found,
            };
            return Lookup { keys, found, extra: extra_out(), vary, round_trips };
        }
    }

    fn vary_hint(&self, url: &str) -> Vec<String> {
        self.isolate.vary_hints.borrow().get(url).cloned().unwrap_or_default()
    }

    fn remember_vary(&self, url: &str, names: &[String]) {
        let mut hints = self.isolate.vary_hints.borrow_mut();
        if names.is_empty() {
            hints.remove(url);
            return;
        }
        if hints.len() >= MAX_VARY_HINTS {
            hints.clear();
        }
        hints.insert(url.to_string(), names.to_vec());
    }

    /// Answers a request that is looked up, from what `lookup` found, going to `origin` as the
    /// state machine says.
    pub async fn serve<O: Origin>(&self, req: &CacheRequest, lookup: Lookup, origin: O) -> Served<O::Body> {
        let head_only = req.method == Method::HEAD;
        let deadline = self.rt.now_ms().saturating_add(self.settings.lock_wait_ms);
        let mut lookup = lookup;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let now = self.rt.now_ms();
            match lookup.found.clone() {
                Found::Unavailable(_) => {
                    return self.pass(&origin, head_only, NoCacheReason::RedisUnavailable).await;
                }
                Found::Fresh(entry) => {
                    self.stats.add(Counter::Hit);
                    return from_entry(&entry, CachePhase::Hit, head_only, now);
                }
                Found::Stale(entry) if servable_stale(&entry, now) => {
                    self.stats.add(Counter::Stale);
                    self.refresh_in_background(req, &lookup, origin.clone(), entry.stored_at_ms);
                    return from_entry(&entry, CachePhase::Stale, head_only, now);
                }
                Found::HitForPass(stale) => {
                    return self.fetch_unlocked(req, &lookup, &origin, head_only, stale).await;
                }
                Found::Stale(_) | Found::Absent if head_only => {
                    // A HEAD miss goes to the origin as HEAD and fills nothing.
                    return self.pass_as(&origin, true, CachePhase::Miss).await;
                }
                Found::Stale(stale) => {
                    let stale = Some(stale);
                    match self.fill(req, &lookup, &origin, stale.clone(), deadline).await {
                        Fill::Served(served) => return served,
                        Fill::LookAgain if rounds < MAX_ROUNDS => {}
                        Fill::LookAgain => {
                            return self.pass(&origin, false, NoCacheReason::LockTimeout).await
                        }
                    }
                }
                Found::Absent => match self.fill(req, &lookup, &origin, None, deadline).await {
                    Fill::Served(served) => return served,
                    Fill::LookAgain if rounds < MAX_ROUNDS => {}
                    Fill::LookAgain => return self.pass(&origin, false, NoCacheReason::LockTimeout).await,
                },
            }
            lookup = self.lookup(req, &[]).await;
        }
    }

    /// Takes the lock and fetches, or waits for whoever holds it.
    async fn fill<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        stale: Option<Rc<CacheEntry>>,
        deadline: u64,
    ) -> Fill<O::Body> {
        let Ok(token) = new_lock_token() else {
            return Fill::Served(self.pass(origin, false, NoCacheReason::RedisUnavailable).await);
        };
        let take = Op::Set {
            key: lookup.keys.lock.clone(),
            value: token.clone(),
            ttl_ms: Some(self.settings.lock_ttl_ms.max(1)),
            nx: true,
        };
        match self.take_lock(&lookup.keys, take, stale.as_ref().map(|e| e.stored_at_ms)).await {
            Err(_) => Fill::Served(self.pass(origin, false, NoCacheReason::RedisUnavailable).await),
            Ok((true, Some(entry))) => {
                // Someone stored the entry between our lookup and our lock: serve it.
                self.release(&lookup.keys, &token);
                self.stats.add(Counter::Hit);
                Fill::Served(from_entry(&entry, CachePhase::Hit, false, self.rt.now_ms()))
            }
            Ok((true, None)) => {
                let served = self.fetch_as_holder(req, lookup, origin, &token, stale, false).await;
                Fill::Served(served)
            }
            Ok((false, _)) => {
                self.stats.add(Counter::LockWait);
                match self.wait_for_holder(lookup, deadline).await {
                    PollOutcome::Ready(entry) => {
                        self.stats.add(Counter::Hit);
                        Fill::Served(from_entry(&entry, CachePhase::Collapsed, false, self.rt.now_ms()))
                    }
                    PollOutcome::HitForPass => Fill::Served(
                        self.pass_as(origin, false, CachePhase::MissUnstored(NoCacheReason::HitForPass))
                            .await,
                    ),
                    PollOutcome::LookAgain => Fill::LookAgain,
                    PollOutcome::TimedOut => Fill::Served(
                        self.pass_as(origin, false, CachePhase::MissUnstored(NoCacheReason::LockTimeout))
                            .await,
                    ),
                    PollOutcome::Unavailable => {
                        Fill::Served(self.pass(origin, false, NoCacheReason::RedisUnavailable).await)
                    }
                }
            }
        }
    }

    /// `SET lock NX PX` and, in the same pipeline, a fresh look at the entry: a holder that
    /// stored and released between our lookup and our lock must not cost a second origin
    /// fetch. Answers whether the lock was taken, and a fresh entry if there is one.
    /// `seen_stored_at` is the store time of the entry the lookup saw, if any: only a newer one
    /// counts (an entry soft-purged by a stale-before time still has its fresh marker).
    async fn take_lock(
        &self,
        keys: &CacheKeys,
        take: Op,
        seen_stored_at: Option<u64>,
    ) -> Result<(bool, Option<Rc<CacheEntry>>), StoreError> {
        let replies = self.store.run(&[take, Op::MGet(vec![keys.fresh.clone(), keys.stale.clone()])]).await?;
        let mut replies = replies.into_iter();
        let taken = match replies.next() {
            Some(reply) if reply.is_ok() => true,
            Some(Reply::Nil) => false,
            _ => return Err(StoreError::Malformed("SET NX answered neither OK nor nil".into())),
        };
        let fresh = match replies.next() {
            Some(Reply::Array(values)) if values.len() == 2 => {
                let mut values = values.into_iter();
                let fresh = values.next().and_then(Reply::into_bytes);
                let stale = values.next().and_then(Reply::into_bytes);
                match found_from(fresh.as_deref(), stale.as_deref()) {
                    Found::Fresh(entry) if seen_stored_at.is_none_or(|seen| entry.stored_at_ms > seen) => {
                        Some(entry)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        Ok((taken, fresh))
    }

    fn release(&self, keys: &CacheKeys, token: &str) {
        self.spawn_ops(vec![Op::CompareAndDelete { key: keys.lock.clone(), token: token.to_string() }]);
    }

    /// Waits for the lock holder's result until `deadline`. Polls back off; while another
    /// waiter of this isolate polls the same key, this one reads its outcome instead of Redis.
    async fn wait_for_holder(&self, lookup: &Lookup, deadline: u64) -> PollOutcome {
        let started = self.rt.now_ms();
        let spec_key = vary_spec_key(&self.settings.namespace, &lookup.keys.url_id);
        loop {
            let now = self.rt.now_ms();
            if now >= deadline {
                return PollOutcome::TimedOut;
            }
            self.rt.sleep(LOCAL_CHECK_MS.min(deadline - now)).await;
            if let Some(outcome) = self.isolate.polls.outcome_since(&lookup.keys.lock, started) {
                return outcome;
            }
            let now = self.rt.now_ms();
            let gap = poll_gap_ms(now.saturating_sub(started));
            let Some(claim) = self.isolate.polls.try_claim(&lookup.keys.lock, now, gap) else {
                continue;
            };
            let outcome = poll_once(&self.store, &lookup.keys, &spec_key, &lookup.vary).await;
            claim.finish(self.rt.now_ms(), outcome.clone());
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    /// The lock holder's work: fetch, decide, store (in the background), answer.
    async fn fetch_as_holder<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        token: &str,
        stale: Option<Rc<CacheEntry>>,
        background: bool,
    ) -> Served<O::Body> {
        let release = Op::CompareAndDelete { key: lookup.keys.lock.clone(), token: token.to_string() };
        // Client-facing counters mirror what clients were told; a background refresh is only
        // an origin fetch.
        let count = |counter| {
            if !background {
                self.stats.add(counter);
            }
        };
        self.stats.add(Counter::OriginFetch);
        let response = origin.fetch(false).await;
        let now = self.rt.now_ms();
        let usable_stale = stale.filter(|s| s.within_sie(now));
        let response = match response {
            Err(e) => {
                self.spawn_ops(vec![release]);
                if let Some(stale) = usable_stale {
                    count(Counter::Stale);
                    return from_entry(&stale, CachePhase::StaleIfError, false, now);
                }
                count(Counter::Miss);
                return origin_error_response(&e);
            }
            Ok(r) => r,
        };
        if response.status >= 500 {
            // Transient: no hit-for-pass, just let the next request (or waiter) try.
            self.spawn_ops(vec![release]);
            if let Some(stale) = usable_stale {
                count(Counter::Stale);
                let mut served = from_entry(&stale, CachePhase::StaleIfError, false, now);
                // Say which origin answer made the stale copy necessary (RFC 9211 fwd-status).
                let status = CacheStatus::new(CachePhase::StaleIfError)
                    .with_ttl(stale.fresh_remaining_secs(now))
                    .with_fwd_status(response.status);
                if let Ok(value) = HeaderValue::from_str(&status.header_value()) {
                    served.headers.insert(HeaderName::from_static("cache-status"), value);
                }
                return served;
            }
            count(Counter::Miss);
            return passed(response, CachePhase::MissUnstored(NoCacheReason::Status));
        }
        count(Counter::Miss);
        self.store_or_mark(req, lookup, origin, response, vec![release]).await
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
    ) -> Served<O::Body> {
        let rule = self.rule_for(&req.uri);
        let decision = response_decision(response.status, &response.headers, rule, self.settings.max_bytes)
            .and_then(|freshness| session_changes(&response.headers).map(|_| freshness))
            .and_then(|freshness| vary_names(&response.headers).map(|names| (freshness, names)));
        let (freshness, names) = match decision {
            Err(reason) => {
                let mut ops = vec![self.hit_for_pass_op(&lookup.keys)];
                ops.extend(finally);
                self.spawn_ops(ops);
                self.isolate.polls.publish(&lookup.keys.lock, self.rt.now_ms(), PollOutcome::HitForPass);
                return passed(response, CachePhase::MissUnstored(reason));
            }
            Ok(ok) => ok,
        };
        let OriginResponse { status, headers, body } = response;
        let body = match origin.collect(body, self.settings.max_bytes).await {
            Ok(Collected::Whole(bytes)) => bytes,
            Ok(Collected::TooLarge(rest)) => {
                let mut ops = vec![self.hit_for_pass_op(&lookup.keys)];
                ops.extend(finally);
                self.spawn_ops(ops);
                self.isolate.polls.publish(&lookup.keys.lock, self.rt.now_ms(), PollOutcome::HitForPass);
                return passed(
                    OriginResponse { status, headers, body: rest },
                    CachePhase::MissUnstored(NoCacheReason::TooLarge),
                );
            }
            Err(e) => {
                self.spawn_ops(finally);
                return origin_error_response(&e);
            }
        };
        let now = self.rt.now_ms();
        let mut tags = tags_from_headers(&headers);
        if let Some(rule) = rule {
            tags.extend(rule.tags.iter().cloned());
        }
        tags.sort();
        tags.dedup();
        let entry = CacheEntry {
            status,
            headers: storable_headers(&headers),
            body,
            stored_at_ms: now,
            initial_age_secs: origin_age(&headers),
            freshness,
            tags,
            vary: names.clone(),
        };
        // The variant key follows the response's own Vary names, which may differ from the
        // names the lookup guessed.
        let keys = if names == lookup.vary {
            lookup.keys.clone()
        } else {
            self.keys_for(req, self.isolate.version.get(), &names)
        };
        let mut ops = self.entry_ops(&keys, req.uri.path(), &entry, &names);
        ops.extend(finally);
        self.spawn_ops(ops);
        // This isolate's waiters need not wait for Redis to hear of it.
        let outcome = if names == lookup.vary {
            PollOutcome::Ready(Rc::new(entry.clone()))
        } else {
            PollOutcome::LookAgain
        };
        self.isolate.polls.publish(&lookup.keys.lock, now, outcome);
        if names != lookup.vary {
            self.remember_vary(&lookup.keys.url_id, &names);
        }
        let mut served = from_entry(&entry, CachePhase::Miss, req.method == Method::HEAD, now);
        strip_cache_headers(&mut served.headers);
        served
    }

    fn entry_ops(&self, keys: &CacheKeys, path: &str, entry: &CacheEntry, names: &[String]) -> Vec<Op> {
        let fresh_ms = u64::from(entry.freshness.ttl) * 1_000;
        let stale_ms = u64::from(entry.freshness.stale_copy_ttl()) * 1_000;
        let mut ops = Vec::with_capacity(4 + entry.tags.len());
        if fresh_ms > 0 {
            ops.push(Op::Set {
                key: keys.fresh.clone(),
                value: FRESH_MARKER.into(),
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
        let spec_key = vary_spec_key(&self.settings.namespace, &keys.url_id);
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

    fn hit_for_pass_op(&self, keys: &CacheKeys) -> Op {
        Op::Set {
            key: keys.fresh.clone(),
            value: HIT_FOR_PASS_MARKER.into(),
            ttl_ms: Some(HIT_FOR_PASS_MS),
            nx: false,
        }
    }

    /// Hit-for-pass: straight to the origin, no lock; a now-cacheable answer is stored again.
    async fn fetch_unlocked<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: &O,
        head_only: bool,
        stale: Option<Rc<CacheEntry>>,
    ) -> Served<O::Body> {
        if head_only {
            return self.pass_as(origin, true, CachePhase::MissUnstored(NoCacheReason::HitForPass)).await;
        }
        self.stats.add(Counter::OriginFetch);
        let now = self.rt.now_ms();
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
                let mut served = self.store_or_mark(req, lookup, origin, response, Vec::new()).await;
                if let CachePhase::MissUnstored(_) = served.phase {
                    // Still uncacheable: report why the lock was skipped.
                    served.phase = CachePhase::MissUnstored(NoCacheReason::HitForPass);
                    set_cache_headers(&mut served.headers, served.phase, None);
                }
                served
            }
        }
    }

    /// STALE: one background refresh per key, guarded by the Redis lock (and, within this
    /// isolate, by a set so that other stale requests do not even try the lock).
    fn refresh_in_background<O: Origin>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        origin: O,
        seen_stored_at: u64,
    ) {
        if !self.isolate.refreshing.borrow_mut().insert(lookup.keys.fresh.clone()) {
            return;
        }
        let cache = self.clone();
        let req = req.clone();
        let lookup = Lookup {
            keys: lookup.keys.clone(),
            found: Found::Absent,
            extra: Ok(Vec::new()),
            vary: lookup.vary.clone(),
            round_trips: 0,
        };
        self.rt.spawn(
            async move {
                let fresh_key = lookup.keys.fresh.clone();
                if let Ok(token) = new_lock_token() {
                    let take = Op::Set {
                        key: lookup.keys.lock.clone(),
                        value: token.clone(),
                        ttl_ms: Some(cache.settings.lock_ttl_ms.max(1)),
                        nx: true,
                    };
                    match cache.take_lock(&lookup.keys, take, Some(seen_stored_at)).await {
                        // Already refreshed by someone else since our lookup.
                        Ok((true, Some(_))) => cache.release(&lookup.keys, &token),
                        Ok((true, None)) => {
                            let _ = cache.fetch_as_holder(&req, &lookup, &origin, &token, None, true).await;
                        }
                        _ => {}
                    }
                }
                cache.isolate.refreshing.borrow_mut().remove(&fresh_key);
            }
            .boxed_local(),
        );
    }

    /// Straight to the origin, nothing looked up or stored: `X-Cache: BYPASS`.
    pub async fn pass<O: Origin>(
        &self,
        origin: &O,
        head_only: bool,
        reason: NoCacheReason,
    ) -> Served<O::Body> {
        self.pass_as(origin, head_only, CachePhase::Bypass(reason)).await
    }

    async fn pass_as<O: Origin>(&self, origin: &O, head_only: bool, phase: CachePhase) -> Served<O::Body> {
        self.stats.add(match phase {
            CachePhase::Bypass(_) => Counter::Bypass,
            _ => Counter::Miss,
        });
        self.stats.add(Counter::OriginFetch);
        match origin.fetch(head_only).await {
            Ok(response) => passed(response, phase),
            Err(e) => origin_error_response(&e),
        }
    }

    fn spawn_ops(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let store = self.store.clone();
        self.rt.spawn(
            async move {
                // Failures here are fail-open by design: the entry is simply not stored and
                // an unreleased lock expires by its TTL.
                let _ = store.run(&ops).await;
            }
            .boxed_local(),
        );
    }
}

enum Fill<B> {
    Served(Served<B>),
    LookAgain,
}

/// One poll: reads the fresh marker, the stale copy, the lock and the Vary spec. `None` while
/// the holder is still at work.
async fn poll_once<S: Store>(
    store: &S,
    keys: &CacheKeys,
    spec_key: &str,
    vary: &[String],
) -> Option<PollOutcome> {
    let ops =
        [Op::MGet(vec![keys.fresh.clone(), keys.stale.clone(), keys.lock.clone(), spec_key.to_string()])];
    let values = match store.run(&ops).await {
        Err(_) => return Some(PollOutcome::Unavailable),
        Ok(mut replies) => match replies.pop() {
            Some(Reply::Array(values)) if values.len() == 4 => values,
            _ => return Some(PollOutcome::Unavailable),
        },
    };
    let mut values = values.into_iter();
    let fresh = values.next().and_then(Reply::into_bytes);
    let stale = values.next().and_then(Reply::into_bytes);
    let lock = values.next().and_then(Reply::into_bytes);
    let spec = values.next().and_then(Reply::into_bytes).map(|b| parse_vary_spec(&b)).unwrap_or_default();
    match found_from(fresh.as_deref(), stale.as_deref()) {
        Found::Fresh(entry) => return Some(PollOutcome::Ready(entry)),
        Found::HitForPass(_) => return Some(PollOutcome::HitForPass),
        _ => {}
    }
    if lock.is_none() || spec != vary {
        return Some(PollOutcome::LookAgain);
    }
    None
}

/// Whether a stale copy may be served at once (with a background refresh). An entry that is
/// stale only because it was soft-purged (still fresh by its own clock) is served only when it
/// has a stale-while-revalidate window, as Fastly's soft purge does; otherwise it is refetched
/// behind the lock.
fn servable_stale(entry: &CacheEntry, now_ms: u64) -> bool {
    if entry.fresh_remaining_secs(now_ms) > 0 {
        entry.freshness.swr > 0
    } else {
        entry.within_swr(now_ms)
    }
}

fn reply_u64(reply: Reply) -> Option<u64> {
    match reply {
        Reply::Int(i) => u64::try_from(i).ok(),
        other => other.into_bytes().and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok()),
    }
}

fn parse_vary_spec(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut names: Vec<String> =
        text.split(',').map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect();
    names.sort();
    names.dedup();
    names
}

fn decode_entry(stored: &[u8]) -> Option<Rc<CacheEntry>> {
    let raw = STANDARD.decode(stored).ok()?;
    CacheEntry::decode(&raw).ok().map(Rc::new)
}

/// Interprets a fresh marker and a stale copy. An entry that does not decode is absent (and
/// will be replaced by the next fill).
fn found_from(fresh: Option<&[u8]>, stale: Option<&[u8]>) -> Found {
    let entry = stale.and_then(decode_entry);
    match (fresh, entry) {
        (Some(m), entry) if m == HIT_FOR_PASS_MARKER.as_bytes() => Found::HitForPass(entry),
        (Some(_), Some(entry)) => Found::Fresh(entry),
        (None, Some(entry)) => Found::Stale(entry),
        (_, None) => Found::Absent,
    }
}

/// A response built from a stored entry.
fn from_entry<B>(entry: &CacheEntry, phase: CachePhase, head_only: bool, now_ms: u64) -> Served<B> {
    let mut headers = HeaderMap::new();
    for (name, value) in &entry.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    if let Ok(age) = HeaderValue::from_str(&entry.age_secs(now_ms).to_string()) {
        headers.insert(http::header::AGE, age);
    }
    set_cache_headers(&mut headers, phase, Some(entry.fresh_remaining_secs(now_ms)));
    let body = if head_only { ServedBody::Empty } else { ServedBody::Bytes(entry.body.clone()) };
    Served { status: entry.status, headers, body, phase }
}

/// A response passed from the origin unstored.
fn passed<B>(response: OriginResponse<B>, phase: CachePhase) -> Served<B> {
    let OriginResponse { status, mut headers, body } = response;
    strip_cache_headers(&mut headers);
    set_cache_headers(&mut headers, phase, None);
    Served { status, headers, body: ServedBody::Stream(body), phase }
}

/// 504 for a timeout, 502 otherwise, with a short text body.
pub fn origin_error_response<B>(error: &OriginError) -> Served<B> {
    let (status, text) = match error {
        OriginError::Timeout => (504, "edge-cache: origin timed out\n"),
        OriginError::Unreachable(_) => (502, "edge-cache: origin unreachable\n"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let phase = CachePhase::Bypass(NoCacheReason::OriginError);
    set_cache_headers(&mut headers, phase, None);
    Served { status, headers, body: ServedBody::Bytes(text.as_bytes().to_vec()), phase }
}

/// Sets `X-Cache` and `Cache-Status` for `phase`.
pub fn set_cache_headers(headers: &mut HeaderMap, phase: CachePhase, ttl: Option<i64>) {
    let mut status = CacheStatus::new(phase);
    if let Some(ttl) = ttl {
        status = status.with_ttl(ttl);
    }
    headers.insert(HeaderName::from_static("x-cache"), HeaderValue::from_static(phase.x_cache()));
    if let Ok(value) = HeaderValue::from_str(&status.header_value()) {
        headers.insert(HeaderName::from_static("cache-status"), value);
    }
}

/// Removes the origin's cache-control-plane headers from a client response.
fn strip_cache_headers(headers: &mut HeaderMap) {
    for name in ["cache-tag", "surrogate-key", "edge-purge-tags"] {
        headers.remove(name);
    }
}

/// A response carrying session directives changes a cookie: never stored.
fn session_changes(headers: &HeaderMap) -> Result<(), NoCacheReason> {
    let sets_session = headers.keys().any(|name| {
        let name = name.as_str();
        name.eq_ignore_ascii_case("edge-session-set")
            || name.eq_ignore_ascii_case("edge-session-rotate")
            || name.eq_ignore_ascii_case("edge-session-destroy")
    });
    if sets_session {
        Err(NoCacheReason::SetCookie)
    } else {
        Ok(())
    }
}
