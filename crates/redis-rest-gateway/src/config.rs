//! Command-line flags, their environment variables, and the Redis URL.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Upstash's Redis REST protocol in front of any Redis server.
#[derive(Debug, Clone, Parser)]
#[command(name = "redis-rest-gateway", version, about, long_about = None)]
pub struct Args {
    /// Address to listen on (loopback unless you say otherwise).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Redis to forward to: redis://[user:password@]host[:port][/db] or unix:///path/redis.sock[?db=N].
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis: String,

    /// Bearer token clients must present (`Authorization: Bearer T` or `?_token=T`). Required.
    #[arg(long, env = "GATEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// How long a request waits for Redis before it gets a 504, in milliseconds.
    #[arg(long, env = "GATEWAY_REDIS_TIMEOUT_MS", default_value_t = 10_000)]
    pub redis_timeout_ms: u64,

    /// Largest request body accepted, in bytes (Upstash's limit is 10 MB).
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub redis: RedisTarget,
    pub token: String,
    pub redis_timeout: Duration,
    pub max_body_bytes: usize,
}

impl Config {
    /// Checks the parsed flags; the error is one line fit to print before exiting.
    pub fn from_args(args: Args) -> Result<Config, String> {
        let token = match args.token {
            Some(t) if !t.is_empty() => t,
            _ => {
                return Err(
                    "no token: pass --token or set GATEWAY_TOKEN (the gateway never runs without one)".into(),
                )
            }
        };
        let listen: SocketAddr = args
            .listen
            .parse()
            .map_err(|e| format!("--listen {:?} is not an address like 127.0.0.1:8080: {e}", args.listen))?;
        let redis = RedisTarget::parse(&args.redis)?;
        if args.redis_timeout_ms == 0 {
            return Err("--redis-timeout-ms must be above 0".into());
        }
        Ok(Config {
            listen,
            redis,
            token,
            redis_timeout: Duration::from_millis(args.redis_timeout_ms),
            max_body_bytes: args.max_body_bytes,
        })
    }
}

/// Where Redis is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub address: RedisAddress,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddress {
    Tcp { host: String, port: u16 },
    Unix(String),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self)
    }
}

/// The URL with the password hidden, for logs.
impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_string(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        match &self.address {
            RedisAddress::Tcp { host, port } => {
                write!(f, "redis://{auth}{host}:{port}/{}", self.db)
            }
            RedisAddress::Unix(path) => write!(f, "unix://{auth}{path}?db={}", self.db),
        }
    }
}

fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned()
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let bad = |why: &str| format!("--redis {url:?}: {why}");
        if url.starts_with("rediss://") {
            return Err(bad(
                "TLS (rediss://) is not supported; run the gateway next to Redis or behind a TLS tunnel",
            ));
        }
        let (is_unix, rest) = if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("unix://").or_else(|| url.strip_prefix("redis+unix://")) {
            (true, rest)
        } else {
            return Err(bad("expected redis://host:port[/db] or unix:///path"));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => {
                    let user = decode(user);
                    ((!user.is_empty()).then_some(user), Some(decode(pass)))
                }
                None => (Some(decode(u)), None),
            },
        };
        let mut db = 0u32;
        let address = if is_unix {
            if hostpart.is_empty() {
                return Err(bad("no socket path"));
            }
            RedisAddress::Unix(decode(hostpart))
        } else {
            let (hostport, path) = match hostpart.split_once('/') {
                Some((hp, p)) => (hp, p),
                None => (hostpart, ""),
            };
            if !path.is_empty() {
                db = path.parse().map_err(|_| bad("the path must be a database number"))?;
            }
            let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
                let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                    None => 6379,
                };
                (h.to_string(), port)
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                    None => (hostport.to_string(), 6379),
                }
            };
            let host = if host.is_empty() { "127.0.0.1".to_string() } else { host };
            RedisAddress::Tcp { host, port }
        };
        if let Some(query) = query {
            for pair in query.split('&') {
                if let Some(v) = pair.strip_prefix("db=") {
                    db = v.parse().map_err(|_| bad("db= must be a number"))?;
                }
            }
        }
        Ok(RedisTarget { address, username, password, db })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_urls() {
        let t = RedisTarget::parse("redis://127.0.0.1:6390").unwrap();
        assert_eq!(t.address, RedisAddress::Tcp { host: "127.0.0.1".into(), port: 6390 });
        assert_eq!((t.username, t.password, t.db), (None, None, 0));

        let t = RedisTarget::parse("redis://:p%40ss@localhost/3").unwrap();
        assert_eq!(t.address, RedisAddress::Tcp { host: "localhost".into(), port: 6379 });
        assert_eq!((t.username, t.password.as_deref(), t.db), (None, Some("p@ss"), 3));

        let t = RedisTarget::parse("redis://alice:pw@[::1]:7000/1").unwrap();
        assert_eq!(t.address, RedisAddress::Tcp { host: "::1".into(), port: 7000 });
        assert_eq!(t.username.as_deref(), Some("alice"));
        assert_eq!(t.to_string(), "redis://alice:***@::1:7000/1");

        let t = RedisTarget::parse("unix:///tmp/r.sock?db=2").unwrap();
        assert_eq!(t.address, RedisAddress::Unix("/tmp/r.sock".into()));
        assert_eq!(t.db, 2);

        assert!(RedisTarget::parse("rediss://h:1").is_err());
        assert!(RedisTarget::parse("http://h:1").is_err());
        assert!(RedisTarget::parse("redis://h:notaport").is_err());
    }

    #[test]
    fn refuses_to_run_without_a_token() {
        let args = Args::parse_from(["redis-rest-gateway"]);
        // The environment may hold GATEWAY_TOKEN; only judge the flag-less, env-less case.
        if std::env::var_os("GATEWAY_TOKEN").is_none() {
            assert!(Config::from_args(args).unwrap_err().contains("no token"));
        }
        let args = Args::parse_from(["redis-rest-gateway", "--token", ""]);
        assert!(Config::from_args(args).is_err());
    }
}
