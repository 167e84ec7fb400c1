//! Lookup: one round trip (`MGET version stale-before vary fresh stale`, plus whatever the
//! caller adds, such as the session) and what its replies mean.

use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{Cache, CacheRequest, SharedEntry, MAX_ROUNDS};
use crate::entry::CacheEntry;
use crate::key::{normalized_path, CacheKeys};
use crate::l1::L1Put;
use crate::runtime::Runtime;
use crate::store::{Op, Reply, Store, StoreError};

/// Fresh-marker values.
pub(super) const FRESH_MARKER: &str = "1";
pub(super) const HIT_FOR_PASS_MARKER: &str = "P";

/// Bounds the isolate's memory of URLs' `Vary` names.
const MAX_VARY_HINTS: usize = 10_000;

/// What a lookup found for one variant.
#[derive(Clone, Debug)]
pub enum Found {
    /// The fresh marker and the stale copy are both present.
    Fresh(SharedEntry),
    /// Only the stale copy (the fresh marker expired or was soft-purged).
    Stale(SharedEntry),
    /// The key recently produced an uncacheable answer (the stale copy may remain for sie).
    HitForPass(Option<SharedEntry>),
    Absent,
    /// Redis failed: fail open.
    Unavailable(StoreError),
}

impl Found {
    /// The store error, when the lookup failed.
    pub fn error(&self) -> Option<&StoreError> {
        match self {
            Found::Unavailable(e) => Some(e),
            _ => None,
        }
    }
}

/// The result of [`Cache::lookup`]: the cache state and the replies to the caller's extra ops.
pub struct Lookup {
    pub keys: CacheKeys,
    pub found: Found,
    /// Replies to the `extra` ops, or the round trip's error.
    pub extra: Result<Vec<Reply>, StoreError>,
    /// The `Vary` names the keys were computed with.
    pub vary: Vec<String>,
    /// The cache version the keys were computed with: a fill stores under it, even when its
    /// answer's `Vary` names change the variant key (§8.1: a purge of everything meanwhile
    /// must not see the fill's copy).
    pub version: u64,
    /// Redis HTTP requests this lookup cost (0 for a hit in the isolate's L1).
    pub round_trips: u32,
    /// How long the entry's last fill took (the fresh marker's δ), when known: early refresh
    /// starts sooner for an entry that is slow to fetch.
    pub fill_ms: Option<u64>,
    /// When Redis last confirmed the version the keys use (the reply's time, or for an L1 hit
    /// its copy's confirmation): what a fill's copy is kept in the L1 as confirmed at.
    pub confirmed_at_ms: u64,
}

impl Lookup {
    /// The keys and `Vary` names alone, for work that outlives the request's own lookup.
    pub(super) fn detached(&self) -> Lookup {
        Lookup {
            keys: self.keys.clone(),
            found: Found::Absent,
            extra: Ok(Vec::new()),
            vary: self.vary.clone(),
            version: self.version,
            round_trips: 0,
            fill_ms: self.fill_ms,
            confirmed_at_ms: self.confirmed_at_ms,
        }
    }
}

