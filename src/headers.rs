//! Header maps between the runtime (`web_sys::Headers`) and the core (`http::HeaderMap`).
//!
//! The Fetch spec iterates each `Set-Cookie` separately, so several cookies survive the trip;
//! a header the `http` crate cannot represent is dropped with a log line rather than failing
//! the request.

use http::{HeaderMap, HeaderName, HeaderValue};
use web_sys::Headers;

/// The runtime's headers as an `http::HeaderMap` (names lower-case, order of values kept).
pub fn to_header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    // Iterated by hand: `worker::Headers::entries` unwraps, and nothing here may panic.
    let Ok(Some(entries)) = js_sys::try_iter(headers) else { return map };
    for entry in entries.flatten() {
        let pair = js_sys::Array::from(&entry);
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else { continue };
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => worker::console_warn!("edge-cache: dropped a header that is not valid HTTP: {name:?}"),
        }
    }
    map
}

/// An `http::HeaderMap` as runtime headers (every value appended, so `Set-Cookie` stays plural).
pub fn to_web_headers(map: &HeaderMap) -> worker::Result<Headers> {
    let headers = Headers::new()?;
    for (name, value) in map {
        // A value that is not UTF-8 cannot cross into a JS string losslessly: skip it.
        if let Ok(text) = std::str::from_utf8(value.as_bytes()) {
            headers.append(name.as_str(), text)?;
        }
    }
    Ok(headers)
}
