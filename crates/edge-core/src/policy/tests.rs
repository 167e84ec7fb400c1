//! The request and response decisions, as tables.
#![allow(clippy::type_complexity)] // table rows are tuples
use super::*;
use crate::rules::PathPattern;
use http::{HeaderMap, HeaderName, HeaderValue};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

/// The clock the table tests read: a fixed instant.
const NOW: u64 = 1_795_944_498;

fn origin_age_of(headers: &HeaderMap) -> u32 {
    origin_age(headers, NOW)
}

fn rule() -> Rule {
    Rule::new(PathPattern::Prefix("/".into()))
}

fn fresh(ttl: u32, swr: u32, sie: u32) -> Result<Freshness, NoCacheReason> {
    Ok(Freshness { ttl, swr, sie })
}

const MAX: u64 = 1_048_576;

#[test]
fn request_decision_table() {
    use http::Method as M;
    use NoCacheReason::*;
    let no_cache_rule = Rule { cache: false, ..rule() };
    let caching_rule = Rule { ttl: Some(5), ..rule() };
    let table: Vec<(M, Vec<(&str, &str)>, Option<&Rule>, RequestDecision)> = vec![
        (M::GET, vec![], None, RequestDecision::Lookup),
        (M::HEAD, vec![], None, RequestDecision::Lookup),
        (M::GET, vec![], Some(&caching_rule), RequestDecision::Lookup),
        (M::POST, vec![], None, RequestDecision::Bypass(Method)),
        (M::PUT, vec![], None, RequestDecision::Bypass(Method)),
        (M::DELETE, vec![], None, RequestDecision::Bypass(Method)),
        (M::OPTIONS, vec![], None, RequestDecision::Bypass(Method)),
        (M::PATCH, vec![], None, RequestDecision::Bypass(Method)),
        (M::from_bytes(b"PURGE").unwrap(), vec![], None, RequestDecision::Bypass(Method)),
        // Looked up: what may answer it is reusable_with_authorization's (engine).
        (M::GET, vec![("authorization", "Bearer x")], None, RequestDecision::Lookup),
        (M::GET, vec![], Some(&no_cache_rule), RequestDecision::Bypass(RuleNoCache)),
        // A range is answered from a stored copy, or passed on (engine serve_range).
        (M::GET, vec![("range", "bytes=0-10")], None, RequestDecision::Lookup),
        (
            M::GET,
            vec![("upgrade", "websocket"), ("connection", "upgrade")],
            None,
            RequestDecision::Bypass(Upgrade),
        ),
        // Any other upgrade is ignored (its headers are dropped as hop-by-hop).
        (
            M::GET,
            vec![("upgrade", "h2c"), ("connection", "Upgrade, HTTP2-Settings")],
            None,
            RequestDecision::Lookup,
        ),
        // Client cache directives do not force an origin fetch.
        (
            M::GET,
            vec![("cache-control", "no-cache, no-store, max-age=0"), ("pragma", "no-cache")],
            None,
            RequestDecision::Lookup,
        ),
        // Cookies alone do not bypass (Vary: Cookie handles per-session content).
        (M::GET, vec![("cookie", "a=b")], None, RequestDecision::Lookup),
        // Method is reported first, then the rule.
        (M::POST, vec![("authorization", "x")], Some(&no_cache_rule), RequestDecision::Bypass(Method)),
        (M::GET, vec![("authorization", "x")], Some(&no_cache_rule), RequestDecision::Bypass(RuleNoCache)),
    ];
    for (method, pairs, rule, expected) in table {
        assert_eq!(
            request_decision(&method, &headers(&pairs), rule),
            expected,
            "{method} {pairs:?} {rule:?}"
        );
    }
}

#[test]
fn what_an_authorized_request_may_share() {
    // (response headers, reusable for a request with Authorization)
    let table = [
        (vec![("cache-control", "public, max-age=60")], true),
        (vec![("cache-control", "s-maxage=60")], true),
        (vec![("cache-control", "max-age=60, must-revalidate")], true),
        (vec![("cache-control", "max-age=60")], false),
        (vec![("cache-control", "max-age=60, proxy-revalidate")], false),
        (vec![("cache-control", "private, max-age=60")], false),
        (vec![("expires", "Thu, 01 Jan 2099 00:00:00 GMT")], false),
        (vec![], false),
        // A valid CDN-Cache-Control is what this cache obeys, both ways.
        (vec![("cache-control", "public, max-age=60"), ("cdn-cache-control", "max-age=60")], false),
        (vec![("cache-control", "max-age=60"), ("cdn-cache-control", "public, max-age=60")], true),
    ];
    for (pairs, expected) in table {
        assert_eq!(reusable_with_authorization(&headers(&pairs)), expected, "{pairs:?}");
    }
}

