//! Invalidation (docs §6.7): purge by tag, URL, path prefix or everything; hard or soft.
//!
//! Every stored entry is recorded, in the same background pipeline that stores it, in three
//! kinds of Redis sets whose members are the entry's stale key:
//! - per tag, `{ns}:tag:{sha256(tag)}` ([`crate::tags`]);
//! - per URL (all its `Vary` variants), `{ns}:u:{url_id}`;
//! - per path prefix ending in `/`, `{ns}:p:{sha256(prefix)}`, for each `/`-boundary of the
//!   path (`/`, `/api/`, `/api/v1/` for `/api/v1/items`), with the path kept in the member so
//!   that a prefix that does not end at a `/` is served from its nearest `/` ancestor and
//!   filtered.
//!
//! A purge reads the sets it needs in batches (`SSCAN`) and deletes what each batch names
//! before reading the next: O(entries purged), never a SCAN or KEYS of the keyspace, nothing
//! checked on lookup.
//! Purge-everything bumps the namespace's cache version (O(1); old entries expire on their
//! own), and its soft form records a time before which every entry counts as stale (read in the
//! lookup's one MGET). Soft purges delete only fresh markers: entries turn stale, are served
//! under their stale-while-revalidate window and refreshed once behind the lock.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::hygiene::EDGE_PURGE_TAGS;
use crate::key::CacheKeys;
use crate::keyspace::{fresh_key_of, Namespace};
use crate::rules::CacheRules;
use crate::store::{Op, Reply, Store, StoreError};
use crate::tags::tag_index_ops;

/// Keys deleted per DEL command, so that one command stays small.
pub const DELETE_BATCH: usize = 1_000;
/// Members read per SSCAN call.
const SCAN_BATCH: u32 = 1_000;
/// Index sets live at least this long so that short-lived entries don't churn them.
const MIN_INDEX_TTL_MS: u64 = 3_600_000;
/// At most this many URLs or tags in one purge request.
pub const MAX_ITEMS: usize = 1_000;

/// What to purge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurgeTarget {
    Tags(Vec<String>),
    /// Absolute URLs as clients request them.
    Urls(Vec<String>),
    /// A path prefix, on every host.
    Prefix(String),
    Everything,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeRequest {
    pub target: PurgeTarget,
    pub soft: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    tags: Option<Vec<String>>,
    urls: Option<Vec<String>>,
    prefix: Option<String>,
    everything: Option<bool>,
    #[serde(default)]
    soft: bool,
}

/// Parses a `POST /__edge/purge` body; the error says what is wrong, for a 400.
pub fn parse_purge_request(body: &[u8]) -> Result<PurgeRequest, String> {
    let body: PurgeBody = serde_json::from_slice(body).map_err(|e| {
        format!("the body must be a JSON object with one of tags, urls, prefix, everything (and optionally soft): {e}")
    })?;
    let given = [body.tags.is_some(), body.urls.is_some(), body.prefix.is_some(), body.everything.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        return Err("give exactly one of tags, urls, prefix, everything".into());
    }
    let target = if let Some(tags) = body.tags {
        check_items("tags", &tags)?;
        PurgeTarget::Tags(tags)
    } else if let Some(urls) = body.urls {
        check_items("urls", &urls)?;
        for url in &urls {
            let uri: http::Uri = url.parse().map_err(|_| format!("urls: {url:?} is not a URL"))?;
            if uri.scheme().is_none() || uri.authority().is_none() {
                return Err(format!("urls: {url:?} must be absolute (scheme://host/path)"));
            }
        }
        PurgeTarget::Urls(urls)
    } else if let Some(prefix) = body.prefix {
        if !prefix.starts_with('/') {
            return Err(format!("prefix: {prefix:?} must be a path starting with /"));
        }
        PurgeTarget::Prefix(prefix)
    } else if body.everything == Some(true) {
        PurgeTarget::Everything
    } else {
        return Err("everything must be true".into());
    };
    Ok(PurgeRequest { target, soft: body.soft })
}

fn check_items(field: &str, items: &[String]) -> Result<(), String> {
    if items.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if items.len() > MAX_ITEMS {
        return Err(format!("{field}: at most {MAX_ITEMS} per request"));
    }
    if items.iter().any(|i| i.trim().is_empty()) {
        return Err(format!("{field} must not contain empty strings"));
    }
    Ok(())
}

/// What a purge did, answered as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeReport {
    pub kind: &'static str,
    pub soft: bool,
    /// Entries deleted (hard) or marked stale (soft); for `everything`, not counted.
    pub entries: u64,
    /// For `everything`: the new cache version (hard) or the stale-before time (soft).
    pub version: Option<u64>,
}

