//! edge-cache's pure core. Nothing here knows about `worker`: the worker crate adapts
//! Cloudflare's types to these, and everything below runs and is tested natively.
//!
//! The request path, in the order the worker uses it:
//! [`config`] → [`session`] / [`policy`] + [`key`] → [`store`] (one round trip) →
//! [`engine`] (the fresh/stale/lock state machine) → [`cache_status`] headers.

pub mod admin;
pub mod cache_control;
pub mod cache_status;
pub mod circuit_breaker;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod engine;
pub mod entry;
pub mod key;
pub mod lock;
pub mod memory_store;
pub mod phase;
pub mod policy;
pub mod purge;
pub mod rules;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod store;
pub mod tags;
pub mod upstash;
