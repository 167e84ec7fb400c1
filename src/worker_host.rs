//! The core's [`Host`] over workerd: `Date.now()`, timers, `ctx.wait_until` for work that
//! continues after the response (stores, background refreshes, counters), `fetch` to the
//! origin, body reads, and the console.

use std::rc::Rc;

use edge_core::js_await::settled_of;
use edge_core::{
    BodyRead, Collected, CryptoError, Host, LogLevel, OriginError, OriginRequest, OriginResponse, Runtime,
    Wake,
};
use futures::future::LocalBoxFuture;
use wasm_bindgen::JsValue;
use web_sys::{ReadableStream, Response};
use worker::Context;

use crate::body::{read_up_to, Read};

#[derive(Clone)]
pub struct WorkerHost {
    ctx: Rc<Context>,
}

impl WorkerHost {
    pub fn new(ctx: Context) -> Self {
        WorkerHost { ctx: Rc::new(ctx) }
    }
}

impl Runtime for WorkerHost {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now().max(0.0) as u64
    }

    async fn sleep(&self, ms: u64) {
        crate::timer::sleep(ms).await;
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        self.ctx.wait_until(task);
    }

    /// `wait_until` work starts within the handler's own microtasks, before workerd has the
    /// response; a zero timer moves it to a later turn of the event loop, after the answer.
    fn spawn_after_answer(&self, task: LocalBoxFuture<'static, ()>) {
        self.ctx.wait_until(async move {
            crate::timer::sleep(0).await;
            task.await;
        });
    }

    /// A promise of this request, resolved by whichever request calls the wake: workerd runs
    /// the continuation in the request that created the promise, so the woken waiter's own
    /// I/O stays its own (a Rust waker would poll it inside the waking request).
    fn wake_signal(&self) -> (Wake, LocalBoxFuture<'static, ()>) {
        let mut resolver: Option<js_sys::Function> = None;
        let promise = js_sys::Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
        let wake: Wake = Box::new(move || {
            if let Some(resolve) = resolver {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        });
        let woken = async move {
            let _ = settled_of(&promise).await;
        };
        (wake, Box::pin(woken))
    }
}

impl Host for WorkerHost {
    type Body = Response;
    type RequestBody = ReadableStream;

    async fn fetch(
        &self,
        request: OriginRequest<ReadableStream>,
    ) -> Result<OriginResponse<Response>, OriginError> {
        crate::origin::send(request).await
    }

    async fn collect(&self, body: Response, limit: u64) -> Result<Collected<Response>, OriginError> {
        match read_up_to(body, limit).await {
            Ok(Read::Whole(bytes)) => Ok(Collected::Whole(bytes)),
            Ok(Read::TooLarge(rest)) => Ok(Collected::TooLarge(rest)),
            Err(e) => Err(OriginError::Unreachable(e)),
        }
    }

    async fn read_request_body(&self, body: ReadableStream, limit: u64) -> BodyRead {
        // A Response over the stream reuses the bounded reader: it stops at `limit`.
        let Ok(wrapped) = Response::new_with_opt_readable_stream(Some(&body)) else {
            return BodyRead::Unreadable;
        };
        match read_up_to(wrapped, limit).await {
            Ok(Read::Whole(bytes)) => BodyRead::Whole(bytes),
            Ok(Read::TooLarge(_)) => BodyRead::TooLarge,
            Err(_) => BodyRead::Unreadable,
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Info => worker::console_log!("{message}"),
            LogLevel::Warn => worker::console_warn!("{message}"),
            LogLevel::Error => worker::console_error!("{message}"),
        }
    }

    async fn seal(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        crate::aead::aes_gcm(crate::aead::Direction::Seal, key, nonce, aad, plaintext).await
    }

    async fn open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        crate::aead::aes_gcm(crate::aead::Direction::Open, key, nonce, aad, ciphertext).await
    }
}
