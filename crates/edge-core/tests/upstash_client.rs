//! The Upstash REST client against a real redis-server behind the project's own
//! redis-rest-gateway, and each failure it must turn into a typed error.
//!
//! Needs `target/release/redis-rest-gateway` (or `GATEWAY_BIN`): `scripts/test.sh` builds it
//! first. Timeouts, 5xx answers and malformed JSON cannot be produced on demand by the real
//! gateway, so those cases use a small fault server on loopback that answers exactly that.

use std::time::Duration;

use edge_core::CircuitBreaker;
use edge_core::UpstashStore;
use edge_core::{Op, Reply, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/backend.rs"]
mod backend_support;

use backend_support::{free_port, start as backend, TOKEN};

/// A loopback HTTP server that answers every request with `response` (or never answers).
async fn fault_server(response: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                match response {
                    Some(text) => {
                        let _ = socket.write_all(text.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    url
}

fn client(url: &str, token: &str, timeout_ms: u64) -> UpstashStore {
    UpstashStore::new(url, token, Duration::from_millis(timeout_ms))
}

fn set(key: &str, value: &str, ttl_ms: Option<u64>, nx: bool) -> Op {
    Op::Set { key: key.into(), value: value.into(), ttl_ms, nx }
}

#[tokio::test]
async fn every_op_round_trips_through_the_gateway() {
    let b = backend();
    let c = client(&b.url, TOKEN, 2_000);
    let replies = c
        .run(&[
            set("lock", "owner-1", Some(5_000), true),
            set("lock", "owner-2", Some(5_000), true),
            set("text", "héllo ✓ \u{0}\u{1}", None, false),
            Op::Get("text".into()),
            Op::MGet(vec!["text".into(), "absent".into()]),
            Op::PTtl("lock".into()),
            Op::PTtl("text".into()),
            Op::PTtl("absent".into()),
            Op::PExpire { key: "text".into(), ttl_ms: 60_000 },
            Op::IncrBy { key: "n".into(), by: 41 },
            Op::IncrBy { key: "n".into(), by: 1 },
            Op::CompareAndDelete { key: "lock".into(), token: "owner-2".into() },
            Op::CompareAndDelete { key: "lock".into(), token: "owner-1".into() },
            Op::SAdd { key: "tag".into(), members: vec!["a".into(), "b".into()] },
            Op::SMembers("tag".into()),
            Op::SRem { key: "tag".into(), members: vec!["a".into()] },
            Op::Del(vec!["text".into(), "n".into(), "absent".into()]),
        ])
        .await
        .expect("pipeline");
    assert!(replies[0].is_ok());
    assert_eq!(replies[1], Reply::Nil, "NX lost");
    assert_eq!(replies[3], Reply::Bytes("héllo ✓ \u{0}\u{1}".as_bytes().to_vec()));
    assert_eq!(
        replies[4],
        Reply::Array(vec![Reply::Bytes("héllo ✓ \u{0}\u{1}".as_bytes().to_vec()), Reply::Nil])
    );
    assert!(matches!(replies[5], Reply::Int(ms) if ms > 4_000 && ms <= 5_000));
    assert_eq!(replies[6], Reply::Int(-1));
    assert_eq!(replies[7], Reply::Int(-2));
    assert_eq!(replies[8], Reply::Int(1));
    assert_eq!(replies[10], Reply::Int(42));
    assert_eq!(replies[11], Reply::Int(0), "another owner's token deletes nothing");
    assert_eq!(replies[12], Reply::Int(1));
    assert_eq!(replies[13], Reply::Int(2));
    let Reply::Array(mut members) = replies[14].clone() else { panic!("{:?}", replies[14]) };
    members.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(members, vec![Reply::Bytes(b"a".to_vec()), Reply::Bytes(b"b".to_vec())]);
    assert_eq!(replies[16], Reply::Int(2));
    assert_eq!(c.requests_sent(), 1, "one pipeline is one HTTP request");
}

#[tokio::test]
async fn sscan_reads_a_large_set_in_batches_to_the_end() {
    let b = backend();
    let c = client(&b.url, TOKEN, 2_000);
    let members: Vec<String> = (0..2_500).map(|i| format!("member-{i}")).collect();
    c.run(&[Op::SAdd { key: "big".into(), members: members.clone() }]).await.expect("sadd");
    let memory = edge_core::MemoryStore::new();
    memory.run(&[Op::SAdd { key: "big".into(), members: members.clone() }]).await.expect("sadd");
    for store_name in ["redis", "memory"] {
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let op = Op::SScan { key: "big".into(), cursor: cursor.clone(), count: 500 };
            let reply =
                if store_name == "redis" { c.one(op).await } else { memory.one(op).await }.expect("sscan");
            calls += 1;
            let Reply::Array(parts) = reply else { panic!("{store_name}: {reply:?}") };
            let [Reply::Bytes(next), Reply::Array(batch)] = &parts[..] else {
                panic!("{store_name}: {parts:?}")
            };
            assert!(batch.len() <= 1_000, "{store_name}: a batch, not the set");
            seen.extend(batch.iter().map(|m| format!("{m:?}")));
            cursor = String::from_utf8(next.clone()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 2_500, "{store_name}: every member, once the cursor is back to 0");
        assert!(calls > 2, "{store_name}: read in batches");
    }
}

#[tokio::test]
async fn a_failing_item_fails_alone_in_a_pipeline() {
    let b = backend();
    let c = client(&b.url, TOKEN, 2_000);
    let replies = c
        .run(&[set("s", "text", None, false), Op::IncrBy { key: "s".into(), by: 1 }, Op::Get("s".into())])
        .await
        .expect("pipeline");
    assert_eq!(replies[1], Reply::Error("ERR value is not an integer or out of range".into()));
    assert_eq!(replies[2], Reply::Bytes(b"text".to_vec()));
}

#[tokio::test]
async fn atomic_runs_as_multi_exec() {
    let b = backend();
    let c = client(&b.url, TOKEN, 2_000);
    let replies = c
        .atomic(&[Op::IncrBy { key: "ctr".into(), by: 2 }, Op::IncrBy { key: "ctr".into(), by: 3 }])
        .await
        .expect("multi-exec");
    assert_eq!(replies, vec![Reply::Int(2), Reply::Int(5)]);
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized() {
    let b = backend();
    let c = client(&b.url, "wrong-token", 2_000);
    assert_eq!(c.one(Op::Get("k".into())).await, Err(StoreError::Unauthorized));
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let port = free_port();
    let c = client(&format!("http://127.0.0.1:{port}"), TOKEN, 2_000);
    assert!(matches!(c.one(Op::Get("k".into())).await, Err(StoreError::Unreachable(_))));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let url = fault_server(None).await;
    let c = client(&url, TOKEN, 200);
    let started = std::time::Instant::now();
    assert_eq!(c.one(Op::Get("k".into())).await, Err(StoreError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_5xx_is_an_http_error_with_its_message() {
    let url = fault_server(Some(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 24\r\nconnection: close\r\n\r\n{\"error\":\"ERR overload\"}",
    ))
    .await;
    let c = client(&url, TOKEN, 2_000);
    assert_eq!(
        c.one(Op::Get("k".into())).await,
        Err(StoreError::Http { status: 503, message: "ERR overload".into() })
    );
}

#[tokio::test]
async fn garbage_answers_are_malformed() {
    for body in ["not json at all", "{\"result\":1}", "[]", "[{\"result\":\"%%%\"}]", "[{\"neither\":1}]"] {
        let response: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let url = fault_server(Some(response)).await;
        let c = client(&url, TOKEN, 2_000);
        assert!(matches!(c.one(Op::Get("k".into())).await, Err(StoreError::Malformed(_))), "{body}");
    }
}

#[tokio::test]
async fn after_a_failure_the_breaker_fails_fast_then_lets_one_trial_through() {
    let url = fault_server(None).await;
    let c = client(&url, TOKEN, 150).with_breaker(CircuitBreaker::new(400));
    assert_eq!(c.one(Op::Get("k".into())).await, Err(StoreError::Timeout));
    let started = std::time::Instant::now();
    assert_eq!(c.one(Op::Get("k".into())).await, Err(StoreError::CircuitOpen));
    assert!(started.elapsed() < Duration::from_millis(50), "no request was made");
    assert_eq!(c.requests_sent(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(c.one(Op::Get("k".into())).await, Err(StoreError::Timeout), "the trial goes out");
    assert_eq!(c.requests_sent(), 2);
}

fn write_back(marker: &str, key: &str) -> Op {
    Op::WriteBackOnce {
        marker_key: marker.into(),
        marker_ttl_ms: 60_000,
        key: key.into(),
        value: "carried".into(),
        ttl_ms: 60_000,
    }
}

#[tokio::test]
async fn the_memory_store_and_redis_agree_on_the_same_script() {
    // The same ops against both backends give the same replies: the memory store is a
    // faithful stand-in for `wrangler dev`.
    let b = backend();
    let redis = client(&b.url, TOKEN, 2_000);
    let memory = edge_core::MemoryStore::new();
    let ops = vec![
        set("a", "1", None, false),
        set("a", "2", Some(10_000), true),
        Op::IncrBy { key: "a".into(), by: 5 },
        Op::MGet(vec!["a".into(), "b".into()]),
        Op::CompareAndDelete { key: "a".into(), token: "6".into() },
        Op::Get("a".into()),
        Op::PTtl("a".into()),
        Op::SAdd { key: "s".into(), members: vec!["x".into()] },
        Op::Get("s".into()),
        Op::PExpire { key: "absent".into(), ttl_ms: 100 },
        set("lock", "mine", Some(10_000), false),
        Op::CompareAndExtend { key: "lock".into(), token: "theirs".into(), ttl_ms: 60_000 },
        Op::CompareAndExtend { key: "lock".into(), token: "mine".into(), ttl_ms: 60_000 },
        Op::ReplaceIfPresent {
            old_key: "gone".into(),
            new_key: "gone".into(),
            value: "v".into(),
            ttl_ms: 5_000,
        },
        Op::Get("gone".into()),
        set("old", "v1", None, false),
        Op::ReplaceIfPresent {
            old_key: "old".into(),
            new_key: "new".into(),
            value: "v2".into(),
            ttl_ms: 5_000,
        },
        Op::MGet(vec!["old".into(), "new".into()]),
        Op::SAdd { key: "set".into(), members: vec!["m".into()] },
        Op::ExpireAtLeast { key: "set".into(), ttl_ms: 60_000 },
        Op::ExpireAtLeast { key: "set".into(), ttl_ms: 1_000 },
        Op::ExpireAtLeast { key: "set".into(), ttl_ms: 120_000 },
        Op::ExpireAtLeast { key: "absent".into(), ttl_ms: 1_000 },
        Op::Exists(vec!["set".into(), "absent".into(), "new".into()]),
        Op::SScan { key: "absent".into(), cursor: "0".into(), count: 10 },
        Op::SRandMember { key: "s".into(), count: 5 },
        Op::SRandMember { key: "absent".into(), count: 5 },
        // The fallback cookie's write-back: once, never over a record, never after a marker.
        write_back("fb:1", "sess:1"),
        Op::Get("sess:1".into()),
        write_back("fb:1", "sess:1"),
        set("sess:2", "newer", None, false),
        write_back("fb:2", "sess:2"),
        Op::MGet(vec!["sess:2".into(), "fb:2".into()]),
        set("fb:3", "r", Some(60_000), false),
        write_back("fb:3", "sess:3"),
        Op::Exists(vec!["sess:3".into()]),
    ];
    let from_redis = redis.run(&ops).await.expect("redis");
    let from_memory = memory.run(&ops).await.expect("memory");
    assert_eq!(from_redis, from_memory);
    let write_backs: Vec<_> = from_redis[from_redis.len() - 9..].to_vec();
    assert_eq!(write_backs[0], Reply::Int(1), "written");
    assert_eq!(write_backs[2], Reply::Int(0), "only once");
    assert_eq!(write_backs[4], Reply::Int(2), "never over a newer record");
    assert_eq!(write_backs[7], Reply::Int(0), "never after a revocation");
    assert_eq!(write_backs[8], Reply::Int(0));
}
