//! `SESSION_*` configuration (docs §1.2, §5.4), validated once when the worker reads its env.

use std::fmt;

/// Default `SESSION_COOKIE_NAME`. The `__Host-` prefix makes browsers refuse the cookie unless it
/// is `Secure`, `Path=/` and has no `Domain`, so a sibling subdomain cannot plant one.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-session";
/// Default `SESSION_TTL`: 14 days of idleness.
pub const DEFAULT_IDLE_TTL_S: u64 = 1_209_600;
/// Default `SESSION_ABSOLUTE_TTL`: 30 days since creation, however active.
pub const DEFAULT_ABSOLUTE_TTL_S: u64 = 2_592_000;
/// Default `SESSION_MAX_BYTES`: largest session data (compact JSON) accepted from the origin.
pub const DEFAULT_MAX_BYTES: usize = 16_384;
/// Default `SESSION_FALLBACK_TTL`: a session carried in the cookie is trusted 15 minutes.
pub const DEFAULT_FALLBACK_TTL_S: u64 = 900;
/// `SESSION_SECRET` must be at least this long: 256 bits, the HMAC-SHA256 output size.
pub const MIN_SECRET_BYTES: usize = 32;

/// Everything the session code needs to know. Build it with [`SessionSettings::new`] (and the
/// `with_*` methods), which validate; the fields are public for reading, and every function in
/// this module stays panic-free even if someone fills them by hand.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// `SESSION_SECRET`: the HMAC key for cookies. Never printed (see the `Debug` impl).
    pub secret: Vec<u8>,
    /// `SESSION_COOKIE_NAME`.
    pub cookie_name: String,
    /// `SESSION_TTL`: idle lifetime in seconds; the Redis TTL slides on use.
    pub idle_ttl_s: u64,
    /// `SESSION_ABSOLUTE_TTL`: hard lifetime since creation, in seconds.
    pub absolute_ttl_s: u64,
    /// `SESSION_MAX_BYTES`: session data over this (as compact JSON) is refused.
    pub max_bytes: usize,
    /// `SESSION_COOKIE_SAMESITE`.
    pub same_site: SameSitePolicy,
    /// `SESSION_COOKIE_DOMAIN`, lower-case; `None`: a host-only cookie.
    pub domain: Option<String>,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`: the cookie has no `Max-Age` (the idle and absolute
    /// limits still hold at the edge).
    pub expire_at_browser_close: bool,
    /// `SESSION_SAVE_EVERY_REQUEST`: the idle TTL slides on every request, in the lookup's
    /// round trip, rather than once past a tenth of it.
    pub save_every_request: bool,
    /// `SESSION_FALLBACK_TTL`: how long after it was issued a session carried in the cookie
    /// (the store was down) is accepted, in seconds; 0 turns the fallback cookie off.
    pub fallback_ttl_s: u64,
    /// The AES-256-GCM key of the fallback cookie, derived from the secret under its own label
    /// ([`super::fallback::derive_key`]), so it is never the HMAC key itself. Never printed.
    pub fallback_key: [u8; 32],
}

/// The session cookie's `SameSite` attribute (`SESSION_COOKIE_SAMESITE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSitePolicy {
    /// Sent on top-level navigations from other sites, not on their subrequests (the default).
    #[default]
    Lax,
    /// Never sent on requests another site starts.
    Strict,
    /// Sent on every request, cross-site included (the cookie is always `Secure`, which
    /// browsers require of `SameSite=None`).
    None,
}

