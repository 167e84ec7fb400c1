//! Whole requests through `Edge::handle`, natively: the decisions the worker used to make in
//! its glue (reserved paths, the session on every kind of request, the re-lookup under
//! `Vary: Cookie`, invalidation after writes, counters, the admin API) against the memory
//! store and an in-process origin that records what it receives.

mod support;

use std::rc::Rc;

use edge_core::{Config, Edge, EdgeRequest, MemoryStore, Served, ServedBody};
use http::{HeaderMap, Method};
use support::host::{Received, Reply, TestHost};
use support::{local, settle, TestClock, TestRuntime};

const SECRET: &str = "a-session-secret-of-at-least-32-bytes!!";
const ADMIN: &str = "admin-token";

/// A small site: `/login` starts a session, `/me` is shared but varies on the cookie, `/item`
/// is cacheable and writable.
fn site(req: &Received) -> Reply {
    let session = req.headers.get("edge-session-id").and_then(|v| v.to_str().ok()).unwrap_or("anon");
    let path =
        req.url.split_once("://").map_or("", |(_, rest)| &rest[rest.find('/').unwrap_or(rest.len())..]);
    match (req.method.as_str(), path) {
        ("GET", "/login") => (200, vec![("edge-session-set", r#"{"user":"alice"}"#.into())], b"in".to_vec()),
        ("GET", "/logout") => (200, vec![("edge-session-destroy", "1".into())], b"out".to_vec()),
        ("GET", "/me") => (
            200,
            vec![("cache-control", "public, max-age=60".into()), ("vary", "Cookie".into())],
            format!("me:{session}").into_bytes(),
        ),
        ("GET", "/item") => (200, vec![("cache-control", "max-age=60".into())], b"item".to_vec()),
        ("POST", "/item") => (200, vec![], b"saved".to_vec()),
        _ => (404, vec![], b"no".to_vec()),
    }
}

struct Site {
    edge: Edge<MemoryStore<TestClock>>,
    host: TestHost,
}

fn site_with(vars: &[(&str, &str)]) -> Site {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("config");
    let clock = TestClock::new();
    let edge = Edge::new(Rc::new(config), MemoryStore::with_clock(clock.clone()));
    Site { edge, host: TestHost::new(TestRuntime { clock }, site) }
}

fn plain_site() -> Site {
    site_with(&[("SESSION_SECRET", SECRET), ("ADMIN_TOKEN", ADMIN)])
}

fn request(
    method: Method,
    url: &str,
    headers: &[(&'static str, &str)],
    body: Option<Vec<u8>>,
) -> EdgeRequest<Vec<u8>> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, value.parse().expect("header"));
    }
    EdgeRequest { method, url: url.to_string(), headers: map, body }
}

impl Site {
    async fn send(&self, method: Method, path: &str, headers: &[(&'static str, &str)]) -> Served<Vec<u8>> {
        let url = format!("https://shop.example{path}");
        let served = self.edge.handle(&self.host, request(method, &url, headers, None)).await;
        settle().await;
        served
    }

    /// Logs in and answers the `Cookie` header value that carries the session.
    async fn login(&self) -> String {
        let served = self.send(Method::GET, "/login", &[]).await;
        let set_cookie = header(&served, "set-cookie");
        set_cookie.split(';').next().expect("a cookie").to_string()
    }
}

fn header(served: &Served<Vec<u8>>, name: &str) -> String {
    served.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn body(served: &Served<Vec<u8>>) -> String {
    match &served.body {
        ServedBody::Bytes(b) | ServedBody::Stream(b) => String::from_utf8_lossy(b).into_owned(),
        ServedBody::Empty => String::new(),
    }
}

#[test]
fn reserved_paths_are_answered_at_the_edge_and_never_forwarded() {
    local(async {
        let s = plain_site();
        assert_eq!(s.send(Method::GET, "/__edge/nothing-here", &[]).await.status, 404);
        assert_eq!(s.send(Method::GET, "/__edge", &[]).await.status, 404);
        let health = s.send(Method::GET, "/__edge/health", &[]).await;
        assert_eq!(health.status, 200);
        assert!(body(&health).contains(r#""store":"memory""#), "{}", body(&health));
        assert_eq!(header(&health, "cache-control"), "no-store");
        let wrong_method = s.send(Method::POST, "/__edge/health", &[]).await;
        assert_eq!((wrong_method.status, header(&wrong_method, "allow").as_str()), (405, "GET, HEAD"));
        assert_eq!(s.host.origin_requests(), 0);
    });
}

#[test]
fn an_unparsable_url_bypasses_with_its_own_reason() {
    local(async {
        let s = plain_site();
        let served = s.send(Method::GET, "/a b", &[]).await;
        assert_eq!(header(&served, "x-cache"), "BYPASS");
        assert!(
            header(&served, "cache-status").contains("detail=unparsable-url"),
            "{}",
            header(&served, "cache-status")
        );
        assert_eq!(s.host.origin_requests(), 1);
    });
}

#[test]
fn the_origin_sees_the_session_on_reads_and_writes_and_never_a_forged_one() {
    local(async {
        let s = plain_site();
        let cookie = s.login().await;
        s.send(Method::POST, "/item", &[("cookie", &cookie), ("edge-session", "forged")]).await;
        let write = s.host.last_received();
        assert_eq!(write.method, Method::POST);
        let id = write.headers.get("edge-session-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(!id.is_empty(), "a write carries the session");
        assert_ne!(write.headers.get("edge-session").map(|v| v.as_bytes()), Some(&b"forged"[..]));
        assert!(write
            .headers
            .get("cookie")
            .is_none_or(|c| !c.to_str().unwrap_or("").contains("__Host-session")));

        s.send(Method::GET, "/nowhere", &[("edge-session-id", "someone-else")]).await;
        let anonymous = s.host.last_received();
        assert!(anonymous.headers.get("edge-session-id").is_none(), "a client cannot name a session");
        assert_eq!(
            anonymous.headers.get("x-forwarded-host").map(|v| v.as_bytes()),
            Some(&b"shop.example"[..])
        );
    });
}

#[test]
fn vary_cookie_is_keyed_on_the_session_the_store_confirmed() {
    local(async {
        let s = plain_site();
        let cookie = s.login().await;
        let mine = s.send(Method::GET, "/me", &[("cookie", &cookie)]).await;
        assert_eq!(header(&mine, "x-cache"), "MISS");
        assert!(body(&mine).starts_with("me:") && body(&mine) != "me:anon");
        let anonymous = s.send(Method::GET, "/me", &[]).await;
        assert_eq!((header(&anonymous, "x-cache").as_str(), body(&anonymous).as_str()), ("MISS", "me:anon"));
        let again = s.send(Method::GET, "/me", &[("cookie", &cookie)]).await;
        assert_eq!((header(&again, "x-cache"), body(&again)), ("HIT".to_string(), body(&mine)));

        // A signed cookie whose session is gone keys like no session at all: the lookup made
        // with its candidate id is repeated under the anonymous variant, a HIT.
        s.send(Method::GET, "/logout", &[("cookie", &cookie)]).await;
        let fetches = s.host.origin_requests();
        let after_logout = s.send(Method::GET, "/me", &[("cookie", &cookie)]).await;
        assert_eq!(
            (header(&after_logout, "x-cache").as_str(), body(&after_logout).as_str()),
            ("HIT", "me:anon")
        );
        assert_eq!(s.host.origin_requests(), fetches);
    });
}

#[test]
fn a_write_invalidates_the_cached_read_of_its_url() {
    local(async {
        let s = plain_site();
        assert_eq!(header(&s.send(Method::GET, "/item", &[]).await, "x-cache"), "MISS");
        assert_eq!(header(&s.send(Method::GET, "/item", &[]).await, "x-cache"), "HIT");
        let write = s.send(Method::POST, "/item", &[]).await;
        assert_eq!((write.status, header(&write, "x-cache").as_str()), (200, "BYPASS"));
        assert_eq!(header(&s.send(Method::GET, "/item", &[]).await, "x-cache"), "MISS");
    });
}

#[test]
fn counters_and_purges_go_through_the_admin_api() {
    local(async {
        let s = plain_site();
        s.send(Method::GET, "/item", &[]).await;
        s.send(Method::GET, "/item", &[]).await;
        assert_eq!(s.send(Method::GET, "/__edge/stats", &[]).await.status, 401);
        let bearer = format!("Bearer {ADMIN}");
        let stats = s.send(Method::GET, "/__edge/stats", &[("authorization", &bearer)]).await;
        assert_eq!(stats.status, 200);
        let counts: serde_json::Value = serde_json::from_str(&body(&stats)).expect("json");
        assert_eq!((counts["hit"].as_u64(), counts["miss"].as_u64()), (Some(1), Some(1)), "{counts}");

        let purge = br#"{"urls":["https://shop.example/item"]}"#.to_vec();
        let url = "https://shop.example/__edge/purge";
        let headers = [("authorization", bearer.as_str())];
        let answer = s.edge.handle(&s.host, request(Method::POST, url, &headers, Some(purge))).await;
        assert_eq!(answer.status, 200, "{}", body(&answer));
        assert_eq!(header(&s.send(Method::GET, "/item", &[]).await, "x-cache"), "MISS");

        let huge = vec![b' '; 2 * 1_048_576];
        let answer = s.edge.handle(&s.host, request(Method::POST, url, &headers, Some(huge))).await;
        assert_eq!(answer.status, 413);
    });
}

#[test]
fn without_an_admin_token_the_admin_api_does_not_exist() {
    local(async {
        let s = site_with(&[]);
        let served = s.send(Method::GET, "/__edge/stats", &[("authorization", "Bearer anything")]).await;
        assert_eq!(served.status, 404);
    });
}
