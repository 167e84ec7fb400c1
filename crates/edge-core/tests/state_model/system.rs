//! The system under test: several isolates (`Edge`s, each with its own per-isolate state)
//! sharing one store, a clock read from tokio's (paused on the memory store, so runs are fast
//! and exact; real against Redis), and an origin that numbers every answer and tells the model
//! who it built it for.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_core::{BodyRead, Clock, Collected, Host, LogLevel, OriginError, OriginRequest, OriginResponse};
use edge_core::{Op, Reply, Runtime, Store, StoreError, StoreKind};
use futures::future::LocalBoxFuture;
use http::{HeaderMap, Method};

use super::model::{shared_for, windows, Fetch, Model};
use super::steps::{OriginMode, Res, RESOURCES};

/// Milliseconds since the epoch, read from tokio's clock: virtual when the runtime is paused.
#[derive(Clone)]
pub struct ModelClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl ModelClock {
    /// Must be called inside the runtime.
    pub fn new(base_ms: u64) -> Self {
        ModelClock { base_ms, start: tokio::time::Instant::now() }
    }
}

impl Clock for ModelClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
}

/// Redis made unreachable on demand, wholly or one round trip in `flaky`. A mock, because
/// neither the memory store nor a real Redis can be switched off and on between two steps (or
/// fail one chosen round trip) without restarting processes; a failed round trip fails as a
/// refused connection would, before reaching the store.
#[derive(Clone)]
pub struct SwitchableStore<S> {
    pub inner: S,
    pub down: Rc<Cell<bool>>,
    pub flaky: Rc<Cell<u32>>,
    pub garbage: Rc<Cell<u32>>,
    pub calls: Rc<Cell<u32>>,
    /// Round trips failed so far.
    pub failures: Rc<Cell<u64>>,
}

/// How one round trip goes wrong, if it does.
enum Fault {
    /// Fails before reaching the store.
    Unreachable,
    /// Reaches the store, which runs it; the answer is not the protocol.
    Malformed,
    /// Reaches the store, which runs it; every reply is a Redis error.
    ErrorReplies,
}

impl<S> SwitchableStore<S> {
    fn fault(&self) -> Option<Fault> {
        if self.fails() {
            return Some(Fault::Unreachable);
        }
        let every = self.garbage.get();
        if every == 0 || !self.calls.get().is_multiple_of(every) {
            return None;
        }
        self.failures.set(self.failures.get() + 1);
        Some(if self.failures.get().is_multiple_of(2) { Fault::Malformed } else { Fault::ErrorReplies })
    }

    fn fails(&self) -> bool {
        self.calls.set(self.calls.get().wrapping_add(1));
        let every = self.flaky.get();
        let fails = self.down.get() || (every > 0 && self.calls.get().is_multiple_of(every));
        if fails {
            self.failures.set(self.failures.get() + 1);
        }
        fails
    }
}

impl<S: Store> Store for SwitchableStore<S> {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }
    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        let fault = self.fault();
        if matches!(fault, Some(Fault::Unreachable)) {
            return Err(StoreError::Unreachable("model: redis is down".into()));
        }
        garbled(fault, self.inner.run(ops).await)
    }
    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        let fault = self.fault();
        if matches!(fault, Some(Fault::Unreachable)) {
            return Err(StoreError::Unreachable("model: redis is down".into()));
        }
        garbled(fault, self.inner.atomic(ops).await)
    }
}

/// The store's answer as the fault leaves it: the ops ran either way.
fn garbled(fault: Option<Fault>, answer: Result<Vec<Reply>, StoreError>) -> Result<Vec<Reply>, StoreError> {
    match (fault, answer) {
        (Some(Fault::Malformed), _) => Err(StoreError::Malformed("model: garbage".into())),
        (Some(Fault::ErrorReplies), Ok(replies)) => {
            Ok(replies.iter().map(|_| Reply::Error("WRONGTYPE model: garbage".into())).collect())
        }
        (_, answer) => answer,
    }
}

/// What every isolate's host shares: the model, the origin's mode and delay, the faults.
pub struct Shared {
    pub model: RefCell<Model>,
    pub mode: Cell<OriginMode>,
    pub delay_ms: Cell<u64>,
    pub redis_down: Rc<Cell<bool>>,
    /// When `redis_down` was last switched on.
    pub redis_down_since_ms: Cell<u64>,
    pub redis_flaky: Rc<Cell<u32>>,
    pub redis_garbage: Rc<Cell<u32>>,
    pub redis_failures: Rc<Cell<u64>>,
    /// Origin fetches of shared variants in flight per variant, by fetch number.
    pub in_flight: RefCell<HashMap<String, Vec<u64>>>,
    /// Every origin read in flight, lockable or not (to let background work finish).
    pub reading: Cell<u32>,
    /// Pairs of fetches of one shared variant that were in flight together.
    pub overlaps: RefCell<Vec<(u64, u64)>>,
    pub clock: ModelClock,
    /// The cache's chance decisions (early refresh, index pruning), from a fixed seed: a run is
    /// a function of its steps, so a failure found in CI replays exactly (seed 87 failed about
    /// one replay in 140 while they came from the CSPRNG).
    pub random: Cell<u64>,
    /// How many times each path was written (2xx): its `ETag` generation.
    pub generations: RefCell<HashMap<String, u64>>,
    /// Invalidations the edge logged as failed (a write's is answered anyway, §8.6).
    pub failed_invalidations: Cell<u64>,
}