impl SessionSettings {
    /// Settings with the contract's defaults for everything but the secret.
    /// A secret shorter than 32 bytes is refused; the error never contains the secret.
    pub fn new(secret: &[u8]) -> Result<Self, SessionConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SessionConfigError::SecretTooShort { len: secret.len() });
        }
        Ok(SessionSettings {
            secret: secret.to_vec(),
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            idle_ttl_s: DEFAULT_IDLE_TTL_S,
            absolute_ttl_s: DEFAULT_ABSOLUTE_TTL_S,
            max_bytes: DEFAULT_MAX_BYTES,
            same_site: SameSitePolicy::Lax,
            domain: None,
            expire_at_browser_close: false,
            save_every_request: false,
            fallback_ttl_s: DEFAULT_FALLBACK_TTL_S,
            fallback_key: super::fallback::derive_key(secret),
        })
    }

    /// `SESSION_COOKIE_SAMESITE`: `Lax`, `Strict` or `None`, in any case.
    pub fn with_same_site(mut self, text: &str) -> Result<Self, SessionConfigError> {
        self.same_site = match text.trim().to_ascii_lowercase().as_str() {
            "lax" => SameSitePolicy::Lax,
            "strict" => SameSitePolicy::Strict,
            "none" => SameSitePolicy::None,
            _ => return Err(SessionConfigError::BadSameSite),
        };
        Ok(self)
    }

    /// `SESSION_COOKIE_DOMAIN`: a host name (a leading `.` is dropped, as browsers do). Refused
    /// while the cookie's name has the `__Host-` prefix, which browsers reject with a Domain:
    /// call it after [`SessionSettings::with_cookie_name`].
    pub fn with_domain(mut self, text: &str) -> Result<Self, SessionConfigError> {
        let domain = text.trim().trim_start_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(label_ok) {
            return Err(SessionConfigError::BadDomain);
        }
        if self.cookie_name.starts_with("__Host-") {
            return Err(SessionConfigError::DomainWithHostPrefix);
        }
        self.domain = Some(domain);
        Ok(self)
    }

    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE` and `SESSION_SAVE_EVERY_REQUEST`.
    pub fn with_lifetime_model(mut self, expire_at_browser_close: bool, save_every_request: bool) -> Self {
        self.expire_at_browser_close = expire_at_browser_close;
        self.save_every_request = save_every_request;
        self
    }

    /// `SESSION_COOKIE_NAME`: a non-empty RFC 6265 token (no spaces, separators or controls).
    pub fn with_cookie_name(mut self, name: &str) -> Result<Self, SessionConfigError> {
        if name.is_empty() {
            return Err(SessionConfigError::BadCookieName("is empty"));
        }
        if !name.bytes().all(is_token_byte) {
            return Err(SessionConfigError::BadCookieName(
                "may only contain letters, digits and !#$%&'*+-.^_`|~",
            ));
        }
        self.cookie_name = name.to_owned();
        Ok(self)
    }

    /// `SESSION_TTL` (idle) and `SESSION_ABSOLUTE_TTL`, in seconds; both must be positive.
    /// An absolute lifetime shorter than the idle one is allowed: it simply always wins.
    pub fn with_ttls(mut self, idle_ttl_s: u64, absolute_ttl_s: u64) -> Result<Self, SessionConfigError> {
        if idle_ttl_s == 0 {
            return Err(SessionConfigError::ZeroTtl { variable: "SESSION_TTL" });
        }
        if absolute_ttl_s == 0 {
            return Err(SessionConfigError::ZeroTtl { variable: "SESSION_ABSOLUTE_TTL" });
        }
        self.idle_ttl_s = idle_ttl_s;
        self.absolute_ttl_s = absolute_ttl_s;
        Ok(self)
    }

    /// `SESSION_MAX_BYTES`; must be positive.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Result<Self, SessionConfigError> {
        if max_bytes == 0 {
            return Err(SessionConfigError::ZeroMaxBytes);
        }
        self.max_bytes = max_bytes;
        Ok(self)
    }

    /// `SESSION_FALLBACK_TTL`, in seconds; 0 turns the fallback cookie off.
    pub fn with_fallback_ttl(mut self, fallback_ttl_s: u64) -> Self {
        self.fallback_ttl_s = fallback_ttl_s;
        self
    }

    /// `SESSION_FALLBACK_TTL` in milliseconds (saturating).
    pub fn fallback_ttl_ms(&self) -> u64 {
        self.fallback_ttl_s.saturating_mul(1000)
    }

    /// Idle lifetime in milliseconds (saturating).
    pub fn idle_ttl_ms(&self) -> u64 {
        self.idle_ttl_s.saturating_mul(1000)
    }

    /// Absolute lifetime in milliseconds (saturating).
    pub fn absolute_ttl_ms(&self) -> u64 {
        self.absolute_ttl_s.saturating_mul(1000)
    }
}

