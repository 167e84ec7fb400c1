//! The session's part of one request, start to finish, with the I/O left to the worker:
//!
//! 1. [`begin`] reads the cookie ([`SessionLookup`]); [`SessionLookup::ops`] are the Redis
//!    reads to add to the request's one round trip (none for a missing or forged cookie).
//! 2. [`SessionLookup::resolve`] turns their replies into a [`SessionState`].
//! 3. [`prepare_origin_request`] strips what the client must not send the origin and adds what
//!    the origin should see.
//! 4. [`apply`] reads the origin's directives off the response and answers a [`SessionOutcome`]:
//!    the `Set-Cookie` headers to add, the store ops to run (one pipeline), log lines.
//!
//! Strict throughout (docs §5.2): a cookie is a session only if its MAC verifies *and* Redis
//! has a live record for it; otherwise the origin sees no session and the cookie is cleared.
//! When Redis cannot answer, nothing is written that could overwrite or lose data we could not
//! read.

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::keyspace::Namespace;
use crate::store::{Op, Reply, StoreError};

use super::{
    carried_part, clear_cookie_header, cookie_header_without_session, cookie_needs_refresh, forward_headers,
    new_session_id, read_cookie, read_directives, set_cookie_header, should_slide,
    strip_client_session_headers, strip_directive_headers, ttl_ms, CarriedSession, CookieCheck, FallbackPlan,
    InvalidCookie, SessionDirective, SessionError, SessionId, SessionRecord, SessionSettings,
    EDGE_SESSION_ID, EDGE_SESSION_STATUS,
};

/// What the request's cookie says, before Redis has been asked. Built by [`begin`].
#[derive(Debug, Clone)]
pub struct SessionLookup {
    check: CookieCheck,
    /// The record's key, for a cookie whose MAC verified.
    key: Option<String>,
    settings: SessionSettings,
    /// A fallback cookie's sealed part, until [`SessionLookup::carry`] is told what it opened to.
    sealed: Option<String>,
    /// The session a fallback cookie carried (opened, not yet checked against its window).
    carried: Option<CarriedSession>,
    /// Its used-up marker's key, read with the record.
    marker_key: Option<String>,
}

/// Reads the session cookie from the request's headers. Call it after
/// [`strip_client_session_headers`] (it reads only `Cookie`, so the order does not matter for
/// correctness), and add [`SessionLookup::ops`] to the request's round trip.
pub fn begin(
    request_headers: &HeaderMap,
    settings: &SessionSettings,
    namespace: &Namespace,
) -> SessionLookup {
    let check = read_cookie(request_headers, settings);
    let (key, sealed, marker_key) = match &check {
        CookieCheck::Valid(id) => {
            let sealed = carried_part(request_headers, settings);
            let marker = sealed.as_ref().map(|_| namespace.session_fallback_used(id));
            (Some(namespace.session(id)), sealed, marker)
        }
        CookieCheck::Absent | CookieCheck::Invalid(_) => (None, None, None),
    };
    SessionLookup { check, key, settings: settings.clone(), sealed, carried: None, marker_key }
}

impl SessionLookup {
    /// What the cookie check found.
    pub fn cookie(&self) -> &CookieCheck {
        &self.check
    }

    /// The id of a cookie whose MAC verified: only a candidate until Redis confirms it, but
    /// enough to aim the cache lookup at the session's `Vary: Cookie` variant.
    pub fn candidate_id(&self) -> Option<String> {
        match &self.check {
            CookieCheck::Valid(id) => Some(id.as_str().to_string()),
            _ => None,
        }
    }

    /// A fallback cookie's id and sealed part, to open ([`crate::Host::open`]) before the
    /// lookup; then tell [`SessionLookup::carry`] what came out.
    pub fn sealed(&self) -> Option<(&SessionId, &str)> {
        match (&self.check, &self.sealed) {
            (CookieCheck::Valid(id), Some(sealed)) => Some((id, sealed.as_str())),
            _ => None,
        }
    }

