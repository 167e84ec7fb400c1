//! Whole requests through `Edge::handle`, natively: the decisions the worker used to make in
//! its glue (reserved paths, the session on every kind of request, the re-lookup under
//! `Vary: Cookie`, invalidation after writes, counters, the admin API) against the memory
//! store and an in-process origin that records what it receives.

mod support;

use http::Method;
use support::host::{Received, Reply};
use support::site::{body, header, header_of, path_of, request, Site};
use support::{local, settle};

const SECRET: &str = "a-session-secret-of-at-least-32-bytes!!";
const ADMIN: &str = "admin-token";

/// A small site: `/login` starts a session, `/me` is shared but varies on the cookie, `/item`
/// is cacheable and writable.
fn site(req: &Received) -> Reply {
    let session = req.headers.get("edge-session-id").and_then(|v| v.to_str().ok()).unwrap_or("anon");
    let path = path_of(req);
    match (req.method.as_str(), path) {
        ("GET", "/login") => (
            200,
            vec![
                ("edge-session-set", r#"{"user":"alice"}"#.into()),
                ("cache-control", "public, max-age=60".into()),
                ("cdn-cache-control", "max-age=60".into()),
            ],
            b"in".to_vec(),
        ),
        // A Django-like page built from the origin's own session cookie.
        ("GET", "/account") => (
            200,
            vec![("cache-control", "public, max-age=60".into()), ("vary", "Cookie".into())],
            format!("account:{}", header_of(req, "cookie")).into_bytes(),
        ),
        ("GET", "/api/me") => (
            200,
            vec![("cache-control", "public, s-maxage=30".into()), ("vary", "Edge-Session".into())],
            format!("me:{session}").into_bytes(),
        ),
        // A page that builds its links from the forwarding headers.
        ("GET", "/links") => (
            200,
            vec![("cache-control", "public, max-age=60".into())],
            format!("https://{} {}", header_of(req, "x-forwarded-host"), header_of(req, "forwarded"))
                .into_bytes(),
        ),
        ("GET", "/etag") if req.headers.contains_key("if-none-match") => {
            (304, vec![("etag", "\"v1\"".into())], Vec::new())
        }
        ("GET", "/etag") => {
            (200, vec![("cache-control", "max-age=60".into()), ("etag", "\"v1\"".into())], b"full".to_vec())
        }
        ("GET", "/tagged") => {
            (200, vec![("cache-control", "max-age=60".into()), ("cache-tag", "t".into())], b"tagged".to_vec())
        }
        ("POST", "/retag") => (200, vec![("edge-purge-tags", "t".into())], b"done".to_vec()),
        ("GET", "/odd") => (999, vec![], b"odd".to_vec()),
        // An origin that decodes its paths and sends no Cache-Control: rules decide.
        ("GET", p) if p.starts_with("/api/") => (200, vec![], format!("{p} for {session}").into_bytes()),
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

fn site_with(vars: &[(&str, &str)]) -> Site {
    Site::new(vars, site)
}

fn plain_site() -> Site {
    site_with(&[("SESSION_SECRET", SECRET), ("ADMIN_TOKEN", ADMIN)])
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

/// Issue 9 item 1: an origin's own session cookie under `Vary: Cookie`.
#[test]
fn an_origin_session_cookie_under_vary_cookie_never_crosses_users() {
    for vars in [vec![], vec![("SESSION_SECRET", SECRET)]] {
        local(async {
            let s = site_with(&vars);
            let alice = s.send(Method::GET, "/account", &[("cookie", "sid=alice")]).await;
            assert_eq!(body(&alice), "account:sid=alice");
            let bob = s.send(Method::GET, "/account", &[("cookie", "sid=bob")]).await;
            assert_eq!((header(&bob, "x-cache").as_str(), body(&bob).as_str()), ("MISS", "account:sid=bob"));
            let again = s.send(Method::GET, "/account", &[("cookie", "sid=alice")]).await;
            assert_eq!(
                (header(&again, "x-cache").as_str(), body(&again).as_str()),
                ("HIT", "account:sid=alice")
            );
        });
    }
}

/// Issue 9 item 2: `Vary` on a header the worker sets keys on what the origin received.
#[test]
fn vary_on_edge_session_never_shows_a_session_to_an_anonymous_client() {
    local(async {
        let s = plain_site();
        let cookie = s.login().await;
        let alice = s.send(Method::GET, "/api/me", &[("cookie", &cookie)]).await;
        assert_ne!(body(&alice), "me:anon");
        let forged = s.send(Method::GET, "/api/me", &[("edge-session", "whatever")]).await;
        assert_eq!(body(&forged), "me:anon");
        let anonymous = s.send(Method::GET, "/api/me", &[]).await;
        assert_eq!((header(&anonymous, "x-cache").as_str(), body(&anonymous).as_str()), ("HIT", "me:anon"));
        // After logout the old (validly signed) cookie names no session: the anonymous variant.
        s.send(Method::GET, "/logout", &[("cookie", &cookie)]).await;
        let old_cookie = s.send(Method::GET, "/api/me", &[("cookie", &cookie)]).await;
        assert_eq!((header(&old_cookie, "x-cache").as_str(), body(&old_cookie).as_str()), ("HIT", "me:anon"));
    });
}

/// Issue 9 item 5: the edge is the trust boundary for forwarding headers.
#[test]
fn a_clients_forwarded_host_never_reaches_a_shared_entry() {
    local(async {
        let s = plain_site();
        let poisoned = s
            .send(
                Method::GET,
                "/links",
                &[("forwarded", "host=evil.example"), ("x-forwarded-host", "evil.example")],
            )
            .await;
        assert!(!body(&poisoned).contains("evil"), "{}", body(&poisoned));
        let clean = s.send(Method::GET, "/links", &[]).await;
        assert_eq!(header(&clean, "x-cache"), "HIT");
        assert!(body(&clean).starts_with("https://shop.example "), "{}", body(&clean));
    });
}

/// Issue 9 item 6: a fill never carries one client's validators.
#[test]
fn a_fill_never_carries_the_clients_validators() {
    local(async {
        let s = plain_site();
        let first =
            s.send(Method::GET, "/etag", &[("if-none-match", "\"v1\""), ("if-modified-since", "x")]).await;
        assert_eq!(first.status, 200);
        let fill = s.host.last_received();
        assert!(
            fill.headers.get("if-none-match").is_none() && fill.headers.get("if-modified-since").is_none()
        );
        let plain = s.send(Method::GET, "/etag", &[]).await;
        assert_eq!((header(&plain, "x-cache").as_str(), body(&plain).as_str()), ("HIT", "full"));
        assert_eq!(s.host.origin_requests(), 1);
    });
}

/// Issue 9 item 7: read-your-writes, with no time for background work in between.
#[test]
fn a_writes_invalidation_is_complete_before_its_response() {
    local(async {
        let s = plain_site();
        let get = || request(Method::GET, "https://shop.example/tagged", &[], None);
        s.edge.handle(&s.host, get()).await;
        settle().await;
        assert_eq!(header(&s.edge.handle(&s.host, get()).await, "x-cache"), "HIT");
        let write =
            s.edge.handle(&s.host, request(Method::POST, "https://shop.example/retag", &[], None)).await;
        assert_eq!(write.status, 200);
        assert!(write.headers.get("edge-purge-tags").is_none());
        assert_eq!(header(&s.edge.handle(&s.host, get()).await, "x-cache"), "MISS");
    });
}

/// Issue 9 item 10: a response that sets the session cookie is never shared downstream.
#[test]
fn a_response_setting_the_session_cookie_is_private() {
    local(async {
        let s = plain_site();
        let login = s.send(Method::GET, "/login", &[]).await;
        assert!(!header(&login, "set-cookie").is_empty());
        let cc = header(&login, "cache-control");
        assert!(cc.starts_with("private") && !cc.contains("public"), "{cc}");
        assert!(cc.contains("max-age=60"), "the browser's own caching is kept: {cc}");
        assert!(login.headers.get("cdn-cache-control").is_none(), "no CDN is told to store it");
    });
}

/// Issue 9 item 12: odd origin statuses are a clean 502, never an internal error.
#[test]
fn an_origin_status_outside_200_to_599_is_a_502() {
    local(async {
        let s = plain_site();
        let served = s.send(Method::GET, "/odd", &[]).await;
        assert_eq!(served.status, 502);
        assert!(header(&served, "cache-status").contains("detail=origin-error"));
        let write = s.send(Method::POST, "/odd", &[]).await;
        assert_ne!(write.status, 999);
    });
}

/// Issue 9 item 3: a rule's ttl never shares what the origin built for a session, and rules
/// see the same normalised path as the key.
#[test]
fn rules_never_share_a_sessions_response() {
    local(async {
        let rules = r#"[{"path":"/api/admin/*","cache":false},{"path":"/api/*","ttl":60}]"#;
        let s = site_with(&[("SESSION_SECRET", SECRET), ("CACHE_RULES", rules)]);
        let cookie = s.login().await;
        let victim = s.send(Method::GET, "/api/%61dmin/users", &[("cookie", &cookie)]).await;
        assert!(
            header(&victim, "cache-status").contains("detail=rule-no-cache"),
            "{}",
            header(&victim, "cache-status")
        );
        let anonymous = s.send(Method::GET, "/api/%61dmin/users", &[]).await;
        assert!(body(&anonymous).ends_with("for anon"), "{}", body(&anonymous));

        let profile = s.send(Method::GET, "/api/profile", &[("cookie", &cookie)]).await;
        assert!(header(&profile, "cache-status").contains("detail=per-session"));
        let anonymous = s.send(Method::GET, "/api/profile", &[]).await;
        assert_eq!(body(&anonymous), "/api/profile for anon");
        assert_eq!(
            header(&s.send(Method::GET, "/api/profile", &[]).await, "x-cache"),
            "HIT",
            "anonymous answers are shared"
        );
    });
}

/// Issue 10 item 4: a client's validators and range are answered from a fresh stored copy.
#[test]
fn conditionals_and_ranges_are_answered_from_the_cache() {
    local(async {
        let s = plain_site();
        s.send(Method::GET, "/etag", &[]).await;
        let not_modified = s.send(Method::GET, "/etag", &[("if-none-match", "\"v1\"")]).await;
        assert_eq!((not_modified.status, header(&not_modified, "x-cache").as_str()), (304, "HIT"));
        assert_eq!(header(&not_modified, "etag"), "\"v1\"");
        assert_eq!(body(&not_modified), "");
        let failed = s.send(Method::GET, "/etag", &[("if-match", "\"v0\"")]).await;
        assert_eq!(failed.status, 412);
        let partial = s.send(Method::GET, "/etag", &[("range", "bytes=1-2")]).await;
        assert_eq!((partial.status, body(&partial).as_str()), (206, "ul"));
        assert_eq!(header(&partial, "content-range"), "bytes 1-2/4");
        assert_eq!(s.host.origin_requests(), 1, "all from the one stored copy");

        // A range on a cold key goes to the origin as it is and fills nothing.
        s.send(Method::GET, "/tagged", &[("range", "bytes=0-1"), ("if-range", "\"t1\"")]).await;
        assert_eq!(header_of(&s.host.last_received(), "range"), "bytes=0-1");
        assert_eq!(header_of(&s.host.last_received(), "if-range"), "\"t1\"", "the range keeps its condition");
        assert_eq!(header(&s.send(Method::GET, "/tagged", &[]).await, "x-cache"), "MISS");
    });
}
