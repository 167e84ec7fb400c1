//! The store: what caching and sessions ask of Redis, as a small set of operations.
//!
//! Callers batch [`Op`]s into one [`Store::run`] call: one call is one round trip (one HTTP
//! request to the REST endpoint), which is the unit the hit path is budgeted in. Two
//! implementations: [`crate::upstash::UpstashStore`] (Redis over Upstash's REST protocol) and
//! [`crate::memory_store::MemoryStore`] (embedded, per isolate, the dev default).
//!
//! Values are written as text (`String`): Upstash's REST protocol carries arguments in JSON,
//! so binary payloads are encoded by their owner (the cache entry codec) before they get here.
//! Values are read back as bytes, exactly as stored.

use std::fmt;

/// One Redis operation. Each maps to one command (or one script) on the REST protocol; the
/// memory store implements the same semantics natively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `GET key` → [`Reply::Bytes`] or [`Reply::Nil`].
    Get(String),
    /// `MGET k1 k2 …` → [`Reply::Array`] of Bytes/Nil, in order.
    MGet(Vec<String>),
    /// `SET key value [PX ttl_ms] [NX]` → [`Reply::Status`] "OK", or [`Reply::Nil`] when NX lost.
    Set { key: String, value: String, ttl_ms: Option<u64>, nx: bool },
    /// `EXISTS k…` → [`Reply::Int`] how many exist (counts without reading values).
    Exists(Vec<String>),
    /// `DEL k…` → [`Reply::Int`] count deleted.
    Del(Vec<String>),
    /// `PTTL key` → [`Reply::Int`]: ms left, -1 no expiry, -2 absent.
    PTtl(String),
    /// `PEXPIRE key ms` → [`Reply::Int`] 1 if set, 0 if the key is absent.
    PExpire { key: String, ttl_ms: u64 },
    /// Make `key` live at least `ttl_ms` from now: its expiry only ever grows (an index set
    /// shared by entries of different lifetimes must outlive the longest) → [`Reply::Int`] 1 if
    /// the expiry was moved, 0 if it was already later or the key is absent.
    ExpireAtLeast { key: String, ttl_ms: u64 },
    /// `INCRBY key n` → [`Reply::Int`] the new value.
    IncrBy { key: String, by: i64 },
    /// Delete `key` only if its value equals `token` (a lock release that can never delete
    /// another holder's lock) → [`Reply::Int`] 1 if deleted.
    CompareAndDelete { key: String, token: String },
    /// Extend `key`'s expiry to `ttl_ms` only if its value equals `token` (a lock holder that
    /// is still working renews its own lock, never another's) → [`Reply::Int`] 1 if extended.
    CompareAndExtend { key: String, token: String, ttl_ms: u64 },
    /// If `old_key` exists, write `value` under `new_key` (expiring after `ttl_ms`) and, when
    /// the keys differ, delete `old_key`, atomically → [`Reply::Int`] 1 if written, 0 if
    /// `old_key` was gone: a session changed (or rotated) while another request destroyed it
    /// stays destroyed.
    ReplaceIfPresent { old_key: String, new_key: String, value: String, ttl_ms: u64 },
    /// Writes back a session carried in a fallback cookie, once: if `marker_key` is absent, set
    /// it to `w` (expiring after `marker_ttl_ms`) and `SET key value PX ttl_ms NX`, atomically
    /// → [`Reply::Int`] 1 written, 2 marked but a record already existed (never overwritten),
    /// 0 the marker was there (already written back, or revoked): nothing written.
    WriteBackOnce { marker_key: String, marker_ttl_ms: u64, key: String, value: String, ttl_ms: u64 },
    /// `SADD key m…` → [`Reply::Int`] members added.
    SAdd { key: String, members: Vec<String> },
    /// `SSCAN key cursor COUNT count` → [`Reply::Array`] `[next cursor, [members…]]`; the
    /// cursor is opaque, `"0"` starts and ends an iteration. Reads a large set in batches.
    SScan { key: String, cursor: String, count: u32 },
    /// `SRANDMEMBER key count` → [`Reply::Array`] of up to `count` distinct members.
    SRandMember { key: String, count: u32 },
    /// `SMEMBERS key` → [`Reply::Array`] of Bytes.
    SMembers(String),
    /// `SREM key m…` → [`Reply::Int`].
    SRem { key: String, members: Vec<String> },
}

