//! Where a request ended up in the cache ([`CachePhase`]) and why something was not looked up
//! or not stored ([`NoCacheReason`]). Both have an `as_str()` for logs, metrics and the
//! `Cache-Status` header; a bypass is never an anonymous `false`.

use std::fmt;

/// Every reason a request is not looked up, or a response is not stored.
///
/// [`NoCacheReason::as_str`] gives the kebab-case name used in `Cache-Status: ...; detail=<name>`
/// and in logs. The names are part of the external contract: do not rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoCacheReason {
    // ---- request side: no lookup ----
    /// The method is not `GET` or `HEAD`.
    Method,
    /// The request carries `Authorization` and the entry, or the origin's answer, is not marked
    /// `public`, `s-maxage` or `must-revalidate` (RFC 9111 §3.5).
    Authorization,
    /// The request carries `Range`. Partial responses (206) are not stored, and a stored full
    /// response is not cut into ranges, so such requests go straight to the origin.
    Range,
    /// The request asks for a WebSocket (`Upgrade: websocket`): forwarded as an upgrade, the
    /// origin's `101` and its socket handed to the client. Other `Upgrade` values are ignored.
    Upgrade,
    /// The matching `CACHE_RULES` rule says `"cache": false`.
    RuleNoCache,
    /// The request carries a cookie the matching rule's `bypass_cookies` names.
    RuleBypassCookie,
    /// The path is under the reserved `/__edge/` prefix.
    Admin,
    /// The request URL does not parse as an absolute URI: no key can be derived from it.
    UnparsableUrl,
    // ---- response side: not stored ----
    /// `Cache-Control: no-store`.
    NoStore,
    /// Unqualified `Cache-Control: private`.
    Private,
    /// Unqualified `Cache-Control: no-cache`.
    NoCache,
    /// `Vary: *`.
    VaryStar,
    /// The response sets a cookie.
    SetCookie,
    /// The request carried a live session and the response neither varies on it nor says
    /// `public` or `s-maxage`: it may have been built for that session, so no one else gets it
    /// (a rule's `ttl` never makes it shared).
    PerSession,
    /// The status code is not one edge-cache stores.
    Status,
    /// The body (declared or actual) is larger than `CACHE_MAX_BYTES`.
    TooLarge,
    /// No `s-maxage`/`max-age` from the origin and no rule `ttl`.
    NoFreshness,
    /// The response is already stale on arrival (e.g. `max-age=0`, or `Age` ≥ `max-age`) and has
    /// no stale-while-revalidate or stale-if-error window: storing it would serve nobody.
    ZeroTtl,
    // ---- operational ----
    /// Redis did not answer in time or answered garbage: fail open, straight to the origin.
    RedisUnavailable,
    /// The key recently produced an uncacheable response: skip the lock for a while.
    HitForPass,
    /// A waiter waited `CACHE_LOCK_WAIT_MS` for the lock holder and then asked the origin itself.
    LockTimeout,
    /// The origin failed (5xx, timeout, network error).
    OriginError,
}

impl NoCacheReason {
    /// Every variant, in declaration order (for tests, docs and metrics registration).
    pub const ALL: [NoCacheReason; 22] = [
        NoCacheReason::Method,
        NoCacheReason::Authorization,
        NoCacheReason::Range,
        NoCacheReason::Upgrade,
        NoCacheReason::RuleNoCache,
        NoCacheReason::RuleBypassCookie,
        NoCacheReason::Admin,
        NoCacheReason::UnparsableUrl,
        NoCacheReason::NoStore,
        NoCacheReason::Private,
        NoCacheReason::NoCache,
        NoCacheReason::VaryStar,
        NoCacheReason::SetCookie,
        NoCacheReason::PerSession,
        NoCacheReason::Status,
        NoCacheReason::TooLarge,
        NoCacheReason::NoFreshness,
        NoCacheReason::ZeroTtl,
        NoCacheReason::RedisUnavailable,
        NoCacheReason::HitForPass,
        NoCacheReason::LockTimeout,
        NoCacheReason::OriginError,
    ];

