//! The core's [`Runtime`] over workerd: `Date.now()`, timers, and `ctx.wait_until` for work
//! that continues after the response (stores, background refreshes, counters).

use std::rc::Rc;
use std::time::Duration;

use edge_core::runtime::Runtime;
use futures::future::LocalBoxFuture;
use worker::Context;

#[derive(Clone)]
pub struct WorkerRuntime {
    ctx: Rc<Context>,
}

impl WorkerRuntime {
    pub fn new(ctx: Context) -> Self {
        WorkerRuntime { ctx: Rc::new(ctx) }
    }
}

impl Runtime for WorkerRuntime {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now().max(0.0) as u64
    }

    async fn sleep(&self, ms: u64) {
        worker::Delay::from(Duration::from_millis(ms)).await;
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        self.ctx.wait_until(task);
    }
}
