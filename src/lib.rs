//! edge-cache's worker: a thin adapter from Cloudflare's runtime to `edge-core`.
//!
//! This file is the request path, top to bottom: configuration, per-isolate state, reserved
//! paths, the session cookie, one Redis round trip for the cache entry and the session, the
//! state machine's answer, the origin's session directives, background work. Everything it
//! calls is either a one-concept module beside it or lives in `edge-core`, which is tested
//! natively. Nothing on this path unwraps or panics: every failure becomes a response (500
//! config error, 502, 504) and a log line.

mod admin;
mod body;
mod cache_origin;
mod edge_paths;
mod env_config;
mod headers;
mod health;
mod isolate;
mod origin;
mod reply;
mod request_url;
mod respond;
mod worker_runtime;

use edge_core::engine::{set_cache_headers, CacheRequest, Served, ServedBody};
use edge_core::phase::{CachePhase, NoCacheReason};
use edge_core::policy::RequestDecision;
use edge_core::purge::{invalidation_after_write, purge, purge_tags_header, PurgeRequest, PurgeTarget};
use edge_core::runtime::Runtime;
use edge_core::session::{self, SessionState};
use edge_core::stats::Counter;
use edge_core::store::Store;
use futures::FutureExt;
use http::{HeaderValue, Method, Uri};
use web_sys::{Request, Response};
use worker::{event, Context, Env};

use crate::cache_origin::CacheOrigin;
use crate::headers::to_header_map;
use crate::request_url::RequestUrl;
use crate::worker_runtime::WorkerRuntime;

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    match handle(request, &env, ctx).await {
        Ok(response) => Ok(response),
        Err(error) => {
            // A JS exception from constructing a request or response: nothing the client did.
            worker::console_error!("edge-cache: internal error: {error}");
            reply::text(500, "edge-cache: internal error\n")
        }
    }
}

async fn handle(request: Request, env: &Env, ctx: Context) -> worker::Result<Response> {
    // 1. Configuration: read and validated once per isolate. A bad value answers every
    //    request with a 500 naming the variable.
    let config = match env_config::load(env) {
        Ok(config) => config,
        Err(error) => return reply::config_error(&error),
    };

    // 2. Per-isolate state: the store, the cache's hints, the counters.
    let isolate = isolate::get(&config);
    let rt = WorkerRuntime::new(ctx);

    // 3. `/__edge/` is reserved: answered here, never forwarded.
    let url = RequestUrl::parse(&request.url());
    if edge_paths::is_reserved(url.path()) {
        return edge_paths::answer(&request, url.path(), &isolate, &config, &rt).await;
    }

    // 4. The request in the core's terms; spoofable session headers go first.
    let method = Method::from_bytes(request.method().as_bytes()).unwrap_or(Method::POST);
    let client_headers = to_header_map(&request.headers());
    let mut forwarded = origin::forwarded_headers(&client_headers, &url);
    let uri: Option<Uri> = url.as_str().parse().ok();

    // 5. The session cookie: a forged one costs no Redis lookup.
    let session_lookup =
        config.session.as_ref().map(|s| session::begin(&client_headers, s, &config.namespace));
    let session_ops = session_lookup.as_ref().map(|l| l.ops()).unwrap_or_default();

    let cache = isolate.cache(rt.clone());
    let target = origin::target_url(&config, &url);
    let mut cache_request = CacheRequest {
        method: method.clone(),
        uri: uri.clone().unwrap_or_default(),
        headers: client_headers,
        session_id: None,
    };
    let decision = match uri {
        Some(_) => cache.decide(&cache_request),
        None => RequestDecision::Bypass(NoCacheReason::Method),
    };

    // 6. One round trip: the cache entry and the session together; then the state machine.
    let (served, session_state) = match decision {
        RequestDecision::Lookup => {
            cache_request.session_id = session_lookup.as_ref().and_then(|l| l.candidate_id());
            let mut lookup = cache.lookup(&cache_request, &session_ops).await;
            let state =
                resolve_session(session_lookup, lookup.extra.as_deref().map_err(|e| e.clone()), rt.now_ms());
            let confirmed = state.as_ref().and_then(|s| s.session_id()).map(str::to_string);
            if confirmed != cache_request.session_id {
                cache_request.session_id = confirmed;
                if lookup.vary.iter().any(|name| name == "cookie") {
                    lookup = cache.lookup(&cache_request, &[]).await;
                }
            }
            prepare_session_headers(&mut forwarded, state.as_ref(), &config);
            let cache_origin = CacheOrigin::new(target, forwarded, config.origin_timeout_ms);
            (cache.serve(&cache_request, lookup, cache_origin).await, state)
        }
        RequestDecision::Bypass(reason) => {
            let replies =
                if session_ops.is_empty() { Ok(Vec::new()) } else { isolate.store.run(&session_ops).await };
            let state =
                resolve_session(session_lookup, replies.as_deref().map_err(|e| e.clone()), rt.now_ms());
            prepare_session_headers(&mut forwarded, state.as_ref(), &config);
            let served = if matches!(method, Method::GET | Method::HEAD) {
                let cache_origin = CacheOrigin::new(target, forwarded, config.origin_timeout_ms);
                cache.pass(&cache_origin, method == Method::HEAD, reason).await
            } else {
                forward_write(
                    &request,
                    &target,
                    &forwarded,
                    &config,
                    &isolate,
                    &rt,
                    &cache_request.uri,
                    reason,
                )
                .await
            };
            (served, state)
        }
    };

    // 7. The origin's session directives (stripped from the response in every case).
    let mut served = served;
    apply_session(&mut served, session_state.as_ref(), &config, &isolate, &rt).await;

    // 8. Counters go to Redis in the background, batched per isolate.
    if let Some(ops) = isolate.stats.take_flush(&config.namespace, rt.now_ms(), false) {
        let store = isolate.store.clone();
        rt.spawn(
            async move {
                let _ = store.run(&ops).await;
            }
            .boxed_local(),
        );
    }

    respond::to_response(served)
}

