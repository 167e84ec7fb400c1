//! Unit tests of the session flow's pure steps.
use super::*;

fn settings() -> SessionSettings {
    SessionSettings::new(&[3u8; 32]).unwrap()
}

#[test]
fn cookie_pieces_counts_like_the_splitter() {
    assert_eq!(cookie_pieces(b""), 0);
    assert_eq!(cookie_pieces(b" ; ;"), 0);
    assert_eq!(cookie_pieces(b"a=1;b=2"), 2);
    assert_eq!(cookie_pieces(b"a=1; ; b=2 ;c"), 3);
}

#[test]
fn absent_and_invalid_cookies_ignore_the_store() {
    let s = settings();
    let lookup = begin(&HeaderMap::new(), &s, &crate::Namespace::new("ns"));
    assert!(lookup.ops().is_empty());
    assert_eq!(lookup.resolve(Err(&StoreError::Timeout), 0), SessionState::None);
}

#[test]
fn odd_replies_are_unavailable_not_live() {
    let s = settings();
    let id = new_session_id().unwrap();
    let mut headers = HeaderMap::new();
    let cookie = format!("{}={}", s.cookie_name, super::super::cookie_value(&id, &s));
    headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
    let lookup = begin(&headers, &s, &crate::Namespace::new("ns"));
    assert_eq!(lookup.ops().len(), 2);
    let unavailable = SessionState::Unavailable { id: id.clone() };
    let cases: Vec<Vec<Reply>> = vec![
        vec![],
        vec![Reply::Nil],
        vec![Reply::Error("ERR".into()), Reply::Int(5)],
        vec![Reply::Bytes(b"{}".to_vec()), Reply::Error("ERR".into())],
        vec![Reply::Int(1), Reply::Int(5)],
    ];
    for replies in cases {
        assert_eq!(lookup.clone().resolve(Ok(&replies), 0), unavailable, "{replies:?}");
    }
    assert_eq!(lookup.clone().resolve(Ok(&[Reply::Nil, Reply::Int(-2)]), 0), SessionState::Unknown);
    assert!(matches!(
        lookup.resolve(Ok(&[Reply::Bytes(b"junk".to_vec()), Reply::Int(5)]), 0),
        SessionState::Corrupt { .. }
    ));
}

#[test]
fn a_carried_session_is_a_session_while_the_store_is_down_and_restorable_only_without_a_marker() {
    let s = settings();
    let ns = crate::Namespace::new("ns");
    let id = new_session_id().unwrap();
    let mut headers = HeaderMap::new();
    let cookie = format!("{}={}.c2VhbGVk", s.cookie_name, super::super::cookie_value(&id, &s));
    headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
    let mut lookup = begin(&headers, &s, &ns);
    assert_eq!(lookup.sealed(), Some((&id, "c2VhbGVk")));
    let record = SessionRecord::new(Map::new(), 1_000);
    lookup.carry(Some(CarriedSession { record: record.clone(), issued_ms: 1_000 }));
    assert!(lookup.carries());
    assert_eq!(lookup.ops().last(), Some(&Op::Get(ns.session_fallback_used(&id))));
    let carried = SessionState::Carried { id: id.clone(), record: record.clone() };
    assert_eq!(lookup.clone().resolve(Err(&StoreError::Timeout), 2_000), carried);
    assert_eq!(lookup.clone().resolve(Ok(&[Reply::Nil]), 2_000), carried, "an odd answer");
    let restorable = SessionState::Restorable { id: id.clone(), record };
    assert_eq!(lookup.clone().resolve(Ok(&[Reply::Nil, Reply::Int(-2), Reply::Nil]), 2_000), restorable);
    let used = [Reply::Nil, Reply::Int(-2), Reply::Bytes(b"w".to_vec())];
    assert_eq!(lookup.clone().resolve(Ok(&used), 2_000), SessionState::Unknown, "written back or revoked");
    // Past SESSION_FALLBACK_TTL the cookie is an id alone.
    let late = 1_000 + s.fallback_ttl_ms();
    assert_eq!(
        lookup.clone().resolve(Err(&StoreError::Timeout), late),
        SessionState::Unavailable { id: id.clone() }
    );
    assert_eq!(lookup.resolve(Ok(&[Reply::Nil, Reply::Int(-2), Reply::Nil]), late), SessionState::Unknown);
    // A sealed part that did not open is refused before any lookup.
    let mut refused = begin(&headers, &s, &ns);
    refused.carry(None);
    assert!(refused.ops().is_empty());
    assert_eq!(refused.resolve(Ok(&[]), 0), SessionState::Invalid(InvalidCookie::BadSeal));
}
