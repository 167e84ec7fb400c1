//! The rule parser's table (every field, every error), matching, and key parts (docs §3).

use http::{HeaderMap, Method};

use super::cache_key::QueryKey;
use super::*;

fn parse(json: &str) -> CacheRules {
    CacheRules::parse(json).unwrap()
}

fn glob(text: &str) -> Glob {
    Glob::parse(text).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    map
}

/// The index of the rule a request matches.
fn matched(
    rules: &CacheRules,
    method: &Method,
    host: &str,
    path: &str,
    pairs: &[(&str, &str)],
) -> Option<usize> {
    let headers = headers(pairs);
    rules.first_match(&RequestView { method, host, path, headers: &headers }).map(|(index, _)| index)
}

#[test]
fn empty_means_no_rules() {
    for text in ["", "   ", "\n", "[]", " [ ] "] {
        let rules = CacheRules::parse(text).unwrap();
        assert!(rules.is_empty(), "{text:?}");
        assert_eq!(rules.matching("/"), None);
    }
}

#[test]
fn parses_every_field() {
    let rules = parse(
        r#"[{"path":"/api/*","host":["Shop.example.com","*.example.org"],"methods":["get","HEAD"],
             "headers":{"X-Device":"mobile*","X-Beta":true,"X-Old":false},
             "cookies":{"currency":"EUR","beta":true},
             "ttl":60,"swr":30,"sie":600,"override":true,"cache":true,"tags":["api","v1"],
             "bypass_cookies":["wordpress_logged_in_*","sessionid"],
             "status_ttl":{"200-299":300,"404":10,"5xx":0},"browser_ttl":5,
             "query":{"include":["page","sort*"]},"key_headers":["Accept-Language"],
             "key_cookies":["currency"],"key_host":false,"strip_query":true},
            {"path":"/login","cache":false},
            {"path":"/n","ttl":null,"host":"example.com","query":"ignore"},
            {"path":"/x","query":{"exclude":["ref"]}},
            {"path":"/y","query":"all"}]"#,
    );
    let first = &rules.rules()[0];
    assert_eq!(first.path, PathPattern::Prefix("/api/".into()));
    assert_eq!(
        first.hosts,
        vec![HostPattern::Exact("shop.example.com".into()), HostPattern::Subdomains(".example.org".into())]
    );
    assert_eq!(first.methods, vec![Method::GET, Method::HEAD]);
    assert_eq!(
        first.headers,
        vec![
            ("x-beta".to_string(), Presence::Present),
            ("x-device".to_string(), Presence::Value(glob("mobile*"))),
            ("x-old".to_string(), Presence::Absent),
        ]
    );
    assert_eq!(
        first.cookies,
        vec![("beta".to_string(), Presence::Present), ("currency".to_string(), Presence::Value(glob("EUR")))]
    );
    assert_eq!((first.ttl, first.swr, first.sie), (Some(60), Some(30), Some(600)));
    assert!(first.override_origin && first.cache);
    assert_eq!(first.tags, vec!["api", "v1"]);
    assert_eq!(first.bypass_cookies, vec![glob("wordpress_logged_in_*"), glob("sessionid")]);
    assert_eq!(
        (first.status_ttl.get(201), first.status_ttl.get(404), first.status_ttl.get(503)),
        (Some(300), Some(10), Some(0))
    );
    assert_eq!(first.browser_ttl, Some(5));
    assert_eq!(
        first.key,
        KeySpec {
            query: QueryKey::Include(vec![glob("page"), glob("sort*")]),
            headers: vec!["accept-language".into()],
            cookies: vec!["currency".into()],
            host: false,
            strip_query: true,
        }
    );
    assert_eq!(rules.rules()[1], Rule { cache: false, ..Rule::new(PathPattern::Exact("/login".into())) });
    assert_eq!(
        rules.rules()[2],
        Rule {
            hosts: vec![HostPattern::Exact("example.com".into())],
            key: KeySpec { query: QueryKey::Ignore, ..KeySpec::default() },
            ..Rule::new(PathPattern::Exact("/n".into()))
        }
    );
    assert_eq!(rules.rules()[3].key.query, QueryKey::Exclude(vec![glob("ref")]));
    assert_eq!(rules.rules()[4].key, KeySpec::default());
}

