//! The cache state machine (docs §4): HIT, STALE with one background refresh, MISS with one
//! lock holder and coalesced waiters, hit-for-pass, stale-if-error, and fail-open.
//!
//! One file per phase of a request's life:
//! - [`lookup`]: one round trip reads the variant's keys and says what it [`Found`];
//! - [`lock`]: `SET NX` plus a re-read, answered as a [`lock::LockAttempt`];
//! - [`fill`]: the lock holder fetches, decides and stores (or marks hit-for-pass);
//! - [`wait`]: waiters poll for the holder's result through the isolate's [`poll_board`];
//! - [`refresh`]: a stale answer's background refresh;
//! - [`served`]: the responses a phase answers with;
//! - [`early_refresh`]: hot entries refreshed before they expire (XFetch);
//! - [`degraded`]: Redis unavailable: the isolate's L1 and one origin fetch per key;
//! - [`error_backoff`]: a failing origin asked once a second per key while a copy answers.
//!
//! Storage layout for one variant (key shapes in [`crate::keyspace`]):
//! - `fresh` = `"1"` for `ttl` seconds (the fresh marker), or `"P"` for 60 s (hit-for-pass);
//! - `stale` = the encoded [`CacheEntry`] for `ttl + max(swr, sie)` seconds (the stale copy,
//!   which is also the body a hit serves: the body is stored once);
//! - `lock` = a random owner token while one request fetches the origin;
//! - `vary` = the `Vary` header names the URL answered with, and `version` = the namespace's
//!   cache version (bumped by purge-everything).

mod degraded;
mod early_refresh;
mod error_backoff;
mod fill;
pub(crate) mod lock;
mod lookup;
pub(crate) mod poll_board;
mod refresh;
mod revalidate;
mod served;
#[cfg(test)]
pub(crate) mod testing;
mod wait;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use futures::future::FutureExt;
use http::{HeaderMap, Method, Uri};

use crate::config::Config;
use crate::entry::CacheEntry;
use crate::key::{cache_keys_for, normalized_path, url_id_of, vary_values, CacheKeys};
use crate::keyspace::Namespace;
use crate::l1::L1;
use crate::phase::{CachePhase, NoCacheReason};
use crate::policy::{request_decision, reusable_with_authorization, RequestDecision};
use crate::rules::{CacheRules, RequestView, Rule};
use crate::runtime::{Origin, Runtime};
use crate::stats::{Counter, Stats};
use crate::store::{Op, Store};

pub(crate) use self::early_refresh::DEFAULT_EARLY_REFRESH_BETA;
pub use self::fill::HIT_FOR_PASS_MS;
pub use self::lookup::{Found, Lookup};
pub use self::served::{origin_error_response, set_cache_headers, Served, ServedBody};

use self::fill::Fill;
use self::lock::lock_ttl_ms;
use self::poll_board::PollBoard;
use self::refresh::servable_stale;
use self::served::{from_entry, passed};

/// Bounds the re-lookups one request may make (version or Vary changes, lock hand-overs).
const MAX_ROUNDS: u32 = 8;

/// Cache settings derived from the configuration.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub namespace: Namespace,
    pub rules: CacheRules,
    pub max_bytes: u64,
    pub lock_wait_ms: u64,
    pub lock_ttl_ms: u64,
    /// `CACHE_HEURISTIC_PERCENT` (0: off).
    pub heuristic_percent: u64,
}

impl CacheSettings {
    pub fn from_config(config: &Config) -> Self {
        CacheSettings {
            namespace: config.namespace.clone(),
            rules: config.rules.clone(),
            max_bytes: config.cache_max_bytes,
            lock_wait_ms: config.lock_wait_ms,
            lock_ttl_ms: lock_ttl_ms(config.origin_timeout_ms),
            heuristic_percent: config.heuristic_percent,
        }
    }
}

/// What one request asks of the cache.
#[derive(Clone, Debug)]
pub struct CacheRequest {
    pub method: Method,
    /// The absolute URL as the client requested it.
    pub uri: Uri,
    /// The headers as forwarded to the origin, before the session's own: what `Vary` keys on.
    pub headers: HeaderMap,
    /// The session id, once confirmed by the store (for `Vary: Cookie` and `Edge-Session*`).
    pub session_id: Option<String>,
    /// The request names a session the store could not be read for: the origin was told who
    /// it is, so what it answers may be theirs, and nothing from it is stored.
    pub session_unconfirmed: bool,
    /// The `CACHE_RULES` rule governing the request, matched on first use ([`Cache::rule`]).
    pub rule: MatchedRule,
}

/// The index of the rule a request matched, remembered after the first match: the key, the
/// policy and the tags all ask, and the answer cannot change during the request.
#[derive(Clone, Debug, Default)]
pub struct MatchedRule(Cell<Option<Option<usize>>>);

