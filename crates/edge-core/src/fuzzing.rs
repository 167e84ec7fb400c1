//! One entry point per fuzz target (docs §11): the cargo-fuzz targets in `fuzz/` call these with
//! the fuzzer's bytes, and `tests/fuzz_corpus.rs` replays the committed corpora through the same
//! functions on stable Rust. Each must not panic on any input; the `assert!`s are the properties
//! checked beyond that. Not part of the crate's API: hidden, and free to change.
//!
//! Inputs are plain bytes split by hand (lines, a leading selector byte) rather than
//! `arbitrary`-derived structs, so that a corpus file reads as what it tests and edge-core takes
//! no fuzzing dependency.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, COOKIE};
use http::HeaderMap;
use sha2::Sha256;

use crate::cache_control::{CacheControl, DELTA_SECONDS_MAX};
use crate::config::Config;
use crate::entry::{storable_headers, CacheEntry};
use crate::policy::{request_decision, response_decision};
use crate::rules::{CacheRules, PathPattern, Rule};
use crate::session::{
    clear_cookie_header, cookie_header_without_session, cookie_value, read_cookie, set_cookie_header,
    CookieCheck, SessionSettings,
};
use crate::store::{Reply, StoreError};

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
}

/// `Cache-Control` and `CDN-Cache-Control` parsing (with RFC 8941 dictionaries), HTTP dates,
/// and the response policy and stored headers that depend on them.
///
/// Input: lines. A line `name: value` is a response header (when both parts are valid); any
/// other line is a `Cache-Control` value. Every line, as text, is also parsed directly as a
/// `Cache-Control` value, a dictionary and a date.
pub fn cache_control(data: &[u8]) {
    let texts: Vec<String> = lines(data).map(|line| String::from_utf8_lossy(line).into_owned()).collect();
    let whole = CacheControl::parse(texts.iter().map(String::as_str));
    check_directives(&whole);
    // Field lines combine: the whole equals the lines parsed one by one and merged
    // (numbers: the smallest; flags: any; field names: all, in order).
    let mut merged = CacheControl::default();
    for text in &texts {
        let one = CacheControl::parse([text.as_str()]);
        merge(&mut merged, one);
        if let Some(members) = crate::structured_field::parse_dictionary(text) {
            for (key, _) in members {
                assert!(
                    key.starts_with(|c: char| c.is_ascii_lowercase() || c == '*')
                        && key.bytes().all(|b| b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'_' | b'-' | b'.' | b'*')),
                    "dictionary key {key:?}"
                );
            }
        }
        if let Some(seconds) = crate::http_date::parse_http_date(text) {
            // Years 1970 to 9999.
            assert!(seconds <= 253_402_387_200, "{text:?} is {seconds}");
        }
    }
    assert_eq!(whole, merged, "parsing lines together differs from merging them one by one");

    let mut headers = HeaderMap::new();
    for line in lines(data) {
        let header = match line.iter().position(|&b| b == b':') {
            Some(colon) => HeaderName::from_bytes(&line[..colon])
                .ok()
                .zip(HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()),
            None => HeaderValue::from_bytes(line).ok().map(|value| (CACHE_CONTROL, value)),
        };
        if let Some((name, value)) = header {
            headers.append(name, value);
        }
    }
    check_directives(&CacheControl::from_headers(&headers));
    let cc = CacheControl::for_this_cache(&headers);
    check_directives(&cc);
    if headers.get_all("cdn-cache-control").iter().all(|line| line.as_bytes().trim_ascii().is_empty()) {
        // No CDN-Cache-Control, or only empty lines (an empty dictionary is no field).
        assert_eq!(
            cc,
            CacheControl::from_headers(&headers),
            "empty CDN-Cache-Control lines changed the directives"
        );
    }
    let stored = storable_headers(&headers);
    for (name, _) in &stored {
        assert!(
            !matches!(name.as_str(), "set-cookie" | "age" | "content-length" | "connection"),
            "{name} stored"
        );
        assert!(!cc.private_fields.contains(name) && !cc.no_cache_fields.contains(name), "{name} stored");
    }
    let any_path = || Rule::new(PathPattern::Prefix("/".into()));
    let rules = [
        None,
        Some(Rule { ttl: Some(u32::MAX), swr: Some(u32::MAX), sie: Some(u32::MAX), ..any_path() }),
        Some(Rule { ttl: Some(0), swr: Some(1), override_origin: true, ..any_path() }),
    ];
    for rule in &rules {
        let _ = request_decision(&http::Method::GET, &headers, rule.as_ref());
        // Heuristic freshness (`CACHE_HEURISTIC_PERCENT`) off and at its largest.
        for (now_secs, heuristic_percent) in
            [0, 1_800_000_000, u64::MAX].into_iter().flat_map(|now| [(now, 0), (now, 100)])
        {
            let Ok(freshness) =
                response_decision(200, &headers, rule.as_ref(), u64::MAX, now_secs, heuristic_percent)
            else {
                continue;
            };
            assert!(
                (!cc.no_store || cc.must_understand) && !cc.private && !cc.no_cache,
                "stored despite {cc:?}"
            );
            assert!(freshness.stale_copy_ttl() > 0, "stored with nothing to serve: {freshness:?}");
            // What would be stored encodes and decodes to itself.
            let entry = CacheEntry {
                status: 200,
                headers: stored.clone(),
                body: data.to_vec(),
                stored_at_ms: now_secs.saturating_mul(1000),
                initial_age_secs: crate::policy::origin_age(&headers, now_secs),
                freshness,
                tags: Vec::new(),
                vary: crate::key::vary_names(&headers).unwrap_or_default(),
            };
            assert_eq!(CacheEntry::decode(&entry.encode()).as_ref(), Ok(&entry));
        }
    }
}

