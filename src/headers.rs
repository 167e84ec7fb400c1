//! Header maps between the runtime (`web_sys::Headers`) and the core (`http::HeaderMap`).
//!
//! Each direction crosses the wasm boundary once: the whole list travels as one string of
//! `name\nvalue\n` lines, walked on the JS side (`runtime_js`). Going one JS call per header
//! (and, reading, five more per entry for the iterator, the pair and its two strings) was a
//! large share of a pass-through's CPU in the profile (issue 11). A header the `http` crate
//! cannot represent is dropped with a log line rather than failing the request.

use http::{HeaderMap, HeaderName, HeaderValue};
use web_sys::Headers;

use crate::runtime_js::{edge_header_lines, edge_headers_from_lines};

/// The runtime's headers as an `http::HeaderMap` (names lower-case, order of values kept).
pub fn to_header_map(headers: &Headers) -> HeaderMap {
    match edge_header_lines(headers) {
        Ok(lines) => header_map_from_lines(&lines),
        Err(error) => {
            worker::console_warn!("edge-cache: the headers could not be read: {error:?}");
            HeaderMap::new()
        }
    }
}

/// An `http::HeaderMap` as runtime headers (every value appended, so `Set-Cookie` stays plural).
pub fn to_web_headers(map: &HeaderMap) -> worker::Result<Headers> {
    Ok(edge_headers_from_lines(&header_lines(map))?)
}

/// `name\nvalue\n` lines as a map; a pair `http` refuses is dropped with a log line.
pub fn header_map_from_lines(lines: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    let mut parts = lines.split('\n');
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => worker::console_warn!("edge-cache: dropped a header that is not valid HTTP: {name:?}"),
        }
    }
    map
}

/// The map as `name\nvalue\n` lines. A value that is not UTF-8 cannot cross into a JS string
/// losslessly: it is skipped, as the per-header copy did.
pub fn header_lines(map: &HeaderMap) -> String {
    let mut lines = String::with_capacity(map.len() * 32);
    for (name, value) in map {
        if let Ok(text) = std::str::from_utf8(value.as_bytes()) {
            lines.push_str(name.as_str());
            lines.push('\n');
            lines.push_str(text);
            lines.push('\n');
        }
    }
    lines
}
