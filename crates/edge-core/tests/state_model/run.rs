//! Runs a sequence of steps through `Edge::handle` on every isolate, checks each response
//! against the model as it arrives, and shrinks a failing sequence to a minimal one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use edge_core::{Clock, Config, Edge, EdgeRequest, MemoryStore, Served, ServedBody, Store, UpstashStore};
use http::{HeaderMap, Method};

use super::model::{in_l1, Fetch, Invalidation, Observed, Violation};
use super::steps::{Req, Step, Target};
use super::system::{ModelClock, ModelHost, Shared, SwitchableStore, LANGS};

const SECRET: &str = "a-model-session-secret-of-32-bytes-or-more";
const ADMIN: &str = "model-admin-token";
const SITE: &str = "https://shop.example";

/// Where the isolates' shared store lives.
#[derive(Clone)]
pub enum Backend {
    /// The memory store on tokio's paused clock: virtual time, exact windows.
    Memory,
    /// Real Redis through the gateway, in real time; each run gets its own namespace.
    Redis { url: String, token: String },
}

thread_local! {
    static PANICS: Cell<u32> = const { Cell::new(0) };
}

/// Counts panics on this thread, including those in background tasks that tokio would
/// otherwise swallow.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

struct System<S> {
    isolates: Vec<Edge<SwitchableStore<S>>>,
    host: ModelHost,
    shared: Rc<Shared>,
    /// The session cookie of who = 1 and 2.
    cookies: Vec<String>,
    next_req: Cell<u64>,
    /// Each request's `Cache-Status` detail, to excuse lock bypasses the docs allow.
    details: RefCell<HashMap<u64, String>>,
    /// Extra wait for background stores after the origin went quiet (round trips to Redis).
    settle_ms: u64,
    /// Real Redis: a round trip may time out on a busy machine, unseen by the switch.
    real_redis: bool,
}

/// The isolates' configuration: the L1 off (`CACHE_L1_BYTES=0`: the strict promises), or on
/// with its default capacity and the given `CACHE_L1_TTL_MS` (early refresh at its default).
fn config(namespace: &str, l1_ttl_ms: Option<u64>) -> Rc<Config> {
    let l1 = match l1_ttl_ms {
        Some(ttl) => ("CACHE_L1_TTL_MS", ttl.to_string()),
        None => ("CACHE_L1_BYTES", "0".to_string()),
    };
    let vars = [
        ("SESSION_SECRET", SECRET.to_string()),
        ("ADMIN_TOKEN", ADMIN.to_string()),
        ("CACHE_NAMESPACE", namespace.to_string()),
        (l1.0, l1.1),
    ];
    let config = Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()));
    Rc::new(config.expect("the model's configuration is valid"))
}

fn header(served: &Served<Vec<u8>>, name: &str) -> String {
    served.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn body(served: &Served<Vec<u8>>) -> String {
    match &served.body {
        ServedBody::Bytes(b) | ServedBody::Stream(b) | ServedBody::Upgraded(b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        ServedBody::Empty => String::new(),
    }
}

fn request(
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<Vec<u8>>,
) -> EdgeRequest<Vec<u8>> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, value.parse().expect("a model header"));
    }
    EdgeRequest { method, url: format!("{SITE}{path}"), headers: map, body }
}

