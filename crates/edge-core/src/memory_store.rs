//! The embedded store: a per-isolate map with Redis's TTL and NX semantics.
//!
//! It is the default when no `UPSTASH_REDIS_REST_URL` is configured, so that `wrangler dev`
//! works with nothing else running. Each isolate has its own copy: locks and entries are not
//! shared across isolates or locations, which is why the worker logs a warning when it is used.
//! Expired keys are dropped lazily on access and by a bounded sweep on writes.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::clock::{Clock, SystemClock};
use crate::store::{Op, Reply, Store, StoreError, StoreKind};

#[derive(Clone, Debug)]
enum Value {
    Str(Vec<u8>),
    Set(BTreeSet<String>),
}

#[derive(Clone, Debug)]
struct Slot {
    value: Value,
    expires_at_ms: Option<u64>,
}

#[derive(Default)]
struct State {
    slots: HashMap<String, Slot>,
    writes_since_sweep: u32,
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SWEEP_EVERY_WRITES: u32 = 256;

/// Clones share the same data.
#[derive(Clone)]
pub struct MemoryStore<C: Clock = SystemClock> {
    state: Rc<RefCell<State>>,
    clock: C,
}

impl MemoryStore<SystemClock> {
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }
}

impl Default for MemoryStore<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryStore<C> {
    pub fn with_clock(clock: C) -> Self {
        MemoryStore { state: Rc::new(RefCell::new(State::default())), clock }
    }

    /// Number of live keys (for tests and stats).
    pub fn len(&self) -> usize {
        let now = self.clock.now_ms();
        self.state.try_borrow().map(|s| s.slots.values().filter(|slot| live(slot, now)).count()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply_all(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        let mut state = self
            .state
            .try_borrow_mut()
            .map_err(|_| StoreError::Unreachable("memory store busy (re-entrant call)".into()))?;
        let now = self.clock.now_ms();
        Ok(ops.iter().map(|op| apply(&mut state, op, now)).collect())
    }
}

fn live(slot: &Slot, now: u64) -> bool {
    slot.expires_at_ms.is_none_or(|at| at > now)
}

/// The live slot under `key`, dropping it if it has expired.
fn get_live<'a>(state: &'a mut State, key: &str, now: u64) -> Option<&'a mut Slot> {
    let expired = state.slots.get(key).is_some_and(|slot| !live(slot, now));
    if expired {
        state.slots.remove(key);
    }
    state.slots.get_mut(key)
}

fn note_write(state: &mut State, now: u64) {
    state.writes_since_sweep += 1;
    if state.writes_since_sweep >= SWEEP_EVERY_WRITES {
        state.writes_since_sweep = 0;
        state.slots.retain(|_, slot| live(slot, now));
    }
}

fn read_str(state: &mut State, key: &str, now: u64) -> Reply {
    match get_live(state, key, now) {
        None => Reply::Nil,
        Some(Slot { value: Value::Str(bytes), .. }) => Reply::Bytes(bytes.clone()),
        Some(_) => Reply::Error(WRONGTYPE.into()),
    }
}