#[test]
fn a_rule_of_the_old_format_parses_as_before() {
    let rules = parse(r#"[{"path":"/api/*","ttl":10,"swr":30,"sie":300,"tags":["api"]}]"#);
    assert_eq!(
        rules.rules(),
        &[Rule {
            ttl: Some(10),
            swr: Some(30),
            sie: Some(300),
            tags: vec!["api".into()],
            ..Rule::new(PathPattern::Prefix("/api/".into()))
        }]
    );
    // No conditions beyond the path: nothing beyond the URL in the key.
    assert!(rules.rules()[0]
        .key_parts(0, &headers(&[("cookie", "a=1"), ("accept-language", "de")]))
        .is_empty());
}

#[test]
fn first_match_wins() {
    let rules = parse(
        r#"[{"path":"/api/private/*","cache":false},
            {"path":"/api/*","ttl":60},
            {"path":"/api/health","ttl":1},
            {"path":"/*","ttl":5}]"#,
    );
    let table = [
        ("/api/private/x", Some(0)),
        ("/api/private/", Some(0)),
        ("/api/private", Some(1)), // prefix "/api/private/" needs the slash
        ("/api/health", Some(1)),  // shadowed by the earlier /api/*
        ("/api/", Some(1)),
        ("/api", Some(3)),
        ("/", Some(3)),
        ("/API/x", Some(3)), // case-sensitive
    ];
    for (path, expected) in table {
        assert_eq!(matched(&rules, &Method::GET, "example.com", path, &[]), expected, "{path}");
    }
    let exact = parse(r#"[{"path":"/a"}]"#);
    assert!(exact.matching("/a").is_some());
    assert!(exact.matching("/a/").is_none());
    assert!(exact.matching("/ab").is_none());
    assert!(exact.matching("/").is_none());
}

#[test]
#[allow(clippy::type_complexity)] // table rows are tuples
fn conditions_on_host_path_method_headers_and_cookies() {
    let rules = parse(
        r#"[{"path":"/api/*","host":"a.example.com","ttl":1},
            {"path":"/api/*","host":"*.example.com","ttl":2},
            {"path":"/*.css","ttl":3},
            {"path":"/img/*/thumb/*","methods":["HEAD"],"ttl":4},
            {"path":"/m/*","headers":{"X-Device":"mobile*"},"ttl":5},
            {"path":"/m/*","headers":{"X-Beta":true},"ttl":6},
            {"path":"/c/*","cookies":{"currency":"EUR"},"ttl":7},
            {"path":"/c/*","cookies":{"currency":false},"ttl":8},
            {"path":"/*","ttl":9}]"#,
    );
    let get = Method::GET;
    let table: &[(&Method, &str, &str, &[(&str, &str)], Option<usize>)] = &[
        (&get, "a.example.com", "/api/x", &[], Some(0)),
        (&get, "b.example.com", "/api/x", &[], Some(1)),
        (&get, "x.y.example.com", "/api/x", &[], Some(1)),
        (&get, "example.com", "/api/x", &[], Some(8)),
        (&get, "other.org", "/api/x", &[], Some(8)),
        (&get, "h", "/a/b/site.css", &[], Some(2)),
        (&get, "h", "/site.css.map", &[], Some(8)),
        (&Method::HEAD, "h", "/img/a/thumb/b.png", &[], Some(3)),
        (&get, "h", "/img/a/thumb/b.png", &[], Some(8)),
        (&get, "h", "/m/x", &[("x-device", "mobile-ios")], Some(4)),
        (&get, "h", "/m/x", &[("x-device", "desktop"), ("x-beta", "")], Some(5)),
        (&get, "h", "/m/x", &[("x-device", "Mobile")], Some(8)),
        (&get, "h", "/c/x", &[("cookie", "a=1; currency=EUR")], Some(6)),
        (&get, "h", "/c/x", &[("cookie", "currency=USD")], Some(8)),
        (&get, "h", "/c/x", &[("cookie", "other=1")], Some(7)),
        (&get, "h", "/c/x", &[], Some(7)),
    ];
    for &(method, host, path, pairs, expected) in table {
        assert_eq!(matched(&rules, method, host, path, pairs), expected, "{method} {host}{path} {pairs:?}");
    }
}