impl Op {
    /// The Redis command name, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get(_) => "GET",
            Op::MGet(_) => "MGET",
            Op::Set { .. } => "SET",
            Op::Del(_) => "DEL",
            Op::Exists(_) => "EXISTS",
            Op::PTtl(_) => "PTTL",
            Op::PExpire { .. } => "PEXPIRE",
            Op::ExpireAtLeast { .. } => "EVAL(expire-at-least)",
            Op::IncrBy { .. } => "INCRBY",
            Op::CompareAndDelete { .. } => "EVAL(compare-and-delete)",
            Op::CompareAndExtend { .. } => "EVAL(compare-and-extend)",
            Op::ReplaceIfPresent { .. } => "EVAL(replace-if-present)",
            Op::WriteBackOnce { .. } => "EVAL(write-back-once)",
            Op::SAdd { .. } => "SADD",
            Op::SMembers(_) => "SMEMBERS",
            Op::SScan { .. } => "SSCAN",
            Op::SRandMember { .. } => "SRANDMEMBER",
            Op::SRem { .. } => "SREM",
        }
    }
}

/// A Redis reply. Per-operation errors inside a pipeline are [`Reply::Error`]; failures of the
/// round trip itself are [`StoreError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bytes(Vec<u8>),
    Status(String),
    Array(Vec<Reply>),
    Error(String),
}

impl Reply {
    /// The bytes of a bulk-string reply; `None` for nil and for anything else.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Reply::Bytes(b) => Some(b),
            Reply::Status(s) => Some(s.into_bytes()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// True for `SET … NX` success ("OK").
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Status(s) if s == "OK")
    }
}

/// Which backend a store is, as reported by `/__edge/health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Upstash,
    Memory,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Upstash => "upstash",
            StoreKind::Memory => "memory",
        }
    }
}

/// Why a round trip failed. Every variant means "fail open": the caller goes to the origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Connection refused, DNS, TLS, reset: the request did not get an HTTP answer.
    Unreachable(String),
    /// No answer within `REDIS_TIMEOUT_MS`.
    Timeout,
    /// 401/403 from the REST endpoint: the token is wrong.
    Unauthorized,
    /// A non-success HTTP status other than 401/403 (e.g. 5xx), with the body's error text.
    Http { status: u16, message: String },
    /// An answer that is not the protocol's JSON (garbage, wrong shape, wrong length).
    Malformed(String),
    /// The whole transaction was refused (a queue-time error in `/multi-exec`).
    Rejected(String),
    /// The circuit breaker is open: Redis failed recently, so this call was not attempted.
    CircuitOpen,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unreachable(e) => write!(f, "redis unreachable: {e}"),
            StoreError::Timeout => write!(f, "redis timed out"),
            StoreError::Unauthorized => write!(f, "redis rejected the token (401)"),
            StoreError::Http { status, message } => write!(f, "redis answered HTTP {status}: {message}"),
            StoreError::Malformed(e) => write!(f, "redis answer malformed: {e}"),
            StoreError::Rejected(e) => write!(f, "redis refused the transaction: {e}"),
            StoreError::CircuitOpen => write!(f, "redis skipped: circuit open after recent failures"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A Redis-like store. Futures are not `Send`: in workerd everything runs on one thread.
#[allow(async_fn_in_trait)]
pub trait Store {
    fn kind(&self) -> StoreKind;

    /// Runs `ops` as one pipeline (one round trip), answering one [`Reply`] per op, in order.
    /// Not atomic: other clients' commands may interleave.
    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError>;

    /// Runs `ops` as one atomic transaction (MULTI/EXEC; one round trip).
    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError>;

    /// Runs one op.
    async fn one(&self, op: Op) -> Result<Reply, StoreError> {
        let mut replies = self.run(std::slice::from_ref(&op)).await?;
        replies.pop().ok_or_else(|| StoreError::Malformed("empty pipeline answer".into()))
    }

    /// A cheap liveness check for `/__edge/health`.
    async fn ping(&self) -> Result<(), StoreError> {
        self.one(Op::PTtl("edge:health-probe".into())).await.map(|_| ())
    }
}