fn apply(state: &mut State, op: &Op, now: u64) -> Reply {
    match op {
        Op::Get(key) => read_str(state, key, now),
        Op::MGet(keys) => Reply::Array(
            keys.iter()
                .map(|k| match read_str(state, k, now) {
                    // MGET answers nil for a key of another type.
                    Reply::Error(_) => Reply::Nil,
                    other => other,
                })
                .collect(),
        ),
        Op::Set { key, value, ttl_ms, nx } => {
            if *ttl_ms == Some(0) {
                return Reply::Error("ERR invalid expire time in 'set' command".into());
            }
            if *nx && get_live(state, key, now).is_some() {
                return Reply::Nil;
            }
            let slot = Slot {
                value: Value::Str(value.clone().into_bytes()),
                expires_at_ms: ttl_ms.map(|ms| now.saturating_add(ms)),
            };
            state.slots.insert(key.clone(), slot);
            note_write(state, now);
            Reply::Status("OK".into())
        }
        Op::Del(keys) => {
            let mut deleted = 0;
            for key in keys {
                if get_live(state, key, now).is_some() {
                    state.slots.remove(key);
                    deleted += 1;
                }
            }
            Reply::Int(deleted)
        }
        Op::PTtl(key) => match get_live(state, key, now) {
            None => Reply::Int(-2),
            Some(Slot { expires_at_ms: None, .. }) => Reply::Int(-1),
            Some(Slot { expires_at_ms: Some(at), .. }) => Reply::Int(at.saturating_sub(now) as i64),
        },
        Op::PExpire { key, ttl_ms } => match get_live(state, key, now) {
            None => Reply::Int(0),
            Some(slot) => {
                if *ttl_ms == 0 {
                    state.slots.remove(key);
                } else {
                    slot.expires_at_ms = Some(now.saturating_add(*ttl_ms));
                }
                Reply::Int(1)
            }
        },
        Op::IncrBy { key, by } => {
            let current = match get_live(state, key, now) {
                None => 0,
                Some(Slot { value: Value::Str(bytes), .. }) => {
                    match std::str::from_utf8(bytes).ok().and_then(|s| s.parse::<i64>().ok()) {
                        Some(n) => n,
                        None => return Reply::Error("ERR value is not an integer or out of range".into()),
                    }
                }
                Some(_) => return Reply::Error(WRONGTYPE.into()),
            };
            let Some(next) = current.checked_add(*by) else {
                return Reply::Error("ERR increment or decrement would overflow".into());
            };
            let bytes = next.to_string().into_bytes();
            match get_live(state, key, now) {
                Some(slot) => slot.value = Value::Str(bytes),
                None => {
                    state.slots.insert(key.clone(), Slot { value: Value::Str(bytes), expires_at_ms: None });
                }
            }
            note_write(state, now);
            Reply::Int(next)
        }
        Op::CompareAndExtend { key, token, ttl_ms } => match get_live(state, key, now) {
            Some(slot) if matches!(&slot.value, Value::Str(bytes) if bytes.as_slice() == token.as_bytes()) => {
                slot.expires_at_ms = Some(now.saturating_add((*ttl_ms).max(1)));
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        },
        Op::Exists(keys) => {
            Reply::Int(keys.iter().filter(|key| get_live(state, key, now).is_some()).count() as i64)
        }
        Op::ExpireAtLeast { key, ttl_ms } => match get_live(state, key, now) {
            None => Reply::Int(0),
            Some(slot) => {
                let at = now.saturating_add((*ttl_ms).max(1));
                if slot.expires_at_ms.is_none_or(|current| current < at) {
                    slot.expires_at_ms = Some(at);
                    Reply::Int(1)
                } else {
                    Reply::Int(0)
                }
            }
        },
        Op::ReplaceIfPresent { old_key, new_key, value, ttl_ms } => {
            if get_live(state, old_key, now).is_none() {
                return Reply::Int(0);
            }
            let expires_at_ms = Some(now.saturating_add((*ttl_ms).max(1)));
            state.slots.insert(
                new_key.clone(),
                Slot { value: Value::Str(value.clone().into_bytes()), expires_at_ms },
            );
            if old_key != new_key {
                state.slots.remove(old_key);
            }
            note_write(state, now);
            Reply::Int(1)
        }
        Op::WriteBackOnce { marker_key, marker_ttl_ms, key, value, ttl_ms } => {
            if get_live(state, marker_key, now).is_some() {
                return Reply::Int(0);
            }
            let marker_expiry = Some(now.saturating_add((*marker_ttl_ms).max(1)));
            state.slots.insert(
                marker_key.clone(),
                Slot { value: Value::Str(b"w".to_vec()), expires_at_ms: marker_expiry },
            );
            note_write(state, now);
            if get_live(state, key, now).is_some() {
                return Reply::Int(2);
            }
            let expires_at_ms = Some(now.saturating_add((*ttl_ms).max(1)));
            state
                .slots
                .insert(key.clone(), Slot { value: Value::Str(value.clone().into_bytes()), expires_at_ms });
            Reply::Int(1)
        }
        Op::CompareAndDelete { key, token } => {
            let matches = matches!(
                get_live(state, key, now),
                Some(Slot { value: Value::Str(bytes), .. }) if bytes.as_slice() == token.as_bytes()
            );
            if matches {
                state.slots.remove(key);
                Reply::Int(1)
            } else {
                Reply::Int(0)
            }
        }
        Op::SAdd { key, members } => {
            let slot = match get_live(state, key, now) {
                Some(slot) => slot,
                None => {
                    state.slots.insert(
                        key.clone(),
                        Slot { value: Value::Set(BTreeSet::new()), expires_at_ms: None },
                    );
                    match state.slots.get_mut(key) {
                        Some(slot) => slot,
                        None => return Reply::Error("ERR internal".into()),
                    }
                }
            };
            let Value::Set(set) = &mut slot.value else {
                return Reply::Error(WRONGTYPE.into());
            };
            let added = members.iter().filter(|m| set.insert((*m).clone())).count();
            note_write(state, now);
            Reply::Int(added as i64)
        }
        Op::SScan { key, cursor, count } => match get_live(state, key, now) {
            None => Reply::Array(vec![Reply::Bytes(b"0".to_vec()), Reply::Array(Vec::new())]),
            Some(Slot { value: Value::Set(set), .. }) => {
                // The cursor names the last member returned (hex), so members removed between
                // calls never make the iteration skip others.
                let after = (cursor != "0").then(|| crate::key::unhex(cursor)).flatten();
                let rest: Vec<&String> = match &after {
                    Some(last) => set
                        .range::<String, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
                        .collect(),
                    None => set.iter().collect(),
                };
                let batch: Vec<&String> = rest.iter().take((*count).max(1) as usize).copied().collect();
                let next = match batch.last() {
                    Some(last) if rest.len() > batch.len() => crate::key::hex(last.as_bytes()),
                    _ => "0".to_string(),
                };
                Reply::Array(vec![
                    Reply::Bytes(next.into_bytes()),
                    Reply::Array(batch.iter().map(|m| Reply::Bytes(m.as_bytes().to_vec())).collect()),
                ])
            }
            Some(_) => Reply::Error(WRONGTYPE.into()),
        },
        Op::SRandMember { key, count } => match get_live(state, key, now) {
            None => Reply::Array(Vec::new()),
            Some(Slot { value: Value::Set(set), .. }) => {
                // Any `count` members will do for the callers (a sample to prune): start at a
                // random offset so that repeated samples cover the set.
                let mut byte = [0u8; 2];
                let _ = getrandom::fill(&mut byte);
                let start = usize::from(u16::from_le_bytes(byte)) % set.len().max(1);
                let picked = set.iter().cycle().skip(start).take((*count as usize).min(set.len()));
                Reply::Array(picked.map(|m| Reply::Bytes(m.clone().into_bytes())).collect())
            }
            Some(_) => Reply::Error(WRONGTYPE.into()),
        },
        Op::SMembers(key) => match get_live(state, key, now) {
            None => Reply::Array(Vec::new()),
            Some(Slot { value: Value::Set(set), .. }) => {
                Reply::Array(set.iter().map(|m| Reply::Bytes(m.clone().into_bytes())).collect())
            }
            Some(_) => Reply::Error(WRONGTYPE.into()),
        },
        Op::SRem { key, members } => match get_live(state, key, now) {
            None => Reply::Int(0),
            Some(Slot { value: Value::Set(set), .. }) => {
                let removed = members.iter().filter(|m| set.remove(m.as_str())).count();
                if set.is_empty() {
                    state.slots.remove(key);
                }
                Reply::Int(removed as i64)
            }
            Some(_) => Reply::Error(WRONGTYPE.into()),
        },
    }
}

impl<C: Clock> Store for MemoryStore<C> {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }

    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        self.apply_all(ops)
    }

    /// Single-threaded, and no await between ops: every batch is already atomic.
    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        self.apply_all(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use futures::executor::block_on;

    fn store() -> (MemoryStore<ManualClock>, ManualClock) {
        let clock = ManualClock::at(1_000_000);
        (MemoryStore::with_clock(clock.clone()), clock)
    }

    fn set(key: &str, value: &str, ttl_ms: Option<u64>, nx: bool) -> Op {
        Op::Set { key: key.into(), value: value.into(), ttl_ms, nx }
    }

    #[test]
    fn set_nx_px_takes_once_and_frees_after_ttl() {
        let (s, clock) = store();
        let r =
            block_on(s.run(&[set("lock", "a", Some(500), true), set("lock", "b", Some(500), true)])).unwrap();
        assert!(r[0].is_ok());
        assert_eq!(r[1], Reply::Nil);
        clock.advance(499);
        assert_eq!(block_on(s.one(Op::Get("lock".into()))).unwrap(), Reply::Bytes(b"a".to_vec()));
        clock.advance(1);
        assert_eq!(block_on(s.one(Op::Get("lock".into()))).unwrap(), Reply::Nil);
        assert!(block_on(s.one(set("lock", "b", Some(500), true))).unwrap().is_ok());
    }

    #[test]
    fn pttl_reports_absent_persistent_and_remaining() {
        let (s, clock) = store();
        block_on(s.run(&[set("p", "1", None, false), set("t", "1", Some(2_000), false)])).unwrap();
        clock.advance(500);
        let r =
            block_on(s.run(&[Op::PTtl("nope".into()), Op::PTtl("p".into()), Op::PTtl("t".into())])).unwrap();
        assert_eq!(r, vec![Reply::Int(-2), Reply::Int(-1), Reply::Int(1_500)]);
    }

    #[test]
    fn compare_and_delete_only_deletes_own_token() {
        let (s, _) = store();
        block_on(s.one(set("lock", "mine", Some(1_000), false))).unwrap();
        let theirs = Op::CompareAndDelete { key: "lock".into(), token: "theirs".into() };
        assert_eq!(block_on(s.one(theirs)).unwrap(), Reply::Int(0));
        let mine = Op::CompareAndDelete { key: "lock".into(), token: "mine".into() };
        assert_eq!(block_on(s.one(mine)).unwrap(), Reply::Int(1));
        assert_eq!(block_on(s.one(Op::Get("lock".into()))).unwrap(), Reply::Nil);
    }

    #[test]
    fn conditional_extend_and_replace() {
        let (s, clock) = store();
        block_on(s.one(set("lock", "mine", Some(1_000), false))).unwrap();
        let theirs = Op::CompareAndExtend { key: "lock".into(), token: "theirs".into(), ttl_ms: 60_000 };
        assert_eq!(block_on(s.one(theirs)).unwrap(), Reply::Int(0));
        let mine = Op::CompareAndExtend { key: "lock".into(), token: "mine".into(), ttl_ms: 60_000 };
        assert_eq!(block_on(s.one(mine)).unwrap(), Reply::Int(1));
        clock.advance(30_000);
        assert_eq!(block_on(s.one(Op::Get("lock".into()))).unwrap(), Reply::Bytes(b"mine".to_vec()));

        let replace = |old: &str, new: &str| Op::ReplaceIfPresent {
            old_key: old.into(),
            new_key: new.into(),
            value: "v2".into(),
            ttl_ms: 5_000,
        };
        assert_eq!(block_on(s.one(replace("gone", "gone"))).unwrap(), Reply::Int(0));
        assert_eq!(block_on(s.one(Op::Get("gone".into()))).unwrap(), Reply::Nil, "never resurrected");
        block_on(s.one(set("old", "v1", None, false))).unwrap();
        assert_eq!(block_on(s.one(replace("old", "new"))).unwrap(), Reply::Int(1));
        assert_eq!(block_on(s.one(Op::Get("old".into()))).unwrap(), Reply::Nil);
        assert_eq!(block_on(s.one(Op::Get("new".into()))).unwrap(), Reply::Bytes(b"v2".to_vec()));
    }

    #[test]
    fn mget_del_incr_and_sets() {
        let (s, _) = store();
        let r = block_on(s.run(&[
            set("a", "1", None, false),
            Op::MGet(vec!["a".into(), "b".into()]),
            Op::IncrBy { key: "n".into(), by: 5 },
            Op::IncrBy { key: "a".into(), by: 1 },
            Op::IncrBy { key: "s".into(), by: 1 },
            Op::SAdd { key: "tag".into(), members: vec!["x".into(), "y".into(), "x".into()] },
            Op::SMembers("tag".into()),
            Op::Get("tag".into()),
            Op::SRem { key: "tag".into(), members: vec!["x".into()] },
            Op::Del(vec!["a".into(), "b".into(), "n".into()]),
        ]))
        .unwrap();
        assert_eq!(r[1], Reply::Array(vec![Reply::Bytes(b"1".to_vec()), Reply::Nil]));
        assert_eq!(r[2], Reply::Int(5));
        assert_eq!(r[3], Reply::Int(2));
        assert_eq!(r[5], Reply::Int(2));
        assert_eq!(r[6], Reply::Array(vec![Reply::Bytes(b"x".to_vec()), Reply::Bytes(b"y".to_vec())]));
        assert!(matches!(&r[7], Reply::Error(e) if e.starts_with("WRONGTYPE")));
        assert_eq!(r[8], Reply::Int(1));
        assert_eq!(r[9], Reply::Int(2));
    }

    #[test]
    fn incr_on_text_is_an_error_not_a_panic() {
        let (s, _) = store();
        let r = block_on(s.run(&[set("t", "hello", None, false), Op::IncrBy { key: "t".into(), by: 1 }]))
            .unwrap();
        assert_eq!(r[1], Reply::Error("ERR value is not an integer or out of range".into()));
    }

    #[test]
    fn pexpire_moves_expiry_and_expired_keys_are_swept() {
        let (s, clock) = store();
        block_on(s.one(set("k", "v", Some(100), false))).unwrap();
        assert_eq!(block_on(s.one(Op::PExpire { key: "k".into(), ttl_ms: 10_000 })).unwrap(), Reply::Int(1));
        clock.advance(5_000);
        assert_eq!(block_on(s.one(Op::Get("k".into()))).unwrap(), Reply::Bytes(b"v".to_vec()));
        for i in 0..300 {
            block_on(s.one(set(&format!("tmp{i}"), "x", Some(10), false))).unwrap();
        }
        clock.advance(20);
        block_on(s.one(set("trigger", "x", None, false))).unwrap();
        assert_eq!(s.len(), 2, "only k and trigger are live");
    }
}
