//! Talking to the origin: the fetch itself, bounded by `ORIGIN_TIMEOUT_MS`. Bodies are the
//! runtime's own `ReadableStream`s handed over, never read into wasm memory (except by the
//! cache, up to `CACHE_MAX_BYTES`); redirects are passed to the client rather than followed.
//! Which headers go each way is decided in the core (`edge_core` hygiene, docs §6.2).
//!
//! Failures: no answer at all ⇒ 502; no response headers within `ORIGIN_TIMEOUT_MS` ⇒ the
//! origin fetch is aborted and the client gets 504. The timeout bounds the wait for the
//! response head; a body that is already streaming is not cut off.
//!
//! WebSocket handshakes (`Upgrade: websocket`, restored by the core) go through the same
//! `fetch`: workerd answers the origin's `101` with the socket in `response.webSocket`. The
//! timeout bounds the handshake only: once the head is here the deadline is ignored and the
//! abort signal is never fired, so the socket lives as long as its two ends want.

use edge_core::js_await::settled_of;
use edge_core::{strip_hop_by_hop, OriginError, OriginRequest, OriginResponse};
use http::HeaderMap;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{ReadableStream, Response};

use crate::headers::{header_lines, header_map_from_lines};
use crate::runtime_js::{edge_fetch, edge_response_lines};

/// Sends one origin request (its body, if any, streamed through) and answers the response head
/// with its body still unread. One call into JS builds the request, its abort signal and its
/// deadline (`runtime_js::edge_fetch`).
pub async fn send(request: OriginRequest<ReadableStream>) -> Result<OriginResponse<Response>, OriginError> {
    let lines = header_lines(&request.headers);
    // Milliseconds as a JS number: exact up to 2^53, far past any timeout here.
    let timeout_ms = request.timeout_ms as f64;
    let sent = edge_fetch(&request.url, request.method.as_str(), &lines, request.body.as_ref(), timeout_ms)
        .map_err(|e| OriginError::Unreachable(js_error_text(&e)))?;
    let answer = match settled_of(&sent).await {
        Ok(answer) => answer,
        Err(error) => {
            let text = js_error_text(&error);
            worker::console_error!("edge-cache: origin unreachable: {text}");
            return Err(OriginError::Unreachable(text));
        }
    };
    if answer.is_null() {
        worker::console_warn!(
            "edge-cache: origin gave no answer within ORIGIN_TIMEOUT_MS ({} ms)",
            request.timeout_ms
        );
        return Err(OriginError::Timeout);
    }
    let response: Response =
        answer.dyn_into().map_err(|_| OriginError::Unreachable("fetch answered no Response".into()))?;
    Ok(OriginResponse { status: response.status(), headers: response_headers(&response), body: response })
}

/// The origin response's headers (every `Set-Cookie` kept), minus hop-by-hop ones.
fn response_headers(response: &Response) -> HeaderMap {
    let mut headers = match edge_response_lines(response) {
        Ok(lines) => header_map_from_lines(&lines),
        Err(error) => {
            worker::console_warn!("edge-cache: the origin's headers could not be read: {error:?}");
            HeaderMap::new()
        }
    };
    strip_hop_by_hop(&mut headers);
    headers
}

fn js_error_text(error: &JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => error.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}
