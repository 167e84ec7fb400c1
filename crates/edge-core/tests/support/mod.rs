//! Test doubles for the state machine: a runtime over tokio with a clock the test can push
//! forward, a store wrapper that counts round trips (or fails on demand), and an in-process
//! origin that counts fetches. The end-to-end suite (tests/*.test.mjs) uses a real HTTP origin
//! and real Redis; these exist to drive the state machine's timing natively.

#![allow(dead_code)]

pub mod host;
pub mod site;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use edge_core::CacheRules;
use edge_core::Clock;
use edge_core::MemoryStore;
use edge_core::Stats;
use edge_core::{Cache, CacheRequest, CacheSettings, IsolateCache, Served, ServedBody};
use edge_core::{Collected, Origin, OriginError, OriginResponse, Runtime};
use edge_core::{Op, Reply, Store, StoreError, StoreKind};
use futures::future::LocalBoxFuture;
use http::{HeaderMap, Method};

/// Real elapsed time plus a jump the test controls.
#[derive(Clone)]
pub struct TestClock {
    start: std::time::Instant,
    base_ms: u64,
    jump_ms: Rc<Cell<u64>>,
}

impl TestClock {
    pub fn new() -> Self {
        TestClock {
            start: std::time::Instant::now(),
            base_ms: 1_700_000_000_000,
            jump_ms: Rc::new(Cell::new(0)),
        }
    }
    pub fn advance(&self, ms: u64) {
        self.jump_ms.set(self.jump_ms.get() + ms);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.jump_ms.get() + self.start.elapsed().as_millis() as u64
    }
}

#[derive(Clone)]
pub struct TestRuntime {
    pub clock: TestClock,
}

impl Runtime for TestRuntime {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        TIMERS_FIRED.with(|fired| fired.set(fired.get() + 1));
    }
    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        tokio::task::spawn_local(task);
    }
}

thread_local! {
    /// Timers that ran to the end on this thread (a timer dropped early does not count): what a
    /// wake-up per timer would cost in workerd.
    pub static TIMERS_FIRED: Cell<u64> = const { Cell::new(0) };
}

/// A store wrapper that counts round trips and can be switched to fail.
#[derive(Clone)]
pub struct CountingStore<S> {
    pub inner: S,
    pub round_trips: Rc<Cell<u32>>,
    pub failing: Rc<Cell<bool>>,
    pub log: Rc<RefCell<Vec<Vec<Op>>>>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        CountingStore { inner, round_trips: Rc::default(), failing: Rc::default(), log: Rc::default() }
    }
}

impl<S: Store> Store for CountingStore<S> {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }
    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        self.round_trips.set(self.round_trips.get() + 1);
        self.log.borrow_mut().push(ops.to_vec());
        if self.failing.get() {
            return Err(StoreError::Timeout);
        }
        self.inner.run(ops).await
    }
    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        self.run(ops).await
    }
}

/// What the fake origin answers.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub delay_ms: u64,
    pub fail: Option<OriginError>,
}

impl Answer {
    pub fn ok(cache_control: &str, body: &str) -> Self {
        Answer {
            status: 200,
            headers: vec![
                ("cache-control", cache_control.to_string()),
                ("content-type", "text/plain".into()),
            ],
            body: body.as_bytes().to_vec(),
            delay_ms: 0,
            fail: None,
        }
    }
    pub fn delayed(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

#[derive(Clone)]
pub struct TestOrigin {
    pub answer: Rc<RefCell<Answer>>,
    pub fetches: Rc<Cell<u32>>,
    /// Each fetch's body gets the fetch number appended, so tests can tell answers apart.
    pub numbered: bool,
    /// Conditional requests answered 304.
    pub revalidations: Rc<Cell<u32>>,
}

impl TestOrigin {
    pub fn new(answer: Answer) -> Self {
        TestOrigin {
            answer: Rc::new(RefCell::new(answer)),
            fetches: Rc::default(),
            numbered: true,
            revalidations: Rc::default(),
        }
    }
    pub fn set(&self, answer: Answer) {
        *self.answer.borrow_mut() = answer;
    }
    pub fn count(&self) -> u32 {
        self.fetches.get()
    }
}

impl Origin for TestOrigin {
    type Body = Vec<u8>;

    async fn fetch(&self, head_only: bool) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        self.fetches.set(self.fetches.get() + 1);
        let n = self.fetches.get();
        let answer = self.answer.borrow().clone();
        if answer.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(answer.delay_ms)).await;
        }
        if let Some(e) = answer.fail {
            return Err(e);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &answer.headers {
            headers.append(*name, value.parse().expect("test header"));
        }
        let mut body = answer.body.clone();
        if self.numbered {
            body.extend_from_slice(format!("#{n}").as_bytes());
        }
        if head_only {
            body.clear();
        }
        Ok(OriginResponse { status: answer.status, headers, body })
    }

