//! The session flow end to end against the in-memory store, with a clock the test moves: a
//! "browser" keeps the cookie the worker sets, each visit goes begin → one round trip →
//! resolve → origin request → apply → store ops, exactly as the worker will run it.

#[path = "../support/mod.rs"]
mod support;

mod outage;
mod world;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_core::session::{
    begin, cookie_value, new_session_id, prepare_origin_request, InvalidCookie, SessionOutcome,
    SessionSettings, SessionState, EDGE_SESSION, EDGE_SESSION_ID,
};
use edge_core::MemoryStore;
use edge_core::{Clock, ManualClock};
use edge_core::{Op, Store};
use futures::executor::block_on;
use http::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use world::*;

#[test]
fn no_cookie_is_no_session_and_no_round_trip() {
    let mut w = world();
    let visit = w.visit(&[("cookie", "theme=dark")], &[]);
    assert!(visit.lookup_ops.is_empty());
    assert_eq!(visit.state, SessionState::None);
    assert_eq!(visit.state.session_id(), None);
    assert_eq!(visit.state.origin_headers().len(), 1, "the status alone: anonymous");
    assert_eq!(visit.outcome, SessionOutcome::default());
    // The Cookie header is untouched when ours is not in it.
    assert_eq!(visit.origin_request.get(COOKIE).unwrap(), "theme=dark");
    assert!(w.store.is_empty());
}

#[test]
fn forged_cookie_costs_no_lookup_and_is_cleared() {
    let mut w = world();
    let other = SessionSettings::new(b"some-other-secret-some-other-secret").unwrap();
    let id = new_session_id().unwrap();
    // A real record exists for the id: the forged MAC must still never reach it.
    block_on(w.store.run(&[Op::Set {
        key: ns().session(&id),
        value: r#"{"c":1700000000000,"d":{"admin":true}}"#.into(),
        ttl_ms: Some(100_000),
        nx: false,
    }]))
    .unwrap();
    w.jar = Some(cookie_value(&id, &other));
    let visit = w.visit(&[], &[]);
    assert!(visit.lookup_ops.is_empty(), "{:?}", visit.lookup_ops);
    assert_eq!(visit.state, SessionState::Invalid(InvalidCookie::BadMac));
    assert!(visit.origin_request.get(EDGE_SESSION_ID).is_none());
    assert!(visit.origin_request.get(EDGE_SESSION).is_none());
    assert_eq!(visit.origin_request.get("edge-session-status").unwrap(), "invalid");
    assert_eq!(visit.outcome.set_cookies.len(), 1);
    assert!(is_clearing(&visit.outcome.set_cookies[0]));
    assert!(visit.outcome.store_ops.is_empty());
    assert!(visit.outcome.log.iter().any(|l| l.contains("bad-mac")));
    assert_eq!(w.jar, None);
}

