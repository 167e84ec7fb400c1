//! What the cache state machine needs from its host, as traits: the clock, timers, background
//! tasks ([`Runtime`]) and the origin ([`Origin`]). The worker implements them over workerd
//! (`Date.now`, `setTimeout`, `ctx.wait_until`, `fetch`); native tests over tokio and a real
//! HTTP origin.

use std::future::Future;

use futures::future::LocalBoxFuture;
use http::HeaderMap;

/// Time and tasks. Clones share the same host.
pub trait Runtime: Clone + 'static {
    /// Wall-clock milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// Completes after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    /// Runs `task` after the response has been sent (`ctx.wait_until` in workerd).
    fn spawn(&self, task: LocalBoxFuture<'static, ()>);
    /// Like [`Runtime::spawn`], but the task makes no request before the answer has left: a
    /// STALE answer's refresh, whose lock attempt must not go out ahead of the stale copy
    /// (issue 11). workerd starts `wait_until` work at once, so its host first yields to the
    /// event loop; hosts whose spawned tasks wait for the caller anyway keep the default.
    fn spawn_after_answer(&self, task: LocalBoxFuture<'static, ()>) {
        self.spawn(task);
    }
    /// A wake-up another request can give this one: the future completes once the [`Wake`] is
    /// called (from any request of the isolate), or never if it is dropped uncalled. By default
    /// a Rust channel; workerd's host answers a JS promise, so that the woken request resumes in
    /// its own request context (a Rust waker would poll it inside the waking request's).
    fn wake_signal(&self) -> (Wake, LocalBoxFuture<'static, ()>) {
        let (sender, receiver) = futures::channel::oneshot::channel::<()>();
        let wake: Wake = Box::new(move || {
            let _ = sender.send(());
        });
        let woken = async move {
            if receiver.await.is_err() {
                // Dropped uncalled: never completes (the caller also waits on its deadline).
                futures::future::pending::<()>().await;
            }
        };
        (wake, Box::pin(woken))
    }
    /// Random bits for the cache's chance decisions (XFetch's draw, which fills prune an
    /// index): the platform CSPRNG by default, `None` if it fails. A test host may answer a
    /// seeded sequence so that a run can be replayed exactly. Lock tokens never come from here:
    /// they must be unique across isolates whatever the host.
    fn random_u64(&self) -> Option<u64> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).ok()?;
        Some(u64::from_le_bytes(bytes))
    }
}

/// Wakes the request that made it ([`Runtime::wake_signal`]).
pub type Wake = Box<dyn FnOnce()>;

/// Why the origin gave no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginError {
    /// No answer within `ORIGIN_TIMEOUT_MS`.
    Timeout,
    /// Connection refused, reset, DNS failure, a broken body stream.
    Unreachable(String),
    /// A final status outside 200–599 (a leaked 1xx, a 999): not an answer HTTP can relay.
    InvalidStatus(u16),
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginError::Timeout => write!(f, "origin timed out"),
            OriginError::Unreachable(e) => write!(f, "origin unreachable: {e}"),
            OriginError::InvalidStatus(status) => write!(f, "origin answered the invalid status {status}"),
        }
    }
}

/// An origin response whose body has not been read yet.
pub struct OriginResponse<B> {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: B,
}

/// A body read up to a limit.
pub enum Collected<B> {
    /// The whole body, no larger than the limit.
    Whole(Vec<u8>),
    /// The body is larger than the limit: the host's body again (the part already read put
    /// back in front), to be streamed to the client unstored.
    TooLarge(B),
}

/// The origin for one request URL. `fetch` may be called more than once (a background
/// refresh, a waiter that takes over the lock), so implementations keep what they need to
/// rebuild the request. Only body-less methods are fetched through this trait.
pub trait Origin: Clone + 'static {
    type Body: 'static;

    /// Sends the request (GET, or HEAD for a HEAD pass) and answers its head.
    fn fetch(&self, head_only: bool)
        -> impl Future<Output = Result<OriginResponse<Self::Body>, OriginError>>;

    /// Sends a conditional GET carrying `validators` (`If-None-Match`, `If-Modified-Since`) to
    /// revalidate a stored copy: a 304 means the copy is still good.
    fn revalidate(
        &self,
        validators: &HeaderMap,
    ) -> impl Future<Output = Result<OriginResponse<Self::Body>, OriginError>>;

    /// Reads `body` to its end, unless it grows past `limit` bytes.
    fn collect(
        &self,
        body: Self::Body,
        limit: u64,
    ) -> impl Future<Output = Result<Collected<Self::Body>, OriginError>>;
}