/// The five values of a lookup's `MGET`, parsed.
struct LookupReply {
    version: u64,
    stale_before: u64,
    vary: Vec<String>,
    fresh: Option<Vec<u8>>,
    stale: Option<Vec<u8>>,
}

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// Takes the cache version Redis answered as this isolate's hint.
    pub(super) fn learn_version(&self, version: u64) {
        if self.isolate.version.replace(version) != version {
            // A purge of everything: what the L1 holds is under the old version.
            self.isolate.l1.clear();
        }
    }

    /// Looks the request up in one round trip, with `extra` ops (the session) riding in the same
    /// pipeline. Only when the namespace version or the URL's `Vary` names turned out different
    /// from this isolate's hints does it look again (without the extras).
    pub async fn lookup(&self, req: &CacheRequest, extra: &[Op]) -> Lookup {
        let url = self.url_id_for(req);
        let namespace = &self.settings.namespace;
        let mut version = self.isolate.version.get();
        let mut vary = self.vary_hint(&url);
        let mut extra_replies: Option<Result<Vec<Reply>, StoreError>> = None;
        let mut round_trips = 0;
        // The L1 first, for a request with nothing else to read (no session): a fresh copy
        // Redis confirmed within CACHE_L1_TTL_MS costs no round trip.
        if extra.is_empty() {
            let keys = self.keys_for(req, version, &vary);
            if let Some(hit) = self.isolate.l1.fresh(&keys.stale, self.rt.now_ms()) {
                let found = Found::Fresh(hit.entry);
                return Lookup {
                    keys,
                    found,
                    extra: Ok(Vec::new()),
                    vary,
                    version,
                    round_trips,
                    fill_ms: hit.fill_ms,
                    confirmed_at_ms: hit.confirmed_at_ms,
                };
            }
        }
        loop {
            let keys = self.keys_for(req, version, &vary);
            let mut ops = vec![Op::MGet(vec![
                namespace.version(),
                namespace.stale_before(),
                namespace.vary_spec(&url),
                keys.fresh.clone(),
                keys.stale.clone(),
            ])];
            if extra_replies.is_none() {
                ops.extend_from_slice(extra);
            }
            round_trips += 1;
            let (reply, rest) = match self.store.run(&ops).await {
                Err(e) => (Err(e), None),
                Ok(mut replies) if !replies.is_empty() => {
                    let rest = replies.split_off(1);
                    (parse_lookup_reply(replies.pop()), Some(rest))
                }
                Ok(_) => (Err(StoreError::Malformed("empty pipeline answer".into())), None),
            };
            if extra_replies.is_none() {
                extra_replies = Some(match (&reply, rest) {
                    (_, Some(rest)) => Ok(rest),
                    (Err(e), None) => Err(e.clone()),
                    (Ok(_), None) => Ok(Vec::new()),
                });
            }
            let extra = extra_replies.clone().unwrap_or_else(|| Ok(Vec::new()));
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    let found = Found::Unavailable(e);
                    let confirmed_at_ms = self.rt.now_ms();
                    return Lookup {
                        keys,
                        found,
                        extra,
                        vary,
                        version,
                        round_trips,
                        fill_ms: None,
                        confirmed_at_ms,
                    };
                }
            };
            let version_changed = reply.version != version;
            let vary_changed = reply.vary != vary;
            if version_changed {
                self.learn_version(reply.version);
                version = reply.version;
            }
            if reply.stale_before != self.isolate.stale_before.replace(reply.stale_before) {
                self.isolate.l1.clear();
            }
            if vary_changed {
                self.remember_vary(&url, &reply.vary);
                vary = reply.vary;
            }
            if (version_changed || vary_changed) && round_trips < MAX_ROUNDS {
                continue;
            }
            let found = match found_from(reply.fresh.as_deref(), reply.stale.as_deref()) {
                // A soft purge of everything: entries stored before it count as stale, and so do
                // those of its millisecond (a fill that began before the purge may land in it).
                Found::Fresh(entry) if entry.stored_at_ms <= reply.stale_before => Found::Stale(entry),
                found => found,
            };
            let fill_ms = reply.fresh.as_deref().and_then(marker_fill_ms);
            let confirmed_at_ms = self.rt.now_ms();
            self.keep_in_l1(req, &keys, &found, fill_ms, confirmed_at_ms);
            return Lookup { keys, found, extra, vary, version, round_trips, fill_ms, confirmed_at_ms };
        }
    }

    /// Mirrors what Redis said about a variant into the L1: an entry is kept (confirmed at
    /// `confirmed_at_ms`), anything else drops the L1's copy.
    pub(super) fn keep_in_l1(
        &self,
        req: &CacheRequest,
        keys: &CacheKeys,
        found: &Found,
        fill_ms: Option<u64>,
        confirmed_at_ms: u64,
    ) {
        let l1 = &self.isolate.l1;
        if !l1.enabled() {
            return;
        }
        let (entry, fresh_marker) = match found {
            Found::Fresh(entry) => (entry, true),
            Found::Stale(entry) => (entry, false),
            Found::HitForPass(_) | Found::Absent => return l1.remove(&keys.stale),
            Found::Unavailable(_) => return,
        };
        let put = L1Put {
            entry: entry.clone(),
            fresh_marker,
            fill_ms,
            url_id: keys.url_id.clone(),
            path: normalized_path(req.uri.path()),
        };
        l1.put(&keys.stale, put, confirmed_at_ms);
    }

    /// Keeps an entry just stored (by a fill, a revalidation, degraded mode's fetch) in the L1,
    /// confirmed when `lookup` read Redis: the store itself reads nothing, so a purge of
    /// everything made elsewhere since is seen no later than the L1 lifetime after that read.
    pub(super) fn keep_stored_in_l1(
        &self,
        req: &CacheRequest,
        keys: &CacheKeys,
        entry: &SharedEntry,
        fill_ms: Option<u64>,
        lookup: &Lookup,
    ) {
        let found =
            if entry.freshness.ttl > 0 { Found::Fresh(entry.clone()) } else { Found::Stale(entry.clone()) };
        self.keep_in_l1(req, keys, &found, fill_ms, lookup.confirmed_at_ms);
    }

    fn vary_hint(&self, url: &str) -> Vec<String> {
        self.isolate.vary_hints.borrow().get(url).cloned().unwrap_or_default()
    }

    pub(super) fn remember_vary(&self, url: &str, names: &[String]) {
        let mut hints = self.isolate.vary_hints.borrow_mut();
        if names.is_empty() {
            hints.remove(url);
            return;
        }
        if hints.len() >= MAX_VARY_HINTS {
            hints.clear();
        }
        hints.insert(url.to_string(), names.to_vec());
    }
}

