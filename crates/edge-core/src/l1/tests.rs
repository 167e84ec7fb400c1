use std::rc::Rc;

use super::*;
use crate::engine::testing::entry;

const NOW: u64 = 1_700_000_000_000;

fn put(body: &[u8], tags: &[&str], path: &str, url: &str) -> L1Put {
    let mut e = entry(200, body, NOW);
    e.tags = tags.iter().map(|t| t.to_string()).collect();
    let uri: http::Uri = url.parse().unwrap();
    L1Put {
        entry: Rc::new(e),
        fresh_marker: true,
        fill_ms: Some(40),
        url_id: crate::key::url_id(&uri),
        path: path.to_string(),
    }
}

#[test]
fn a_confirmed_fresh_item_is_served_for_the_l1_lifetime_only() {
    let l1 = L1::new(1 << 20, 1_000);
    l1.put("k", put(b"v", &[], "/a", "https://x.example/a"), NOW);
    let hit = l1.fresh("k", NOW + 999).expect("within the L1 lifetime");
    assert_eq!((hit.entry.body.as_slice(), hit.fill_ms), (&b"v"[..], Some(40)));
    assert!(l1.fresh("k", NOW + 1_000).is_none(), "Redis must be asked again");
    // Still kept for degraded mode while inside its windows (60 s ttl).
    assert!(l1.any("k", NOW + 30_000).is_some());
    assert!(l1.any("k", NOW + 60_000).is_none(), "past ttl and every window: dropped");
    assert_eq!(l1.usage().0, 0);
}

#[test]
fn a_stale_copy_or_an_expired_entry_is_never_a_fresh_hit() {
    let l1 = L1::new(1 << 20, 10_000);
    let mut stale_only = put(b"v", &[], "/a", "https://x.example/a");
    stale_only.fresh_marker = false;
    l1.put("soft", stale_only, NOW);
    assert!(l1.fresh("soft", NOW + 1).is_none());
    l1.put("k", put(b"v", &[], "/a", "https://x.example/a"), NOW - 59_500);
    assert!(l1.fresh("k", NOW + 600).is_none(), "its own ttl ran out");
}

#[test]
fn zero_bytes_turns_it_off() {
    let l1 = L1::new(0, 1_000);
    l1.put("k", put(b"v", &[], "/a", "https://x.example/a"), NOW);
    assert!(l1.fresh("k", NOW).is_none() && l1.any("k", NOW).is_none());
    assert_eq!(l1.usage(), (0, 0));
}

#[test]
fn the_least_recently_used_items_go_first_and_bytes_stay_under_the_cap() {
    let body = vec![b'x'; 1_500];
    let l1 = L1::new(16 * 1_024, 60_000);
    for i in 0..12 {
        l1.put(&format!("k{i}"), put(&body, &[], "/a", "https://x.example/a"), NOW);
    }
    let (count, bytes) = l1.usage();
    assert!(bytes <= 16 * 1_024, "{bytes}");
    assert!((2..12).contains(&count), "some were evicted: {count}");
    // The survivors are the newest ones, in a row.
    let survivors: Vec<usize> = (0..12).filter(|i| l1.fresh(&format!("k{i}"), NOW).is_some()).collect();
    assert_eq!(survivors, (12 - count..12).collect::<Vec<_>>());
    // Use the oldest survivor again, then add one more: the one after it goes instead.
    let oldest = survivors[0];
    let second = survivors[1];
    l1.fresh(&format!("k{oldest}"), NOW);
    l1.put("new", put(&body, &[], "/a", "https://x.example/a"), NOW);
    assert!(l1.any(&format!("k{oldest}"), NOW).is_some(), "recently used: kept");
    assert!(l1.any(&format!("k{second}"), NOW).is_none(), "least recently used: evicted");
}

#[test]
fn an_item_larger_than_an_eighth_of_the_cap_is_not_kept() {
    let l1 = L1::new(8 * 1_024, 60_000);
    l1.put("big", put(&vec![b'x'; 1_100], &[], "/a", "https://x.example/a"), NOW);
    assert_eq!(l1.usage(), (0, 0));
    assert!(l1.any("big", NOW).is_none());
}

#[test]
fn variants_keyed_on_the_session_or_cookies_are_never_kept() {
    let l1 = L1::new(1 << 20, 60_000);
    for name in ["cookie", "edge-session-id"] {
        let mut p = put(b"mine", &[], "/me", "https://x.example/me");
        Rc::make_mut(&mut p.entry).vary = vec![name.to_string()];
        l1.put("k", p, NOW);
        assert!(l1.any("k", NOW).is_none(), "{name}");
    }
}

#[test]
fn purges_drop_what_they_name() {
    let l1 = L1::new(1 << 20, 60_000);
    l1.put("a", put(b"a", &["red"], "/shop/a", "https://x.example/shop/a?x=1"), NOW);
    l1.put("b", put(b"b", &["blue"], "/shop/b", "https://x.example/shop/b"), NOW);
    l1.put("c", put(b"c", &[], "/blog/c", "https://x.example/blog/c"), NOW);
    l1.purge(&PurgeTarget::Tags(vec!["red".into()]), &[]);
    assert!(l1.any("a", NOW).is_none() && l1.any("b", NOW).is_some());
    let c_ids = vec![crate::key::url_id(&"https://x.example/blog/c".parse().unwrap())];
    l1.purge(&PurgeTarget::Urls(vec!["https://x.example/blog/c".into()]), &c_ids);
    assert!(l1.any("c", NOW).is_none() && l1.any("b", NOW).is_some());
    l1.purge(&PurgeTarget::Prefix("/shop/".into()), &[]);
    assert!(l1.any("b", NOW).is_none());
    l1.put("c", put(b"c", &[], "/blog/c", "https://x.example/blog/c"), NOW);
    l1.purge(&PurgeTarget::Everything, &[]);
    assert_eq!(l1.usage(), (0, 0));
}
