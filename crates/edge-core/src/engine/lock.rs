//! The stampede lock (docs §4.5): taking it, releasing it, its owner token and timings.
//!
//! A lock is `SET lock_key <token> NX PX <ttl>`; its value is a random owner token so that it
//! is released by compare-and-delete ([`Op::CompareAndDelete`]): a holder that outlived its
//! lock never deletes the next holder's lock. The TTL bounds how long a crashed holder blocks
//! others.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::lookup::{found_from, reply_u64, Found, Lookup};
use super::{Cache, SharedEntry};
use crate::key::CacheKeys;
use crate::runtime::Runtime;
use crate::store::{Op, Reply, Store, StoreError};

/// What an attempt at the lock came to.
pub(super) enum LockAttempt {
    /// This request holds the lock (with this owner token) and must fetch.
    Taken(String),
    /// Someone stored a newer entry between our lookup and our attempt: serve it (the lock we
    /// took on the way is already being released).
    AlreadyFilled(SharedEntry),
    /// Another request holds the lock: wait for its result.
    Held,
    /// The cache version moved since the keys were computed (a purge of everything): the
    /// lookup is out of date, and the lock we may have taken on an old key is going back.
    VersionChanged,
}

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// `SET lock NX PX` and, in the same pipeline, a fresh look at the entry: a holder that
    /// stored and released between our lookup and our lock must not cost a second origin
    /// fetch. `seen_stored_at` is the store time of the entry the lookup saw, if any: only a
    /// newer one counts (an entry soft-purged by a stale-before time keeps its fresh marker).
    /// For a variant (`vary` not empty), the URL's Vary spec is kept alive for the lock's
    /// lifetime too: it lives only as long as the last stored variant, and a request that finds
    /// it gone while we work would lock the bare URL and fetch beside us (§8.3).
    ///
    /// The pipeline reads the cache version too: a lookup answered by the L1 (or one that a
    /// purge of everything overtook) computed its keys under a version Redis no longer has, and
    /// its lock would not exclude the fetch of an isolate on the new version (§8.3; the model
    /// test's find, seed 87).
    pub(super) async fn try_lock(
        &self,
        lookup: &Lookup,
        seen_stored_at: Option<u64>,
    ) -> Result<LockAttempt, StoreError> {
        let keys = &lookup.keys;
        let token = new_lock_token().map_err(|e| StoreError::Malformed(format!("no randomness: {e}")))?;
        let ttl_ms = self.settings.lock_ttl_ms.max(1);
        let take = Op::Set { key: keys.lock.clone(), value: token.clone(), ttl_ms: Some(ttl_ms), nx: true };
        let reread =
            Op::MGet(vec![keys.fresh.clone(), keys.stale.clone(), self.settings.namespace.version()]);
        let mut ops = vec![take, reread];
        if !lookup.vary.is_empty() {
            ops.push(Op::ExpireAtLeast { key: self.settings.namespace.vary_spec(&keys.url_id), ttl_ms });
        }
        let mut replies = self.store.run(&ops).await?.into_iter();
        let taken = read_taken(replies.next())?;
        let attempt = match read_reread(replies.next(), seen_stored_at) {
            Ok(attempt) => attempt,
            Err(e) => {
                // Nothing to go on: the lock goes back rather than block others for its TTL.
                if taken {
                    self.release(keys, &token);
                }
                return Err(e);
            }
        };
        if attempt.version != lookup.version {
            if taken {
                self.release(keys, &token);
            }
            self.learn_version(attempt.version);
            return Ok(LockAttempt::VersionChanged);
        }
        Ok(match (taken, attempt.newer) {
            (true, Some(entry)) => {
                self.release(keys, &token);
                LockAttempt::AlreadyFilled(entry)
            }
            (true, None) => LockAttempt::Taken(token),
            (false, _) => LockAttempt::Held,
        })
    }

    /// Runs the holder's `work` while renewing its lock (compare-and-extend on `token`) every
    /// third of the lock's TTL, so that waiters never take over from a live holder however
    /// slow the origin's body.
    pub(super) async fn renewing<F: std::future::Future>(
        &self,
        keys: &CacheKeys,
        token: &str,
        work: F,
    ) -> F::Output {
        let ttl_ms = self.settings.lock_ttl_ms.max(3);
        let renew = async {
            loop {
                self.rt.sleep(ttl_ms / 3).await;
                let extend =
                    Op::CompareAndExtend { key: keys.lock.clone(), token: token.to_string(), ttl_ms };
                // And the URL's Vary spec, if any, as `try_lock` does (a no-op when absent).
                let spec = Op::ExpireAtLeast { key: self.settings.namespace.vary_spec(&keys.url_id), ttl_ms };
                let _ = self.store.run(&[extend, spec]).await;
            }
        };
        let (work, renew) = (std::pin::pin!(work), std::pin::pin!(renew));
        match futures::future::select(work, renew).await {
            futures::future::Either::Left((output, _)) => output,
            futures::future::Either::Right((never, _)) => never,
        }
    }

    /// Releases the lock in the background, if it is still ours.
    pub(super) fn release(&self, keys: &CacheKeys, token: &str) {
        self.spawn_ops(vec![release_op(keys, token)]);
    }
}