impl Shared {
    pub fn new(clock: ModelClock, slack_ms: u64) -> Rc<Self> {
        Rc::new(Shared {
            model: RefCell::new(Model::new(slack_ms)),
            mode: Cell::new(OriginMode::Healthy),
            delay_ms: Cell::new(0),
            redis_down: Rc::default(),
            redis_down_since_ms: Cell::new(0),
            redis_flaky: Rc::default(),
            redis_garbage: Rc::default(),
            redis_failures: Rc::default(),
            in_flight: RefCell::default(),
            reading: Cell::new(0),
            overlaps: RefCell::default(),
            clock,
            random: Cell::new(0x9e37_79b9_7f4a_7c15),
            generations: RefCell::default(),
            failed_invalidations: Cell::new(0),
        })
    }

    pub fn fetches_in_flight(&self) -> u32 {
        self.reading.get()
    }
}

#[derive(Clone)]
pub struct ModelHost {
    pub shared: Rc<Shared>,
}

impl Runtime for ModelHost {
    fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }
    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        tokio::task::spawn_local(task);
    }
    fn random_u64(&self) -> Option<u64> {
        // splitmix64: each call one step of a fixed sequence.
        let state = self.shared.random.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.shared.random.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Some(z ^ (z >> 31))
    }
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn path_of(url: &str) -> &str {
    url.split_once("://").map_or("", |(_, rest)| &rest[rest.find('/').unwrap_or(rest.len())..])
}

/// Who the origin was told the client is: 0 anonymous, 1 or 2 from the session data, 9 when
/// the session store could not be read.
fn who_of(headers: &HeaderMap) -> u8 {
    if text(headers, "edge-session-status") == "unavailable" {
        return 9;
    }
    let data = URL_SAFE_NO_PAD.decode(text(headers, "edge-session")).unwrap_or_default();
    let data = String::from_utf8_lossy(&data);
    ["1", "2"].iter().position(|w| data.contains(&format!("\"who\":{w}"))).map_or(0, |i| i as u8 + 1)
}

fn pref_of(headers: &HeaderMap) -> u8 {
    let cookie = text(headers, "cookie");
    ["pref=1", "pref=2"].iter().position(|p| cookie.contains(p)).map_or(0, |i| i as u8 + 1)
}

pub const LANGS: [&str; 2] = ["en", "fr"];

/// The origin's cache headers for each resource, from the model's windows.
fn cache_headers(res: Res) -> Vec<(&'static str, String)> {
    let w = windows(res);
    let mut cc = format!("max-age={}", w.ttl);
    if w.swr > 0 {
        cc.push_str(&format!(", stale-while-revalidate={}", w.swr));
    }
    if w.sie > 0 {
        cc.push_str(&format!(", stale-if-error={}", w.sie));
    }
    let mut headers = match res {
        Res::PubSwr | Res::Me | Res::Lang | Res::Validated => {
            vec![("cache-control", format!("public, {cc}"))]
        }
        Res::PrivSie | Res::Short => vec![("cache-control", cc)],
        Res::NoStore => vec![("cache-control", "no-store".to_string())],
        Res::Private => vec![("cache-control", "private, max-age=60".to_string())],
    };
    let tags = super::model::tags(res);
    if !tags.is_empty() {
        headers.push(("cache-tag", tags.join(" ")));
    }
    match res {
        Res::Me => headers.push(("vary", "Cookie".into())),
        Res::Lang => headers.push(("vary", "Accept-Language".into())),
        _ => {}
    }
    headers
}

fn response(status: u16, pairs: Vec<(&'static str, String)>, body: String) -> OriginResponse<Vec<u8>> {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = value.parse() {
            headers.append(name, value);
        }
    }
    OriginResponse { status, headers, body: body.into_bytes() }
}

