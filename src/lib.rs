//! edge-cache's worker: a thin adapter from Cloudflare's runtime to `edge-core`.
//!
//! Everything the request path decides lives in `edge_core::Edge::handle`, which is tested
//! natively; this crate converts workerd's types (request, headers, bodies, `fetch`, timers,
//! `ctx.wait_until`) and keeps the per-isolate state. Nothing here unwraps or panics: a
//! failure becomes a response (500 config error, 502, 504) and a log line.

mod aead;
mod body;
mod env_config;
mod headers;
mod isolate;
mod origin;
mod respond;
mod runtime_js;
mod timer;
mod worker_host;

use std::future::Future;
use std::task::{Context as TaskContext, Poll, Waker};

use edge_core::{own_text, EdgeRequest, Host, LogLevel};
use http::Method;
use wasm_bindgen::prelude::*;
use web_sys::{Request, Response};
use worker::{Context, Env};

use crate::headers::to_header_map;
use crate::worker_host::WorkerHost;

/// workerd's `fetch` handler (the export `worker::event(fetch)` would make, minus its promise).
///
/// The request's work is polled once here, synchronously: an answer that needs no I/O (a hit
/// in the L1 or the memory store, a purge refused, a config error) goes back as a `Response`
/// with no promise, task queue or microtask in between (issue 11: that machinery was ~20 µs of
/// a memory hit). Work still pending is handed to the task queue, whose first poll re-registers
/// every waker: the no-op waker of this first poll is never the one a promise wakes.
#[wasm_bindgen]
pub fn fetch(request: Request, env: Env, ctx: worker::worker_sys::Context) -> Result<JsValue, JsValue> {
    let mut work = Box::pin(handle(request, env, Context::new(ctx)));
    let mut first_poll = TaskContext::from_waker(Waker::noop());
    match work.as_mut().poll(&mut first_poll) {
        Poll::Ready(answer) => answer.map(JsValue::from).map_err(JsValue::from),
        Poll::Pending => {
            let promise = worker::wasm_bindgen_futures::future_to_promise(async move {
                work.await.map(JsValue::from).map_err(JsValue::from)
            });
            Ok(promise.into())
        }
    }
}

async fn handle(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let host = WorkerHost::new(ctx);
    // Configuration: read and validated once per isolate. A bad value answers every request
    // with a 500 naming the variable (never its value).
    let config = match env_config::load(&env) {
        Ok(config) => config,
        Err(error) => {
            host.log(LogLevel::Error, &format!("edge-cache: {error}"));
            return respond::to_response(own_text(500, &format!("edge-cache: {error}\n")));
        }
    };
    let edge = isolate::get(config, &host);
    // Any token workerd accepted parses; a method `http` cannot name is forwarded as a write.
    let method = Method::from_bytes(request.method().as_bytes()).unwrap_or(Method::POST);
    let incoming = EdgeRequest {
        method,
        url: request.url(),
        headers: to_header_map(&request.headers()),
        body: request.body(),
    };
    let served = edge.handle(&host, incoming).await;
    match respond::to_response(served) {
        Ok(response) => Ok(response),
        Err(error) => {
            // A JS exception from constructing the response: nothing the client did.
            host.log(LogLevel::Error, &format!("edge-cache: internal error: {error:?}"));
            respond::to_response(own_text(500, "edge-cache: internal error\n"))
        }
    }
}
