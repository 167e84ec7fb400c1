//! What a rule matches on (docs §3.2): the host, the normalised path, the method, and the
//! presence or value of request headers and cookies.

use http::{HeaderMap, Method};

use super::glob::Glob;

/// Which request paths a rule applies to, on the normalised path (docs §2.5), case-sensitive,
/// without the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// The path equals this string.
    Exact(String),
    /// The path starts with this string (written with a single trailing `*`, which is not kept
    /// here: `"/api/*"` is `Prefix("/api/")`).
    Prefix(String),
    /// Any other glob: `*` stands for any run of characters, `/` included.
    Glob(Glob),
}

impl PathPattern {
    /// Parses a rule's `path`: must start with `/`; written in the normalised form the path is
    /// matched in (escapes of letters and digits decoded, dot segments removed), which a
    /// pattern is brought to here so that `"/api/%61dmin"` means `/api/admin`.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if !text.starts_with('/') {
            return Err(format!("`path` must start with / (got {text:?})"));
        }
        if text.contains(['?', '#']) {
            return Err(format!("`path` must not contain ? or # (got {text:?}): the query is `query`'s"));
        }
        let normal = crate::key::normalized_path(text);
        let glob = Glob::parse(&normal).map_err(|why| format!("`path` {why}"))?;
        Ok(match normal.strip_suffix('*') {
            _ if !glob.has_wildcard() => PathPattern::Exact(normal),
            Some(prefix) if !prefix.contains('*') => PathPattern::Prefix(prefix.to_string()),
            _ => PathPattern::Glob(glob),
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(exact) => path == exact,
            PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathPattern::Glob(glob) => glob.matches(path),
        }
    }
}

/// A `host` condition: an exact host name, or `*.example.com` for every name under it (not
/// `example.com` itself). Compared lower-case, without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `.example.com` for `*.example.com`.
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.to_ascii_lowercase();
        let (name, wildcard) = match lower.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (lower.as_str(), false),
        };
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(format!(
                "`host` must be a host name or *.name, without scheme, port or path (got {text:?})"
            ));
        }
        Ok(if wildcard { HostPattern::Subdomains(format!(".{name}")) } else { HostPattern::Exact(lower) })
    }

    /// `host` is lower-case, without the port.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// A condition on one request header or cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Present, with any value (JSON `true`).
    Present,
    /// Absent (JSON `false`).
    Absent,
    /// Present with a value the glob matches (JSON string), case-sensitive.
    Value(Glob),
}

impl Presence {
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Presence::Present, Some(_)) | (Presence::Absent, None) => true,
            (Presence::Value(glob), Some(value)) => glob.matches(value),
            _ => false,
        }
    }
}

/// The request as rules see it: the method, the host (lower-case, no port), the normalised
/// path, and the headers as forwarded to the origin (our session cookie removed).
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub host: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// A header's value as rules and keys read it: every line, trimmed, joined with `", "`;
/// `None` when absent. Bytes that are not UTF-8 are replaced, never a panic.
pub fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let joined: Vec<String> =
        lines.map(|v| String::from_utf8_lossy(v.as_bytes()).trim_matches([' ', '\t']).to_string()).collect();
    Some(joined.join(", "))
}

/// A cookie's value (its first occurrence across every `Cookie` header), or `None`.
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// Every `name=value` pair of every `Cookie` header that is text; pieces without `=` skipped.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|piece| piece.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_parse_to_their_kind() {
        assert_eq!(PathPattern::parse("/"), Ok(PathPattern::Exact("/".into())));
        assert_eq!(PathPattern::parse("/*"), Ok(PathPattern::Prefix("/".into())));
        assert_eq!(PathPattern::parse("/a/b*"), Ok(PathPattern::Prefix("/a/b".into())));
        assert_eq!(PathPattern::parse("/api/%61dmin/*"), Ok(PathPattern::Prefix("/api/admin/".into())));
        assert!(matches!(PathPattern::parse("/a/*/c"), Ok(PathPattern::Glob(_))));
        assert!(matches!(PathPattern::parse("/a**"), Ok(PathPattern::Glob(_))));
        assert!(PathPattern::Prefix("/".into()).matches("/anything/at/all"));
        assert!(PathPattern::parse("").is_err());
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("Shop.Example.com").unwrap();
        assert!(exact.matches("shop.example.com"));
        assert!(!exact.matches("example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("a.example.com") && wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com") && !wild.matches("badexample.com"));
        for bad in ["", "*", "*.", "https://x.com", "x.com:8080", "x.com/a", "a..b", "*.*.x.com", "a b"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cookies_and_headers_are_read_leniently() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; currency=EUR".parse().unwrap());
        headers.append("cookie", "junk; currency=USD; b=".parse().unwrap());
        headers.append("x-two", " one ".parse().unwrap());
        headers.append("x-two", "two".parse().unwrap());
        assert_eq!(cookie_value(&headers, "currency"), Some("EUR"));
        assert_eq!(cookie_value(&headers, "b"), Some(""));
        assert_eq!(cookie_value(&headers, "junk"), None);
        assert_eq!(header_value(&headers, "x-two").as_deref(), Some("one, two"));
        assert_eq!(header_value(&headers, "x-none"), None);
        assert!(Presence::Absent.matches(None) && !Presence::Absent.matches(Some("")));
        assert!(Presence::Present.matches(Some("")));
        assert!(Presence::Value(Glob::parse("E*").unwrap()).matches(Some("EUR")));
        assert!(!Presence::Value(Glob::parse("E*").unwrap()).matches(None));
    }
}