fn check_directives(cc: &CacheControl) {
    for seconds in
        [cc.max_age, cc.s_maxage, cc.stale_while_revalidate, cc.stale_if_error].into_iter().flatten()
    {
        assert!(seconds <= DELTA_SECONDS_MAX, "{seconds} seconds");
    }
    for name in cc.private_fields.iter().chain(&cc.no_cache_fields) {
        assert!(!name.is_empty() && *name == name.to_ascii_lowercase(), "field name {name:?}");
    }
}

fn merge(into: &mut CacheControl, one: CacheControl) {
    let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    into.max_age = min(into.max_age, one.max_age);
    into.s_maxage = min(into.s_maxage, one.s_maxage);
    into.stale_while_revalidate = min(into.stale_while_revalidate, one.stale_while_revalidate);
    into.stale_if_error = min(into.stale_if_error, one.stale_if_error);
    into.no_store |= one.no_store;
    into.no_cache |= one.no_cache;
    into.private |= one.private;
    into.public |= one.public;
    into.must_revalidate |= one.must_revalidate;
    into.proxy_revalidate |= one.proxy_revalidate;
    into.no_transform |= one.no_transform;
    into.immutable |= one.immutable;
    into.must_understand |= one.must_understand;
    into.no_cache_fields.extend(one.no_cache_fields);
    into.private_fields.extend(one.private_fields);
}

const FUZZ_SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret!";

/// The session cookie reader and verifier.
///
/// Input: line 1 is the secret (a fixed one when shorter than 32 bytes), line 2 the cookie name
/// (the default when invalid), every further line one `Cookie` header. In a header, a piece
/// `name=~text` becomes `name=text.<MAC of text>`, signed with the secret: the fuzzer cannot
/// forge MACs, and this lets it reach the checks that run after the MAC verified.
pub fn session_cookie(data: &[u8]) {
    let mut parts = lines(data);
    let secret = parts.next().filter(|secret| secret.len() >= 32).unwrap_or(FUZZ_SECRET);
    let Ok(mut settings) = SessionSettings::new(secret) else {
        panic!("a 32-byte secret is refused");
    };
    if let Some(Ok(named)) = parts
        .next()
        .and_then(|name| std::str::from_utf8(name).ok())
        .map(|name| settings.clone().with_cookie_name(name))
    {
        settings = named;
    }
    let mut headers = HeaderMap::new();
    for line in parts {
        if let Ok(value) = HeaderValue::from_bytes(&sign_marked(line, secret)) {
            headers.append(COOKIE, value);
        }
    }

    let check = read_cookie(&headers, &settings);
    if let CookieCheck::Valid(id) = &check {
        assert!(
            id.as_str().len() == 22
                && id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "accepted id {id:?}"
        );
        // The cookie we would issue for that id reads back as that id.
        let mut issued = HeaderMap::new();
        let value = format!("{}={}", settings.cookie_name, cookie_value(id, &settings));
        issued.append(COOKIE, HeaderValue::from_str(&value).expect("a cookie we issue is a header value"));
        assert_eq!(read_cookie(&issued, &settings), check);
        let _ = set_cookie_header(id, &settings);
    }
    let _ = clear_cookie_header(&settings);
    // What the origin receives carries no cookie of our name, valid or not.
    if let Some(forwarded) = cookie_header_without_session(&headers, &settings) {
        let mut again = HeaderMap::new();
        again.append(COOKIE, forwarded);
        assert_eq!(read_cookie(&again, &settings), CookieCheck::Absent, "our cookie forwarded");
    }
}