    /// What the sealed part opened to: `None` when it did not open (tampered, another key, not
    /// ours): the cookie is refused like a bad MAC, before any lookup (docs §5.11).
    pub fn carry(&mut self, opened: Option<CarriedSession>) {
        self.sealed = None;
        match opened {
            Some(carried) => self.carried = Some(carried),
            None => {
                self.check = CookieCheck::Invalid(InvalidCookie::BadSeal);
                self.key = None;
                self.marker_key = None;
            }
        }
    }

    /// Whether the request's cookie carried a session (it goes back to the short cookie once
    /// the store holds the session).
    pub fn carries(&self) -> bool {
        self.carried.is_some()
    }

    /// `[GET key, PTTL key]` for a cookie whose MAC verified, and `GET marker` for a fallback
    /// cookie; empty otherwise, so a missing or forged cookie costs no Redis work at all. Under
    /// `SESSION_SAVE_EVERY_REQUEST` a `PEXPIRE key <idle TTL>` comes last: the slide rides in
    /// the same round trip (after the `PTTL`, which still reads the time the previous request
    /// left). The absolute lifetime is checked on every read, so a record it outlives is
    /// refused and deleted.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = match &self.key {
            Some(key) => vec![Op::Get(key.clone()), Op::PTtl(key.clone())],
            None => Vec::new(),
        };
        if let (Some(marker), Some(_)) = (&self.marker_key, &self.carried) {
            ops.push(Op::Get(marker.clone()));
        }
        if let (Some(key), true) = (&self.key, self.settings.save_every_request) {
            ops.push(Op::PExpire { key: key.clone(), ttl_ms: self.settings.idle_ttl_ms() });
        }
        ops
    }

    /// The session, from the replies to [`SessionLookup::ops`] (in order; anything after them
    /// is ignored, so the worker may pass a longer slice that starts with them). When `ops()`
    /// was empty the replies are not looked at, not even an error.
    ///
    /// A failed round trip, a per-op error or a reply of the wrong shape is
    /// [`SessionState::Unavailable`]: we cannot tell whether the session exists.
    pub fn resolve(self, replies: Result<&[Reply], &StoreError>, now_ms: u64) -> SessionState {
        let id = match self.check {
            CookieCheck::Absent => return SessionState::None,
            CookieCheck::Invalid(why) => return SessionState::Invalid(why),
            CookieCheck::Valid(id) => id,
        };
        // A carried session counts only inside its window; past it the cookie is an id alone.
        let carried = self.carried.filter(|c| c.trusted_at(now_ms, &self.settings));
        let unavailable = |id: SessionId, carried: Option<CarriedSession>| match carried {
            Some(CarriedSession { record, .. }) => SessionState::Carried { id, record },
            None => SessionState::Unavailable { id },
        };
        let Ok(replies) = replies else {
            return unavailable(id, carried);
        };
        let (Some(record_reply), Some(pttl_reply)) = (replies.first(), replies.get(1)) else {
            return unavailable(id, carried);
        };
        let Reply::Int(pttl_ms) = *pttl_reply else {
            return unavailable(id, carried);
        };
        let bytes: &[u8] = match record_reply {
            Reply::Nil => return restorable(id, carried, replies.get(2)),
            Reply::Bytes(bytes) => bytes,
            Reply::Status(text) => text.as_bytes(),
            Reply::Int(_) | Reply::Array(_) | Reply::Error(_) => return unavailable(id, carried),
        };
        // The pipeline is not atomic: the record can vanish between GET and PTTL (a concurrent
        // Destroy or Rotate). Gone is gone.
        if pttl_ms == -2 {
            return SessionState::Unknown;
        }
        let record = match SessionRecord::decode(bytes) {
            Ok(record) => record,
            Err(reason) => return SessionState::Corrupt { id, reason },
        };
        if ttl_ms(now_ms, record.created_ms, &self.settings).is_none() {
            return SessionState::Expired { id };
        }
        SessionState::Live { id, record, pttl_ms }
    }
}

/// No record: a session carried in a trusted fallback cookie whose marker is absent (never
/// written back, never revoked) is to be written back; anything else is gone.
fn restorable(id: SessionId, carried: Option<CarriedSession>, marker: Option<&Reply>) -> SessionState {
    match (carried, marker) {
        (Some(CarriedSession { record, .. }), Some(Reply::Nil)) => SessionState::Restorable { id, record },
        _ => SessionState::Unknown,
    }
}

