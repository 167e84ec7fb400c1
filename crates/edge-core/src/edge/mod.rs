//! One request through edge-cache, top to bottom (docs §4.1): reserved paths, the session
//! cookie, one Redis round trip for the cache entry and the session, the state machine's
//! answer, the origin's session directives, background work.
//!
//! Generic over the store and the [`Host`], so the native tests drive every decision made
//! here; the worker only converts its runtime's types. Nothing on this path panics: every
//! failure becomes a response (502, 504, 503 from the admin API) and a log line.

mod host;
mod request_url;
mod reserved;
mod session_outage;
mod session_step;
mod upgrade;
mod write;

use std::rc::Rc;

use futures::FutureExt;
use http::{HeaderMap, Method, Uri};

pub use self::host::{BodyRead, CryptoError, Host, HostOrigin, LogLevel, OriginRequest};
pub use self::request_url::RequestUrl;
pub use self::reserved::own_text;

use crate::conditional;
use crate::config::{Config, OriginUrl};
use crate::engine::{Cache, CacheRequest, CacheSettings, IsolateCache, Served, TierSettings};
use crate::hygiene::{forwarded_headers, is_websocket_upgrade, strip_conditionals};
use crate::phase::{CachePhase, NoCacheReason};
use crate::policy::RequestDecision;
use crate::rules;
use crate::session;
use crate::stats::Stats;
use crate::store::Store;

/// A request as the platform handed it over.
pub struct EdgeRequest<B> {
    pub method: Method,
    /// The absolute URL, as the client requested it.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<B>,
}

/// What lives as long as the isolate: the validated configuration, the store, the cache's
/// hints and waiters' shared polls, the request counters. Built once, shared by every request.
pub struct Edge<S> {
    pub config: Rc<Config>,
    pub store: S,
    /// Sessions on a store of their own (`SESSION_REDIS_REST_URL`); `None`: on `store`.
    pub session_store: Option<S>,
    pub cache_settings: Rc<CacheSettings>,
    pub cache_state: Rc<IsolateCache>,
    pub stats: Stats,
    /// Sessions destroyed while their store was down, until it answers (docs §5.12).
    pub revocations: Rc<session::Revocations>,
}