/// The isolate's two-tier settings (docs §1): `CACHE_L1_BYTES` (0: no L1), `CACHE_L1_TTL_MS`
/// and `CACHE_EARLY_REFRESH_BETA` (0: no early refresh).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierSettings {
    pub l1_bytes: u64,
    pub l1_ttl_ms: u64,
    pub early_refresh_beta: f64,
}

impl TierSettings {
    pub fn from_config(config: &Config) -> Self {
        TierSettings {
            l1_bytes: config.l1_bytes,
            l1_ttl_ms: config.l1_ttl_ms,
            early_refresh_beta: config.early_refresh_beta,
        }
    }
}

/// Per-isolate cache state: hints that save round trips, waiters' shared polls, and the L1.
/// `Default` has no L1 and no early refresh.
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
    /// The isolate's copies of hot shared entries (docs §4.15).
    l1: L1,
    /// The namespace's soft-purge-everything time as last read: a change empties the L1.
    stale_before: Cell<u64>,
    /// URLs with an origin fetch in flight in this isolate (degraded mode's, or a Redis
    /// lock holder's), by [`Cache::flight_key`], each with whether it runs without Redis: the
    /// isolate-local single flight of degraded mode.
    local_fills: RefCell<HashMap<String, bool>>,
    early_refresh_beta: f64,
    /// Keys whose origin failed a moment ago: their stale-if-error copy answers meanwhile.
    backoff: error_backoff::ErrorBackoff,
}

impl IsolateCache {
    pub fn new(tiers: TierSettings) -> Self {
        IsolateCache {
            l1: L1::new(tiers.l1_bytes, tiers.l1_ttl_ms),
            early_refresh_beta: tiers.early_refresh_beta,
            ..IsolateCache::default()
        }
    }

    /// Drops what a purge or a write's invalidation made through this isolate names from its
    /// L1 (docs §8.1); URLs through `rules`' key derivation, as in Redis.
    pub fn purged(&self, target: &crate::purge::PurgeTarget, rules: &CacheRules) {
        let url_ids: Vec<String> = match target {
            crate::purge::PurgeTarget::Urls(urls) => urls
                .iter()
                .filter_map(|url| url.parse::<Uri>().ok())
                .flat_map(|uri| rules.url_ids(&uri))
                .collect(),
            _ => Vec::new(),
        };
        self.l1.purge(target, &url_ids);
    }

    /// A hard purge of everything through this isolate set the cache version to `version`:
    /// lookups here use it at once, so that a fill in flight, which stores under the version
    /// its lookup read (and keeps that copy in the L1), is never served here (docs §8.1; the
    /// model test's find).
    pub fn purged_everything(&self, version: u64) {
        self.version.set(version);
        self.l1.clear();
    }

    /// Items and bytes in the L1.
    pub fn l1_usage(&self) -> (usize, u64) {
        self.l1.usage()
    }
}

/// The cache, for one request. Cheap to build: shares the isolate's state.
pub struct Cache<S, R> {
    store: S,
    rt: R,
    settings: Rc<CacheSettings>,
    isolate: Rc<IsolateCache>,
    stats: Stats,
}

impl<S: Clone, R: Clone> Clone for Cache<S, R> {
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

    /// The rule governing `req` (docs §3.2): matched on its host, its normalised path (the
    /// key's), its method and its headers as forwarded, once per request.
    pub fn rule(&self, req: &CacheRequest) -> Option<&Rule> {
        let index = match req.rule.0.get() {
            Some(index) => index,
            None => {
                let host = req.uri.host().unwrap_or("").to_ascii_lowercase();
                let path = normalized_path(req.uri.path());
                let view =
                    RequestView { method: &req.method, host: &host, path: &path, headers: &req.headers };
                let index = self.settings.rules.first_match(&view).map(|(index, _)| index);
                req.rule.0.set(Some(index));
                index
            }
        };
        index.and_then(|index| self.settings.rules.get(index))
    }

    /// Whether the request is looked up at all (method, rules, reserved paths, and the
    /// client's own `Upgrade: websocket`; a `Range` and an `Authorization` are looked up).
    pub fn decide(&self, req: &CacheRequest, client_headers: &HeaderMap) -> RequestDecision {
        if req.uri.path().starts_with("/__edge/") {
            return RequestDecision::Bypass(NoCacheReason::Admin);
        }
        request_decision(&req.method, client_headers, self.rule(req))
    }

    /// The variant's keys: the key URL and parts the request's rule derives (docs §3.6), and
    /// the values of the `Vary` names.
    pub(super) fn keys_for(&self, req: &CacheRequest, version: u64, vary: &[String]) -> CacheKeys {
        let values = vary_values(&req.headers, vary, req.session_id.as_deref());
        let rule = self.rule(req);
        let url = self.settings.rules.key_url(rule, &req.uri);
        let parts = match (req.rule.0.get().flatten(), rule) {
            (Some(index), Some(rule)) => rule.key_parts(index, &req.headers),
            _ => Vec::new(),
        };
        cache_keys_for(&self.settings.namespace, version, &url, &parts, &values)
    }

