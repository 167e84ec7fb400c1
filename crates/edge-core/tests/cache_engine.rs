//! The cache state machine against the in-memory store, with a clock the test pushes forward.

mod support;

use std::rc::Rc;
use std::time::Duration;

use edge_core::Counter;
use edge_core::Found;
use edge_core::OriginError;
use edge_core::{CachePhase, NoCacheReason};
use edge_core::{Op, Reply, Store};
use futures::future::join_all;
use support::*;

#[test]
fn miss_then_hit_with_one_origin_fetch() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "hello"));
        let req = get("https://example.com/a?b=2&a=1");
        let first = request(&w.cache, &req, &origin).await;
        assert_eq!(first.phase, CachePhase::Miss);
        assert_eq!(header(&first, "x-cache"), "MISS");
        assert!(header(&first, "cache-status").contains("stored"), "{}", header(&first, "cache-status"));
        settle().await;
        let second = request(&w.cache, &get("https://example.com/a?a=1&b=2"), &origin).await;
        assert_eq!(second.phase, CachePhase::Hit);
        assert_eq!(header(&second, "x-cache"), "HIT");
        assert_eq!(body(&second), b"hello#1");
        assert_eq!(header(&second, "age"), "0");
        assert_eq!(origin.count(), 1);
    });
}

#[test]
fn a_hit_costs_one_round_trip_even_with_extra_ops() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "x"));
        let req = get("https://example.com/one");
        request(&w.cache, &req, &origin).await;
        settle().await;
        let before = w.store.round_trips.get();
        let lookup = w.cache.lookup(&req, &[Op::Get("session".into()), Op::PTtl("session".into())]).await;
        assert!(matches!(lookup.found, Found::Fresh(_)));
        assert_eq!(lookup.extra.as_ref().map(|r| r.len()).unwrap_or(0), 2);
        let served = w.cache.serve(&req, lookup, origin.clone()).await;
        assert_eq!(served.phase, CachePhase::Hit);
        assert_eq!(w.store.round_trips.get() - before, 1);
    });
}

#[test]
fn concurrent_cold_requests_fetch_once_and_all_get_the_full_body() {
    local(async {
        let w = world(settings(5_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "payload").delayed(200));
        let req = get("https://example.com/cold");
        let served = join_all((0..50).map(|_| request(&w.cache, &req, &origin))).await;
        assert_eq!(origin.count(), 1);
        assert!(served.iter().all(|s| body(s) == b"payload#1"));
        assert_eq!(served.iter().filter(|s| s.phase == CachePhase::Miss).count(), 1);
        assert_eq!(served.iter().filter(|s| s.phase == CachePhase::Collapsed).count(), 49);
        // Waiters in one isolate share one poll: far fewer round trips than waiters × polls.
        assert!(w.store.round_trips.get() < 50 + 50 + 40, "round trips: {}", w.store.round_trips.get());
    });
}

#[test]
fn stale_is_served_at_once_with_exactly_one_background_refresh() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=1, stale-while-revalidate=30", "v").delayed(100));
        let req = get("https://example.com/stale");
        request(&w.cache, &req, &origin).await;
        settle().await;
        w.clock.advance(2_000);
        let served = join_all((0..20).map(|_| request(&w.cache, &req, &origin))).await;
        assert!(served.iter().all(|s| s.phase == CachePhase::Stale), "all stale");
        assert!(served.iter().all(|s| body(s) == b"v#1"));
        assert_eq!(header(&served[0], "x-cache"), "STALE");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(origin.count(), 2, "exactly one refresh");
        let after = request(&w.cache, &req, &origin).await;
        assert_eq!(after.phase, CachePhase::Hit);
        assert_eq!(body(&after), b"v#2");
    });
}

