//! The configured backend: the embedded memory store or Redis over the Upstash REST protocol.
//!
//! `Store` uses `async fn`, so it is not object-safe; an enum keeps the choice static and lets
//! callers stay generic over `Store`. Clones share the backend.

use std::time::Duration;

use crate::config::Config;
use crate::memory_store::MemoryStore;
use crate::store::{Op, Reply, Store, StoreError, StoreKind};
use crate::upstash::UpstashStore;

// One per isolate, cloned per request: a 200-byte copy, cheaper than a Box's allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum AnyStore {
    Memory(MemoryStore),
    Upstash(UpstashStore),
}

impl AnyStore {
    /// The store `config` names: Upstash when `UPSTASH_REDIS_REST_URL` is set, else memory.
    pub fn from_config(config: &Config) -> Self {
        match &config.redis {
            None => AnyStore::Memory(MemoryStore::new()),
            Some(redis) => AnyStore::Upstash(UpstashStore::new(
                &redis.url,
                &redis.token,
                Duration::from_millis(config.redis_timeout_ms),
            )),
        }
    }

    /// The sessions' own store, when `SESSION_REDIS_REST_URL` is set (docs §5.10); `None`:
    /// sessions share the cache's store.
    pub fn for_sessions(config: &Config) -> Option<Self> {
        let redis = config.session_redis.as_ref()?;
        Some(AnyStore::Upstash(UpstashStore::new(
            &redis.url,
            &redis.token,
            Duration::from_millis(config.redis_timeout_ms),
        )))
    }
}

impl Store for AnyStore {
    fn kind(&self) -> StoreKind {
        match self {
            AnyStore::Memory(store) => store.kind(),
            AnyStore::Upstash(store) => store.kind(),
        }
    }

    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.run(ops).await,
            AnyStore::Upstash(store) => store.run(ops).await,
        }
    }

    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.atomic(ops).await,
            AnyStore::Upstash(store) => store.atomic(ops).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.ping().await,
            AnyStore::Upstash(store) => store.ping().await,
        }
    }
}
