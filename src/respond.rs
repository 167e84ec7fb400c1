//! A [`Served`] response from the core, as the runtime's `Response`.

use edge_core::{origin_error_response, OriginError, Served, ServedBody};
use http::HeaderMap;
use wasm_bindgen::JsValue;
use web_sys::{Response, ResponseInit};

use crate::headers::{header_lines, to_web_headers};
use crate::runtime_js::{edge_response, edge_response_bytes};

/// Statuses that must not carry a body, not even an empty stream.
fn null_body(status: u16) -> bool {
    matches!(status, 101 | 204 | 205 | 304)
}

/// The runtime's `Response`, built in one call into JS (`runtime_js`).
pub fn to_response(served: Served<Response>) -> worker::Result<Response> {
    let lines = header_lines(&served.headers);
    let response = match served.body {
        ServedBody::Upgraded(origin) => upgraded(origin, &served.headers)?,
        _ if null_body(served.status) => edge_response(served.status, "", &lines, None)?,
        ServedBody::Empty => edge_response(served.status, "", &lines, None)?,
        ServedBody::Bytes(bytes) => edge_response_bytes(served.status, &lines, &bytes)?,
        ServedBody::Stream(origin) => {
            edge_response(served.status, &origin.status_text(), &lines, origin.body().as_ref())?
        }
    };
    Ok(response)
}

/// The origin's `101`, with its WebSocket carried into a response whose head is the core's
/// (`X-Cache`, `Cache-Status`, session cookies; the runtime completes the handshake with the
/// client itself). `webSocket` is not part of web-sys' `ResponseInit`, so the field is set
/// on the init object by name, as workerd reads it. If that fails, the origin's own response
/// goes back untouched: the socket matters more than our headers. A `101` without a socket
/// (nothing workerd should produce) cannot be relayed: 502.
fn upgraded(origin: Response, headers: &HeaderMap) -> worker::Result<Response> {
    let socket = js_sys::Reflect::get(&origin, &JsValue::from_str("webSocket")).unwrap_or(JsValue::UNDEFINED);
    if socket.is_null() || socket.is_undefined() {
        worker::console_error!("edge-cache: the origin's 101 carries no WebSocket");
        return to_response(origin_error_response(&OriginError::InvalidStatus(101)));
    }
    match with_socket(&socket, headers) {
        Ok(response) => Ok(response),
        Err(error) => {
            worker::console_warn!("edge-cache: the 101 goes back without the edge's headers: {error:?}");
            Ok(origin)
        }
    }
}

fn with_socket(socket: &JsValue, headers: &HeaderMap) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(101);
    init.set_headers_headers(&to_web_headers(headers).map_err(|e| JsValue::from_str(&e.to_string()))?);
    js_sys::Reflect::set(&init, &JsValue::from_str("webSocket"), socket)?;
    Response::new_with_opt_str_and_init(None, &init)
}
