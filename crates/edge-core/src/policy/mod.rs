//! What is looked up and what is stored, for how long (docs §2.1–§2.3 and §3.4). Pure functions of
//! the request or response head and the matching rule: no I/O, no clock.
//!
//! Decisions a caller should know:
//! - Request `Cache-Control`/`Pragma` are ignored: clients cannot force an origin fetch.
//! - A request with `Authorization` is looked up, but shares only what the origin marked
//!   shareable for it (RFC 9111 §3.5): `public`, `s-maxage` or `must-revalidate`, both ways
//!   ([`reusable_with_authorization`]).
//! - A request with `Upgrade: websocket` bypasses the cache (101 is never stored); any other
//!   `Upgrade` is ignored. A `Range` request is looked up: a stored copy answers it (206),
//!   anything else is passed on and fills nothing.
//! - "Never stored" stays never stored: a rule with `override` replaces the origin's *lifetimes*,
//!   but cannot make a `no-store`, `private`, `no-cache`, `Vary: *`, `Set-Cookie`, non-storable
//!   status or oversized response storable.
//! - The directives obeyed are `CDN-Cache-Control`'s when it is present and valid (RFC 9213),
//!   else `Cache-Control`'s.
//! - Freshness lifetime is `s-maxage`, else `max-age`, else `Expires − Date` (an `Expires` that
//!   is not a date means already stale), less the response's age on arrival: the larger of its
//!   `Age` and `now − Date` (RFC 9111 §4.2.3; `Date` has one-second resolution, so one second of
//!   that difference is forgiven).
//! - Statuses: the heuristically cacheable ones (RFC 9110 §15.1, less 206) may be stored with
//!   the origin's freshness or a rule's `ttl`; any other final status only with the origin's
//!   explicit freshness. `must-understand` stores only those statuses, ignoring `no-store`.
//! - Rule values fill in field by field (`ttl`, `swr`, `sie`) when the origin gave none; with
//!   `override` a rule value always wins (its `ttl` counts from now: `Age` is not subtracted).
//! - `must-revalidate` and `proxy-revalidate` mean never stale: no stale window applies, the
//!   origin's own included, unless a rule has `override`. `s-maxage` keeps a rule's windows
//!   out but honours the origin's own `stale-while-revalidate`/`stale-if-error` (RFC 5861: the
//!   origin granted them explicitly), as CDNs do.
//! - A response that arrives already stale (ttl 0) with no stale window is not stored
//!   (`ZeroTtl`); with a stale window it is stored as a stale-only entry.

use crate::cache_control::CacheControl;
use crate::key;
use crate::phase::NoCacheReason;
use crate::rules::Rule;

/// Whether a request may be answered from, and stored in, the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDecision {
    /// Look the request up (and store the origin's answer if [`response_decision`] allows).
    Lookup,
    /// Go straight to the origin; store nothing.
    Bypass(NoCacheReason),
}

/// Statuses that may be stored with a rule's `ttl` or the origin's freshness (docs §2.2): RFC
/// 9110 §15.1's heuristically cacheable set (206 left out: partial content is never stored)
/// plus 451 (RFC 7725). Any other final status needs the origin's explicit freshness.
pub const STORABLE_STATUSES: [u16; 12] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 451, 501];

/// Whether `status` is one this cache understands (for `must-understand`) and may store.
fn status_understood(status: u16) -> bool {
    STORABLE_STATUSES.contains(&status)
}

/// Final statuses that are never stored whatever the origin says: partial content, not
/// modified (an answer to validators), and anything outside 200–599.
fn never_stored(status: u16) -> bool {
    !(200..=599).contains(&status) || matches!(status, 206 | 304)
}

