//! The worker's configuration (docs §1), typed and validated once per isolate.
//!
//! Values come from a lookup function (wrangler `[vars]`, secrets, `.dev.vars`), so this module
//! never sees `worker`. A malformed value is a [`ConfigError`] naming the variable and what is
//! wrong with it; a secret's value never appears in an error.

use std::fmt;

use crate::keyspace::Namespace;
use crate::rules::CacheRules;
use crate::session::SessionSettings;

/// Defaults, as docs §1.2 states them.
pub const DEFAULT_NAMESPACE: &str = "edge";
pub const DEFAULT_SESSION_COOKIE_NAME: &str = "__Host-session";
pub const DEFAULT_SESSION_TTL_S: u64 = 1_209_600;
pub const DEFAULT_SESSION_ABSOLUTE_TTL_S: u64 = 2_592_000;
pub const DEFAULT_ORIGIN_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 1_048_576;
/// Heuristic freshness is off unless `CACHE_HEURISTIC_PERCENT` is set.
pub const DEFAULT_HEURISTIC_PERCENT: u64 = 0;
pub const DEFAULT_SESSION_MAX_BYTES: usize = 16_384;
/// How long a session carried in the cookie during a store outage is trusted (docs §5.11).
pub const DEFAULT_SESSION_FALLBACK_TTL_S: u64 = 900;
/// The per-isolate L1 (docs §4.15): 4 MiB of the isolate's 128 MB, each copy trusted for 1 s
/// after Redis confirmed it (the purge propagation time, docs §8.1).
pub const DEFAULT_L1_BYTES: u64 = 4 * 1_048_576;
pub const DEFAULT_L1_TTL_MS: u64 = 1_000;
/// Early refresh's β at most (docs §4.16): larger refreshes so early that it only costs fetches.
pub const MAX_EARLY_REFRESH_BETA: u32 = 100;

/// A configuration variable that is present but wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginUrl {
    /// `ORIGIN_URL` unset: forward to the request's own URL (the worker runs on a zone route).
    RequestUrl,
    /// `scheme://host[:port]`, without a trailing slash; the request's path and query are
    /// appended.
    Fixed(String),
}

/// Redis over HTTP, when configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisRest {
    pub url: String,
    pub token: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub origin: OriginUrl,
    /// `None`: the embedded memory store.
    pub redis: Option<RedisRest>,
    /// `SESSION_REDIS_REST_URL`/`_TOKEN`: sessions on their own store. `None`: on `redis`'s.
    pub session_redis: Option<RedisRest>,
    pub namespace: Namespace,
    pub rules: CacheRules,
    /// Present when `SESSION_SECRET` is set.
    pub session: Option<SessionSettings>,
    pub admin_token: Option<String>,
    pub origin_timeout_ms: u64,
    pub redis_timeout_ms: u64,
    pub lock_wait_ms: u64,
    pub cache_max_bytes: u64,
    /// Percent of `Date − Last-Modified` a response without explicit freshness is fresh for
    /// (RFC 9111 §4.2.2); 0 turns heuristic freshness off.
    pub heuristic_percent: u64,
    /// `CACHE_L1_BYTES`: the per-isolate L1's capacity; 0 turns it off.
    pub l1_bytes: u64,
    /// `CACHE_L1_TTL_MS`: how long an L1 copy is served without asking Redis.
    pub l1_ttl_ms: u64,
    /// `CACHE_EARLY_REFRESH_BETA`: XFetch's β; 0 turns early refresh off.
    pub early_refresh_beta: f64,
}