/// The lookup's `MGET` reply: five values, or an error saying what was wrong.
fn parse_lookup_reply(reply: Option<Reply>) -> Result<LookupReply, StoreError> {
    let values = match reply {
        Some(Reply::Array(values)) if values.len() == 5 => values,
        Some(Reply::Error(e)) => return Err(StoreError::Malformed(e)),
        _ => return Err(StoreError::Malformed("MGET answered the wrong shape".into())),
    };
    let mut values = values.into_iter();
    Ok(LookupReply {
        version: values.next().and_then(reply_u64).unwrap_or(0),
        stale_before: values.next().and_then(reply_u64).unwrap_or(0),
        vary: values.next().and_then(Reply::into_bytes).map(|b| parse_vary_spec(&b)).unwrap_or_default(),
        fresh: values.next().and_then(Reply::into_bytes),
        stale: values.next().and_then(Reply::into_bytes),
    })
}

pub(super) fn reply_u64(reply: Reply) -> Option<u64> {
    match reply {
        Reply::Int(i) => u64::try_from(i).ok(),
        other => other.into_bytes().and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok()),
    }
}

/// A stored `Vary` spec: lower-cased names, sorted, without duplicates or blanks.
pub(super) fn parse_vary_spec(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut names: Vec<String> =
        text.split(',').map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect();
    names.sort();
    names.dedup();
    names
}

/// The fresh marker a fill writes: `1;<ms the fill took>` (a bare `1` from older writers
/// says nothing of it).
pub(super) fn fresh_marker(fill_ms: Option<u64>) -> String {
    match fill_ms {
        Some(ms) => format!("{FRESH_MARKER};{ms}"),
        None => FRESH_MARKER.to_string(),
    }
}

/// The fill duration a fresh marker carries, if any.
fn marker_fill_ms(marker: &[u8]) -> Option<u64> {
    let (_, ms) = std::str::from_utf8(marker).ok()?.split_once(';')?;
    ms.trim().parse().ok()
}

fn decode_entry(stored: &[u8]) -> Option<SharedEntry> {
    let raw = STANDARD.decode(stored).ok()?;
    CacheEntry::decode(&raw).ok().map(Rc::new)
}