/// The op that deletes the lock only while it still holds `token`.
pub(super) fn release_op(keys: &CacheKeys, token: &str) -> Op {
    Op::CompareAndDelete { key: keys.lock.clone(), token: token.to_string() }
}

/// What the lock pipeline's re-read found.
struct Reread {
    /// A fresh entry newer than the one the lookup saw.
    newer: Option<SharedEntry>,
    /// The cache version now (0 when unset, as the lookup reads it).
    version: u64,
}

/// Whether `SET NX` took the lock.
fn read_taken(reply: Option<Reply>) -> Result<bool, StoreError> {
    match reply {
        Some(reply) if reply.is_ok() => Ok(true),
        Some(Reply::Nil) => Ok(false),
        _ => Err(StoreError::Malformed("SET NX answered neither OK nor nil".into())),
    }
}

fn read_reread(reply: Option<Reply>, seen_stored_at: Option<u64>) -> Result<Reread, StoreError> {
    let Some(Reply::Array(values)) = reply else {
        return Err(StoreError::Malformed("the lock's re-read answered no array".into()));
    };
    let [fresh, stale, version]: [Reply; 3] = values
        .try_into()
        .map_err(|_| StoreError::Malformed("the lock's re-read answered the wrong length".into()))?;
    let newer = match found_from(fresh.into_bytes().as_deref(), stale.into_bytes().as_deref()) {
        Found::Fresh(entry) if seen_stored_at.is_none_or(|seen| entry.stored_at_ms > seen) => Some(entry),
        _ => None,
    };
    Ok(Reread { newer, version: reply_u64(version).unwrap_or(0) })
}

/// A fresh random owner token (128 bits from the platform CSPRNG).
pub fn new_lock_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The longest a lock lives without renewal. A live holder renews it every third of that
/// ([`Cache::renewing`]), so a dead holder blocks its waiters for at most this long.
pub const LOCK_LEASE_MS: u64 = 10_000;

/// How long a lock lives between renewals: the lease, or less for a short origin timeout (plus
/// a margin for storing the result).
pub fn lock_ttl_ms(origin_timeout_ms: u64) -> u64 {
    origin_timeout_ms.saturating_add(2_000).min(LOCK_LEASE_MS)
}

/// The least and the most time between two Redis polls for one key in one isolate: a short
/// fetch is noticed quickly, a long wait costs few Redis requests.
pub const POLL_FIRST_MS: u64 = 10;
pub const POLL_MAX_MS: u64 = 80;

