//! Purges against entries stored by the state machine, in the in-memory store.

mod support;

use edge_core::CachePhase;
use edge_core::Found;
use edge_core::{purge, PurgeRequest, PurgeTarget};
use edge_core::{Op, Store};
use support::*;

fn hard(target: PurgeTarget) -> PurgeRequest {
    PurgeRequest { target, soft: false }
}

async fn fill(w: &World, origin: &TestOrigin, urls: &[&str]) {
    for url in urls {
        request(&w.cache, &get(url), origin).await;
    }
    settle().await;
}

async fn phase(w: &World, origin: &TestOrigin, url: &str) -> CachePhase {
    let served = request(&w.cache, &get(url), origin).await;
    settle().await;
    served.phase
}

async fn is_cached(w: &World, url: &str) -> bool {
    matches!(w.cache.lookup(&get(url), &[]).await.found, Found::Fresh(_))
}

#[test]
fn purge_by_tag_removes_exactly_the_tagged_entries() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let tagged = TestOrigin::new(Answer::ok("max-age=60", "t").header("cache-tag", "product-1, list"));
        let other = TestOrigin::new(Answer::ok("max-age=60", "o").header("surrogate-key", "unrelated"));
        fill(&w, &tagged, &["https://a.example/p/1", "https://b.example/list"]).await;
        fill(&w, &other, &["https://a.example/other"]).await;
        let report = purge(
            &w.store,
            &edge_core::Namespace::new("t"),
            &hard(PurgeTarget::Tags(vec!["list".into()])),
            0,
        )
        .await
        .unwrap();
        assert_eq!(report.entries, 2);
        assert!(!is_cached(&w, "https://a.example/p/1").await);
        assert!(!is_cached(&w, "https://b.example/list").await);
        assert!(is_cached(&w, "https://a.example/other").await);
        // The tag set went with them: purging again finds nothing.
        let again = purge(
            &w.store,
            &edge_core::Namespace::new("t"),
            &hard(PurgeTarget::Tags(vec!["list".into()])),
            0,
        )
        .await
        .unwrap();
        assert_eq!(again.entries, 0);
    });
}

#[test]
fn purge_by_url_takes_every_vary_variant() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "v").header("vary", "Accept-Language"));
        let mut en = get("https://a.example/page?x=1");
        en.headers.insert("accept-language", "en".parse().unwrap());
        let mut fr = en.clone();
        fr.headers.insert("accept-language", "fr".parse().unwrap());
        request(&w.cache, &en, &origin).await;
        settle().await;
        request(&w.cache, &fr, &origin).await;
        settle().await;
        let report = purge(
            &w.store,
            &edge_core::Namespace::new("t"),
            &hard(PurgeTarget::Urls(vec!["https://a.example/page?x=1".into()])),
            0,
        )
        .await
        .unwrap();
        assert_eq!(report.entries, 2);
        assert_eq!(request(&w.cache, &en, &origin).await.phase, CachePhase::Miss);
    });
}

#[test]
fn purge_by_prefix_respects_the_prefix_on_every_host() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "p"));
        let urls = [
            "https://a.example/api/users/1",
            "https://b.example/api/users/2",
            "https://a.example/api/usage",
            "https://a.example/api/orders/1",
            "https://a.example/static/app.js",
        ];
        fill(&w, &origin, &urls).await;
        let report = purge(
            &w.store,
            &edge_core::Namespace::new("t"),
            &hard(PurgeTarget::Prefix("/api/user".into())),
            0,
        )
        .await
        .unwrap();
        assert_eq!(report.entries, 2, "/api/users/* on both hosts, not /api/usage");
        assert!(!is_cached(&w, urls[0]).await);
        assert!(!is_cached(&w, urls[1]).await);
        assert!(is_cached(&w, urls[2]).await);
        let report =
            purge(&w.store, &edge_core::Namespace::new("t"), &hard(PurgeTarget::Prefix("/api/".into())), 0)
                .await
                .unwrap();
        assert_eq!(report.entries, 2);
        assert!(is_cached(&w, urls[4]).await);
    });
}

#[test]
fn soft_purge_serves_stale_and_refreshes_once() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(
            Answer::ok("max-age=600, stale-while-revalidate=60", "s").header("cache-tag", "x"),
        );
        fill(&w, &origin, &["https://a.example/soft"]).await;
        let soft = PurgeRequest { target: PurgeTarget::Tags(vec!["x".into()]), soft: true };
        assert_eq!(purge(&w.store, &edge_core::Namespace::new("t"), &soft, 0).await.unwrap().entries, 1);
        let req = get("https://a.example/soft");
        let served = futures::future::join_all((0..10).map(|_| request(&w.cache, &req, &origin))).await;
        assert!(served.iter().all(|s| s.phase == CachePhase::Stale));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(origin.count(), 2, "one refresh");
        assert_eq!(phase(&w, &origin, "https://a.example/soft").await, CachePhase::Hit);
    });
}

#[test]
fn soft_purge_without_swr_refetches_behind_the_lock() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=600", "n").header("cache-tag", "y").delayed(100));
        fill(&w, &origin, &["https://a.example/noswr"]).await;
        let soft = PurgeRequest { target: PurgeTarget::Tags(vec!["y".into()]), soft: true };
        purge(&w.store, &edge_core::Namespace::new("t"), &soft, 0).await.unwrap();
        let req = get("https://a.example/noswr");
        let served = futures::future::join_all((0..10).map(|_| request(&w.cache, &req, &origin))).await;
        assert_eq!(origin.count(), 2, "one fetch for ten requests");
        assert_eq!(served.iter().filter(|s| s.phase == CachePhase::Miss).count(), 1);
    });
}

