//! Cache tags (docs §6.5): read from the origin's `Cache-Tag` / `Surrogate-Key` headers and
//! from rules, and indexed so that a tag purge finds its entries without SCAN or KEYS.
//!
//! The index is one Redis set per tag, `{namespace}:tag:{sha256(tag)}`, whose members are the
//! entries' stale keys. A set's TTL is pushed out to the longest-lived entry stored under it on
//! every store, so it never outlives its entries by more than one stale window; members whose
//! entries already expired cost one no-op `DEL` at purge time. A purge of a tag is therefore
//! O(entries under the tag).

use http::HeaderMap;

use crate::hygiene::{CACHE_TAG, SURROGATE_KEY};
use crate::key::CacheKeys;
use crate::keyspace::Namespace;
use crate::store::Op;

/// At most this many tags are kept per entry, each at most [`MAX_TAG_BYTES`].
pub const MAX_TAGS_PER_ENTRY: usize = 64;
pub const MAX_TAG_BYTES: usize = 256;
/// A tag set lives at least this long, so short-lived entries don't churn it.
const MIN_TAG_SET_TTL_MS: u64 = 3_600_000;

/// Tags from `Cache-Tag` and `Surrogate-Key` (comma or space separated), deduplicated.
pub fn tags_from_headers(headers: &HeaderMap) -> Vec<String> {
    let mut tags: Vec<String> = [CACHE_TAG, SURROGATE_KEY]
        .iter()
        .flat_map(|name| headers.get_all(*name).iter())
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split([',', ' ', '\t']))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TAG_BYTES)
        .map(str::to_string)
        .collect();
    tags.sort();
    tags.dedup();
    tags.truncate(MAX_TAGS_PER_ENTRY);
    tags
}

/// The ops that record `keys` under each of `tags`.
pub fn tag_index_ops(namespace: &Namespace, tags: &[String], keys: &CacheKeys, stale_ms: u64) -> Vec<Op> {
    let ttl_ms = stale_ms.max(MIN_TAG_SET_TTL_MS);
    tags.iter()
        .flat_map(|tag| {
            let key = namespace.tag_set(tag);
            [
                Op::SAdd { key: key.clone(), members: vec![keys.stale.clone()] },
                Op::ExpireAtLeast { key, ttl_ms },
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_on_commas_and_spaces_from_both_headers() {
        let mut h = HeaderMap::new();
        h.append("cache-tag", "a, b".parse().unwrap());
        h.append("cache-tag", "c".parse().unwrap());
        h.append("surrogate-key", "d a  e".parse().unwrap());
        assert_eq!(tags_from_headers(&h), vec!["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn index_ops_add_and_extend_each_tag_set() {
        let keys = CacheKeys {
            fresh: "edge:v0:f:h".into(),
            stale: "edge:v0:s:h".into(),
            lock: "edge:v0:l:h".into(),
            url_id: "u".into(),
        };
        let ops = tag_index_ops(&Namespace::new("edge"), &["t".into()], &keys, 10_000);
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[0],
            Op::SAdd { key: Namespace::new("edge").tag_set("t"), members: vec!["edge:v0:s:h".into()] }
        );
        assert_eq!(
            ops[1],
            Op::ExpireAtLeast { key: Namespace::new("edge").tag_set("t"), ttl_ms: MIN_TAG_SET_TTL_MS }
        );
    }
}
