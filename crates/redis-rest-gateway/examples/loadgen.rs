//! A closed-loop load generator that records every request's raw latency (no coordinated-omission
//! correction), for bench/gateway.py. It speaks HTTP/1.1 to the gateway (or to webdis), or RESP straight to
//! Redis, with the same connections/workload semantics on both sides.
//!
//! cargo run --release -p redis-rest-gateway --example loadgen -- \
//!     --target http://127.0.0.1:8080 --token T --workload get --connections 16 --seconds 3
//! cargo run --release -p redis-rest-gateway --example loadgen -- \
//!     --target redis://127.0.0.1:6379 --workload pipeline10 --connections 16 --seconds 3
//!
//! cargo run --release -p redis-rest-gateway --example loadgen -- \
//!     --target webdis://127.0.0.1:7379 --workload get --connections 16 --seconds 3
//!
//! Prints one JSON line: requests, commands, errors, seconds, rps, cps, p50_ms, p99_ms.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redis_rest_gateway::resp::{encode_command, parse_reply, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy)]
enum Workload {
    Get,
    Set,
    Pipeline10,
}

const KEY: &str = "bench:key";
const VALUE: &str = "0123456789abcdef0123456789abcdef"; // 32 bytes, like redis-benchmark -d 32

impl Workload {
    fn commands(self) -> Vec<Vec<&'static str>> {
        match self {
            Workload::Get => vec![vec!["GET", KEY]],
            Workload::Set => vec![vec!["SET", KEY, VALUE]],
            Workload::Pipeline10 => (0..10).map(|_| vec!["GET", KEY]).collect(),
        }
    }
}

struct Options {
    target: String,
    token: String,
    workload: Workload,
    connections: usize,
    seconds: f64,
    warmup: f64,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        target: String::new(),
        token: String::new(),
        workload: Workload::Get,
        connections: 16,
        seconds: 3.0,
        warmup: 0.5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--target" => options.target = value,
            "--token" => options.token = value,
            "--workload" => {
                options.workload = match value.as_str() {
                    "get" => Workload::Get,
                    "set" => Workload::Set,
                    "pipeline10" => Workload::Pipeline10,
                    other => return Err(format!("unknown workload {other}")),
                }
            }
            "--connections" => options.connections = value.parse().map_err(|e| format!("{e}"))?,
            "--seconds" => options.seconds = value.parse().map_err(|e| format!("{e}"))?,
            "--warmup" => options.warmup = value.parse().map_err(|e| format!("{e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.target.starts_with("webdis://") && matches!(options.workload, Workload::Pipeline10) {
        return Err("webdis has no pipeline endpoint".into());
    }
    if options.target.is_empty() {
        return Err("--target http://HOST:PORT, redis://HOST:PORT or webdis://HOST:PORT is required".into());
    }
    Ok(options)
}

/// Builds the bytes one request sends, and how to recognise its complete answer.
fn request_bytes(options: &Options) -> (String, Vec<u8>, bool) {
    let commands = options.workload.commands();
    if let Some(addr) = options.target.strip_prefix("redis://") {
        let mut out = Vec::new();
        for command in &commands {
            let args: Vec<Bytes> = command.iter().map(|a| Bytes::from(a.to_string())).collect();
            encode_command(&args, &mut out);
        }
        (addr.trim_end_matches('/').to_string(), out, false)
    } else if let Some(addr) = options.target.strip_prefix("webdis://") {
        // webdis (a C HTTP front for Redis): the command in the path, one per request.
        let addr = addr.trim_end_matches('/').to_string();
        let path = commands[0].join("/");
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        (addr, request.into_bytes(), true)
    } else {
        let addr = options.target.trim_start_matches("http://").trim_end_matches('/').to_string();
        let json = |c: &Vec<&str>| {
            format!("[{}]", c.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(","))
        };
        let (path, body) = match options.workload {
            Workload::Pipeline10 => {
                ("/pipeline", format!("[{}]", commands.iter().map(json).collect::<Vec<_>>().join(",")))
            }
            _ => ("/", json(&commands[0])),
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            options.token,
            body.len()
        );
        (addr, request.into_bytes(), true)
    }
}

/// Reads one HTTP response (Content-Length framed); returns whether it was a 200.
async fn read_http(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<bool> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let ok = head.starts_with("HTTP/1.1 200");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            while buf.len() < total {
                if stream.read_buf(buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            let _ = buf.split_to(total);
            return Ok(ok);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Reads `count` RESP replies; returns whether none was an error.
async fn read_resp(stream: &mut TcpStream, buf: &mut BytesMut, count: usize) -> std::io::Result<bool> {
    let mut ok = true;
    let mut seen = 0;
    while seen < count {
        match parse_reply(buf) {
            Ok(Some(reply)) => {
                ok &= !matches!(reply, Reply::Error(_));
                seen += 1;
            }
            Ok(None) => {
                if stream.read_buf(buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
    Ok(ok)
}

struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn connection_loop(
    addr: String,
    request: Vec<u8>,
    http: bool,
    count: usize,
    record_from: Instant,
    stop_at: Instant,
) -> std::io::Result<Tally> {
    let mut stream = TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut tally = Tally { latencies_us: Vec::with_capacity(200_000), errors: 0 };
    loop {
        let started = Instant::now();
        if started >= stop_at {
            return Ok(tally);
        }
        stream.write_all(&request).await?;
        let ok = if http {
            read_http(&mut stream, &mut buf).await?
        } else {
            read_resp(&mut stream, &mut buf, count).await?
        };
        if started >= record_from {
            tally.latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
            if !ok {
                tally.errors += 1;
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(why) => {
            eprintln!("loadgen: {why}");
            std::process::exit(2);
        }
    };
    // One thread, like redis-benchmark: the load tool takes one core at most.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (addr, request, http) = request_bytes(&options);
    let count = options.workload.commands().len();
    let result = runtime.block_on(async {
        let start = Instant::now();
        let record_from = start + Duration::from_secs_f64(options.warmup);
        let stop_at = record_from + Duration::from_secs_f64(options.seconds);
        let tasks: Vec<_> = (0..options.connections)
            .map(|_| {
                tokio::spawn(connection_loop(
                    addr.clone(),
                    request.clone(),
                    http,
                    count,
                    record_from,
                    stop_at,
                ))
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            match task.await {
                Ok(Ok(tally)) => {
                    all.extend(tally.latencies_us);
                    errors += tally.errors;
                }
                Ok(Err(e)) => return Err(format!("connection failed: {e}")),
                Err(e) => return Err(format!("task failed: {e}")),
            }
        }
        Ok((all, errors))
    });
    let (mut latencies, errors) = match result {
        Ok(r) => r,
        Err(why) => {
            eprintln!("loadgen: {why}");
            std::process::exit(1);
        }
    };
    latencies.sort_unstable();
    let requests = latencies.len() as f64;
    let rps = requests / options.seconds;
    println!(
        "{{\"requests\":{},\"commands\":{},\"errors\":{},\"seconds\":{},\"rps\":{:.0},\"cps\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        latencies.len(),
        latencies.len() * count,
        errors,
        options.seconds,
        rps,
        rps * count as f64,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0)
    );
}
