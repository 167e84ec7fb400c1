//! Issue 16: WebSocket handshakes through `Edge::handle`, natively. What the origin receives
//! (the upgrade headers, the session, never a forged one, the client's `Origin`), what the
//! client gets back (the origin's `101` as an upgraded body, or its refusal), and other
//! `Upgrade` values ignored.

mod support;

use edge_core::ServedBody;
use http::Method;
use support::host::{Received, Reply};
use support::local;
use support::site::{header, header_of, path_of, Site};

const SECRET: &str = "a-session-secret-of-at-least-32-bytes!!";
const ADMIN: &str = "admin-token";

/// An origin with a WebSocket at `/socket` (it switches only when asked to), one that refuses
/// at `/refused`, a login, and a cacheable page.
fn site(req: &Received) -> Reply {
    let path = path_of(req);
    let asks_websocket = header_of(req, "upgrade") == "websocket";
    match (req.method.as_str(), path) {
        ("GET", "/login") => (200, vec![("edge-session-set", r#"{"user":"alice"}"#.into())], b"in".to_vec()),
        ("GET", "/socket") if asks_websocket => (
            101,
            vec![
                ("upgrade", "websocket".into()),
                ("connection", "Upgrade".into()),
                ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()),
                ("cache-tag", "internal".into()),
            ],
            b"socket".to_vec(),
        ),
        ("GET", "/socket") => {
            (200, vec![("cache-control", "public, max-age=60".into())], b"plain page".to_vec())
        }
        ("GET", "/refused") => (403, vec![("content-type", "text/plain".into())], b"not you".to_vec()),
        ("GET", "/odd") => (999, vec![], Vec::new()),
        _ => (404, vec![], b"no".to_vec()),
    }
}

fn plain_site() -> Site {
    Site::new(&[("SESSION_SECRET", SECRET), ("ADMIN_TOKEN", ADMIN)], site)
}

/// A browser's handshake, plus `extra`.
fn handshake<'a>(extra: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
    let mut headers = vec![
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat"),
        ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"),
        ("origin", "https://evil.example"),
    ];
    headers.extend_from_slice(extra);
    headers
}

fn sent(received: &Received, name: &str) -> Vec<String> {
    received.headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("?").to_string()).collect()
}

