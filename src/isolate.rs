//! State that lives as long as the isolate: the store chosen from the configuration, the
//! cache's hints and waiters' shared polls, the request counters.
//!
//! Built on the first request (after the configuration validated) and shared by every request
//! the isolate serves. The memory store is per isolate by nature; the Upstash store keeps its
//! HTTP client and circuit breaker here so that a dead Redis costs one timeout per breaker
//! window, not one per request.

use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;

use edge_core::config::Config;
use edge_core::engine::{Cache, CacheSettings, IsolateCache};
use edge_core::memory_store::MemoryStore;
use edge_core::stats::Stats;
use edge_core::store::{Op, Reply, Store, StoreError, StoreKind};
use edge_core::upstash::UpstashStore;

use crate::worker_runtime::WorkerRuntime;

pub struct Isolate {
    pub store: IsolateStore,
    pub cache_settings: Rc<CacheSettings>,
    pub cache_state: Rc<IsolateCache>,
    pub stats: Stats,
}

thread_local! {
    static ISOLATE: OnceCell<Rc<Isolate>> = const { OnceCell::new() };
}

/// The isolate's state, created from `config` on first use.
pub fn get(config: &Config) -> Rc<Isolate> {
    ISOLATE.with(|cell| cell.get_or_init(|| Rc::new(Isolate::new(config))).clone())
}

impl Isolate {
    fn new(config: &Config) -> Isolate {
        let store = match &config.redis {
            None => {
                worker::console_warn!(
                    "edge-cache: no UPSTASH_REDIS_REST_URL: using the embedded in-memory store (per isolate, not shared)"
                );
                IsolateStore::Memory(MemoryStore::new())
            }
            Some(redis) => IsolateStore::Upstash(UpstashStore::new(
                &redis.url,
                &redis.token,
                Duration::from_millis(config.redis_timeout_ms),
            )),
        };
        Isolate {
            store,
            cache_settings: Rc::new(CacheSettings::from_config(config)),
            cache_state: Rc::new(IsolateCache::default()),
            stats: Stats::default(),
        }
    }

    /// The cache for one request.
    pub fn cache(&self, rt: WorkerRuntime) -> Cache<IsolateStore, WorkerRuntime> {
        Cache::new(
            self.store.clone(),
            rt,
            self.cache_settings.clone(),
            self.cache_state.clone(),
            self.stats.clone(),
        )
    }
}

/// The configured backend. `Store` uses `async fn`, so it is not object-safe; an enum keeps the
/// choice static and lets callers stay generic over `Store`. Clones share the backend.
#[derive(Clone)]
pub enum IsolateStore {
    Memory(MemoryStore),
    Upstash(UpstashStore),
}

impl Store for IsolateStore {
    fn kind(&self) -> StoreKind {
        match self {
            IsolateStore::Memory(store) => store.kind(),
            IsolateStore::Upstash(store) => store.kind(),
        }
    }

    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        match self {
            IsolateStore::Memory(store) => store.run(ops).await,
            IsolateStore::Upstash(store) => store.run(ops).await,
        }
    }

    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        match self {
            IsolateStore::Memory(store) => store.atomic(ops).await,
            IsolateStore::Upstash(store) => store.atomic(ops).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            IsolateStore::Memory(store) => store.ping().await,
            IsolateStore::Upstash(store) => store.ping().await,
        }
    }
}
