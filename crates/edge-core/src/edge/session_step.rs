//! The session's part of a request (docs §5): resolving the cookie from the lookup's replies,
//! telling the origin who is asking, and applying the origin's directives to the response.

use http::HeaderValue;

use super::{Edge, Host, LogLevel};
use crate::config::Config;
use crate::engine::{Cache, CacheRequest, Lookup, Served};
use crate::hygiene::is_reserved;
use crate::runtime::Runtime;
use crate::session::{self, SessionLookup, SessionState};
use crate::store::{Reply, Store, StoreError};

/// The session state from the replies to the session's ops (or the round trip's error).
pub(super) fn resolve(
    lookup: Option<SessionLookup>,
    replies: Result<&[Reply], StoreError>,
    now_ms: u64,
) -> Option<SessionState> {
    let lookup = lookup?;
    Some(match replies {
        Ok(replies) => lookup.resolve(Ok(replies), now_ms),
        Err(e) => lookup.resolve(Err(&e), now_ms),
    })
}

/// The lookup keyed the variant on the cookie's candidate id; once the store has said whether
/// that session exists, a URL that varies on `Cookie` or an `Edge-Session*` name is looked up
/// again under the confirmed id (without the session ops).
pub(super) async fn confirm_variant<S, R>(
    cache: &Cache<S, R>,
    request: &mut CacheRequest,
    lookup: Lookup,
    state: Option<&SessionState>,
) -> Lookup
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    request.session_unconfirmed = matches!(state, Some(SessionState::Unavailable { .. }));
    // The store could not say: nothing is confirmed, and "no session" is not the answer. Looking
    // again as anonymous would serve a logged-in client the anonymous variant as soon as Redis
    // answers the second round trip (§8.5; found by the model test). Nothing is stored for it.
    if request.session_unconfirmed {
        return lookup;
    }
    let confirmed = state.and_then(|s| s.session_id()).map(str::to_string);
    if confirmed == request.session_id {
        return lookup;
    }
    request.session_id = confirmed;
    if lookup.vary.iter().any(|name| name == "cookie" || is_reserved(name)) {
        cache.lookup(request, &[]).await
    } else {
        lookup
    }
}

/// Adds `Edge-Session-*` for a live session and keeps our cookie from the origin.
pub(super) fn prepare_origin_headers(
    headers: &mut http::HeaderMap,
    state: Option<&SessionState>,
    config: &Config,
) {
    if let (Some(state), Some(settings)) = (state, config.session.as_ref()) {
        session::prepare_origin_request(headers, state, settings);
    }
}

/// Rewrites `Cache-Control` so that only the client's own cache may keep the response: shared
/// directives (`public`, `s-maxage`) go, `private` is added.
fn make_private(headers: &mut http::HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .flat_map(|line| {
            String::from_utf8_lossy(line.as_bytes())
                .split(',')
                .map(|d| d.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|directive| {
            let name = directive.split('=').next().unwrap_or("").trim().to_ascii_lowercase();
            !directive.is_empty() && !matches!(name.as_str(), "public" | "s-maxage" | "private")
        })
        .collect();
    let value = std::iter::once("private".to_string()).chain(kept).collect::<Vec<_>>().join(", ");
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(http::header::CACHE_CONTROL, value);
    }
    // A CDN behind the worker reads CDN-Cache-Control first (RFC 9213): it must not be told
    // to store what carries a session cookie.
    headers.remove("cdn-cache-control");
}

impl<S: Store + Clone + 'static> Edge<S> {
    /// Applies the origin's session directives (or the cookie housekeeping a request needs) and
    /// strips every `Edge-Session*` header from the client's response.
    pub(super) async fn apply_session<H: Host>(
        &self,
        host: &H,
        served: &mut Served<H::Body>,
        state: Option<&SessionState>,
    ) {
        let config = &self.config;
        let (Some(state), Some(settings)) = (state, config.session.as_ref()) else {
            session::strip_directive_headers(&mut served.headers);
            return;
        };
        let outcome = session::apply(state, &mut served.headers, settings, &config.namespace, host.now_ms());
        for line in &outcome.log {
            host.log(LogLevel::Info, &format!("edge-cache: session: {line}"));
        }
        for cookie in &outcome.set_cookies {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                served.headers.append(http::header::SET_COOKIE, value);
            }
        }
        if !outcome.set_cookies.is_empty() {
            // A session cookie is one client's credential: no downstream cache may keep it.
            make_private(&mut served.headers);
        }
        if outcome.store_ops.is_empty() {
            return;
        }
        if outcome.must_await {
            // The origin changed the session: the client's next request must see it.
            match self.store.run(&outcome.store_ops).await {
                Ok(replies) => {
                    if let Some(cookies) = outcome.after_write(&replies, settings) {
                        host.log(LogLevel::Info, "edge-cache: session: not rewritten: destroyed meanwhile");
                        // Only our cookie changes; the origin's own cookies stay as sent.
                        let ours = format!("{}=", settings.cookie_name);
                        let theirs: Vec<HeaderValue> = served
                            .headers
                            .get_all(http::header::SET_COOKIE)
                            .iter()
                            .filter(|v| !v.as_bytes().starts_with(ours.as_bytes()))
                            .cloned()
                            .collect();
                        served.headers.remove(http::header::SET_COOKIE);
                        let ours = cookies.iter().filter_map(|c| HeaderValue::from_str(c).ok());
                        for cookie in theirs.into_iter().chain(ours) {
                            served.headers.append(http::header::SET_COOKIE, cookie);
                        }
                    }
                }
                Err(e) => host.log(LogLevel::Error, &format!("edge-cache: session write failed: {e}")),
            }
        } else {
            self.spawn_store_ops(host, outcome.store_ops, "session write");
        }
    }
}