impl Config {
    /// Reads and validates every variable. `lookup(name)` answers the raw value, if set; an
    /// empty string counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let origin = match get("ORIGIN_URL") {
            None => OriginUrl::RequestUrl,
            Some(raw) => {
                OriginUrl::Fixed(parse_origin_url(&raw).map_err(|reason| err("ORIGIN_URL", reason))?)
            }
        };

        let redis = redis_rest(&get, "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN")?;
        // Sessions on a store of their own (docs §5.10), so cache pressure cannot evict them.
        let session_redis = redis_rest(&get, "SESSION_REDIS_REST_URL", "SESSION_REDIS_REST_TOKEN")?;

        let namespace = match get("CACHE_NAMESPACE") {
            None => Namespace::new(DEFAULT_NAMESPACE),
            Some(ns) => {
                let ok = ns.len() <= 64
                    && ns.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    return Err(err(
                        "CACHE_NAMESPACE",
                        format!("{ns:?} must be 1-64 characters of A-Z a-z 0-9 - _ ."),
                    ));
                }
                Namespace::new(&ns)
            }
        };

        let rules = match get("CACHE_RULES") {
            None => CacheRules::default(),
            Some(json) => CacheRules::parse(&json).map_err(|e| err("CACHE_RULES", e.to_string()))?,
        };
        let rules = rules.keeping_marketing_params(flag(&get, "CACHE_KEEP_MARKETING_PARAMS")?);

        let origin_timeout_ms = number(&get, "ORIGIN_TIMEOUT_MS", DEFAULT_ORIGIN_TIMEOUT_MS, 1)?;
        let redis_timeout_ms = number(&get, "REDIS_TIMEOUT_MS", DEFAULT_REDIS_TIMEOUT_MS, 1)?;
        let lock_wait_ms = number(&get, "CACHE_LOCK_WAIT_MS", origin_timeout_ms.saturating_add(1_000), 0)?;
        let cache_max_bytes = number(&get, "CACHE_MAX_BYTES", DEFAULT_CACHE_MAX_BYTES, 0)?;
        let heuristic_percent = number(&get, "CACHE_HEURISTIC_PERCENT", DEFAULT_HEURISTIC_PERCENT, 0)?;
        if heuristic_percent > 100 {
            return Err(err(
                "CACHE_HEURISTIC_PERCENT",
                format!("{heuristic_percent} is above the maximum of 100"),
            ));
        }

        let l1_bytes = number(&get, "CACHE_L1_BYTES", DEFAULT_L1_BYTES, 0)?;
        let l1_ttl_ms = number(&get, "CACHE_L1_TTL_MS", DEFAULT_L1_TTL_MS, 1)?;
        let early_refresh_beta = match get("CACHE_EARLY_REFRESH_BETA") {
            None => crate::engine::DEFAULT_EARLY_REFRESH_BETA,
            Some(raw) => parse_beta(&raw).map_err(|reason| err("CACHE_EARLY_REFRESH_BETA", reason))?,
        };

        let session = match get("SESSION_SECRET") {
            None => None,
            Some(secret) => {
                let cookie_name =
                    get("SESSION_COOKIE_NAME").unwrap_or_else(|| DEFAULT_SESSION_COOKIE_NAME.into());
                let idle_ttl_s = number(&get, "SESSION_TTL", DEFAULT_SESSION_TTL_S, 1)?;
                let absolute_ttl_s = number(&get, "SESSION_ABSOLUTE_TTL", DEFAULT_SESSION_ABSOLUTE_TTL_S, 1)?;
                let max_bytes = number(&get, "SESSION_MAX_BYTES", DEFAULT_SESSION_MAX_BYTES as u64, 2)?;
                let expire_at_browser_close = flag(&get, "SESSION_EXPIRE_AT_BROWSER_CLOSE")?;
                let save_every_request = flag(&get, "SESSION_SAVE_EVERY_REQUEST")?;
                let same_site = get("SESSION_COOKIE_SAMESITE");
                let domain = get("SESSION_COOKIE_DOMAIN");
                let fallback_ttl_s = number(&get, "SESSION_FALLBACK_TTL", DEFAULT_SESSION_FALLBACK_TTL_S, 0)?;
                let settings = SessionSettings::new(secret.as_bytes())
                    .and_then(|s| s.with_cookie_name(&cookie_name))
                    .and_then(|s| s.with_ttls(idle_ttl_s, absolute_ttl_s))
                    .and_then(|s| s.with_max_bytes(usize::try_from(max_bytes).unwrap_or(usize::MAX)))
                    .and_then(|s| match &same_site {
                        Some(text) => s.with_same_site(text),
                        None => Ok(s),
                    })
                    .and_then(|s| match &domain {
                        Some(text) => s.with_domain(text),
                        None => Ok(s),
                    })
                    .map(|s| s.with_lifetime_model(expire_at_browser_close, save_every_request))
                    .map(|s| s.with_fallback_ttl(fallback_ttl_s))
                    // The session module's errors name the variable and never quote the secret.
                    .map_err(|e| err(e.variable(), e.to_string()))?;
                Some(settings)
            }
        };

        Ok(Config {
            origin,
            redis,
            session_redis,
            namespace,
            rules,
            session,
            admin_token: get("ADMIN_TOKEN"),
            origin_timeout_ms,
            redis_timeout_ms,
            lock_wait_ms,
            cache_max_bytes,
            heuristic_percent,
            l1_bytes,
            l1_ttl_ms,
            early_refresh_beta,
        })
    }
}

