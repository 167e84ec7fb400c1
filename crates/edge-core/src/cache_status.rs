//! The RFC 9211 `Cache-Status` member edge-cache adds to every response that went through the
//! cache logic (docs §6.1).
//!
//! How phases map to parameters (RFC 9211 §2):
//! - `Hit` → `hit; ttl=N`.
//! - `Stale` (stale-while-revalidate) → `hit; ttl=-N`: the response came from the cache and this
//!   request was not forwarded (the refresh is a separate background request); the negative
//!   `ttl` says it was stale (RFC 9211 §2.4).
//! - `StaleIfError` → `fwd=stale; [fwd-status=S;] ttl=-N; detail=origin-error`: the request was
//!   forwarded *because* the entry was stale, the origin failed, the stale copy was served.
//! - `Miss` → `fwd=uri-miss; [ttl=N;] stored`.
//! - `Collapsed` → `fwd=uri-miss; [ttl=N;] collapsed`: the forward request was collapsed into
//!   the lock holder's, whose stored answer was reused.
//! - `MissUnstored(r)` → `fwd=uri-miss; [fwd-status=S;] detail=r`.
//! - `Bypass(r)` → `fwd=bypass; detail=r`.
//!
//! Parameters appear in RFC 9211's order: `hit`/`fwd`, `fwd-status`, `ttl`, `stored`,
//! `collapsed`, `detail`.

use std::fmt;

use crate::phase::CachePhase;

/// The cache name in every `Cache-Status` member this worker writes.
pub const CACHE_NAME: &str = "edge-cache";

/// Everything needed to write one `Cache-Status` member.
///
/// Build it with [`CacheStatus::new`] (which sets `stored` for `Miss` and `collapsed` for
/// `Collapsed`), add what is known with the `with_*` methods, then call
/// [`CacheStatus::header_value`] or format it with `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStatus {
    pub phase: CachePhase,
    /// Seconds of freshness left (negative when stale), e.g.
    /// `CacheEntry::fresh_remaining_secs`. Written as `ttl=`. Ignored for `Bypass`.
    pub ttl: Option<i64>,
    /// The response was stored by this request (`stored`). Only written for forwarded requests.
    pub stored: bool,
    /// The request was collapsed into another's origin fetch (`collapsed`). Only written for
    /// forwarded requests.
    pub collapsed: bool,
    /// The status the origin answered with, when it differs from the one sent to the client or is
    /// otherwise worth telling (`fwd-status=`). Only written for forwarded requests.
    pub fwd_status: Option<u16>,
}

impl CacheStatus {
    /// A status for `phase` with no ttl; `stored` is true for `Miss` and `collapsed` for
    /// `Collapsed`.
    pub fn new(phase: CachePhase) -> CacheStatus {
        CacheStatus {
            phase,
            ttl: None,
            stored: matches!(phase, CachePhase::Miss | CachePhase::Revalidated),
            fwd_status: if phase == CachePhase::Revalidated { Some(304) } else { None },
            collapsed: matches!(phase, CachePhase::Collapsed),
        }
    }

    pub fn with_ttl(mut self, ttl_secs: i64) -> CacheStatus {
        self.ttl = Some(ttl_secs);
        self
    }

    pub fn with_stored(mut self, stored: bool) -> CacheStatus {
        self.stored = stored;
        self
    }

    pub fn with_collapsed(mut self, collapsed: bool) -> CacheStatus {
        self.collapsed = collapsed;
        self
    }

    pub fn with_fwd_status(mut self, status: u16) -> CacheStatus {
        self.fwd_status = Some(status);
        self
    }

