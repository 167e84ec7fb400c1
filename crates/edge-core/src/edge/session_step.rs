//! The session's part of a request (docs §5): reading the cookie (opening a fallback cookie's
//! sealed session), its lookup (in the cache's round trip, or in parallel on a session store of
//! its own), resolving it, telling the origin who is asking, and applying the origin's
//! directives to the response. The outage half (sealing, write-back, revocations) is in
//! `session_outage.rs`.

use http::HeaderValue;

use super::{Edge, Host, LogLevel};
use crate::config::Config;
use crate::engine::{Cache, CacheRequest, Found, Lookup, Served};
use crate::hygiene::is_reserved;
use crate::keyspace::Namespace;
use crate::runtime::Runtime;
use crate::session::fallback::{associated_data, decode_sealed};
use crate::session::{self, CarriedSession, SessionLookup, SessionSettings, SessionState};
use crate::store::{Reply, Store, StoreError};

/// Reads the session cookie; a fallback cookie's sealed session is opened here, before any
/// lookup, so that a tampered one is refused as cheaply as a bad MAC.
pub(super) async fn begin<H: Host>(
    host: &H,
    request_headers: &http::HeaderMap,
    settings: &SessionSettings,
    namespace: &Namespace,
) -> SessionLookup {
    let mut lookup = session::begin(request_headers, settings, namespace);
    let Some((id, sealed)) = lookup.sealed().map(|(id, sealed)| (id.clone(), sealed.to_string())) else {
        return lookup;
    };
    let opened = match decode_sealed(&sealed) {
        None => None,
        Some((nonce, ciphertext)) => host
            .open(&settings.fallback_key, &nonce, &associated_data(&id), &ciphertext)
            .await
            .ok()
            .and_then(|plaintext| CarriedSession::from_plaintext(&plaintext)),
    };
    lookup.carry(opened);
    lookup
}

impl<S: Store + Clone + 'static> Edge<S> {
    /// The cache lookup and the session's reads: one round trip on a shared store; on a
    /// session store of its own, one request to each, sent together (docs §5.10). Answers the
    /// lookup, the session replies, and whether the session store answered at all.
    pub(super) async fn lookup_with_session<R: Runtime>(
        &self,
        cache: &Cache<S, R>,
        request: &CacheRequest,
        session_ops: &[crate::store::Op],
    ) -> (Lookup, Result<Vec<Reply>, StoreError>, bool) {
        // On a shared store the session ops ride in the lookup's pipeline; on their own store
        // they go in a request of their own, polled together with the lookup.
        let own_store = self.session_store.as_ref().filter(|_| !session_ops.is_empty());
        let riding = if self.session_store.is_some() { &[][..] } else { session_ops };
        let own_read = async {
            match own_store {
                Some(sessions) => Some(sessions.run(session_ops).await),
                None => None,
            }
        };
        let (lookup, own_replies) = futures::join!(cache.lookup(request, riding), own_read);
        match own_replies {
            Some(replies) => {
                let answered = replies.is_ok();
                (lookup, replies, answered)
            }
            // Sessions on their own store, but no cookie to read: nothing was asked.
            None if self.session_store.is_some() => (lookup, Ok(Vec::new()), false),
            None => {
                let answered = !matches!(lookup.found, Found::Unavailable(_));
                let replies = lookup.extra.clone();
                (lookup, replies, answered)
            }
        }
    }

    /// The session state from the replies to the session's ops (or the round trip's error);
    /// then an id this isolate revoked is refused, a restorable session written back, and,
    /// when the session store answered, revocations kept meanwhile are written.
    pub(super) async fn resolve_session<H: Host>(
        &self,
        host: &H,
        lookup: Option<SessionLookup>,
        replies: Result<Vec<Reply>, StoreError>,
        answered: bool,
    ) -> Option<SessionState> {
        let lookup = lookup?;
        let settings = self.config.session.as_ref()?;
        if answered {
            self.flush_revocations(host);
        }
        let now_ms = host.now_ms();
        let state = match &replies {
            Ok(replies) => lookup.resolve(Ok(replies), now_ms),
            Err(e) => lookup.resolve(Err(e), now_ms),
        };
        let revoked = match &state {
            SessionState::Live { id, .. }
            | SessionState::Carried { id, .. }
            | SessionState::Restorable { id, .. }
            | SessionState::Unavailable { id } => self.revocations.contains(id),
            _ => false,
        };
        if revoked {
            host.log(LogLevel::Info, "edge-cache: session: cookie refused: revoked in this isolate");
            return Some(SessionState::Unknown);
        }
        Some(match state {
            SessionState::Restorable { id, record } => self.write_back(host, id, record, settings).await,
            state => state,
        })
    }
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

