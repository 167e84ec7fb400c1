//! The JS side of the adapter: a few functions that do in one call from wasm what would
//! otherwise be a crossing per field, per header and per promise (issue 11: each crossing
//! costs a few microseconds of glue, and a pass-through made about forty).
//!
//! - Header lists travel as one string of `name\nvalue\n` lines. `\n` can be in neither a name
//!   nor a value on either side: the Fetch spec's `Headers` refuses CR, LF and NUL, and so does
//!   `http::HeaderValue`. The Fetch spec iterates each `Set-Cookie` separately, so several
//!   cookies survive the trip.
//! - The origin fetch builds its init, its abort signal and its deadline on the JS side: a
//!   `setTimeout` that aborts the fetch, cleared when the head arrives; an aborted fetch answers
//!   `null`. The signal is never fired once the head is here, so a streaming body or an
//!   upgraded socket is never cut. (Measured against `Promise.race` with `scheduler.wait(ms)`:
//!   about 60 µs less workerd CPU a pass-through; a JS timer with a JS callback has no closure
//!   into wasm to create and free, which is what made `worker::Delay` dear.)
//! - Header lists reach the runtime as a plain record (`{name: value}`), which workerd converts
//!   far faster than an array of pairs (about 35 µs a response); a list that repeats a name
//!   (several `Set-Cookie`) goes as pairs.
//! - A response is built in one call from its status, header lines and body.

use wasm_bindgen::prelude::*;
use web_sys::{Headers, ReadableStream, Response};

#[wasm_bindgen(inline_js = "
export function edge_header_lines(headers) {
  let lines = '';
  for (const [name, value] of headers) lines += name + '\\n' + value + '\\n';
  return lines;
}
function headers_from_lines(lines) {
  const parts = lines.split('\\n');
  const record = Object.create(null);
  for (let i = 0; i + 1 < parts.length; i += 2) {
    if (parts[i] in record) return pairs_of(parts);
    record[parts[i]] = parts[i + 1];
  }
  return record;
}
function pairs_of(parts) {
  const pairs = [];
  for (let i = 0; i + 1 < parts.length; i += 2) pairs.push([parts[i], parts[i + 1]]);
  return pairs;
}
export function edge_headers_from_lines(lines) {
  return new Headers(headers_from_lines(lines));
}
export function edge_fetch(url, method, lines, body, ms) {
  const controller = new AbortController();
  const init = {
    method,
    headers: headers_from_lines(lines),
    redirect: 'manual',
    cache: 'no-store',
    signal: controller.signal,
  };
  if (body !== undefined && body !== null) init.body = body;
  const timer = setTimeout(() => controller.abort('ORIGIN_TIMEOUT_MS elapsed'), ms);
  return fetch(url, init).then(
    (answer) => {
      clearTimeout(timer);
      return answer;
    },
    (error) => {
      clearTimeout(timer);
      if (controller.signal.aborted) return null;
      throw error;
    },
  );
}
export function edge_response_lines(response) {
  return edge_header_lines(response.headers);
}
export function edge_response(status, status_text, lines, body) {
  const init = { status, headers: headers_from_lines(lines) };
  if (status_text) init.statusText = status_text;
  return new Response(body, init);
}
export function edge_response_bytes(status, lines, body) {
  return new Response(body, { status, headers: headers_from_lines(lines) });
}
")]
extern "C" {
    /// Every header, `name\nvalue\n` each, in the runtime's iteration order.
    #[wasm_bindgen(catch)]
    pub fn edge_header_lines(headers: &Headers) -> Result<String, JsValue>;
    /// New runtime headers from such lines (every pair appended).
    #[wasm_bindgen(catch)]
    pub fn edge_headers_from_lines(lines: &str) -> Result<Headers, JsValue>;
    /// A promise of the origin's `Response`, or of `null` when `ms` passed first (the fetch
    /// is then aborted); rejected when the fetch fails. `redirect: manual`, `cache: no-store`.
    #[wasm_bindgen(catch)]
    pub fn edge_fetch(
        url: &str,
        method: &str,
        lines: &str,
        body: Option<&ReadableStream>,
        ms: f64,
    ) -> Result<js_sys::Promise, JsValue>;
    /// The response's header lines.
    #[wasm_bindgen(catch)]
    pub fn edge_response_lines(response: &Response) -> Result<String, JsValue>;
    /// `new Response(body, { status, statusText, headers })`; an empty status text is left out.
    #[wasm_bindgen(catch)]
    pub fn edge_response(
        status: u16,
        status_text: &str,
        lines: &str,
        body: Option<&ReadableStream>,
    ) -> Result<Response, JsValue>;
    /// The same with the body copied from wasm memory.
    #[wasm_bindgen(catch)]
    pub fn edge_response_bytes(status: u16, lines: &str, body: &[u8]) -> Result<Response, JsValue>;
}
