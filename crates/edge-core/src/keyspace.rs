//! Every Redis key edge-cache writes, in one place (docs §7.4). A [`Namespace`] (from
//! `CACHE_NAMESPACE`) has one method per key shape; nothing else formats a key.
//!
//! | key | holds | TTL |
//! |---|---|---|
//! | `{ns}:version` | the cache version (`INCR` purges everything) | none |
//! | `{ns}:stale-before` | ms time: entries stored before it are stale (soft purge of everything) | none |
//! | `{ns}:v{n}:f:{h}` | fresh marker `1`, or hit-for-pass `P` | ttl, or 60 s |
//! | `{ns}:v{n}:s:{h}` | the encoded entry (the stale copy, also what a hit serves) | ttl + max(swr, sie) |
//! | `{ns}:v{n}:l:{h}` | the stampede lock's owner token | origin timeout + 2 s |
//! | `{ns}:vary:{url}` | the `Vary` names a URL answered with | as the stale copy |
//! | `{ns}:u:{url}` | set: stale keys of a URL's variants (URL purge) | ≥ the stale copies |
//! | `{ns}:p:{sha(prefix)}` | set: `"<stale key> <path>"` under a path prefix (prefix purge) | ≥ the stale copies |
//! | `{ns}:tag:{sha(tag)}` | set: stale keys carrying a tag (tag purge) | ≥ the stale copies |
//! | `{ns}:sess:{sha(id)}` | a session record (JSON) | SESSION_TTL, sliding |
//! | `{ns}:sess-fb:{sha(id)}` | a fallback cookie used up: `w` written back, `r` revoked | SESSION_FALLBACK_TTL + 60 s |
//! | `{ns}:stats:{counter}` | a request counter | none |
//!
//! `{h}` hashes the key URL (the normalised URL as the request's rule shapes it, docs §3.6),
//! the version, the variant's vary values and the rule's key parts
//! ([`crate::key::cache_keys_for`]); `{url}` hashes the key URL alone
//! ([`crate::key::url_id_of`]). No raw request text ever becomes part of a key.

use std::fmt;

use crate::key::hex_sha256;
use crate::session::SessionId;
use crate::stats::Counter;

/// The prefix of every key one deployment writes (`CACHE_NAMESPACE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace(String);

/// The three keys of one cached variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantKeys {
    pub fresh: String,
    pub stale: String,
    pub lock: String,
}

impl Namespace {
    pub fn new(name: &str) -> Self {
        Namespace(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn version(&self) -> String {
        format!("{}:version", self.0)
    }

    pub fn stale_before(&self) -> String {
        format!("{}:stale-before", self.0)
    }

    /// The fresh, stale and lock keys of the variant hashed to `hash` under cache `version`.
    pub fn variant(&self, version: u64, hash: &str) -> VariantKeys {
        let ns = &self.0;
        VariantKeys {
            fresh: format!("{ns}:v{version}:f:{hash}"),
            stale: format!("{ns}:v{version}:s:{hash}"),
            lock: format!("{ns}:v{version}:l:{hash}"),
        }
    }

    pub fn vary_spec(&self, url_id: &str) -> String {
        format!("{}:vary:{url_id}", self.0)
    }

    pub fn url_set(&self, url_id: &str) -> String {
        format!("{}:u:{url_id}", self.0)
    }

    pub fn prefix_set(&self, prefix: &str) -> String {
        format!("{}:p:{}", self.0, hex_sha256(prefix.as_bytes()))
    }

    pub fn tag_set(&self, tag: &str) -> String {
        format!("{}:tag:{}", self.0, hex_sha256(tag.as_bytes()))
    }

    /// Hashed so that a leaked key list (`SCAN`, a log) names no session.
    pub fn session(&self, id: &SessionId) -> String {
        format!("{}:sess:{}", self.0, hex_sha256(id.as_str().as_bytes()))
    }

    /// Marks the session carried by a fallback cookie as used up (written back or revoked):
    /// the cookie's copy is never written again (docs §5.11).
    pub fn session_fallback_used(&self, id: &SessionId) -> String {
        format!("{}:sess-fb:{}", self.0, hex_sha256(id.as_str().as_bytes()))
    }

    pub fn counter(&self, counter: Counter) -> String {
        format!("{}:stats:{}", self.0, counter.as_str())
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fresh key that belongs to a stale key found in an index set
/// (`{ns}:v{n}:s:{h}` → `{ns}:v{n}:f:{h}`).
pub fn fresh_key_of(stale_key: &str) -> Option<String> {
    let (prefix, hash) = stale_key.rsplit_once(":s:")?;
    Some(format!("{prefix}:f:{hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_starts_with_the_namespace_and_hashes_user_text() {
        let ns = Namespace::new("site");
        let keys = ns.variant(3, "abc");
        assert_eq!(keys.fresh, "site:v3:f:abc");
        assert_eq!(keys.stale, "site:v3:s:abc");
        assert_eq!(keys.lock, "site:v3:l:abc");
        assert_eq!(ns.version(), "site:version");
        assert_eq!(ns.stale_before(), "site:stale-before");
        assert_eq!(ns.vary_spec("u1"), "site:vary:u1");
        assert_eq!(ns.url_set("u1"), "site:u:u1");
        assert_eq!(ns.counter(Counter::Hit), "site:stats:hit");
        let tag = ns.tag_set("product 1");
        assert!(tag.starts_with("site:tag:") && !tag.contains("product"));
        let prefix = ns.prefix_set("/secret/");
        assert!(prefix.starts_with("site:p:") && !prefix.contains("secret"));
    }

    #[test]
    fn a_stale_key_maps_to_its_fresh_key() {
        let keys = Namespace::new("a:b").variant(1, "h");
        assert_eq!(fresh_key_of(&keys.stale).as_deref(), Some(keys.fresh.as_str()));
        assert_eq!(fresh_key_of("no-marker"), None);
    }
}
