//! The two tiers (docs §4.15–§4.17): the per-isolate L1 in front of Redis, what it costs and
//! how long a purge made elsewhere can go unseen, and degraded mode while Redis is down.
//! Several isolates are several `Cache`s, each with its own `IsolateCache`, over one store.

mod support;

use std::rc::Rc;

use edge_core::{
    purge, Cache, CachePhase, IsolateCache, MemoryStore, NoCacheReason, PurgeRequest, PurgeTarget, Stats,
    TierSettings,
};
use support::{body, get, header, local, settings, settle, Answer, CountingStore, TestCache, TestClock};
use support::{request, TestOrigin, TestRuntime};

const L1_TTL_MS: u64 = 1_000;
const SHARED: &str = "public, s-maxage=2, stale-while-revalidate=10, stale-if-error=60";

struct Fleet {
    clock: TestClock,
    store: CountingStore<MemoryStore<TestClock>>,
    isolates: Vec<(TestCache, Rc<IsolateCache>)>,
}

/// `n` isolates over one store, each with an L1 of `l1_bytes` (early refresh off: these
/// tests count fetches around expiries).
fn fleet(n: usize, l1_bytes: u64) -> Fleet {
    let clock = TestClock::new();
    let store = CountingStore::new(MemoryStore::with_clock(clock.clone()));
    let settings = Rc::new(settings(2_000, "[]"));
    let tiers = TierSettings { l1_bytes, l1_ttl_ms: L1_TTL_MS, early_refresh_beta: 0.0 };
    let isolates = (0..n)
        .map(|_| {
            let state = Rc::new(IsolateCache::new(tiers));
            let rt = TestRuntime { clock: clock.clone() };
            (Cache::new(store.clone(), rt, settings.clone(), state.clone(), Stats::default()), state)
        })
        .collect();
    Fleet { clock, store, isolates }
}

impl Fleet {
    fn cache(&self, i: usize) -> &TestCache {
        &self.isolates[i].0
    }
}

#[test]
fn an_l1_hit_costs_no_redis_request_within_its_lifetime() {
    local(async {
        let f = fleet(1, 1 << 20);
        let origin = TestOrigin::new(Answer::ok("max-age=60", "v"));
        let req = get("https://example.com/hot");
        assert_eq!(request(f.cache(0), &req, &origin).await.phase, CachePhase::Miss);
        settle().await;
        let before = f.store.round_trips.get();
        for _ in 0..50 {
            let served = request(f.cache(0), &req, &origin).await;
            assert_eq!((served.phase, body(&served)), (CachePhase::Hit, b"v#1".to_vec()));
        }
        assert_eq!(f.store.round_trips.get(), before, "50 hits from the L1, no Redis request");
        f.clock.advance(L1_TTL_MS);
        assert_eq!(request(f.cache(0), &req, &origin).await.phase, CachePhase::Hit);
        assert_eq!(f.store.round_trips.get(), before + 1, "past its lifetime: Redis confirms it");
        assert_eq!(origin.count(), 1);
    });
}

#[test]
fn with_the_l1_off_every_hit_asks_redis() {
    local(async {
        let f = fleet(1, 0);
        let origin = TestOrigin::new(Answer::ok("max-age=60", "v"));
        let req = get("https://example.com/hot");
        request(f.cache(0), &req, &origin).await;
        settle().await;
        let before = f.store.round_trips.get();
        for _ in 0..5 {
            assert_eq!(request(f.cache(0), &req, &origin).await.phase, CachePhase::Hit);
        }
        assert_eq!(f.store.round_trips.get(), before + 5);
    });
}

#[test]
fn a_purge_made_elsewhere_is_seen_within_the_l1_lifetime() {
    for target in [
        PurgeTarget::Urls(vec!["https://example.com/p".into()]),
        PurgeTarget::Everything,
        PurgeTarget::Tags(vec!["t".into()]),
    ] {
        for soft in [false, true] {
            local(async {
                let f = fleet(2, 1 << 20);
                let origin = TestOrigin::new(Answer::ok("max-age=60", "v").header("cache-tag", "t"));
                let req = get("https://example.com/p");
                request(f.cache(0), &req, &origin).await;
                settle().await;
                assert_eq!(request(f.cache(0), &req, &origin).await.phase, CachePhase::Hit);
                // Another isolate purges: this one may serve its copy for the L1 lifetime...
                let ns = edge_core::Namespace::new("t");
                let purge_request = PurgeRequest { target: target.clone(), soft };
                purge(&f.store, &ns, &purge_request, f.clock.now_ms_for_tests()).await.expect("purge");
                assert_eq!(request(f.cache(0), &req, &origin).await.phase, CachePhase::Hit);
                // ...and no longer.
                f.clock.advance(L1_TTL_MS);
                let served = request(f.cache(0), &req, &origin).await;
                assert_ne!(served.phase, CachePhase::Hit, "{target:?} soft={soft}");
                assert_eq!(origin.count(), 2, "{target:?} soft={soft}: fetched again");
            });
        }
    }
}