/// Decides whether a request is looked up. The reserved `/__edge/` path is the caller's to
/// check (it is never forwarded at all). Checks, in order: method (only `GET`/`HEAD`), a rule
/// with `cache: false`, a cookie the rule's `bypass_cookies` names (in the client's own
/// `Cookie`, the session's included), `Upgrade: websocket`. `Authorization` is looked up: what
/// it may be answered with and what its answer may be stored as is
/// [`reusable_with_authorization`]'s.
pub fn request_decision(
    method: &http::Method,
    headers: &http::HeaderMap,
    rule: Option<&Rule>,
) -> RequestDecision {
    let reason = if method != http::Method::GET && method != http::Method::HEAD {
        Some(NoCacheReason::Method)
    } else if rule.is_some_and(|rule| !rule.cache) {
        Some(NoCacheReason::RuleNoCache)
    } else if rule.is_some_and(|rule| rule.bypass_cookie(headers).is_some()) {
        Some(NoCacheReason::RuleBypassCookie)
    } else if crate::hygiene::is_websocket_upgrade(headers) {
        Some(NoCacheReason::Upgrade)
    } else {
        None
    };
    match reason {
        Some(reason) => RequestDecision::Bypass(reason),
        None => RequestDecision::Lookup,
    }
}

/// Whether a response may answer, or be stored from, a request with `Authorization` (RFC 9111
/// §3.5): only when the origin said a shared cache may keep it — `public`, `s-maxage` or
/// `must-revalidate`, read from `CDN-Cache-Control` when it is valid (docs §2.1). The test is
/// the same both ways, so a stored entry needs no note of how it was obtained: one fetched for
/// an authorized request passed it before it was stored, and one fetched anonymously answers an
/// authorized request only if the origin marked it so.
pub fn reusable_with_authorization(headers: &http::HeaderMap) -> bool {
    let cc = CacheControl::for_this_cache(headers);
    cc.public || cc.s_maxage.is_some() || cc.must_revalidate
}

/// How long a stored response is fresh, and how long its stale copy may serve, in seconds from
/// the moment it is stored.
///
/// `ttl` may be 0 when `swr` or `sie` is not: the entry is stale on arrival, so the caller
/// writes only the stale copy (Redis refuses an expiry of 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Freshness {
    /// Fresh lifetime: the fresh key's expiry.
    pub ttl: u32,
    /// stale-while-revalidate window after `ttl`.
    pub swr: u32,
    /// stale-if-error window after `ttl`.
    pub sie: u32,
}

impl Freshness {
    /// The stale copy's expiry: `ttl + max(swr, sie)` (saturating).
    pub fn stale_copy_ttl(&self) -> u32 {
        self.ttl.saturating_add(self.swr.max(self.sie))
    }
}

