//! The fill's unit tests (kept apart: fill.rs is long enough).

use super::*;
use crate::engine::lookup::Found;
use crate::engine::testing::{entry, Harness, ScriptedOrigin};
use crate::runtime::OriginError;

fn fill_once(h: &Harness, origin: &ScriptedOrigin) -> Served<Vec<u8>> {
    let req = h.get("https://example.com/page");
    let lookup = h.run(h.cache().lookup(&req, &[]));
    let deadline = h.rt.now_ms() + 5_000;
    let Fill::Served(served) = h.run(h.cache().fill(&req, &lookup, origin, None, deadline)) else {
        panic!("a lone request is served")
    };
    h.drain();
    served
}

#[test]
fn the_holder_stores_a_cacheable_answer_and_releases_the_lock() {
    let h = Harness::new();
    let origin =
        ScriptedOrigin::answering(vec![Ok((200, vec![("cache-control", "max-age=60")], b"v1".to_vec()))]);
    let served = fill_once(&h, &origin);
    assert_eq!((served.status, served.phase), (200, CachePhase::Miss));
    let req = h.get("https://example.com/page");
    let lookup = h.run(h.cache().lookup(&req, &[]));
    assert!(matches!(lookup.found, Found::Fresh(ref e) if e.body == b"v1"));
    let lock = h.run(h.store.run(&[Op::Get(lookup.keys.lock.clone())])).unwrap();
    assert_eq!(lock, [crate::store::Reply::Nil], "the lock is released with the store");
    assert_eq!(origin.fetches.get(), 1);
}

#[test]
fn an_uncacheable_answer_marks_hit_for_pass_once_whatever_the_reason() {
    for (headers, body, reason) in [
        (vec![("cache-control", "no-store")], b"x".to_vec(), NoCacheReason::NoStore),
        (vec![("cache-control", "max-age=60")], vec![b'x'; 2_000], NoCacheReason::TooLarge),
        (
            vec![("cache-control", "max-age=60"), ("edge-session-rotate", "1")],
            b"x".to_vec(),
            NoCacheReason::SetCookie,
        ),
    ] {
        let h = Harness::new();
        let origin = ScriptedOrigin::answering(vec![Ok((200, headers, body))]);
        let served = fill_once(&h, &origin);
        assert_eq!(served.phase, CachePhase::MissUnstored(reason));
        let lookup = h.run(h.cache().lookup(&h.get("https://example.com/page"), &[]));
        assert!(matches!(lookup.found, Found::HitForPass(None)), "{reason}");
    }
}

#[test]
fn a_response_to_a_session_is_shared_only_when_the_origin_says_so() {
    for (headers, stored) in [
        (vec![("cache-control", "max-age=60")], false),
        (vec![("cache-control", "public, max-age=60")], true),
        (vec![("cache-control", "s-maxage=60")], true),
        (vec![("cache-control", "max-age=60"), ("vary", "Cookie")], true),
    ] {
        let h = Harness::new();
        let origin = ScriptedOrigin::answering(vec![Ok((200, headers.clone(), b"mine".to_vec()))]);
        let mut req = h.get("https://example.com/page");
        req.session_id = Some("alice".into());
        let lookup = h.run(h.cache().lookup(&req, &[]));
        let Fill::Served(served) = h.run(h.cache().fill(&req, &lookup, &origin, None, u64::MAX)) else {
            panic!()
        };
        h.drain();
        let anonymous = h.run(h.cache().lookup(&h.get("https://example.com/page"), &[]));
        if stored {
            assert_eq!(served.phase, CachePhase::Miss, "{headers:?}");
        } else {
            assert_eq!(served.phase, CachePhase::MissUnstored(NoCacheReason::PerSession));
            assert!(matches!(anonymous.found, Found::Absent), "no entry and no hit-for-pass: {headers:?}");
        }
    }
}

#[test]
fn nothing_is_stored_for_a_session_the_store_could_not_confirm() {
    let h = Harness::new();
    let origin = ScriptedOrigin::answering(vec![Ok((
        200,
        vec![("cache-control", "public, max-age=60")],
        b"theirs".to_vec(),
    ))]);
    let mut req = h.get("https://example.com/page");
    req.session_unconfirmed = true;
    let lookup = h.run(h.cache().lookup(&req, &[]));
    let Fill::Served(served) = h.run(h.cache().fill(&req, &lookup, &origin, None, u64::MAX)) else {
        panic!()
    };
    h.drain();
    assert_eq!(served.phase, CachePhase::MissUnstored(NoCacheReason::PerSession));
    assert!(matches!(h.run(h.cache().lookup(&h.get("https://example.com/page"), &[])).found, Found::Absent));
}

#[test]
fn a_304_to_a_fill_marks_nothing() {
    let h = Harness::new();
    let origin = ScriptedOrigin::answering(vec![Ok((304, vec![("etag", "\"v1\"")], Vec::new()))]);
    let served = fill_once(&h, &origin);
    assert_eq!((served.status, served.phase), (304, CachePhase::MissUnstored(NoCacheReason::Status)));
    let lookup = h.run(h.cache().lookup(&h.get("https://example.com/page"), &[]));
    assert!(matches!(lookup.found, Found::Absent), "no hit-for-pass");
}

#[test]
fn a_5xx_with_a_copy_inside_stale_if_error_serves_the_copy_and_marks_nothing() {
    let h = Harness::new();
    let req = h.get("https://example.com/page");
    let lookup = h.run(h.cache().lookup(&req, &[]));
    let mut old = entry(200, b"old", h.rt.now_ms() - 61_000);
    old.freshness.sie = 300;
    let old = Rc::new(old);
    let origin = ScriptedOrigin::answering(vec![Ok((503, vec![], b"down".to_vec()))]);
    let Ok(LockAttempt::Taken(token)) = h.run(h.cache().try_lock(&lookup, None)) else { panic!() };
    let served = h.run(h.cache().fetch_as_holder(&req, &lookup, &origin, &token, Some(old), false));
    h.drain();
    assert_eq!(served.phase, CachePhase::StaleIfError);
    assert!(matches!(h.run(h.cache().lookup(&req, &[])).found, Found::Absent));
    let failed = ScriptedOrigin::answering(vec![Err(OriginError::Timeout)]);
    let Ok(LockAttempt::Taken(token)) = h.run(h.cache().try_lock(&lookup, None)) else { panic!("released") };
    let served = h.run(h.cache().fetch_as_holder(&req, &lookup, &failed, &token, None, false));
    assert_eq!(served.status, 504);
}
