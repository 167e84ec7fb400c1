//! `/__edge/`: the worker's own paths (CONTRACT §6). Reserved: whatever the path, the request
//! is answered here and never forwarded to the origin.

use edge_core::config::Config;
use edge_core::runtime::Runtime;
use serde_json::json;
use web_sys::{Request, Response};

use crate::isolate::Isolate;
use crate::worker_runtime::WorkerRuntime;
use crate::{admin, health, reply};

const PREFIX: &str = "/__edge/";

/// True for `/__edge` and everything under `/__edge/`.
pub fn is_reserved(path: &str) -> bool {
    path.starts_with(PREFIX) || path == PREFIX.trim_end_matches('/')
}

pub async fn answer(
    request: &Request,
    path: &str,
    isolate: &Isolate,
    config: &Config,
    rt: &WorkerRuntime,
) -> worker::Result<Response> {
    match path {
        "/__edge/health" => match request.method().as_str() {
            "GET" | "HEAD" => health::answer(isolate).await,
            _ => {
                let response = reply::json(405, &json!({ "error": "method not allowed" }))?;
                response.headers().set("Allow", "GET, HEAD")?;
                Ok(response)
            }
        },
        "/__edge/purge" => admin::purge_request(request, config, &isolate.store, rt.now_ms()).await,
        "/__edge/stats" => {
            admin::stats_request(request, config, &isolate.store, &isolate.stats, rt.now_ms()).await
        }
        _ => reply::json(404, &json!({ "error": "not found" })),
    }
}
