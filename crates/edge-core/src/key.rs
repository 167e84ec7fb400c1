//! Redis key names (docs §2.5).
//!
//! A cached response is addressed by the namespace, the cache version (bumped to purge
//! everything), the normalised URL and the values of the request headers its `Vary` names. All
//! of that but the namespace and version goes through SHA-256 (lower-case hex), so no raw
//! request text ever becomes part of a Redis key:
//!
//! ```text
//! {namespace}:v{version}:f:{hash}   fresh copy, expires after ttl
//! {namespace}:v{version}:s:{hash}   stale copy, expires after ttl + max(swr, sie)
//! {namespace}:v{version}:l:{hash}   stampede lock
//! {namespace}:vary:{url_id}         the Vary header names last seen for a URL
//! {namespace}:version               the cache version counter
//! ```

use sha2::{Digest, Sha256};

use crate::hygiene::is_reserved;
use crate::keyspace::{Namespace, VariantKeys};

use crate::phase::NoCacheReason;

/// The Redis keys of one cache entry, plus the URL's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeys {
    /// `{namespace}:v{version}:f:{hash}`: present while the entry is fresh.
    pub fresh: String,
    /// `{namespace}:v{version}:s:{hash}`: the stale copy, kept for the stale windows.
    pub stale: String,
    /// `{namespace}:v{version}:l:{hash}`: the stampede lock for this entry.
    pub lock: String,
    /// Hash of the normalised URL alone (no vary values, no version): the same for every
    /// variant and every cache version of a URL. Use it for URL purges and [`vary_spec_key`].
    pub url_id: String,
}

/// The keys for `uri` (absolute, as the client requested it) with the given vary values
/// (from [`vary_values`]; their order does not matter), the whole URL in the key. Requests go
/// through [`cache_keys_for`], with the URL and parts their rule derives.
#[cfg(test)]
pub fn cache_keys(
    namespace: &Namespace,
    version: u64,
    uri: &http::Uri,
    vary: &[(String, String)],
) -> CacheKeys {
    cache_keys_for(namespace, version, &normalized_url(uri), &[], vary)
}

/// The keys for the key URL `url` (a [`normalized_url_with`] of the request, as its rule
/// shapes it), the rule's extra `parts` (docs §3.6) and the vary values.
pub fn cache_keys_for(
    namespace: &Namespace,
    version: u64,
    url: &str,
    parts: &[(String, String)],
    vary: &[(String, String)],
) -> CacheKeys {
    let url_id = url_id_of(url);

    let mut vary: Vec<(String, &str)> =
        vary.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.as_str())).collect();
    vary.sort();
    let mut input = Vec::with_capacity(url.len() + 64);
    input.extend_from_slice(b"edge-cache entry\0");
    push_field(&mut input, version.to_string().as_bytes());
    push_field(&mut input, url.as_bytes());
    push_field(&mut input, vary.len().to_string().as_bytes());
    for (name, value) in vary {
        push_field(&mut input, name.as_bytes());
        push_field(&mut input, value.as_bytes());
    }
    // Only when there are any, so that a key without rule parts hashes as it always has (an
    // upgrade keeps its entries): a longer list of length-prefixed fields never collides.
    if !parts.is_empty() {
        push_field(&mut input, b"parts");
        push_field(&mut input, parts.len().to_string().as_bytes());
        for (name, value) in parts {
            push_field(&mut input, name.as_bytes());
            push_field(&mut input, value.as_bytes());
        }
    }
    let hash = hex_sha256(&input);
    let VariantKeys { fresh, stale, lock } = namespace.variant(version, &hash);
    CacheKeys { fresh, stale, lock, url_id }
}

/// The `url_id` of `uri`, as in [`CacheKeys::url_id`], the whole URL in the key.
#[cfg(test)]
pub fn url_id(uri: &http::Uri) -> String {
    url_id_of(&normalized_url(uri))
}

/// The `url_id` of a key URL.
pub fn url_id_of(url: &str) -> String {
    hex_sha256(&url_id_input(url))
}

