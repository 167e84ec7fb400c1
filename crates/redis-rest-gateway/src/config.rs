//! Command-line flags, their environment variables, and the validated settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::auth::Tokens;
use crate::log::LogFormat;
use crate::redis_target::RedisTarget;

/// Upstash's Redis REST protocol in front of any Redis server.
#[derive(Debug, Clone, Parser)]
#[command(name = "redis-rest-gateway", version, about, long_about = None)]
pub struct Args {
    /// Address to listen on (loopback unless you say otherwise).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Redis to forward to: redis://[user:password@]host[:port][/db], rediss://… (TLS),
    /// unix:///path/redis.sock[?db=N], or redis+sentinel://host:port[,host:port]/master-name[/db].
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis: String,

    /// Bearer token(s) with full access (`Authorization: Bearer T` or `?_token=T`). Required.
    /// Repeat the flag, or separate with commas, to accept several at once (rotation).
    #[arg(long, env = "GATEWAY_TOKEN", hide_env_values = true, value_delimiter = ',')]
    pub token: Vec<String>,

    /// Token(s) that may run only the commands Redis flags as not writing (COMMAND INFO).
    #[arg(long, env = "GATEWAY_READONLY_TOKEN", hide_env_values = true, value_delimiter = ',')]
    pub readonly_token: Vec<String>,

    /// Let server administration through (SHUTDOWN, CONFIG, DEBUG, REPLICAOF, ACL, …).
    #[arg(long, env = "GATEWAY_ALLOW_ADMIN_COMMANDS")]
    pub allow_admin_commands: bool,

    /// How long a request waits for Redis before it gets a 504, in milliseconds.
    #[arg(long, env = "GATEWAY_REDIS_TIMEOUT_MS", default_value_t = 10_000)]
    pub redis_timeout_ms: u64,

    /// Largest request body accepted, in bytes (Upstash's limit is 10 MB).
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// rediss://: PEM file of the CA(s) to trust instead of the platform's root certificates.
    #[arg(long, env = "REDIS_TLS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// rediss://: PEM client certificate (chain) for mutual TLS; needs --redis-client-key.
    #[arg(long, env = "REDIS_TLS_CLIENT_CERT")]
    pub redis_client_cert: Option<PathBuf>,

    /// rediss://: PEM private key of --redis-client-cert.
    #[arg(long, env = "REDIS_TLS_CLIENT_KEY")]
    pub redis_client_key: Option<PathBuf>,

    /// rediss://: the name to send (SNI) and verify, when it is not the URL's host.
    #[arg(long, env = "REDIS_TLS_SERVER_NAME")]
    pub redis_tls_server_name: Option<String>,

    /// Sentinels to ask for the primary (host:port,…), instead of a redis+sentinel:// URL.
    #[arg(long, env = "REDIS_SENTINELS")]
    pub sentinel: Option<String>,

    /// The primary's name as the Sentinels know it (with --sentinel).
    #[arg(long, env = "REDIS_MASTER_NAME")]
    pub master_name: Option<String>,

    /// Password for the Sentinels themselves, if they require one.
    #[arg(long, env = "REDIS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub sentinel_password: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (reloaded on SIGHUP); needs --tls-key.
    #[arg(long, env = "GATEWAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert (reloaded on SIGHUP).
    #[arg(long, env = "GATEWAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve GET /metrics (Prometheus) to requests bearing this token.
    #[arg(long, env = "GATEWAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Serve /metrics without a token on this separate address (keep it private).
    #[arg(long, env = "GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// Worker threads (default: one per CPU). 1 runs everything on one thread, which saves the
    /// hand-offs between threads when the gateway shares a small machine with Redis.
    #[arg(long, env = "GATEWAY_THREADS")]
    pub threads: Option<usize>,

    /// Log lines as text or as one JSON object per line.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

/// How to reach Redis over TLS, beyond the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTlsOptions {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// The HTTPS listener's certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub redis: RedisTarget,
    pub redis_tls: RedisTlsOptions,
    pub sentinel_password: Option<String>,
    pub tokens: Tokens,
    pub allow_admin_commands: bool,
    pub redis_timeout: Duration,
    pub max_body_bytes: usize,
    pub https: Option<HttpsFiles>,
    pub metrics_token: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub threads: Option<usize>,
}

fn address(flag: &str, text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| format!("{flag} {text:?} is not an address like 127.0.0.1:8080: {e}"))
}

fn non_empty(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
}