/// A REST endpoint and its token: both or neither (the token alone is ignored). The URL may be
/// kept as a secret: errors never repeat it.
fn redis_rest(
    get: &impl Fn(&str) -> Option<String>,
    url_variable: &'static str,
    token_variable: &'static str,
) -> Result<Option<RedisRest>, ConfigError> {
    match (get(url_variable), get(token_variable)) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(err(token_variable, format!("is required when {url_variable} is set"))),
        (Some(url), Some(token)) => {
            let url = parse_http_url(&url).map_err(|_| {
                err(url_variable, "must be an absolute http(s) URL without credentials or query".into())
            })?;
            if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(err(token_variable, "contains whitespace or control characters".into()));
            }
            Ok(Some(RedisRest { url, token }))
        }
    }
}

/// A decimal β from 0 (off) to [`MAX_EARLY_REFRESH_BETA`], at most 6 decimals. Read by hand:
/// the float parser and formatter of `core` would add their weight to the wasm for one value.
fn parse_beta(raw: &str) -> Result<f64, String> {
    let text = raw.trim();
    let not_decimal = || format!("{raw:?} is not a decimal number such as 1 or 0.5");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(not_decimal());
    }
    let number = |s: &str| if s.is_empty() { Ok(0) } else { s.parse::<u32>().map_err(|_| not_decimal()) };
    let (whole, fraction_value) = (number(whole)?, number(fraction)?);
    if whole > MAX_EARLY_REFRESH_BETA || (whole == MAX_EARLY_REFRESH_BETA && fraction_value > 0) {
        return Err(format!("{text} is above the maximum of {MAX_EARLY_REFRESH_BETA}"));
    }
    let scale = 10u32.pow(fraction.len() as u32);
    Ok(f64::from(whole) + f64::from(fraction_value) / f64::from(scale))
}

fn err(variable: &'static str, reason: String) -> ConfigError {
    ConfigError { variable, reason }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    min: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(variable) else { return Ok(default) };
    let value: u64 =
        raw.trim().parse().map_err(|_| err(variable, format!("{raw:?} is not a whole number")))?;
    if value < min {
        return Err(err(variable, format!("{value} is below the minimum of {min}")));
    }
    Ok(value)
}

/// A yes/no variable: `true`/`false` or `1`/`0`, in any case (a TOML boolean in `[vars]`
/// arrives as its JSON text, `true`); unset is `false`.
fn flag(get: &impl Fn(&str) -> Option<String>, variable: &'static str) -> Result<bool, ConfigError> {
    let Some(raw) = get(variable) else { return Ok(false) };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(err(variable, format!("{raw:?} must be true or false"))),
    }
}

/// `scheme://host[:port]` with an optional trailing slash; no path, query or credentials.
fn parse_origin_url(raw: &str) -> Result<String, String> {
    let url = parse_http_url(raw)?;
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if after_scheme.contains('/') {
        return Err(format!("{raw:?} must be scheme://host[:port] without a path"));
    }
    Ok(url)
}