impl<S: Store + Clone + 'static> Edge<S> {
    pub fn new(config: Rc<Config>, store: S) -> Self {
        let tiers = TierSettings::from_config(&config);
        Edge {
            cache_settings: Rc::new(CacheSettings::from_config(&config)),
            config,
            store,
            cache_state: Rc::new(IsolateCache::new(tiers)),
            stats: Stats::default(),
            session_store: None,
            revocations: Rc::default(),
        }
    }

    /// Puts sessions on `store` instead of the cache's (docs §5.10).
    pub fn with_session_store(mut self, store: S) -> Self {
        self.session_store = Some(store);
        self
    }

    /// The store that holds sessions: their own, or the cache's.
    pub fn sessions(&self) -> &S {
        self.session_store.as_ref().unwrap_or(&self.store)
    }

    /// The cache for one request.
    pub fn cache<R: crate::runtime::Runtime>(&self, rt: R) -> Cache<S, R> {
        Cache::new(
            self.store.clone(),
            rt,
            self.cache_settings.clone(),
            self.cache_state.clone(),
            self.stats.clone(),
        )
    }

    /// Answers one request.
    pub async fn handle<H: Host>(&self, host: &H, request: EdgeRequest<H::RequestBody>) -> Served<H::Body> {
        let config = &self.config;
        let url = RequestUrl::parse(&request.url);

        // `/__edge/` is reserved: answered here, never forwarded.
        if reserved::is_reserved(url.path()) {
            return self.answer_reserved(host, request, url.path()).await;
        }

        // The request as the origin will see it (spoofable and hop-by-hop headers gone, our
        // cookie removed): what a cached variant is keyed on.
        let cacheable_method = matches!(request.method, Method::GET | Method::HEAD);
        let mut forwarded = forwarded_headers(&request.headers, url.scheme(), url.host(), cacheable_method);
        if let Some(settings) = &config.session {
            session::prepare_origin_request(&mut forwarded, &session::SessionState::None, settings);
        }
        let uri: Option<Uri> = url.as_str().parse().ok();
        let target = target_url(config, &url);

        // The session cookie: a forged one costs no Redis lookup (a fallback cookie is opened
        // first, docs §5.11).
        let session_lookup = match &config.session {
            Some(s) => Some(session_step::begin(host, &request.headers, s, &config.namespace).await),
            None => None,
        };
        let session_ops = session_lookup.as_ref().map(|l| l.ops()).unwrap_or_default();
        let carrying = session_lookup.as_ref().is_some_and(|l| l.carries());

        let cache = self.cache(host.clone());
        let mut cache_request = CacheRequest {
            method: request.method.clone(),
            uri: uri.clone().unwrap_or_default(),
            headers: forwarded.clone(),
            session_id: None,
            session_unconfirmed: false,
            rule: Default::default(),
        };
        // A WebSocket handshake is forwarded as one, whatever else the request carries.
        let websocket = request.method == Method::GET && is_websocket_upgrade(&request.headers);
        let decision = match uri {
            Some(_) if websocket => RequestDecision::Bypass(NoCacheReason::Upgrade),
            Some(_) => cache.decide(&cache_request, &request.headers),
            None => RequestDecision::Bypass(NoCacheReason::UnparsableUrl),
        };

        // A rule with `strip_query` keeps what its key leaves out of the query from the origin.
        let target = match decision {
            RequestDecision::Bypass(NoCacheReason::UnparsableUrl) => target,
            _ if cacheable_method => config.rules.origin_url(cache.rule(&cache_request), &target),
            _ => target,
        };

        // One round trip: the cache entry and the session together; then the state machine.
        let (served, session_state) = match decision {
            RequestDecision::Lookup => {
                cache_request.session_id = session_lookup.as_ref().and_then(|l| l.candidate_id());
                let (lookup, replies, answered) =
                    self.lookup_with_session(&cache, &cache_request, &session_ops).await;
                let state = self.resolve_session(host, session_lookup, replies, answered).await;
                let lookup =
                    session_step::confirm_variant(&cache, &mut cache_request, lookup, state.as_ref()).await;
                session_step::prepare_origin_headers(&mut forwarded, state.as_ref(), config);
                // A fill answers everyone: never with what one client's validators earn. A range
                // request never fills (it is answered from a stored copy or passed on whole), so
                // its If-Range and validators go with it.
                if !request.headers.contains_key(http::header::RANGE) {
                    strip_conditionals(&mut forwarded);
                }
                let origin = HostOrigin::new(host.clone(), target, forwarded, config.origin_timeout_ms);
                (cache.serve(&cache_request, lookup, origin).await, state)
            }
            RequestDecision::Bypass(reason) => {
                let replies = if session_ops.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.sessions().run(&session_ops).await
                };
                let answered = !session_ops.is_empty() && replies.is_ok();
                let state = self.resolve_session(host, session_lookup, replies, answered).await;
                session_step::prepare_origin_headers(&mut forwarded, state.as_ref(), config);
                let served = if websocket && reason == NoCacheReason::Upgrade {
                    self.forward_upgrade(host, target, &request.headers, forwarded).await
                } else if cacheable_method {
                    let origin = HostOrigin::new(host.clone(), target, forwarded, config.origin_timeout_ms);
                    cache.pass(&origin, cache_request.method == Method::HEAD, reason).await
                } else {
                    let write = write::Write {
                        method: cache_request.method.clone(),
                        target,
                        headers: forwarded,
                        body: request.body,
                    };
                    self.forward_write(host, write, &cache_request.uri, reason).await
                };
                (served, state)
            }
        };

        // A client's validators and range, answered from a stored copy.
        let mut served = served;
        if served.phase.served_from_cache() {
            conditional::answer_from_entry(&cache_request.method, &request.headers, &mut served);
        }

        // A rule's browser TTL, on what the cache served or stored (docs §3.7).
        let browser_ttl = cache.rule(&cache_request).and_then(|rule| rule.browser_ttl);
        if let Some(ttl) =
            browser_ttl.filter(|_| served.phase.served_from_cache() || served.phase == CachePhase::Miss)
        {
            rules::browser::apply_browser_ttl(&mut served.headers, ttl);
        }

        // The origin's session directives (stripped from the response in every case).
        self.apply_session(host, &mut served, session_state.as_ref(), carrying).await;

        // Counters go to Redis in the background, batched per isolate.
        self.flush_stats(host, false);
        served
    }

    /// Sends this isolate's counters to the store in the background, if a flush is due (or
    /// `force`d).
    fn flush_stats<H: Host>(&self, host: &H, force: bool) {
        if let Some(ops) = self.stats.take_flush(&self.config.namespace, host.now_ms(), force) {
            self.spawn_store_ops(host, ops, "stats flush");
        }
    }

    /// Runs `ops` after the response; a failure is logged as `what`.
    fn spawn_store_ops<H: Host>(&self, host: &H, ops: Vec<crate::store::Op>, what: &'static str) {
        let store = self.store.clone();
        let log = host.clone();
        host.spawn(
            async move {
                if let Err(e) = store.run(&ops).await {
                    log.log(LogLevel::Error, &format!("edge-cache: {what} failed: {e}"));
                }
            }
            .boxed_local(),
        );
    }
}

/// The origin URL for this request: `ORIGIN_URL` + path and query, or the request's own URL.
pub fn target_url(config: &Config, url: &RequestUrl) -> String {
    match &config.origin {
        OriginUrl::Fixed(base) => format!("{base}{}", url.path_and_query()),
        OriginUrl::RequestUrl => url.as_str().to_string(),
    }
}
