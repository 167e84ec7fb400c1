//! The isolate's [`Edge`]: built on the first request (after the configuration validated) and
//! shared by every request the isolate serves. The memory store is per isolate by nature; the
//! Upstash store keeps its HTTP client and circuit breaker here, so that a dead Redis costs one
//! timeout per breaker window, not one per request. The `Edge` also holds the isolate's L1
//! (`edge.cache_state`, sized by `CACHE_L1_BYTES`, docs §4.15), which lives as long as the
//! isolate does.

use std::cell::OnceCell;
use std::rc::Rc;

use edge_core::{AnyStore, Config, Edge, Host, LogLevel};

use crate::worker_host::WorkerHost;

thread_local! {
    static EDGE: OnceCell<Rc<Edge<AnyStore>>> = const { OnceCell::new() };
}

/// The isolate's state, created from `config` on first use.
pub fn get(config: Rc<Config>, host: &WorkerHost) -> Rc<Edge<AnyStore>> {
    EDGE.with(|cell| {
        cell.get_or_init(|| {
            let store = AnyStore::from_config(&config);
            if matches!(store, AnyStore::Memory(_)) {
                host.log(
                    LogLevel::Warn,
                    "edge-cache: no UPSTASH_REDIS_REST_URL: using the embedded in-memory store (per isolate, not shared)",
                );
            }
            let edge = Edge::new(config.clone(), store);
            // SESSION_REDIS_REST_URL: sessions on a store of their own (docs §5.10).
            Rc::new(match AnyStore::for_sessions(&config) {
                Some(sessions) => edge.with_session_store(sessions),
                None => edge,
            })
        })
        .clone()
    })
}