    /// Kebab-case name: a valid structured-field token, used as `Cache-Status` `detail=`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoCacheReason::Method => "method",
            NoCacheReason::Authorization => "authorization",
            NoCacheReason::Range => "range",
            NoCacheReason::Upgrade => "upgrade",
            NoCacheReason::RuleNoCache => "rule-no-cache",
            NoCacheReason::RuleBypassCookie => "rule-bypass-cookie",
            NoCacheReason::Admin => "admin",
            NoCacheReason::UnparsableUrl => "unparsable-url",
            NoCacheReason::NoStore => "no-store",
            NoCacheReason::Private => "private",
            NoCacheReason::NoCache => "no-cache",
            NoCacheReason::VaryStar => "vary-star",
            NoCacheReason::SetCookie => "set-cookie",
            NoCacheReason::PerSession => "per-session",
            NoCacheReason::Status => "status",
            NoCacheReason::TooLarge => "too-large",
            NoCacheReason::NoFreshness => "no-freshness",
            NoCacheReason::ZeroTtl => "zero-ttl",
            NoCacheReason::RedisUnavailable => "redis-unavailable",
            NoCacheReason::HitForPass => "hit-for-pass",
            NoCacheReason::LockTimeout => "lock-timeout",
            NoCacheReason::OriginError => "origin-error",
        }
    }
}

impl fmt::Display for NoCacheReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one request was finally answered, as far as the cache is concerned.
///
/// `X-Cache` ([`CachePhase::x_cache`]) follows what nginx (`$upstream_cache_status`) and
/// Varnish users see: it says where *this* response came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CachePhase {
    /// Not looked up (request side) or cache skipped for an operational reason
    /// (`redis-unavailable`, `hit-for-pass`). `X-Cache: BYPASS`.
    Bypass(NoCacheReason),
    /// Served fresh from the cache; the origin was not asked. `X-Cache: HIT`.
    Hit,
    /// Served a stale copy within stale-while-revalidate; a background refresh may run.
    /// `X-Cache: STALE`.
    Stale,
    /// The origin failed and a stale copy within stale-if-error was served. `X-Cache: STALE`.
    StaleIfError,
    /// Nothing usable in the cache: this request held the lock, asked the origin and stored the
    /// answer. `X-Cache: MISS`.
    Miss,
    /// Nothing usable in the cache, but another request held the lock; this one waited and was
    /// served the holder's freshly stored result without asking the origin.
    /// `X-Cache: HIT`, as nginx (`proxy_cache_lock`) and Varnish (waiting list) report it: the
    /// response came from the cache and cost no origin fetch. `Cache-Status` still tells the
    /// truth in detail: `fwd=uri-miss; collapsed`.
    Collapsed,
    /// Looked up, nothing usable; the origin was asked and its answer was not stored, for the
    /// given reason (uncacheable response, lock wait ran out, origin error without stale copy).
    /// `X-Cache: MISS`, as nginx reports uncacheable answers; the reason is in `detail=`.
    /// Later requests for the key within hit-for-pass show `Bypass(HitForPass)`.
    MissUnstored(NoCacheReason),
    /// A stale copy was revalidated with the origin (a conditional request answered 304): the
    /// stored body was served and the entry freshened. `X-Cache: HIT` (the body came from the
    /// cache); `Cache-Status: fwd=stale; fwd-status=304; stored`.
    Revalidated,
}

impl CachePhase {
    /// Short name for logs and metrics: `bypass`, `hit`, `stale`, `stale-if-error`, `miss`,
    /// `collapsed`, `miss-unstored`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CachePhase::Bypass(_) => "bypass",
            CachePhase::Hit => "hit",
            CachePhase::Stale => "stale",
            CachePhase::StaleIfError => "stale-if-error",
            CachePhase::Miss => "miss",
            CachePhase::Collapsed => "collapsed",
            CachePhase::MissUnstored(_) => "miss-unstored",
            CachePhase::Revalidated => "revalidated",
        }
    }

    /// The `X-Cache` header value (docs §6.1): `HIT`, `MISS`, `STALE` or `BYPASS`.
    pub fn x_cache(&self) -> &'static str {
        match self {
            CachePhase::Hit | CachePhase::Collapsed | CachePhase::Revalidated => "HIT",
            CachePhase::Stale | CachePhase::StaleIfError => "STALE",
            CachePhase::Miss | CachePhase::MissUnstored(_) => "MISS",
            CachePhase::Bypass(_) => "BYPASS",
        }
    }

    /// The reason the cache was skipped or the answer not stored, if any.
    pub fn reason(&self) -> Option<NoCacheReason> {
        match self {
            CachePhase::Bypass(reason) | CachePhase::MissUnstored(reason) => Some(*reason),
            _ => None,
        }
    }

    /// True when the response was served from the cache (fresh, stale or collapsed).
    pub fn served_from_cache(&self) -> bool {
        matches!(
            self,
            CachePhase::Hit
                | CachePhase::Stale
                | CachePhase::StaleIfError
                | CachePhase::Collapsed
                | CachePhase::Revalidated
        )
    }
}