/// The session of one request, once Redis has answered. Only [`SessionState::Live`] is a
/// session; every other state means "the origin sees none".
#[derive(Debug, Clone, PartialEq)]
pub enum SessionState {
    /// No cookie of ours: nothing to do.
    None,
    /// Our cookie, refused before any lookup (bad MAC, malformed, ...): clear it.
    Invalid(InvalidCookie),
    /// A valid cookie naming no record (never issued here, expired idle, destroyed, rotated
    /// away): clear it.
    Unknown,
    /// The record exists but its absolute lifetime is over: delete it, clear the cookie.
    Expired { id: SessionId },
    /// The record exists but does not decode: delete it, clear the cookie. `reason` never
    /// quotes the record.
    Corrupt { id: SessionId, reason: SessionError },
    /// A session. `pttl_ms` is Redis's `PTTL` answer, for [`should_slide`].
    Live { id: SessionId, record: SessionRecord, pttl_ms: i64 },
    /// A valid cookie, but Redis did not answer: no session headers, and nothing written that
    /// could overwrite or lose what we could not read.
    Unavailable { id: SessionId },
    /// Redis did not answer, but the cookie carried the session (sealed, inside its window):
    /// a session, until the store is back (docs §5.11).
    Carried { id: SessionId, record: SessionRecord },
    /// Redis answered without a record, and the cookie carries one never written back nor
    /// revoked: the request's session step writes it back (`WriteBackOnce`) and continues
    /// with [`SessionState::Live`] (or, if that lost, [`SessionState::Unknown`]).
    Restorable { id: SessionId, record: SessionRecord },
}

impl SessionState {
    /// Short, stable name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionState::None => "none",
            SessionState::Invalid(_) => "invalid",
            SessionState::Unknown => "unknown",
            SessionState::Expired { .. } => "expired",
            SessionState::Corrupt { .. } => "corrupt",
            SessionState::Live { .. } => "live",
            SessionState::Unavailable { .. } => "unavailable",
            SessionState::Carried { .. } => "carried",
            SessionState::Restorable { .. } => "restorable",
        }
    }

    /// The session id, for a live session only (it selects the per-session cache variant).
    /// A carried session is one: its sealed cookie proves it as a record would.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            SessionState::Live { id, .. }
            | SessionState::Carried { id, .. }
            | SessionState::Restorable { id, .. } => Some(id.as_str()),
            _ => None,
        }
    }

    /// What the origin is told (docs §5.5): `Edge-Session-Status` always (`active`,
    /// `anonymous`, `unavailable` or `invalid`), `Edge-Session-Id` and `Edge-Session` for a live
    /// session, and the id alone when the store could not be read: the cookie's MAC proves it
    /// without Redis, so the origin can tell "store unavailable" from "anonymous".
    pub fn origin_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let status = match self {
            SessionState::Live { .. } | SessionState::Carried { .. } | SessionState::Restorable { .. } => {
                "active"
            }
            SessionState::Unavailable { .. } => "unavailable",
            SessionState::Invalid(_) => "invalid",
            SessionState::None
            | SessionState::Unknown
            | SessionState::Expired { .. }
            | SessionState::Corrupt { .. } => "anonymous",
        };
        let mut headers = vec![(EDGE_SESSION_STATUS, HeaderValue::from_static(status))];
        match self {
            SessionState::Live { id, record, .. }
            | SessionState::Carried { id, record }
            | SessionState::Restorable { id, record } => headers.extend(forward_headers(id, record)),
            SessionState::Unavailable { id } => {
                if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                    headers.push((EDGE_SESSION_ID, value));
                }
            }
            _ => {}
        }
        headers
    }

    /// The store did not answer this request's lookup (or, for a restorable session, its
    /// write-back has not happened): nothing may be written over what it holds.
    pub fn store_unreachable(&self) -> bool {
        matches!(
            self,
            SessionState::Unavailable { .. } | SessionState::Carried { .. } | SessionState::Restorable { .. }
        )
    }

    /// Whether the request carried a cookie of ours (so clearing it means something).
    fn had_cookie(&self) -> bool {
        !matches!(self, SessionState::None)
    }

    /// The record this request's cookie named, if Redis has (or may have) one.
    fn stored_id(&self) -> Option<&SessionId> {
        match self {
            SessionState::Live { id, .. }
            | SessionState::Expired { id }
            | SessionState::Corrupt { id, .. }
            | SessionState::Unavailable { id }
            | SessionState::Carried { id, .. }
            | SessionState::Restorable { id, .. } => Some(id),
            SessionState::None | SessionState::Invalid(_) | SessionState::Unknown => None,
        }
    }
}

