//! Waiting for the lock holder (docs §4.6): one waiter per key and isolate polls Redis on its
//! timer; the others sleep on the isolate's poll board, with no timer but their deadline, until
//! it publishes an outcome.

use futures::future::{select, Either};

use super::lock::poll_gap_ms;
use super::lookup::{found_from, parse_vary_spec, reply_u64, Found, Lookup};
use super::poll_board::PollOutcome;
use super::Cache;
use crate::key::CacheKeys;
use crate::runtime::Runtime;
use crate::store::{Op, Reply, Store};

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// Waits for the lock holder's result until `deadline`. One waiter of the isolate polls
    /// the key; the others are woken by what it (or a lock holder of this isolate) publishes.
    pub(super) async fn wait_for_holder(&self, lookup: &Lookup, deadline: u64) -> PollOutcome {
        let started = self.rt.now_ms();
        let board = &self.isolate.polls;
        board.forget_old(started);
        let waiting = board.wait(&lookup.keys.lock);
        let spec_key = self.settings.namespace.vary_spec(&lookup.keys.url_id);
        loop {
            if let Some(outcome) = waiting.outcome() {
                return outcome;
            }
            let now = self.rt.now_ms();
            if now >= deadline {
                return PollOutcome::TimedOut;
            }
            let Some(claim) = board.try_claim(&lookup.keys.lock, now, 0) else {
                // Someone else polls: sleep until the board changes, or the deadline.
                let (wake, woken) = self.rt.wake_signal();
                let _sleeping = board.sleep_on(&lookup.keys.lock, wake);
                let timeout = std::pin::pin!(self.rt.sleep(deadline - now));
                if let Either::Right(_) = select(woken, timeout).await {
                    return waiting.outcome().unwrap_or(PollOutcome::TimedOut);
                }
                continue;
            };
            // This waiter is the isolate's poller for the key until it has an outcome.
            loop {
                let now = self.rt.now_ms();
                if now >= deadline {
                    return PollOutcome::TimedOut;
                }
                let gap = poll_gap_ms(now.saturating_sub(started)).min(deadline - now);
                let (wake, woken) = self.rt.wake_signal();
                let sleeping = board.sleep_on(&lookup.keys.lock, wake);
                let timer = std::pin::pin!(self.rt.sleep(gap));
                // A lock holder of this isolate publishing wakes the poller too.
                let _ = select(woken, timer).await;
                drop(sleeping);
                if let Some(outcome) = waiting.outcome() {
                    return outcome;
                }
                let outcome = self.poll_once(&lookup.keys, &spec_key, &lookup.vary).await;
                claim.record(self.rt.now_ms(), outcome.clone());
                if let Some(outcome) = outcome {
                    return outcome;
                }
            }
        }
    }

    /// One poll: reads the fresh marker, the stale copy, the lock, the Vary spec and the
    /// soft-purge time. `None` while the holder is still at work.
    async fn poll_once(&self, keys: &CacheKeys, spec_key: &str, vary: &[String]) -> Option<PollOutcome> {
        let ops = [Op::MGet(vec![
            keys.fresh.clone(),
            keys.stale.clone(),
            keys.lock.clone(),
            spec_key.to_string(),
            self.settings.namespace.stale_before(),
        ])];
        match self.store.run(&ops).await {
            Err(_) => Some(PollOutcome::Unavailable),
            Ok(mut replies) => read_poll(replies.pop(), vary),
        }
    }
}