#[test]
fn stale_if_error_serves_the_stale_copy_on_5xx_and_on_network_errors() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=1, stale-if-error=60", "good"));
        let req = get("https://example.com/sie");
        request(&w.cache, &req, &origin).await;
        settle().await;
        w.clock.advance(2_000);
        origin.set(Answer::ok("no-store", "broken").status(503));
        let served = request(&w.cache, &req, &origin).await;
        assert_eq!(served.phase, CachePhase::StaleIfError);
        assert_eq!(header(&served, "x-cache"), "STALE");
        assert!(
            header(&served, "cache-status").contains("fwd=stale; fwd-status=503;"),
            "{}",
            header(&served, "cache-status")
        );
        assert_eq!(body(&served), b"good#1");
        settle().await;
        let mut down = Answer::ok("", "");
        down.fail = Some(OriginError::Unreachable("refused".into()));
        origin.set(down);
        let served = request(&w.cache, &req, &origin).await;
        assert_eq!(served.phase, CachePhase::StaleIfError);
        assert_eq!(served.status, 200);
    });
}

#[test]
fn without_a_stale_copy_origin_errors_are_502_and_504() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let mut down = Answer::ok("", "");
        down.fail = Some(OriginError::Timeout);
        let origin = TestOrigin::new(down.clone());
        assert_eq!(request(&w.cache, &get("https://e.com/t"), &origin).await.status, 504);
        down.fail = Some(OriginError::Unreachable("x".into()));
        origin.set(down);
        assert_eq!(request(&w.cache, &get("https://e.com/u"), &origin).await.status, 502);
    });
}

