//! The responses the state machine answers with: from a stored entry, passed from the origin,
//! or an origin error; each carries `X-Cache` and `Cache-Status` for its phase (docs §6.1).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::cache_status::CacheStatus;
use crate::entry::CacheEntry;
use crate::hygiene::{strip_tag_headers, CACHE_STATUS, X_CACHE};
use crate::phase::{CachePhase, NoCacheReason};
use crate::runtime::{OriginError, OriginResponse};

/// A response to send, with the phase it came from.
pub struct Served<B> {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: ServedBody<B>,
    pub phase: CachePhase,
}

pub enum ServedBody<B> {
    Bytes(Vec<u8>),
    Stream(B),
    Empty,
    /// The origin accepted a WebSocket (`101`): the runtime's own response, whose socket the
    /// host hands to the client as it is; only the head (`headers`) is the core's.
    Upgraded(B),
}

/// A response built from a stored entry.
pub(super) fn from_entry<B>(
    entry: &CacheEntry,
    phase: CachePhase,
    head_only: bool,
    now_ms: u64,
) -> Served<B> {
    let mut headers = HeaderMap::new();
    for (name, value) in &entry.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    if let Ok(age) = HeaderValue::from_str(&entry.age_secs(now_ms).to_string()) {
        headers.insert(http::header::AGE, age);
    }
    // The stored body's length, for GET and HEAD alike (a HEAD answers what a GET would).
    if !matches!(entry.status, 204 | 304) {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
    }
    set_cache_headers(&mut headers, phase, Some(entry.fresh_remaining_secs(now_ms)));
    let body = if head_only { ServedBody::Empty } else { ServedBody::Bytes(entry.body.clone()) };
    Served { status: entry.status, headers, body, phase }
}

/// A stale copy served because the origin answered `origin_status` (RFC 9211 `fwd-status`).
pub(super) fn stale_for_error_status<B>(entry: &CacheEntry, origin_status: u16, now_ms: u64) -> Served<B> {
    let mut served = from_entry(entry, CachePhase::StaleIfError, false, now_ms);
    let status = CacheStatus::new(CachePhase::StaleIfError)
        .with_ttl(entry.fresh_remaining_secs(now_ms))
        .with_fwd_status(origin_status);
    if let Ok(value) = HeaderValue::from_str(&status.header_value()) {
        served.headers.insert(CACHE_STATUS, value);
    }
    served
}

/// A response passed from the origin unstored.
pub(super) fn passed<B>(response: OriginResponse<B>, phase: CachePhase) -> Served<B> {
    let OriginResponse { status, mut headers, body } = response;
    strip_tag_headers(&mut headers);
    set_cache_headers(&mut headers, phase, None);
    Served { status, headers, body: ServedBody::Stream(body), phase }
}

/// 504 for a timeout, 502 otherwise, with a short text body.
pub fn origin_error_response<B>(error: &OriginError) -> Served<B> {
    let (status, text) = match error {
        OriginError::Timeout => (504, "edge-cache: origin timed out\n"),
        OriginError::Unreachable(_) => (502, "edge-cache: origin unreachable\n"),
        OriginError::InvalidStatus(_) => (502, "edge-cache: origin sent an invalid status\n"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let phase = CachePhase::Bypass(NoCacheReason::OriginError);
    set_cache_headers(&mut headers, phase, None);
    Served { status, headers, body: ServedBody::Bytes(text.as_bytes().to_vec()), phase }
}

/// Sets `X-Cache` and `Cache-Status` for `phase`.
pub fn set_cache_headers(headers: &mut HeaderMap, phase: CachePhase, ttl: Option<i64>) {
    let mut status = CacheStatus::new(phase);
    if let Some(ttl) = ttl {
        status = status.with_ttl(ttl);
    }
    headers.insert(X_CACHE, HeaderValue::from_static(phase.x_cache()));
    if let Ok(value) = HeaderValue::from_str(&status.header_value()) {
        headers.insert(CACHE_STATUS, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::entry;

    #[test]
    fn a_hit_replays_the_entry_with_its_age_and_phase() {
        let stored = entry(203, b"body", 1_000_000);
        let served: Served<()> = from_entry(&stored, CachePhase::Hit, false, 1_010_000);
        assert_eq!(served.status, 203);
        assert_eq!(served.headers["content-type"], "text/plain");
        assert_eq!(served.headers["age"], "10");
        assert_eq!(served.headers["content-length"], "4");
        assert_eq!(served.headers["x-cache"], "HIT");
        assert!(served.headers["cache-status"].to_str().unwrap().contains("hit; ttl=50"));
        assert!(matches!(served.body, ServedBody::Bytes(ref b) if b == b"body"));
        let head: Served<()> = from_entry(&stored, CachePhase::Hit, true, 1_010_000);
        assert!(matches!(head.body, ServedBody::Empty));
    }

    #[test]
    fn a_stale_copy_for_an_error_names_the_origin_status() {
        let stored = entry(200, b"old", 1_000_000);
        let served: Served<()> = stale_for_error_status(&stored, 503, 1_100_000);
        assert_eq!(served.headers["x-cache"], "STALE");
        assert!(served.headers["cache-status"].to_str().unwrap().contains("fwd-status=503"));
    }

    #[test]
    fn passed_responses_lose_tag_headers_and_say_why() {
        let mut headers = HeaderMap::new();
        headers.insert("cache-tag", HeaderValue::from_static("a"));
        headers.insert("etag", HeaderValue::from_static("\"1\""));
        let served = passed(
            OriginResponse { status: 200, headers, body: () },
            CachePhase::Bypass(NoCacheReason::Method),
        );
        assert!(served.headers.get("cache-tag").is_none());
        assert_eq!(served.headers["etag"], "\"1\"");
        assert_eq!(served.headers["x-cache"], "BYPASS");
        assert!(served.headers["cache-status"].to_str().unwrap().contains("detail=method"));
    }

    #[test]
    fn origin_failures_are_502_or_504_and_never_stored_downstream() {
        let odd: Served<()> = origin_error_response(&OriginError::InvalidStatus(999));
        assert_eq!(odd.status, 502);
        assert!(odd.headers["cache-status"].to_str().unwrap().contains("detail=origin-error"));
        let timeout: Served<()> = origin_error_response(&OriginError::Timeout);
        let refused: Served<()> = origin_error_response(&OriginError::Unreachable("refused".into()));
        assert_eq!((timeout.status, refused.status), (504, 502));
        assert_eq!(timeout.headers["cache-control"], "no-store");
    }
}