    /// The header value, e.g. `edge-cache; hit; ttl=42` or
    /// `edge-cache; fwd=bypass; detail=no-store`.
    pub fn header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CACHE_NAME)?;
        let fwd = match self.phase {
            CachePhase::Hit | CachePhase::Stale => None,
            CachePhase::StaleIfError | CachePhase::Revalidated => Some("stale"),
            CachePhase::Miss | CachePhase::Collapsed | CachePhase::MissUnstored(_) => Some("uri-miss"),
            CachePhase::Bypass(_) => Some("bypass"),
        };
        match fwd {
            None => f.write_str("; hit")?,
            Some(fwd) => write!(f, "; fwd={fwd}")?,
        }
        let forwarded = fwd.is_some();
        let bypass = matches!(self.phase, CachePhase::Bypass(_));
        if let (true, Some(status)) = (forwarded, self.fwd_status) {
            write!(f, "; fwd-status={status}")?;
        }
        if let (false, Some(ttl)) = (bypass, self.ttl) {
            write!(f, "; ttl={ttl}")?;
        }
        if forwarded && !bypass && self.stored {
            f.write_str("; stored")?;
        }
        if forwarded && !bypass && self.collapsed {
            f.write_str("; collapsed")?;
        }
        let detail = match self.phase {
            CachePhase::Bypass(reason) | CachePhase::MissUnstored(reason) => Some(reason.as_str()),
            CachePhase::StaleIfError => Some("origin-error"),
            _ => None,
        };
        if let Some(detail) = detail {
            write!(f, "; detail={detail}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::NoCacheReason;

    #[test]
    fn exact_header_values() {
        let table: Vec<(CacheStatus, &str)> = vec![
            (CacheStatus::new(CachePhase::Hit), "edge-cache; hit"),
            (CacheStatus::new(CachePhase::Hit).with_ttl(42), "edge-cache; hit; ttl=42"),
            (CacheStatus::new(CachePhase::Stale).with_ttl(-3), "edge-cache; hit; ttl=-3"),
            (
                CacheStatus::new(CachePhase::StaleIfError).with_ttl(-30),
                "edge-cache; fwd=stale; ttl=-30; detail=origin-error",
            ),
            (
                CacheStatus::new(CachePhase::StaleIfError).with_ttl(-30).with_fwd_status(503),
                "edge-cache; fwd=stale; fwd-status=503; ttl=-30; detail=origin-error",
            ),
            (CacheStatus::new(CachePhase::Miss), "edge-cache; fwd=uri-miss; stored"),
            (CacheStatus::new(CachePhase::Miss).with_ttl(60), "edge-cache; fwd=uri-miss; ttl=60; stored"),
            (CacheStatus::new(CachePhase::Miss).with_stored(false), "edge-cache; fwd=uri-miss"),
            (CacheStatus::new(CachePhase::Collapsed), "edge-cache; fwd=uri-miss; collapsed"),
            (
                CacheStatus::new(CachePhase::Collapsed).with_ttl(59),
                "edge-cache; fwd=uri-miss; ttl=59; collapsed",
            ),
            (
                CacheStatus::new(CachePhase::MissUnstored(NoCacheReason::SetCookie)),
                "edge-cache; fwd=uri-miss; detail=set-cookie",
            ),
            (
                CacheStatus::new(CachePhase::MissUnstored(NoCacheReason::Status)).with_fwd_status(500),
                "edge-cache; fwd=uri-miss; fwd-status=500; detail=status",
            ),
            (
                CacheStatus::new(CachePhase::MissUnstored(NoCacheReason::LockTimeout)),
                "edge-cache; fwd=uri-miss; detail=lock-timeout",
            ),
            (
                CacheStatus::new(CachePhase::Bypass(NoCacheReason::NoStore)),
                "edge-cache; fwd=bypass; detail=no-store",
            ),
            (
                CacheStatus::new(CachePhase::Bypass(NoCacheReason::RedisUnavailable)),
                "edge-cache; fwd=bypass; detail=redis-unavailable",
            ),
            // A bypass never claims ttl, stored or collapsed, whatever the caller passed.
            (
                CacheStatus::new(CachePhase::Bypass(NoCacheReason::Method))
                    .with_ttl(5)
                    .with_stored(true)
                    .with_collapsed(true),
                "edge-cache; fwd=bypass; detail=method",
            ),
            // A hit was not forwarded: no stored/collapsed/fwd-status.
            (
                CacheStatus::new(CachePhase::Hit).with_stored(true).with_collapsed(true).with_fwd_status(200),
                "edge-cache; hit",
            ),
        ];
        for (status, expected) in table {
            assert_eq!(status.header_value(), expected, "{status:?}");
            assert_eq!(status.to_string(), expected);
        }
    }

    #[test]
    fn every_value_is_a_valid_header_value() {
        let mut phases = vec![
            CachePhase::Hit,
            CachePhase::Stale,
            CachePhase::StaleIfError,
            CachePhase::Miss,
            CachePhase::Collapsed,
        ];
        for reason in NoCacheReason::ALL {
            phases.push(CachePhase::Bypass(reason));
            phases.push(CachePhase::MissUnstored(reason));
        }
        for phase in phases {
            let value = CacheStatus::new(phase).with_ttl(-1).header_value();
            assert!(http::HeaderValue::from_str(&value).is_ok(), "{value}");
            assert!(value.starts_with("edge-cache; "), "{value}");
        }
    }
}