impl fmt::Display for CachePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(reason) => write!(f, "{}({})", self.as_str(), reason),
            None => f.write_str(self.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn reason_names_are_unique_kebab_case_tokens() {
        let mut seen = HashSet::new();
        for reason in NoCacheReason::ALL {
            let name = reason.as_str();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(!name.is_empty());
            assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{name} is not kebab-case");
            assert!(!name.ends_with('-') && !name.contains("--"), "{name}");
            assert_eq!(reason.to_string(), name);
        }
        assert_eq!(seen.len(), NoCacheReason::ALL.len());
    }

    #[test]
    fn reason_names_are_fixed() {
        let table = [
            (NoCacheReason::Method, "method"),
            (NoCacheReason::Authorization, "authorization"),
            (NoCacheReason::Range, "range"),
            (NoCacheReason::Upgrade, "upgrade"),
            (NoCacheReason::RuleNoCache, "rule-no-cache"),
            (NoCacheReason::RuleBypassCookie, "rule-bypass-cookie"),
            (NoCacheReason::Admin, "admin"),
            (NoCacheReason::NoStore, "no-store"),
            (NoCacheReason::Private, "private"),
            (NoCacheReason::NoCache, "no-cache"),
            (NoCacheReason::VaryStar, "vary-star"),
            (NoCacheReason::SetCookie, "set-cookie"),
            (NoCacheReason::Status, "status"),
            (NoCacheReason::TooLarge, "too-large"),
            (NoCacheReason::NoFreshness, "no-freshness"),
            (NoCacheReason::ZeroTtl, "zero-ttl"),
            (NoCacheReason::RedisUnavailable, "redis-unavailable"),
            (NoCacheReason::HitForPass, "hit-for-pass"),
            (NoCacheReason::LockTimeout, "lock-timeout"),
            (NoCacheReason::OriginError, "origin-error"),
        ];
        for (reason, name) in table {
            assert_eq!(reason.as_str(), name);
        }
    }

    #[test]
    fn x_cache_values() {
        let table = [
            (CachePhase::Hit, "HIT"),
            (CachePhase::Collapsed, "HIT"),
            (CachePhase::Revalidated, "HIT"),
            (CachePhase::Stale, "STALE"),
            (CachePhase::StaleIfError, "STALE"),
            (CachePhase::Miss, "MISS"),
            (CachePhase::MissUnstored(NoCacheReason::SetCookie), "MISS"),
            (CachePhase::MissUnstored(NoCacheReason::LockTimeout), "MISS"),
            (CachePhase::Bypass(NoCacheReason::Method), "BYPASS"),
            (CachePhase::Bypass(NoCacheReason::RedisUnavailable), "BYPASS"),
            (CachePhase::Bypass(NoCacheReason::HitForPass), "BYPASS"),
        ];
        for (phase, expected) in table {
            assert_eq!(phase.x_cache(), expected, "{phase:?}");
        }
    }

    #[test]
    fn phase_names_reasons_and_display() {
        let table = [
            (CachePhase::Hit, "hit", None, true),
            (CachePhase::Stale, "stale", None, true),
            (CachePhase::StaleIfError, "stale-if-error", None, true),
            (CachePhase::Miss, "miss", None, false),
            (CachePhase::Collapsed, "collapsed", None, true),
            (
                CachePhase::Bypass(NoCacheReason::Authorization),
                "bypass",
                Some(NoCacheReason::Authorization),
                false,
            ),
            (
                CachePhase::MissUnstored(NoCacheReason::NoStore),
                "miss-unstored",
                Some(NoCacheReason::NoStore),
                false,
            ),
        ];
        for (phase, name, reason, from_cache) in table {
            assert_eq!(phase.as_str(), name);
            assert_eq!(phase.reason(), reason);
            assert_eq!(phase.served_from_cache(), from_cache, "{phase:?}");
        }
        assert_eq!(CachePhase::Hit.to_string(), "hit");
        assert_eq!(CachePhase::Bypass(NoCacheReason::NoStore).to_string(), "bypass(no-store)");
    }
}