/// Decides whether a response is stored and computes its [`Freshness`].
///
/// `max_bytes` is `CACHE_MAX_BYTES`, checked here against `Content-Length`; the caller must check
/// the body it actually read with [`body_fits`] too. Checks, in order: rule `cache: false`,
/// status, `no-store`, unqualified `private`, unqualified `no-cache`, `Vary: *`, `Set-Cookie`,
/// `Content-Length`, then freshness (`NoFreshness`, `ZeroTtl`).
pub fn response_decision(
    status: u16,
    headers: &http::HeaderMap,
    rule: Option<&Rule>,
    max_bytes: u64,
    now_secs: u64,
    heuristic_percent: u64,
) -> Result<Freshness, NoCacheReason> {
    if rule.is_some_and(|rule| !rule.cache) {
        return Err(NoCacheReason::RuleNoCache);
    }
    let cc = CacheControl::for_this_cache(headers);
    let explicit = explicit_lifetime(&cc, headers, now_secs);
    // The rule's TTL for this status: its `status_ttl` entry, else its `ttl` (docs §3.4).
    let rule_ttl = rule.and_then(|rule| rule.ttl_for_status(status));
    // A status the rule's status_ttl names with a TTL is one the operator chose to store.
    let chosen_by_rule = rule.and_then(|rule| rule.status_ttl.get(status)).is_some_and(|ttl| ttl > 0);
    // A rule's ttl beats a heuristic; a heuristic only for the statuses that allow one.
    let heuristic = (explicit.is_none() && rule_ttl.is_none() && status_understood(status))
        .then(|| heuristic_lifetime(headers, now_secs, heuristic_percent))
        .flatten();
    let origin_lifetime = explicit.or(heuristic);
    if never_stored(status) || (!status_understood(status) && explicit.is_none() && !chosen_by_rule) {
        return Err(NoCacheReason::Status);
    }
    if cc.must_understand && !status_understood(status) {
        return Err(NoCacheReason::Status);
    }
    if cc.no_store && !cc.must_understand {
        return Err(NoCacheReason::NoStore);
    }
    if cc.private {
        return Err(NoCacheReason::Private);
    }
    // Unqualified no-cache: stored only to be revalidated on every use, so only with a validator.
    let has_validator =
        headers.contains_key(http::header::ETAG) || headers.contains_key(http::header::LAST_MODIFIED);
    if cc.no_cache && !has_validator {
        return Err(NoCacheReason::NoCache);
    }
    key::vary_names(headers)?;
    if headers.contains_key(http::header::SET_COOKIE) {
        return Err(NoCacheReason::SetCookie);
    }
    if let Some(length) = content_length(headers) {
        if !body_fits(length, max_bytes) {
            return Err(NoCacheReason::TooLarge);
        }
    }
    if cc.no_cache {
        // Stale on arrival, no stale windows: every use is a conditional request (RFC 9111
        // §5.2.2.4), which a 304 answers without a body.
        return Ok(Freshness::default());
    }
    let freshness = freshness(&cc, origin_lifetime, origin_age(headers, now_secs), rule, rule_ttl)?;
    if freshness.stale_copy_ttl() == 0 {
        return Err(NoCacheReason::ZeroTtl);
    }
    Ok(freshness)
}

/// True when a body of `len` bytes may be stored under `CACHE_MAX_BYTES = max_bytes`.
pub fn body_fits(len: u64, max_bytes: u64) -> bool {
    len <= max_bytes
}

/// The response's age on arrival, in seconds (RFC 9111 §4.2.3): the larger of its `Age` (first
/// member of a list; an invalid value counts as 0) and its apparent age `now − Date`, less one
/// second for `Date`'s resolution. Stored with the entry so the `Age` sent to clients
/// includes it.
pub fn origin_age(headers: &http::HeaderMap, now_secs: u64) -> u32 {
    let age = headers
        .get(http::header::AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.split(',').next())
        .and_then(|first| crate::cache_control::parse_delta_seconds(first.trim()))
        .unwrap_or(0);
    let apparent = date(headers, http::header::DATE)
        .map(|date| now_secs.saturating_sub(date).saturating_sub(1))
        .map_or(0, |secs| u32::try_from(secs).unwrap_or(u32::MAX));
    age.max(apparent)
}

/// A date header's value in Unix seconds, if it holds exactly one valid HTTP date.
fn date(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    crate::http_date::parse_http_date(value.to_str().ok()?)
}

/// Whether the origin gave the response a freshness lifetime of its own (an error status with
/// one may be stored; without one it is passed on and never marks hit-for-pass).
pub fn has_explicit_freshness(headers: &http::HeaderMap) -> bool {
    let cc = CacheControl::for_this_cache(headers);
    cc.s_maxage.or(cc.max_age).is_some() || headers.contains_key(http::header::EXPIRES)
}

/// Whether an origin 5xx is passed on unstored, without hit-for-pass (docs §4.8): when it has
/// no freshness of its own and the rule's `status_ttl` gives it none either, or when an
/// overriding rule's `status_ttl` says 0 for it.
pub fn error_status_passes(status: u16, headers: &http::HeaderMap, rule: Option<&Rule>) -> bool {
    let status_ttl = rule.and_then(|rule| rule.status_ttl.get(status));
    match status_ttl {
        Some(0) if rule.is_some_and(|rule| rule.override_origin) => true,
        Some(ttl) if ttl > 0 => false,
        _ => !has_explicit_freshness(headers),
    }
}

