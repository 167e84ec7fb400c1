//! Issue 15 through `Edge::handle`, natively: rules that match on host, headers and cookies,
//! per-rule cache keys, bypass cookies, TTL by status, browser TTL, URL purges and write
//! invalidations that find entries through the key derivation, and the session settings.

mod support;

use edge_core::{Op, Reply as StoreReply, Store};
use http::Method;
use support::host::{Received, Reply};
use support::site::{body, header, header_of, path_of, request, Site};
use support::{local, settle};

const SECRET: &str = "a-session-secret-of-at-least-32-bytes!!";
const ADMIN: &str = "admin-token";

/// An origin that names the host, path and query it received, so tests see what was shared.
fn origin(req: &Received) -> Reply {
    let host = req.url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("");
    let path = path_of(req).to_string();
    let bare = path.split('?').next().unwrap_or("").to_string();
    let echo = format!(
        "{host}{path} lang={} cookie={}",
        header_of(req, "accept-language"),
        header_of(req, "cookie")
    );
    match (req.method.as_str(), bare.as_str()) {
        ("GET", "/missing") => (404, vec![], b"not here".to_vec()),
        ("GET", "/moved") => (302, vec![("location", "/there".into())], b"moved".to_vec()),
        ("GET", "/broken") => (500, vec![], b"broken".to_vec()),
        ("GET", "/private") => {
            (200, vec![("cache-control", "private, max-age=60".into())], echo.into_bytes())
        }
        ("GET", "/login") => (200, vec![("edge-session-set", r#"{"u":1}"#.into())], b"in".to_vec()),
        ("GET", _) => (200, vec![("cache-control", "public, max-age=60".into())], echo.into_bytes()),
        ("POST", _) => (200, vec![], b"saved".to_vec()),
        _ => (405, vec![], Vec::new()),
    }
}

fn site(rules: &str, more: &[(&str, &str)]) -> Site {
    let mut vars = vec![("CACHE_RULES", rules), ("ADMIN_TOKEN", ADMIN)];
    vars.extend_from_slice(more);
    Site::new(&vars, origin)
}

/// One GET of an absolute URL, then time for background work.
async fn get(s: &Site, url: &str, headers: &[(&'static str, &str)]) -> edge_core::Served<Vec<u8>> {
    let served = s.edge.handle(&s.host, request(Method::GET, url, headers, None)).await;
    settle().await;
    served
}

/// The Redis key of the session a `name=<id>.<mac>` cookie names (docs §7.4).
fn session_key(cookie: &str) -> String {
    use sha2::{Digest, Sha256};
    let id = cookie.split('=').nth(1).unwrap().split('.').next().unwrap();
    let hash: String = Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("edge:sess:{hash}")
}

fn detail(served: &edge_core::Served<Vec<u8>>) -> String {
    header(served, "cache-status")
}

#[test]
fn two_hosts_under_one_rule_set() {
    local(async {
        let s = site(
            r#"[{"host":"admin.example","path":"/*","cache":false},
                {"host":"*.example","path":"/api/*","ttl":60,"tags":["api"]},
                {"path":"/*","key_host":false}]"#,
            &[],
        );
        let admin = get(&s, "https://admin.example/api/x", &[]).await;
        assert!(detail(&admin).contains("detail=rule-no-cache"), "{}", detail(&admin));
        let shop = get(&s, "https://shop.example/api/x", &[]).await;
        assert_eq!(header(&shop, "x-cache"), "MISS");
        assert_eq!(header(&get(&s, "https://shop.example/api/x", &[]).await, "x-cache"), "HIT");
        let blog = get(&s, "https://blog.example/api/x", &[]).await;
        assert_eq!(body(&blog), "blog.example/api/x lang= cookie=", "the host is in that rule's key");
        // The last rule keeps the host out of the key: www and the apex share one entry.
        get(&s, "https://www.site.test/page", &[]).await;
        let apex = get(&s, "https://site.test/page", &[]).await;
        assert_eq!(
            (header(&apex, "x-cache").as_str(), body(&apex).as_str()),
            ("HIT", "www.site.test/page lang= cookie=")
        );
        assert_eq!(s.host.origin_requests(), 4);
    });
}

#[test]
fn campaign_parameters_share_one_entry_and_still_reach_the_origin() {
    local(async {
        let s = site(r#"[{"path":"/stripped/*","strip_query":true}]"#, &[]);
        let first = get(&s, "https://shop.example/p?id=1&utm_source=news&fbclid=abc", &[]).await;
        assert_eq!(header(&first, "x-cache"), "MISS");
        assert_eq!(
            path_of(&s.host.last_received()),
            "/p?id=1&utm_source=news&fbclid=abc",
            "forwarded as sent"
        );
        for url in ["https://shop.example/p?id=1", "https://shop.example/p?gclid=x&id=1&utm_medium=cpc"] {
            assert_eq!(header(&get(&s, url, &[]).await, "x-cache"), "HIT", "{url}");
        }
        assert_eq!(
            header(&get(&s, "https://shop.example/p?id=2&utm_source=news", &[]).await, "x-cache"),
            "MISS"
        );
        // strip_query: what the key leaves out does not reach the origin either.
        get(&s, "https://shop.example/stripped/a?x=1&utm_campaign=c&gclid=g", &[]).await;
        assert_eq!(path_of(&s.host.last_received()), "/stripped/a?x=1");
        // A URL purge with the campaign parameters finds the shared entry.
        let purge = s
            .edge
            .handle(
                &s.host,
                request(
                    Method::POST,
                    "https://shop.example/__edge/purge",
                    &[("authorization", "Bearer admin-token")],
                    Some(br#"{"urls":["https://shop.example/p?utm_source=x&id=1"]}"#.to_vec()),
                ),
            )
            .await;
        assert!(body(&purge).contains("\"entries\":1"), "{}", body(&purge));
        assert_eq!(header(&get(&s, "https://shop.example/p?id=1", &[]).await, "x-cache"), "MISS");

        let keep = site("[]", &[("CACHE_KEEP_MARKETING_PARAMS", "true")]);
        get(&keep, "https://shop.example/p?id=1&utm_source=news", &[]).await;
        assert_eq!(header(&get(&keep, "https://shop.example/p?id=1", &[]).await, "x-cache"), "MISS");
    });
}

#[test]
fn query_include_exclude_and_ignore() {
    local(async {
        let s = site(
            r#"[{"path":"/inc","query":{"include":["page"]}},
                {"path":"/exc","query":{"exclude":["ref*"]}},
                {"path":"/ign","query":"ignore"}]"#,
            &[],
        );
        let table: &[(&str, &str, &str)] = &[
            ("/inc?page=1&sort=a", "/inc?sort=b&page=1", "HIT"),
            ("/inc?page=1", "/inc?page=2", "MISS"),
            ("/exc?a=1&ref=x", "/exc?referrer=y&a=1", "HIT"),
            ("/exc?a=1", "/exc?a=2", "MISS"),
            ("/ign?a=1", "/ign?b=2", "HIT"),
        ];
        for &(fill, then, expected) in table {
            get(&s, &format!("https://shop.example{fill}"), &[]).await;
            let second = get(&s, &format!("https://shop.example{then}"), &[]).await;
            assert_eq!(header(&second, "x-cache"), expected, "{fill} then {then}");
        }
    });
}

#[test]
fn header_and_cookie_parts_keep_variants_apart() {
    local(async {
        let s = site(
            r#"[{"path":"/shop/*","cookies":{"currency":"*"},"ttl":60},
                {"path":"/docs/*","key_headers":["Accept-Language"]}]"#,
            &[],
        );
        let eur = get(&s, "https://shop.example/shop/a", &[("cookie", "currency=EUR")]).await;
        let usd = get(&s, "https://shop.example/shop/a", &[("cookie", "currency=USD")]).await;
        assert_eq!((header(&eur, "x-cache").as_str(), header(&usd, "x-cache").as_str()), ("MISS", "MISS"));
        assert!(body(&usd).contains("currency=USD"), "{}", body(&usd));
        let again = get(&s, "https://shop.example/shop/a", &[("cookie", "theme=dark; currency=EUR")]).await;
        assert_eq!((header(&again, "x-cache").as_str(), body(&again).contains("EUR")), ("HIT", true));
        // Without the cookie the rule does not match; the default key is another entry.
        assert_eq!(header(&get(&s, "https://shop.example/shop/a", &[]).await, "x-cache"), "MISS");

        get(&s, "https://shop.example/docs/x", &[("accept-language", "de-CH,de;q=0.9")]).await;
        let same = get(&s, "https://shop.example/docs/x", &[("accept-language", "de-ch")]).await;
        assert_eq!(header(&same, "x-cache"), "HIT", "the same preferred language");
        let english =
            get(&s, "https://shop.example/docs/x", &[("accept-language", "en-US,de-CH;q=0.5")]).await;
        assert_eq!((header(&english, "x-cache").as_str(), body(&english).contains("en-US")), ("MISS", true));

        // A write invalidates every variant of its URL.
        let saved =
            s.edge.handle(&s.host, request(Method::POST, "https://shop.example/docs/x", &[], None)).await;
        assert_eq!(saved.status, 200);
        settle().await;
        assert_eq!(
            header(&get(&s, "https://shop.example/docs/x", &[("accept-language", "de")]).await, "x-cache"),
            "MISS"
        );
        let purged = get(&s, "https://shop.example/shop/a", &[("cookie", "currency=EUR")]).await;
        assert_eq!(header(&purged, "x-cache"), "HIT", "another URL is untouched");
        s.edge.handle(&s.host, request(Method::POST, "https://shop.example/shop/a", &[], None)).await;
        settle().await;
        let after = get(&s, "https://shop.example/shop/a", &[("cookie", "currency=EUR")]).await;
        assert_eq!(header(&after, "x-cache"), "MISS", "the rule's variant went with the write");
    });
}

#[test]
fn a_bypass_cookie_passes_the_request_through_and_stores_nothing() {
    local(async {
        let s = site(r#"[{"path":"/*","bypass_cookies":["wordpress_logged_in_*","sessionid"]}]"#, &[]);
        let logged_in =
            get(&s, "https://shop.example/post", &[("cookie", "wordpress_logged_in_1a2b=alice")]).await;
        assert_eq!(header(&logged_in, "x-cache"), "BYPASS");
        assert!(detail(&logged_in).contains("detail=rule-bypass-cookie"), "{}", detail(&logged_in));
        assert!(body(&logged_in).contains("alice"));
        let anonymous = get(&s, "https://shop.example/post", &[("cookie", "wordpress_test_cookie=1")]).await;
        assert_eq!(header(&anonymous, "x-cache"), "MISS", "the bypass stored nothing");
        let django = get(&s, "https://shop.example/post", &[("cookie", "sessionid=x")]).await;
        assert_eq!(header(&django, "x-cache"), "BYPASS");
        assert_eq!(header(&get(&s, "https://shop.example/post", &[]).await, "x-cache"), "HIT");
    });
}

#[test]
fn ttl_by_status() {
    local(async {
        let s = site(
            r#"[{"path":"/*","status_ttl":{"404":10,"302":30,"5xx":60},"sie":300,"override":true}]"#,
            &[],
        );
        assert_eq!(header(&get(&s, "https://shop.example/missing", &[]).await, "x-cache"), "MISS");
        let hit = get(&s, "https://shop.example/missing", &[]).await;
        assert_eq!((hit.status, header(&hit, "x-cache").as_str()), (404, "HIT"));
        assert_eq!(s.host.origin_requests(), 1);
        s.host.rt.clock.advance(11_000);
        let expired = get(&s, "https://shop.example/missing", &[]).await;
        assert_eq!(header(&expired, "x-cache"), "MISS", "past its 10 s: fetched again");
        assert_eq!(s.host.origin_requests(), 2);
        // A 302 (not heuristically cacheable) is stored because the rule names it.
        get(&s, "https://shop.example/moved", &[]).await;
        assert_eq!(header(&get(&s, "https://shop.example/moved", &[]).await, "x-cache"), "HIT");
        // The 200 keeps the origin's own max-age=60 under no status entry.
        get(&s, "https://shop.example/ok", &[]).await;
        let fetches = s.host.origin_requests();
        s.host.rt.clock.advance(59_000);
        assert_eq!(header(&get(&s, "https://shop.example/ok", &[]).await, "x-cache"), "HIT");
        assert_eq!(s.host.origin_requests(), fetches);

        // "5xx": 0 keeps errors out; an error never replaces a copy inside stale-if-error.
        let strict = site(r#"[{"path":"/*","status_ttl":{"5xx":0},"override":true}]"#, &[]);
        get(&strict, "https://shop.example/broken", &[]).await;
        let again = get(&strict, "https://shop.example/broken", &[]).await;
        assert!(detail(&again).contains("detail=status"), "{}", detail(&again));
        assert_eq!(strict.host.origin_requests(), 2);
    });
}

#[test]
fn an_error_never_replaces_a_copy_inside_stale_if_error() {
    local(async {
        let s = Site::new(
            &[(
                "CACHE_RULES",
                r#"[{"path":"/*","status_ttl":{"200":5,"5xx":60},"sie":300,"override":true}]"#,
            )],
            |req: &Received| {
                if header_of(req, "x-fail") == "1" {
                    (503, vec![], b"down".to_vec())
                } else {
                    (200, vec![], b"good".to_vec())
                }
            },
        );
        get(&s, "https://shop.example/a", &[]).await;
        s.host.rt.clock.advance(6_000);
        let served = get(&s, "https://shop.example/a", &[("x-fail", "1")]).await;
        assert_eq!((served.status, body(&served).as_str()), (200, "good"));
        assert_eq!(header(&served, "x-cache"), "STALE");
    });
}

#[test]
fn browser_ttl_is_independent_of_the_edge_ttl() {
    local(async {
        let s = site(r#"[{"path":"/*","browser_ttl":5}]"#, &[]);
        let miss = get(&s, "https://shop.example/page", &[]).await;
        assert_eq!(header(&miss, "cache-control"), "public, max-age=5");
        s.host.rt.clock.advance(20_000);
        let hit = get(&s, "https://shop.example/page", &[]).await;
        assert_eq!(header(&hit, "x-cache"), "HIT", "the edge keeps its 60 s");
        let age: u64 = header(&hit, "age").parse().unwrap();
        assert!(age >= 20, "{age}");
        assert_eq!(header(&hit, "cache-control"), format!("public, max-age={}", 5 + age));
        let private = get(&s, "https://shop.example/private", &[]).await;
        assert_eq!(header(&private, "cache-control"), "private, max-age=60", "never made more cacheable");
    });
}

#[test]
fn session_settings_shape_the_cookie() {
    local(async {
        let s = site(
            "[]",
            &[
                ("SESSION_SECRET", SECRET),
                ("SESSION_COOKIE_NAME", "__Secure-sid"),
                ("SESSION_COOKIE_SAMESITE", "None"),
                ("SESSION_COOKIE_DOMAIN", "shop.example"),
                ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "true"),
            ],
        );
        let login = s.send(Method::GET, "/login", &[]).await;
        let cookie = header(&login, "set-cookie");
        assert!(cookie.starts_with("__Secure-sid="), "{cookie}");
        for attribute in ["SameSite=None", "Secure", "Domain=shop.example", "HttpOnly", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains("Max-Age") && !cookie.contains("Expires"), "{cookie}");
    });
}

#[test]
fn saving_every_request_slides_the_ttl_in_the_lookups_round_trip() {
    local(async {
        let vars =
            [("SESSION_SECRET", SECRET), ("SESSION_TTL", "1000"), ("SESSION_SAVE_EVERY_REQUEST", "true")];
        let s = site("[]", &vars);
        let login = s.send(Method::GET, "/login", &[]).await;
        let cookie = header(&login, "set-cookie").split(';').next().unwrap().to_string();
        let key = session_key(&cookie);
        let pttl = |s: &Site| {
            let key = key.clone();
            let store = s.edge.store.clone();
            async move {
                match store.run(&[Op::PTtl(key)]).await.unwrap().pop() {
                    Some(StoreReply::Int(ms)) => ms,
                    other => panic!("{other:?}"),
                }
            }
        };
        s.host.rt.clock.advance(50_000); // 5% of the idle TTL: the default model would not write
        let page = s.send(Method::GET, "/page", &[("cookie", &cookie)]).await;
        assert!(pttl(&s).await > 990_000, "slid on this request");
        assert_eq!(header(&page, "set-cookie"), "", "the cookie's Max-Age needs no refresh yet");
        s.host.rt.clock.advance(60_000); // into the next tenth since creation
        let later = s.send(Method::GET, "/page", &[("cookie", &cookie)]).await;
        assert!(header(&later, "set-cookie").contains("Max-Age=1000"), "{}", header(&later, "set-cookie"));

        // The default model, for comparison: no write at 5% of the idle TTL.
        let d = site("[]", &[("SESSION_SECRET", SECRET), ("SESSION_TTL", "1000")]);
        let cookie = header(&d.send(Method::GET, "/login", &[]).await, "set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        d.host.rt.clock.advance(50_000);
        d.send(Method::GET, "/page", &[("cookie", &cookie)]).await;
        let key = session_key(&cookie);
        let left = d.edge.store.run(&[Op::PTtl(key)]).await.unwrap().pop();
        assert!(matches!(left, Some(StoreReply::Int(ms)) if ms < 960_000), "{left:?}");
    });
}