#[test]
fn uncacheable_answers_set_hit_for_pass_and_release_waiters_at_once() {
    local(async {
        let w = world(settings(10_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("private", "mine").delayed(150));
        let req = get("https://example.com/private");
        let started = std::time::Instant::now();
        let served = join_all((0..10).map(|_| request(&w.cache, &req, &origin))).await;
        let elapsed = started.elapsed().as_millis();
        assert_eq!(
            served.iter().filter(|s| s.phase == CachePhase::MissUnstored(NoCacheReason::Private)).count(),
            1
        );
        assert_eq!(
            served.iter().filter(|s| s.phase == CachePhase::MissUnstored(NoCacheReason::HitForPass)).count(),
            9
        );
        assert_eq!(origin.count(), 10, "waiters go to the origin themselves");
        assert!(elapsed < 2_000, "waiters were released, not timed out ({elapsed} ms)");
        settle().await;
        let next = request(&w.cache, &req, &origin).await;
        assert_eq!(next.phase, CachePhase::MissUnstored(NoCacheReason::HitForPass));
    });
}

#[test]
fn never_stored_responses_are_never_served_from_cache() {
    local(async {
        let cases: Vec<(Answer, NoCacheReason)> = vec![
            (Answer::ok("no-store, max-age=60", "a"), NoCacheReason::NoStore),
            (Answer::ok("private, max-age=60", "a"), NoCacheReason::Private),
            (Answer::ok("no-cache, max-age=60", "a"), NoCacheReason::NoCache),
            (Answer::ok("max-age=60", "a").header("set-cookie", "a=b"), NoCacheReason::SetCookie),
            (Answer::ok("max-age=60", "a").header("vary", "*"), NoCacheReason::VaryStar),
            (Answer::ok("max-age=60", "a").header("edge-session-set", "{}"), NoCacheReason::SetCookie),
            (Answer::ok("", "a").status(500), NoCacheReason::Status),
            (Answer::ok("max-age=60", "a").status(206), NoCacheReason::Status),
            (Answer::ok("", "a"), NoCacheReason::NoFreshness),
        ];
        for (i, (answer, reason)) in cases.into_iter().enumerate() {
            let w = world(settings(2_000, "[]"));
            let origin = TestOrigin::new(answer);
            let req = get(&format!("https://example.com/never/{i}"));
            let first = request(&w.cache, &req, &origin).await;
            assert_eq!(first.phase, CachePhase::MissUnstored(reason), "case {i}");
            settle().await;
            let second = request(&w.cache, &req, &origin).await;
            assert!(!second.phase.served_from_cache(), "case {i}: {:?}", second.phase);
            assert_eq!(origin.count(), 2, "case {i}");
        }
    });
}

#[test]
fn oversized_bodies_pass_through_unstored() {
    local(async {
        let mut s = settings(2_000, "[]");
        s.max_bytes = 10;
        let w = world(s);
        let origin = TestOrigin::new(Answer::ok("max-age=60", "this body is longer than ten bytes"));
        let req = get("https://example.com/big");
        let first = request(&w.cache, &req, &origin).await;
        assert_eq!(first.phase, CachePhase::MissUnstored(NoCacheReason::TooLarge));
        assert_eq!(body(&first), b"this body is longer than ten bytes#1");
        settle().await;
        assert!(!request(&w.cache, &req, &origin).await.phase.served_from_cache());
    });
}

#[test]
fn a_waiter_takes_over_when_the_holder_vanishes() {
    local(async {
        let w = world(settings(5_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "late"));
        let req = get("https://example.com/crashed");
        let lookup = w.cache.lookup(&req, &[]).await;
        // A crashed holder: its lock expires after 300 ms and it never stores anything.
        w.store
            .one(Op::Set {
                key: lookup.keys.lock.clone(),
                value: "dead".into(),
                ttl_ms: Some(300),
                nx: false,
            })
            .await
            .expect("set");
        let started = std::time::Instant::now();
        let served = w.cache.serve(&req, lookup, origin.clone()).await;
        assert_eq!(served.phase, CachePhase::Miss);
        assert_eq!(origin.count(), 1);
        assert!(started.elapsed().as_millis() >= 250);
    });
}

#[test]
fn a_waiter_whose_wait_runs_out_fetches_without_storing() {
    local(async {
        let w = world(settings(200, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "slow"));
        let req = get("https://example.com/held");
        let lookup = w.cache.lookup(&req, &[]).await;
        w.store
            .one(Op::Set {
                key: lookup.keys.lock.clone(),
                value: "other".into(),
                ttl_ms: Some(60_000),
                nx: false,
            })
            .await
            .expect("set");
        let served = w.cache.serve(&req, lookup, origin.clone()).await;
        assert_eq!(served.phase, CachePhase::MissUnstored(NoCacheReason::LockTimeout));
        assert_eq!(body(&served), b"slow#1");
        settle().await;
        let again = w.cache.lookup(&req, &[]).await;
        assert!(matches!(again.found, Found::Absent), "nothing stored by the impatient waiter");
    });
}

#[test]
fn a_slow_holder_does_not_delete_the_next_holders_lock() {
    local(async {
        let w = world(settings(5_000, "[]"));
        let req = get("https://example.com/slow-holder");
        let lookup = w.cache.lookup(&req, &[]).await;
        let lock = lookup.keys.lock.clone();
        // Holder A's lock expired; B holds it now. A's release must not remove B's lock.
        w.store
            .one(Op::Set { key: lock.clone(), value: "B".into(), ttl_ms: Some(60_000), nx: false })
            .await
            .unwrap();
        let released =
            w.store.one(Op::CompareAndDelete { key: lock.clone(), token: "A".into() }).await.unwrap();
        assert_eq!(released, Reply::Int(0));
        assert_eq!(w.store.one(Op::Get(lock)).await.unwrap(), Reply::Bytes(b"B".to_vec()));
    });
}

#[test]
fn a_corrupt_entry_is_a_miss_and_is_replaced() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "fine"));
        let req = get("https://example.com/corrupt");
        let lookup = w.cache.lookup(&req, &[]).await;
        w.store
            .run(&[
                Op::Set {
                    key: lookup.keys.fresh.clone(),
                    value: "1".into(),
                    ttl_ms: Some(60_000),
                    nx: false,
                },
                Op::Set {
                    key: lookup.keys.stale.clone(),
                    value: "garbage!!".into(),
                    ttl_ms: Some(60_000),
                    nx: false,
                },
            ])
            .await
            .unwrap();
        let served = request(&w.cache, &req, &origin).await;
        assert_eq!(served.phase, CachePhase::Miss);
        settle().await;
        assert_eq!(request(&w.cache, &req, &origin).await.phase, CachePhase::Hit);
    });
}

