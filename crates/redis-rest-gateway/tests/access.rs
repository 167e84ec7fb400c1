//! Who may run what: server administration refused unless allowed, read-only tokens limited to
//! what Redis flags as not writing, and several tokens accepted at once.

mod common;

use common::{Client, Gateway, RedisServer, TOKEN};
use serde_json::json;

fn error_text(reply: &common::Reply) -> String {
    reply.json["error"].as_str().unwrap_or_default().to_string()
}

/// A client presenting `token` instead of the default one.
async fn send_as(gateway: &Gateway, token: &str, path: &str, body: &str) -> common::Reply {
    let client = Client::new(gateway);
    let request = client.request(reqwest::Method::POST, path).bearer_auth(token).body(body.to_string());
    client.send(request).await
}

#[tokio::test]
async fn administration_is_refused_and_redis_stays_up() {
    let redis = RedisServer::start();
    let gateway = Gateway::start(&redis.url());
    let client = Client::new(&gateway);
    for body in [
        r#"["SHUTDOWN","NOSAVE"]"#,
        r#"["CONFIG","SET","maxmemory","1mb"]"#,
        r#"["DEBUG","SLEEP","0"]"#,
        r#"["REPLICAOF","127.0.0.1","1"]"#,
        r#"["ACL","SETUSER","intruder","on"]"#,
        r#"["CLIENT","KILL","TYPE","normal"]"#,
        r#"["BGSAVE"]"#,
        r#"["SLOWLOG","RESET"]"#,
    ] {
        let reply = client.command(body).await;
        assert_eq!(reply.status, 403, "{body}: {:?}", reply.json);
        assert!(error_text(&reply).contains("--allow-admin-commands"), "{body}: {:?}", reply.json);
    }
    // The URL form, a pipeline item and a transaction are refused the same way.
    let reply = client.send(client.post("/shutdown")).await;
    assert_eq!(reply.status, 403);
    let reply = client.pipeline(r#"[["SET","a","1"],["CONFIG","GET","maxmemory"],["GET","a"]]"#).await;
    assert_eq!(reply.json[0], json!({"result": "OK"}));
    assert!(reply.json[1]["error"].as_str().unwrap_or_default().contains("not allowed"));
    assert_eq!(reply.json[2], json!({"result": "1"}));
    let reply = client.transaction(r#"[["SET","t","1"],["SHUTDOWN"]]"#).await;
    assert_eq!(reply.status, 403);
    assert_eq!(client.command(r#"["EXISTS","t"]"#).await.json, json!({"result": 0}));

    // Redis is still running and unchanged; FLUSHALL, FLUSHDB and SCRIPT FLUSH still work.
    let reply = client.command(r#"["INFO","memory"]"#).await;
    assert!(reply.json["result"].as_str().unwrap_or_default().contains("maxmemory:0"), "{:?}", reply.json);
    for body in [r#"["FLUSHALL"]"#, r#"["FLUSHDB"]"#, r#"["SCRIPT","FLUSH"]"#] {
        assert_eq!(client.command(body).await.json, json!({"result": "OK"}), "{body}");
    }
}

#[tokio::test]
async fn administration_passes_with_the_flag() {
    let redis = RedisServer::start();
    let gateway = Gateway::start_with(&redis.url(), &["--allow-admin-commands"]);
    let client = Client::new(&gateway);
    let reply = client.command(r#"["CONFIG","SET","maxmemory-policy","allkeys-lru"]"#).await;
    assert_eq!(reply.json, json!({"result": "OK"}));
    let reply = client.command(r#"["CONFIG","GET","maxmemory-policy"]"#).await;
    assert_eq!(reply.json, json!({"result": ["maxmemory-policy", "allkeys-lru"]}));
}

#[tokio::test]
async fn a_read_only_token_runs_only_what_redis_flags_as_not_writing() {
    let redis = RedisServer::start();
    let gateway = Gateway::start_with(&redis.url(), &["--readonly-token", "reader-token"]);
    let client = Client::new(&gateway);
    assert_eq!(client.command(r#"["SET","k","v"]"#).await.json, json!({"result": "OK"}));

    for (body, expected) in [
        (r#"["GET","k"]"#, json!("v")),
        (r#"["STRLEN","k"]"#, json!(1)),
        (r#"["OBJECT","ENCODING","k"]"#, json!("embstr")),
        (r#"["EVAL_RO","return redis.call('GET', KEYS[1])","1","k"]"#, json!("v")),
        (r#"["PING"]"#, json!("PONG")),
    ] {
        let reply = send_as(&gateway, "reader-token", "/", body).await;
        assert_eq!(reply.json, json!({ "result": expected }), "{body}");
    }
    for body in [
        r#"["SET","k","changed"]"#,
        r#"["del","k"]"#,
        r#"["FLUSHALL"]"#,
        r#"["EVAL","return redis.call('SET', KEYS[1], 'x')","1","k"]"#,
        r#"["PUBLISH","channel","m"]"#,
        r#"["OBJECT","NOSUCH","k"]"#,
        r#"["NOSUCHCOMMAND"]"#,
    ] {
        let reply = send_as(&gateway, "reader-token", "/", body).await;
        assert_eq!(reply.status, 403, "{body}: {:?}", reply.json);
        assert!(error_text(&reply).starts_with("NOPERM"), "{body}: {:?}", reply.json);
    }
    // Pipelines refuse the writing items only; a transaction with a write is refused whole.
    let reply = send_as(&gateway, "reader-token", "/pipeline", r#"[["GET","k"],["INCR","n"]]"#).await;
    assert_eq!(reply.json[0], json!({"result": "v"}));
    assert!(reply.json[1]["error"].as_str().unwrap_or_default().starts_with("NOPERM"));
    let reply = send_as(&gateway, "reader-token", "/multi-exec", r#"[["GET","k"],["INCR","n"]]"#).await;
    assert_eq!(reply.status, 403);
    // Nothing changed.
    assert_eq!(client.command(r#"["GET","k"]"#).await.json, json!({"result": "v"}));
    assert_eq!(client.command(r#"["EXISTS","n"]"#).await.json, json!({"result": 0}));
    // The full token still writes.
    assert_eq!(client.command(r#"["INCR","n"]"#).await.json, json!({"result": 1}));
}

#[tokio::test]
async fn several_tokens_are_accepted_at_once() {
    let redis = RedisServer::start();
    let gateway = Gateway::start_with(&redis.url(), &["--token", &format!("old-token,{TOKEN}")]);
    let reply = send_as(&gateway, "old-token", "/", r#"["SET","k","1"]"#).await;
    assert_eq!(reply.json, json!({"result": "OK"}));
    let reply = send_as(&gateway, TOKEN, "/", r#"["GET","k"]"#).await;
    assert_eq!(reply.json, json!({"result": "1"}));
    for wrong in ["old-toke", "old-token,test", "other"] {
        let reply = send_as(&gateway, wrong, "/", r#"["GET","k"]"#).await;
        assert_eq!(reply.status, 401, "{wrong}");
    }
}
