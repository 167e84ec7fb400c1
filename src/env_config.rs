//! Reads the configuration (docs §1.1) from the worker's bindings, once per isolate.
//!
//! Vars and secrets cannot change while an isolate lives (a new deployment or a changed secret
//! starts new isolates), so the validated result, good or bad, is kept for the isolate's life.

use std::cell::OnceCell;
use std::rc::Rc;

use edge_core::{Config, ConfigError};
use wasm_bindgen::JsValue;
use worker::Env;

thread_local! {
    static CONFIG: OnceCell<Result<Rc<Config>, ConfigError>> = const { OnceCell::new() };
}

/// The isolate's configuration, or the error that makes every request a 500.
pub fn load(env: &Env) -> Result<Rc<Config>, ConfigError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| Config::from_lookup(|name| binding_text(env, name)).map(Rc::new)).clone()
    })
}

/// A binding as text: strings (vars, secrets, `.dev.vars`) as they are; a `[vars]` entry that
/// wrangler passes as JSON (a TOML number, array or table, e.g. `CACHE_RULES = [...]`) as its
/// JSON text. Absent, `undefined` and `null` are "unset".
fn binding_text(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    if let Some(text) = value.as_string() {
        return Some(text);
    }
    js_sys::JSON::stringify(&value).ok().and_then(|json| json.as_string())
}