    /// An origin that honours `If-None-Match`: a 304 (no body, the answer's headers) when the
    /// validator matches the current answer's `ETag`, else the full answer.
    async fn revalidate(&self, validators: &HeaderMap) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        let answer = self.answer.borrow().clone();
        let etag = answer.headers.iter().find(|(name, _)| *name == "etag").map(|(_, value)| value.clone());
        let sent = validators.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_string);
        if answer.fail.is_none() && etag.is_some() && etag == sent {
            self.fetches.set(self.fetches.get() + 1);
            self.revalidations.set(self.revalidations.get() + 1);
            let mut headers = HeaderMap::new();
            for (name, value) in &answer.headers {
                headers.append(*name, value.parse().expect("test header"));
            }
            return Ok(OriginResponse { status: 304, headers, body: Vec::new() });
        }
        self.fetch(false).await
    }

    async fn collect(&self, body: Vec<u8>, limit: u64) -> Result<Collected<Vec<u8>>, OriginError> {
        if body.len() as u64 > limit {
            Ok(Collected::TooLarge(body))
        } else {
            Ok(Collected::Whole(body))
        }
    }
}

pub type TestCache = Cache<CountingStore<MemoryStore<TestClock>>, TestRuntime>;

pub struct World {
    pub clock: TestClock,
    pub store: CountingStore<MemoryStore<TestClock>>,
    pub cache: TestCache,
    pub stats: Stats,
}

pub fn settings(lock_wait_ms: u64, rules: &str) -> CacheSettings {
    CacheSettings {
        namespace: edge_core::Namespace::new("t"),
        rules: CacheRules::parse(rules).expect("rules"),
        max_bytes: 1_048_576,
        lock_wait_ms,
        lock_ttl_ms: 5_000,
        heuristic_percent: 0,
    }
}

pub fn world(settings: CacheSettings) -> World {
    let clock = TestClock::new();
    let store = CountingStore::new(MemoryStore::with_clock(clock.clone()));
    let stats = Stats::default();
    let cache = Cache::new(
        store.clone(),
        TestRuntime { clock: clock.clone() },
        Rc::new(settings),
        Rc::new(IsolateCache::default()),
        stats.clone(),
    );
    World { clock, store, cache, stats }
}

pub fn get(url: &str) -> CacheRequest {
    CacheRequest {
        method: Method::GET,
        uri: url.parse().expect("url"),
        headers: HeaderMap::new(),
        session_id: None,
        session_unconfirmed: false,
        rule: Default::default(),
    }
}

/// Looks up and serves one request.
pub async fn request(cache: &TestCache, req: &CacheRequest, origin: &TestOrigin) -> Served<Vec<u8>> {
    let lookup = cache.lookup(req, &[]).await;
    cache.serve(req, lookup, origin.clone()).await
}

pub fn body(served: &Served<Vec<u8>>) -> Vec<u8> {
    match &served.body {
        ServedBody::Bytes(b) | ServedBody::Stream(b) | ServedBody::Upgraded(b) => b.clone(),
        ServedBody::Empty => Vec::new(),
    }
}

pub fn header(served: &Served<Vec<u8>>, name: &str) -> String {
    served.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Lets spawned background work (stores, refreshes) run.
pub async fn settle() {
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

impl TestClock {
    /// The clock's current reading, for tests that pass times to the core.
    pub fn now_ms_for_tests(&self) -> u64 {
        self.now_ms()
    }
}

/// Runs `f` on a current-thread runtime inside a LocalSet, so that `Runtime::spawn` (spawn_local)
/// works as `wait_until` does in workerd.
pub fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    tokio::task::LocalSet::new().block_on(&rt, f)
}
