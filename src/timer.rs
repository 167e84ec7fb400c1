//! Timers through workerd's `scheduler.wait(ms)`: a promise the runtime resolves, with no
//! closure into wasm to create, call and free, and nothing to clear (issue 11: the pass-through
//! profile spent about 130 µs a request on `worker::Delay`'s `setTimeout`, its closure and the
//! `clearTimeout` when the origin answered first). A wait nobody awaits any more simply fires
//! unobserved, or ends with its request. Where `scheduler` is missing, `worker::Delay`.

use std::time::Duration;

use edge_core::js_await::settled_of;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// A promise resolved after `ms`, if the runtime has `scheduler.wait`.
pub fn wait_promise(ms: u64) -> Option<Promise> {
    let scheduler = Reflect::get(&js_sys::global(), &JsValue::from_str("scheduler")).ok()?;
    let wait: Function = Reflect::get(&scheduler, &JsValue::from_str("wait")).ok()?.dyn_into().ok()?;
    // Milliseconds as a JS number: exact up to 2^53, far past any timeout here.
    wait.call1(&scheduler, &JsValue::from_f64(ms as f64)).ok()?.dyn_into().ok()
}

/// Completes after `ms` milliseconds.
pub async fn sleep(ms: u64) {
    match wait_promise(ms) {
        Some(promise) => {
            // A rejected wait (its request being torn down) ends the sleep early; the caller
            // re-reads the clock.
            let _ = settled_of(&promise).await;
        }
        None => worker::Delay::from(Duration::from_millis(ms)).await,
    }
}
