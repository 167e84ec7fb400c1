//! The gateway as a service: start-up checks, Redis going away and coming back,
//! a Redis that stops answering, and SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{signal, Client, Gateway, RedisServer};
use serde_json::json;

fn run_binary(args: &[&str], token: Option<&str>) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redis-rest-gateway"));
    command.args(args).env_remove("GATEWAY_TOKEN").stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("GATEWAY_TOKEN", token);
    }
    let output = command.output().expect("run gateway");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn refuses_to_start_without_a_token() {
    let (code, stderr) = run_binary(&["--listen", "127.0.0.1:0"], None);
    assert_ne!(code, 0);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no token"), "{stderr}");
}

#[test]
fn one_clear_line_when_redis_is_unreachable_at_start() {
    let port = common::free_port();
    let (code, stderr) =
        run_binary(&["--listen", "127.0.0.1:0", "--redis", &format!("redis://127.0.0.1:{port}")], Some("t"));
    assert_ne!(code, 0);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("cannot reach Redis at redis://127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn one_clear_line_when_redis_refuses_the_login() {
    let redis = RedisServer::start();
    let url = format!("redis://:wrong-password@127.0.0.1:{}", redis.port);
    let (code, stderr) = run_binary(&["--listen", "127.0.0.1:0", "--redis", &url], Some("t"));
    assert_ne!(code, 0);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot reach Redis at redis://:***@127.0.0.1"), "{stderr}");
    assert!(stderr.contains("AUTH"), "{stderr}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
}

#[test]
fn help_lists_flags_and_env_vars() {
    let output = Command::new(env!("CARGO_BIN_EXE_redis-rest-gateway")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in
        ["--listen", "--redis", "--token", "GATEWAY_LISTEN", "REDIS_URL", "GATEWAY_TOKEN", "127.0.0.1:8080"]
    {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[tokio::test]
async fn recovers_when_redis_stops_and_comes_back() {
    let mut redis = RedisServer::start();
    let mut gateway = Gateway::start(&redis.url());
    let client = Client::new(&gateway);
    assert_eq!(client.command(r#"["SET","k","before"]"#).await.json, json!({"result": "OK"}));

    redis.stop();
    for _ in 0..3 {
        let reply = client.command(r#"["GET","k"]"#).await;
        assert!(reply.status >= 500 && reply.status < 600, "{reply:?}");
        assert!(reply.json["error"].as_str().unwrap().contains("Redis is unavailable"), "{reply:?}");
        let reply = client.pipeline(r#"[["GET","k"]]"#).await;
        assert!(reply.status >= 500, "{reply:?}");
        let reply = client.transaction(r#"[["GET","k"]]"#).await;
        assert!(reply.status >= 500, "{reply:?}");
    }

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = client.command(r#"["SET","k","after"]"#).await;
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client.command(r#"["GET","k"]"#).await.json, json!({"result": "after"}));
    // Same process throughout.
    assert!(gateway.wait_exit(Duration::from_millis(1)).is_none());
    assert!(gateway.log_lines().iter().any(|l| l.contains("redis connection dropped")));
}

#[tokio::test]
async fn a_redis_that_stops_answering_gives_504_and_the_connection_stays_in_step() {
    let redis = RedisServer::start();
    let gateway = Gateway::start_with(&redis.url(), &["--redis-timeout-ms", "300"]);
    let client = Client::new(&gateway);
    client.command(r#"["SET","k","v"]"#).await;

    signal(redis.pid(), "STOP");
    let reply = client.command(r#"["GET","k"]"#).await;
    signal(redis.pid(), "CONT");
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.json["error"].as_str().unwrap().contains("did not answer in time"));

    // The late reply to the timed-out GET must not be handed to the next request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(client.command(r#"["ECHO","next"]"#).await.json, json!({"result": "next"}));
    assert_eq!(client.command(r#"["GET","k"]"#).await.json, json!({"result": "v"}));
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let redis = RedisServer::start();
    let mut gateway = Gateway::start(&redis.url());
    let client = std::sync::Arc::new(Client::new(&gateway));
    // A request in flight when the signal lands: Redis is paused for 300 ms under it.
    signal(redis.pid(), "STOP");
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.command(r#"["PING"]"#).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    signal(gateway.pid(), "TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(redis.pid(), "CONT");
    assert_eq!(in_flight.await.unwrap().json, json!({"result": "PONG"}));
    let status = gateway.wait_exit(Duration::from_secs(5)).expect("gateway exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(gateway.log_lines().iter().any(|l| l.contains("shutting down")));
}