#[test]
fn a_purge_through_this_isolate_clears_its_l1_at_once() {
    local(async {
        let f = fleet(1, 1 << 20);
        let origin = TestOrigin::new(Answer::ok("max-age=60", "v").header("cache-tag", "t"));
        let req = get("https://example.com/shop/p");
        request(f.cache(0), &req, &origin).await;
        settle().await;
        let rules = edge_core::CacheRules::parse("[]").expect("rules");
        for target in [
            PurgeTarget::Tags(vec!["t".into()]),
            PurgeTarget::Prefix("/shop/".into()),
            // Through the rules' key derivation: campaign parameters are not part of the key.
            PurgeTarget::Urls(vec!["https://example.com/shop/p?utm_source=mail".into()]),
        ] {
            assert_eq!(f.isolates[0].1.l1_usage().0, 1);
            f.isolates[0].1.purged(&target, &rules);
            assert_eq!(f.isolates[0].1.l1_usage().0, 0, "{target:?}");
            request(f.cache(0), &req, &origin).await;
            settle().await;
        }
    });
}

#[test]
fn with_the_l1_on_one_origin_fetch_per_key_per_expiry_across_isolates() {
    local(async {
        let f = fleet(3, 1 << 20);
        let origin = TestOrigin::new(Answer::ok("s-maxage=2", "v").delayed(100));
        let req = get("https://example.com/k");
        for round in 1..=3u32 {
            let answers =
                futures::future::join_all((0..30).map(|i| request(f.cache(i % 3), &req, &origin))).await;
            assert!(answers.iter().all(|s| s.status == 200));
            assert_eq!(origin.count(), round, "one fetch for 30 requests in 3 isolates");
            settle().await;
            f.clock.advance(2_100);
        }
    });
}

/// Fills `/k` in isolate 0 with a shared `SHARED` answer, then takes Redis down.
async fn filled_then_redis_down(f: &Fleet, origin: &TestOrigin) {
    let req = get("https://example.com/k");
    assert_eq!(request(f.cache(0), &req, origin).await.phase, CachePhase::Miss);
    settle().await;
    f.store.failing.set(true);
}

#[test]
fn with_redis_down_the_l1_serves_fresh_then_stale_copies_and_says_so() {
    local(async {
        let f = fleet(1, 1 << 20);
        let origin = TestOrigin::new(Answer::ok(SHARED, "v"));
        filled_then_redis_down(&f, &origin).await;
        let req = get("https://example.com/k");
        f.clock.advance(L1_TTL_MS);
        let hit = request(f.cache(0), &req, &origin).await;
        assert_eq!((header(&hit, "x-cache").as_str(), body(&hit)), ("HIT", b"v#1".to_vec()));
        assert!(
            header(&hit, "cache-status").ends_with("detail=redis-unavailable"),
            "{hit:?}",
            hit = header(&hit, "cache-status")
        );
        f.clock.advance(2_000);
        let stale = request(f.cache(0), &req, &origin).await;
        assert_eq!((header(&stale, "x-cache").as_str(), body(&stale)), ("STALE", b"v#1".to_vec()));
        assert!(header(&stale, "cache-status").contains("detail=redis-unavailable"));
        settle().await;
        assert_eq!(origin.count(), 2, "one background refresh, kept in the L1");
        let refreshed = request(f.cache(0), &req, &origin).await;
        assert_eq!((refreshed.phase, body(&refreshed)), (CachePhase::Hit, b"v#2".to_vec()));
    });
}

