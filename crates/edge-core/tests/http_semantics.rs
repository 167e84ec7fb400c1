//! HTTP caching semantics in the state machine (docs §2.3, §4.13): statuses with explicit
//! freshness, errors against stale-if-error, revalidation by 304, no-cache, heuristics.

mod support;

use std::time::Duration;

use edge_core::{CachePhase, NoCacheReason};
use support::*;

/// Issue 10: any final status with explicit freshness is reused (a redirect, an error), and an
/// error never replaces a copy still inside its stale-if-error window.
#[test]
fn statuses_with_explicit_freshness_are_reused_and_errors_never_replace_a_usable_copy() {
    local(async {
        for (status, cache_control) in [(302, "max-age=60"), (400, "max-age=60"), (503, "s-maxage=60")] {
            let w = world(settings(2_000, "[]"));
            let origin = TestOrigin::new(Answer::ok(cache_control, "x").status(status));
            let req = get(&format!("https://example.com/status/{status}"));
            assert_eq!(request(&w.cache, &req, &origin).await.phase, CachePhase::Miss, "{status}");
            settle().await;
            let again = request(&w.cache, &req, &origin).await;
            assert_eq!((again.phase, again.status), (CachePhase::Hit, status));
        }
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=1, stale-if-error=300", "good"));
        let req = get("https://example.com/flaky");
        request(&w.cache, &req, &origin).await;
        settle().await;
        w.clock.advance(2_000);
        origin.set(Answer::ok("max-age=60", "error page").status(500));
        let served = request(&w.cache, &req, &origin).await;
        assert_eq!((served.phase, body(&served)), (CachePhase::StaleIfError, b"good#1".to_vec()));
        settle().await;
        let after = request(&w.cache, &req, &origin).await;
        assert_eq!(
            (after.phase, body(&after)),
            (CachePhase::StaleIfError, b"good#1".to_vec()),
            "not replaced"
        );
    });
}

/// Issue 10 item 5: a stale copy with a validator is revalidated; the 304 freshens it (headers
/// updated, body untouched) and costs the origin no body.
#[test]
fn a_stale_entry_is_revalidated_by_a_304_that_updates_its_headers() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(
            Answer::ok("max-age=1", "body").header("etag", "\"v1\"").header("x-version", "1"),
        );
        let req = get("https://example.com/validated");
        request(&w.cache, &req, &origin).await;
        settle().await;
        w.clock.advance(2_000);
        origin.set(Answer::ok("max-age=60", "unused").header("etag", "\"v1\"").header("x-version", "2"));
        let revalidated = request(&w.cache, &req, &origin).await;
        assert_eq!(revalidated.phase, CachePhase::Revalidated);
        assert_eq!(header(&revalidated, "x-cache"), "HIT");
        assert!(header(&revalidated, "cache-status").contains("fwd=stale; fwd-status=304"));
        assert_eq!(body(&revalidated), b"body#1", "the stored body, not a new one");
        assert_eq!(header(&revalidated, "x-version"), "2", "the 304's headers replace the stored ones");
        assert_eq!((origin.count(), origin.revalidations.get()), (2, 1));
        settle().await;
        let fresh = request(&w.cache, &req, &origin).await;
        assert_eq!((fresh.phase, body(&fresh)), (CachePhase::Hit, b"body#1".to_vec()));
        assert_eq!(header(&fresh, "x-version"), "2");

        // A changed resource answers 200: the copy is replaced.
        w.clock.advance(61_000);
        origin.set(Answer::ok("max-age=60", "new body").header("etag", "\"v2\""));
        let replaced = request(&w.cache, &req, &origin).await;
        assert_eq!((replaced.phase, body(&replaced)), (CachePhase::Miss, b"new body#3".to_vec()));
    });
}

/// The background refresh of a stale-while-revalidate answer revalidates too.
#[test]
fn a_background_refresh_revalidates_instead_of_refetching() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin =
            TestOrigin::new(Answer::ok("max-age=1, stale-while-revalidate=30", "v").header("etag", "\"e\""));
        let req = get("https://example.com/swr-etag");
        request(&w.cache, &req, &origin).await;
        settle().await;
        w.clock.advance(2_000);
        assert_eq!(request(&w.cache, &req, &origin).await.phase, CachePhase::Stale);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(origin.revalidations.get(), 1);
        let after = request(&w.cache, &req, &origin).await;
        assert_eq!((after.phase, body(&after)), (CachePhase::Hit, b"v#1".to_vec()));
    });
}