/// What a poll's `MGET fresh stale lock vary stale-before` says. A copy a soft purge of
/// everything made stale (§4.2) is not the holder's result, however fresh its marker: the
/// waiter keeps waiting for the holder's refetch.
fn read_poll(reply: Option<Reply>, vary: &[String]) -> Option<PollOutcome> {
    let values = match reply {
        Some(Reply::Array(values)) if values.len() == 5 => values,
        _ => return Some(PollOutcome::Unavailable),
    };
    let mut values = values.into_iter();
    let fresh = values.next().and_then(Reply::into_bytes);
    let stale = values.next().and_then(Reply::into_bytes);
    let lock = values.next().and_then(Reply::into_bytes);
    let spec = values.next().and_then(Reply::into_bytes).map(|b| parse_vary_spec(&b)).unwrap_or_default();
    let stale_before = values.next().and_then(reply_u64).unwrap_or(0);
    match found_from(fresh.as_deref(), stale.as_deref()) {
        Found::Fresh(entry) if entry.stored_at_ms > stale_before => return Some(PollOutcome::Ready(entry)),
        Found::HitForPass(_) => return Some(PollOutcome::HitForPass),
        _ => {}
    }
    // A spec that expired while our variant's holder works (it lives as long as the last
    // stored variant) is no news: the holder rewrites it when it stores. Looking again would
    // find no spec, lock the bare URL and fetch beside the holder (§8.3; the model test's find).
    let spec_changed = spec != vary && !spec.is_empty();
    if lock.is_none() || spec_changed {
        return Some(PollOutcome::LookAgain);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{entry, stored};

    fn poll(fresh: Option<&[u8]>, stale: Option<Vec<u8>>, lock: bool, spec: &str) -> Reply {
        poll_after(fresh, stale, lock, spec, None)
    }

    fn poll_after(
        fresh: Option<&[u8]>,
        stale: Option<Vec<u8>>,
        lock: bool,
        spec: &str,
        stale_before: Option<u64>,
    ) -> Reply {
        let bytes = |b: Option<Vec<u8>>| b.map_or(Reply::Nil, Reply::Bytes);
        Reply::Array(vec![
            bytes(fresh.map(<[u8]>::to_vec)),
            bytes(stale),
            bytes(lock.then(|| b"token".to_vec())),
            bytes((!spec.is_empty()).then(|| spec.as_bytes().to_vec())),
            bytes(stale_before.map(|t| t.to_string().into_bytes())),
        ])
    }

    /// Found by the model test (`state_model` seed 1): a waiter behind the refetch of a copy
    /// that a soft purge of everything made stale took that copy, fresh marker and all, for
    /// the holder's result and served it as a HIT.
    #[test]
    fn a_copy_older_than_a_soft_purge_of_everything_is_not_the_holders_result() {
        let old = stored(&entry(200, b"old", 5));
        assert!(read_poll(Some(poll_after(Some(b"1"), Some(old.clone()), true, "", Some(5))), &[]).is_none());
        assert!(matches!(
            read_poll(Some(poll_after(Some(b"1"), Some(old.clone()), false, "", Some(5))), &[]),
            Some(PollOutcome::LookAgain)
        ));
        assert!(matches!(
            read_poll(Some(poll_after(Some(b"1"), Some(old), true, "", Some(4))), &[]),
            Some(PollOutcome::Ready(_))
        ));
    }

    #[test]
    fn a_poll_reads_the_holders_outcome() {
        let copy = stored(&entry(200, b"x", 1));
        assert!(read_poll(Some(poll(None, None, true, "")), &[]).is_none(), "still working");
        assert!(matches!(
            read_poll(Some(poll(Some(b"1"), Some(copy), true, "")), &[]),
            Some(PollOutcome::Ready(_))
        ));
        assert!(matches!(
            read_poll(Some(poll(Some(b"P"), None, false, "")), &[]),
            Some(PollOutcome::HitForPass)
        ));
        assert!(matches!(read_poll(Some(poll(None, None, false, "")), &[]), Some(PollOutcome::LookAgain)));
        let vary = vec!["accept".to_string()];
        assert!(matches!(
            read_poll(Some(poll(None, None, true, "Cookie")), &vary),
            Some(PollOutcome::LookAgain)
        ));
        assert!(read_poll(Some(poll(None, None, true, "Accept")), &vary).is_none());
        // The spec expired while the holder of this variant works: keep waiting for it.
        assert!(read_poll(Some(poll(None, None, true, "")), &vary).is_none());
        assert!(matches!(read_poll(Some(poll(None, None, false, "")), &vary), Some(PollOutcome::LookAgain)));
        assert!(matches!(read_poll(Some(Reply::Nil), &[]), Some(PollOutcome::Unavailable)));
    }
}
