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
//! timeout bounds the handshake only: once the head is here the timer is cleared and the
//! abort signal is never fired, so the socket lives as long as its two ends want.

use std::pin::pin;
use std::time::Duration;

use edge_core::{strip_hop_by_hop, OriginError, OriginRequest, OriginResponse};
use futures::future::{select, Either};
use http::HeaderMap;
use js_sys::{Array, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Headers, ReadableStream, RequestCache, RequestInit, RequestRedirect, Response,
    WorkerGlobalScope,
};

use crate::headers::{to_header_map, to_web_headers};

/// What came first: the origin's answer (or its failure), or the deadline.
enum Race {
    Answer(Result<JsValue, JsValue>),
    Deadline,
}

/// Sends one request, racing it against `timeout_ms`; a timed-out fetch is aborted.
async fn fetch_with_timeout(
    target: &str,
    init: &RequestInit,
    timeout_ms: u64,
) -> Result<Response, OriginError> {
    let abort = AbortController::new().map_err(|e| OriginError::Unreachable(js_error_text(&e)))?;
    init.set_signal(Some(&abort.signal()));
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = global.fetch_with_str_and_init(target, init);
    let race = match crate::timer::wait_promise(timeout_ms) {
        // One promise for both (`Promise.race`, in the runtime): no closure, no timer to clear.
        // The wait resolves to `undefined`; the fetch to a Response or an error.
        Some(deadline) => match JsFuture::from(Promise::race(&Array::of2(&fetch, &deadline))).await {
            Ok(value) if value.is_undefined() => Race::Deadline,
            answer => Race::Answer(answer),
        },
        None => {
            let fetch = pin!(JsFuture::from(fetch));
            let deadline = pin!(worker::Delay::from(Duration::from_millis(timeout_ms)));
            match select(fetch, deadline).await {
                Either::Left((answer, _)) => Race::Answer(answer),
                Either::Right(((), _)) => Race::Deadline,
            }
        }
    };
    // The head (or an error) arrived first: `abort` is never used again, so nothing can cut
    // off a body or an upgraded socket.
    match race {
        Race::Answer(Ok(answer)) => answer
            .dyn_into::<Response>()
            .map_err(|_| OriginError::Unreachable("fetch answered no Response".into())),
        Race::Answer(Err(error)) => {
            let text = js_error_text(&error);
            worker::console_error!("edge-cache: origin unreachable: {text}");
            Err(OriginError::Unreachable(text))
        }
        Race::Deadline => {
            // Leaving the fetch unawaited would leave the subrequest running; abort it.
            abort.abort_with_reason(&JsValue::from_str("ORIGIN_TIMEOUT_MS elapsed"));
            worker::console_warn!(
                "edge-cache: origin gave no answer within ORIGIN_TIMEOUT_MS ({timeout_ms} ms)"
            );
            Err(OriginError::Timeout)
        }
    }
}

/// Sends one origin request (its body, if any, streamed through) and answers the response head
/// with its body still unread.
pub async fn send(request: OriginRequest<ReadableStream>) -> Result<OriginResponse<Response>, OriginError> {
    let init = RequestInit::new();
    init.set_method(request.method.as_str());
    init.set_headers_headers(&web_headers(&request.headers)?);
    init.set_redirect(RequestRedirect::Manual);
    // Past the runtime's own cache: a copy there is one an edge-cache purge cannot reach
    // (in zone-route mode the worker fetches the request's own URL), docs §8.1.
    init.set_cache(RequestCache::NoStore);
    if let Some(body) = &request.body {
        init.set_body(body);
    }
    let response = fetch_with_timeout(&request.url, &init, request.timeout_ms).await?;
    Ok(OriginResponse { status: response.status(), headers: response_headers(&response), body: response })
}

/// The origin response's headers (every `Set-Cookie` kept), minus hop-by-hop ones.
fn response_headers(response: &Response) -> HeaderMap {
    let mut headers = to_header_map(&response.headers());
    strip_hop_by_hop(&mut headers);
    headers
}

/// Web headers for a fetch, from a map.
fn web_headers(map: &HeaderMap) -> Result<Headers, OriginError> {
    to_web_headers(map).map_err(|e| OriginError::Unreachable(format!("{e}")))
}

fn js_error_text(error: &JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => error.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}