/// An absolute http(s) URL, returned without a trailing slash.
fn parse_http_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().map_err(|_| format!("{raw:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{raw:?} must start with http:// or https://")),
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{raw:?} has no host"));
    };
    if authority.as_str().contains('@') {
        // Never repeat credentials in an error.
        return Err("must not carry credentials (user:password@)".into());
    }
    if authority.host().is_empty() {
        return Err(format!("{raw:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{raw:?} must not have a query"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&[]).unwrap();
        assert_eq!(c.origin, OriginUrl::RequestUrl);
        assert_eq!(c.redis, None);
        assert_eq!(c.namespace.as_str(), "edge");
        assert!(c.session.is_none());
        assert_eq!(c.admin_token, None);
        assert_eq!(c.origin_timeout_ms, 30_000);
        assert_eq!(c.redis_timeout_ms, 1_000);
        assert_eq!(c.lock_wait_ms, 31_000);
        assert_eq!(c.cache_max_bytes, 1_048_576);
    }

    #[test]
    fn the_two_tiers_default_on_and_read_their_settings() {
        let c = config(&[]).unwrap();
        assert_eq!((c.l1_bytes, c.l1_ttl_ms, c.early_refresh_beta), (4_194_304, 1_000, 1.0));
        let c =
            config(&[("CACHE_L1_BYTES", "0"), ("CACHE_L1_TTL_MS", "250"), ("CACHE_EARLY_REFRESH_BETA", "0")])
                .unwrap();
        assert_eq!((c.l1_bytes, c.l1_ttl_ms, c.early_refresh_beta), (0, 250, 0.0));
        for (raw, beta) in [("2.5", 2.5), (".5", 0.5), ("3.", 3.0), ("100", 100.0), (" 0.125 ", 0.125)] {
            assert_eq!(
                config(&[("CACHE_EARLY_REFRESH_BETA", raw)]).unwrap().early_refresh_beta,
                beta,
                "{raw}"
            );
        }
        for raw in ["-1", "1e3", "inf", "NaN", ".", "1.2.3", "100.5", "1000", "0.1234567"] {
            let e = config(&[("CACHE_EARLY_REFRESH_BETA", raw)]).unwrap_err();
            assert_eq!(e.variable, "CACHE_EARLY_REFRESH_BETA", "{raw}");
        }
        assert_eq!(config(&[("CACHE_L1_TTL_MS", "0")]).unwrap_err().variable, "CACHE_L1_TTL_MS");
        assert_eq!(config(&[("CACHE_L1_BYTES", "lots")]).unwrap_err().variable, "CACHE_L1_BYTES");
    }

    #[test]
    fn lock_wait_defaults_to_origin_timeout_plus_one_second() {
        assert_eq!(config(&[("ORIGIN_TIMEOUT_MS", "5000")]).unwrap().lock_wait_ms, 6_000);
        assert_eq!(
            config(&[("ORIGIN_TIMEOUT_MS", "5000"), ("CACHE_LOCK_WAIT_MS", "100")]).unwrap().lock_wait_ms,
            100
        );
    }

    #[test]
    fn origin_url_is_scheme_host_port() {
        let c = config(&[("ORIGIN_URL", "http://127.0.0.1:9000/")]).unwrap();
        assert_eq!(c.origin, OriginUrl::Fixed("http://127.0.0.1:9000".into()));
        for bad in ["127.0.0.1:9000", "ftp://x", "http://x/path", "http://u:p@x", "not a url", "http://x?q=1"]
        {
            let e = config(&[("ORIGIN_URL", bad)]).unwrap_err();
            assert_eq!(e.variable, "ORIGIN_URL", "{bad}");
        }
        let e = config(&[("ORIGIN_URL", "http://user:hunter2@x")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = config(&[("UPSTASH_REDIS_REST_URL", "ftp://tok3n@x"), ("UPSTASH_REDIS_REST_TOKEN", "t")])
            .unwrap_err();
        assert_eq!(e.variable, "UPSTASH_REDIS_REST_URL");
        assert!(!e.to_string().contains("tok3n"), "{e}");
    }

    #[test]
    fn malformed_numbers_name_the_variable() {
        assert_eq!(config(&[]).unwrap().heuristic_percent, 0, "heuristic freshness is off by default");
        assert_eq!(config(&[("CACHE_HEURISTIC_PERCENT", "10")]).unwrap().heuristic_percent, 10);
        assert_eq!(
            config(&[("CACHE_HEURISTIC_PERCENT", "101")]).unwrap_err().variable,
            "CACHE_HEURISTIC_PERCENT"
        );
        for var in [
            "ORIGIN_TIMEOUT_MS",
            "REDIS_TIMEOUT_MS",
            "CACHE_LOCK_WAIT_MS",
            "CACHE_MAX_BYTES",
            "CACHE_HEURISTIC_PERCENT",
        ] {
            let e = config(&[(var, "ten")]).unwrap_err();
            assert_eq!(e.variable, var);
            assert!(e.to_string().contains("not a whole number"), "{e}");
            assert!(config(&[(var, "-5")]).is_err());
        }
        assert_eq!(config(&[("REDIS_TIMEOUT_MS", "0")]).unwrap_err().variable, "REDIS_TIMEOUT_MS");
    }

    #[test]
    fn redis_url_needs_its_token() {
        let e = config(&[("UPSTASH_REDIS_REST_URL", "https://x.upstash.io")]).unwrap_err();
        assert_eq!(e.variable, "UPSTASH_REDIS_REST_TOKEN");
        let c = config(&[
            ("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:8079/"),
            ("UPSTASH_REDIS_REST_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(c.redis, Some(RedisRest { url: "http://127.0.0.1:8079".into(), token: "t".into() }));
    }

    #[test]
    fn sessions_may_have_a_store_of_their_own() {
        assert_eq!(config(&[]).unwrap().session_redis, None);
        let e = config(&[("SESSION_REDIS_REST_URL", "https://s.upstash.io")]).unwrap_err();
        assert_eq!(e.variable, "SESSION_REDIS_REST_TOKEN");
        let e = config(&[("SESSION_REDIS_REST_URL", "ftp://user:pw@x"), ("SESSION_REDIS_REST_TOKEN", "t")])
            .unwrap_err();
        assert_eq!(e.variable, "SESSION_REDIS_REST_URL");
        assert!(!e.to_string().contains("pw"), "{e}");
        let e = config(&[("SESSION_REDIS_REST_URL", "https://s.io"), ("SESSION_REDIS_REST_TOKEN", "a b")])
            .unwrap_err();
        assert_eq!(e.variable, "SESSION_REDIS_REST_TOKEN");
        let c = config(&[
            ("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:8079"),
            ("UPSTASH_REDIS_REST_TOKEN", "t"),
            ("SESSION_REDIS_REST_URL", "http://127.0.0.1:8080/"),
            ("SESSION_REDIS_REST_TOKEN", "s"),
        ])
        .unwrap();
        assert_eq!(
            c.session_redis,
            Some(RedisRest { url: "http://127.0.0.1:8080".into(), token: "s".into() })
        );
        assert_eq!(c.redis.map(|r| r.token), Some("t".into()));
    }

    #[test]
    fn fallback_ttl_defaults_to_15_minutes_and_0_turns_it_off() {
        let secret = ("SESSION_SECRET", "0123456789abcdef0123456789abcdef");
        assert_eq!(config(&[secret]).unwrap().session.unwrap().fallback_ttl_s, 900);
        let c = config(&[secret, ("SESSION_FALLBACK_TTL", "60")]).unwrap();
        assert_eq!(c.session.unwrap().fallback_ttl_s, 60);
        assert_eq!(
            config(&[secret, ("SESSION_FALLBACK_TTL", "0")]).unwrap().session.unwrap().fallback_ttl_s,
            0
        );
        let e = config(&[secret, ("SESSION_FALLBACK_TTL", "soon")]).unwrap_err();
        assert_eq!(e.variable, "SESSION_FALLBACK_TTL");
    }

    #[test]
    fn short_session_secret_is_an_error_that_hides_the_secret() {
        let e = config(&[("SESSION_SECRET", "hunter2-hunter2")]).unwrap_err();
        assert_eq!(e.variable, "SESSION_SECRET");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let secret = "0123456789abcdef0123456789abcdef";
        let c = config(&[("SESSION_SECRET", secret)]).unwrap();
        let s = c.session.unwrap();
        assert_eq!(s.cookie_name, "__Host-session");
        assert_eq!((s.idle_ttl_s, s.absolute_ttl_s, s.max_bytes), (1_209_600, 2_592_000, 16_384));
        assert!(!format!("{s:?}").contains(secret));
        let c = config(&[
            ("SESSION_SECRET", secret),
            ("SESSION_COOKIE_NAME", "sid"),
            ("SESSION_TTL", "60"),
            ("SESSION_ABSOLUTE_TTL", "600"),
            ("SESSION_MAX_BYTES", "100"),
        ])
        .unwrap();
        let s = c.session.unwrap();
        assert_eq!(
            (s.cookie_name.as_str(), s.idle_ttl_s, s.absolute_ttl_s, s.max_bytes),
            ("sid", 60, 600, 100)
        );
    }

    #[test]
    fn bad_cookie_name_and_namespace_are_errors() {
        let secret = ("SESSION_SECRET", "0123456789abcdef0123456789abcdef");
        assert_eq!(
            config(&[secret, ("SESSION_COOKIE_NAME", "a b")]).unwrap_err().variable,
            "SESSION_COOKIE_NAME"
        );
        assert_eq!(config(&[("CACHE_NAMESPACE", "a:b")]).unwrap_err().variable, "CACHE_NAMESPACE");
        assert_eq!(config(&[("CACHE_NAMESPACE", "prod-eu_1")]).unwrap().namespace.as_str(), "prod-eu_1");
    }

    #[test]
    fn rule_and_session_settings_of_issue_15() {
        let secret = ("SESSION_SECRET", "0123456789abcdef0123456789abcdef");
        let defaults = config(&[secret]).unwrap();
        let s = defaults.session.unwrap();
        assert_eq!(
            (s.same_site, s.domain, s.expire_at_browser_close, s.save_every_request),
            (crate::session::SameSitePolicy::Lax, None, false, false)
        );
        let url: http::Uri = "https://a.example/p?utm_source=x&b=1".parse().unwrap();
        assert_eq!(defaults.rules.key_url(None, &url), "https://a.example/p?b=1");
        let keep = config(&[("CACHE_KEEP_MARKETING_PARAMS", "true")]).unwrap();
        assert_eq!(keep.rules.key_url(None, &url), "https://a.example/p?b=1&utm_source=x");
        let c = config(&[
            secret,
            ("SESSION_COOKIE_NAME", "__Secure-sid"),
            ("SESSION_COOKIE_SAMESITE", "Strict"),
            ("SESSION_COOKIE_DOMAIN", "example.com"),
            ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "TRUE"),
            ("SESSION_SAVE_EVERY_REQUEST", "1"),
        ])
        .unwrap();
        let s = c.session.unwrap();
        assert_eq!(
            (s.same_site, s.domain.as_deref(), s.expire_at_browser_close, s.save_every_request),
            (crate::session::SameSitePolicy::Strict, Some("example.com"), true, true)
        );
        for (vars, variable, words) in [
            (
                vec![("CACHE_KEEP_MARKETING_PARAMS", "yes please")],
                "CACHE_KEEP_MARKETING_PARAMS",
                "must be true or false",
            ),
            (
                vec![secret, ("SESSION_COOKIE_SAMESITE", "sometimes")],
                "SESSION_COOKIE_SAMESITE",
                "Lax, Strict or None",
            ),
            (vec![secret, ("SESSION_COOKIE_DOMAIN", "example.com")], "SESSION_COOKIE_DOMAIN", "__Host-"),
            (
                vec![secret, ("SESSION_COOKIE_NAME", "sid"), ("SESSION_COOKIE_DOMAIN", "http://x")],
                "SESSION_COOKIE_DOMAIN",
                "host name",
            ),
            (
                vec![secret, ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "2")],
                "SESSION_EXPIRE_AT_BROWSER_CLOSE",
                "true or false",
            ),
            (
                vec![secret, ("SESSION_SAVE_EVERY_REQUEST", "on")],
                "SESSION_SAVE_EVERY_REQUEST",
                "true or false",
            ),
        ] {
            let e = config(&vars).unwrap_err();
            assert_eq!(e.variable, variable, "{vars:?}");
            assert!(e.to_string().contains(words), "{e}");
        }
        // Without SESSION_SECRET the session variables are not read.
        assert!(config(&[("SESSION_COOKIE_SAMESITE", "sometimes")]).is_ok());
    }

    #[test]
    fn bad_cache_rules_name_the_variable() {
        let e = config(&[("CACHE_RULES", "{not json")]).unwrap_err();
        assert_eq!(e.variable, "CACHE_RULES");
    }
}
