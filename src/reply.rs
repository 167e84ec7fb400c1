//! Responses the worker writes itself (errors, `/__edge/` answers), as opposed to the origin's.

use edge_core::config::ConfigError;
use web_sys::{Headers, Response, ResponseInit};

/// A `text/plain` response that no cache may keep.
pub fn text(status: u16, body: &str) -> worker::Result<Response> {
    own(status, "text/plain; charset=utf-8", body)
}

/// A JSON response that no cache may keep.
pub fn json(status: u16, body: &serde_json::Value) -> worker::Result<Response> {
    own(status, "application/json", &body.to_string())
}

/// The answer to every request while the configuration is invalid: a 500 naming the variable
/// and what is wrong with it (a secret's value never appears in a [`ConfigError`]), logged too.
pub fn config_error(error: &ConfigError) -> worker::Result<Response> {
    worker::console_error!("edge-cache: {error}");
    text(500, &format!("edge-cache: {error}\n"))
}

fn own(status: u16, content_type: &str, body: &str) -> worker::Result<Response> {
    let headers = Headers::new()?;
    headers.set("Content-Type", content_type)?;
    headers.set("Cache-Control", "no-store")?;
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers_headers(&headers);
    Ok(Response::new_with_opt_str_and_init(Some(body), &init)?)
}