/// Interprets a fresh marker and a stale copy. An entry that does not decode is absent (and
/// will be replaced by the next fill).
pub(super) fn found_from(fresh: Option<&[u8]>, stale: Option<&[u8]>) -> Found {
    let entry = stale.and_then(decode_entry);
    match (fresh, entry) {
        (Some(m), entry) if m == HIT_FOR_PASS_MARKER.as_bytes() => Found::HitForPass(entry),
        (Some(_), Some(entry)) => Found::Fresh(entry),
        (None, Some(entry)) => Found::Stale(entry),
        (_, None) => Found::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{entry, stored, Harness};

    #[test]
    fn markers_and_copies_map_to_what_was_found() {
        let copy = stored(&entry(200, b"body", 1_000));
        assert!(matches!(found_from(Some(b"1"), Some(&copy)), Found::Fresh(_)));
        assert!(matches!(found_from(None, Some(&copy)), Found::Stale(_)));
        assert!(matches!(found_from(Some(b"P"), Some(&copy)), Found::HitForPass(Some(_))));
        assert!(matches!(found_from(Some(b"P"), None), Found::HitForPass(None)));
        assert!(matches!(found_from(Some(b"1"), None), Found::Absent));
        // A corrupt copy is a miss, never an error.
        assert!(matches!(found_from(Some(b"1"), Some(b"not base64!")), Found::Absent));
        assert!(matches!(found_from(Some(b"1"), Some(b"aGVsbG8=")), Found::Absent));
    }

    #[test]
    fn the_fresh_marker_carries_the_fill_time() {
        assert_eq!(fresh_marker(Some(120)), "1;120");
        assert_eq!(marker_fill_ms(fresh_marker(Some(120)).as_bytes()), Some(120));
        assert_eq!(marker_fill_ms(b"1"), None, "an older writer's marker");
        assert_eq!(marker_fill_ms(b"1;x"), None);
        let copy = stored(&entry(200, b"body", 1_000));
        assert!(matches!(found_from(Some(b"1;120"), Some(&copy)), Found::Fresh(_)));
    }

    #[test]
    fn vary_specs_are_normalised() {
        assert_eq!(
            parse_vary_spec(b" Accept-Encoding,cookie,, accept-encoding "),
            ["accept-encoding", "cookie"]
        );
        assert!(parse_vary_spec(b"").is_empty());
    }

    #[test]
    fn counters_read_as_integers_or_text() {
        assert_eq!(reply_u64(Reply::Int(7)), Some(7));
        assert_eq!(reply_u64(Reply::Bytes(b" 12 ".to_vec())), Some(12));
        assert_eq!(reply_u64(Reply::Int(-1)), None);
        assert_eq!(reply_u64(Reply::Bytes(b"x".to_vec())), None);
        assert_eq!(reply_u64(Reply::Nil), None);
    }

    #[test]
    fn a_malformed_reply_is_unavailable_not_a_panic() {
        assert!(parse_lookup_reply(None).is_err());
        assert!(parse_lookup_reply(Some(Reply::Array(vec![Reply::Nil]))).is_err());
        assert!(
            matches!(parse_lookup_reply(Some(Reply::Error("ERR x".into()))), Err(StoreError::Malformed(e)) if e == "ERR x")
        );
    }

    #[test]
    fn one_round_trip_carries_the_extras_and_a_version_change_costs_one_more() {
        let h = Harness::new();
        let req = h.get("https://example.com/a");
        let lookup = h.run(h.cache().lookup(&req, &[Op::Get("extra".into())]));
        assert_eq!(lookup.round_trips, 1);
        assert!(matches!(lookup.found, Found::Absent));
        assert_eq!(lookup.extra.as_ref().map(Vec::len).ok(), Some(1));

        h.run(h.store.run(&[Op::IncrBy { key: h.settings.namespace.version(), by: 1 }])).unwrap();
        let lookup = h.run(h.cache().lookup(&req, &[Op::Get("extra".into())]));
        assert_eq!(lookup.round_trips, 2, "the stale version hint costs one more read");
        assert!(lookup.keys.fresh.contains(":v1:"));
        assert_eq!(lookup.extra.as_ref().map(Vec::len).ok(), Some(1), "extras answered once");
    }

    #[test]
    fn a_soft_purge_of_everything_turns_older_fresh_entries_stale() {
        let h = Harness::new();
        let req = h.get("https://example.com/a");
        let keys = h.run(h.cache().lookup(&req, &[])).keys;
        let copy = entry(200, b"x", h.rt.now_ms().saturating_sub(10));
        h.store_entry(&keys, &copy, true);
        assert!(matches!(h.run(h.cache().lookup(&req, &[])).found, Found::Fresh(_)));
        let at = h.rt.now_ms().to_string();
        h.run(h.store.run(&[Op::Set {
            key: h.settings.namespace.stale_before(),
            value: at,
            ttl_ms: None,
            nx: false,
        }]))
        .unwrap();
        assert!(matches!(h.run(h.cache().lookup(&req, &[])).found, Found::Stale(_)));
        // One stored in the purge's own millisecond is stale too (the model test's find).
        let same_ms = entry(200, b"y", h.rt.now_ms());
        h.store_entry(&keys, &same_ms, true);
        assert!(matches!(h.run(h.cache().lookup(&req, &[])).found, Found::Stale(ref e) if e.body == b"y"));
    }
}
