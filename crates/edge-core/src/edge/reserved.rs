//! `/__edge/`: the worker's own paths (docs §6.4). Reserved: whatever the path, the request is
//! answered here and never forwarded to the origin.
//!
//! - `GET /__edge/health`: is the worker configured, which store does it use, does it answer?
//!   Always 200 while the worker can serve: a Redis outage degrades caching (requests fail
//!   open) but does not stop the worker, so `status` says `degraded`.
//! - `POST /__edge/purge` and `GET /__edge/stats`: the admin API, behind
//!   `Authorization: Bearer <ADMIN_TOKEN>` (constant-time; 404 when no token is set).

use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};

use super::{BodyRead, Edge, EdgeRequest, Host, LogLevel};
use crate::admin::{admin_access, AdminAccess};
use crate::engine::{Served, ServedBody};
use crate::phase::{CachePhase, NoCacheReason};
use crate::purge::{parse_purge_request, purge_with_rules, PurgeReport};
use crate::stats::{read_counts, read_ops};
use crate::store::Store;

const PREFIX: &str = "/__edge/";

/// Purge bodies larger than this are refused (a thousand URLs fit easily).
pub const MAX_PURGE_BODY: u64 = 1_048_576;

/// True for `/__edge` and everything under `/__edge/`.
pub fn is_reserved(path: &str) -> bool {
    path.starts_with(PREFIX) || path == PREFIX.trim_end_matches('/')
}