/// Replaces our `Set-Cookie` lines with `cookies`; the origin's own cookies stay as sent.
pub(super) fn replace_our_cookies(
    headers: &mut http::HeaderMap,
    settings: &SessionSettings,
    cookies: &[String],
) {
    let ours = format!("{}=", settings.cookie_name);
    let theirs: Vec<HeaderValue> = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter(|v| !v.as_bytes().starts_with(ours.as_bytes()))
        .cloned()
        .collect();
    headers.remove(http::header::SET_COOKIE);
    let ours = cookies.iter().filter_map(|c| HeaderValue::from_str(c).ok());
    for cookie in theirs.into_iter().chain(ours) {
        headers.append(http::header::SET_COOKIE, cookie);
    }
}

/// Rewrites `Cache-Control` so that only the client's own cache may keep the response: shared
/// directives (`public`, `s-maxage`) go, `private` is added.
pub(super) fn make_private(headers: &mut http::HeaderMap) {
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
        carrying: bool,
    ) {
        let config = &self.config;
        let (Some(state), Some(settings)) = (state, config.session.as_ref()) else {
            session::strip_directive_headers(&mut served.headers);
            return;
        };
        let mut outcome =
            session::apply(state, &mut served.headers, settings, &config.namespace, host.now_ms());
        for line in &outcome.log {
            host.log(LogLevel::Info, &format!("edge-cache: session: {line}"));
        }
        // The store holds the session again: back to the short cookie.
        if let (true, SessionState::Live { id, .. }, true) = (carrying, state, outcome.set_cookies.is_empty())
        {
            outcome.set_cookies.push(session::set_cookie_header(id, settings));
        }
        if let Some(plan) = outcome.fallback.take() {
            self.issue_fallback(host, served, plan, settings).await;
        }
        self.revoke(host, std::mem::take(&mut outcome.revoke));
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
            // A per-op error (e.g. `OOM` from a full `noeviction` Redis) is a failed write too.
            let written = self.sessions().run(&outcome.store_ops).await.and_then(|replies| {
                match replies.iter().find_map(|reply| match reply {
                    Reply::Error(text) => Some(text.clone()),
                    _ => None,
                }) {
                    Some(text) => Err(StoreError::Malformed(format!("the store refused a write: {text}"))),
                    None => Ok(replies),
                }
            });
            match written {
                Ok(replies) => {
                    if let Some(cookies) = outcome.after_write(&replies, settings) {
                        host.log(LogLevel::Info, "edge-cache: session: not rewritten: destroyed meanwhile");
                        replace_our_cookies(&mut served.headers, settings, &cookies);
                    }
                }
                Err(e) => {
                    host.log(LogLevel::Error, &format!("edge-cache: session write failed: {e}"));
                    if let Some(plan) = outcome.fallback_on_failure {
                        // The cookie naming the unwritten record gives way to one carrying it.
                        replace_our_cookies(&mut served.headers, settings, &[]);
                        self.issue_fallback(host, served, plan, settings).await;
                    }
                }
            }
        } else {
            self.spawn_session_ops(host, outcome.store_ops, "session write");
        }
    }
}