#[test]
fn origin_directives_table() {
    use NoCacheReason::*;
    let table: Vec<(&[(&str, &str)], Result<Freshness, NoCacheReason>)> = vec![
        (&[], Err(NoFreshness)),
        (&[("cache-control", "public")], Err(NoFreshness)),
        (&[("cache-control", "max-age=60")], fresh(60, 0, 0)),
        (&[("cache-control", "s-maxage=30, max-age=60")], fresh(30, 0, 0)),
        (&[("cache-control", "max-age=60, s-maxage=0, stale-if-error=10")], fresh(0, 0, 10)),
        (
            &[("cache-control", "max-age=60, stale-while-revalidate=30, stale-if-error=600")],
            fresh(60, 30, 600),
        ),
        (&[("cache-control", "max-age=60"), ("age", "10")], fresh(50, 0, 0)),
        (&[("cache-control", "max-age=60"), ("age", "60")], Err(ZeroTtl)),
        (&[("cache-control", "max-age=60"), ("age", "600")], Err(ZeroTtl)),
        // already stale on arrival: the overshoot comes off the stale windows
        (&[("cache-control", "max-age=60, stale-while-revalidate=100"), ("age", "90")], fresh(0, 70, 0)),
        (&[("cache-control", "max-age=60, stale-while-revalidate=10"), ("age", "90")], Err(ZeroTtl)),
        (&[("cache-control", "max-age=60"), ("age", "abc")], fresh(60, 0, 0)),
        (&[("cache-control", "max-age=60"), ("age", "5, 50")], fresh(55, 0, 0)),
        (&[("cache-control", "max-age=0")], Err(ZeroTtl)),
        (&[("cache-control", "max-age=0, stale-while-revalidate=30")], fresh(0, 30, 0)),
        (&[("cache-control", "max-age=abc")], Err(ZeroTtl)),
        (&[("cache-control", "max-age=99999999999")], fresh(1 << 31, 0, 0)),
        (&[("cache-control", "max-age=60, must-revalidate")], fresh(60, 0, 0)),
        (&[("cache-control", "public, max-age=60, immutable")], fresh(60, 0, 0)),
        // must-revalidate / proxy-revalidate: never stale, whatever the origin's windows say.
        (
            &[("cache-control", "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=60")],
            fresh(60, 0, 0),
        ),
        (&[("cache-control", "max-age=60, proxy-revalidate, stale-if-error=60")], fresh(60, 0, 0)),
        // no-cache: with a validator, stored to be revalidated on every use.
        (&[("cache-control", "no-cache, max-age=60"), ("etag", "\"a\"")], fresh(0, 0, 0)),
        (
            &[("cache-control", "no-cache"), ("last-modified", "Sun, 29 Nov 2026 09:00:00 GMT")],
            fresh(0, 0, 0),
        ),
        (&[("cache-control", "s-maxage=60, stale-while-revalidate=30")], fresh(60, 30, 0)),
        (
            &[("expires", "Sun, 29 Nov 2026 09:30:18 GMT"), ("date", "Sun, 29 Nov 2026 09:28:18 GMT")],
            fresh(120, 0, 0),
        ),
        (&[("expires", "Sunday, 29-Nov-26 09:29:18 GMT")], fresh(60, 0, 0)),
        (&[("expires", "Sun Nov 29 09:29:18 2026")], fresh(60, 0, 0)),
        (&[("expires", "0")], Err(ZeroTtl)),
        (&[("expires", "soon"), ("cache-control", "stale-while-revalidate=30")], fresh(0, 30, 0)),
        (&[("expires", "Sun, 29 Nov 2026 09:30:18 GMT"), ("cache-control", "max-age=5")], fresh(5, 0, 0)),
        // Age and Date both count against the lifetime (one second of Date forgiven).
        (&[("cache-control", "max-age=60"), ("date", "Sun, 29 Nov 2026 09:27:48 GMT")], fresh(31, 0, 0)),
        (
            &[("cache-control", "max-age=60"), ("age", "10"), ("date", "Sun, 29 Nov 2026 09:28:18 GMT")],
            fresh(50, 0, 0),
        ),
        (&[("cache-control", "max-age=60"), ("date", "Mon, 30 Nov 2026 09:28:18 GMT")], fresh(60, 0, 0)),
        // CDN-Cache-Control takes precedence for this cache, both ways; an invalid one is ignored.
        (&[("cache-control", "no-store"), ("cdn-cache-control", "max-age=30")], fresh(30, 0, 0)),
        (&[("cache-control", "public, max-age=60"), ("cdn-cache-control", "no-store")], Err(NoStore)),
        (&[("cache-control", "max-age=60"), ("cdn-cache-control", "Max-Age=5")], fresh(60, 0, 0)),
        (&[("cdn-cache-control", "max-age=10, stale-if-error=20")], fresh(10, 0, 20)),
        // must-understand: a status this cache understands is stored even with no-store.
        (&[("cache-control", "must-understand, no-store, max-age=60")], fresh(60, 0, 0)),
        // never stored
        (&[("cache-control", "no-store, max-age=60")], Err(NoStore)),
        (&[("cache-control", "max-age=60"), ("cache-control", "no-store")], Err(NoStore)),
        (&[("cache-control", "private, max-age=60")], Err(Private)),
        (&[("cache-control", "no-cache, max-age=60")], Err(NoCache)),
        (&[("cache-control", "no-store, private, no-cache")], Err(NoStore)),
        (&[("cache-control", "private, no-cache")], Err(Private)),
        (&[("cache-control", "max-age=60"), ("vary", "*")], Err(VaryStar)),
        (&[("cache-control", "max-age=60"), ("vary", "accept, *")], Err(VaryStar)),
        (&[("cache-control", "max-age=60"), ("set-cookie", "a=b")], Err(SetCookie)),
        (&[("set-cookie", "a=b")], Err(SetCookie)),
        // qualified private / no-cache: stored (the named fields are stripped on store)
        (&[("cache-control", "private=\"x-user\", max-age=60")], fresh(60, 0, 0)),
        (&[("cache-control", "no-cache=\"x-debug\", max-age=60")], fresh(60, 0, 0)),
        // request-only / irrelevant headers
        (&[("cache-control", "max-age=60"), ("pragma", "no-cache")], fresh(60, 0, 0)),
        (&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")], fresh(60, 0, 0)),
        // size
        (&[("cache-control", "max-age=60"), ("content-length", "1048576")], fresh(60, 0, 0)),
        (&[("cache-control", "max-age=60"), ("content-length", "1048577")], Err(TooLarge)),
        (&[("cache-control", "max-age=60"), ("content-length", "x")], fresh(60, 0, 0)),
    ];
    for (pairs, expected) in table {
        assert_eq!(response_decision(200, &headers(pairs), None, MAX, NOW, 0), expected, "{pairs:?}");
    }
}

#[test]
fn heuristic_freshness_is_off_by_default_and_beaten_by_rules() {
    let modified = headers(&[
        ("last-modified", "Sun, 19 Nov 2026 09:28:18 GMT"),
        ("date", "Sun, 29 Nov 2026 09:28:18 GMT"),
    ]);
    assert_eq!(response_decision(200, &modified, None, MAX, NOW, 0), Err(NoCacheReason::NoFreshness));
    // 10% of ten days, capped at a day.
    assert_eq!(response_decision(200, &modified, None, MAX, NOW, 10), fresh(86_400, 0, 0));
    assert_eq!(response_decision(200, &modified, None, MAX, NOW, 1), fresh(8_640, 0, 0));
    let rule_ttl = Rule { ttl: Some(5), ..rule() };
    assert_eq!(response_decision(200, &modified, Some(&rule_ttl), MAX, NOW, 10), fresh(5, 0, 0));
    assert_eq!(response_decision(403, &modified, None, MAX, NOW, 10), Err(NoCacheReason::Status));
    assert_eq!(response_decision(200, &headers(&[]), None, MAX, NOW, 10), Err(NoCacheReason::NoFreshness));
}

#[test]
fn status_table() {
    // With the origin's explicit freshness any final status may be stored but 206 and 304.
    let explicit = headers(&[("cache-control", "max-age=60")]);
    let with_rule_only = Rule { ttl: Some(60), ..rule() };
    let must_understand = headers(&[("cache-control", "max-age=60, must-understand")]);
    for status in 100..700 {
        let result = response_decision(status, &explicit, None, MAX, NOW, 0);
        let final_status = (200..=599).contains(&status) && status != 206 && status != 304;
        if final_status {
            assert_eq!(result, fresh(60, 0, 0), "{status}");
        } else {
            assert_eq!(result, Err(NoCacheReason::Status), "{status}");
        }
        // A rule's ttl alone, and must-understand, only for the statuses understood.
        let understood = STORABLE_STATUSES.contains(&status);
        let by_rule = response_decision(status, &HeaderMap::new(), Some(&with_rule_only), MAX, NOW, 0);
        assert_eq!(by_rule.is_ok(), understood, "{status} by rule");
        let strict = response_decision(status, &must_understand, None, MAX, NOW, 0);
        assert_eq!(strict.is_ok(), understood, "{status} with must-understand");
    }
}

#[test]
fn rules_table() {
    use NoCacheReason::*;
    let r = |ttl: Option<u32>, swr: Option<u32>, sie: Option<u32>, over: bool| Rule {
        ttl,
        swr,
        sie,
        override_origin: over,
        ..rule()
    };
    let table: Vec<(&[(&str, &str)], Rule, Result<Freshness, NoCacheReason>)> = vec![
        // rule fills in when the origin gives nothing
        (&[], r(Some(300), None, None, false), fresh(300, 0, 0)),
        (&[], r(Some(300), Some(30), Some(60), false), fresh(300, 30, 60)),
        (&[], r(None, Some(30), None, false), Err(NoFreshness)),
        (&[], r(Some(0), None, None, false), Err(ZeroTtl)),
        (&[], r(Some(0), Some(30), None, false), fresh(0, 30, 0)),
        // origin values win without override, field by field
        (&[("cache-control", "max-age=60")], r(Some(300), None, None, false), fresh(60, 0, 0)),
        (
            &[("cache-control", "max-age=60, stale-while-revalidate=5")],
            r(Some(300), Some(30), Some(90), false),
            fresh(60, 5, 90),
        ),
        (&[("cache-control", "max-age=0")], r(Some(300), None, None, false), Err(ZeroTtl)),
        // override: rule values always win; Age does not reduce a rule ttl
        (
            &[("cache-control", "max-age=60, stale-while-revalidate=5"), ("age", "20")],
            r(Some(300), Some(30), None, true),
            fresh(300, 30, 0),
        ),
        (&[("cache-control", "max-age=0")], r(Some(300), None, None, true), fresh(300, 0, 0)),
        // override without a ttl keeps the origin's ttl
        (&[("cache-control", "max-age=60")], r(None, Some(30), None, true), fresh(60, 30, 0)),
        // must-revalidate / proxy-revalidate / s-maxage block rule stale windows...
        (
            &[("cache-control", "max-age=60, must-revalidate")],
            r(None, Some(30), Some(30), false),
            fresh(60, 0, 0),
        ),
        (
            &[("cache-control", "max-age=60, proxy-revalidate")],
            r(None, Some(30), None, false),
            fresh(60, 0, 0),
        ),
        (&[("cache-control", "s-maxage=60")], r(None, Some(30), None, false), fresh(60, 0, 0)),
        // ...but not the origin's own, nor an overriding rule's
        (
            &[("cache-control", "s-maxage=60, stale-if-error=10")],
            r(None, Some(30), None, false),
            fresh(60, 0, 10),
        ),
        (
            &[("cache-control", "max-age=60, must-revalidate")],
            r(None, Some(30), None, true),
            fresh(60, 30, 0),
        ),
        // override never makes "never stored" storable
        (&[("cache-control", "no-store")], r(Some(300), None, None, true), Err(NoStore)),
        (&[("cache-control", "private")], r(Some(300), None, None, true), Err(Private)),
        (&[("cache-control", "no-cache")], r(Some(300), None, None, true), Err(NoCache)),
        (&[("set-cookie", "a=b")], r(Some(300), None, None, true), Err(SetCookie)),
        (&[("vary", "*")], r(Some(300), None, None, true), Err(VaryStar)),
        (&[], Rule { cache: false, ..r(Some(300), None, None, true) }, Err(RuleNoCache)),
    ];
    for (pairs, rule, expected) in table {
        assert_eq!(
            response_decision(200, &headers(pairs), Some(&rule), MAX, NOW, 0),
            expected,
            "{pairs:?} {rule:?}"
        );
    }
    let override_rule = r(Some(300), None, None, true);
    assert_eq!(response_decision(500, &HeaderMap::new(), Some(&override_rule), MAX, NOW, 0), Err(Status));
    assert_eq!(
        response_decision(200, &headers(&[("content-length", "11")]), Some(&override_rule), 10, NOW, 0),
        Err(TooLarge)
    );
}

#[test]
fn freshness_stale_copy_ttl() {
    let table = [
        ((60, 0, 0), 60),
        ((60, 30, 0), 90),
        ((60, 30, 600), 660),
        ((60, 600, 30), 660),
        ((0, 0, 5), 5),
        ((u32::MAX, 1, 0), u32::MAX),
    ];
    for ((ttl, swr, sie), expected) in table {
        assert_eq!(Freshness { ttl, swr, sie }.stale_copy_ttl(), expected);
    }
}

#[test]
fn body_fits_and_origin_age() {
    assert!(body_fits(0, 0));
    assert!(body_fits(10, 10));
    assert!(!body_fits(11, 10));
    assert_eq!(origin_age_of(&headers(&[])), 0);
    assert_eq!(origin_age_of(&headers(&[("age", "42")])), 42);
    assert_eq!(origin_age_of(&headers(&[("age", " 7 , 9")])), 7);
    assert_eq!(origin_age_of(&headers(&[("age", "-1")])), 0);
    assert_eq!(origin_age_of(&headers(&[("age", "99999999999")])), 1 << 31);
}

#[test]
fn content_length_conflicts_are_ignored() {
    let h = headers(&[("cache-control", "max-age=1"), ("content-length", "5"), ("content-length", "500")]);
    assert_eq!(response_decision(200, &h, None, 10, NOW, 0), fresh(1, 0, 0));
    let h = headers(&[("cache-control", "max-age=1"), ("content-length", "500"), ("content-length", "500")]);
    assert_eq!(response_decision(200, &h, None, 10, NOW, 0), Err(NoCacheReason::TooLarge));
}

/// Issue 15 item 4: `status_ttl` fills in (or with `override` replaces) the TTL by status, may
/// store a status a plain `ttl` cannot, and an overriding 0 keeps a 5xx out without
/// hit-for-pass (docs §3.4).
#[test]
fn status_ttl_table() {
    use NoCacheReason::*;
    let ruled = |json: &str| crate::rules::CacheRules::parse(json).unwrap().rules()[0].clone();
    let with_404 = ruled(r#"[{"path":"/*","ttl":300,"status_ttl":{"404":10}}]"#);
    let redirects = ruled(r#"[{"path":"/*","status_ttl":{"3xx":30}}]"#);
    let no_errors = ruled(r#"[{"path":"/*","status_ttl":{"5xx":0}}]"#);
    let no_errors_over = ruled(r#"[{"path":"/*","status_ttl":{"5xx":0},"override":true}]"#);
    let plain = rule();
    let table: Vec<(u16, &[(&str, &str)], &Rule, Result<Freshness, NoCacheReason>)> = vec![
        (404, &[], &with_404, fresh(10, 0, 0)),
        (200, &[], &with_404, fresh(300, 0, 0)),
        (404, &[("cache-control", "max-age=60")], &with_404, fresh(60, 0, 0)),
        (302, &[], &redirects, fresh(30, 0, 0)),
        (307, &[], &plain, Err(Status)),
        (304, &[], &redirects, Err(Status)),
        (503, &[("cache-control", "max-age=60")], &no_errors, fresh(60, 0, 0)),
        (503, &[("cache-control", "max-age=60")], &no_errors_over, Err(ZeroTtl)),
        (500, &[], &no_errors, Err(Status)),
    ];
    for (status, pairs, rule, expected) in table {
        assert_eq!(
            response_decision(status, &headers(pairs), Some(rule), MAX, NOW, 0),
            expected,
            "{status} {pairs:?}"
        );
    }
    let h = |pairs: &[(&str, &str)]| headers(pairs);
    assert!(error_status_passes(500, &h(&[]), Some(&no_errors)));
    assert!(!error_status_passes(503, &h(&[("cache-control", "max-age=60")]), Some(&no_errors)));
    assert!(error_status_passes(503, &h(&[("cache-control", "max-age=60")]), Some(&no_errors_over)));
    let errors_kept = ruled(r#"[{"path":"/*","status_ttl":{"5xx":60}}]"#);
    assert!(!error_status_passes(500, &h(&[]), Some(&errors_kept)));
    assert_eq!(response_decision(500, &h(&[]), Some(&errors_kept), MAX, NOW, 0), fresh(60, 0, 0));
}
