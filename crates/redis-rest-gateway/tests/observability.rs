//! What an operator sees: the version, `/metrics` (behind its own token or on its own
//! listener) and JSON log lines.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Client, Gateway, RedisServer};
use serde_json::Value;

/// The value of one sample line, e.g. `name{labels}`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn prints_its_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_redis-rest-gateway")).arg("--version").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.trim(), format!("redis-rest-gateway {}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn metrics_behind_their_own_token() {
    let redis = RedisServer::start();
    let gateway = Gateway::start_with(&redis.url(), &["--metrics-token", "scrape-me"]);
    let client = Client::new(&gateway);
    let http = reqwest::Client::new();
    let metrics_url = format!("{}/metrics", gateway.url);

    // Neither no token nor the Redis token opens /metrics.
    let response = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = http.get(&metrics_url).bearer_auth(common::TOKEN).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);

    client.command(r#"["SET","k","1"]"#).await;
    client.command(r#"["GET","k"]"#).await;
    client.command(r#"["INCR"]"#).await;
    client.pipeline(r#"[["GET","k"],["GET","k"]]"#).await;
    client.send(client.post("/get/k")).await;

    let response = http.get(&metrics_url).bearer_auth("scrape-me").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let requests = |endpoint: &str, outcome: &str| {
        sample(
            &text,
            &format!("redis_rest_gateway_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(requests("command", "ok"), 2.0);
    assert_eq!(requests("command", "command-error"), 1.0);
    assert_eq!(requests("pipeline", "ok"), 1.0);
    assert_eq!(requests("url", "ok"), 1.0);
    assert_eq!(requests("metrics", "missing-token"), 1.0);
    assert_eq!(requests("metrics", "wrong-token"), 1.0);
    let count = sample(&text, "redis_rest_gateway_request_duration_seconds_count{endpoint=\"command\"}");
    assert_eq!(count, 3.0);
    let inf =
        sample(&text, "redis_rest_gateway_request_duration_seconds_bucket{endpoint=\"command\",le=\"+Inf\"}");
    assert_eq!(inf, 3.0);
    assert_eq!(sample(&text, "redis_rest_gateway_in_flight_batches"), 0.0);
    assert_eq!(sample(&text, "redis_rest_gateway_redis_reconnects_total"), 0.0);
}

#[tokio::test]
async fn metrics_on_their_own_listener_count_reconnects() {
    let mut redis = RedisServer::start();
    let metrics_port = common::free_port();
    let gateway =
        Gateway::start_with(&redis.url(), &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    let client = Client::new(&gateway);
    let http = reqwest::Client::new();
    let scrape = || async {
        let r = http.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    };
    let before = scrape().await;
    assert_eq!(sample(&before, "redis_rest_gateway_redis_reconnects_total"), 0.0);
    let other = http.get(format!("http://127.0.0.1:{metrics_port}/")).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 404);
    // The API listener does not serve /metrics without a metrics token: it is a command name.
    assert_eq!(client.send(client.post("/metrics")).await.status, 400);

    redis.stop();
    assert_eq!(client.command(r#"["PING"]"#).await.status, 503);
    // Let a reconnect attempt fail while Redis is down before bringing it back: otherwise the
    // first attempt may already find it up, and no failure is there to count. The gateway
    // connects on demand, so each round sends a request to make it try.
    for _ in 0..50 {
        let _ = client.command(r#"["PING"]"#).await;
        if sample(&scrape().await, "redis_rest_gateway_redis_connect_failures_total") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.restart();
    let mut answered = false;
    for _ in 0..50 {
        if client.command(r#"["PING"]"#).await.status == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "the gateway did not reconnect");
    let after = scrape().await;
    assert_eq!(sample(&after, "redis_rest_gateway_redis_reconnects_total"), 1.0);
    assert!(sample(&after, "redis_rest_gateway_redis_connect_failures_total") >= 1.0);
    assert!(
        sample(
            &after,
            "redis_rest_gateway_requests_total{endpoint=\"command\",outcome=\"redis-unavailable\"}"
        ) >= 1.0
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let redis = RedisServer::start();
    // On one thread (--threads 1: the current-thread runtime), which must serve just the same.
    let gateway = Gateway::start_with(&redis.url(), &["--log-format", "json", "--threads", "1"]);
    let client = Client::new(&gateway);
    client.command(r#"["INCR"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = gateway.log_lines();
    let objects: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(objects
        .iter()
        .any(|o| o["level"] == "info"
            && o["msg"].as_str().unwrap_or_default().contains("listening on http://")));
    let failure = objects.iter().find(|o| o["level"] == "error").expect("an error line");
    assert_eq!(failure["status"], 400);
    assert_eq!(failure["kind"], "command-error");
    assert_eq!(failure["commands"], "INCR");
    assert_eq!(failure["path"], "/");
    assert!(failure["msg"].as_str().unwrap_or_default().contains("wrong number of arguments"));
}
