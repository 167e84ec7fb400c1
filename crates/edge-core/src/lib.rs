//! edge-cache's pure core. Nothing here knows about `worker`: the worker crate adapts
//! Cloudflare's types to these, and everything below runs and is tested natively.
//!
//! The request path ([`Edge::handle`]), in order: [`config`] → reserved paths → the session
//! cookie and the cache decision → one store round trip for both → the state machine
//! ([`Cache`]) → the origin's session directives → background work. The design is described
//! in the repository's `docs/` (cited as `docs §N`).

mod admin;
mod any_store;
mod cache_control;
mod cache_status;
mod circuit_breaker;
mod clock;
mod conditional;
mod config;
mod edge;
mod engine;
mod entry;
/// Entry points of the fuzz targets and their corpus replay (docs §11); not API.
#[doc(hidden)]
pub mod fuzzing;
mod http_date;
mod hygiene;
#[cfg(target_arch = "wasm32")]
pub mod js_await;
mod key;
mod keyspace;
mod l1;
mod memory_store;
mod phase;
mod policy;
mod purge;
mod rules;
mod runtime;
pub mod session;
mod stats;
mod store;
mod structured_field;
mod tags;
mod upstash;
mod upstash_http;

pub use any_store::AnyStore;
pub use cache_status::CacheStatus;
pub use circuit_breaker::CircuitBreaker;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError, OriginUrl};
pub use edge::{
    own_text, BodyRead, CryptoError, Edge, EdgeRequest, Host, HostOrigin, LogLevel, OriginRequest, RequestUrl,
};
pub use engine::{
    origin_error_response, Cache, CacheRequest, CacheSettings, Found, IsolateCache, Lookup, Served,
    ServedBody, TierSettings, HIT_FOR_PASS_MS,
};
pub use entry::CacheEntry;
pub use hygiene::{strip_hop_by_hop, HOP_BY_HOP};
pub use keyspace::Namespace;
pub use memory_store::MemoryStore;
pub use phase::{CachePhase, NoCacheReason};
pub use policy::RequestDecision;
pub use purge::{prune_index_sample, purge, PurgeRequest, PurgeTarget};
pub use rules::CacheRules;
pub use runtime::{Collected, Origin, OriginError, OriginResponse, Runtime, Wake};
pub use stats::{Counter, Stats};
pub use store::{Op, Reply, Store, StoreError, StoreKind};
pub use upstash::UpstashStore;