#[test]
fn a_websocket_handshake_is_forwarded_as_an_upgrade_and_its_101_handed_back() {
    local(async {
        let s = plain_site();
        let served = s.send(Method::GET, "/socket", &handshake(&[])).await;
        assert_eq!(served.status, 101);
        assert!(matches!(served.body, ServedBody::Upgraded(ref b) if b == b"socket"));
        assert_eq!(header(&served, "x-cache"), "BYPASS");
        assert!(
            header(&served, "cache-status").contains("detail=upgrade"),
            "{}",
            header(&served, "cache-status")
        );
        assert_eq!(header(&served, "sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(served.headers.get("cache-tag").is_none(), "tags are the cache's, not the client's");

        let origin = s.host.last_received();
        assert_eq!(origin.method, Method::GET);
        assert_eq!(sent(&origin, "upgrade"), ["websocket"]);
        assert_eq!(sent(&origin, "connection"), ["Upgrade"], "only the upgrade is named");
        assert_eq!(sent(&origin, "sec-websocket-key"), ["dGhlIHNhbXBsZSBub25jZQ=="]);
        assert_eq!(sent(&origin, "sec-websocket-version"), ["13"]);
        assert_eq!(sent(&origin, "sec-websocket-protocol"), ["chat"]);
        assert_eq!(sent(&origin, "sec-websocket-extensions"), ["permessage-deflate; client_max_window_bits"]);
        assert_eq!(sent(&origin, "origin"), ["https://evil.example"], "the origin must check it itself");
        assert_eq!(sent(&origin, "x-forwarded-host"), ["shop.example"]);
        assert!(origin.headers.get("keep-alive").is_none());

        // Never cached: the next handshake goes to the origin again.
        s.send(Method::GET, "/socket", &handshake(&[])).await;
        assert_eq!(s.host.origin_requests(), 2);
    });
}

#[test]
fn the_handshake_carries_the_session_and_never_a_forged_one() {
    local(async {
        let s = plain_site();
        let cookie = s.login().await;
        let served = s
            .send(
                Method::GET,
                "/socket",
                &handshake(&[("cookie", &cookie), ("edge-session", "forged"), ("edge_session_id", "x")]),
            )
            .await;
        assert_eq!(served.status, 101);
        let origin = s.host.last_received();
        let id = sent(&origin, "edge-session-id");
        assert_eq!(id.len(), 1, "the session id reaches the origin: {id:?}");
        assert_ne!(id[0], "x");
        let data = sent(&origin, "edge-session");
        assert_eq!(data.len(), 1);
        assert_ne!(data[0], "forged");
        assert!(origin.headers.get("edge_session_id").is_none());
        assert!(
            sent(&origin, "cookie").iter().all(|c| !c.contains("__Host-session")),
            "our cookie stays here"
        );

        // Without a cookie, a forged session is simply dropped.
        s.send(Method::GET, "/socket", &handshake(&[("edge-session", "forged"), ("edge-session-id", "x")]))
            .await;
        let anonymous = s.host.last_received();
        assert!(anonymous.headers.get("edge-session").is_none());
        assert!(anonymous.headers.get("edge-session-id").is_none());
    });
}

#[test]
fn a_refused_upgrade_is_the_origins_answer() {
    local(async {
        let s = plain_site();
        let served = s.send(Method::GET, "/refused", &handshake(&[])).await;
        assert_eq!(served.status, 403);
        assert!(matches!(served.body, ServedBody::Stream(ref b) if b == b"not you"));
        assert_eq!(header(&served, "content-type"), "text/plain");
        assert!(header(&served, "cache-status").contains("detail=upgrade"));
        assert_eq!(sent(&s.host.last_received(), "upgrade"), ["websocket"]);

        // An origin that ignores the upgrade answers a page: passed, not cached.
        s.send(Method::GET, "/socket", &[]).await; // a plain GET fills the cache
        let ignored = s.send(Method::GET, "/refused", &handshake(&[])).await;
        assert_eq!(header(&ignored, "x-cache"), "BYPASS");

        // A status no HTTP answer may carry is still a 502.
        let odd = s.send(Method::GET, "/odd", &handshake(&[])).await;
        assert_eq!(odd.status, 502);
    });
}

#[test]
fn an_upgrade_with_credentials_or_rules_is_still_an_upgrade() {
    local(async {
        let s = plain_site();
        let served = s.send(Method::GET, "/socket", &handshake(&[("authorization", "Bearer t")])).await;
        assert_eq!(served.status, 101);
        assert!(header(&served, "cache-status").contains("detail=upgrade"));
        assert_eq!(sent(&s.host.last_received(), "authorization"), ["Bearer t"]);
    });
}

#[test]
fn other_upgrades_are_dropped_and_the_request_is_an_ordinary_one() {
    local(async {
        let s = plain_site();
        let h2c = [
            ("upgrade", "h2c"),
            ("connection", "Upgrade, HTTP2-Settings"),
            ("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
        ];
        let first = s.send(Method::GET, "/socket", &h2c).await;
        assert_eq!((first.status, header(&first, "x-cache").as_str()), (200, "MISS"));
        assert!(matches!(first.body, ServedBody::Stream(_) | ServedBody::Bytes(_)));
        let origin = s.host.last_received();
        for name in ["upgrade", "connection", "http2-settings"] {
            assert!(origin.headers.get(name).is_none(), "{name} reached the origin");
        }
        let again = s.send(Method::GET, "/socket", &h2c).await;
        assert_eq!(header(&again, "x-cache"), "HIT");
        assert_eq!(s.host.origin_requests(), 1);

        // A WebSocket upgrade on anything but GET is no handshake (RFC 6455 §4.1): the
        // request goes as it would without it.
        let post = s.send(Method::POST, "/refused", &handshake(&[])).await;
        assert!(header(&post, "cache-status").contains("detail=method"), "{}", header(&post, "cache-status"));
        assert!(s.host.last_received().headers.get("upgrade").is_none());
    });
}

#[test]
fn upgrades_are_counted_as_bypasses_and_origin_fetches() {
    local(async {
        let s = plain_site();
        s.send(Method::GET, "/socket", &handshake(&[])).await;
        s.send(Method::GET, "/refused", &handshake(&[])).await;
        let bearer = format!("Bearer {ADMIN}");
        let stats = s.send(Method::GET, "/__edge/stats", &[("authorization", &bearer)]).await;
        let text = match &stats.body {
            ServedBody::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        let counts: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(counts["bypass"].as_u64(), Some(2), "{counts}");
        assert_eq!(counts["origin_fetch"].as_u64(), Some(2), "{counts}");
    });
}
