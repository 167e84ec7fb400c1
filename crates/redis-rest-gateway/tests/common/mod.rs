//! Test services: a real `redis-server` on a spare port and the built gateway binary in
//! front of it. Both are killed when dropped.

#![allow(dead_code)]

pub mod certs;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token-0123456789";

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn redis_server_binary() -> String {
    if let Ok(bin) = std::env::var("REDIS_SERVER_BIN") {
        return bin;
    }
    if std::path::Path::new("/usr/bin/redis-server").exists() {
        "/usr/bin/redis-server".into()
    } else {
        "redis-server".into()
    }
}

/// A throwaway redis-server (no persistence).
pub struct RedisServer {
    pub port: u16,
    /// Extra arguments after the defaults (later ones win in Redis's config).
    extra: Vec<String>,
    /// Started with TLS only: ready once the port accepts connections (no plain PING).
    tls_only: bool,
    /// Its working directory: a replica writes the primary's snapshot there.
    dir: certs::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// With extra `redis-server` arguments (e.g. `--replicaof`).
    pub fn start_with(extra: &[String]) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            extra: extra.to_vec(),
            tls_only: false,
            dir: certs::TempDir::new("redis"),
            child: None,
        };
        server.restart();
        server
    }

    /// TLS only, on `port` (`--port 0 --tls-port port`), with `extra` naming the cert files.
    pub fn start_tls(extra: &[String]) -> RedisServer {
        let port = free_port();
        let mut args: Vec<String> =
            ["--port", "0", "--tls-port", &port.to_string()].map(String::from).to_vec();
        args.extend_from_slice(extra);
        let mut server =
            RedisServer { port, extra: args, tls_only: true, dir: certs::TempDir::new("redis"), child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis running").id()
    }

    /// Starts (again) on the same port and waits for PING.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let child = Command::new(redis_server_binary())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir.0)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it installed?)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(if self.tls_only { self.accepts() } else { self.answers_ping() }) {
            assert!(Instant::now() < deadline, "redis-server did not answer on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn accepts(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_millis(500)));
        if socket.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        socket.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The gateway binary, listening on a port the OS picked.
pub struct Gateway {
    pub url: String,
    child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    pub fn start(redis_url: &str) -> Gateway {
        Gateway::start_with(redis_url, &[])
    }

    pub fn start_with(redis_url: &str, extra_args: &[&str]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_redis-rest-gateway"))
            .args(["--listen", "127.0.0.1:0", "--redis", redis_url])
            .args(extra_args)
            .env("GATEWAY_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gateway");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(pos) = line.find("listening on http") {
                        let url = line[pos + "listening on ".len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send(url);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("gateway did not start: {:?}", log.lock().unwrap());
            }
        };
        Gateway { url, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end (after a signal), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal to a process we started.
pub fn signal(pid: u32, name: &str) {
    let status =
        Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A response: status, headers we care about, and the body parsed as JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub json: serde_json::Value,
    pub sync_token: Option<String>,
    pub content_type: Option<String>,
}

pub struct Client {
    pub base: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(gateway: &Gateway) -> Client {
        Client { base: gateway.url.clone(), http: reqwest::Client::new() }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let sync_token = header("upstash-sync-token");
        let content_type = header("content-type");
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
        Reply { status, json, sync_token, content_type }
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// `POST /` with a JSON body, authenticated.
    pub async fn command(&self, body: &str) -> Reply {
        self.send(self.post("/").body(body.to_string())).await
    }

    pub async fn command_b64(&self, body: &str) -> Reply {
        self.send(self.post("/").header("Upstash-Encoding", "base64").body(body.to_string())).await
    }

    pub async fn pipeline(&self, body: &str) -> Reply {
        self.send(self.post("/pipeline").body(body.to_string())).await
    }

    pub async fn transaction(&self, body: &str) -> Reply {
        self.send(self.post("/multi-exec").body(body.to_string())).await
    }
}

/// redis-server + gateway + client, for one test.
pub struct Setup {
    pub redis: RedisServer,
    pub gateway: Gateway,
    pub client: Client,
}

pub fn setup() -> Setup {
    let redis = RedisServer::start();
    let gateway = Gateway::start(&redis.url());
    let client = Client::new(&gateway);
    Setup { redis, gateway, client }
}