#[test]
fn conditions_and_key_settings_make_key_parts() {
    let rules = parse(
        r#"[{"path":"/c/*","cookies":{"currency":"*"},"ttl":7},
            {"path":"/l/*","key_headers":["Accept-Language"],"key_cookies":["theme"]},
            {"path":"/h/*","host":"a.example.com","key_host":false},
            {"path":"/g/*","methods":["GET"]}]"#,
    );
    let part = |n: &str, v: &str| (n.to_string(), v.to_string());
    let eur = headers(&[("cookie", "currency=EUR")]);
    assert_eq!(rules.rules()[0].key_parts(0, &eur), vec![part("cookie:currency", "=EUR"), part("rule", "0")]);
    let usd = headers(&[("cookie", "currency=USD")]);
    assert_ne!(rules.rules()[0].key_parts(0, &usd), rules.rules()[0].key_parts(0, &eur));
    let lang = headers(&[("accept-language", "de-CH,de;q=0.9"), ("cookie", "theme=")]);
    assert_eq!(
        rules.rules()[1].key_parts(1, &lang),
        vec![part("header:accept-language", "=de-ch"), part("cookie:theme", "=")]
    );
    assert_eq!(
        rules.rules()[1].key_parts(1, &HeaderMap::new()),
        vec![part("header:accept-language", "absent"), part("cookie:theme", "absent")],
        "absent is not the same as empty"
    );
    // A header both keyed and conditioned on is one part.
    let both = parse(r#"[{"path":"/*","key_headers":["X-A"],"headers":{"x-a":true}}]"#);
    let parts = both.rules()[0].key_parts(0, &headers(&[("x-a", "1")]));
    assert_eq!(parts, vec![part("header:x-a", "=1"), part("rule", "0")]);
    assert_eq!(rules.rules()[2].key_parts(2, &HeaderMap::new()), vec![part("rule", "2")]);
    assert_eq!(rules.rules()[3].key_parts(3, &HeaderMap::new()), vec![part("rule", "3")]);
}

