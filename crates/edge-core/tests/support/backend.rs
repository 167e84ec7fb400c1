//! A real redis-server with the project's redis-rest-gateway in front of it, on free loopback
//! ports, killed when dropped. Needs `target/release/redis-rest-gateway` (or `GATEWAY_BIN`;
//! `scripts/test.sh` builds it first) and `redis-server` on the PATH.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const TOKEN: &str = "backend-test-token";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on yet.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn gateway_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("GATEWAY_BIN") {
        return PathBuf::from(bin);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for profile in ["release", "debug"] {
        let bin = root.join("target").join(profile).join("redis-rest-gateway");
        if bin.exists() {
            return bin;
        }
    }
    panic!("redis-rest-gateway is not built: run `cargo build --release -p redis-rest-gateway` first");
}

fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

/// Redis and the gateway; `url` is the gateway's, authorised by [`TOKEN`].
pub struct Backend {
    pub url: String,
    _redis: Killed,
    _gateway: Killed,
}

pub fn start() -> Backend {
    let redis_port = free_port();
    let redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map(Killed)
        .expect("redis-server (apt-get install redis-server)");
    wait_for_port(redis_port);
    let gateway_port = free_port();
    let gateway = Command::new(gateway_bin())
        .args([
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
            "--redis",
            &format!("redis://127.0.0.1:{redis_port}"),
            "--token",
            TOKEN,
        ])
        .stderr(Stdio::null())
        .spawn()
        .map(Killed)
        .expect("gateway");
    wait_for_port(gateway_port);
    Backend { url: format!("http://127.0.0.1:{gateway_port}"), _redis: redis, _gateway: gateway }
}