#[test]
fn set_creates_a_session_that_the_next_request_sees() {
    let mut w = world();
    let first = log_in(&mut w, r#"{"user": "ada"}"#);
    assert_eq!(first.state, SessionState::None);
    assert!(first.outcome.must_await);
    assert_eq!(first.outcome.store_ops.len(), 1);
    let Op::Set { ttl_ms, nx, .. } = &first.outcome.store_ops[0] else {
        panic!("{:?}", first.outcome.store_ops)
    };
    assert_eq!((*ttl_ms, *nx), (Some(IDLE_S * SECOND), true), "a new id never overwrites a record");
    // The directive never reaches the client.
    assert!(first.response.get("edge-session-set").is_none());
    let set_cookie = first.response.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set_cookie.contains("Max-Age=100"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("Secure"));

    w.advance_s(1);
    let second = w.visit(&[], &[]);
    assert_eq!(second.lookup_ops.len(), 2);
    let (id, data, created) = live_data(&second.state);
    assert_eq!(data, json!({"user": "ada"}));
    assert_eq!(created, T0);
    assert_eq!(second.state.session_id(), Some(id.as_str()));
    assert!(w.jar.as_deref().unwrap().starts_with(&format!("{id}.")));
    // Fresh session, nothing to slide: a read-only request.
    assert_eq!(second.outcome, SessionOutcome::default());
}

#[test]
fn origin_sees_the_session_and_nothing_the_client_forged() {
    let mut w = world();
    log_in(&mut w, r#"{"user":"zoë","admin":false}"#);
    let ours = format!("{}={}", w.settings.cookie_name, w.jar.clone().unwrap());
    let request = headers(&[
        ("cookie", "a=1;b=2"),
        ("cookie", &format!("c=3; {ours}; d=4")),
        ("edge-session-id", "forged-id"),
        ("Edge-Session", "eyJhZG1pbiI6dHJ1ZX0"),
        ("edge-session-whatever", "x"),
        ("accept", "text/html"),
    ]);
    let visit = w.visit_with(request, &[]);
    let (id, _, _) = live_data(&visit.state);
    let origin = &visit.origin_request;
    assert_eq!(origin.get_all(EDGE_SESSION_ID).iter().count(), 1);
    assert_eq!(origin.get(EDGE_SESSION_ID).unwrap(), id.as_str());
    assert_eq!(origin.get_all(EDGE_SESSION).iter().count(), 1);
    let json = URL_SAFE_NO_PAD.decode(origin.get(EDGE_SESSION).unwrap().as_bytes()).unwrap();
    assert_eq!(json, r#"{"admin":false,"user":"zoë"}"#.as_bytes());
    assert!(origin.get("edge-session-whatever").is_none());
    assert_eq!(origin.get("accept").unwrap(), "text/html");
    // Our cookie is gone; the others are kept, in order.
    assert_eq!(origin.get_all(COOKIE).iter().count(), 1);
    assert_eq!(origin.get(COOKIE).unwrap(), "a=1; b=2; c=3; d=4");

    // Only our cookie: the Cookie header goes entirely.
    let visit = w.visit(&[], &[]);
    assert!(visit.origin_request.get(COOKIE).is_none());
}

#[test]
fn spoofed_headers_are_stripped_even_without_a_session() {
    let mut w = world();
    let mut request = headers(&[("edge-session-id", "forged"), ("edge-session", "e30")]);
    // Skip the early strip: `prepare_origin_request` must strip on its own.
    let state = begin(&request, &w.settings, &ns()).resolve(Ok(&[]), T0);
    prepare_origin_request(&mut request, &state, &w.settings);
    let names: Vec<&str> = request.keys().map(|name| name.as_str()).collect();
    assert_eq!(names, ["edge-session-status"], "only the worker's own: {request:?}");
    assert_eq!(request["edge-session-status"], "anonymous");
    // And through the whole flow, with a cookie-less request.
    let visit = w.visit(&[("edge-session-id", "forged")], &[]);
    assert!(visit.origin_request.get(EDGE_SESSION_ID).is_none());
}

#[test]
fn set_on_a_live_session_replaces_data_and_keeps_created() {
    let mut w = world();
    log_in(&mut w, r#"{"cart":1}"#);
    w.advance_s(30);
    let visit = w.visit(&[], &[("edge-session-set", r#"{"cart":2}"#)]);
    let (id, _, _) = live_data(&visit.state);
    assert!(visit.outcome.must_await);
    assert_eq!(visit.outcome.store_ops.len(), 1, "{:?}", visit.outcome.store_ops);
    w.advance_s(1);
    let after = w.visit(&[], &[]);
    let (same_id, data, created) = live_data(&after.state);
    assert_eq!(same_id, id);
    assert_eq!(data, json!({"cart": 2}));
    assert_eq!(created, T0);
}

#[test]
fn rotate_moves_the_data_to_a_new_id() {
    let mut w = world();
    log_in(&mut w, r#"{"user":"ada"}"#);
    w.advance_s(5);
    let old_cookie = w.jar.clone().unwrap();
    let before = w.visit(&[], &[("edge-session-rotate", "1")]);
    let (old_id, _, _) = live_data(&before.state);
    assert!(before.outcome.must_await);
    let new_cookie = w.jar.clone().unwrap();
    assert_ne!(new_cookie, old_cookie);
    assert!(!new_cookie.starts_with(&old_id));

    w.advance_s(1);
    let after = w.visit(&[], &[]);
    let (new_id, data, created) = live_data(&after.state);
    assert_ne!(new_id, old_id);
    assert_eq!(data, json!({"user": "ada"}));
    assert_eq!(created, T0);

    // The old cookie names nothing any more.
    w.jar = Some(old_cookie);
    let stale = w.visit(&[], &[]);
    assert_eq!(stale.state, SessionState::Unknown);
    assert!(is_clearing(&stale.outcome.set_cookies[0]));
    assert_eq!(w.store.len(), 1);
}

#[test]
fn set_then_rotate_is_one_new_id_with_the_new_data() {
    let mut w = world();
    log_in(&mut w, r#"{"user":null}"#);
    w.advance_s(5);
    let login = w.visit(&[], &[("edge-session-rotate", "1"), ("edge-session-set", r#"{"user":"ada"}"#)]);
    let (old_id, _, _) = live_data(&login.state);
    assert_eq!(login.outcome.set_cookies.len(), 1);
    let kinds: Vec<&str> = login.outcome.store_ops.iter().map(Op::name).collect();
    assert_eq!(kinds, ["EVAL(replace-if-present)"], "moved only while the old record exists");
    let after = w.visit(&[], &[]);
    let (new_id, data, created) = live_data(&after.state);
    assert_ne!(new_id, old_id);
    assert_eq!(data, json!({"user": "ada"}));
    assert_eq!(created, T0);
    assert_eq!(w.store.len(), 1);

    // Set + Rotate with no session at all: one session is created, one cookie.
    let mut fresh = world();
    let visit = fresh.visit(&[], &[("edge-session-set", "{}"), ("edge-session-rotate", "1")]);
    assert_eq!(visit.outcome.set_cookies.len(), 1);
    assert_eq!(visit.outcome.store_ops.len(), 1);
    assert!(matches!(fresh.visit(&[], &[]).state, SessionState::Live { .. }));
}

#[test]
fn destroy_deletes_and_clears() {
    let mut w = world();
    log_in(&mut w, r#"{"user":"ada"}"#);
    let cookie = w.jar.clone().unwrap();
    let visit = w.visit(&[], &[("edge-session-destroy", "1"), ("edge-session-set", "{}")]);
    assert!(visit.outcome.must_await);
    assert_eq!(visit.outcome.set_cookies.len(), 1);
    assert!(is_clearing(&visit.outcome.set_cookies[0]));
    assert!(visit.response.get("edge-session-destroy").is_none());
    assert_eq!(w.jar, None);
    assert!(w.store.is_empty());
    // A replayed cookie names nothing.
    w.jar = Some(cookie);
    assert_eq!(w.visit(&[], &[]).state, SessionState::Unknown);
    // Destroy without any cookie: nothing to delete, nothing to clear.
    let mut fresh = world();
    let visit = fresh.visit(&[], &[("edge-session-destroy", "1")]);
    assert_eq!(visit.outcome, SessionOutcome::default());
}

#[test]
fn idle_sessions_expire() {
    let mut w = world();
    log_in(&mut w, "{}");
    w.advance_s(IDLE_S - 1);
    assert!(matches!(w.visit(&[], &[]).state, SessionState::Live { .. }));
    // That visit slid the TTL (99 s used > 10 s slack): another idle period is allowed.
    w.advance_s(IDLE_S - 1);
    assert!(matches!(w.visit(&[], &[]).state, SessionState::Live { .. }));
    w.advance_s(IDLE_S);
    let visit = w.visit(&[], &[]);
    assert_eq!(visit.state, SessionState::Unknown);
    assert!(visit.origin_request.get(EDGE_SESSION_ID).is_none());
    assert!(is_clearing(&visit.outcome.set_cookies[0]));
    assert_eq!(w.jar, None);
}

#[test]
fn sliding_stops_at_the_absolute_lifetime() {
    let mut w = world();
    log_in(&mut w, r#"{"user":"ada"}"#);
    let mut slides = 0;
    let mut last_live_s = 0;
    // Visit every 50 s: each visit slides (50 s used > 10 s slack) until the deadline caps it.
    for step in 1..=40 {
        w.advance_s(50);
        let visit = w.visit(&[], &[]);
        match &visit.state {
            SessionState::Live { .. } => {
                last_live_s = step * 50;
                if !visit.outcome.store_ops.is_empty() {
                    slides += 1;
                    let Op::PExpire { ttl_ms, .. } = visit.outcome.store_ops[0] else {
                        panic!("{:?}", visit.outcome.store_ops)
                    };
                    // Never past the absolute deadline.
                    assert!(T0 + ABSOLUTE_S * SECOND >= w.clock.now_ms() + ttl_ms);
                    assert!(!visit.outcome.must_await);
                    assert_eq!(visit.outcome.set_cookies.len(), 1);
                    assert!(!is_clearing(&visit.outcome.set_cookies[0]));
                }
            }
            SessionState::Unknown | SessionState::Expired { .. } => break,
            other => panic!("step {step}: {other:?}"),
        }
    }
    assert!(slides >= 15, "slides: {slides}");
    assert!(last_live_s < ABSOLUTE_S, "live at {last_live_s} s");
    assert!(last_live_s >= ABSOLUTE_S - 50, "died early at {last_live_s} s");
    assert_eq!(w.jar, None, "the cookie is cleared when the session dies");
}

#[test]
fn an_expired_record_still_in_redis_is_deleted() {
    let mut w = world();
    let id = new_session_id().unwrap();
    let key = ns().session(&id);
    // Created long ago, with a TTL that outlives the absolute deadline (another writer's bug).
    let created = T0 - (ABSOLUTE_S + 1) * SECOND;
    block_on(w.store.run(&[Op::Set {
        key: key.clone(),
        value: format!(r#"{{"c":{created},"d":{{}}}}"#),
        ttl_ms: None,
        nx: false,
    }]))
    .unwrap();
    w.jar = Some(cookie_value(&id, &w.settings));
    let visit = w.visit(&[], &[]);
    assert_eq!(visit.state, SessionState::Expired { id });
    assert!(visit.origin_request.get(EDGE_SESSION_ID).is_none());
    assert_eq!(visit.outcome.store_ops, [Op::Del(vec![key])]);
    assert!(is_clearing(&visit.outcome.set_cookies[0]));
    assert!(w.store.is_empty());
}

#[test]
fn slides_write_only_when_should_slide_says_so() {
    let mut w = world();
    log_in(&mut w, "{}");
    let key_ttl = |w: &World<MemoryStore<ManualClock>>, visit: &Visit| -> i64 {
        let SessionState::Live { id, .. } = &visit.state else { panic!("{:?}", visit.state) };
        let replies = block_on(w.store.run(&[Op::PTtl(ns().session(id))])).unwrap();
        replies[0].as_int().unwrap()
    };
    // 10 s used: gains exactly the slack, not more: no write, no cookie.
    w.advance_s(10);
    let visit = w.visit(&[], &[]);
    assert_eq!(visit.outcome, SessionOutcome::default());
    assert_eq!(key_ttl(&w, &visit), 90_000);
    // 11 s used: slide back to the full idle TTL, cookie re-sent, in the background.
    w.advance_s(1);
    let visit = w.visit(&[], &[]);
    assert!(matches!(visit.outcome.store_ops[..], [Op::PExpire { ttl_ms: 100_000, .. }]));
    assert!(!visit.outcome.must_await);
    assert_eq!(visit.outcome.set_cookies.len(), 1);
    assert!(visit.outcome.set_cookies[0].contains("Max-Age=100"));
    assert_eq!(key_ttl(&w, &visit), 100_000);
    // Right after: nothing again.
    w.advance_s(1);
    assert_eq!(w.visit(&[], &[]).outcome, SessionOutcome::default());
}

#[test]
fn oversized_or_malformed_set_changes_nothing() {
    let mut w = world();
    log_in(&mut w, r#"{"user":"ada"}"#);
    let cookie = w.jar.clone();
    let big = format!(r#"{{"blob":"{}"}}"#, "s3cr3t".repeat(20));
    for bad in [big.as_str(), "{not json", "[1,2]"] {
        let visit = w.visit(&[], &[("edge-session-set", bad), ("edge-session-rotate", "1")]);
        assert!(visit.outcome.store_ops.is_empty(), "{bad}");
        assert!(visit.outcome.set_cookies.is_empty(), "{bad}");
        assert_eq!(visit.outcome.log.len(), 1, "{bad}");
        assert!(visit.outcome.log[0].contains("refused"), "{:?}", visit.outcome.log);
        assert!(!visit.outcome.log[0].contains("s3cr3t"), "log quotes the data");
        assert!(visit.response.get("edge-session-set").is_none());
        assert!(visit.response.get("edge-session-rotate").is_none());
        assert_eq!(w.jar, cookie);
    }
    assert!(w.visit(&[], &[]).outcome.log.is_empty());
    let (_, data, _) = live_data(&w.visit(&[], &[]).state);
    assert_eq!(data, json!({"user": "ada"}));
    assert!(w.visit(&[], &[]).outcome.log.is_empty());
    assert!(w.visit(&[], &[]).outcome.log.is_empty());

    // Too large with no session: nothing is created.
    let mut fresh = world();
    let visit = fresh.visit(&[], &[("edge-session-set", &big)]);
    assert!(visit.outcome.log[0].contains("SESSION_MAX_BYTES"));
    assert!(visit.outcome.store_ops.is_empty() && visit.outcome.set_cookies.is_empty());
    assert!(fresh.store.is_empty());
}

#[test]
fn redis_down_means_no_session_and_no_writes() {
    let mut up = world();
    log_in(&mut up, r#"{"user":"ada"}"#);
    let id = live_data(&up.visit(&[], &[]).state).0;
    let mut w = World {
        meanwhile: Vec::new(),
        store: DownStore { calls: std::cell::Cell::new(0) },
        clock: up.clock.clone(),
        settings: up.settings.clone(),
        jar: up.jar.clone(),
    };
    let visit = w.visit(&[("edge-session-id", "forged")], &[]);
    assert!(matches!(visit.state, SessionState::Unavailable { .. }));
    assert_eq!(w.store.calls.get(), 1);
    // Issue 18 item 1: the origin can tell "store unavailable" from "anonymous": the status,
    // and the id the cookie's MAC proves (never the client's forged one); no data.
    assert_eq!(visit.origin_request.get(EDGE_SESSION_ID).unwrap().to_str().unwrap(), id.as_str());
    assert_eq!(visit.origin_request.get("edge-session-status").unwrap(), "unavailable");
    assert!(visit.origin_request.get(EDGE_SESSION).is_none());
    // The cookie is still removed from what the origin sees.
    assert!(visit.origin_request.get(COOKIE).is_none());
    assert_eq!(visit.outcome, SessionOutcome::default());
    assert_eq!(w.jar, up.jar, "the cookie survives the outage");

    // A Rotate alone needs the data, which nothing could read: dropped, with a log line.
    let visit = w.visit(&[], &[("edge-session-rotate", "1")]);
    assert!(visit.outcome.store_ops.is_empty() && visit.outcome.set_cookies.is_empty());
    assert_eq!(visit.outcome.log, ["session directive dropped: redis unavailable, nothing to rotate"]);
    assert!(visit.response.get("edge-session-rotate").is_none());
    // A Set (issue 18 item 2) is not dropped: the new data goes under a new id, to be sealed
    // into the cookie by the request's session step (fallback.rs); the old id is revoked then.
    let visit = w.visit(&[], &[("edge-session-set", r#"{"user":"mallory"}"#)]);
    assert!(visit.outcome.store_ops.is_empty() && visit.outcome.set_cookies.is_empty());
    let plan = visit.outcome.fallback.clone().expect("a fallback cookie to seal");
    assert_ne!(plan.id.as_str(), id);
    assert_eq!(plan.replaces.as_ref().map(|r| r.as_str()), Some(id.as_str()));
    assert_eq!(serde_json::Value::Object(plan.record.data.clone()), json!({"user": "mallory"}));
    assert!(visit.response.get("edge-session-set").is_none());
    // SESSION_FALLBACK_TTL=0 turns the fallback off: the Set is dropped, as before issue 18.
    w.settings = w.settings.clone().with_fallback_ttl(0);
    let visit = w.visit(&[], &[("edge-session-set", r#"{"user":"mallory"}"#)]);
    assert_eq!(visit.outcome.fallback, None);
    assert_eq!(visit.outcome.log, ["session directive dropped: redis unavailable (SESSION_FALLBACK_TTL=0)"]);
    w.settings = up.settings.clone();
    assert_eq!(w.jar, up.jar);
    // Redis is back: the session is intact.
    let (_, data, _) = live_data(&up.visit(&[], &[]).state);
    assert_eq!(data, json!({"user": "ada"}));

    // A logout still logs out: delete attempted, the id kept for revocation (issue 18 item 3),
    // cookie cleared.
    let visit = w.visit(&[], &[("edge-session-destroy", "1")]);
    assert!(matches!(visit.outcome.store_ops[..], [Op::Del(_)]));
    assert!(visit.outcome.must_await);
    assert_eq!(visit.outcome.revoke.iter().map(|r| r.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert!(is_clearing(&visit.outcome.set_cookies[0]));
    assert_eq!(w.jar, None);
}

#[test]
fn a_corrupt_record_is_no_session() {
    let mut w = world();
    let id = new_session_id().unwrap();
    let key = ns().session(&id);
    block_on(w.store.run(&[Op::Set {
        key: key.clone(),
        value: r#"{"c":1,"d":"password123"}"#.into(),
        ttl_ms: Some(50_000),
        nx: false,
    }]))
    .unwrap();
    w.jar = Some(cookie_value(&id, &w.settings));
    let visit = w.visit(&[], &[]);
    assert!(matches!(visit.state, SessionState::Corrupt { .. }));
    assert!(visit.origin_request.get(EDGE_SESSION).is_none());
    assert_eq!(visit.outcome.store_ops, [Op::Del(vec![key])]);
    assert!(!format!("{:?}", visit.outcome).contains("password123"));
    assert_eq!(w.jar, None);

    // A Set on top of it starts a fresh session and drops the corrupt record.
    let other = new_session_id().unwrap();
    block_on(w.store.run(&[Op::Set {
        key: ns().session(&other),
        value: "junk".into(),
        ttl_ms: Some(50_000),
        nx: false,
    }]))
    .unwrap();
    w.jar = Some(cookie_value(&other, &w.settings));
    let visit = w.visit(&[], &[("edge-session-set", r#"{"a":1}"#)]);
    let kinds: Vec<&str> = visit.outcome.store_ops.iter().map(Op::name).collect();
    assert_eq!(kinds, ["SET", "DEL"]);
    let (_, data, created) = live_data(&w.visit(&[], &[]).state);
    assert_eq!((data, created), (json!({"a": 1}), T0));
    assert_eq!(w.store.len(), 1);
}

#[test]
fn lookup_replies_after_ours_are_ignored() {
    let mut w = world();
    log_in(&mut w, r#"{"n":1}"#);
    let request = headers(&[("cookie", &format!("{}={}", w.settings.cookie_name, w.jar.clone().unwrap()))]);
    let lookup = begin(&request, &w.settings, &ns());
    let mut ops = lookup.ops();
    ops.push(Op::MGet(vec!["edge:other".into()]));
    let replies = block_on(w.store.run(&ops)).unwrap();
    let state = lookup.resolve(Ok(&replies), w.clock.now_ms());
    assert_eq!(live_data(&state).1, json!({"n": 1}));
}

/// Issue 9 item 10: a Set never resurrects a session another request destroyed meanwhile.
#[test]
fn a_set_racing_a_destroy_leaves_the_session_destroyed() {
    let mut w = world();
    log_in(&mut w, r#"{"user":"ada"}"#);
    // The session's key, as this request's lookup reads it.
    let key = match &w.visit(&[], &[]).lookup_ops[..] {
        [Op::Get(key), ..] => key.clone(),
        other => panic!("{other:?}"),
    };
    // Another tab logs out between this request's lookup and its write.
    w.meanwhile = vec![Op::Del(vec![key])];
    let racing = w.visit(&[], &[("edge-session-set", r#"{"user":"ada","cart":1}"#)]);
    assert!(racing.outcome.conditional);
    assert!(is_clearing(&racing.outcome.set_cookies[0]), "no cookie for a destroyed session");
    assert_eq!(w.store.len(), 0, "not resurrected");
    assert_eq!(w.visit(&[], &[]).state, SessionState::None);
}

/// Issue 9 item 10: data set on an empty (possibly planted) session moves to a new id.
#[test]
fn setting_data_on_an_empty_session_issues_a_new_id() {
    let mut w = world();
    log_in(&mut w, "{}");
    let planted = live_data(&w.visit(&[], &[]).state).0;
    let login = w.visit(&[], &[("edge-session-set", r#"{"user":"ada"}"#)]);
    assert_eq!(login.outcome.set_cookies.len(), 1);
    let (id, data, _) = live_data(&w.visit(&[], &[]).state);
    assert_ne!(id, planted, "fixation: the id known before login is dead");
    assert_eq!(data, json!({"user": "ada"}));
    assert_eq!(w.store.len(), 1);
    // A session that already held data keeps its id on a later Set.
    w.visit(&[], &[("edge-session-set", r#"{"user":"ada","theme":"dark"}"#)]);
    assert_eq!(live_data(&w.visit(&[], &[]).state).0, id);
}

/// Issue 18 item 1: every forwarded request says what the worker knows of the session.
#[test]
fn the_origin_is_told_the_session_status_on_every_request() {
    let mut w = world();
    let status = |visit: &Visit| {
        visit.origin_request.get("edge-session-status").map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(status(&w.visit(&[("edge-session-status", "active")], &[])).as_deref(), Some("anonymous"));
    log_in(&mut w, r#"{"user":"ada"}"#);
    assert_eq!(status(&w.visit(&[], &[])).as_deref(), Some("active"));
    let jar = w.jar.clone();
    w.jar = jar.map(|cookie| format!("{}x", &cookie[..cookie.len() - 1]));
    assert_eq!(status(&w.visit(&[], &[])).as_deref(), Some("invalid"));
}