/// Readies the request headers for the origin: removes every client-sent `Edge-Session*`
/// header (again: this is the last step before the origin, so it must not depend on an earlier
/// one), removes our cookie from `Cookie` (other cookies are kept byte for byte; the header goes
/// if nothing is left; untouched if ours is not there), and adds the session's headers.
pub fn prepare_origin_request(headers: &mut HeaderMap, state: &SessionState, settings: &SessionSettings) {
    strip_client_session_headers(headers);
    strip_session_cookie(headers, settings);
    for (name, value) in state.origin_headers() {
        headers.insert(name, value);
    }
}

/// Removes our cookie from the `Cookie` headers. When none of the pieces is ours the headers
/// are left exactly as sent (rewriting would join several headers and respace the pieces).
fn strip_session_cookie(headers: &mut HeaderMap, settings: &SessionSettings) {
    let kept = cookie_header_without_session(headers, settings);
    let kept_pieces = kept.as_ref().map_or(0, |value| cookie_pieces(value.as_bytes()));
    let sent_pieces: usize =
        headers.get_all(COOKIE).iter().map(|value| cookie_pieces(value.as_bytes())).sum();
    if kept_pieces == sent_pieces {
        return;
    }
    headers.remove(COOKIE);
    if let Some(kept) = kept {
        headers.insert(COOKIE, kept);
    }
}

/// Non-empty `;`-separated pieces, counted the way [`cookie_header_without_session`] splits.
fn cookie_pieces(value: &[u8]) -> usize {
    value.split(|&b| b == b';').filter(|piece| !piece.trim_ascii().is_empty()).count()
}

/// What to do after the origin answered. The worker appends `set_cookies` as `Set-Cookie`
/// headers and runs `store_ops` in one pipeline: awaited when `must_await` (the origin changed
/// the session; the next request must see it), in the background otherwise (a slide or a
/// clean-up). Every `log` line is safe to log: none quotes session data or the cookie's MAC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOutcome {
    pub set_cookies: Vec<String>,
    pub store_ops: Vec<Op>,
    pub log: Vec<String>,
    pub must_await: bool,
    /// `store_ops[0]` rewrites a live session only if it still exists: when its reply is 0 the
    /// session was destroyed meanwhile, and the worker clears the cookie instead of setting it
    /// ([`SessionOutcome::after_write`]).
    pub conditional: bool,
    /// The store is unreachable: seal this session into the cookie instead (docs §5.11).
    pub fallback: Option<FallbackPlan>,
    /// A new session written with `store_ops`: if that write fails, seal it into the cookie.
    pub fallback_on_failure: Option<FallbackPlan>,
    /// Ids destroyed while the store did not answer: the isolate keeps them until it can write
    /// them ([`super::Revocations`]).
    pub revoke: Vec<SessionId>,
}

impl SessionOutcome {
    /// Applies what the awaited `store_ops` answered: a conditional rewrite that found its
    /// session gone (destroyed by another request meanwhile) must not hand out a cookie for it.
    /// Answers the `Set-Cookie` values to send instead, if they change.
    pub fn after_write(
        &self,
        replies: &[crate::store::Reply],
        settings: &SessionSettings,
    ) -> Option<Vec<String>> {
        let lost = self.conditional && matches!(replies.first(), Some(crate::store::Reply::Int(0)));
        lost.then(|| vec![clear_cookie_header(settings)])
    }
}