#[test]
fn redis_down_fails_open_to_the_origin() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "ok"));
        w.store.failing.set(true);
        let served = request(&w.cache, &get("https://example.com/down"), &origin).await;
        // Degraded mode (docs §4.17): this isolate's one fetch of the key, said so.
        assert_eq!(served.phase, CachePhase::Miss);
        assert_eq!(header(&served, "x-cache"), "MISS");
        assert!(header(&served, "cache-status").contains("detail=redis-unavailable"));
        assert_eq!(served.status, 200);
        assert_eq!(body(&served), b"ok#1");
    });
}

#[test]
fn vary_keeps_variants_apart() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "lang").header("vary", "Accept-Language"));
        let mut en = get("https://example.com/vary");
        en.headers.insert("accept-language", "en".parse().unwrap());
        let mut fr = en.clone();
        fr.headers.insert("accept-language", "fr".parse().unwrap());
        assert_eq!(request(&w.cache, &en, &origin).await.phase, CachePhase::Miss);
        settle().await;
        let fr1 = request(&w.cache, &fr, &origin).await;
        assert_eq!(fr1.phase, CachePhase::Miss);
        assert_eq!(body(&fr1), b"lang#2");
        settle().await;
        assert_eq!(body(&request(&w.cache, &en, &origin).await), b"lang#1");
        assert_eq!(body(&request(&w.cache, &fr, &origin).await), b"lang#2");
        assert_eq!(origin.count(), 2);
    });
}

#[test]
fn vary_cookie_means_one_variant_per_session() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "user").header("vary", "Cookie"));
        let mut alice = get("https://example.com/me");
        alice.session_id = Some("alice".into());
        let mut bob = alice.clone();
        bob.session_id = Some("bob".into());
        let anon = get("https://example.com/me");
        for req in [&alice, &bob, &anon] {
            request(&w.cache, req, &origin).await;
            settle().await;
        }
        assert_eq!(body(&request(&w.cache, &alice, &origin).await), b"user#1");
        assert_eq!(body(&request(&w.cache, &bob, &origin).await), b"user#2");
        assert_eq!(body(&request(&w.cache, &anon, &origin).await), b"user#3");
    });
}

#[test]
fn head_is_answered_from_the_get_entry() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "body"));
        let req = get("https://example.com/head");
        request(&w.cache, &req, &origin).await;
        settle().await;
        let mut head = req.clone();
        head.method = http::Method::HEAD;
        let served = request(&w.cache, &head, &origin).await;
        assert_eq!(served.phase, CachePhase::Hit);
        assert!(body(&served).is_empty());
        assert_eq!(origin.count(), 1);
    });
}

#[test]
fn a_version_bump_empties_the_cache() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "v"));
        let req = get("https://example.com/ver");
        request(&w.cache, &req, &origin).await;
        settle().await;
        w.store.one(Op::IncrBy { key: "t:version".into(), by: 1 }).await.unwrap();
        let served = request(&w.cache, &req, &origin).await;
        assert_eq!(served.phase, CachePhase::Miss);
        assert_eq!(origin.count(), 2);
    });
}

#[test]
fn rules_supply_ttl_and_can_disable_caching() {
    local(async {
        let w = world(settings(2_000, r#"[{"path":"/nocache/*","cache":false},{"path":"/ruled","ttl":30}]"#));
        let origin = TestOrigin::new(Answer::ok("", "r"));
        let ruled = get("https://example.com/ruled");
        assert_eq!(request(&w.cache, &ruled, &origin).await.phase, CachePhase::Miss);
        settle().await;
        assert_eq!(request(&w.cache, &ruled, &origin).await.phase, CachePhase::Hit);
        let req = get("https://example.com/nocache/x");
        let decision = w.cache.decide(&req, &req.headers);
        assert_eq!(decision, edge_core::RequestDecision::Bypass(NoCacheReason::RuleNoCache));
    });
}

#[test]
fn counters_move_with_requests() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "c"));
        let req = get("https://example.com/stats");
        request(&w.cache, &req, &origin).await;
        settle().await;
        request(&w.cache, &req, &origin).await;
        assert_eq!(w.stats.pending(Counter::Miss), 1);
        assert_eq!(w.stats.pending(Counter::Hit), 1);
        assert_eq!(w.stats.pending(Counter::OriginFetch), 1);
        let _ = Rc::new(());
    });
}