#[test]
fn with_redis_down_one_origin_fetch_per_key_per_isolate() {
    local(async {
        let f = fleet(2, 1 << 20);
        f.store.failing.set(true);
        let origin = TestOrigin::new(Answer::ok(SHARED, "v").delayed(150));
        let req = get("https://example.com/cold");
        let answers =
            futures::future::join_all((0..20).map(|i| request(f.cache(i % 2), &req, &origin))).await;
        assert_eq!(origin.count(), 2, "one fetch per isolate, not per request");
        let misses = answers.iter().filter(|s| s.phase == CachePhase::Miss).count();
        let collapsed = answers.iter().filter(|s| s.phase == CachePhase::Collapsed).count();
        assert_eq!((misses, collapsed), (2, 18));
        assert!(answers.iter().all(|s| header(s, "cache-status").contains("detail=redis-unavailable")));
        assert!(answers.iter().all(|s| body(s).starts_with(b"v#")));
        // Kept in the L1: the next request costs no fetch.
        assert_eq!(request(f.cache(0), &req, &origin).await.phase, CachePhase::Hit);
        assert_eq!(origin.count(), 2);
    });
}

#[test]
fn with_redis_down_an_origin_error_is_answered_from_a_stale_if_error_copy() {
    local(async {
        let f = fleet(1, 1 << 20);
        let origin = TestOrigin::new(Answer::ok(SHARED, "v"));
        filled_then_redis_down(&f, &origin).await;
        f.clock.advance(13_000); // past ttl + swr, inside sie
        origin.set(Answer::ok("no-store", "down").status(503));
        let req = get("https://example.com/k");
        let served = request(f.cache(0), &req, &origin).await;
        assert_eq!((served.status, header(&served, "x-cache").as_str()), (200, "STALE"));
        assert_eq!(body(&served), b"v#1");
        // A request whose session could not be checked gets the shared copy too, never an error.
        let mut unconfirmed = get("https://example.com/k");
        unconfirmed.session_unconfirmed = true;
        let served = request(f.cache(0), &unconfirmed, &origin).await;
        assert_eq!((served.status, body(&served)), (200, b"v#1".to_vec()));
    });
}

#[test]
fn per_session_variants_never_enter_the_l1_nor_serve_without_redis() {
    local(async {
        let f = fleet(1, 1 << 20);
        let origin = TestOrigin::new(Answer::ok("max-age=60", "mine").header("vary", "Cookie"));
        let mut alice = get("https://example.com/me");
        alice.headers.insert("cookie", "user=alice".parse().expect("header"));
        request(f.cache(0), &alice, &origin).await;
        settle().await;
        assert_eq!(f.isolates[0].1.l1_usage().0, 0, "not kept in the L1");
        f.store.failing.set(true);
        let served = request(f.cache(0), &alice, &origin).await;
        assert_eq!(served.phase, CachePhase::Bypass(NoCacheReason::RedisUnavailable));
        assert_eq!(origin.count(), 2, "asked the origin");
    });
}

#[test]
fn a_failing_origin_is_asked_once_a_second_per_key_while_a_stale_if_error_copy_answers() {
    for redis_down in [false, true] {
        local(async {
            let f = fleet(1, 1 << 20);
            let origin = TestOrigin::new(Answer::ok(SHARED, "v"));
            filled_then_redis_down(&f, &origin).await;
            f.store.failing.set(redis_down);
            origin.set(Answer::ok("no-store", "down").status(503));
            let req = get("https://example.com/k");
            // Inside stale-while-revalidate (refreshes fail) and past it (fetches fail).
            for advance in [3_000, 10_000] {
                f.clock.advance(advance);
                let before = origin.count();
                for _ in 0..20 {
                    let served = request(f.cache(0), &req, &origin).await;
                    assert_eq!((served.status, body(&served)), (200, b"v#1".to_vec()), "down={redis_down}");
                    settle().await;
                }
                assert_eq!(origin.count() - before, 1, "one fetch, then the copy (down={redis_down})");
                f.clock.advance(1_000);
                request(f.cache(0), &req, &origin).await;
                settle().await;
                assert_eq!(origin.count() - before, 2, "asked again after the backoff (down={redis_down})");
            }
        });
    }
}

#[test]
fn requests_that_lose_redis_wait_for_their_isolates_lock_holder() {
    local(async {
        let f = fleet(1, 1 << 20);
        let origin = TestOrigin::new(Answer::ok(SHARED, "v").delayed(200));
        let req = get("https://example.com/mixed");
        let holder = request(f.cache(0), &req, &origin);
        let later = async {
            // The holder has the Redis lock and is fetching; then Redis goes.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            f.store.failing.set(true);
            futures::future::join_all((0..10).map(|_| request(f.cache(0), &req, &origin))).await
        };
        let (first, others) = futures::join!(holder, later);
        assert_eq!(first.phase, CachePhase::Miss);
        assert_eq!(origin.count(), 1, "one fetch in the isolate, Redis or not");
        assert!(others.iter().all(|s| s.phase == CachePhase::Collapsed && body(s) == b"v#1"));
    });
}
