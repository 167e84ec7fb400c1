//! `GET /__edge/health`: is the worker configured, which store does it use, and does that
//! store answer?
//!
//! Always 200 while the worker can serve: a Redis outage degrades caching (requests fail open
//! to the origin) but does not stop the worker, so `status` says `degraded` rather than the
//! status code failing. Never cached.

use edge_core::store::Store;
use serde_json::json;
use web_sys::Response;

use crate::isolate::Isolate;
use crate::reply;

pub async fn answer(isolate: &Isolate) -> worker::Result<Response> {
    let store = &isolate.store;
    let redis = match store.ping().await {
        Ok(()) => "ok",
        Err(error) => {
            worker::console_warn!("edge-cache: health: {error}");
            "unreachable"
        }
    };
    let status = if redis == "ok" { "ok" } else { "degraded" };
    reply::json(200, &json!({ "status": status, "store": store.kind().as_str(), "redis": redis }))
}
