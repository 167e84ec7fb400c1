//! Awaiting a JS promise from Rust without two closures per await (wasm32 only).
//!
//! `wasm_bindgen_futures::JsFuture` attaches two fresh `Closure`s to each promise and frees
//! them only when the promise settles, even if the future was dropped long before. In workerd a
//! promise that belongs to a request which has ended never settles: a timer that lost a race
//! (a lock renewal's, a waiter's), a wake-up nobody gave. Each such await kept its closures in
//! the wasm externref table and its state in wasm memory for the isolate's life: about two
//! closures per cache miss, found with `bench/heap-growth.mjs` (issue 14 item 3).
//!
//! Here the promise's reaction carries only a number: `promise.then(v => settle(id, true, v))`
//! through one closure made once per isolate. The Rust side keeps a slot per pending await,
//! removed when its future completes or is dropped; a promise that never settles leaves
//! nothing behind but itself, which the JS garbage collector takes. It is cheaper as well: no
//! closure to create, register for finalization and destroy per await.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::Promise;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = "
let settle = null;
export function edge_await_install(f) { settle = f; }
export function edge_await(promise, id) {
  promise.then((value) => settle(id, true, value), (error) => settle(id, false, error));
}
")]
extern "C" {
    fn edge_await_install(settle: &Closure<dyn FnMut(u32, bool, JsValue)>);
    fn edge_await(promise: &Promise, id: u32);
}

enum Slot {
    Waiting(Option<Waker>),
    Settled(Result<JsValue, JsValue>),
}

/// Pending awaits of this isolate, by number.
#[derive(Default)]
struct Awaits {
    next: Cell<u32>,
    slots: RefCell<HashMap<u32, Slot>>,
}

thread_local! {
    static AWAITS: Awaits = Awaits::default();
    /// The one closure JS calls back; made (and handed to JS) on first use.
    static SETTLE: Closure<dyn FnMut(u32, bool, JsValue)> = {
        let settle = Closure::new(settled);
        edge_await_install(&settle);
        settle
    };
}

/// Called by JS when promise `id` settles. A slot that is gone was dropped: the value is too.
fn settled(id: u32, ok: bool, value: JsValue) {
    let waker = AWAITS.with(|awaits| {
        let mut slots = awaits.slots.borrow_mut();
        let slot = slots.get_mut(&id)?;
        let result = if ok { Ok(value) } else { Err(value) };
        match std::mem::replace(slot, Slot::Settled(result)) {
            Slot::Waiting(waker) => waker,
            Slot::Settled(_) => None,
        }
    });
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The outcome of a JS promise: `Ok` with its value, `Err` with its rejection.
pub struct Settled {
    id: u32,
}

/// Awaits `promise`; dropping the future forgets it.
pub fn settled_of(promise: &Promise) -> Settled {
    SETTLE.with(|_| ());
    let id = AWAITS.with(|awaits| {
        let id = awaits.next.get();
        awaits.next.set(id.wrapping_add(1));
        awaits.slots.borrow_mut().insert(id, Slot::Waiting(None));
        id
    });
    edge_await(promise, id);
    Settled { id }
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        AWAITS.with(|awaits| {
            let mut slots = awaits.slots.borrow_mut();
            match slots.get_mut(&id) {
                Some(Slot::Waiting(waker)) => {
                    *waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                Some(Slot::Settled(_)) => match slots.remove(&id) {
                    Some(Slot::Settled(result)) => Poll::Ready(result),
                    _ => Poll::Ready(Err(JsValue::from_str("edge-cache: await slot lost"))),
                },
                // Polled after completion: nothing more will come.
                None => Poll::Ready(Err(JsValue::from_str("edge-cache: await slot lost"))),
            }
        })
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        // `try_with`: at thread teardown the registry may be gone already.
        let _ = AWAITS.try_with(|awaits| awaits.slots.borrow_mut().remove(&self.id));
    }
}
