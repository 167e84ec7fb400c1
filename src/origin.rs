//! Talking to the origin: where requests go, what headers they carry, and the fetch itself,
//! bounded by `ORIGIN_TIMEOUT_MS`. Bodies are the runtime's own `ReadableStream`s handed over,
//! never read into wasm memory (except by the cache, up to `CACHE_MAX_BYTES`); redirects are
//! passed to the client rather than followed.
//!
//! What changes on the way (as a reverse proxy should, RFC 9110 §7.6):
//! - hop-by-hop headers are dropped both ways: `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`;
//! - every client header whose name starts with `Edge-Session` is dropped (CONTRACT §5: only the
//!   worker may tell the origin about sessions), and the session headers are added by the core;
//! - `Host` becomes the origin's; the client's host goes in `X-Forwarded-Host`, its scheme in
//!   `X-Forwarded-Proto`, its address (`CF-Connecting-IP`) is appended to `X-Forwarded-For`.
//!
//! Failures: no answer at all ⇒ 502; no response headers within `ORIGIN_TIMEOUT_MS` ⇒ the
//! origin fetch is aborted and the client gets 504. The timeout bounds the wait for the
//! response head; a body that is already streaming is not cut off.

use std::pin::pin;
use std::time::Duration;

use edge_core::config::{Config, Origin};
use edge_core::runtime::{OriginError, OriginResponse};
use futures::future::{select, Either};
use http::HeaderMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, RequestRedirect, Response, WorkerGlobalScope};

use crate::headers::{to_header_map, to_web_headers};
use crate::request_url::RequestUrl;

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the legacy ones proxies still meet.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// The origin URL for this request: `ORIGIN_URL` + path and query, or the request's own URL.
pub fn target_url(config: &Config, url: &RequestUrl) -> String {
    match &config.origin {
        Origin::Fixed(base) => format!("{base}{}", url.path_and_query()),
        Origin::RequestUrl => url.as_str().to_string(),
    }
}

/// The client's headers as the origin should get them, before the session adds its own:
/// minus hop-by-hop, `Host` and `Edge-Session*`, plus the `X-Forwarded-*` trio.
pub fn forwarded_headers(client: &HeaderMap, url: &RequestUrl) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    let session_headers: Vec<_> =
        headers.keys().filter(|name| name.as_str().starts_with("edge-session")).cloned().collect();
    for name in session_headers {
        headers.remove(&name);
    }
    headers.remove(http::header::HOST);
    let client_ip = headers.get("cf-connecting-ip").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(client_ip) = client_ip {
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client_ip}"),
            _ => client_ip,
        };
        if let Ok(value) = forwarded_for.parse() {
            headers.insert("x-forwarded-for", value);
        }
    }
    for (name, value) in [("x-forwarded-proto", url.scheme()), ("x-forwarded-host", url.host())] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    headers
}

/// Removes hop-by-hop headers, including those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in named.iter().map(String::as_str).chain(HOP_BY_HOP.iter().copied()) {
        headers.remove(name);
    }
}

/// Sends one request, racing it against `timeout_ms`; a timed-out fetch is aborted.
pub async fn fetch_with_timeout(
    target: &str,
    init: &RequestInit,
    timeout_ms: u64,
) -> Result<Response, OriginError> {
    let abort = AbortController::new().map_err(|e| OriginError::Unreachable(js_error_text(&e)))?;
    init.set_signal(Some(&abort.signal()));
    let outbound = Request::new_with_str_and_init(target, init)
        .map_err(|e| OriginError::Unreachable(js_error_text(&e)))?;
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = pin!(JsFuture::from(global.fetch_with_request(&outbound)));
    let deadline = pin!(worker::Delay::from(Duration::from_millis(timeout_ms)));
    match select(fetch, deadline).await {
        Either::Left((Ok(answer), _)) => answer
            .dyn_into::<Response>()
            .map_err(|_| OriginError::Unreachable("fetch answered no Response".into())),
        Either::Left((Err(error), _)) => {
            let text = js_error_text(&error);
            worker::console_error!("edge-cache: origin unreachable: {text}");
            Err(OriginError::Unreachable(text))
        }
        Either::Right(((), _)) => {
            // Dropping the fetch future would leave the subrequest running; abort it.
            abort.abort_with_reason(&JsValue::from_str("ORIGIN_TIMEOUT_MS elapsed"));
            worker::console_warn!(
                "edge-cache: origin gave no answer within ORIGIN_TIMEOUT_MS ({timeout_ms} ms)"
            );
            Err(OriginError::Timeout)
        }
    }
}

/// Forwards a request with its body (any method), streaming both ways, and answers the origin's
/// response head with its body still unread.
pub async fn forward_streaming(
    request: &Request,
    target: &str,
    headers: &HeaderMap,
    timeout_ms: u64,
) -> Result<OriginResponse<Response>, OriginError> {
    let init = RequestInit::new();
    init.set_method(&request.method());
    init.set_headers_headers(&to_web_headers(headers).map_err(|e| OriginError::Unreachable(format!("{e}")))?);
    init.set_redirect(RequestRedirect::Manual);
    if let Some(body) = request.body() {
        init.set_body(&body);
    }
    let response = fetch_with_timeout(target, &init, timeout_ms).await?;
    Ok(OriginResponse { status: response.status(), headers: response_headers(&response), body: response })
}

/// The origin response's headers (every `Set-Cookie` kept), minus hop-by-hop ones.
pub fn response_headers(response: &Response) -> HeaderMap {
    let mut headers = to_header_map(&response.headers());
    strip_hop_by_hop(&mut headers);
    headers
}

/// Web headers for a fetch, from a map.
pub fn web_headers(map: &HeaderMap) -> Result<Headers, OriginError> {
    to_web_headers(map).map_err(|e| OriginError::Unreachable(format!("{e}")))
}

fn js_error_text(error: &JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => error.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}