impl<S: Store + Clone + 'static> System<S> {
    async fn new(
        store: S,
        isolates: u8,
        namespace: &str,
        shared: Rc<Shared>,
        settle_ms: u64,
        setup: Setup,
    ) -> Self {
        let store = SwitchableStore {
            inner: store,
            down: shared.redis_down.clone(),
            flaky: shared.redis_flaky.clone(),
            garbage: shared.redis_garbage.clone(),
            calls: Rc::default(),
            failures: shared.redis_failures.clone(),
        };
        let config = config(namespace, setup.l1_ttl_ms);
        shared.model.borrow_mut().l1_ttl_ms = setup.l1_ttl_ms;
        let isolates = (0..isolates).map(|_| Edge::new(config.clone(), store.clone())).collect();
        let host = ModelHost { shared: shared.clone() };
        let mut system = System {
            isolates,
            host,
            shared,
            cookies: Vec::new(),
            next_req: Cell::new(0),
            details: RefCell::default(),
            settle_ms,
            real_redis: setup.real_redis,
        };
        for who in 1..=2 {
            let login = [("x-model-login", who.to_string())];
            let served =
                system.isolates[0].handle(&system.host, request(Method::GET, "/login", &login, None)).await;
            let cookie = header(&served, "set-cookie").split(';').next().unwrap_or("").to_string();
            assert!(cookie.contains('='), "login {who} set no cookie: {}", served.status);
            system.cookies.push(cookie);
        }
        system
    }

    fn edge(&self, isolate: u8) -> &Edge<SwitchableStore<S>> {
        &self.isolates[isolate as usize % self.isolates.len()]
    }

    /// Waits until no origin fetch is in flight and background stores have landed.
    async fn settle(&self) {
        for _ in 0..10_000 {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            if self.shared.fetches_in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if self.settle_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.settle_ms)).await;
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn client_headers(&self, req: &Req, req_id: u64) -> Vec<(&'static str, String)> {
        let mut cookie = Vec::new();
        if req.who > 0 {
            cookie.push(self.cookies[req.who as usize - 1].clone());
        }
        if req.pref > 0 {
            cookie.push(format!("pref={}", req.pref));
        }
        let mut headers = vec![
            ("x-model-req", req_id.to_string()),
            ("x-model-isolate", (req.isolate % self.isolates.len() as u8).to_string()),
            ("x-model-failures", self.shared.redis_failures.get().to_string()),
            ("accept-language", LANGS[req.lang as usize % LANGS.len()].to_string()),
        ];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.join("; ")));
        }
        headers
    }

    async fn requests(&self, reqs: &[Req], delay_ms: u64, gap_ms: u64) -> Result<(), Violation> {
        self.shared.delay_ms.set(delay_ms);
        let answers = self.send(reqs, gap_ms).await;
        self.settle().await;
        self.shared.delay_ms.set(0);
        self.judge(answers)
    }

    /// The requests, request `i` starting `i * gap_ms` after the first; their answers.
    async fn send(&self, reqs: &[Req], gap_ms: u64) -> Vec<Answered> {
        futures::future::join_all(reqs.iter().enumerate().map(|(i, req)| async move {
            if i > 0 && gap_ms > 0 {
                tokio::time::sleep(Duration::from_millis(gap_ms * i as u64)).await;
            }
            let req_id = self.next_req.get();
            self.next_req.set(req_id + 1);
            let start_event = self.shared.model.borrow_mut().tick();
            let start_ms = self.shared.clock.now_ms();
            let failures = self.shared.redis_failures.get();
            let headers = self.client_headers(req, req_id);
            let get = request(Method::GET, req.res.path(), &headers, None);
            let served = self.edge(req.isolate).handle(&self.host, get).await;
            let end_event = self.shared.model.borrow_mut().tick();
            let failed = self.real_redis
                || self.shared.redis_down.get()
                || self.shared.redis_failures.get() != failures;
            ((*req, req_id, start_event, end_event, start_ms, failed), served)
        }))
        .await
    }

    /// Checks every answer against the model, then the one-fetch rule.
    fn judge(&self, answers: Vec<Answered>) -> Result<(), Violation> {
        for ((req, req_id, start_event, end_event, start_ms, redis_failed), served) in answers {
            let status = header(&served, "cache-status");
            let detail = status.split("detail=").nth(1).unwrap_or("").to_string();
            if std::env::var("MODEL_TRACE").is_ok() {
                eprintln!("req {req_id} {req:?}: {} {status}", served.status);
            }
            self.details.borrow_mut().insert(req_id, detail.clone());
            let text = body(&served);
            let serial = text.strip_prefix("serial=").and_then(|rest| rest.split(';').next()?.parse().ok());
            let redis_down = self.shared.redis_down.get();
            let observed = Observed {
                req,
                req_id,
                start_event,
                end_event,
                start_ms,
                status: served.status,
                phase: served.phase,
                detail,
                serial,
                redis_down,
                redis_down_since_ms: redis_down.then(|| self.shared.redis_down_since_ms.get()),
                redis_failed,
                origin_healthy: self.shared.mode.get() == super::steps::OriginMode::Healthy,
            };
            self.shared.model.borrow().check(&observed)?;
        }
        self.check_overlaps()
    }

    /// §8.3: two lockable fetches of one variant in flight together, unless a request behind
    /// them was let past the lock as the docs allow (hit-for-pass, a lock wait that ran out,
    /// Redis failing: a timeout against real Redis on a busy machine, not only the switch).
    /// §8.6: whatever Redis does, two fetches of one shared variant from one isolate for
    /// anonymous requests, unless hit-for-pass or a lock wait that ran out let one past
    /// (`Vary: Cookie` variants and requests with a session go to the origin without Redis,
    /// one per request, §4.17).
    fn check_overlaps(&self) -> Result<(), Violation> {
        let overlaps = std::mem::take(&mut *self.shared.overlaps.borrow_mut());
        let model = self.shared.model.borrow();
        let details = self.details.borrow();
        let detail = |f: &Fetch| details.get(&f.req_id).cloned().unwrap_or_default();
        for (a, b) in overlaps {
            let (fa, fb) = (&model.fetches[a as usize], &model.fetches[b as usize]);
            let fleet = fa.lockable && fb.lockable;
            let anonymous = fa.who == 0 && fb.who == 0;
            let isolate = fa.isolate == fb.isolate && anonymous && in_l1(fa) && in_l1(fb);
            let allowed: &[&str] = match (fleet, isolate) {
                (true, false) => &["hit-for-pass", "lock-timeout", "redis-unavailable"],
                (_, true) => &["hit-for-pass", "lock-timeout"],
                (false, false) => continue,
            };
            if [fa, fb].iter().any(|f| allowed.contains(&detail(f).as_str())) {
                continue;
            }
            let (kind, rule) = if isolate && !fleet {
                ("two-fetches-in-one-isolate", "from one isolate")
            } else {
                ("two-fetches", "")
            };
            return Err(Violation {
                kind,
                message: format!(
                    "fetches #{a} {fa:?} and #{b} {fb:?} of one variant were in flight together {rule}\
                     (their requests' details: {:?}, {:?})",
                    detail(fa),
                    detail(fb)
                ),
            });
        }
        Ok(())
    }

    /// Sends a purge and records it in the model once it completed (answered 2xx).
    async fn purge(&self, isolate: u8, target: &Target, soft: bool) {
        let what = match target {
            Target::Tag(t) => format!("\"tags\":[\"{t}\"]"),
            Target::Url(res) => format!("\"urls\":[\"{SITE}{}\"]", res.path()),
            Target::Prefix(p) => format!("\"prefix\":\"{p}\""),
            Target::Everything => "\"everything\":true".to_string(),
        };
        let body = format!("{{{what},\"soft\":{soft}}}").into_bytes();
        let auth = [("authorization", format!("Bearer {ADMIN}"))];
        let started = self.shared.model.borrow_mut().tick();
        let purge = request(Method::POST, "/__edge/purge", &auth, Some(body));
        let served = self.edge(isolate).handle(&self.host, purge);
        self.record(isolate, target.clone(), vec![], soft, served, started).await;
    }

    async fn record(
        &self,
        isolate: u8,
        target: Target,
        tags: Vec<&'static str>,
        soft: bool,
        served: impl std::future::Future<Output = Served<Vec<u8>>>,
        started_event: u64,
    ) {
        let failures = self.shared.failed_invalidations.get();
        let served = served.await;
        // A write whose invalidation failed is answered anyway (§8.6, a known gap): not completed.
        let failed = self.shared.failed_invalidations.get() != failures;
        let ok = (200..300).contains(&served.status) && !self.shared.redis_down.get() && !failed;
        let completed_event = self.shared.model.borrow_mut().tick();
        if ok {
            let completed_ms = self.shared.clock.now_ms();
            let inv =
                Invalidation { target, tags, soft, isolate, started_event, completed_event, completed_ms };
            self.shared.model.borrow_mut().invalidations.push(inv);
        }
    }

    async fn step(&self, step: &Step) -> Result<(), Violation> {
        match step {
            Step::Requests { reqs, delay_ms } => return self.requests(reqs, *delay_ms, 0).await,
            Step::Staggered { reqs, delay_ms, gap_ms } => {
                return self.requests(reqs, *delay_ms, *gap_ms).await
            }
            Step::Advance(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Step::Write { isolate, res, tag } => {
                let mut headers = vec![];
                if let Some(tag) = tag {
                    headers.push(("x-model-tag", tag.to_string()));
                }
                let started = self.shared.model.borrow_mut().tick();
                let write = request(Method::POST, res.path(), &headers, Some(b"x".to_vec()));
                let served = self.edge(*isolate).handle(&self.host, write);
                let tags = tag.iter().copied().collect();
                self.record(*isolate, Target::Url(*res), tags, false, served, started).await;
                self.settle().await;
            }
            Step::Purge { isolate, target, soft } => {
                self.purge(*isolate, target, *soft).await;
                self.settle().await;
            }
            Step::PurgeMidway { reqs, delay_ms, after_ms, isolate, target, soft } => {
                self.shared.delay_ms.set(*delay_ms);
                let purge = async {
                    tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                    self.purge(*isolate, target, *soft).await;
                };
                let (answers, ()) = futures::future::join(self.send(reqs, 0), purge).await;
                self.settle().await;
                self.shared.delay_ms.set(0);
                return self.judge(answers);
            }
            Step::RedisDown(down) => {
                if *down && !self.shared.redis_down.get() {
                    self.shared.redis_down_since_ms.set(self.shared.clock.now_ms());
                }
                self.shared.redis_down.set(*down);
            }
            Step::RedisFlaky(every) => self.shared.redis_flaky.set(*every),
            Step::RedisGarbage(every) => self.shared.redis_garbage.set(*every),
            Step::Origin(mode) => self.shared.mode.set(*mode),
        }
        Ok(())
    }
}