impl fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSettings")
            .field("secret", &format_args!("<{} bytes, redacted>", self.secret.len()))
            .field("cookie_name", &self.cookie_name)
            .field("idle_ttl_s", &self.idle_ttl_s)
            .field("absolute_ttl_s", &self.absolute_ttl_s)
            .field("max_bytes", &self.max_bytes)
            .field("same_site", &self.same_site)
            .field("domain", &self.domain)
            .field("expire_at_browser_close", &self.expire_at_browser_close)
            .field("save_every_request", &self.save_every_request)
            .field("fallback_ttl_s", &self.fallback_ttl_s)
            .field("fallback_key", &"<redacted>")
            .finish()
    }
}

/// RFC 6265 `cookie-name` = RFC 9110 `token`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `SESSION_*` value the worker cannot run with. Its text names the variable and what is
/// wrong, and never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionConfigError {
    /// `SESSION_SECRET` is shorter than [`MIN_SECRET_BYTES`].
    SecretTooShort { len: usize },
    /// `SESSION_COOKIE_NAME` is not a cookie name.
    BadCookieName(&'static str),
    /// `SESSION_TTL` or `SESSION_ABSOLUTE_TTL` is zero.
    ZeroTtl { variable: &'static str },
    /// `SESSION_MAX_BYTES` is zero.
    ZeroMaxBytes,
    /// `SESSION_COOKIE_SAMESITE` is not `Lax`, `Strict` or `None`.
    BadSameSite,
    /// `SESSION_COOKIE_DOMAIN` is not a host name.
    BadDomain,
    /// `SESSION_COOKIE_DOMAIN` is set while the cookie's name starts with `__Host-`.
    DomainWithHostPrefix,
}

impl SessionConfigError {
    /// The configuration variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            SessionConfigError::SecretTooShort { .. } => "SESSION_SECRET",
            SessionConfigError::BadCookieName(_) => "SESSION_COOKIE_NAME",
            SessionConfigError::ZeroTtl { variable } => variable,
            SessionConfigError::ZeroMaxBytes => "SESSION_MAX_BYTES",
            SessionConfigError::BadSameSite => "SESSION_COOKIE_SAMESITE",
            SessionConfigError::BadDomain | SessionConfigError::DomainWithHostPrefix => {
                "SESSION_COOKIE_DOMAIN"
            }
        }
    }
}

impl fmt::Display for SessionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionConfigError::SecretTooShort { len } => {
                write!(f, "SESSION_SECRET must be at least {MIN_SECRET_BYTES} bytes long (it has {len})")
            }
            SessionConfigError::BadCookieName(why) => write!(f, "SESSION_COOKIE_NAME {why}"),
            SessionConfigError::ZeroTtl { variable } => {
                write!(f, "{variable} must be a positive number of seconds")
            }
            SessionConfigError::ZeroMaxBytes => {
                f.write_str("SESSION_MAX_BYTES must be a positive number of bytes")
            }
            SessionConfigError::BadSameSite => {
                f.write_str("SESSION_COOKIE_SAMESITE must be Lax, Strict or None")
            }
            SessionConfigError::BadDomain => f.write_str(
                "SESSION_COOKIE_DOMAIN must be a host name such as example.com (no scheme, port or path)",
            ),
            SessionConfigError::DomainWithHostPrefix => f.write_str(
                "SESSION_COOKIE_DOMAIN cannot be used while SESSION_COOKIE_NAME starts with __Host- \
                 (browsers refuse a __Host- cookie with a Domain): set SESSION_COOKIE_NAME too, \
                 e.g. to __Secure-session",
            ),
        }
    }
}

