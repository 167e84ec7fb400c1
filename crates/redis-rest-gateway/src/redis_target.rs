//! The `--redis` URL: where Redis is (one address, or Sentinels that name the primary), whether
//! the connection is TLS, and how to log in.
//!
//! - `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS
//! - `unix:///path/redis.sock[?db=N]`
//! - `redis+sentinel://[user:password@]host:port[,host:port…]/master-name[/db]`,
//!   `rediss+sentinel://…` for TLS to the Sentinels and the primary

/// Where Redis is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub endpoint: Endpoint,
    /// TLS to Redis (and to the Sentinels).
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// One server at a fixed address.
    Direct(RedisAddress),
    /// Ask these Sentinels which server is the primary of `master`; follow it when it moves.
    Sentinel { sentinels: Vec<(String, u16)>, master: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddress {
    Tcp { host: String, port: u16 },
    Unix(String),
}

impl std::fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisAddress::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            RedisAddress::Tcp { host, port } => write!(f, "{host}:{port}"),
            RedisAddress::Unix(path) => write!(f, "{path}"),
        }
    }
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
        let s = if self.tls { "s" } else { "" };
        match &self.endpoint {
            Endpoint::Direct(RedisAddress::Unix(path)) => write!(f, "unix://{auth}{path}?db={}", self.db),
            Endpoint::Direct(address) => write!(f, "redis{s}://{auth}{address}/{}", self.db),
            Endpoint::Sentinel { sentinels, master } => {
                let list: Vec<String> = sentinels
                    .iter()
                    .map(|(h, p)| RedisAddress::Tcp { host: h.clone(), port: *p }.to_string())
                    .collect();
                write!(f, "redis{s}+sentinel://{auth}{}/{master}/{}", list.join(","), self.db)
            }
        }
    }
}

fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// `host[:port]` or `[v6][:port]`; an empty host is 127.0.0.1.
pub fn parse_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| format!("bad port {p:?}"))?),
            None => (text.to_string(), default_port),
        }
    };
    let host = if host.is_empty() { "127.0.0.1".to_string() } else { host };
    Ok((host, port))
}

/// The scheme's parts: TLS or not, and which kind of endpoint follows.
enum Scheme {
    Tcp,
    Unix,
    Sentinel,
}

fn scheme(url: &str) -> Option<(Scheme, bool, &str)> {
    let table: [(&str, Scheme, bool); 6] = [
        ("redis://", Scheme::Tcp, false),
        ("rediss://", Scheme::Tcp, true),
        ("unix://", Scheme::Unix, false),
        ("redis+unix://", Scheme::Unix, false),
        ("redis+sentinel://", Scheme::Sentinel, false),
        ("rediss+sentinel://", Scheme::Sentinel, true),
    ];
    table.into_iter().find_map(|(prefix, kind, tls)| url.strip_prefix(prefix).map(|rest| (kind, tls, rest)))
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let bad = |why: &str| format!("--redis {url:?}: {why}");
        let (kind, tls, rest) = scheme(url).ok_or_else(|| {
            bad("expected redis://host:port[/db], rediss://…, unix:///path or redis+sentinel://host:port/master")
        })?;
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
        let parse_db = |text: &str| text.parse::<u32>().map_err(|_| bad("the database must be a number"));
        let endpoint = match kind {
            Scheme::Unix => {
                if hostpart.is_empty() {
                    return Err(bad("no socket path"));
                }
                Endpoint::Direct(RedisAddress::Unix(decode(hostpart)))
            }
            Scheme::Tcp => {
                let (hostport, path) = hostpart.split_once('/').unwrap_or((hostpart, ""));
                if !path.is_empty() {
                    db = parse_db(path)?;
                }
                let (host, port) = parse_host_port(hostport, 6379).map_err(|e| bad(&e))?;
                Endpoint::Direct(RedisAddress::Tcp { host, port })
            }
            Scheme::Sentinel => {
                let (hosts, path) = hostpart.split_once('/').unwrap_or((hostpart, ""));
                let (master, db_part) = path.split_once('/').unwrap_or((path, ""));
                if master.is_empty() {
                    return Err(bad("name the primary: redis+sentinel://host:port/master-name"));
                }
                if !db_part.is_empty() {
                    db = parse_db(db_part)?;
                }
                let sentinels = parse_sentinels(hosts).map_err(|e| bad(&e))?;
                Endpoint::Sentinel { sentinels, master: decode(master) }
            }
        };
        if let Some(query) = query {
            for pair in query.split('&') {
                if let Some(v) = pair.strip_prefix("db=") {
                    db = parse_db(v)?;
                }
            }
        }
        Ok(RedisTarget { endpoint, tls, username, password, db })
    }

    /// The flag form: `--sentinel host:port,… --master-name NAME` with the credentials, db and
    /// TLS of `--redis` (whose own address is then unused).
    pub fn with_sentinels(mut self, sentinels: &str, master: &str) -> Result<RedisTarget, String> {
        if master.is_empty() {
            return Err("--sentinel needs --master-name (the name the Sentinels monitor)".into());
        }
        if let Endpoint::Direct(RedisAddress::Unix(_)) = self.endpoint {
            return Err("--sentinel cannot be combined with a unix:// --redis URL".into());
        }
        let sentinels = parse_sentinels(sentinels).map_err(|e| format!("--sentinel {sentinels:?}: {e}"))?;
        self.endpoint = Endpoint::Sentinel { sentinels, master: master.to_string() };
        Ok(self)
    }
}