impl Config {
    /// Checks the parsed flags; the error is one line fit to print before exiting.
    pub fn from_args(args: Args) -> Result<Config, String> {
        let full = non_empty(args.token);
        if full.is_empty() {
            return Err(
                "no token: pass --token or set GATEWAY_TOKEN (the gateway never runs without one)".into()
            );
        }
        let tokens = Tokens::new(full, non_empty(args.readonly_token))?;
        let listen = address("--listen", &args.listen)?;
        let mut redis = RedisTarget::parse(&args.redis)?;
        match (&args.sentinel, &args.master_name) {
            (Some(sentinels), master) => {
                redis = redis.with_sentinels(sentinels, master.as_deref().unwrap_or(""))?;
            }
            (None, Some(_)) => return Err("--master-name needs --sentinel host:port,…".into()),
            (None, None) => {}
        }
        if args.redis_timeout_ms == 0 {
            return Err("--redis-timeout-ms must be above 0".into());
        }
        let redis_tls = RedisTlsOptions {
            ca_file: args.redis_ca_file,
            client_cert: args.redis_client_cert,
            client_key: args.redis_client_key,
            server_name: args.redis_tls_server_name,
        };
        if redis_tls.client_cert.is_some() != redis_tls.client_key.is_some() {
            return Err("--redis-client-cert and --redis-client-key go together".into());
        }
        if !redis.tls && redis_tls != RedisTlsOptions::default() {
            return Err("the --redis-ca-file/--redis-client-*/--redis-tls-server-name flags need a \
                        rediss:// (or rediss+sentinel://) URL"
                .into());
        }
        let https = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(HttpsFiles { cert, key }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let metrics_token = args.metrics_token.filter(|t| !t.is_empty());
        if metrics_token.as_deref().is_some_and(|t| tokens.contains(t)) {
            return Err("--metrics-token must differ from the Redis tokens".into());
        }
        let metrics_listen =
            args.metrics_listen.as_deref().map(|a| address("--metrics-listen", a)).transpose()?;
        Ok(Config {
            listen,
            redis,
            redis_tls,
            sentinel_password: args.sentinel_password.filter(|p| !p.is_empty()),
            tokens,
            allow_admin_commands: args.allow_admin_commands,
            redis_timeout: Duration::from_millis(args.redis_timeout_ms),
            max_body_bytes: args.max_body_bytes,
            https,
            metrics_token,
            metrics_listen,
            threads: match args.threads {
                Some(0) => return Err("--threads must be at least 1".into()),
                other => other,
            },
            log_format: match args.log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["redis-rest-gateway"];
        all.extend_from_slice(args);
        Config::from_args(Args::parse_from(all))
    }

    #[test]
    fn refuses_to_run_without_a_token() {
        // The environment may hold GATEWAY_TOKEN; only judge the flag-less, env-less case.
        if std::env::var_os("GATEWAY_TOKEN").is_none() {
            assert!(config(&[]).unwrap_err().contains("no token"));
        }
        assert!(config(&["--token", ""]).is_err());
    }

    #[test]
    fn several_tokens_and_readonly_ones() {
        let c = config(&["--token", "a,b", "--token", "c", "--readonly-token", "r"]).unwrap();
        assert!(c.tokens.contains("a") && c.tokens.contains("b") && c.tokens.contains("c"));
        assert!(c.tokens.contains("r"));
        assert!(config(&["--token", "a", "--readonly-token", "a"]).unwrap_err().contains("both"));
        assert!(config(&["--token", "a", "--metrics-token", "a"]).is_err());
    }

    #[test]
    fn flags_that_go_together() {
        assert!(config(&["--token", "t", "--tls-cert", "c.pem"]).is_err());
        assert!(config(&["--token", "t", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap()
            .https
            .is_some());
        assert!(config(&["--token", "t", "--redis-ca-file", "ca.pem"]).unwrap_err().contains("rediss://"));
        assert!(config(&["--token", "t", "--redis", "rediss://h", "--redis-client-cert", "c"]).is_err());
        assert!(config(&["--token", "t", "--master-name", "m"]).is_err());
        let c = config(&["--token", "t", "--sentinel", "a:1", "--master-name", "m"]).unwrap();
        assert_eq!(c.redis.to_string(), "redis+sentinel://a:1/m/0");
        assert!(config(&["--token", "t", "--metrics-listen", "nope"]).is_err());
        assert!(config(&["--token", "t", "--threads", "0"]).is_err());
        assert_eq!(config(&["--token", "t", "--threads", "1"]).unwrap().threads, Some(1));
    }
}