/// The URL as it enters the hash: scheme and host lower-cased, default port (80 for http, 443
/// for https) dropped, path as is (empty ⇒ `/`), query parameters sorted by name (stable: equal
/// names keep their order), empty parameters (`a=1&&b=2`, a trailing `&`) dropped, and an empty
/// query the same as none. Names and values are compared as sent (still percent-encoded).
#[cfg(test)]
pub fn normalized_url(uri: &http::Uri) -> String {
    normalized_url_with(uri, &|_| true, true)
}

/// [`normalized_url`] with only the query parameters `keep_param` accepts (by name, as sent),
/// and without host and port when `with_host` is false (written `scheme://*`, which no real
/// host can spell): the key URL a rule derives (docs §3.6).
pub fn normalized_url_with(uri: &http::Uri, keep_param: &dyn Fn(&str) -> bool, with_host: bool) -> String {
    let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
    let host = if with_host { uri.host().unwrap_or("").to_ascii_lowercase() } else { "*".to_string() };
    let port = match (uri.port_u16(), scheme.as_str()) {
        _ if !with_host => String::new(),
        (Some(80), "http") | (Some(443), "https") | (None, _) => String::new(),
        (Some(port), _) => format!(":{port}"),
    };
    let path = normalized_path(uri.path());
    let mut params: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|param| !param.is_empty() && keep_param(param_name(param)))
        .collect();
    params.sort_by(|a, b| param_name(a).cmp(param_name(b)));
    // Pushed rather than `format!`ed: this runs on every request, and the formatter's
    // machinery showed in the hit's profile (issue 11).
    let query_len: usize = params.iter().map(|param| param.len() + 1).sum();
    let mut url = String::with_capacity(scheme.len() + 3 + host.len() + port.len() + path.len() + query_len);
    for part in [scheme.as_str(), "://", host.as_str(), port.as_str(), &path] {
        url.push_str(part);
    }
    for (i, param) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(param);
    }
    url
}