#[test]
fn an_entry_stored_between_lookup_and_lock_is_served_not_refetched() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "once"));
        let req = get("https://example.com/race");
        let late = w.cache.lookup(&req, &[]).await;
        assert!(matches!(late.found, Found::Absent));
        // Another request fills the key and releases its lock before `late` takes it.
        request(&w.cache, &req, &origin).await;
        settle().await;
        let served = w.cache.serve(&req, late, origin.clone()).await;
        assert_eq!(served.phase, CachePhase::Hit);
        assert_eq!(body(&served), b"once#1");
        assert_eq!(origin.count(), 1, "no second origin fetch");
    });
}

/// Issue 9 item 8: a live holder renews its lock, so waiters never take over from it even when
/// the origin outlasts the lock's TTL.
#[test]
fn a_live_holder_keeps_its_lock_past_the_ttl() {
    local(async {
        let mut settings = settings(5_000, "[]");
        settings.lock_ttl_ms = 300;
        let w = world(settings);
        let origin = TestOrigin::new(Answer::ok("max-age=60", "slow").delayed(1_000));
        let req = get("https://example.com/slow");
        let served = join_all((0..5).map(|_| request(&w.cache, &req, &origin))).await;
        assert_eq!(origin.count(), 1, "no waiter took over from the live holder");
        assert!(served.iter().all(|s| body(s) == b"slow#1"));
    });
}

/// Issue 9 item 8: the fill belongs to the request's background work, so a holder whose client
/// disconnects (its request future dropped) still fetches, stores and releases.
#[test]
fn a_holder_whose_client_leaves_still_fills() {
    local(async {
        let w = world(settings(5_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "kept").delayed(300));
        let req = get("https://example.com/left");
        let gone = tokio::time::timeout(Duration::from_millis(50), request(&w.cache, &req, &origin)).await;
        assert!(gone.is_err(), "the client went away before the origin answered");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let next = request(&w.cache, &req, &origin).await;
        assert_eq!((next.phase, body(&next)), (CachePhase::Hit, b"kept#1".to_vec()));
        assert_eq!(origin.count(), 1);
    });
}

/// Issue 11.5: 100 waiters behind an 800 ms holder answer as soon as it has stored, and sleep
/// on no timer of their own: one poller per key and isolate ticks, the others are woken by
/// the isolate's poll board (before: every waiter checked the board every 15 ms, ~5,000 timer
/// wake-ups for this burst).
#[test]
fn waiters_answer_when_the_holder_stores_without_a_timer_each() {
    local(async {
        let w = world(settings(5_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "payload").delayed(800));
        let req = get("https://example.com/waiters");
        let fired_before = TIMERS_FIRED.with(|fired| fired.get());
        let started = std::time::Instant::now();
        let finished = join_all((0..100).map(|_| async {
            let served = request(&w.cache, &req, &origin).await;
            (served, started.elapsed())
        }))
        .await;
        let fired = TIMERS_FIRED.with(|fired| fired.get()) - fired_before;
        assert_eq!(origin.count(), 1);
        assert!(finished.iter().all(|(served, _)| body(served) == b"payload#1"));
        let holder = finished.iter().find(|(s, _)| s.phase == CachePhase::Miss).map(|(_, at)| *at);
        let last = finished.iter().map(|(_, at)| *at).max();
        let (Some(holder), Some(last)) = (holder, last) else { panic!("no holder among the answers") };
        assert!(
            last.saturating_sub(holder) < Duration::from_millis(50),
            "the last waiter answered {:?} after the holder",
            last.saturating_sub(holder)
        );
        assert!(fired < 100, "{fired} timers fired for 99 waiters over 800 ms: fewer than one per waiter");
    });
}
