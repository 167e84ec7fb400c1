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
    // One pass over the names present rather than a parse and a lookup for each of the seven
    // (and each listed) names: this runs on every request and response (issue 11).
    if !headers.keys().any(|name| HOP_BY_HOP.contains(&name.as_str())) {
        return; // no `Connection` either, so nothing it lists
    }
    let listed = connection_listed(headers);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(&name.as_str()) || listed.iter().any(|l| l == name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
}

/// Whether the client asks for a WebSocket: `Upgrade` names the `websocket` protocol (any case,
/// any version suffix, anywhere in the list). The only upgrade the edge forwards (docs §6.2);
/// any other protocol (`h2c`, ...) is dropped with the hop-by-hop headers and the request
/// proceeds as an ordinary one (RFC 9110 §7.8 lets a server ignore `Upgrade`).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::UPGRADE).iter().any(|value| {
        String::from_utf8_lossy(value.as_bytes()).split(',').any(|protocol| {
            let name = protocol.split('/').next().unwrap_or("").trim();
            name.eq_ignore_ascii_case("websocket")
        })
    })
}

/// The request headers that make a WebSocket handshake, which hop-by-hop hygiene removed from
/// `forwarded`: `Upgrade: websocket` and `Connection: Upgrade` (nothing else the client's
/// `Connection` named), plus every `Sec-WebSocket-*` header of the `client`'s, as sent.
pub fn restore_websocket_handshake(client: &HeaderMap, forwarded: &mut HeaderMap) {
    forwarded.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
    forwarded.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    for name in client.keys().filter(|name| name.as_str().starts_with("sec-websocket-")) {
        forwarded.remove(name);
        for value in client.get_all(name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
}

/// Whether `name` is one the worker reserves. `_` reads as `-`: servers that expose headers as
/// CGI variables merge `Edge_Session` into `HTTP_EDGE_SESSION`, a forged session.
pub fn is_reserved(name: &str) -> bool {
    let prefix = RESERVED_PREFIX.as_bytes();
    name.len() >= prefix.len()
        && name.bytes().zip(prefix).all(|(got, want)| {
            let got = if got == b'_' { b'-' } else { got.to_ascii_lowercase() };
            got == *want
        })
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

/// Headers some origins trust to rebuild the URL, scheme or method they answer for. The edge
/// is the trust boundary: on a cacheable request a client's copy would poison a shared entry.
pub const CLIENT_URL_OVERRIDES: [&str; 6] = [
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
];

/// The client's conditional headers: a fill must fetch the full response for everyone, never
/// the 304 or 412 that one client's validators would earn.
pub const CONDITIONALS: [&str; 5] =
    ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range"];

/// The client's headers as the origin should get them, before the session adds its own: minus
/// hop-by-hop, `Host` and the reserved names; `Forwarded`, `X-Forwarded-Proto` and
/// `X-Forwarded-Host` set from what the edge knows (`scheme` and `host` of the URL the client
/// asked for, the address in `CF-Connecting-IP`), which is also appended to `X-Forwarded-For`.
/// On a `cacheable` request the [`CLIENT_URL_OVERRIDES`] go too.
pub fn forwarded_headers(client: &HeaderMap, scheme: &str, host: &str, cacheable: bool) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    strip_reserved(&mut headers);
    headers.remove(http::header::HOST);
    headers.remove(http::header::FORWARDED);
    if cacheable {
        for name in CLIENT_URL_OVERRIDES {
            headers.remove(name);
        }
    }
    let client_ip = headers.get("cf-connecting-ip").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(client_ip) = client_ip.clone() {
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client_ip}"),
            _ => client_ip,
        };
        if let Ok(value) = forwarded_for.parse() {
            headers.insert("x-forwarded-for", value);
        }
    }
    let forwarded = match &client_ip {
        Some(ip) if ip.contains(':') => format!("for=\"[{ip}]\";proto={scheme};host=\"{host}\""),
        Some(ip) => format!("for={ip};proto={scheme};host=\"{host}\""),
        None => format!("proto={scheme};host=\"{host}\""),
    };
    for (name, value) in
        [("x-forwarded-proto", scheme), ("x-forwarded-host", host), ("forwarded", &forwarded)]
    {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    headers
}

/// Removes the client's validators from a request that fills the cache.
pub fn strip_conditionals(headers: &mut HeaderMap) {
    for name in CONDITIONALS {
        headers.remove(name);
    }
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
    fn a_map_without_hop_by_hop_headers_keeps_every_value() {
        let mut h = map(&[("accept", "*/*"), ("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-te", "1")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept", "set-cookie", "x-te"]);
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn every_connection_header_lists_names_to_drop() {
        let mut h =
            map(&[("connection", "x-a"), ("connection", "X-B"), ("x-a", "1"), ("x-b", "2"), ("x-c", "3")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-c"]);
    }

    #[test]
    fn only_websocket_counts_as_an_upgrade() {
        for value in ["websocket", "WebSocket", "h2c, websocket", "websocket/13"] {
            assert!(is_websocket_upgrade(&map(&[("upgrade", value)])), "{value}");
        }
        for value in ["h2c", "HTTP/2.0", "websockets", "", "TLS/1.2"] {
            assert!(!is_websocket_upgrade(&map(&[("upgrade", value)])), "{value}");
        }
        assert!(!is_websocket_upgrade(&map(&[("connection", "upgrade")])));
    }

    #[test]
    fn the_handshake_headers_come_back_and_nothing_else_connection_named() {
        let client = map(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade, X-Private"),
            ("x-private", "1"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat"),
            ("sec-websocket-protocol", "superchat"),
            ("origin", "https://shop.example"),
        ]);
        let mut forwarded = forwarded_headers(&client, "https", "shop.example", true);
        restore_websocket_handshake(&client, &mut forwarded);
        assert_eq!(forwarded["upgrade"], "websocket");
        assert_eq!(forwarded["connection"], "Upgrade");
        assert!(forwarded.get("x-private").is_none());
        assert_eq!(forwarded["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(forwarded.get_all("sec-websocket-protocol").iter().count(), 2);
        assert_eq!(forwarded["origin"], "https://shop.example");
    }

    #[test]
    fn reserved_names_are_matched_in_any_case_and_nothing_else() {
        assert!(is_reserved("edge-session"));
        assert!(is_reserved("Edge-Session-Id"));
        assert!(!is_reserved("x-edge-session"));
        assert!(is_reserved("edge_session"), "CGI servers read _ as -");
        assert!(is_reserved("EDGE_SESSION_ID"));
        assert!(!is_reserved("edge"));
        let mut h = map(&[
            ("edge-session", "forged"),
            ("edge_session", "forged"),
            ("edge-session-set", "{}"),
            ("x-edge-session", "kept"),
        ]);
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
        let h = forwarded_headers(&client, "https", "shop.example", true);
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert!(h.get("host").is_none() && h.get("edge-session").is_none() && h.get("connection").is_none());
        assert_eq!(h["accept"], "text/html");
        assert_eq!(h["forwarded"], "for=203.0.113.9;proto=https;host=\"shop.example\"");
    }

    #[test]
    fn clients_cannot_rewrite_the_url_or_forwarding_of_a_cacheable_request() {
        let client = map(&[
            ("forwarded", "host=evil.example"),
            ("x-forwarded-host", "evil.example"),
            ("x-original-url", "/admin"),
            ("x-http-method-override", "DELETE"),
            ("x-forwarded-port", "8443"),
        ]);
        let cacheable = forwarded_headers(&client, "https", "shop.example", true);
        assert!(!cacheable.get("forwarded").unwrap().to_str().unwrap().contains("evil"));
        assert_eq!(cacheable["x-forwarded-host"], "shop.example");
        for name in CLIENT_URL_OVERRIDES {
            assert!(cacheable.get(name).is_none(), "{name}");
        }
        // A write is the client's own business: its override reaches the origin.
        let write = forwarded_headers(&client, "https", "shop.example", false);
        assert_eq!(write["x-http-method-override"], "DELETE");
        assert_eq!(write["x-forwarded-host"], "shop.example");
    }

    #[test]
    fn fills_lose_every_conditional() {
        let mut h = map(&[
            ("if-none-match", "\"v1\""),
            ("if-modified-since", "x"),
            ("if-range", "y"),
            ("accept", "*/*"),
        ]);
        strip_conditionals(&mut h);
        assert_eq!(names(&h), ["accept"]);
    }
}