#[test]
fn bypass_cookies_read_the_clients_cookie_names() {
    let rules = parse(r#"[{"path":"/*","bypass_cookies":["wordpress_logged_in_*","sessionid"]}]"#);
    let rule = &rules.rules()[0];
    assert_eq!(
        rule.bypass_cookie(&headers(&[("cookie", "a=1; wordpress_logged_in_abc=x")])),
        Some("wordpress_logged_in_abc")
    );
    assert_eq!(rule.bypass_cookie(&headers(&[("cookie", "sessionid=1")])), Some("sessionid"));
    assert_eq!(rule.bypass_cookie(&headers(&[("cookie", "sessionid2=1; wordpress_test=1")])), None);
    assert_eq!(rule.bypass_cookie(&HeaderMap::new()), None);
}

#[test]
fn url_candidates_stop_at_the_first_rule_that_reads_no_headers() {
    let rules = parse(
        r#"[{"path":"/c/*","cookies":{"currency":"EUR"},"query":"ignore"},
            {"path":"/c/*","host":"other.example","key_host":false},
            {"path":"/*","query":{"include":["page"]}},
            {"path":"/never","ttl":1}]"#,
    );
    let candidates = rules.candidates("example.com", "/c/x");
    assert_eq!(candidates, vec![rules.get(0), rules.get(2)]);
    assert_eq!(rules.candidates("other.example", "/c/x"), vec![rules.get(0), rules.get(1)]);
    let none = parse(r#"[{"path":"/c/*","headers":{"x-a":true}}]"#);
    assert_eq!(none.candidates("h", "/c/x"), vec![none.get(0), None]);
    assert_eq!(none.candidates("h", "/d"), vec![None]);
}

#[test]
fn errors_are_precise() {
    let table = [
        ("{", "not valid JSON: "),
        ("{}", "not a JSON array (got an object)"),
        ("\"x\"", "not a JSON array (got a string)"),
        ("[1]", "rule 0: must be a JSON object (got a number)"),
        ("[{}]", "rule 0: `path` is required"),
        (r#"[{"path":5}]"#, "rule 0: `path` must be a string"),
        (r#"[{"path":"api"}]"#, "rule 0: `path` must start with / (got \"api\")"),
        (r#"[{"path":"*"}]"#, "rule 0: `path` must start with /"),
        (r#"[{"path":"/a?b=1"}]"#, "rule 0: `path` must not contain ? or #"),
        (&format!(r#"[{{"path":"/{}"}}]"#, "a".repeat(300)), "rule 0: `path` is longer than 256 characters"),
        (
            r#"[{"path":"/"},{"path":"/"},{"path":"/x","ttl":-1}]"#,
            "rule 2: `ttl` must be a non-negative integer (seconds)",
        ),
        (r#"[{"path":"/x","ttl":1.5}]"#, "rule 0: `ttl` must be a non-negative integer (seconds)"),
        (r#"[{"path":"/x","swr":"60"}]"#, "rule 0: `swr` must be a non-negative integer (seconds)"),
        (r#"[{"path":"/x","sie":4294967296}]"#, "rule 0: `sie` must be at most 4294967295 (seconds)"),
        (r#"[{"path":"/x","browser_ttl":-5}]"#, "rule 0: `browser_ttl` must be a non-negative integer"),
        (r#"[{"path":"/x","cache":"no"}]"#, "rule 0: `cache` must be true or false"),
        (r#"[{"path":"/x","override":1}]"#, "rule 0: `override` must be true or false"),
        (r#"[{"path":"/x","key_host":"no"}]"#, "rule 0: `key_host` must be true or false"),
        (r#"[{"path":"/x","strip_query":0}]"#, "rule 0: `strip_query` must be true or false"),
        (
            r#"[{"path":"/x","tll":60}]"#,
            "rule 0: unknown field `tll` (expected one of path, host, methods, headers, cookies, ttl, swr, sie, override, cache, tags, bypass_cookies, status_ttl, browser_ttl, query, key_headers, key_cookies, key_host, strip_query)",
        ),
        (r#"[{"path":"/x","tags":"a"}]"#, "rule 0: `tags` must be an array of strings"),
        (r#"[{"path":"/x","tags":["a",1]}]"#, "rule 0: `tags[1]` must be a string"),
        (r#"[{"path":"/x","tags":[""]}]"#, "rule 0: `tags[0]` is empty"),
        (r#"[{"path":"/x","tags":["a b"]}]"#, "rule 0: `tags[0]` must not contain commas or whitespace"),
        (r#"[{"path":"/x","host":5}]"#, "rule 0: `host` must be a string or an array of strings"),
        (r#"[{"path":"/x","host":"https://a.com"}]"#, "rule 0: `host` must be a host name or *.name"),
        (r#"[{"path":"/x","host":["a.com",""]}]"#, "rule 0: `host[1]` is empty"),
        (r#"[{"path":"/x","host":["a.com:80"]}]"#, "rule 0: `host` must be a host name or *.name"),
        (r#"[{"path":"/x","host":["a.com",1]}]"#, "rule 0: `host[1]` must be a string"),
        (r#"[{"path":"/x","methods":[""]}]"#, "rule 0: `methods[0]` is empty"),
        (r#"[{"path":"/x","bypass_cookies":[""]}]"#, "rule 0: `bypass_cookies[0]` is empty"),
        (
            &format!(r#"[{{"path":"/x","bypass_cookies":["{}"]}}]"#, "a".repeat(300)),
            "rule 0: `bypass_cookies[0]` is longer than 256 characters",
        ),
        (
            &format!(r#"[{{"path":"/x","headers":{{"x":"{}"}}}}]"#, "a".repeat(300)),
            "rule 0: `headers[\"x\"]` is longer than 256 characters",
        ),
        (
            &format!(
                r#"[{{"path":"/x","headers":{{{}}}}}]"#,
                (0..65).map(|i| format!(r#""x-{i}":true"#)).collect::<Vec<_>>().join(",")
            ),
            "rule 0: `headers` has more than 64 entries",
        ),
        (r#"[{"path":"/x","methods":"GET"}]"#, "rule 0: `methods` must be an array of strings"),
        (r#"[{"path":"/x","methods":["G E T"]}]"#, "rule 0: `methods` entry \"G E T\" is not a method name"),
        (r#"[{"path":"/x","headers":["x"]}]"#, "rule 0: `headers` must be an object of names"),
        (r#"[{"path":"/x","headers":{"a b":true}}]"#, "rule 0: `headers` key \"a b\" is not a header name"),
        (r#"[{"path":"/x","headers":{"x":1}}]"#, "rule 0: `headers[\"x\"]` must be true, false or a string"),
        (r#"[{"path":"/x","cookies":"a"}]"#, "rule 0: `cookies` must be an object of names"),
        (r#"[{"path":"/x","cookies":{"a;b":true}}]"#, "rule 0: `cookies` name \"a;b\" is not a cookie name"),
        (r#"[{"path":"/x","cookies":{"a":null}}]"#, "rule 0: `cookies[\"a\"]` must be true, false or a string"),
        (r#"[{"path":"/x","bypass_cookies":"a"}]"#, "rule 0: `bypass_cookies` must be an array of strings"),
        (r#"[{"path":"/x","bypass_cookies":[1]}]"#, "rule 0: `bypass_cookies[0]` must be a string"),
        (r#"[{"path":"/x","status_ttl":[1]}]"#, "rule 0: `status_ttl` must be an object"),
        (r#"[{"path":"/x","status_ttl":{"2x":1}}]"#, "rule 0: `status_ttl` key \"2x\" must be a status"),
        (r#"[{"path":"/x","status_ttl":{"404":"a"}}]"#, "rule 0: `status_ttl[\"404\"]` must be a non-negative"),
        (r#"[{"path":"/x","query":"none"}]"#, "rule 0: `query` must be \"all\", \"ignore\""),
        (r#"[{"path":"/x","query":{"include":["a"],"exclude":["b"]}}]"#, "rule 0: `query` must be"),
        (r#"[{"path":"/x","query":{"include":"a"}}]"#, "rule 0: `query`: `include` must be an array of strings"),
        (r#"[{"path":"/x","query":{"exclude":[""]}}]"#, "rule 0: `query`: `exclude[0]` is empty"),
        (r#"[{"path":"/x","key_headers":["a b"]}]"#, "rule 0: `key_headers` entry \"a b\" is not a header name"),
        (r#"[{"path":"/x","key_headers":{}}]"#, "rule 0: `key_headers` must be an array of strings"),
        (r#"[{"path":"/x","key_cookies":["a=b"]}]"#, "rule 0: `key_cookies` name \"a=b\" is not a cookie name"),
        (&format!(r#"[{{"path":"/x","key_cookies":{:?}}}]"#, vec!["a"; 65]), "rule 0: `key_cookies` has more than 64 entries"),
    ];
    for (json, expected) in table {
        let error = CacheRules::parse(json).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{json}: got {error:?}, expected it to start with {expected:?}");
    }
}

#[test]
fn error_carries_rule_index() {
    let error = CacheRules::parse(r#"[{"path":"/"},{"path":"x"}]"#).unwrap_err();
    assert_eq!(error.rule, Some(1));
    let error = CacheRules::parse("7").unwrap_err();
    assert_eq!(error.rule, None);
}

#[test]
fn key_derivation() {
    let rules = parse(
        r#"[{"path":"/inc","query":{"include":["page","utm_campaign"]}},
            {"path":"/exc","query":{"exclude":["ref*"]}},
            {"path":"/ign","query":"ignore","key_host":false}]"#,
    );
    let key_url = |url: &str| {
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.host().unwrap().to_string();
        let path = crate::key::normalized_path(uri.path());
        let headers = HeaderMap::new();
        let view = RequestView { method: &Method::GET, host: &host, path: &path, headers: &headers };
        rules.key_url(rules.first_match(&view).map(|(_, rule)| rule), &uri)
    };
    let table = [
        ("https://A.example/p?utm_source=x&b=2&fbclid=y&a=1&gclid=z&mc_eid=1", "https://a.example/p?a=1&b=2"),
        ("https://a.example/p?utm_source=x", "https://a.example/p"),
        (
            "https://a.example/inc?sort=1&utm_campaign=c&page=2&utm_source=s",
            "https://a.example/inc?page=2&utm_campaign=c",
        ),
        ("https://a.example/exc?b=1&ref=x&referrer=y&utm_medium=m", "https://a.example/exc?b=1"),
        ("https://a.example:8443/ign?x=1", "https://*/ign"),
    ];
    for (url, expected) in table {
        assert_eq!(key_url(url), expected, "{url}");
    }
    let kept = parse("[]").keeping_marketing_params(true);
    assert_eq!(kept.key_url(None, &"https://a/p?utm_source=x".parse().unwrap()), "https://a/p?utm_source=x");

    // Without parts the hash is the one every earlier version computed: an upgrade keeps the
    // entries of URLs without marketing parameters.
    let ns = crate::keyspace::Namespace::new("edge");
    let uri: http::Uri = "https://a.example/p?b=1".parse().unwrap();
    let plain = crate::key::cache_keys(&ns, 1, &uri, &[]);
    assert_eq!(crate::key::cache_keys_for(&ns, 1, &parse("[]").key_url(None, &uri), &[], &[]), plain);
    let eur = [("cookie:currency".to_string(), "=EUR".to_string())];
    let usd = [("cookie:currency".to_string(), "=USD".to_string())];
    let with_eur = crate::key::cache_keys_for(&ns, 1, "https://a.example/p?b=1", &eur, &[]);
    let with_usd = crate::key::cache_keys_for(&ns, 1, "https://a.example/p?b=1", &usd, &[]);
    assert_ne!(with_eur.fresh, plain.fresh);
    assert_ne!(with_eur.fresh, with_usd.fresh);
    assert_eq!(with_eur.url_id, plain.url_id, "parts are variants of one URL, purged together");
}