/// Replaces each `;`-separated piece `name=~text` of `line` with `name=text.<MAC(text)>`.
fn sign_marked(line: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 48);
    for (index, piece) in line.split(|&b| b == b';').enumerate() {
        if index > 0 {
            out.push(b';');
        }
        match piece.windows(2).position(|w| w == b"=~") {
            Some(at) => {
                let text = &piece[at + 2..];
                out.extend_from_slice(&piece[..=at]);
                out.extend_from_slice(text);
                out.push(b'.');
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                    panic!("HMAC refused a key");
                };
                mac.update(text);
                out.extend_from_slice(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()).as_bytes());
            }
            None => out.extend_from_slice(piece),
        }
    }
    out
}

/// Decoding stored entries (bytes from Redis).
///
/// Input: the stored value. What decodes re-encodes to a value that decodes to the same entry,
/// and the entry's clock arithmetic holds at any time.
pub fn entry_decode(data: &[u8]) {
    let Ok(entry) = CacheEntry::decode(data) else { return };
    assert_eq!(CacheEntry::decode(&entry.encode()).as_ref(), Ok(&entry), "re-encoding changed the entry");
    for now_ms in [
        0,
        entry.stored_at_ms,
        entry.stored_at_ms.saturating_add(999),
        entry.stored_at_ms.saturating_add(1000),
        u64::MAX,
    ] {
        let _ = entry.age_secs(now_ms);
        let fresh = entry.is_fresh(now_ms);
        assert_eq!(fresh, entry.fresh_remaining_secs(now_ms) > 0, "at {now_ms}");
        if fresh {
            assert!(
                entry.within_swr(now_ms) && entry.within_sie(now_ms),
                "fresh but outside its windows at {now_ms}"
            );
        }
    }
}

/// `CACHE_RULES` and the whole configuration.
///
/// Input: the text is parsed as `CACHE_RULES`; then its lines, as `NAME=value`, are the
/// environment for [`Config::from_lookup`].
pub fn rules_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(rules) = CacheRules::parse(&text) {
        check_rules(&rules);
    }

    let vars: Vec<(&str, &str)> = text.split('\n').filter_map(|line| line.split_once('=')).collect();
    let lookup =
        |name: &str| vars.iter().rev().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
    match Config::from_lookup(lookup) {
        Ok(config) => {
            check_rules(&config.rules);
            if let Some(session) = &config.session {
                assert!(session.secret.len() >= 32 && session.idle_ttl_s > 0 && session.absolute_ttl_s > 0);
            }
        }
        Err(error) => {
            // Errors never repeat a secret, not even in part. The probe: a non-ASCII character
            // of the secret that no other variable holds. The messages' own words are ASCII, so
            // if it shows in the message, the secret leaked. (Comparing whole values raised two
            // false alarms, docs §11.3: `SESSION_SECRET=N_SECRET`, which is inside the variable's
            // own name, and a token that a neighbour's quoted value plus its closing quote spelt.)
            let message = error.to_string();
            for secret in
                ["SESSION_SECRET", "UPSTASH_REDIS_REST_TOKEN", "UPSTASH_REDIS_REST_URL", "ADMIN_TOKEN"]
            {
                let Some(value) = lookup(secret) else { continue };
                let probe = value.chars().find(|c| {
                    !c.is_ascii() && !vars.iter().any(|(key, other)| *key != secret && other.contains(*c))
                });
                if let Some(probe) = probe {
                    assert!(!message.contains(probe), "the error for {} repeats {secret}", error.variable);
                }
            }
        }
    }
}

