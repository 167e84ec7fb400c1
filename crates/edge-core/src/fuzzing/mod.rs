//! One entry point per fuzz target (docs §11): the cargo-fuzz targets in `fuzz/` call these with
//! the fuzzer's bytes, and `tests/fuzz_corpus.rs` replays the committed corpora through the same
//! functions on stable Rust. Each must not panic on any input; the `assert!`s are the properties
//! checked beyond that. Not part of the crate's API: hidden, and free to change.
//!
//! Inputs are plain bytes split by hand (lines, a leading selector byte) rather than
//! `arbitrary`-derived structs, so that a corpus file reads as what it tests and edge-core takes
//! no fuzzing dependency.

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL};
use http::HeaderMap;

use crate::cache_control::{CacheControl, DELTA_SECONDS_MAX};
use crate::entry::{storable_headers, CacheEntry};
use crate::policy::{request_decision, response_decision};
use crate::rules::{PathPattern, Rule};
use crate::store::{Reply, StoreError};

mod rules;
mod session;
pub use rules::rules_config;
pub use session::{session_cookie, session_fallback, FallbackAead};

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