impl PurgeReport {
    pub fn to_json(&self) -> Value {
        let mut v = json!({"purged": self.kind, "soft": self.soft, "entries": self.entries});
        if let Some(version) = self.version {
            v["version"] = json!(version);
        }
        v
    }
}

/// Prefix sets exist for this many `/` boundaries of a path (`/`, `/a/`, `/a/b/`, `/a/b/c/`):
/// a bounded number of index writes per entry, however deep the path. A deeper prefix purge
/// reads the deepest indexed set above it and filters by path.
pub const MAX_PREFIX_DEPTH: usize = 4;
/// A prefix-set member keeps at most this many bytes of the path: a long path costs no more.
pub const MAX_MEMBER_PATH: usize = 512;

/// The indexed `/`-boundary prefixes of `path`: `/a/b/c` → `/`, `/a/`, `/a/b/` (at most
/// [`MAX_PREFIX_DEPTH`]).
pub fn indexed_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices().filter(|(_, c)| *c == '/').map(move |(i, _)| &path[..=i]).take(MAX_PREFIX_DEPTH)
}

/// `path` cut to [`MAX_MEMBER_PATH`] bytes (on a character boundary).
fn member_path(path: &str) -> &str {
    let mut end = path.len().min(MAX_MEMBER_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Whether a member's (possibly cut) path falls under `prefix`. A cut path that the prefix
/// outruns counts as under it: a purge may remove a little more, never less.
pub(crate) fn under_prefix(kept_path: &str, prefix: &str) -> bool {
    kept_path.starts_with(prefix) || (kept_path.len() >= MAX_MEMBER_PATH - 3 && prefix.starts_with(kept_path))
}

/// The ops that record a stored entry in the tag, URL and prefix indexes.
pub fn index_ops(
    namespace: &Namespace,
    keys: &CacheKeys,
    path: &str,
    tags: &[String],
    stale_ms: u64,
) -> Vec<Op> {
    let ttl_ms = stale_ms.max(MIN_INDEX_TTL_MS);
    let mut ops = tag_index_ops(namespace, tags, keys, stale_ms);
    let url_key = namespace.url_set(&keys.url_id);
    ops.push(Op::SAdd { key: url_key.clone(), members: vec![keys.stale.clone()] });
    ops.push(Op::ExpireAtLeast { key: url_key, ttl_ms });
    let member = format!("{} {}", keys.stale, member_path(path));
    for prefix in indexed_prefixes(path) {
        let key = namespace.prefix_set(prefix);
        ops.push(Op::SAdd { key: key.clone(), members: vec![member.clone()] });
        ops.push(Op::ExpireAtLeast { key, ttl_ms });
    }
    ops
}

/// Members sampled per prune.
const PRUNE_SAMPLE: u32 = 20;

/// Removes dead members (entries that expired on their own) from a sample of an index set, so
/// that a set every fill writes to, and whose TTL therefore never runs out (`/`), does not
/// grow without bound. Fills call it for one of their sets now and then, in the background.
pub async fn prune_index_sample<S: Store>(store: &S, set_key: &str) -> Result<u64, StoreError> {
    let sample = store.one(Op::SRandMember { key: set_key.to_string(), count: PRUNE_SAMPLE }).await?;
    let Reply::Array(members) = sample else { return Ok(0) };
    let members: Vec<String> =
        members.into_iter().filter_map(Reply::into_bytes).filter_map(|m| String::from_utf8(m).ok()).collect();
    if members.is_empty() {
        return Ok(0);
    }
    let stale_key = |member: &str| member.split_once(' ').map_or(member, |(key, _)| key).to_string();
    let checks: Vec<Op> = members.iter().map(|m| Op::Exists(vec![stale_key(m)])).collect();
    let alive = store.run(&checks).await?;
    let dead: Vec<String> = members
        .into_iter()
        .zip(alive)
        .filter(|(_, exists)| *exists == Reply::Int(0))
        .map(|(member, _)| member)
        .collect();
    if dead.is_empty() {
        return Ok(0);
    }
    let removed = dead.len() as u64;
    store.run(&[Op::SRem { key: set_key.to_string(), members: dead }]).await?;
    Ok(removed)
}

/// Runs a purge with no `CACHE_RULES`: a URL is its whole normalised URL, marketing
/// parameters aside.
pub async fn purge<S: Store>(
    store: &S,
    namespace: &Namespace,
    req: &PurgeRequest,
    now_ms: u64,
) -> Result<PurgeReport, StoreError> {
    purge_with_rules(store, namespace, &CacheRules::default(), req, now_ms).await
}

/// Runs a purge. A URL is found through the same key derivation as lookups: under every rule
/// that could govern a `GET` of it ([`CacheRules::url_ids`]).
pub async fn purge_with_rules<S: Store>(
    store: &S,
    namespace: &Namespace,
    rules: &CacheRules,
    req: &PurgeRequest,
    now_ms: u64,
) -> Result<PurgeReport, StoreError> {
    let kind = match &req.target {
        PurgeTarget::Tags(_) => "tags",
        PurgeTarget::Urls(_) => "urls",
        PurgeTarget::Prefix(_) => "prefix",
        PurgeTarget::Everything => "everything",
    };
    let report = |entries, version| PurgeReport { kind, soft: req.soft, entries, version };
    let (sets, filter): (Vec<String>, Option<&str>) = match &req.target {
        PurgeTarget::Everything => {
            if req.soft {
                store
                    .one(Op::Set {
                        key: namespace.stale_before(),
                        value: now_ms.to_string(),
                        ttl_ms: None,
                        nx: false,
                    })
                    .await?;
                return Ok(report(0, Some(now_ms)));
            }
            let version = store.one(Op::IncrBy { key: namespace.version(), by: 1 }).await?;
            return Ok(report(0, version.as_int().and_then(|v| u64::try_from(v).ok())));
        }
        PurgeTarget::Tags(tags) => (tags.iter().map(|t| namespace.tag_set(t)).collect(), None),
        PurgeTarget::Urls(urls) => (
            urls.iter()
                .filter_map(|u| u.parse::<http::Uri>().ok())
                .flat_map(|uri| rules.url_ids(&uri))
                .map(|url_id| namespace.url_set(&url_id))
                .collect(),
            None,
        ),
        PurgeTarget::Prefix(prefix) => {
            // The nearest `/` boundary at or above the prefix holds every entry under it.
            let boundary = indexed_prefixes(prefix).last().unwrap_or("/");
            (vec![namespace.prefix_set(boundary)], Some(prefix.as_str()))
        }
    };
    // Each set is read in batches (SSCAN), and each batch's entries deleted before the next
    // is read: a purge of any size holds one batch in memory.
    let mut seen: HashSet<String> = HashSet::new();
    let mut entries = 0;
    for set in &sets {
        let mut cursor = "0".to_string();
        loop {
            let reply = store.one(Op::SScan { key: set.clone(), cursor, count: SCAN_BATCH }).await?;
            let (next, members) = scan_reply(reply)?;
            let stale_keys: Vec<String> = members
                .into_iter()
                .filter_map(|member| match filter {
                    None => Some(member),
                    Some(prefix) => match member.split_once(' ') {
                        Some((key, path)) if under_prefix(path, prefix) => Some(key.to_string()),
                        _ => None,
                    },
                })
                .filter(|key| seen.insert(key.clone()))
                .collect();
            entries += delete_entries(store, &stale_keys, req.soft).await?;
            if next == "0" {
                break;
            }
            cursor = next;
        }
    }
    if !req.soft && filter.is_none() {
        // Tag and URL sets are emptied by a hard purge; a prefix set is shared with paths
        // outside a non-boundary prefix, so it stays (its dead members cost a no-op later).
        store.run(&[Op::Del(sets)]).await?;
    }
    Ok(report(entries, None))
}

/// Deletes (hard) or unfreshens (soft) the entries whose stale keys are given, in batches;
/// answers how many still existed.
async fn delete_entries<S: Store>(store: &S, stale_keys: &[String], soft: bool) -> Result<u64, StoreError> {
    let mut entries = 0;
    for stale_chunk in stale_keys.chunks(DELETE_BATCH) {
        let fresh_chunk: Vec<String> = stale_chunk.iter().filter_map(|k| fresh_key_of(k)).collect();
        let ops = if soft {
            // Count the entries that still exist (bodies stay in Redis), then drop only their
            // fresh markers.
            vec![Op::Exists(stale_chunk.to_vec()), Op::Del(fresh_chunk)]
        } else {
            vec![Op::Del(stale_chunk.to_vec()), Op::Del(fresh_chunk)]
        };
        let replies = store.run(&ops).await?;
        entries += match replies.first() {
            Some(Reply::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
    }
    Ok(entries)
}

/// `[cursor, [members…]]` from an SSCAN.
fn scan_reply(reply: Reply) -> Result<(String, Vec<String>), StoreError> {
    let malformed = || StoreError::Malformed("SSCAN answered the wrong shape".into());
    let Reply::Array(mut parts) = reply else { return Err(malformed()) };
    if parts.len() != 2 {
        return Err(malformed());
    }
    let members = match parts.pop() {
        Some(Reply::Array(members)) => members,
        _ => return Err(malformed()),
    };
    let cursor = parts
        .pop()
        .and_then(Reply::into_bytes)
        .and_then(|c| String::from_utf8(c).ok())
        .ok_or_else(malformed)?;
    let members =
        members.into_iter().filter_map(Reply::into_bytes).filter_map(|m| String::from_utf8(m).ok()).collect();
    Ok((cursor, members))
}

/// What a write invalidates (RFC 9111 §4.4): after a 2xx answer to POST, PUT, PATCH or DELETE,
/// the request URL and its same-origin `Location` / `Content-Location`, plus the tags in the
/// origin's `Edge-Purge-Tags`. `None` when the request or answer invalidates nothing.
pub fn invalidation_after_write(
    method: &http::Method,
    request_uri: &http::Uri,
    status: u16,
    response_headers: &http::HeaderMap,
) -> Option<PurgeTarget> {
    let unsafe_method = matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
    if !unsafe_method || !(200..300).contains(&status) {
        return None;
    }
    let mut urls = vec![request_uri.to_string()];
    for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
        let Some(value) = response_headers.get(&name).and_then(|v| v.to_str().ok()) else { continue };
        if let Some(url) = same_origin_url(request_uri, value) {
            urls.push(url);
        }
    }
    urls.sort();
    urls.dedup();
    Some(PurgeTarget::Urls(urls))
}

/// Tags the origin asks to purge with `Edge-Purge-Tags` (comma or space separated).
pub fn purge_tags_header(response_headers: &http::HeaderMap) -> Vec<String> {
    let mut tags: Vec<String> = response_headers
        .get_all(EDGE_PURGE_TAGS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|text| text.split([',', ' ']))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    tags.sort();
    tags.dedup();
    tags.truncate(MAX_ITEMS);
    tags
}

/// Resolves a Location-style reference against the request URL; `None` for another origin.
fn same_origin_url(base: &http::Uri, reference: &str) -> Option<String> {
    let (scheme, authority) = (base.scheme_str()?, base.authority()?.as_str());
    if reference.starts_with('/') && !reference.starts_with("//") {
        return Some(format!("{scheme}://{authority}{reference}"));
    }
    let uri: http::Uri = reference.parse().ok()?;
    let same = uri.scheme_str() == Some(scheme)
        && uri.authority().is_some_and(|a| a.as_str().eq_ignore_ascii_case(authority));
    same.then(|| uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_invalidate_their_url_and_same_origin_locations() {
        let uri: http::Uri = "https://shop.example/cart?id=1".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.insert("location", "/cart/42".parse().unwrap());
        h.insert("content-location", "https://elsewhere.example/x".parse().unwrap());
        let target = invalidation_after_write(&http::Method::POST, &uri, 201, &h).unwrap();
        assert_eq!(
            target,
            PurgeTarget::Urls(vec![
                "https://shop.example/cart/42".into(),
                "https://shop.example/cart?id=1".into()
            ])
        );
        assert_eq!(invalidation_after_write(&http::Method::GET, &uri, 200, &h), None);
        assert_eq!(invalidation_after_write(&http::Method::DELETE, &uri, 500, &h), None);
        h.insert("edge-purge-tags", "a, b c".parse().unwrap());
        assert_eq!(purge_tags_header(&h), vec!["a", "b", "c"]);
    }

    #[test]
    fn bodies_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_purge_request(br#"{"tags":["a","b"]}"#).unwrap(),
            PurgeRequest { target: PurgeTarget::Tags(vec!["a".into(), "b".into()]), soft: false }
        );
        assert_eq!(
            parse_purge_request(br#"{"prefix":"/api/","soft":true}"#).unwrap(),
            PurgeRequest { target: PurgeTarget::Prefix("/api/".into()), soft: true }
        );
        assert_eq!(parse_purge_request(br#"{"everything":true}"#).unwrap().target, PurgeTarget::Everything);
        for (bad, needle) in [
            (&b"not json"[..], "JSON object"),
            (br#"[]"#, "JSON object"),
            (br#"{}"#, "exactly one"),
            (br#"{"tags":["a"],"urls":["https://x/"]}"#, "exactly one"),
            (br#"{"tags":[]}"#, "must not be empty"),
            (br#"{"tags":"a"}"#, "JSON object"),
            (br#"{"urls":["/relative"]}"#, "absolute"),
            (br#"{"prefix":"api"}"#, "starting with /"),
            (br#"{"everything":false}"#, "must be true"),
            (br#"{"tags":["a"],"extra":1}"#, "JSON object"),
        ] {
            let err = parse_purge_request(bad).unwrap_err();
            assert!(err.contains(needle), "{}: {err}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn prefixes_stop_at_slashes() {
        let p: Vec<&str> = indexed_prefixes("/api/v1/items").collect();
        assert_eq!(p, vec!["/", "/api/", "/api/v1/"]);
        let p: Vec<&str> = indexed_prefixes("/api/v1/").collect();
        assert_eq!(p, vec!["/", "/api/", "/api/v1/"]);
    }
}