fn check_rules(rules: &CacheRules) {
    let mut headers = HeaderMap::new();
    headers.append(CACHE_CONTROL, HeaderValue::from_static("max-age=60, stale-while-revalidate=4294967295"));
    headers.append(http::header::AGE, HeaderValue::from_static("99999999999"));
    for rule in rules.rules() {
        let path = match &rule.path {
            PathPattern::Exact(path) | PathPattern::Prefix(path) => path.as_str(),
            PathPattern::Glob(glob) => glob.as_str(),
        };
        assert!(path.starts_with('/'), "rule path {path:?}");
        // A pattern's own text matches it (each star standing for itself), so some rule
        // matches it, for the rules `matching` (a GET on no host, without headers) can see.
        let takes_get = rule.methods.is_empty() || rule.methods.contains(&http::Method::GET);
        if takes_get && rule.hosts.is_empty() && rule.headers.is_empty() && rule.cookies.is_empty() {
            assert!(rules.matching(path).is_some(), "no rule matches {path:?}, the path of a rule");
        }
        for tag in &rule.tags {
            assert!(!tag.is_empty() && !tag.contains(|c: char| c == ',' || c.is_whitespace()), "tag {tag:?}");
        }
        let _ = request_decision(&http::Method::GET, &headers, Some(rule));
        // The key derivation and the browser TTL take any rule without panicking.
        let uri = http::Uri::from_static("https://a.example/p?utm_source=x&b=1&a=");
        assert!(rules.key_url(Some(rule), &uri).starts_with("https://"));
        let _ = rule.key_parts(0, &headers);
        let _ = rules.url_ids(&uri);
        if let Some(ttl) = rule.browser_ttl {
            let mut served = headers.clone();
            crate::rules::browser::apply_browser_ttl(&mut served, ttl);
        }
        if let Ok(freshness) = response_decision(200, &headers, Some(rule), u64::MAX, 1_800_000_000, 10) {
            assert!(freshness.stale_copy_ttl() > 0, "{freshness:?}");
        }
    }
}

/// The Upstash REST client's reading of an answer (status and body from the network).
///
/// Input: byte 0 picks the status, byte 1 the path (bit 0) and the number of commands sent
/// (bits 1-3); the rest is the body.
pub fn upstash_reply(data: &[u8]) {
    const STATUSES: [u16; 12] = [200, 200, 200, 400, 401, 403, 500, 502, 201, 299, 300, 404];
    let (Some(&status), Some(&shape)) = (data.first(), data.get(1)) else { return };
    let status = STATUSES[usize::from(status) % STATUSES.len()];
    let path = if shape & 1 == 0 { "/pipeline" } else { "/multi-exec" };
    let commands = usize::from(shape >> 1 & 7);
    let body = &data[2..];
    match crate::upstash::read_reply(path, status, body, commands) {
        Ok(replies) => {
            assert!((200..300).contains(&status), "a {status} read as a success");
            assert_eq!(replies.len(), commands);
            for reply in &replies {
                check_reply(reply);
            }
        }
        Err(StoreError::Unauthorized) => assert!(status == 401 || status == 403),
        Err(StoreError::Rejected(_)) => assert!(status == 400 && path == "/multi-exec"),
        Err(StoreError::Http { status: seen, message }) => {
            assert_eq!(seen, status);
            assert!(!(200..300).contains(&status));
            let _ = message;
        }
        Err(StoreError::Malformed(_)) => assert!((200..300).contains(&status)),
        Err(other) => panic!("a transport error from a parsed answer: {other:?}"),
    }
}

fn check_reply(reply: &Reply) {
    match reply {
        // Only one status can come back encoded: every other string is base64 of its bytes.
        Reply::Status(status) => assert_eq!(status, "OK"),
        Reply::Array(items) => items.iter().for_each(check_reply),
        Reply::Nil | Reply::Int(_) | Reply::Bytes(_) | Reply::Error(_) => {}
    }
}