    /// The request's `url_id`: its key URL's, which URL purges derive the same way.
    fn url_id_for(&self, req: &CacheRequest) -> String {
        url_id_of(&self.settings.rules.key_url(self.rule(req), &req.uri))
    }

    /// Answers a request that is looked up, from what `lookup` found, going to `origin` as the
    /// state machine says.
    pub async fn serve<O: Origin>(&self, req: &CacheRequest, lookup: Lookup, origin: O) -> Served<O::Body> {
        let head_only = req.method == Method::HEAD;
        if req.headers.contains_key(http::header::RANGE) {
            return self.serve_range(req, lookup, origin).await;
        }
        let deadline = self.rt.now_ms().saturating_add(self.settings.lock_wait_ms);
        let mut lookup = lookup;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let now = self.rt.now_ms();
            let stale = match lookup.found.clone() {
                Found::Unavailable(_) => return self.degraded(req, &lookup, &origin, head_only).await,
                Found::Fresh(entry) | Found::Stale(entry) if !may_answer(req, &entry) => {
                    return self.pass(&origin, head_only, NoCacheReason::Authorization).await;
                }
                Found::Fresh(entry) => {
                    self.stats.add(Counter::Hit);
                    self.maybe_refresh_early(req, &lookup, &origin, &entry);
                    return from_entry(&entry, CachePhase::Hit, head_only, now);
                }
                Found::Stale(entry) if servable_stale(&entry, now) => {
                    self.stats.add(Counter::Stale);
                    self.refresh_in_background(req, &lookup, origin.clone(), entry.clone());
                    return from_entry(&entry, CachePhase::Stale, head_only, now);
                }
                Found::HitForPass(stale) => {
                    return self.fetch_unlocked(req, &lookup, &origin, head_only, stale).await;
                }
                Found::Stale(_) | Found::Absent if head_only => {
                    // A HEAD miss goes to the origin as HEAD and fills nothing.
                    return self.pass_as(&origin, true, CachePhase::Miss).await;
                }
                Found::Stale(stale)
                    if stale.within_sie(now) && self.isolate.backoff.active(&lookup.keys.stale, now) =>
                {
                    self.stats.add(Counter::Stale);
                    return from_entry(&stale, CachePhase::StaleIfError, false, now);
                }
                Found::Stale(stale) => Some(stale),
                Found::Absent => None,
            };
            match self.fill(req, &lookup, &origin, stale, deadline).await {
                Fill::Served(served) => return served,
                Fill::LookAgain if rounds < MAX_ROUNDS => {}
                Fill::LookAgain => return self.pass(&origin, false, NoCacheReason::LockTimeout).await,
            }
            lookup = self.lookup(req, &[]).await;
        }
    }

    /// A `Range` request: answered from a stored copy when there is a usable one (the range is
    /// cut by the caller, [`crate::conditional`]); otherwise forwarded with its `Range` as a
    /// pass, filling nothing: a partial answer is never stored, and one client's range should
    /// not make it wait for a whole body (docs §6.1).
    ///
    /// A stale copy starts no refresh from here: this request's origin carries its `Range`, and
    /// the next whole request refreshes the copy.
    async fn serve_range<O: Origin>(&self, req: &CacheRequest, lookup: Lookup, origin: O) -> Served<O::Body> {
        let now = self.rt.now_ms();
        let head_only = req.method == Method::HEAD;
        match lookup.found {
            Found::Fresh(entry) | Found::Stale(entry) if !may_answer(req, &entry) => {
                self.pass(&origin, head_only, NoCacheReason::Authorization).await
            }
            Found::Fresh(entry) => {
                self.stats.add(Counter::Hit);
                from_entry(&entry, CachePhase::Hit, head_only, now)
            }
            Found::Stale(entry) if servable_stale(&entry, now) => {
                self.stats.add(Counter::Stale);
                from_entry(&entry, CachePhase::Stale, head_only, now)
            }
            _ => self.pass(&origin, head_only, NoCacheReason::Range).await,
        }
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

    /// Runs `ops` after the response, ignoring failures: fail-open by design (an entry that is
    /// not stored is fetched again; an unreleased lock expires by its TTL).
    fn spawn_ops(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let store = self.store.clone();
        self.rt.spawn(
            async move {
                let _ = store.run(&ops).await;
            }
            .boxed_local(),
        );
    }
}

/// A stored entry shared between the phases of a request (and the isolate's waiters).
type SharedEntry = Rc<CacheEntry>;

/// Whether `entry` may answer `req`: always, except that a request with `Authorization` takes
/// only what the origin marked shareable for it (RFC 9111 §3.5, docs §2.1).
fn may_answer(req: &CacheRequest, entry: &CacheEntry) -> bool {
    !authorized(req) || reusable_with_authorization(&entry.header_map())
}

/// The request carries the client's `Authorization` (forwarded to the origin as it came).
fn authorized(req: &CacheRequest) -> bool {
    req.headers.contains_key(http::header::AUTHORIZATION)
}