/// The longest a heuristic makes a response fresh.
const HEURISTIC_MAX_SECS: u64 = 86_400;

/// Heuristic freshness (RFC 9111 §4.2.2): `percent` of `Date − Last-Modified`, at most a day;
/// `None` when off or when the response has no `Last-Modified`.
fn heuristic_lifetime(headers: &http::HeaderMap, now_secs: u64, percent: u64) -> Option<u32> {
    if percent == 0 {
        return None;
    }
    let modified = date(headers, http::header::LAST_MODIFIED)?;
    let base = date(headers, http::header::DATE).unwrap_or(now_secs);
    let lifetime = (base.saturating_sub(modified) * percent / 100).min(HEURISTIC_MAX_SECS);
    u32::try_from(lifetime).ok()
}

/// The origin's own freshness lifetime, if it gave one: `s-maxage`, else `max-age`, else
/// `Expires − Date` (no `Date`: `Expires − now`); an `Expires` that is not a valid date (`0`,
/// garbage, two values) means already stale.
fn explicit_lifetime(cc: &CacheControl, headers: &http::HeaderMap, now_secs: u64) -> Option<u32> {
    if let Some(seconds) = cc.s_maxage.or(cc.max_age) {
        return Some(seconds);
    }
    headers.get(http::header::EXPIRES)?;
    let Some(expires) = date(headers, http::header::EXPIRES) else { return Some(0) };
    let base = date(headers, http::header::DATE).unwrap_or(now_secs);
    Some(u32::try_from(expires.saturating_sub(base)).unwrap_or(u32::MAX))
}

/// `Content-Length` when it is one valid number (several equal lines count as one).
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    let mut length = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        let parsed: u64 = value.to_str().ok()?.trim().parse().ok()?;
        match length {
            Some(previous) if previous != parsed => return None,
            _ => length = Some(parsed),
        }
    }
    length
}

fn freshness(
    cc: &CacheControl,
    origin_lifetime: Option<u32>,
    age: u32,
    rule: Option<&Rule>,
    rule_ttl: Option<u32>,
) -> Result<Freshness, NoCacheReason> {
    let override_origin = rule.is_some_and(|rule| rule.override_origin);
    let rule_swr = rule.and_then(|rule| rule.swr);
    let rule_sie = rule.and_then(|rule| rule.sie);

    // Seconds the response has already been stale on arrival: they come off the stale windows.
    let mut overshoot = 0;
    let ttl = match (override_origin, rule_ttl, origin_lifetime) {
        (true, Some(ttl), _) => ttl,
        (_, _, Some(lifetime)) => {
            overshoot = age.saturating_sub(lifetime);
            lifetime.saturating_sub(age)
        }
        (_, Some(ttl), None) => ttl,
        (_, None, None) => return Err(NoCacheReason::NoFreshness),
    };
    // A rule's stale window applies when the origin gave none, unless the origin forbade
    // serving stale; with override it always applies.
    // must-revalidate and proxy-revalidate: never served stale, whatever the origin's own
    // stale-while-revalidate/stale-if-error say (RFC 9111 §5.2.2.2); only a rule's override wins.
    let never_stale = cc.must_revalidate || cc.proxy_revalidate;
    let window = |origin: Option<u32>, from_rule: Option<u32>| -> u32 {
        let chosen = match (override_origin, from_rule, origin) {
            (true, Some(seconds), _) => return seconds,
            _ if never_stale => 0,
            (_, _, Some(seconds)) => seconds,
            (_, Some(seconds), None) if !cc.forbids_stale() => seconds,
            _ => 0,
        };
        chosen.saturating_sub(overshoot)
    };
    Ok(Freshness {
        ttl,
        swr: window(cc.stale_while_revalidate, rule_swr),
        sie: window(cc.stale_if_error, rule_sie),
    })
}

#[cfg(test)]
mod tests;
