//! The protocol's success paths: reply shapes, base64, the URL form, pipelines,
//! transactions and concurrency.

mod common;

use base64::Engine as _;
use common::{setup, TOKEN};
use reqwest::Method;
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn reply_types_as_json() {
    let s = setup();
    let c = &s.client;
    assert_eq!(c.command(r#"["SET","k","v"]"#).await.json, json!({"result": "OK"}));
    assert_eq!(c.command(r#"["GET","k"]"#).await.json, json!({"result": "v"}));
    assert_eq!(c.command(r#"["GET","nope"]"#).await.json, json!({"result": null}));
    assert_eq!(c.command(r#"["RPUSH","l","a","b"]"#).await.json, json!({"result": 2}));
    assert_eq!(c.command(r#"["LRANGE","l",0,-1]"#).await.json, json!({"result": ["a", "b"]}));
    assert_eq!(c.command(r#"["MGET","k","nope"]"#).await.json, json!({"result": ["v", null]}));
    assert_eq!(c.command(r#"["PING"]"#).await.json, json!({"result": "PONG"}));
    assert_eq!(
        c.command(r#"["EVAL","return {1,{2,'x'},false}",0]"#).await.json,
        json!({"result": [1, [2, "x"], null]})
    );
    let reply = c.command(r#"["PING"]"#).await;
    assert!(reply.sync_token.is_some());
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn json_numbers_are_forwarded_literally() {
    let s = setup();
    let c = &s.client;
    c.command(r#"["SET","n",1.50]"#).await;
    assert_eq!(c.command(r#"["GET","n"]"#).await.json, json!({"result": "1.50"}));
    c.command(r#"["SET","big",123456789012345678901234567890]"#).await;
    assert_eq!(c.command(r#"["GET","big"]"#).await.json, json!({"result": "123456789012345678901234567890"}));
    c.command(r#"["SET","px","x","PX",60000]"#).await;
    let pttl = c.command(r#"["PTTL","px"]"#).await.json["result"].as_i64().unwrap();
    assert!(pttl > 50_000 && pttl <= 60_000);
}

#[tokio::test]
async fn base64_encodes_every_string_but_ok_recursively() {
    let s = setup();
    let c = &s.client;
    assert_eq!(c.command_b64(r#"["SET","k","héllo"]"#).await.json, json!({"result": "OK"}));
    assert_eq!(c.command_b64(r#"["GET","k"]"#).await.json, json!({"result": b64("héllo".as_bytes())}));
    assert_eq!(c.command_b64(r#"["PING"]"#).await.json, json!({"result": b64(b"PONG")}));
    assert_eq!(c.command_b64(r#"["INCR","n"]"#).await.json, json!({"result": 1}));
    assert_eq!(c.command_b64(r#"["GET","none"]"#).await.json, json!({"result": null}));
    c.command(r#"["SET","ok","OK"]"#).await;
    // A *bulk* "OK" is data, so it is encoded; only the status reply stays "OK".
    assert_eq!(c.command_b64(r#"["GET","ok"]"#).await.json, json!({"result": b64(b"OK")}));
    assert_eq!(
        c.command_b64(r#"["EVAL","return {1,{'a',false},'b'}",0]"#).await.json,
        json!({"result": [1, [b64(b"a"), null], b64(b"b")]})
    );
    // Errors are never encoded.
    assert_eq!(
        c.command_b64(r#"["INCR","k"]"#).await.json,
        json!({"error": "ERR value is not an integer or out of range"})
    );
    let reply = c
        .send(
            c.post("/pipeline")
                .header("Upstash-Encoding", "base64")
                .body(r#"[["SET","a","b"],["GET","a"],["INCR","a"]]"#),
        )
        .await;
    assert_eq!(
        reply.json,
        json!([{"result": "OK"}, {"result": b64(b"b")}, {"error": "ERR value is not an integer or out of range"}])
    );
}

#[tokio::test]
async fn binary_values_are_exact() {
    let s = setup();
    let c = &s.client;
    let bytes: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00, b'\r', b'\n']).collect();
    assert_eq!(c.send(c.post("/set/bin").body(bytes.clone())).await.json, json!({"result": "OK"}));
    assert_eq!(c.command_b64(r#"["GET","bin"]"#).await.json, json!({"result": b64(&bytes)}));
    assert_eq!(c.command(r#"["STRLEN","bin"]"#).await.json, json!({"result": bytes.len()}));
    // Without base64, bytes that are not UTF-8 come back lossy (as Upstash does), never as an error.
    let plain = c.command(r#"["GET","bin"]"#).await;
    assert_eq!(plain.status, 200);
    assert!(plain.json["result"].as_str().unwrap().contains('\u{fffd}'));
    // Unicode in JSON strings (escaped or not) is stored as its UTF-8 bytes.
    c.command("[\"SET\",\"u\",\"\\u00e9\\u0000🎉\"]").await;
    assert_eq!(c.command(r#"["STRLEN","u"]"#).await.json, json!({"result": 7}));
    assert_eq!(c.command(r#"["GET","u"]"#).await.json, json!({"result": "é\u{0}🎉"}));
}

#[tokio::test]
async fn the_url_form() {
    let s = setup();
    let c = &s.client;
    let get = |path: &str| c.request(Method::GET, path).bearer_auth(TOKEN);
    assert_eq!(c.send(get("/set/url%20key/a%2Fb?EX=100")).await.json, json!({"result": "OK"}));
    assert_eq!(c.send(get("/get/url%20key")).await.json, json!({"result": "a/b"}));
    let ttl = c.send(get("/ttl/url%20key")).await.json["result"].as_i64().unwrap();
    assert!(ttl > 90 && ttl <= 100);
    assert_eq!(c.send(c.post("/set/posted").body("the body")).await.json, json!({"result": "OK"}));
    assert_eq!(c.send(c.post("/get/posted")).await.json, json!({"result": "the body"}));
    assert_eq!(c.send(c.post("/hset/h/f").body("v")).await.json, json!({"result": 1}));
    assert_eq!(c.send(get("/hgetall/h")).await.json, json!({"result": ["f", "v"]}));
}

#[tokio::test]
async fn a_pipeline_runs_in_order_with_per_item_errors() {
    let s = setup();
    let reply =
        s.client.pipeline(r#"[["SET","p","1"],["INCR","p"],["LPUSH","p","x"],["GET","p"],["GET"]]"#).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json[0], json!({"result": "OK"}));
    assert_eq!(reply.json[1], json!({"result": 2}));
    assert!(reply.json[2]["error"].as_str().unwrap().starts_with("WRONGTYPE"));
    assert_eq!(reply.json[3], json!({"result": "2"}));
    assert_eq!(reply.json[4], json!({"error": "ERR wrong number of arguments for 'get' command"}));
}

#[tokio::test]
async fn concurrent_transactions_on_one_counter_stay_atomic() {
    let s = setup();
    let client = std::sync::Arc::new(common::Client::new(&s.gateway));
    let n = 200;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .transaction(r#"[["INCR","counter"],["GET","counter"],["INCR","counter"],["GET","counter"]]"#)
                .await
        }));
    }
    let mut firsts = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        let first = reply.json[0]["result"].as_i64().unwrap();
        // Nothing from another transaction ran between these four commands.
        assert_eq!(reply.json[1]["result"], json!(first.to_string()));
        assert_eq!(reply.json[2]["result"], json!(first + 1));
        assert_eq!(reply.json[3]["result"], json!((first + 1).to_string()));
        firsts.push(first);
    }
    firsts.sort();
    assert_eq!(firsts, (0..n).map(|i| 2 * i + 1).collect::<Vec<i64>>());
    assert_eq!(client.command(r#"["GET","counter"]"#).await.json, json!({"result": (2 * n).to_string()}));
}

#[tokio::test]
async fn many_concurrent_requests_each_get_their_own_reply() {
    let s = setup();
    let client = std::sync::Arc::new(common::Client::new(&s.gateway));
    let mut tasks = Vec::new();
    for i in 0..300 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let set = client.command(&format!(r#"["SET","key{i}","value{i}"]"#)).await;
            assert_eq!(set.json, json!({"result": "OK"}));
            let get = client.command(&format!(r#"["GET","key{i}"]"#)).await;
            assert_eq!(get.json, json!({"result": format!("value{i}")}));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_large_reply_does_not_hold_up_small_ones() {
    let s = setup();
    let c = &s.client;
    // ~8 MB value: its reply streams in many reads while small requests keep flowing.
    c.send(c.post("/set/large").body(vec![b'x'; 8 * 1024 * 1024])).await;
    let client = std::sync::Arc::new(common::Client::new(&s.gateway));
    let large = {
        let client = client.clone();
        tokio::spawn(async move { client.command(r#"["STRLEN","large"]"#).await })
    };
    let big_get = {
        let client = client.clone();
        tokio::spawn(async move { client.command(r#"["GET","large"]"#).await })
    };
    for _ in 0..20 {
        assert_eq!(c.command(r#"["PING"]"#).await.json, json!({"result": "PONG"}));
    }
    assert_eq!(large.await.unwrap().json, json!({"result": 8 * 1024 * 1024}));
    assert_eq!(big_get.await.unwrap().json["result"].as_str().unwrap().len(), 8 * 1024 * 1024);
}

#[tokio::test]
async fn a_body_that_arrives_in_pieces_is_read_whole() {
    use std::io::{Read, Write};
    let s = setup();
    let address = s.client.base.trim_start_matches("http://").to_string();
    // A JSON command with an escaped argument, sent in three writes with pauses between them,
    // so the gateway reads it as several body frames.
    let value = "x".repeat(200_000);
    let body = format!(r#"["SET","pieces","{value}\n"]"#);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let reply = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket.write_all(head.as_bytes()).unwrap();
        for piece in body.as_bytes().chunks(body.len() / 3 + 1) {
            socket.write_all(piece).unwrap();
            socket.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut response = String::new();
        socket.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with(r#"{"result":"OK"}"#), "{reply}");
    let stored = s.client.command(r#"["STRLEN","pieces"]"#).await;
    assert_eq!(stored.json, json!({"result": 200_001}));
}
