//! The admin API (CONTRACT §6): `POST /__edge/purge` and `GET /__edge/stats`, behind
//! `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time; 404 when no token is set).

use edge_core::admin::{admin_access, AdminAccess};
use edge_core::config::Config;
use edge_core::purge::{parse_purge_request, purge};
use edge_core::stats::{read_counts, read_ops, Stats};
use edge_core::store::Store;
use serde_json::json;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, Response};

use crate::reply;

/// Purge bodies larger than this are refused (a thousand URLs fit easily).
const MAX_PURGE_BODY: u32 = 1_048_576;

/// `None` when access is allowed; otherwise the 404/401 to answer.
fn refuse(request: &Request, config: &Config) -> Option<worker::Result<Response>> {
    let authorization = request.headers().get("authorization").ok().flatten();
    match admin_access(authorization.as_deref(), config.admin_token.as_deref()) {
        AdminAccess::Allowed => None,
        AdminAccess::Disabled => Some(reply::json(404, &json!({ "error": "not found" }))),
        AdminAccess::Denied => Some(
            reply::json(401, &json!({ "error": "unauthorized: send Authorization: Bearer <ADMIN_TOKEN>" }))
                .and_then(|r| {
                    r.headers().set("WWW-Authenticate", "Bearer")?;
                    Ok(r)
                }),
        ),
    }
}

fn method_not_allowed(allow: &str) -> worker::Result<Response> {
    let response = reply::json(405, &json!({ "error": "method not allowed" }))?;
    response.headers().set("Allow", allow)?;
    Ok(response)
}

pub async fn purge_request<S: Store>(
    request: &Request,
    config: &Config,
    store: &S,
    now_ms: u64,
) -> worker::Result<Response> {
    if let Some(refusal) = refuse(request, config) {
        return refusal;
    }
    if request.method() != "POST" {
        return method_not_allowed("POST");
    }
    let body = match request.array_buffer() {
        Ok(promise) => match JsFuture::from(promise).await {
            Ok(buffer) => js_sys::Uint8Array::new(&buffer),
            Err(_) => return reply::json(400, &json!({ "error": "the request body could not be read" })),
        },
        Err(_) => return reply::json(400, &json!({ "error": "the request body could not be read" })),
    };
    if body.length() > MAX_PURGE_BODY {
        return reply::json(413, &json!({ "error": "purge body over 1 MiB" }));
    }
    let purge_request = match parse_purge_request(&body.to_vec()) {
        Ok(parsed) => parsed,
        Err(reason) => return reply::json(400, &json!({ "error": reason })),
    };
    match purge(store, &config.namespace, &purge_request, now_ms).await {
        Ok(report) => reply::json(200, &report.to_json()),
        Err(e) => {
            worker::console_error!("edge-cache: purge failed: {e}");
            reply::json(503, &json!({ "error": format!("purge failed: {e}") }))
        }
    }
}

pub async fn stats_request<S: Store>(
    request: &Request,
    config: &Config,
    store: &S,
    stats: &Stats,
    now_ms: u64,
) -> worker::Result<Response> {
    if let Some(refusal) = refuse(request, config) {
        return refusal;
    }
    if !matches!(request.method().as_str(), "GET" | "HEAD") {
        return method_not_allowed("GET, HEAD");
    }
    // This isolate's unflushed counts first, so the answer includes them.
    let mut ops = stats.take_flush(&config.namespace, now_ms, true).unwrap_or_default();
    let flushed = ops.len();
    ops.extend(read_ops(&config.namespace));
    match store.run(&ops).await {
        Ok(replies) => {
            let counts = replies.get(flushed).map(read_counts).unwrap_or_default();
            let mut body = serde_json::Map::new();
            for (name, count) in counts {
                body.insert(name.to_string(), json!(count));
            }
            reply::json(200, &serde_json::Value::Object(body))
        }
        Err(e) => reply::json(503, &json!({ "error": format!("stats unavailable: {e}") })),
    }
}