/// Applies the origin's session directives and removes every `Edge-Session*` header from the
/// response (before it is cached or sent). Without directives, does the request's housekeeping:
/// slide a live session's TTL when [`should_slide`] says so, clear a cookie that names no
/// session, delete an expired record.
///
/// - Set: replaces a live session's data (keeping its creation time), or creates a session.
/// - Rotate (after Set, if both): the same record under a new id; the old record is deleted.
/// - Destroy: deletes the record and clears the cookie.
/// - A refused Set (too large, malformed, ...): a log line; the session is left unchanged.
/// - Redis unavailable: Set and Rotate are dropped with a log line (we could not read what
///   they would overwrite); Destroy still deletes and clears, because a logout must not wait
///   for Redis and deleting cannot lose anything the origin wanted kept.
pub fn apply(
    state: &SessionState,
    response_headers: &mut HeaderMap,
    settings: &SessionSettings,
    namespace: &Namespace,
    now_ms: u64,
) -> SessionOutcome {
    let directives = read_directives(response_headers, settings);
    strip_directive_headers(response_headers);
    let mut outcome = SessionOutcome::default();
    match directives {
        Err(refused) => outcome.log.push(format!("session unchanged: {refused} ({})", refused.as_str())),
        Ok(directives) if directives.is_empty() => {
            housekeeping(state, settings, namespace, now_ms, &mut outcome)
        }
        Ok(directives) if directives.contains(&SessionDirective::Destroy) => {
            destroy(state, settings, namespace, &mut outcome)
        }
        Ok(directives) if state.store_unreachable() => {
            super::outage::steer_without_store(state, &directives, settings, now_ms, &mut outcome)
        }
        Ok(directives) => steer(state, &directives, settings, namespace, now_ms, &mut outcome),
    }
    outcome
}

/// No directives: keep the store and the browser in step with what the lookup found.
fn housekeeping(
    state: &SessionState,
    settings: &SessionSettings,
    namespace: &Namespace,
    now_ms: u64,
    outcome: &mut SessionOutcome,
) {
    match state {
        SessionState::None
        | SessionState::Unavailable { .. }
        | SessionState::Carried { .. }
        | SessionState::Restorable { .. } => {}
        SessionState::Invalid(why) => {
            outcome.log.push(format!("session cookie refused: {}", why.as_str()));
            outcome.set_cookies.push(clear_cookie_header(settings));
        }
        SessionState::Unknown => outcome.set_cookies.push(clear_cookie_header(settings)),
        SessionState::Expired { id } => {
            outcome.store_ops.push(Op::Del(vec![namespace.session(id)]));
            outcome.set_cookies.push(clear_cookie_header(settings));
        }
        SessionState::Corrupt { id, reason } => {
            outcome.log.push(format!("session dropped: {reason} ({})", reason.as_str()));
            outcome.store_ops.push(Op::Del(vec![namespace.session(id)]));
            outcome.set_cookies.push(clear_cookie_header(settings));
        }
        SessionState::Live { id, record, pttl_ms } => {
            let Some(ttl_ms) = ttl_ms(now_ms, record.created_ms, settings) else { return };
            // Saved on every request: the lookup's PEXPIRE slid it; only the cookie may lag.
            let (slide, resend) = if settings.save_every_request {
                (false, cookie_needs_refresh(*pttl_ms, now_ms, record.created_ms, settings))
            } else {
                let slide = should_slide(*pttl_ms, now_ms, record.created_ms, settings);
                (slide, slide)
            };
            if slide {
                outcome.store_ops.push(Op::PExpire { key: namespace.session(id), ttl_ms });
            }
            // Without Max-Age (expire at browser close) there is nothing to refresh.
            if resend && !settings.expire_at_browser_close {
                outcome.set_cookies.push(set_cookie_header(id, settings));
            }
        }
    }
}

/// `Edge-Session-Destroy`: delete whatever record the cookie named, clear the cookie.
fn destroy(
    state: &SessionState,
    settings: &SessionSettings,
    namespace: &Namespace,
    outcome: &mut SessionOutcome,
) {
    if let Some(id) = state.stored_id() {
        outcome.store_ops.push(Op::Del(vec![namespace.session(id)]));
        outcome.must_await = true;
    }
    if state.store_unreachable() {
        outcome.log.push("session destroyed without a lookup: redis unavailable".to_owned());
        // Kept in the isolate until the store answers, so a copied cookie stops working.
        outcome.revoke.extend(state.stored_id().cloned());
    }
    if state.had_cookie() {
        outcome.set_cookies.push(clear_cookie_header(settings));
    }
}

