//! Header hygiene, in one place (docs §6.2): which headers never cross the edge, which names
//! the worker reserves for itself, and what the origin is told about the client.
//!
//! - Hop-by-hop fields (RFC 9110 §7.6.1) are dropped both ways and never stored: `Connection`
//!   and every name it lists, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//!   `Transfer-Encoding`, `Upgrade`.
//! - `Edge-Session*` names are the worker's: a client's copies are dropped before the origin
//!   sees the request, and the origin's directives are dropped before the client sees the
//!   response (docs §5.5).
//! - Tag headers (`Cache-Tag`, `Surrogate-Key`, `Edge-Purge-Tags`) are for the cache, not for
//!   clients.

use http::{HeaderMap, HeaderName};

/// Hop-by-hop headers plus the legacy ones proxies still meet.
pub const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// Every header name starting with this (any case) belongs to the worker.
pub const RESERVED_PREFIX: &str = "edge-session";

/// The origin's tags for the response it sends (comma or space separated).
pub const CACHE_TAG: &str = "cache-tag";
pub const SURROGATE_KEY: &str = "surrogate-key";
/// The tags a write's response asks the cache to purge.
pub const EDGE_PURGE_TAGS: &str = "edge-purge-tags";
/// Headers that carry cache tags or purge requests from the origin.
pub const TAG_HEADERS: [&str; 3] = [CACHE_TAG, SURROGATE_KEY, EDGE_PURGE_TAGS];

/// The cache's own response headers.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Names that `Connection` lists, lower-cased.
pub fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty())
                .collect::<Vec<String>>()
        })
        .collect()
}

/// Removes hop-by-hop headers, including those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether `name` is one the worker reserves.
pub fn is_reserved(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len() && name[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX)
}

/// Removes every header the worker reserves (a client's forged session, an origin's directives).
pub fn strip_reserved(headers: &mut HeaderMap) {
    let reserved: Vec<HeaderName> =
        headers.keys().filter(|name| is_reserved(name.as_str())).cloned().collect();
    for name in reserved {
        headers.remove(&name);
    }
}

/// Removes the origin's tag and purge headers from a client response.
pub fn strip_tag_headers(headers: &mut HeaderMap) {
    for name in TAG_HEADERS {
        headers.remove(name);
    }
}

/// Whether the origin's response asks the worker to change the session: such a response is
/// never stored.
pub fn carries_session_directive(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        matches!(name.as_str(), "edge-session-set" | "edge-session-rotate" | "edge-session-destroy")
    })
}

/// The client's headers as the origin should get them, before the session adds its own: minus
/// hop-by-hop, `Host` and the reserved names, plus `X-Forwarded-For` (the client address from
/// `CF-Connecting-IP` appended), `X-Forwarded-Proto` and `X-Forwarded-Host` (`scheme` and `host`
/// of the URL the client asked for).
pub fn forwarded_headers(client: &HeaderMap, scheme: &str, host: &str) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    strip_reserved(&mut headers);
    headers.remove(http::header::HOST);
    let client_ip = headers.get("cf-connecting-ip").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(client_ip) = client_ip {
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client_ip}"),
            _ => client_ip,
        };
        if let Ok(value) = forwarded_for.parse() {
            headers.insert("x-forwarded-for", value);
        }
    }
    for (name, value) in [("x-forwarded-proto", scheme), ("x-forwarded-host", host)] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort();
        names
    }

    #[test]
    fn hop_by_hop_and_connection_listed_names_go() {
        let mut h = map(&[
            ("connection", "close, X-Private"),
            ("x-private", "1"),
            ("keep-alive", "5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept"]);
    }

    #[test]
    fn reserved_names_are_matched_in_any_case_and_nothing_else() {
        assert!(is_reserved("edge-session"));
        assert!(is_reserved("Edge-Session-Id"));
        assert!(!is_reserved("x-edge-session"));
        assert!(!is_reserved("edge"));
        let mut h =
            map(&[("edge-session", "forged"), ("edge-session-set", "{}"), ("x-edge-session", "kept")]);
        strip_reserved(&mut h);
        assert_eq!(names(&h), ["x-edge-session"]);
    }

    #[test]
    fn session_directives_are_recognised() {
        assert!(carries_session_directive(&map(&[("edge-session-rotate", "1")])));
        assert!(!carries_session_directive(&map(&[("edge-session", "x"), ("set-cookie", "a=b")])));
    }

    #[test]
    fn the_origin_learns_the_client_address_scheme_and_host() {
        let client = map(&[
            ("host", "shop.example"),
            ("cf-connecting-ip", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1"),
            ("edge-session", "forged"),
            ("connection", "keep-alive"),
            ("accept", "text/html"),
        ]);
        let h = forwarded_headers(&client, "https", "shop.example");
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert!(h.get("host").is_none() && h.get("edge-session").is_none() && h.get("connection").is_none());
        assert_eq!(h["accept"], "text/html");
    }
}