fn resolve_session(
    lookup: Option<session::SessionLookup>,
    replies: Result<&[edge_core::store::Reply], edge_core::store::StoreError>,
    now_ms: u64,
) -> Option<SessionState> {
    let lookup = lookup?;
    Some(match replies {
        Ok(replies) => lookup.resolve(Ok(replies), now_ms),
        Err(e) => lookup.resolve(Err(&e), now_ms),
    })
}

/// Adds `Edge-Session-*` for a live session and keeps our cookie from the origin.
fn prepare_session_headers(
    headers: &mut http::HeaderMap,
    state: Option<&SessionState>,
    config: &edge_core::config::Config,
) {
    if let (Some(state), Some(settings)) = (state, config.session.as_ref()) {
        session::prepare_origin_request(headers, state, settings);
    }
}

/// A request with a body (or any non-GET/HEAD): streamed to the origin and back, never cached.
/// A 2xx answer invalidates the cached GET of its URL and the tags in `Edge-Purge-Tags`.
#[allow(clippy::too_many_arguments)]
async fn forward_write(
    request: &Request,
    target: &str,
    headers: &http::HeaderMap,
    config: &edge_core::config::Config,
    isolate: &isolate::Isolate,
    rt: &WorkerRuntime,
    uri: &Uri,
    reason: NoCacheReason,
) -> Served<Response> {
    let method = Method::from_bytes(request.method().as_bytes()).unwrap_or(Method::POST);
    isolate.stats.add(Counter::Bypass);
    isolate.stats.add(Counter::OriginFetch);
    let response = match origin::forward_streaming(request, target, headers, config.origin_timeout_ms).await {
        Ok(response) => response,
        Err(e) => return edge_core::engine::origin_error_response(&e),
    };
    let mut targets = Vec::new();
    if let Some(urls) = invalidation_after_write(&method, uri, response.status, &response.headers) {
        targets.push(urls);
        let tags = purge_tags_header(&response.headers);
        if !tags.is_empty() {
            targets.push(PurgeTarget::Tags(tags));
        }
    }
    if !targets.is_empty() {
        let store = isolate.store.clone();
        let namespace = config.namespace.clone();
        let now = rt.now_ms();
        rt.spawn(
            async move {
                for target in targets {
                    if let Err(e) =
                        purge(&store, &namespace, &PurgeRequest { target, soft: false }, now).await
                    {
                        worker::console_error!("edge-cache: invalidation after a write failed: {e}");
                    }
                }
            }
            .boxed_local(),
        );
    }
    let mut headers = response.headers;
    for name in ["cache-tag", "surrogate-key", "edge-purge-tags"] {
        headers.remove(name);
    }
    let phase = CachePhase::Bypass(reason);
    set_cache_headers(&mut headers, phase, None);
    Served { status: response.status, headers, body: ServedBody::Stream(response.body), phase }
}

/// Applies the origin's session directives (or the cookie housekeeping a request needs) and
/// strips every `Edge-Session*` header from the client's response.
async fn apply_session(
    served: &mut Served<Response>,
    state: Option<&SessionState>,
    config: &edge_core::config::Config,
    isolate: &isolate::Isolate,
    rt: &WorkerRuntime,
) {
    let (Some(state), Some(settings)) = (state, config.session.as_ref()) else {
        session::strip_directive_headers(&mut served.headers);
        return;
    };
    let outcome = session::apply(state, &mut served.headers, settings, &config.namespace, rt.now_ms());
    for line in &outcome.log {
        worker::console_log!("edge-cache: session: {line}");
    }
    for cookie in &outcome.set_cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            served.headers.append(http::header::SET_COOKIE, value);
        }
    }
    if outcome.store_ops.is_empty() {
        return;
    }
    if outcome.must_await {
        if let Err(e) = isolate.store.run(&outcome.store_ops).await {
            worker::console_error!("edge-cache: session write failed: {e}");
        }
    } else {
        let store = isolate.store.clone();
        let ops = outcome.store_ops;
        rt.spawn(
            async move {
                if let Err(e) = store.run(&ops).await {
                    worker::console_error!("edge-cache: session write failed: {e}");
                }
            }
            .boxed_local(),
        );
    }
}
