//! Following the primary: a real primary, replica and Sentinel on loopback; the primary is
//! killed while requests are running, and a server that turns into a replica answers READONLY.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::certs::TempDir;
use common::{Client, Gateway, RedisServer};
use redis_rest_gateway::resp::{encode_command, parse_reply, Reply};
use serde_json::json;

/// One command straight to Redis (or a Sentinel), outside the gateway.
fn call(port: u16, args: &[&str]) -> Reply {
    call_all(port, &[args])
}

/// Several commands on one connection; the last one's reply.
fn call_all(port: u16, commands: &[&[&str]]) -> Reply {
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    for args in commands {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        encode_command(&args, &mut out);
    }
    socket.write_all(&out).unwrap();
    let mut buffer = BytesMut::new();
    let mut seen = 0;
    loop {
        if let Some(reply) = parse_reply(&mut buffer).expect("RESP") {
            seen += 1;
            if seen == commands.len() {
                return reply;
            }
            continue;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = socket.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn text(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(b) | Reply::Status(b) | Reply::Error(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `redis-server --sentinel` process, killed on drop.
struct Sentinel {
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl Sentinel {
    fn start(master_port: u16) -> Sentinel {
        Sentinel::start_with(master_port, "")
    }

    /// With extra lines in its configuration file.
    fn start_with(master_port: u16, extra_config: &str) -> Sentinel {
        let dir = TempDir::new("sentinel");
        let port = common::free_port();
        // Quick failure detection so the test is short; a real deployment keeps the defaults.
        let conf = dir.write(
            "sentinel.conf",
            &format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 10000\n{extra_config}",
                dir.0.display()
            ),
        );
        let binary = if Path::new("/usr/bin/redis-server").exists() {
            "/usr/bin/redis-server"
        } else {
            "redis-server"
        };
        let child = Command::new(binary)
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server --sentinel");
        Sentinel { port, child, _dir: dir }
    }

    fn primary_port(&self) -> Option<u16> {
        match std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            Ok(_) => {}
            Err(_) => return None,
        }
        match call(self.port, &["SENTINEL", "get-master-addr-by-name", "mymaster"]) {
            Reply::Array(fields) => fields.get(1).and_then(|p| text(p).parse().ok()),
            _ => None,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn follows_the_primary_when_sentinel_fails_over() {
    let mut primary = RedisServer::start();
    let replica =
        RedisServer::start_with(&["--replicaof".into(), "127.0.0.1".into(), primary.port.to_string()]);
    wait_until("the replica to sync", Duration::from_secs(10), || {
        text(&call(replica.port, &["INFO", "replication"])).contains("master_link_status:up")
    });
    let sentinel = Sentinel::start(primary.port);
    wait_until("the Sentinel to know the replica", Duration::from_secs(15), || {
        sentinel.primary_port() == Some(primary.port)
            && matches!(call(sentinel.port, &["SENTINEL", "replicas", "mymaster"]), Reply::Array(r) if !r.is_empty())
    });

    let url = format!("redis+sentinel://127.0.0.1:{}/mymaster", sentinel.port);
    let gateway = Gateway::start_with(&url, &["--metrics-token", "m"]);
    let client = Arc::new(Client::new(&gateway));
    assert_eq!(client.command(r#"["SET","before","failover"]"#).await.json, json!({"result": "OK"}));
    wait_until("the write to reach the replica", Duration::from_secs(5), || {
        text(&call(replica.port, &["GET", "before"])) == "failover"
    });

    // Four clients write continuously; the primary dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, stop, killed) = (client.clone(), stop.clone(), killed.clone());
        workers.push(tokio::spawn(async move {
            let (mut failures, mut after_kill_ok) = (Vec::new(), 0);
            while !stop.load(Ordering::SeqCst) {
                let reply = client.command(r#"["INCR","counter"]"#).await;
                if reply.status == 200 {
                    after_kill_ok += usize::from(killed.load(Ordering::SeqCst));
                } else {
                    failures.push((reply.status, reply.json));
                }
            }
            (failures, after_kill_ok)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    primary.stop();
    killed.store(true, Ordering::SeqCst);
    let new_port = replica.port;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sentinel.primary_port() != Some(new_port) {
        assert!(Instant::now() < deadline, "Sentinel never promoted the replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    let mut successes_after_kill = 0;
    for worker in workers {
        let (f, ok) = worker.await.unwrap();
        failures.extend(f);
        successes_after_kill += ok;
    }
    // Only the requests in flight when the primary died may fail (one per client at most),
    // and they fail as "unavailable", not as timeouts or wrong answers.
    assert!(failures.len() <= 4, "{failures:?}");
    for (status, body) in &failures {
        assert_eq!(*status, 503, "{body}");
    }
    assert!(successes_after_kill > 0);

    // The gateway now writes to the promoted replica, which kept the replicated data.
    let info = client.command(r#"["INFO","server"]"#).await;
    let info = info.json["result"].as_str().unwrap_or_default().to_string();
    assert!(info.contains(&format!("tcp_port:{new_port}")), "{info}");
    assert_eq!(client.command(r#"["GET","before"]"#).await.json, json!({"result": "failover"}));
    wait_until("the new-primary log line", Duration::from_secs(5), || {
        gateway.log_lines().iter().any(|l| l.contains("connected to the new primary"))
    });
    let metrics =
        reqwest::Client::new().get(format!("{}/metrics", gateway.url)).bearer_auth("m").send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("redis_rest_gateway_redis_primary_changes_total 1\n"), "{metrics}");
}

#[tokio::test]
async fn a_primary_turned_replica_is_left_after_its_readonly_answer() {
    let redis = RedisServer::start();
    let other = RedisServer::start();
    let gateway = Gateway::start(&redis.url());
    let client = Client::new(&gateway);
    assert_eq!(client.command(r#"["SET","k","1"]"#).await.json, json!({"result": "OK"}));

    // Demoted behind the gateway's back (as a managed promotion elsewhere would).
    call(redis.port, &["REPLICAOF", "127.0.0.1", &other.port.to_string()]);
    let reply = client.command(r#"["SET","k","2"]"#).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json["error"].as_str().unwrap_or_default().starts_with("READONLY"), "{:?}", reply.json);
    wait_until("the READONLY log line", Duration::from_secs(5), || {
        gateway.log_lines().iter().any(|l| l.contains("answered READONLY"))
    });

    // Promoted again: the next request goes over a new connection and writes.
    call(redis.port, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(client.command(r#"["SET","k","3"]"#).await.json, json!({"result": "OK"}));
    wait_until("the reconnect log line", Duration::from_secs(5), || {
        gateway.log_lines().iter().any(|l| l.contains("reconnected to Redis"))
    });
}

#[test]
fn sentinels_with_a_password_and_names_they_do_not_know() {
    let primary = RedisServer::start();
    let sentinel = Sentinel::start_with(primary.port, "requirepass sentinel-secret\n");
    wait_until("the Sentinel to name the primary", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", sentinel.port)).is_ok()
            && matches!(
                call_all(
                    sentinel.port,
                    &[&["AUTH", "sentinel-secret"], &["SENTINEL", "get-master-addr-by-name", "mymaster"]]
                ),
                Reply::Array(_)
            )
    });
    let url = format!("redis+sentinel://127.0.0.1:{}/mymaster", sentinel.port);
    let gateway = Gateway::start_with(&url, &["--sentinel-password", "sentinel-secret"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reply = runtime.block_on(Client::new(&gateway).command(r#"["SET","through","sentinel"]"#));
    assert_eq!(reply.json, json!({"result": "OK"}));
    assert_eq!(text(&call(primary.port, &["GET", "through"])), "sentinel");

    // Without the Sentinel's password, or with a name it does not monitor: one clear line.
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_redis-rest-gateway"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("GATEWAY_TOKEN", "t")
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(&["--redis", &url]);
    assert!(stderr.contains("no Sentinel named the primary") && stderr.contains("NOAUTH"), "{stderr}");
    let unknown = format!("redis+sentinel://127.0.0.1:{}/othermaster", sentinel.port);
    let stderr = run(&["--redis", &unknown, "--sentinel-password", "sentinel-secret"]);
    assert!(stderr.contains("does not monitor that name"), "{stderr}");
}