/// Issue 10 item 3: `no-cache` with a validator is stored and revalidated on every use.
#[test]
fn no_cache_is_stored_and_revalidated_on_every_use() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("no-cache", "checked").header("etag", "\"n1\""));
        let req = get("https://example.com/no-cache");
        assert_eq!(request(&w.cache, &req, &origin).await.phase, CachePhase::Miss);
        settle().await;
        for round in 1..=3 {
            let served = request(&w.cache, &req, &origin).await;
            assert_eq!(
                (served.phase, body(&served)),
                (CachePhase::Revalidated, b"checked#1".to_vec()),
                "round {round}"
            );
            settle().await;
        }
        assert_eq!((origin.count(), origin.revalidations.get()), (4, 3), "one conditional request per use");
    });
}

/// Issue 10 item 1: heuristic freshness, when turned on, never for a request with cookies.
#[test]
fn heuristic_freshness_applies_only_when_on_and_never_to_personal_requests() {
    local(async {
        let mut on = settings(2_000, "[]");
        on.heuristic_percent = 10;
        let w = world(on);
        let origin =
            TestOrigin::new(Answer::ok("", "guess").header("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"));
        let anonymous = request(&w.cache, &get("https://example.com/h/a"), &origin).await;
        assert_eq!(anonymous.phase, CachePhase::Miss);
        let mut with_cookie = get("https://example.com/h/b");
        with_cookie.headers.insert("cookie", "theme=dark".parse().unwrap());
        let personal = request(&w.cache, &with_cookie, &origin).await;
        assert_eq!(personal.phase, CachePhase::MissUnstored(NoCacheReason::PerSession));
        settle().await;
        // Withheld for that request only: no hit-for-pass, the next anonymous request stores it.
        let next = request(&w.cache, &get("https://example.com/h/b"), &origin).await;
        assert_eq!(next.phase, CachePhase::Miss);

        let off = world(settings(2_000, "[]"));
        let default = request(&off.cache, &get("https://example.com/h/a"), &origin).await;
        assert_eq!(default.phase, CachePhase::MissUnstored(NoCacheReason::NoFreshness), "off by default");
    });
}

/// Issue 10 item 8 (RFC 9111 §3.5): a request with `Authorization` shares only what the origin
/// marked shareable for it (`public`, `s-maxage`, `must-revalidate`), both ways; anything else
/// passes and stores nothing, without marking the URL hit-for-pass for anonymous requests.
#[test]
fn authorization_shares_only_what_the_origin_marked_shareable() {
    local(async {
        let authorized = |url: &str| {
            let mut req = get(url);
            req.headers.insert("authorization", "Bearer alice".parse().expect("header value"));
            req
        };
        for cache_control in ["public, max-age=60", "s-maxage=60", "max-age=60, must-revalidate"] {
            let w = world(settings(2_000, "[]"));
            let origin = TestOrigin::new(Answer::ok(cache_control, "shared"));
            let url = "https://example.com/auth/shared";
            // Stored from the authorized request, and reused by anyone.
            assert_eq!(request(&w.cache, &authorized(url), &origin).await.phase, CachePhase::Miss);
            settle().await;
            assert_eq!(request(&w.cache, &get(url), &origin).await.phase, CachePhase::Hit, "{cache_control}");
            assert_eq!(request(&w.cache, &authorized(url), &origin).await.phase, CachePhase::Hit);
            assert_eq!(origin.count(), 1, "{cache_control}");
        }

        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "mine"));
        let url = "https://example.com/auth/plain";
        let first = request(&w.cache, &authorized(url), &origin).await;
        assert_eq!(first.phase, CachePhase::MissUnstored(NoCacheReason::Authorization));
        settle().await;
        // Not stored, and no hit-for-pass: the anonymous request fills the entry...
        assert_eq!(request(&w.cache, &get(url), &origin).await.phase, CachePhase::Miss);
        settle().await;
        assert_eq!(request(&w.cache, &get(url), &origin).await.phase, CachePhase::Hit);
        // ...which an authorized request may not take: the origin did not mark it shareable.
        let again = request(&w.cache, &authorized(url), &origin).await;
        assert_eq!(again.phase, CachePhase::Bypass(NoCacheReason::Authorization));
        assert_eq!(body(&again), b"mine#3".to_vec());
        assert_eq!(origin.count(), 3);
    });
}