/// The least time between two Redis polls for one key in one isolate, growing with how long
/// the waiters have waited: quick for a fast origin, cheap for a slow one.
pub fn poll_gap_ms(waited_ms: u64) -> u64 {
    (waited_ms / 5).clamp(POLL_FIRST_MS, POLL_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{entry, stored, Harness};
    use std::collections::HashSet;

    #[test]
    fn the_first_attempt_takes_the_lock_and_the_second_waits() {
        let h = Harness::new();
        let lookup = h.run(h.cache().lookup(&h.get("https://example.com/a"), &[]));
        let keys = &lookup.keys;
        let Ok(LockAttempt::Taken(token)) = h.run(h.cache().try_lock(&lookup, None)) else {
            panic!("first attempt must take the lock")
        };
        assert!(matches!(h.run(h.cache().try_lock(&lookup, None)), Ok(LockAttempt::Held)));
        h.run(h.store.run(&[release_op(keys, "someone else")])).unwrap();
        assert!(
            matches!(h.run(h.cache().try_lock(&lookup, None)), Ok(LockAttempt::Held)),
            "not ours to release"
        );
        h.run(h.store.run(&[release_op(keys, &token)])).unwrap();
        assert!(matches!(h.run(h.cache().try_lock(&lookup, None)), Ok(LockAttempt::Taken(_))));
    }

    #[test]
    fn an_entry_stored_since_the_lookup_is_served_instead_of_fetched() {
        let h = Harness::new();
        let lookup = h.run(h.cache().lookup(&h.get("https://example.com/a"), &[]));
        let now = h.rt.now_ms();
        h.store_entry(&lookup.keys, &entry(200, b"new", now), true);
        assert!(matches!(h.run(h.cache().try_lock(&lookup, None)), Ok(LockAttempt::AlreadyFilled(_))));
        h.drain();
        // The same entry seen by the lookup does not count: it was soft-purged, refetch it.
        assert!(matches!(h.run(h.cache().try_lock(&lookup, Some(now))), Ok(LockAttempt::Taken(_))));
    }

    /// Found by the model test (`state_model` seed 37): the spec expired with its last stored
    /// variant while a holder filled another; a request arriving then locked the bare URL.
    #[test]
    fn a_variants_lock_keeps_the_vary_spec_alive_while_it_is_held() {
        let h = Harness::new();
        let mut lookup = h.run(h.cache().lookup(&h.get("https://example.com/a"), &[]));
        let spec = h.settings.namespace.vary_spec(&lookup.keys.url_id);
        let set = Op::Set { key: spec.clone(), value: "accept".into(), ttl_ms: Some(100), nx: false };
        h.run(h.store.run(&[set])).unwrap();
        lookup.vary = vec!["accept".to_string()];
        assert!(matches!(h.run(h.cache().try_lock(&lookup, None)), Ok(LockAttempt::Taken(_))));
        let left = h.run(h.store.one(Op::PTtl(spec))).unwrap().as_int().unwrap_or(0);
        assert!(left >= h.settings.lock_ttl_ms as i64 - 1, "the spec lives as long as the lock: {left} ms");
    }

    /// Found by the model test (`state_model` seed 87, L1 on): an isolate that had not yet seen
    /// a purge of everything made elsewhere answered from its L1 and refreshed early under the
    /// old version's lock, beside the other isolate's fetch under the new one. The lock's
    /// pipeline reads the version: an attempt from an old lookup takes nothing.
    #[test]
    fn an_attempt_from_before_a_purge_of_everything_takes_no_lock_and_learns_the_version() {
        let h = Harness::new();
        let req = h.get("https://example.com/a");
        let old = h.run(h.cache().lookup(&req, &[]));
        h.run(h.store.run(&[Op::IncrBy { key: h.settings.namespace.version(), by: 1 }])).unwrap();
        assert!(matches!(h.run(h.cache().try_lock(&old, None)), Ok(LockAttempt::VersionChanged)));
        h.drain();
        let lock = h.run(h.store.one(Op::Get(old.keys.lock.clone()))).unwrap();
        assert_eq!(lock, Reply::Nil, "the old key's lock went back");
        assert_eq!(h.isolate.version.get(), old.version + 1, "the isolate took the new version");
        let new = h.run(h.cache().lookup(&req, &[]));
        assert_eq!(new.round_trips, 1, "no second read for the version");
        assert!(matches!(h.run(h.cache().try_lock(&new, None)), Ok(LockAttempt::Taken(_))));
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        assert!(read_taken(Some(Reply::Int(3))).is_err());
        assert!(read_taken(None).is_err());
        assert!(read_reread(None, None).is_err());
        assert!(read_reread(Some(Reply::Array(vec![Reply::Nil])), None).is_err(), "short");
        let copy = stored(&entry(200, b"x", 5));
        let reread =
            Reply::Array(vec![Reply::Bytes(b"1".to_vec()), Reply::Bytes(copy), Reply::Bytes(b"7".to_vec())]);
        let read = read_reread(Some(reread), Some(5)).unwrap();
        assert!(read.newer.is_none(), "not newer than the copy the lookup saw");
        assert_eq!(read.version, 7);
    }

    /// A reply to the re-read that is not the protocol puts the lock back at once.
    #[test]
    fn a_garbled_reread_releases_the_lock_it_took() {
        let h = Harness::new();
        let lookup = h.run(h.cache().lookup(&h.get("https://example.com/a"), &[]));
        let garbled = GarbledReread(h.store.clone());
        let cache = Cache::new(garbled, h.rt.clone(), h.settings.clone(), h.isolate.clone(), h.stats.clone());
        assert!(h.run(cache.try_lock(&lookup, None)).is_err());
        h.drain();
        assert_eq!(h.run(h.store.one(Op::Get(lookup.keys.lock.clone()))).unwrap(), Reply::Nil);
    }

    /// The memory store with its answer to a `MGET` replaced by a number: a fault the real
    /// store cannot produce on demand.
    #[derive(Clone)]
    struct GarbledReread(crate::memory_store::MemoryStore<crate::clock::ManualClock>);

    impl Store for GarbledReread {
        fn kind(&self) -> crate::store::StoreKind {
            self.0.kind()
        }
        async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
            let replies = self.0.run(ops).await?;
            Ok(ops
                .iter()
                .zip(replies)
                .map(|(op, reply)| if matches!(op, Op::MGet(_)) { Reply::Int(1) } else { reply })
                .collect())
        }
        async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
            self.0.atomic(ops).await
        }
    }

    #[test]
    fn tokens_are_random_and_url_safe() {
        let tokens: HashSet<String> = (0..1_000).map(|_| new_lock_token().unwrap()).collect();
        assert_eq!(tokens.len(), 1_000);
        assert!(tokens
            .iter()
            .all(|t| t.len() == 22 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')));
    }

    #[test]
    fn the_poll_gap_grows_with_the_wait() {
        assert_eq!(poll_gap_ms(0), POLL_FIRST_MS);
        assert_eq!(poll_gap_ms(200), 40);
        assert_eq!(poll_gap_ms(60_000), POLL_MAX_MS);
    }
}