impl ModelHost {
    fn answer_by_mode(
        &self,
        ok: OriginResponse<Vec<u8>>,
        body: String,
    ) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        match self.shared.mode.get() {
            OriginMode::Healthy => Ok(ok),
            OriginMode::Errors => Ok(response(503, vec![], body)),
            OriginMode::Down => Err(OriginError::Unreachable("model: origin down".into())),
        }
    }

    /// A cacheable read: numbered, recorded, delayed, answered as the mode says.
    async fn read(&self, res: Res, headers: &HeaderMap) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        let shared = &self.shared;
        let (who, pref) = (who_of(headers), pref_of(headers));
        let lang = LANGS.iter().position(|l| text(headers, "accept-language") == *l).unwrap_or(0) as u8;
        let req_id = text(headers, "x-model-req").parse().unwrap_or(u64::MAX);
        let isolate = text(headers, "x-model-isolate").parse().unwrap_or(u8::MAX);
        // A Redis failure since the request began may have let it past the lock (a failed
        // lookup, lock or poll goes to the origin, §8.3): then it is not subject to it.
        let failures_then = text(headers, "x-model-failures").parse().unwrap_or(u64::MAX);
        let lockable = !shared.redis_down.get()
            && who != 9
            && shared_for(res, who)
            && failures_then == shared.redis_failures.get();
        let variant = match res {
            Res::Me => format!("{}|{who}|{pref}", res.path()),
            Res::Lang => format!("{}|{lang}", res.path()),
            _ => res.path().to_string(),
        };
        // `"g<generation>s<fetch>"`: a revalidation names the copy it holds; it is still good
        // while the resource has not been written since.
        let generation = shared.generations.borrow().get(res.path()).copied().unwrap_or(0);
        let revalidates = (res == Res::Validated).then(|| text(headers, "if-none-match")).and_then(|tag| {
            tag.trim_matches('"').strip_prefix(&format!("g{generation}s"))?.parse::<u64>().ok()
        });
        let serial = {
            let mut model = shared.model.borrow_mut();
            let start_event = model.tick();
            let fetch = Fetch {
                res,
                req_id,
                who,
                isolate,
                pref,
                lang,
                start_event,
                end_ms: None,
                end_event: None,
                lockable,
                confirms: None,
            };
            model.fetches.push(fetch);
            (model.fetches.len() - 1) as u64
        };
        // Every fetch of a shared variant: the lock's rule (§8.3) judges the lockable ones, and
        // degraded mode's one fetch per key per isolate (§8.6) those of one isolate.
        let tracked = who != 9 && shared_for(res, who);
        if tracked {
            let mut in_flight = shared.in_flight.borrow_mut();
            let others = in_flight.entry(variant.clone()).or_default();
            for other in others.iter() {
                shared.overlaps.borrow_mut().push((*other, serial));
            }
            others.push(serial);
        }
        let delay = shared.delay_ms.get();
        shared.reading.set(shared.reading.get() + 1);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        shared.reading.set(shared.reading.get() - 1);
        if let Some(others) = shared.in_flight.borrow_mut().get_mut(&variant) {
            others.retain(|s| *s != serial);
        }
        let now = shared.clock.now_ms();
        let healthy = shared.mode.get() == OriginMode::Healthy;
        let mut model = shared.model.borrow_mut();
        let end_event = model.tick();
        if let Some(fetch) = model.fetches.get_mut(serial as usize) {
            fetch.end_ms = Some(now);
            fetch.end_event = Some(end_event);
            fetch.confirms = revalidates.filter(|_| healthy);
        }
        drop(model);
        let mut headers = cache_headers(res);
        let body = format!("serial={serial};res={res:?};who={who};pref={pref};lang={lang}");
        if let Some(copy) = revalidates {
            headers.push(("etag", format!("\"g{generation}s{copy}\"")));
            return self.answer_by_mode(response(304, headers, String::new()), body);
        }
        if res == Res::Validated {
            headers.push(("etag", format!("\"g{generation}s{serial}\"")));
        }
        self.answer_by_mode(response(200, headers, body.clone()), body)
    }
}

impl Host for ModelHost {
    type Body = Vec<u8>;
    type RequestBody = Vec<u8>;

    async fn fetch(&self, request: OriginRequest<Vec<u8>>) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        let path = path_of(&request.url).to_string();
        if path == "/login" {
            let who = text(&request.headers, "x-model-login");
            let set = vec![
                ("edge-session-set", format!("{{\"who\":{who}}}")),
                ("cache-control", "no-store".into()),
            ];
            return Ok(response(200, set, "in".into()));
        }
        if !matches!(request.method, Method::GET | Method::HEAD) {
            let mut pairs = vec![];
            let tag = text(&request.headers, "x-model-tag");
            if !tag.is_empty() {
                pairs.push(("edge-purge-tags", tag));
            }
            if self.shared.mode.get() == OriginMode::Healthy {
                *self.shared.generations.borrow_mut().entry(path).or_default() += 1;
            }
            return self.answer_by_mode(response(200, pairs, "saved".into()), "failed".into());
        }
        match RESOURCES.iter().find(|r| r.path() == path) {
            Some(res) => self.read(*res, &request.headers).await,
            None => Ok(response(404, vec![], "no".into())),
        }
    }

    async fn collect(&self, body: Vec<u8>, limit: u64) -> Result<Collected<Vec<u8>>, OriginError> {
        Ok(if body.len() as u64 > limit { Collected::TooLarge(body) } else { Collected::Whole(body) })
    }

    async fn read_request_body(&self, body: Vec<u8>, limit: u64) -> BodyRead {
        if body.len() as u64 > limit {
            BodyRead::TooLarge
        } else {
            BodyRead::Whole(body)
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        if level == LogLevel::Error && message.contains("invalidation after a write failed") {
            self.shared.failed_invalidations.set(self.shared.failed_invalidations.get() + 1);
        }
    }
}