/// The path the key and the rules both see (docs §2.5): percent-encoded unreserved characters
/// decoded (`/%61dmin` is `/admin`), other escapes upper-cased, dot segments removed
/// (RFC 3986 §5.2.4, §6.2.2), empty ⇒ `/`. An origin that decodes `%61` must not reach a
/// rule or an entry the decoded path would not.
pub fn normalized_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| {
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        match escape {
            Some(byte) if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') => {
                decoded.push(byte as char);
                i += 3;
            }
            Some(_) => {
                decoded.push('%');
                decoded.push_str(&path[i + 1..i + 3].to_ascii_uppercase());
                i += 3;
            }
            None => {
                let ch = path[i..].chars().next().unwrap_or('/');
                decoded.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    let mut segments: Vec<&str> = Vec::new();
    let ends_with_dir = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if ends_with_dir && !out.ends_with('/') || out.is_empty() {
        out.push('/');
    }
    out
}

fn param_name(param: &str) -> &str {
    param.split('=').next().unwrap_or(param)
}

/// The header names a response's `Vary` lists: lower-cased, sorted, without duplicates.
/// `Vary: *` (anywhere in the list) is `Err(VaryStar)`: such a response is never stored.
pub fn vary_names(headers: &http::HeaderMap) -> Result<Vec<String>, NoCacheReason> {
    let mut names = Vec::new();
    for value in headers.get_all(http::header::VARY) {
        for name in String::from_utf8_lossy(value.as_bytes()).split(',') {
            let name = name.trim();
            if name == "*" {
                return Err(NoCacheReason::VaryStar);
            }
            if !name.is_empty() {
                names.push(name.to_ascii_lowercase());
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The request's values for the `Vary` names (from [`vary_names`]), in the order given, read
/// from `forwarded`: the headers as the origin receives them (docs §2.6). A response may reach
/// only the clients whose request would have produced it, so a variant is keyed on what the
/// origin saw, never on the client's copy of a header the edge sets or rewrites:
///
/// - `cookie`: the session id (`""` without a session) and the `Cookie` header as forwarded
///   (ours removed): an origin with its own session cookie gets one variant per cookie;
/// - a reserved `Edge-Session*` name: the session id, which determines what the worker sends
///   in those headers;
/// - any other name: every line of the forwarded header trimmed and joined with `", "`; an
///   absent header is `""`. A value that is not UTF-8 is written as `\0` followed by its hex
///   bytes, which no real header value can collide with.
pub fn vary_values(
    forwarded: &http::HeaderMap,
    names: &[String],
    session_id: Option<&str>,
) -> Vec<(String, String)> {
    let joined = |name: &str| {
        forwarded
            .get_all(name)
            .iter()
            .map(|value| header_text(value.as_bytes()))
            .collect::<Vec<String>>()
            .join(", ")
    };
    names
        .iter()
        .map(|name| {
            let name = name.to_ascii_lowercase();
            let session = session_id.unwrap_or("");
            let value = if name == "cookie" {
                format!("{session}\0{}", joined("cookie"))
            } else if is_reserved(&name) {
                session.to_string()
            } else {
                joined(&name)
            };
            (name, value)
        })
        .collect()
}

fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.trim_matches([' ', '\t']).to_string(),
        Err(_) => {
            let mut text = String::from("\0");
            text.push_str(&hex(bytes));
            text
        }
    }
}

fn url_id_input(url: &str) -> Vec<u8> {
    let mut input = b"edge-cache url\0".to_vec();
    push_field(&mut input, url.as_bytes());
    input
}

/// Length-prefixed, so that no two different field lists hash the same input.
fn push_field(input: &mut Vec<u8>, field: &[u8]) {
    input.extend_from_slice(&(field.len() as u64).to_be_bytes());
    input.extend_from_slice(field);
}

/// The SHA-256 of `input` as lower-case hex: how raw request text and ids become key parts.
pub fn hex_sha256(input: &[u8]) -> String {
    hex(&Sha256::digest(input))
}

/// `bytes` as lower-case hex.
/// By table rather than `write!("{:02x}")`: the formatter's machinery was a visible share of
/// a hit's CPU in the worker's profile (two keys hashed per lookup).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The text whose bytes [`hex`] wrote, if `text` is such hex of UTF-8.
pub(crate) fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table rows are tuples
mod tests {
    use super::*;

    fn uri(text: &str) -> http::Uri {
        text.parse().unwrap()
    }

    fn keys(text: &str) -> CacheKeys {
        cache_keys(&Namespace::new("edge"), 1, &uri(text), &[])
    }

    #[test]
    fn normalisation_table() {
        let table = [
            ("https://Example.COM/a", "https://example.com/a"),
            ("HTTPS://example.com/a", "https://example.com/a"),
            ("https://example.com:443/a", "https://example.com/a"),
            ("http://example.com:80/a", "http://example.com/a"),
            ("http://example.com:443/a", "http://example.com:443/a"),
            ("https://example.com:80/a", "https://example.com:80/a"),
            ("https://example.com:8443/a", "https://example.com:8443/a"),
            ("https://example.com", "https://example.com/"),
            ("https://example.com/A/b%2F", "https://example.com/A/b%2F"),
            ("https://example.com/a?", "https://example.com/a"),
            ("https://example.com/a?&&", "https://example.com/a"),
            ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
            ("https://example.com/a?b=2&a=1&", "https://example.com/a?a=1&b=2"),
            ("https://example.com/a?x=3&a=2&x=1&a=1", "https://example.com/a?a=2&a=1&x=3&x=1"),
            ("https://example.com/a?b&a", "https://example.com/a?a&b"),
            ("https://example.com/a?A=1&a=2", "https://example.com/a?A=1&a=2"),
        ];
        for (input, expected) in table {
            assert_eq!(normalized_url(&uri(input)), expected, "{input}");
        }
    }

    #[test]
    fn equivalent_urls_share_keys() {
        let groups: [&[&str]; 3] = [
            &[
                "https://example.com/a?x=1&y=2",
                "https://EXAMPLE.com:443/a?y=2&x=1",
                "HTTPS://example.com/a?y=2&x=1&",
            ],
            &["https://example.com/", "https://example.com", "https://example.com/?"],
            &["http://example.com/p", "http://example.com:80/p"],
        ];
        for group in groups {
            let first = keys(group[0]);
            for other in &group[1..] {
                assert_eq!(keys(other), first, "{other} vs {}", group[0]);
            }
        }
    }

    #[test]
    fn different_requests_get_different_keys() {
        let urls = [
            "https://example.com/a",
            "http://example.com/a",
            "https://example.org/a",
            "https://example.com/A",
            "https://example.com/a/",
            "https://example.com/a?x=1",
            "https://example.com/a?x=2",
            "https://example.com/a?x=1&x=2",
            "https://example.com/a?x=2&x=1",
            "https://example.com:8443/a",
        ];
        let mut fresh: Vec<String> = urls.iter().map(|u| keys(u).fresh).collect();
        fresh.sort();
        fresh.dedup();
        assert_eq!(fresh.len(), urls.len());

        let base = keys("https://example.com/a");
        assert_ne!(
            cache_keys(&Namespace::new("edge"), 2, &uri("https://example.com/a"), &[]).fresh,
            base.fresh
        );
        assert_ne!(
            cache_keys(&Namespace::new("other"), 1, &uri("https://example.com/a"), &[]).fresh,
            base.fresh
        );
        let gzip = [("accept-encoding".to_string(), "gzip".to_string())];
        let br = [("accept-encoding".to_string(), "br".to_string())];
        let u = uri("https://example.com/a");
        assert_ne!(cache_keys(&Namespace::new("edge"), 1, &u, &gzip).fresh, base.fresh);
        assert_ne!(
            cache_keys(&Namespace::new("edge"), 1, &u, &gzip).fresh,
            cache_keys(&Namespace::new("edge"), 1, &u, &br).fresh
        );
        // Field boundaries are unambiguous.
        let split_a = [("a".to_string(), "bc".to_string())];
        let split_b = [("ab".to_string(), "c".to_string())];
        assert_ne!(
            cache_keys(&Namespace::new("edge"), 1, &u, &split_a).fresh,
            cache_keys(&Namespace::new("edge"), 1, &u, &split_b).fresh
        );
    }

    /// Keys must not change between releases (an upgrade would miss on everything): the digest
    /// and its spelling are pinned to FIPS 180-2's test vector.
    #[test]
    fn the_key_hash_is_sha256_in_lower_case_hex() {
        assert_eq!(hex_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    }

    #[test]
    fn key_shapes() {
        let k = cache_keys(&Namespace::new("edge"), 7, &uri("https://example.com/secret?token=abc"), &[]);
        let hash = k.fresh.strip_prefix("edge:v7:f:").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(k.stale, format!("edge:v7:s:{hash}"));
        assert_eq!(k.lock, format!("edge:v7:l:{hash}"));
        assert_eq!(k.url_id.len(), 64);
        for key in [&k.fresh, &k.stale, &k.lock, &k.url_id] {
            assert!(!key.contains("secret") && !key.contains("token") && !key.contains("example"));
        }
    }

    #[test]
    fn url_id_ignores_version_and_vary() {
        let u = uri("https://example.com/a?b=1&a=2");
        let vary = [("accept".to_string(), "text/html".to_string())];
        let a = cache_keys(&Namespace::new("edge"), 1, &u, &[]);
        let b = cache_keys(&Namespace::new("edge"), 9, &u, &vary);
        assert_ne!(a.fresh, b.fresh);
        assert_eq!(a.url_id, b.url_id);
        assert_eq!(url_id(&uri("https://EXAMPLE.com/a?a=2&b=1")), a.url_id);
        assert_ne!(url_id(&uri("https://example.com/b")), a.url_id);
        assert_ne!(a.url_id, a.fresh.rsplit(':').next().unwrap());
    }

    #[test]
    fn vary_order_does_not_matter() {
        let u = uri("https://example.com/");
        let ab = [("accept".to_string(), "x".to_string()), ("accept-language".to_string(), "de".to_string())];
        let ba = [ab[1].clone(), ab[0].clone()];
        assert_eq!(
            cache_keys(&Namespace::new("e"), 1, &u, &ab),
            cache_keys(&Namespace::new("e"), 1, &u, &ba)
        );
        // Names are case-insensitive, and case does not change the order either.
        let mixed = [
            // Byte order puts "ACCEPT-LANGUAGE" before "accept"; lower-cased it comes after.
            ("ACCEPT-LANGUAGE".to_string(), "de".to_string()),
            ("accept".to_string(), "x".to_string()),
        ];
        assert_eq!(
            cache_keys(&Namespace::new("e"), 1, &u, &mixed),
            cache_keys(&Namespace::new("e"), 1, &u, &ab)
        );
    }

    fn headers(pairs: &[(&str, &[u8])]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn vary_names_table() {
        let table: Vec<(Vec<(&str, &[u8])>, Result<Vec<&str>, NoCacheReason>)> = vec![
            (vec![], Ok(vec![])),
            (vec![("vary", b"")], Ok(vec![])),
            (vec![("vary", b"Accept-Encoding")], Ok(vec!["accept-encoding"])),
            (
                vec![("vary", b"Accept-Language, accept-encoding , ACCEPT-ENCODING")],
                Ok(vec!["accept-encoding", "accept-language"]),
            ),
            (vec![("vary", b"Cookie"), ("vary", b"accept, ,")], Ok(vec!["accept", "cookie"])),
            (vec![("vary", b"*")], Err(NoCacheReason::VaryStar)),
            (vec![("vary", b"accept, *")], Err(NoCacheReason::VaryStar)),
            (vec![("vary", b"accept"), ("vary", b" * ")], Err(NoCacheReason::VaryStar)),
        ];
        for (pairs, expected) in table {
            let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(vary_names(&headers(&pairs)), expected, "{pairs:?}");
        }
    }

    #[test]
    fn paths_are_normalised_as_rfc_3986_says() {
        for (raw, normal) in [
            ("", "/"),
            ("/", "/"),
            ("/api/%61dmin/users", "/api/admin/users"),
            ("/api/%7Euser/%2fx", "/api/~user/%2Fx"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/../../x", "/x"),
            ("/a/%2e%2e/b", "/b"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/%", "/%"),
            ("/%zz", "/%zz"),
            ("/é/%4", "/é/%4"),
        ] {
            assert_eq!(normalized_path(raw), normal, "{raw:?}");
        }
    }

    #[test]
    fn an_encoded_path_is_the_same_entry_as_its_decoded_form() {
        let ns = Namespace::new("edge");
        let plain = cache_keys(&ns, 1, &uri("https://example.com/api/admin/users"), &[]);
        let encoded = cache_keys(&ns, 1, &uri("https://example.com/api/%61dmin/./users"), &[]);
        assert_eq!(plain, encoded);
    }

    #[test]
    fn vary_values_table() {
        let request = headers(&[
            ("accept-language", b" de-CH "),
            ("accept", b"text/html"),
            ("accept", b"application/json"),
            ("cookie", b"sid=alice; theme=dark"),
            ("x-bin", b"\xff\xfe"),
        ]);
        let names: Vec<String> = ["accept", "accept-language", "cookie", "edge-session", "x-absent", "x-bin"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            vary_values(&request, &names, Some("sess-1")),
            vec![
                pair("accept", "text/html, application/json"),
                pair("accept-language", "de-CH"),
                pair("cookie", "sess-1\0sid=alice; theme=dark"),
                pair("edge-session", "sess-1"),
                pair("x-absent", ""),
                pair("x-bin", "\0fffe"),
            ]
        );
        let without_session = vary_values(&request, &names, None);
        assert_eq!(without_session[2], pair("cookie", "\0sid=alice; theme=dark"));
        assert_eq!(without_session[3], pair("edge-session", ""), "a client's copy is never read");
        // Each origin cookie makes its own variant; the session and the cookie never blur.
        let mut bob = request.clone();
        bob.insert("cookie", http::HeaderValue::from_static("sid=bob; theme=dark"));
        assert_ne!(vary_values(&bob, &names, None)[2], without_session[2]);
        assert_ne!(
            vary_values(&request, &names, Some("sess-2"))[2],
            vary_values(&request, &names, Some("sess-1"))[2]
        );
    }
}