/// Set and/or Rotate (in that order), on a state where Redis answered.
fn steer(
    state: &SessionState,
    directives: &[SessionDirective],
    settings: &SessionSettings,
    namespace: &Namespace,
    now_ms: u64,
    outcome: &mut SessionOutcome,
) {
    let mut session: Option<(SessionId, SessionRecord)> = match state {
        SessionState::Live { id, record, .. } => Some((id.clone(), record.clone())),
        _ => None,
    };
    // Fixation: data set on a session that held none (a pre-login session someone may have
    // planted) goes under a new id, whether or not the origin asked for a rotation.
    let was_empty = matches!(state, SessionState::Live { record, .. } if record.data.is_empty());
    let sets_data = directives.iter().any(|d| matches!(d, SessionDirective::Set(data) if !data.is_empty()));
    let mut directives = directives.to_vec();
    if was_empty && sets_data && !directives.contains(&SessionDirective::Rotate) {
        directives.push(SessionDirective::Rotate);
    }
    let mut changed = false;
    for directive in &directives {
        let step = match directive {
            SessionDirective::Set(data) => set_data(&mut session, data, now_ms),
            SessionDirective::Rotate => rotate(&mut session),
            SessionDirective::Destroy => Ok(false), // handled by `destroy`, never mixed
        };
        match step {
            Ok(step_changed) => changed |= step_changed,
            Err(error) => {
                outcome.log.push(format!("session unchanged: {error} ({})", error.as_str()));
                return;
            }
        }
    }
    // Rotate without a session: nothing to rotate, but the cookie still needs its housekeeping.
    let Some((id, record)) = session.filter(|_| changed) else {
        return housekeeping(state, settings, namespace, now_ms, outcome);
    };
    // `resolve` ruled out a dead session at this `now_ms`, and a new one has its whole life.
    let Some(ttl_ms) = ttl_ms(now_ms, record.created_ms, settings) else {
        return housekeeping(state, settings, namespace, now_ms, outcome);
    };
    // serde_json writes UTF-8; the fallback is unreachable and refuses rather than corrupts.
    let Ok(value) = String::from_utf8(record.encode()) else {
        outcome.log.push("session unchanged: record did not encode as UTF-8".to_owned());
        return;
    };
    match state {
        // A live session is rewritten (and a rotated one moved) only while it still exists: a
        // Destroy from another tab meanwhile is never undone.
        SessionState::Live { id: old, .. } => {
            outcome.store_ops.push(Op::ReplaceIfPresent {
                old_key: namespace.session(old),
                new_key: namespace.session(&id),
                value,
                ttl_ms,
            });
            outcome.conditional = true;
        }
        _ => {
            outcome.store_ops.push(Op::Set {
                key: namespace.session(&id),
                value,
                ttl_ms: Some(ttl_ms),
                nx: true,
            });
            // A dead record the cookie named goes after the new one is written.
            if let Some(old) = state.stored_id().filter(|old| **old != id) {
                outcome.store_ops.push(Op::Del(vec![namespace.session(old)]));
            }
            // Should the store fail the write, the new session travels in the cookie.
            if settings.fallback_ttl_s > 0 {
                outcome.fallback_on_failure = Some(FallbackPlan { id: id.clone(), record, replaces: None });
            }
        }
    }
    outcome.set_cookies.push(set_cookie_header(&id, settings));
    outcome.must_await = true;
}

/// `Edge-Session-Set`: new data for the session, or a new session created at `now_ms`.
fn set_data(
    session: &mut Option<(SessionId, SessionRecord)>,
    data: &Map<String, Value>,
    now_ms: u64,
) -> Result<bool, SessionError> {
    match session {
        Some((_, record)) => record.data = data.clone(),
        None => *session = Some((new_session_id()?, SessionRecord::new(data.clone(), now_ms))),
    }
    Ok(true)
}

/// `Edge-Session-Rotate`: a new id for the same record; no-op without a session.
fn rotate(session: &mut Option<(SessionId, SessionRecord)>) -> Result<bool, SessionError> {
    match session {
        Some((id, _)) => {
            *id = new_session_id()?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests;
