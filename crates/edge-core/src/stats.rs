//! Request counters for `/__edge/stats`, kept per isolate and flushed to Redis in batches.
//!
//! Counting must not add a round trip to the hit path: each isolate adds up locally and the
//! worker flushes the deltas (one `INCRBY` per counter, one pipeline) from `ctx.wait_until`
//! at most every [`FLUSH_EVERY_MS`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::keyspace::Namespace;
use crate::store::{Op, Reply};

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Hit,
    Miss,
    Stale,
    Bypass,
    OriginFetch,
    LockWait,
}

impl Counter {
    pub const ALL: [Counter; 6] = [
        Counter::Hit,
        Counter::Miss,
        Counter::Stale,
        Counter::Bypass,
        Counter::OriginFetch,
        Counter::LockWait,
    ];

    /// The JSON field and Redis key suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::Hit => "hit",
            Counter::Miss => "miss",
            Counter::Stale => "stale",
            Counter::Bypass => "bypass",
            Counter::OriginFetch => "origin_fetch",
            Counter::LockWait => "lock_wait",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How often an isolate writes its counts to Redis.
pub const FLUSH_EVERY_MS: u64 = 1_000;

/// Unflushed counts. Clones share them.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pending: Rc<RefCell<[u64; 6]>>,
    last_flush_ms: Rc<Cell<u64>>,
}

impl Stats {
    pub fn add(&self, counter: Counter) {
        if let Ok(mut pending) = self.pending.try_borrow_mut() {
            pending[counter.index()] += 1;
        }
    }

    /// Counts not yet flushed (for tests).
    pub fn pending(&self, counter: Counter) -> u64 {
        self.pending.try_borrow().map(|p| p[counter.index()]).unwrap_or(0)
    }

    /// When a flush is due, takes the pending counts and answers the ops that add them to
    /// Redis; `None` when not due or nothing is pending. Counts whose flush fails are lost,
    /// which is the price of never delaying a request for a counter.
    pub fn take_flush(&self, namespace: &Namespace, now_ms: u64, force: bool) -> Option<Vec<Op>> {
        if !force && now_ms.saturating_sub(self.last_flush_ms.get()) < FLUSH_EVERY_MS {
            return None;
        }
        let mut pending = self.pending.try_borrow_mut().ok()?;
        if pending.iter().all(|&n| n == 0) {
            return None;
        }
        self.last_flush_ms.set(now_ms);
        let ops = Counter::ALL
            .iter()
            .filter(|c| pending[c.index()] > 0)
            .map(|c| Op::IncrBy { key: namespace.counter(*c), by: pending[c.index()] as i64 })
            .collect();
        *pending = [0; 6];
        Some(ops)
    }
}

/// The ops that read every counter, in [`Counter::ALL`] order.
pub fn read_ops(namespace: &Namespace) -> Vec<Op> {
    vec![Op::MGet(Counter::ALL.iter().map(|c| namespace.counter(*c)).collect())]
}

/// Turns the reply of [`read_ops`] into `(name, count)` pairs.
pub fn read_counts(reply: &Reply) -> Vec<(&'static str, u64)> {
    let values: &[Reply] = match reply {
        Reply::Array(values) => values,
        _ => &[],
    };
    Counter::ALL
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let n = values
                .get(i)
                .cloned()
                .and_then(Reply::into_bytes)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (c.as_str(), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_is_batched_and_resets() {
        let stats = Stats::default();
        stats.add(Counter::Hit);
        stats.add(Counter::Hit);
        stats.add(Counter::OriginFetch);
        let ops = stats.take_flush(&crate::Namespace::new("edge"), 5_000, false).unwrap();
        assert_eq!(
            ops,
            vec![
                Op::IncrBy { key: "edge:stats:hit".into(), by: 2 },
                Op::IncrBy { key: "edge:stats:origin_fetch".into(), by: 1 },
            ]
        );
        assert_eq!(stats.pending(Counter::Hit), 0);
        stats.add(Counter::Miss);
        assert!(stats.take_flush(&crate::Namespace::new("edge"), 5_500, false).is_none(), "not due yet");
        assert!(stats.take_flush(&crate::Namespace::new("edge"), 5_500, true).is_some(), "forced");
    }

    #[test]
    fn counts_read_back_by_name() {
        let reply = Reply::Array(vec![Reply::Bytes(b"7".to_vec()), Reply::Nil, Reply::Bytes(b"x".to_vec())]);
        let counts = read_counts(&reply);
        assert_eq!(counts[0], ("hit", 7));
        assert_eq!(counts[1], ("miss", 0));
        assert_eq!(counts[2], ("stale", 0));
        assert_eq!(counts.len(), 6);
    }
}