/// `host:port,host:port`: Sentinels listen on 26379 unless told otherwise.
fn parse_sentinels(text: &str) -> Result<Vec<(String, u16)>, String> {
    let list: Vec<(String, u16)> = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_host_port(s.trim(), 26379))
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("no Sentinel address".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Direct(RedisAddress::Tcp { host: host.into(), port })
    }

    #[test]
    fn parses_redis_urls() {
        let t = RedisTarget::parse("redis://127.0.0.1:6390").unwrap();
        assert_eq!(t.endpoint, tcp("127.0.0.1", 6390));
        assert_eq!((t.username, t.password, t.db, t.tls), (None, None, 0, false));

        let t = RedisTarget::parse("redis://:p%40ss@localhost/3").unwrap();
        assert_eq!(t.endpoint, tcp("localhost", 6379));
        assert_eq!((t.username, t.password.as_deref(), t.db), (None, Some("p@ss"), 3));

        let t = RedisTarget::parse("redis://alice:pw@[::1]:7000/1").unwrap();
        assert_eq!(t.endpoint, tcp("::1", 7000));
        assert_eq!(t.username.as_deref(), Some("alice"));
        assert_eq!(t.to_string(), "redis://alice:***@[::1]:7000/1");

        let t = RedisTarget::parse("unix:///tmp/r.sock?db=2").unwrap();
        assert_eq!(t.endpoint, Endpoint::Direct(RedisAddress::Unix("/tmp/r.sock".into())));
        assert_eq!(t.db, 2);

        assert!(RedisTarget::parse("http://h:1").is_err());
        assert!(RedisTarget::parse("redis://h:notaport").is_err());
    }

    #[test]
    fn tls_urls() {
        let t = RedisTarget::parse("rediss://default:pw@cache.example.com:6380").unwrap();
        assert!(t.tls);
        assert_eq!(t.endpoint, tcp("cache.example.com", 6380));
        assert_eq!(t.to_string(), "rediss://default:***@cache.example.com:6380/0");
    }

    #[test]
    fn sentinel_urls() {
        let t = RedisTarget::parse("redis+sentinel://:pw@10.0.0.1:26380,10.0.0.2/mymaster/2").unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Sentinel {
                sentinels: vec![("10.0.0.1".into(), 26380), ("10.0.0.2".into(), 26379)],
                master: "mymaster".into()
            }
        );
        assert_eq!((t.db, t.tls, t.password.as_deref()), (2, false, Some("pw")));
        assert_eq!(t.to_string(), "redis+sentinel://:***@10.0.0.1:26380,10.0.0.2:26379/mymaster/2");
        assert!(RedisTarget::parse("rediss+sentinel://h:1/m").unwrap().tls);
        assert!(RedisTarget::parse("redis+sentinel://h:1").is_err());
        assert!(RedisTarget::parse("redis+sentinel://h:1/").is_err());
        assert!(RedisTarget::parse("redis+sentinel://h:x/m").is_err());

        let t = RedisTarget::parse("redis://:pw@ignored/1").unwrap().with_sentinels("a:1,b", "m").unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Sentinel { sentinels: vec![("a".into(), 1), ("b".into(), 26379)], master: "m".into() }
        );
        assert_eq!(t.db, 1);
        assert!(RedisTarget::parse("redis://h").unwrap().with_sentinels("a:1", "").is_err());
        assert!(RedisTarget::parse("redis://h").unwrap().with_sentinels(" ", "m").is_err());
    }
}