#[test]
fn purge_everything_hard_and_soft() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=600, stale-while-revalidate=60", "e"));
        fill(&w, &origin, &["https://a.example/1", "https://a.example/2"]).await;
        let soft = PurgeRequest { target: PurgeTarget::Everything, soft: true };
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let now = w.clock.now_ms_for_tests();
        purge(&w.store, &edge_core::Namespace::new("t"), &soft, now).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        assert_eq!(phase(&w, &origin, "https://a.example/1").await, CachePhase::Stale);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(origin.count(), 3, "two fills and one refresh");
        assert_eq!(phase(&w, &origin, "https://a.example/1").await, CachePhase::Hit);
        let report = purge(&w.store, &edge_core::Namespace::new("t"), &hard(PurgeTarget::Everything), 0)
            .await
            .unwrap();
        assert_eq!(report.version, Some(1));
        assert_eq!(phase(&w, &origin, "https://a.example/2").await, CachePhase::Miss);
    });
}

#[test]
fn a_tag_with_ten_thousand_entries_purges_in_batches() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=600", "b").header("cache-tag", "big"));
        for i in 0..10_000 {
            request(&w.cache, &get(&format!("https://a.example/item/{i}")), &origin).await;
        }
        // Wait until every background store has run.
        let mut last = 0;
        while w.store.round_trips.get() != last {
            last = w.store.round_trips.get();
            settle().await;
        }
        let before = w.store.round_trips.get();
        let report =
            purge(&w.store, &edge_core::Namespace::new("t"), &hard(PurgeTarget::Tags(vec!["big".into()])), 0)
                .await
                .unwrap();
        assert_eq!(report.entries, 10_000);
        // 10 reads of 1,000 members (SSCAN) + 10 delete batches + 1 set removal: O(entries),
        // never the whole set in memory at once, no keyspace scan.
        assert_eq!(w.store.round_trips.get() - before, 21);
        let reads = w.store.log.borrow().iter().filter(|ops| matches!(ops[..], [Op::SScan { .. }])).count();
        assert_eq!(reads, 10);
        assert!(!is_cached(&w, "https://a.example/item/9999").await);
    });
}

/// Issue 9 item 9: a deep or long path costs a bounded number of index writes, and prefix
/// purges below the indexed depth and past the kept path still find their entries.
#[test]
fn deep_and_long_paths_are_indexed_within_bounds_and_still_purged() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let origin = TestOrigin::new(Answer::ok("max-age=60", "deep"));
        let long = format!("https://a.example/a/b/c/d/e/f/{}", "x".repeat(2_000));
        let urls = ["https://a.example/a/b/c/d/e/f/g", "https://a.example/a/b/c/d/e/other", long.as_str()];
        w.store.log.borrow_mut().clear();
        fill(&w, &origin, &urls).await;
        let store_pipelines: Vec<Vec<Op>> = w
            .store
            .log
            .borrow()
            .iter()
            .filter(|ops| ops.iter().any(|op| op.name() == "SADD"))
            .cloned()
            .collect();
        assert_eq!(store_pipelines.len(), 3);
        for ops in &store_pipelines {
            let prefix_adds =
                ops.iter().filter(|op| matches!(op, Op::SAdd { key, .. } if key.contains(":p:"))).count();
            assert_eq!(prefix_adds, 4, "prefix sets for the first four boundaries only");
            let bytes: usize = ops.iter().map(|op| format!("{op:?}").len()).sum();
            assert!(bytes < 8_000, "a 2 KB path writes {bytes} bytes of index");
        }
        let deep = purge(
            &w.store,
            &edge_core::Namespace::new("t"),
            &hard(PurgeTarget::Prefix("/a/b/c/d/e/f/".into())),
            0,
        )
        .await
        .unwrap();
        assert_eq!(deep.entries, 2, "below the indexed depth, filtered by path (and the cut long path)");
        assert!(!is_cached(&w, urls[0]).await && !is_cached(&w, urls[2]).await);
        assert!(is_cached(&w, urls[1]).await);
    });
}

/// Issue 9 item 9: dead members (entries that expired on their own) are pruned from an index
/// set that never expires, live ones kept.
#[test]
fn pruning_removes_only_dead_members() {
    local(async {
        let w = world(settings(2_000, "[]"));
        let ns = edge_core::Namespace::new("t");
        let set = ns.prefix_set("/");
        let live = ns.variant(0, "live").stale;
        let members: Vec<String> =
            (0..5).map(|i| format!("{} /gone/{i}", ns.variant(0, &format!("gone{i}")).stale)).collect();
        let mut all = members.clone();
        all.push(format!("{live} /live"));
        w.store
            .run(&[
                Op::SAdd { key: set.clone(), members: all },
                Op::Set { key: live.clone(), value: "entry".into(), ttl_ms: None, nx: false },
            ])
            .await
            .unwrap();
        let removed = edge_core::prune_index_sample(&w.store, &set).await.unwrap();
        assert_eq!(removed, 5);
        let left = w.store.run(&[Op::SMembers(set)]).await.unwrap();
        assert_eq!(
            left,
            vec![edge_core::Reply::Array(vec![edge_core::Reply::Bytes(
                format!("{live} /live").into_bytes()
            )])]
        );
    });
}