impl std::error::Error for SessionConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_follow_the_contract() {
        let s = SessionSettings::new(SECRET).unwrap();
        assert_eq!(s.cookie_name, "__Host-session");
        assert_eq!(s.idle_ttl_s, 1_209_600);
        assert_eq!(s.absolute_ttl_s, 2_592_000);
        assert_eq!(s.max_bytes, 16_384);
        assert_eq!(s.secret, SECRET);
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let secret = b"hunter2-is-not-long-enough-31by";
        assert_eq!(secret.len(), 31);
        let err = SessionSettings::new(secret).unwrap_err();
        assert_eq!(err, SessionConfigError::SecretTooShort { len: 31 });
        assert_eq!(err.variable(), "SESSION_SECRET");
        let text = format!("{err} {err:?}");
        assert!(text.contains("SESSION_SECRET"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(SessionSettings::new(b"").is_err());
        assert!(SessionSettings::new(&[7u8; 32]).is_ok());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = SessionSettings::new(b"super-secret-value-super-secret-value").unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("super-secret"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }

    #[test]
    fn cookie_name_must_be_a_token() {
        let s = SessionSettings::new(SECRET).unwrap();
        assert_eq!(s.clone().with_cookie_name("sid").unwrap().cookie_name, "sid");
        assert_eq!(s.clone().with_cookie_name("__Secure-s.1").unwrap().cookie_name, "__Secure-s.1");
        for bad in ["", "a b", "a=b", "a;b", "é", "a,b", "a\tb", "\"a\""] {
            let err = s.clone().with_cookie_name(bad).unwrap_err();
            assert_eq!(err.variable(), "SESSION_COOKIE_NAME", "{bad:?}");
        }
    }

    #[test]
    fn cookie_attributes_and_lifetime_model() {
        let s = SessionSettings::new(SECRET).unwrap();
        assert_eq!(
            (s.same_site, s.domain.clone(), s.expire_at_browser_close, s.save_every_request),
            (SameSitePolicy::Lax, None, false, false),
            "defaults unchanged"
        );
        for (text, policy) in [
            ("Lax", SameSitePolicy::Lax),
            ("strict", SameSitePolicy::Strict),
            (" NONE ", SameSitePolicy::None),
        ] {
            assert_eq!(s.clone().with_same_site(text).unwrap().same_site, policy, "{text}");
        }
        let err = s.clone().with_same_site("none-ish").unwrap_err();
        assert_eq!(
            (err.variable(), err.to_string().as_str()),
            ("SESSION_COOKIE_SAMESITE", "SESSION_COOKIE_SAMESITE must be Lax, Strict or None")
        );
        // The __Host- prefix forbids a Domain: refused with a reason that says what to change.
        let err = s.clone().with_domain("example.com").unwrap_err();
        assert_eq!(err, SessionConfigError::DomainWithHostPrefix);
        assert_eq!(err.variable(), "SESSION_COOKIE_DOMAIN");
        assert!(err.to_string().contains("__Host-"), "{err}");
        let named = s.clone().with_cookie_name("__Secure-session").unwrap();
        assert_eq!(named.clone().with_domain(".Example.COM").unwrap().domain.as_deref(), Some("example.com"));
        for bad in ["", ".", "https://example.com", "example.com:443", "a..b", "a b", "example.com/x"] {
            assert_eq!(named.clone().with_domain(bad).unwrap_err(), SessionConfigError::BadDomain, "{bad:?}");
        }
        let model = s.with_lifetime_model(true, true);
        assert!(model.expire_at_browser_close && model.save_every_request);
    }

    #[test]
    fn ttls_and_max_bytes_must_be_positive() {
        let s = SessionSettings::new(SECRET).unwrap();
        assert_eq!(s.clone().with_ttls(0, 10).unwrap_err().variable(), "SESSION_TTL");
        assert_eq!(s.clone().with_ttls(10, 0).unwrap_err().variable(), "SESSION_ABSOLUTE_TTL");
        let t = s.clone().with_ttls(60, 30).unwrap();
        assert_eq!((t.idle_ttl_s, t.absolute_ttl_s), (60, 30));
        assert_eq!(t.idle_ttl_ms(), 60_000);
        assert_eq!(s.clone().with_max_bytes(0).unwrap_err().variable(), "SESSION_MAX_BYTES");
        assert_eq!(s.with_max_bytes(5).unwrap().max_bytes, 5);
    }
}