/// One answered request: what it was, its id, start and end events, start time, whether Redis
/// failed meanwhile; the answer.
type Answered = ((Req, u64, u64, u64, u64, bool), Served<Vec<u8>>);

/// How the isolates are set up for a run.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// `CACHE_L1_TTL_MS` with the L1 on; `None`: `CACHE_L1_BYTES=0`.
    pub l1_ttl_ms: Option<u64>,
    pub real_redis: bool,
}

/// The first violation of a run, with the index of the step that showed it.
pub type Failure = (usize, Violation);

static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn run_on<S: Store + Clone + 'static>(
    steps: &[Step],
    store: S,
    shared: Rc<Shared>,
    ns: &str,
    settle_ms: u64,
    setup: Setup,
) -> Result<(), Failure> {
    let system = System::new(store, 2, ns, shared, settle_ms, setup).await;
    for (i, step) in steps.iter().enumerate() {
        let before = PANICS.with(Cell::get);
        let outcome = tokio::time::timeout(Duration::from_secs(120), system.step(step)).await;
        let outcome = outcome.unwrap_or_else(|_| {
            Err(Violation { kind: "hang", message: format!("step {i} did not finish in 120 s") })
        });
        if PANICS.with(Cell::get) != before {
            return Err((i, Violation { kind: "panic", message: format!("a panic during step {i}") }));
        }
        outcome.map_err(|v| (i, v))?;
    }
    Ok(())
}

