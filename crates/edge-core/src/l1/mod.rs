//! L1: the isolate's own copy of hot shared entries, in front of Redis (docs §4.15).
//!
//! A byte-capped LRU keyed by the variant's stale key (which holds the namespace's cache
//! version, so a purge of everything makes every older item unreachable). Each item remembers
//! when Redis last confirmed it: within `CACHE_L1_TTL_MS` of that, a fresh item is served
//! without asking Redis; after it, the item is kept (until its stale windows end or the LRU
//! evicts it) only for degraded mode, when Redis cannot be asked at all.
//!
//! Never holds a variant keyed on the session or the cookies: a destroyed session must stop
//! working at once, and without Redis a session cannot be checked.

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::entry::CacheEntry;
use crate::hygiene::is_reserved;
use crate::purge::{under_prefix, PurgeTarget};

/// Bytes counted for an item besides its body and headers (key, map slots, bookkeeping).
const ITEM_OVERHEAD_BYTES: u64 = 256;

/// What the L1 says about a variant while Redis can be asked.
#[derive(Clone, Debug)]
pub struct L1Hit {
    pub entry: Rc<CacheEntry>,
    /// The last fill's duration (the δ of early refresh), when known.
    pub fill_ms: Option<u64>,
    /// When Redis last vouched for it.
    pub confirmed_at_ms: u64,
}

/// What the caller knows about an entry it hands to the L1.
pub struct L1Put {
    pub entry: Rc<CacheEntry>,
    /// Redis held the fresh marker (false: only the stale copy, e.g. after a soft purge).
    pub fresh_marker: bool,
    pub fill_ms: Option<u64>,
    /// The URL's id (`key::url_id`) and normalised path, for purges made through this isolate.
    pub url_id: String,
    pub path: String,
}

struct Item {
    entry: Rc<CacheEntry>,
    fresh_marker: bool,
    fill_ms: Option<u64>,
    url_id: String,
    path: String,
    /// When Redis (or this isolate's own fill) last vouched for the item.
    confirmed_at_ms: u64,
    size: u64,
    /// When it was last used, on the L1's own counter.
    last_used: u64,
}

#[derive(Default)]
struct Items {
    by_key: HashMap<String, Item>,
    /// Counts uses: the recency order.
    uses: u64,
    bytes: u64,
}

/// The per-isolate L1. `capacity_bytes` 0 turns it off (every call is a no-op).
#[derive(Default)]
pub struct L1 {
    capacity_bytes: u64,
    ttl_ms: u64,
    items: RefCell<Items>,
}

impl L1 {
    pub fn new(capacity_bytes: u64, ttl_ms: u64) -> Self {
        L1 { capacity_bytes, ttl_ms, items: RefCell::default() }
    }

    pub fn enabled(&self) -> bool {
        self.capacity_bytes > 0
    }

    /// The item for `key`, if Redis confirmed it within the L1 lifetime and it is fresh by its
    /// own clock with its fresh marker: served without a Redis request.
    pub fn fresh(&self, key: &str, now_ms: u64) -> Option<L1Hit> {
        if !self.enabled() {
            return None;
        }
        let mut items = self.items.borrow_mut();
        let item = items.by_key.get(key)?;
        let confirmed = now_ms.saturating_sub(item.confirmed_at_ms) < self.ttl_ms;
        if !(confirmed && item.fresh_marker && item.entry.is_fresh(now_ms)) {
            return None;
        }
        let hit =
            L1Hit { entry: item.entry.clone(), fill_ms: item.fill_ms, confirmed_at_ms: item.confirmed_at_ms };
        items.touch(key);
        Some(hit)
    }

    /// The item for `key` whatever its age, and whether Redis held its fresh marker, for
    /// degraded mode (the caller checks its stale windows). An item past both its windows is
    /// dropped.
    pub fn any(&self, key: &str, now_ms: u64) -> Option<(Rc<CacheEntry>, bool)> {
        if !self.enabled() {
            return None;
        }
        let mut items = self.items.borrow_mut();
        let item = items.by_key.get(key)?;
        let (entry, fresh_marker) = (item.entry.clone(), item.fresh_marker);
        if !(entry.within_swr(now_ms) || entry.within_sie(now_ms)) {
            items.remove(key);
            return None;
        }
        items.touch(key);
        Some((entry, fresh_marker))
    }

