//! A rule's `browser_ttl` (docs §3.7): the `Cache-Control` the client receives says how long a
//! browser may keep the response, independently of how long the edge keeps it.

use http::{HeaderMap, HeaderValue};

use crate::cache_control::{directives, CacheControl};

/// Rewrites `headers`' `Cache-Control` so that a browser keeps the response `browser_ttl`
/// seconds after it receives it: `max-age` and `s-maxage` are replaced by one `max-age`, the
/// other directives kept, `Expires` removed. The response's `Age` is added to `max-age`
/// because a browser counts it against the lifetime (RFC 9111 §4.2.3), and a copy the edge
/// has held for a minute must not arrive already stale.
///
/// A response marked `private`, `no-store` or `no-cache` (qualified or not) is left as it is:
/// a browser TTL never makes such a response more cacheable. Answers whether it rewrote.
///
/// The directives are read by the cache's own `Cache-Control` parser, so that what counts as
/// `private` here is exactly what counts everywhere else; the kept ones are written back in
/// normal form (a token, else a closed quoted string), and junk the parser skips is dropped.
/// A splitter of our own disagreed with the parser on quotes (docs §11.3): `a="\"", private`
/// hid the `private`, and an unterminated quote swallowed the new `max-age`.
pub fn apply_browser_ttl(headers: &mut HeaderMap, browser_ttl: u32) -> bool {
    let cc = CacheControl::from_headers(headers);
    let restrictive = cc.private
        || cc.no_store
        || cc.no_cache
        || !cc.private_fields.is_empty()
        || !cc.no_cache_fields.is_empty();
    if restrictive {
        return false;
    }
    let age = headers
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let max_age = u64::from(browser_ttl).saturating_add(age);
    let mut kept: Vec<String> = Vec::new();
    for line in headers.get_all(http::header::CACHE_CONTROL) {
        for (name, value) in directives(&String::from_utf8_lossy(line.as_bytes())) {
            if !matches!(name.as_str(), "max-age" | "s-maxage") && is_token(&name) {
                kept.push(written(name, value));
            }
        }
    }
    kept.push(format!("max-age={max_age}"));
    match HeaderValue::from_str(&kept.join(", ")) {
        Ok(value) => {
            headers.insert(http::header::CACHE_CONTROL, value);
            headers.remove(http::header::EXPIRES);
            true
        }
        Err(_) => false,
    }
}

/// A directive in normal form: the value a token if it is one, else a quoted string.
fn written(name: String, value: Option<String>) -> String {
    match value {
        None => name,
        Some(value) if is_token(&value) => format!("{name}={value}"),
        Some(value) => format!("{name}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// An RFC 9110 token (`tchar`s, not empty).
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table rows are tuples
mod tests {
    use super::*;

    fn rewrite(cache_control: Option<&str>, age: Option<&str>, ttl: u32) -> (bool, Option<String>, bool) {
        let mut headers = HeaderMap::new();
        if let Some(cc) = cache_control {
            headers.insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
        }
        if let Some(age) = age {
            headers.insert(http::header::AGE, age.parse().unwrap());
        }
        headers.insert(http::header::EXPIRES, "Thu, 01 Jan 2037 00:00:00 GMT".parse().unwrap());
        let done = apply_browser_ttl(&mut headers, ttl);
        let cc = headers.get(http::header::CACHE_CONTROL).map(|v| v.to_str().unwrap().to_string());
        (done, cc, headers.contains_key(http::header::EXPIRES))
    }

    #[test]
    fn browser_ttl_table() {
        let table: &[(Option<&str>, Option<&str>, u32, bool, Option<&str>)] = &[
            (Some("public, max-age=600, s-maxage=3600"), None, 60, true, Some("public, max-age=60")),
            (
                Some("max-age=600, stale-while-revalidate=30"),
                Some("20"),
                5,
                true,
                Some("stale-while-revalidate=30, max-age=25"),
            ),
            (None, None, 10, true, Some("max-age=10")),
            (Some("s-maxage=60, must-revalidate"), Some("junk"), 0, true, Some("must-revalidate, max-age=0")),
            (Some("private, max-age=60"), None, 600, false, Some("private, max-age=60")),
            (Some("no-store"), None, 600, false, Some("no-store")),
            (
                Some("max-age=60, no-cache=\"set-cookie, x\""),
                None,
                600,
                false,
                Some("max-age=60, no-cache=\"set-cookie, x\""),
            ),
            (
                Some("public, x-ext=\"a,b\", max-age=1"),
                None,
                9,
                true,
                Some("public, x-ext=\"a,b\", max-age=9"),
            ),
            // Found by fuzzing (docs §11.3): read as the cache's parser reads them.
            (Some("a=\"\\\"\", private"), None, 10, false, Some("a=\"\\\"\", private")),
            (Some("x=\"1, private"), None, 10, true, Some("x=\"1, private\", max-age=10")),
            (Some("a\"b, Public, X=\"q\\\"\""), None, 5, true, Some("public, x=\"q\\\"\", max-age=5")),
        ];
        for &(cc, age, ttl, done, expected) in table {
            let (rewritten, got, expires_left) = rewrite(cc, age, ttl);
            assert_eq!(rewritten, done, "{cc:?}");
            assert_eq!(got.as_deref(), expected, "{cc:?}");
            assert_eq!(expires_left, !done, "Expires goes with a rewrite: {cc:?}");
        }
    }
}