/// Runs `steps` on a fresh system over `backend`, the L1 on with this `CACHE_L1_TTL_MS` or off.
pub fn run(steps: &[Step], backend: &Backend, l1_ttl_ms: Option<u64>) -> Result<(), Failure> {
    let setup = Setup { l1_ttl_ms, real_redis: matches!(backend, Backend::Redis { .. }) };
    count_panics();
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ns = format!("model{n}");
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if matches!(backend, Backend::Memory) {
        builder.start_paused(true);
    }
    let rt = builder.build().expect("a tokio runtime");
    tokio::task::LocalSet::new().block_on(&rt, async {
        match backend {
            Backend::Memory => {
                let clock = ModelClock::new(1_700_000_000_000);
                let shared = Shared::new(clock.clone(), 0);
                run_on(steps, MemoryStore::with_clock(clock), shared, &ns, 0, setup).await
            }
            Backend::Redis { url, token } => {
                let epoch = edge_core::SystemClock.now_ms();
                let shared = Shared::new(ModelClock::new(epoch), 300);
                let store = UpstashStore::new(url, token, Duration::from_secs(2));
                run_on(steps, store, shared, &ns, 60, setup).await
            }
        }
    })
}

/// Drops steps (halves, then quarters, ... then single steps) and requests inside steps while
/// the run still fails the same guarantee; answers the smallest failing sequence found.
pub fn shrink(
    steps: &[Step],
    failure: &Failure,
    backend: &Backend,
    l1_ttl_ms: Option<u64>,
    budget: usize,
) -> (Vec<Step>, Failure) {
    let mut best = steps[..=failure.0.min(steps.len() - 1)].to_vec();
    let mut best_failure = failure.clone();
    let mut tries = 0;
    let mut attempt = |candidate: &[Step], best_failure: &mut Failure| -> bool {
        tries += 1;
        if tries > budget {
            return false;
        }
        match run(candidate, backend, l1_ttl_ms) {
            Err(f) if f.1.kind == failure.1.kind => {
                *best_failure = f;
                true
            }
            _ => false,
        }
    };
    let mut chunk = best.len().div_ceil(2);
    while chunk >= 1 {
        let mut i = 0;
        let mut progressed = false;
        while i < best.len() {
            let mut candidate = best.clone();
            candidate.drain(i..(i + chunk).min(best.len()));
            if !candidate.is_empty() && attempt(&candidate, &mut best_failure) {
                best = candidate;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if !progressed {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2).min(chunk - 1);
        }
    }
    for i in 0..best.len() {
        let mut j = 0;
        while let Some(fewer) = without_request(&best[i], j) {
            let mut candidate = best.clone();
            candidate[i] = fewer;
            if attempt(&candidate, &mut best_failure) {
                best = candidate;
            } else {
                j += 1;
            }
        }
    }
    (best, best_failure)
}

/// `step` without its `j`th request, if it is a burst of more than one and has one.
fn without_request(step: &Step, j: usize) -> Option<Step> {
    let drop = |reqs: &Vec<Req>| {
        (reqs.len() > 1 && j < reqs.len()).then(|| {
            let mut fewer = reqs.clone();
            fewer.remove(j);
            fewer
        })
    };
    match step {
        Step::Requests { reqs, delay_ms } => Some(Step::Requests { reqs: drop(reqs)?, delay_ms: *delay_ms }),
        Step::Staggered { reqs, delay_ms, gap_ms } => {
            Some(Step::Staggered { reqs: drop(reqs)?, delay_ms: *delay_ms, gap_ms: *gap_ms })
        }
        Step::PurgeMidway { reqs, delay_ms, after_ms, isolate, target, soft } => Some(Step::PurgeMidway {
            reqs: drop(reqs)?,
            delay_ms: *delay_ms,
            after_ms: *after_ms,
            isolate: *isolate,
            target: target.clone(),
            soft: *soft,
        }),
        _ => None,
    }
}