    /// Keeps `put` as the item for `key`, confirmed at `confirmed_at_ms` (when Redis last said
    /// which cache version holds it: for a fill, its lookup's time, so that a fill that lands
    /// after a purge of everything made elsewhere is trusted no longer than the purge allows,
    /// docs §8.1); evicts the least recently used items
    /// to make room. A variant keyed on the session or the cookies, or larger than an eighth
    /// of the capacity, is not kept (and any older copy is dropped).
    pub fn put(&self, key: &str, put: L1Put, confirmed_at_ms: u64) {
        if !self.enabled() {
            return;
        }
        let mut items = self.items.borrow_mut();
        items.remove(key);
        let size = item_size(key, &put);
        if personal(&put.entry) || size > self.capacity_bytes / 8 {
            return;
        }
        if items.bytes + size > self.capacity_bytes {
            items.evict(self.capacity_bytes - self.capacity_bytes / 8 - size);
        }
        let last_used = items.tick();
        items.bytes += size;
        let L1Put { entry, fresh_marker, fill_ms, url_id, path } = put;
        items.by_key.insert(
            key.to_string(),
            Item { entry, fresh_marker, fill_ms, url_id, path, confirmed_at_ms, size, last_used },
        );
    }

    /// Drops the item for `key` (Redis says it is gone or no longer an entry).
    pub fn remove(&self, key: &str) {
        self.items.borrow_mut().remove(key);
    }

    /// Drops everything.
    pub fn clear(&self) {
        *self.items.borrow_mut() = Items::default();
    }

    /// Drops what a purge (or a write's invalidation) made through this isolate names. A soft
    /// purge drops too: the next request asks Redis, which serves the copy as stale. A URL
    /// target drops the items of `url_ids`: the URLs' ids under every rule that could govern
    /// them (`CacheRules::url_ids`), the derivation lookups and purges in Redis use.
    pub fn purge(&self, target: &PurgeTarget, url_ids: &[String]) {
        if !self.enabled() {
            return;
        }
        let doomed: Vec<String> = {
            let items = self.items.borrow();
            let hit = |item: &Item| match target {
                PurgeTarget::Everything => true,
                PurgeTarget::Tags(tags) => item.entry.tags.iter().any(|t| tags.contains(t)),
                PurgeTarget::Urls(_) => url_ids.contains(&item.url_id),
                PurgeTarget::Prefix(prefix) => under_prefix(&item.path, prefix),
            };
            items.by_key.iter().filter(|(_, item)| hit(item)).map(|(key, _)| key.clone()).collect()
        };
        let mut items = self.items.borrow_mut();
        for key in doomed {
            items.remove(&key);
        }
    }

    /// Items and bytes held.
    pub fn usage(&self) -> (usize, u64) {
        let items = self.items.borrow();
        (items.by_key.len(), items.bytes)
    }
}

impl Items {
    fn tick(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }

    fn touch(&mut self, key: &str) {
        let now = self.tick();
        if let Some(item) = self.by_key.get_mut(key) {
            item.last_used = now;
        }
    }

    /// Drops the least recently used items until at most `target` bytes are held. Evicting an
    /// eighth of the capacity at a time keeps the sort's cost to one per many inserts.
    fn evict(&mut self, target: u64) {
        let mut by_age: Vec<(u64, String)> =
            self.by_key.iter().map(|(key, item)| (item.last_used, key.clone())).collect();
        by_age.sort_unstable_by_key(|(last_used, _)| *last_used);
        for (_, key) in by_age {
            if self.bytes <= target {
                break;
            }
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(item) = self.by_key.remove(key) {
            self.bytes = self.bytes.saturating_sub(item.size);
        }
    }
}

/// A variant that belongs to one session or one set of cookies.
fn personal(entry: &CacheEntry) -> bool {
    entry.vary.iter().any(|name| name == "cookie" || is_reserved(name))
}

fn item_size(key: &str, put: &L1Put) -> u64 {
    let entry = &put.entry;
    let headers: usize = entry.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    let tags: usize = entry.tags.iter().map(String::len).sum();
    let own = 2 * key.len() + put.url_id.len() + put.path.len();
    (entry.body.len() + headers + tags + own) as u64 + ITEM_OVERHEAD_BYTES
}
