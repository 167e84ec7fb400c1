//! Every error shape the gateway answers, against a real redis-server.

mod common;

use std::io::{Read, Write};

use common::{setup, TOKEN};
use reqwest::Method;
use serde_json::json;

fn error_text(reply: &common::Reply) -> &str {
    reply.json["error"].as_str().unwrap_or_else(|| panic!("no error field in {:?}", reply.json))
}

#[tokio::test]
async fn missing_token_is_401_with_an_error_body() {
    let s = setup();
    let reply = s.client.send(s.client.request(Method::POST, "/").body(r#"["PING"]"#)).await;
    assert_eq!(reply.status, 401);
    assert!(error_text(&reply).starts_with("Unauthorized"));
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let reply = s
        .client
        .send(s.client.request(Method::POST, "/").header("Authorization", "Bearer ").body(r#"["PING"]"#))
        .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn wrong_token_is_401() {
    let s = setup();
    for header in
        ["Bearer wrong", &format!("Bearer {TOKEN}x"), &format!("Basic {TOKEN}"), "Bearer test-token"]
    {
        let reply = s
            .client
            .send(s.client.request(Method::POST, "/").header("Authorization", header).body(r#"["PING"]"#))
            .await;
        assert_eq!(reply.status, 401, "{header}");
        assert!(error_text(&reply).starts_with("Unauthorized"));
    }
}

#[tokio::test]
async fn token_in_the_query_string() {
    let s = setup();
    let ok = s.client.send(s.client.request(Method::GET, &format!("/ping?_token={TOKEN}"))).await;
    assert_eq!((ok.status, ok.json.clone()), (200, json!({"result": "PONG"})));
    let ok =
        s.client.send(s.client.request(Method::POST, &format!("/?_token={TOKEN}")).body(r#"["PING"]"#)).await;
    assert_eq!(ok.status, 200);
    let bad = s.client.send(s.client.request(Method::GET, "/ping?_token=nope")).await;
    assert_eq!(bad.status, 401);
    // The token is never an argument of the command.
    let echo = s.client.send(s.client.request(Method::GET, &format!("/echo/x?_token={TOKEN}"))).await;
    assert_eq!(echo.json, json!({"result": "x"}));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let s = setup();
    for body in [r#"["GET","k""#, "", "not json", r#"["GET",]"#] {
        let reply = s.client.command(body).await;
        assert_eq!(reply.status, 400, "{body:?}");
        assert!(error_text(&reply).starts_with("ERR failed to parse command"), "{:?}", reply.json);
    }
}

#[tokio::test]
async fn a_body_that_is_not_an_array_is_400() {
    let s = setup();
    for body in [r#"{"cmd":"GET"}"#, r#""GET""#, "42", "null", r#"["GET",{"a":1}]"#, r#"["GET",null]"#] {
        let reply = s.client.command(body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(error_text(&reply).starts_with("ERR"), "{:?}", reply.json);
    }
    for body in [r#"{"a":1}"#, r#"["GET","k"]"#, r#"[["GET","k"],"SET"]"#] {
        let reply = s.client.pipeline(body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(error_text(&reply).starts_with("ERR failed to parse pipeline"), "{:?}", reply.json);
    }
}

#[tokio::test]
async fn an_empty_array_is_400() {
    let s = setup();
    let reply = s.client.command("[]").await;
    assert_eq!((reply.status, error_text(&reply)), (400, "ERR empty command"));
    let reply = s.client.pipeline("[]").await;
    assert_eq!(reply.status, 400);
    let reply = s.client.transaction("[[]]").await;
    assert_eq!((reply.status, error_text(&reply)), (400, "ERR empty command"));
    let reply = s.client.send(s.client.request(Method::GET, &format!("/?_token={TOKEN}"))).await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn wrong_arity_and_unknown_commands_give_redis_text() {
    let s = setup();
    let reply = s.client.command(r#"["GET"]"#).await;
    assert_eq!((reply.status, error_text(&reply)), (400, "ERR wrong number of arguments for 'get' command"));
    let reply = s.client.command(r#"["NOSUCHCOMMAND","x"]"#).await;
    assert_eq!(reply.status, 400);
    assert!(error_text(&reply).starts_with("ERR unknown command 'NOSUCHCOMMAND'"), "{:?}", reply.json);
    s.client.command(r#"["SET","s","abc"]"#).await;
    let reply = s.client.command(r#"["INCR","s"]"#).await;
    assert_eq!((reply.status, error_text(&reply)), (400, "ERR value is not an integer or out of range"));
    let reply = s.client.command(r#"["LPUSH","s","x"]"#).await;
    assert!(error_text(&reply).starts_with("WRONGTYPE"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_upstashs_error() {
    let s = setup();
    const LIMIT: usize = 10 * 1024 * 1024;
    // Just under the limit goes through (URL form: the body is the value, byte for byte).
    let value = vec![b'v'; LIMIT - 10];
    let reply = s.client.send(s.client.post("/set/big").body(value)).await;
    assert_eq!(reply.json, json!({"result": "OK"}));
    let reply = s.client.command(r#"["STRLEN","big"]"#).await;
    assert_eq!(reply.json, json!({"result": LIMIT - 10}));

    let too_big = vec![b'v'; LIMIT + 1];
    let reply = s.client.send(s.client.post("/set/big").body(too_big.clone())).await;
    assert_eq!((reply.status, error_text(&reply)), (413, "ERR max request size exceeded"));
    let mut json_body = br#"["SET","big",""#.to_vec();
    json_body.extend_from_slice(&too_big);
    json_body.extend_from_slice(br#""]"#);
    let reply = s.client.send(s.client.post("/").body(json_body)).await;
    assert_eq!((reply.status, error_text(&reply)), (413, "ERR max request size exceeded"));
}

#[tokio::test]
async fn an_oversized_chunked_body_is_refused_too() {
    let redis = common::RedisServer::start();
    let gateway = common::Gateway::start_with(&redis.url(), &["--max-body-bytes", "1000"]);
    let address = gateway.url.trim_start_matches("http://").to_string();
    let response = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        let head = format!(
            "POST /set/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).unwrap();
        for _ in 0..3 {
            // 3 chunks of 500 bytes: over the 1000-byte limit, with no Content-Length to see it coming.
            let _ = socket.write_all(format!("1f4\r\n{}\r\n", "x".repeat(500)).as_bytes());
        }
        let _ = socket.write_all(b"0\r\n\r\n");
        let mut response = String::new();
        let _ = socket.read_to_string(&mut response);
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.ends_with(r#"{"error":"ERR max request size exceeded"}"#), "{response}");
}

#[tokio::test]
async fn other_methods_are_405() {
    let s = setup();
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        let reply = s.client.send(s.client.request(method.clone(), "/").bearer_auth(TOKEN)).await;
        assert_eq!(reply.status, 405, "{method}");
        assert!(error_text(&reply).contains("method not allowed"));
    }
    for path in ["/pipeline", "/multi-exec"] {
        let reply = s.client.send(s.client.request(Method::GET, path).bearer_auth(TOKEN)).await;
        assert_eq!(reply.status, 405, "GET {path}");
    }
}

#[tokio::test]
async fn commands_that_cannot_work_over_http_are_refused() {
    let s = setup();
    for body in [
        r#"["BLPOP","q",0]"#,
        r#"["BRPOP","q",1]"#,
        r#"["BLMOVE","a","b","LEFT","RIGHT",0]"#,
        r#"["BZPOPMIN","z",0]"#,
        r#"["XREAD","BLOCK",0,"STREAMS","s","$"]"#,
        r#"["WAIT",1,0]"#,
        r#"["SUBSCRIBE","c"]"#,
        r#"["PSUBSCRIBE","c*"]"#,
        r#"["MONITOR"]"#,
        r#"["SELECT",1]"#,
        r#"["MULTI"]"#,
        r#"["EXEC"]"#,
        r#"["DISCARD"]"#,
        r#"["WATCH","k"]"#,
        r#"["AUTH","x"]"#,
        r#"["HELLO","3"]"#,
        r#"["QUIT"]"#,
        r#"["RESET"]"#,
        r#"["CLIENT","REPLY","OFF"]"#,
    ] {
        let reply = s.client.command(body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(error_text(&reply).contains("not supported by the REST gateway"), "{body}: {:?}", reply.json);
    }
    // URL form too.
    let reply = s.client.send(s.client.post("/blpop/q/0")).await;
    assert_eq!(reply.status, 400);
    // Nothing was wedged: the shared connection still answers at once.
    let reply = s.client.command(r#"["PING"]"#).await;
    assert_eq!(reply.json, json!({"result": "PONG"}));
    // In a pipeline a refused command is that item's error; in a transaction it refuses the whole.
    let reply = s.client.pipeline(r#"[["SET","p","1"],["SUBSCRIBE","c"],["GET","p"]]"#).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json[0], json!({"result": "OK"}));
    assert!(reply.json[1]["error"].as_str().unwrap().contains("not supported"));
    assert_eq!(reply.json[2], json!({"result": "1"}));
    let reply = s.client.transaction(r#"[["SET","t","1"],["MULTI"]]"#).await;
    assert_eq!(reply.status, 400);
    assert_eq!(s.client.command(r#"["EXISTS","t"]"#).await.json, json!({"result": 0}));
}

#[tokio::test]
async fn a_queue_time_error_discards_the_whole_transaction() {
    let s = setup();
    let reply = s.client.transaction(r#"[["SET","tx","1"],["GET"],["INCR","tx"]]"#).await;
    assert_eq!((reply.status, error_text(&reply)), (400, "ERR wrong number of arguments for 'get' command"));
    assert_eq!(s.client.command(r#"["EXISTS","tx"]"#).await.json, json!({"result": 0}));
    // The shared connection is not left inside a MULTI.
    let reply = s.client.transaction(r#"[["SET","tx","1"],["INCR","tx"]]"#).await;
    assert_eq!(reply.json, json!([{"result": "OK"}, {"result": 2}]));
}

#[tokio::test]
async fn a_runtime_error_in_a_transaction_is_a_per_item_error() {
    let s = setup();
    let reply = s.client.transaction(r#"[["SET","s","abc"],["INCR","s"],["SET","after","yes"]]"#).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!([{"result": "OK"}, {"error": "ERR value is not an integer or out of range"}, {"result": "OK"}])
    );
}

#[tokio::test]
async fn errors_are_logged_one_line_each() {
    let s = setup();
    s.client.command(r#"["INCR"]"#).await;
    s.client.send(s.client.request(Method::POST, "/").body("[]")).await;
    std::thread::sleep(std::time::Duration::from_millis(100));
    let lines = s.gateway.log_lines();
    assert!(lines.iter().any(|l| l.contains("error: 400 POST / command-error (INCR)")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("error: 401 POST / missing-token")), "{lines:?}");
}
