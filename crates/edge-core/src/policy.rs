//! What is looked up and what is stored, for how long (docs §2.1–§2.3 and §3.4). Pure functions of
//! the request or response head and the matching rule: no I/O, no clock.
//!
//! Decisions a caller should know:
//! - Request `Cache-Control`/`Pragma` are ignored: clients cannot force an origin fetch.
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
/// with `cache: false`, `Authorization`, `Upgrade: websocket`.
pub fn request_decision(
    method: &http::Method,
    headers: &http::HeaderMap,
    rule: Option<&Rule>,
) -> RequestDecision {
    let reason = if method != http::Method::GET && method != http::Method::HEAD {
        Some(NoCacheReason::Method)
    } else if rule.is_some_and(|rule| !rule.cache) {
        Some(NoCacheReason::RuleNoCache)
    } else if headers.contains_key(http::header::AUTHORIZATION) {
        Some(NoCacheReason::Authorization)
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
    // A rule's ttl beats a heuristic; a heuristic only for the statuses that allow one.
    let rule_has_ttl = rule.is_some_and(|rule| rule.ttl.is_some());
    let heuristic = (explicit.is_none() && !rule_has_ttl && status_understood(status))
        .then(|| heuristic_lifetime(headers, now_secs, heuristic_percent))
        .flatten();
    let origin_lifetime = explicit.or(heuristic);
    if never_stored(status) || (!status_understood(status) && explicit.is_none()) {
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
    let freshness = freshness(&cc, origin_lifetime, origin_age(headers, now_secs), rule)?;
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
) -> Result<Freshness, NoCacheReason> {
    let override_origin = rule.is_some_and(|rule| rule.override_origin);
    let rule_ttl = rule.and_then(|rule| rule.ttl);
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
#[allow(clippy::type_complexity)] // table rows are tuples
mod tests {
    use super::*;
    use crate::rules::PathPattern;
    use http::{HeaderMap, HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The clock the table tests read: a fixed instant.
    const NOW: u64 = 1_795_944_498;

    fn origin_age_of(headers: &HeaderMap) -> u32 {
        origin_age(headers, NOW)
    }

    fn rule() -> Rule {
        Rule::new(PathPattern::Prefix("/".into()))
    }

    fn fresh(ttl: u32, swr: u32, sie: u32) -> Result<Freshness, NoCacheReason> {
        Ok(Freshness { ttl, swr, sie })
    }

    const MAX: u64 = 1_048_576;

    #[test]
    fn request_decision_table() {
        use http::Method as M;
        use NoCacheReason::*;
        let no_cache_rule = Rule { cache: false, ..rule() };
        let caching_rule = Rule { ttl: Some(5), ..rule() };
        let table: Vec<(M, Vec<(&str, &str)>, Option<&Rule>, RequestDecision)> = vec![
            (M::GET, vec![], None, RequestDecision::Lookup),
            (M::HEAD, vec![], None, RequestDecision::Lookup),
            (M::GET, vec![], Some(&caching_rule), RequestDecision::Lookup),
            (M::POST, vec![], None, RequestDecision::Bypass(Method)),
            (M::PUT, vec![], None, RequestDecision::Bypass(Method)),
            (M::DELETE, vec![], None, RequestDecision::Bypass(Method)),
            (M::OPTIONS, vec![], None, RequestDecision::Bypass(Method)),
            (M::PATCH, vec![], None, RequestDecision::Bypass(Method)),
            (M::from_bytes(b"PURGE").unwrap(), vec![], None, RequestDecision::Bypass(Method)),
            (M::GET, vec![("authorization", "Bearer x")], None, RequestDecision::Bypass(Authorization)),
            (M::GET, vec![], Some(&no_cache_rule), RequestDecision::Bypass(RuleNoCache)),
            // A range is answered from a stored copy, or passed on (engine serve_range).
            (M::GET, vec![("range", "bytes=0-10")], None, RequestDecision::Lookup),
            (
                M::GET,
                vec![("upgrade", "websocket"), ("connection", "upgrade")],
                None,
                RequestDecision::Bypass(Upgrade),
            ),
            // Any other upgrade is ignored (its headers are dropped as hop-by-hop).
            (
                M::GET,
                vec![("upgrade", "h2c"), ("connection", "Upgrade, HTTP2-Settings")],
                None,
                RequestDecision::Lookup,
            ),
            // Client cache directives do not force an origin fetch.
            (
                M::GET,
                vec![("cache-control", "no-cache, no-store, max-age=0"), ("pragma", "no-cache")],
                None,
                RequestDecision::Lookup,
            ),
            // Cookies alone do not bypass (Vary: Cookie handles per-session content).
            (M::GET, vec![("cookie", "a=b")], None, RequestDecision::Lookup),
            // Method is reported first, then the rule, then Authorization.
            (M::POST, vec![("authorization", "x")], Some(&no_cache_rule), RequestDecision::Bypass(Method)),
            (
                M::GET,
                vec![("authorization", "x")],
                Some(&no_cache_rule),
                RequestDecision::Bypass(RuleNoCache),
            ),
        ];
        for (method, pairs, rule, expected) in table {
            assert_eq!(
                request_decision(&method, &headers(&pairs), rule),
                expected,
                "{method} {pairs:?} {rule:?}"
            );
        }
    }

    #[test]
    fn origin_directives_table() {
        use NoCacheReason::*;
        let table: Vec<(&[(&str, &str)], Result<Freshness, NoCacheReason>)> = vec![
            (&[], Err(NoFreshness)),
            (&[("cache-control", "public")], Err(NoFreshness)),
            (&[("cache-control", "max-age=60")], fresh(60, 0, 0)),
            (&[("cache-control", "s-maxage=30, max-age=60")], fresh(30, 0, 0)),
            (&[("cache-control", "max-age=60, s-maxage=0, stale-if-error=10")], fresh(0, 0, 10)),
            (
                &[("cache-control", "max-age=60, stale-while-revalidate=30, stale-if-error=600")],
                fresh(60, 30, 600),
            ),
            (&[("cache-control", "max-age=60"), ("age", "10")], fresh(50, 0, 0)),
            (&[("cache-control", "max-age=60"), ("age", "60")], Err(ZeroTtl)),
            (&[("cache-control", "max-age=60"), ("age", "600")], Err(ZeroTtl)),
            // already stale on arrival: the overshoot comes off the stale windows
            (&[("cache-control", "max-age=60, stale-while-revalidate=100"), ("age", "90")], fresh(0, 70, 0)),
            (&[("cache-control", "max-age=60, stale-while-revalidate=10"), ("age", "90")], Err(ZeroTtl)),
            (&[("cache-control", "max-age=60"), ("age", "abc")], fresh(60, 0, 0)),
            (&[("cache-control", "max-age=60"), ("age", "5, 50")], fresh(55, 0, 0)),
            (&[("cache-control", "max-age=0")], Err(ZeroTtl)),
            (&[("cache-control", "max-age=0, stale-while-revalidate=30")], fresh(0, 30, 0)),
            (&[("cache-control", "max-age=abc")], Err(ZeroTtl)),
            (&[("cache-control", "max-age=99999999999")], fresh(1 << 31, 0, 0)),
            (&[("cache-control", "max-age=60, must-revalidate")], fresh(60, 0, 0)),
            (&[("cache-control", "public, max-age=60, immutable")], fresh(60, 0, 0)),
            // must-revalidate / proxy-revalidate: never stale, whatever the origin's windows say.
            (
                &[(
                    "cache-control",
                    "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=60",
                )],
                fresh(60, 0, 0),
            ),
            (&[("cache-control", "max-age=60, proxy-revalidate, stale-if-error=60")], fresh(60, 0, 0)),
            // no-cache: with a validator, stored to be revalidated on every use.
            (&[("cache-control", "no-cache, max-age=60"), ("etag", "\"a\"")], fresh(0, 0, 0)),
            (
                &[("cache-control", "no-cache"), ("last-modified", "Sun, 29 Nov 2026 09:00:00 GMT")],
                fresh(0, 0, 0),
            ),
            (&[("cache-control", "s-maxage=60, stale-while-revalidate=30")], fresh(60, 30, 0)),
            (
                &[("expires", "Sun, 29 Nov 2026 09:30:18 GMT"), ("date", "Sun, 29 Nov 2026 09:28:18 GMT")],
                fresh(120, 0, 0),
            ),
            (&[("expires", "Sunday, 29-Nov-26 09:29:18 GMT")], fresh(60, 0, 0)),
            (&[("expires", "Sun Nov 29 09:29:18 2026")], fresh(60, 0, 0)),
            (&[("expires", "0")], Err(ZeroTtl)),
            (&[("expires", "soon"), ("cache-control", "stale-while-revalidate=30")], fresh(0, 30, 0)),
            (&[("expires", "Sun, 29 Nov 2026 09:30:18 GMT"), ("cache-control", "max-age=5")], fresh(5, 0, 0)),
            // Age and Date both count against the lifetime (one second of Date forgiven).
            (&[("cache-control", "max-age=60"), ("date", "Sun, 29 Nov 2026 09:27:48 GMT")], fresh(31, 0, 0)),
            (
                &[("cache-control", "max-age=60"), ("age", "10"), ("date", "Sun, 29 Nov 2026 09:28:18 GMT")],
                fresh(50, 0, 0),
            ),
            (&[("cache-control", "max-age=60"), ("date", "Mon, 30 Nov 2026 09:28:18 GMT")], fresh(60, 0, 0)),
            // CDN-Cache-Control takes precedence for this cache, both ways; an invalid one is ignored.
            (&[("cache-control", "no-store"), ("cdn-cache-control", "max-age=30")], fresh(30, 0, 0)),
            (&[("cache-control", "public, max-age=60"), ("cdn-cache-control", "no-store")], Err(NoStore)),
            (&[("cache-control", "max-age=60"), ("cdn-cache-control", "Max-Age=5")], fresh(60, 0, 0)),
            (&[("cdn-cache-control", "max-age=10, stale-if-error=20")], fresh(10, 0, 20)),
            // must-understand: a status this cache understands is stored even with no-store.
            (&[("cache-control", "must-understand, no-store, max-age=60")], fresh(60, 0, 0)),
            // never stored
            (&[("cache-control", "no-store, max-age=60")], Err(NoStore)),
            (&[("cache-control", "max-age=60"), ("cache-control", "no-store")], Err(NoStore)),
            (&[("cache-control", "private, max-age=60")], Err(Private)),
            (&[("cache-control", "no-cache, max-age=60")], Err(NoCache)),
            (&[("cache-control", "no-store, private, no-cache")], Err(NoStore)),
            (&[("cache-control", "private, no-cache")], Err(Private)),
            (&[("cache-control", "max-age=60"), ("vary", "*")], Err(VaryStar)),
            (&[("cache-control", "max-age=60"), ("vary", "accept, *")], Err(VaryStar)),
            (&[("cache-control", "max-age=60"), ("set-cookie", "a=b")], Err(SetCookie)),
            (&[("set-cookie", "a=b")], Err(SetCookie)),
            // qualified private / no-cache: stored (the named fields are stripped on store)
            (&[("cache-control", "private=\"x-user\", max-age=60")], fresh(60, 0, 0)),
            (&[("cache-control", "no-cache=\"x-debug\", max-age=60")], fresh(60, 0, 0)),
            // request-only / irrelevant headers
            (&[("cache-control", "max-age=60"), ("pragma", "no-cache")], fresh(60, 0, 0)),
            (&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")], fresh(60, 0, 0)),
            // size
            (&[("cache-control", "max-age=60"), ("content-length", "1048576")], fresh(60, 0, 0)),
            (&[("cache-control", "max-age=60"), ("content-length", "1048577")], Err(TooLarge)),
            (&[("cache-control", "max-age=60"), ("content-length", "x")], fresh(60, 0, 0)),
        ];
        for (pairs, expected) in table {
            assert_eq!(response_decision(200, &headers(pairs), None, MAX, NOW, 0), expected, "{pairs:?}");
        }
    }

    #[test]
    fn heuristic_freshness_is_off_by_default_and_beaten_by_rules() {
        let modified = headers(&[
            ("last-modified", "Sun, 19 Nov 2026 09:28:18 GMT"),
            ("date", "Sun, 29 Nov 2026 09:28:18 GMT"),
        ]);
        assert_eq!(response_decision(200, &modified, None, MAX, NOW, 0), Err(NoCacheReason::NoFreshness));
        // 10% of ten days, capped at a day.
        assert_eq!(response_decision(200, &modified, None, MAX, NOW, 10), fresh(86_400, 0, 0));
        assert_eq!(response_decision(200, &modified, None, MAX, NOW, 1), fresh(8_640, 0, 0));
        let rule_ttl = Rule { ttl: Some(5), ..rule() };
        assert_eq!(response_decision(200, &modified, Some(&rule_ttl), MAX, NOW, 10), fresh(5, 0, 0));
        assert_eq!(response_decision(403, &modified, None, MAX, NOW, 10), Err(NoCacheReason::Status));
        assert_eq!(
            response_decision(200, &headers(&[]), None, MAX, NOW, 10),
            Err(NoCacheReason::NoFreshness)
        );
    }

    #[test]
    fn status_table() {
        // With the origin's explicit freshness any final status may be stored but 206 and 304.
        let explicit = headers(&[("cache-control", "max-age=60")]);
        let with_rule_only = Rule { ttl: Some(60), ..rule() };
        let must_understand = headers(&[("cache-control", "max-age=60, must-understand")]);
        for status in 100..700 {
            let result = response_decision(status, &explicit, None, MAX, NOW, 0);
            let final_status = (200..=599).contains(&status) && status != 206 && status != 304;
            if final_status {
                assert_eq!(result, fresh(60, 0, 0), "{status}");
            } else {
                assert_eq!(result, Err(NoCacheReason::Status), "{status}");
            }
            // A rule's ttl alone, and must-understand, only for the statuses understood.
            let understood = STORABLE_STATUSES.contains(&status);
            let by_rule = response_decision(status, &HeaderMap::new(), Some(&with_rule_only), MAX, NOW, 0);
            assert_eq!(by_rule.is_ok(), understood, "{status} by rule");
            let strict = response_decision(status, &must_understand, None, MAX, NOW, 0);
            assert_eq!(strict.is_ok(), understood, "{status} with must-understand");
        }
    }

    #[test]
    fn rules_table() {
        use NoCacheReason::*;
        let r = |ttl: Option<u32>, swr: Option<u32>, sie: Option<u32>, over: bool| Rule {
            ttl,
            swr,
            sie,
            override_origin: over,
            ..rule()
        };
        let table: Vec<(&[(&str, &str)], Rule, Result<Freshness, NoCacheReason>)> = vec![
            // rule fills in when the origin gives nothing
            (&[], r(Some(300), None, None, false), fresh(300, 0, 0)),
            (&[], r(Some(300), Some(30), Some(60), false), fresh(300, 30, 60)),
            (&[], r(None, Some(30), None, false), Err(NoFreshness)),
            (&[], r(Some(0), None, None, false), Err(ZeroTtl)),
            (&[], r(Some(0), Some(30), None, false), fresh(0, 30, 0)),
            // origin values win without override, field by field
            (&[("cache-control", "max-age=60")], r(Some(300), None, None, false), fresh(60, 0, 0)),
            (
                &[("cache-control", "max-age=60, stale-while-revalidate=5")],
                r(Some(300), Some(30), Some(90), false),
                fresh(60, 5, 90),
            ),
            (&[("cache-control", "max-age=0")], r(Some(300), None, None, false), Err(ZeroTtl)),
            // override: rule values always win; Age does not reduce a rule ttl
            (
                &[("cache-control", "max-age=60, stale-while-revalidate=5"), ("age", "20")],
                r(Some(300), Some(30), None, true),
                fresh(300, 30, 0),
            ),
            (&[("cache-control", "max-age=0")], r(Some(300), None, None, true), fresh(300, 0, 0)),
            // override without a ttl keeps the origin's ttl
            (&[("cache-control", "max-age=60")], r(None, Some(30), None, true), fresh(60, 30, 0)),
            // must-revalidate / proxy-revalidate / s-maxage block rule stale windows...
            (
                &[("cache-control", "max-age=60, must-revalidate")],
                r(None, Some(30), Some(30), false),
                fresh(60, 0, 0),
            ),
            (
                &[("cache-control", "max-age=60, proxy-revalidate")],
                r(None, Some(30), None, false),
                fresh(60, 0, 0),
            ),
            (&[("cache-control", "s-maxage=60")], r(None, Some(30), None, false), fresh(60, 0, 0)),
            // ...but not the origin's own, nor an overriding rule's
            (
                &[("cache-control", "s-maxage=60, stale-if-error=10")],
                r(None, Some(30), None, false),
                fresh(60, 0, 10),
            ),
            (
                &[("cache-control", "max-age=60, must-revalidate")],
                r(None, Some(30), None, true),
                fresh(60, 30, 0),
            ),
            // override never makes "never stored" storable
            (&[("cache-control", "no-store")], r(Some(300), None, None, true), Err(NoStore)),
            (&[("cache-control", "private")], r(Some(300), None, None, true), Err(Private)),
            (&[("cache-control", "no-cache")], r(Some(300), None, None, true), Err(NoCache)),
            (&[("set-cookie", "a=b")], r(Some(300), None, None, true), Err(SetCookie)),
            (&[("vary", "*")], r(Some(300), None, None, true), Err(VaryStar)),
            (&[], Rule { cache: false, ..r(Some(300), None, None, true) }, Err(RuleNoCache)),
        ];
        for (pairs, rule, expected) in table {
            assert_eq!(
                response_decision(200, &headers(pairs), Some(&rule), MAX, NOW, 0),
                expected,
                "{pairs:?} {rule:?}"
            );
        }
        let override_rule = r(Some(300), None, None, true);
        assert_eq!(response_decision(500, &HeaderMap::new(), Some(&override_rule), MAX, NOW, 0), Err(Status));
        assert_eq!(
            response_decision(200, &headers(&[("content-length", "11")]), Some(&override_rule), 10, NOW, 0),
            Err(TooLarge)
        );
    }

    #[test]
    fn freshness_stale_copy_ttl() {
        let table = [
            ((60, 0, 0), 60),
            ((60, 30, 0), 90),
            ((60, 30, 600), 660),
            ((60, 600, 30), 660),
            ((0, 0, 5), 5),
            ((u32::MAX, 1, 0), u32::MAX),
        ];
        for ((ttl, swr, sie), expected) in table {
            assert_eq!(Freshness { ttl, swr, sie }.stale_copy_ttl(), expected);
        }
    }

    #[test]
    fn body_fits_and_origin_age() {
        assert!(body_fits(0, 0));
        assert!(body_fits(10, 10));
        assert!(!body_fits(11, 10));
        assert_eq!(origin_age_of(&headers(&[])), 0);
        assert_eq!(origin_age_of(&headers(&[("age", "42")])), 42);
        assert_eq!(origin_age_of(&headers(&[("age", " 7 , 9")])), 7);
        assert_eq!(origin_age_of(&headers(&[("age", "-1")])), 0);
        assert_eq!(origin_age_of(&headers(&[("age", "99999999999")])), 1 << 31);
    }

    #[test]
    fn content_length_conflicts_are_ignored() {
        let h =
            headers(&[("cache-control", "max-age=1"), ("content-length", "5"), ("content-length", "500")]);
        assert_eq!(response_decision(200, &h, None, 10, NOW, 0), fresh(1, 0, 0));
        let h =
            headers(&[("cache-control", "max-age=1"), ("content-length", "500"), ("content-length", "500")]);
        assert_eq!(response_decision(200, &h, None, 10, NOW, 0), Err(NoCacheReason::TooLarge));
    }
}
