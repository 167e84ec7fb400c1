//! TLS on both sides, against real servers: a `redis-server` listening only on `--tls-port`
//! and requiring client certificates, with a CA made for the test; and the gateway's own HTTPS
//! listener, its certificate replaced on SIGHUP.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::{Ca, TempDir};
use common::{signal, Client, Gateway, RedisServer, TOKEN};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Redis that speaks only TLS and wants a client certificate signed by `ca`.
fn tls_redis(dir: &TempDir, ca: &Ca) -> RedisServer {
    let ca_file = ca.write(dir, "ca.crt");
    let (cert, key) = ca.server(&["localhost", "127.0.0.1"]).write(dir, "redis");
    let s = |p: &Path| p.display().to_string();
    RedisServer::start_tls(&[
        "--tls-cert-file".into(),
        s(&cert),
        "--tls-key-file".into(),
        s(&key),
        "--tls-ca-cert-file".into(),
        s(&ca_file),
        "--tls-auth-clients".into(),
        "yes".into(),
    ])
}

/// Runs the gateway expecting it to refuse to start; returns its stderr.
fn fails_to_start(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_redis-rest-gateway"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("GATEWAY_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run gateway");
    assert!(!output.status.success(), "started although it should not: {args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn rediss_with_a_client_certificate() {
    let dir = TempDir::new("rediss");
    let ca = Ca::new("test redis CA");
    let redis = tls_redis(&dir, &ca);
    let ca_file = dir.path("ca.crt").display().to_string();
    let (client_cert, client_key) = ca.client("gateway").write(&dir, "client");
    let (client_cert, client_key) = (client_cert.display().to_string(), client_key.display().to_string());
    let tls_flags =
        ["--redis-ca-file", &ca_file, "--redis-client-cert", &client_cert, "--redis-client-key", &client_key];

    let url = format!("rediss://localhost:{}", redis.port);
    let gateway = Gateway::start_with(&url, &tls_flags);
    let client = Client::new(&gateway);
    assert_eq!(client.command(r#"["SET","over","tls"]"#).await.json, json!({"result": "OK"}));
    assert_eq!(client.command(r#"["GET","over"]"#).await.json, json!({"result": "tls"}));
    assert!(gateway
        .log_lines()
        .iter()
        .any(|l| l.contains(&format!("(redis rediss://localhost:{}/0)", redis.port))));

    // By IP, with the name to verify (and send as SNI) given apart.
    let by_ip = format!("rediss://127.0.0.1:{}", redis.port);
    let mut flags = tls_flags.to_vec();
    flags.extend(["--redis-tls-server-name", "localhost"]);
    let gateway = Gateway::start_with(&by_ip, &flags);
    assert_eq!(Client::new(&gateway).command(r#"["GET","over"]"#).await.json, json!({"result": "tls"}));

    // A name the certificate does not carry is refused.
    let mut args = vec!["--redis", by_ip.as_str()];
    args.extend(tls_flags);
    args.extend(["--redis-tls-server-name", "elsewhere.example"]);
    let stderr = fails_to_start(&args);
    assert!(stderr.contains("cannot reach Redis") && stderr.contains("certificate"), "{stderr}");

    // Without the client certificate Redis ends the handshake.
    let stderr = fails_to_start(&["--redis", &url, "--redis-ca-file", &ca_file]);
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");

    // The platform's roots do not trust the test CA.
    let stderr = fails_to_start(&[
        "--redis",
        &url,
        "--redis-client-cert",
        &client_cert,
        "--redis-client-key",
        &client_key,
    ]);
    assert!(stderr.contains("certificate"), "{stderr}");

    // Plain redis:// to a TLS port fails instead of hanging.
    let stderr = fails_to_start(&[
        "--redis",
        &format!("redis://127.0.0.1:{}", redis.port),
        "--redis-timeout-ms",
        "2000",
    ]);
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
}

/// One HTTPS request to the gateway; returns the certificate it presented and the response.
async fn https_ping(address: &str, ca: &Ca) -> (Vec<u8>, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let body = r#"["PING"]"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    (presented, response)
}

fn wait_for_log(gateway: &Gateway, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.log_lines().iter().filter(|l| l.contains(needle)).count() < count {
        assert!(Instant::now() < deadline, "no {needle:?} in {:?}", gateway.log_lines());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn https_listener_reloads_its_certificate_on_sighup() {
    let dir = TempDir::new("https");
    let ca = Ca::new("test gateway CA");
    let first = ca.server(&["localhost"]);
    let (cert, key) = first.write(&dir, "gateway");
    let redis = RedisServer::start();
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let gateway = Gateway::start_with(&redis.url(), &["--tls-cert", &cert_s, "--tls-key", &key_s]);
    let address = gateway.url.strip_prefix("https://").expect("an https:// URL").to_string();

    let (presented, response) = https_ping(&address, &ca).await;
    assert_eq!(presented, first.der);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"result":"PONG"}"#), "{response}");

    // Plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::Client::new().get(format!("http://{address}/ping")).send().await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status().as_u16() != 200));

    let second = ca.server(&["localhost"]);
    second.write(&dir, "gateway");
    signal(gateway.pid(), "HUP");
    wait_for_log(&gateway, "SIGHUP: reloaded", 1);
    let (presented, response) = https_ping(&address, &ca).await;
    assert_eq!(presented, second.der);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // A broken file on the next SIGHUP keeps the certificate in use.
    dir.write("gateway.crt", "not a certificate");
    signal(gateway.pid(), "HUP");
    wait_for_log(&gateway, "SIGHUP: kept the previous TLS certificate", 1);
    let (presented, _) = https_ping(&address, &ca).await;
    assert_eq!(presented, second.der);
}