impl<S: Store + Clone + 'static> Edge<S> {
    pub(super) async fn answer_reserved<H: Host>(
        &self,
        host: &H,
        request: EdgeRequest<H::RequestBody>,
        path: &str,
    ) -> Served<H::Body> {
        match path {
            "/__edge/health" => match request.method {
                Method::GET | Method::HEAD => self.health(host).await,
                _ => method_not_allowed("GET, HEAD"),
            },
            "/__edge/purge" => self.purge_request(host, request).await,
            "/__edge/stats" => self.stats_request(host, &request).await,
            _ => own_json(404, &json!({ "error": "not found" })),
        }
    }

    /// With sessions on a store of their own, both are pinged together and the answer gains
    /// `"sessions": {"store", "redis"}`; either unreachable makes the status `degraded`.
    async fn health<H: Host>(&self, host: &H) -> Served<H::Body> {
        let (redis, sessions) = match &self.session_store {
            None => (ping(host, &self.store, "cache").await, None),
            Some(sessions) => {
                let (cache, own) =
                    futures::join!(ping(host, &self.store, "cache"), ping(host, sessions, "sessions"));
                (cache, Some((sessions.kind().as_str(), own)))
            }
        };
        let all_ok = redis == "ok" && sessions.is_none_or(|(_, answer)| answer == "ok");
        let status = if all_ok { "ok" } else { "degraded" };
        let mut body = json!({ "status": status, "store": self.store.kind().as_str(), "redis": redis });
        if let (Some((kind, answer)), Some(fields)) = (sessions, body.as_object_mut()) {
            fields.insert("sessions".into(), json!({ "store": kind, "redis": answer }));
        }
        own_json(200, &body)
    }

    /// `None` when access is allowed; otherwise the 404/401 to answer.
    fn refuse<B>(&self, headers: &HeaderMap) -> Option<Served<B>> {
        let authorization = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match admin_access(authorization, self.config.admin_token.as_deref()) {
            AdminAccess::Allowed => None,
            AdminAccess::Disabled => Some(own_json(404, &json!({ "error": "not found" }))),
            AdminAccess::Denied => {
                let text = "unauthorized: send Authorization: Bearer <ADMIN_TOKEN>";
                let mut served = own_json(401, &json!({ "error": text }));
                served.headers.insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                Some(served)
            }
        }
    }

    async fn purge_request<H: Host>(
        &self,
        host: &H,
        request: EdgeRequest<H::RequestBody>,
    ) -> Served<H::Body> {
        if let Some(refusal) = self.refuse(&request.headers) {
            return refusal;
        }
        if request.method != Method::POST {
            return method_not_allowed("POST");
        }
        let declared = request.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
        if declared.and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|len| len > MAX_PURGE_BODY) {
            return own_json(413, &json!({ "error": "purge body over 1 MiB" }));
        }
        let body = match request.body {
            None => Vec::new(),
            Some(body) => match host.read_request_body(body, MAX_PURGE_BODY).await {
                BodyRead::Whole(bytes) => bytes,
                BodyRead::TooLarge => return own_json(413, &json!({ "error": "purge body over 1 MiB" })),
                BodyRead::Unreadable => {
                    return own_json(400, &json!({ "error": "the request body could not be read" }))
                }
            },
        };
        let purge_request = match parse_purge_request(&body) {
            Ok(parsed) => parsed,
            Err(reason) => return own_json(400, &json!({ "error": reason })),
        };
        let result = purge_with_rules(
            &self.store,
            &self.config.namespace,
            &self.config.rules,
            &purge_request,
            host.now_ms(),
        )
        .await;
        // This isolate's L1 forgets at once (after Redis, so that no lookup in between puts the
        // purged copy back); other isolates' within CACHE_L1_TTL_MS (docs §8.1).
        self.cache_state.purged(&purge_request.target, &self.config.rules);
        if let Ok(PurgeReport { kind: "everything", soft: false, version: Some(version), .. }) = &result {
            self.cache_state.purged_everything(*version);
        }
        match result {
            Ok(report) => own_json(200, &report.to_json()),
            Err(e) => {
                host.log(LogLevel::Error, &format!("edge-cache: purge failed: {e}"));
                own_json(503, &json!({ "error": format!("purge failed: {e}") }))
            }
        }
    }

    async fn stats_request<H: Host>(
        &self,
        host: &H,
        request: &EdgeRequest<H::RequestBody>,
    ) -> Served<H::Body> {
        if let Some(refusal) = self.refuse(&request.headers) {
            return refusal;
        }
        if !matches!(request.method, Method::GET | Method::HEAD) {
            return method_not_allowed("GET, HEAD");
        }
        // This isolate's unflushed counts first, so the answer includes them.
        let namespace = &self.config.namespace;
        let mut ops = self.stats.take_flush(namespace, host.now_ms(), true).unwrap_or_default();
        let flushed = ops.len();
        ops.extend(read_ops(namespace));
        match self.store.run(&ops).await {
            Ok(replies) => {
                let counts = replies.get(flushed).map(read_counts).unwrap_or_default();
                let body: serde_json::Map<String, Value> =
                    counts.into_iter().map(|(name, count)| (name.to_string(), json!(count))).collect();
                own_json(200, &Value::Object(body))
            }
            Err(e) => own_json(503, &json!({ "error": format!("stats unavailable: {e}") })),
        }
    }
}

/// `"ok"` or `"unreachable"` (logged as `which` store's failure).
async fn ping<H: Host, T: Store>(host: &H, store: &T, which: &str) -> &'static str {
    match store.ping().await {
        Ok(()) => "ok",
        Err(error) => {
            host.log(LogLevel::Warn, &format!("edge-cache: health: {which} store: {error}"));
            "unreachable"
        }
    }
}

fn method_not_allowed<B>(allow: &'static str) -> Served<B> {
    let mut served = own_json(405, &json!({ "error": "method not allowed" }));
    served.headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
    served
}

/// A JSON response the worker writes itself, which no cache may keep.
pub fn own_json<B>(status: u16, body: &Value) -> Served<B> {
    own(status, "application/json", body.to_string().into_bytes())
}

/// A `text/plain` response the worker writes itself, which no cache may keep.
pub fn own_text<B>(status: u16, body: &str) -> Served<B> {
    own(status, "text/plain; charset=utf-8", body.as_bytes().to_vec())
}

fn own<B>(status: u16, content_type: &'static str, body: Vec<u8>) -> Served<B> {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Served { status, headers, body: ServedBody::Bytes(body), phase: CachePhase::Bypass(NoCacheReason::Admin) }
}
