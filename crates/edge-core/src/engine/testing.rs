//! Unit-test support for the engine's phases: a runtime whose clock only moves when a timer
//! sleeps, the memory store on that clock, and an in-process origin that answers from a script
//! and counts fetches. The native suites in `tests/` drive whole requests; these let each
//! phase be tested alone.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::LocalBoxFuture;
use futures::task::LocalSpawnExt;
use http::{HeaderMap, Method};

use super::{Cache, CacheRequest, CacheSettings, IsolateCache};
use crate::clock::{Clock, ManualClock};
use crate::entry::CacheEntry;
use crate::key::CacheKeys;
use crate::keyspace::Namespace;
use crate::memory_store::MemoryStore;
use crate::policy::Freshness;
use crate::rules::CacheRules;
use crate::runtime::{Collected, Origin, OriginError, OriginResponse, Runtime};
use crate::stats::Stats;
use crate::store::{Op, Store};

/// Sleeping advances the clock at once (and yields, so that loops of sleeps stay
/// cooperative); spawned tasks run on the harness's local pool, while the test's own future
/// waits on something or at [`Harness::drain`].
#[derive(Clone)]
pub(crate) struct ManualRuntime {
    pub clock: ManualClock,
    spawner: LocalSpawner,
}

impl Runtime for ManualRuntime {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
    async fn sleep(&self, ms: u64) {
        self.clock.advance(ms);
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
    }
    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        // Spawning fails only on a pool that is gone, and then nothing would run it anyway.
        let _ = self.spawner.spawn_local(task);
    }
}

pub(crate) struct Harness {
    pool: RefCell<LocalPool>,
    pub rt: ManualRuntime,
    pub store: MemoryStore<ManualClock>,
    pub settings: Rc<CacheSettings>,
    pub isolate: Rc<IsolateCache>,
    pub stats: Stats,
}

impl Harness {
    pub fn new() -> Self {
        let clock = ManualClock::at(1_700_000_000_000);
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        Harness {
            pool: RefCell::new(pool),
            rt: ManualRuntime { clock: clock.clone(), spawner },
            store: MemoryStore::with_clock(clock),
            settings: Rc::new(CacheSettings {
                namespace: Namespace::new("t"),
                rules: CacheRules::default(),
                max_bytes: 1_024,
                lock_wait_ms: 5_000,
                lock_ttl_ms: 10_000,
                heuristic_percent: 0,
            }),
            isolate: Rc::default(),
            stats: Stats::default(),
        }
    }

    pub fn cache(&self) -> Cache<MemoryStore<ManualClock>, ManualRuntime> {
        Cache::new(
            self.store.clone(),
            self.rt.clone(),
            self.settings.clone(),
            self.isolate.clone(),
            self.stats.clone(),
        )
    }

    pub fn get(&self, url: &str) -> CacheRequest {
        CacheRequest {
            method: Method::GET,
            uri: url.parse().unwrap(),
            headers: HeaderMap::new(),
            session_id: None,
            session_unconfirmed: false,
            rule: Default::default(),
        }
    }

    pub fn run<F: Future>(&self, future: F) -> F::Output {
        self.pool.borrow_mut().run_until(future)
    }

    /// Runs the background work spawned so far (and whatever it spawns).
    pub fn drain(&self) {
        self.pool.borrow_mut().run_until_stalled();
    }

    /// Writes `entry` as the variant's stale copy, with a fresh marker if `fresh`.
    pub fn store_entry(&self, keys: &CacheKeys, entry: &CacheEntry, fresh: bool) {
        let mut ops = vec![Op::Set {
            key: keys.stale.clone(),
            value: STANDARD.encode(entry.encode()),
            ttl_ms: None,
            nx: false,
        }];
        if fresh {
            ops.push(Op::Set { key: keys.fresh.clone(), value: "1".into(), ttl_ms: None, nx: false });
        }
        self.run(self.store.run(&ops)).unwrap();
    }
}

/// A 60 s entry with a body, stored at `stored_at_ms`.
pub(crate) fn entry(status: u16, body: &[u8], stored_at_ms: u64) -> CacheEntry {
    CacheEntry {
        status,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        body: body.to_vec(),
        stored_at_ms,
        initial_age_secs: 0,
        freshness: Freshness { ttl: 60, swr: 0, sie: 0 },
        tags: Vec::new(),
        vary: Vec::new(),
    }
}

/// `entry` as the store holds it.
pub(crate) fn stored(entry: &CacheEntry) -> Vec<u8> {
    STANDARD.encode(entry.encode()).into_bytes()
}

/// One scripted origin answer.
pub(crate) type Scripted = Result<(u16, Vec<(&'static str, &'static str)>, Vec<u8>), OriginError>;

/// Answers fetches from a script, in order, and counts them.
#[derive(Clone, Default)]
pub(crate) struct ScriptedOrigin {
    script: Rc<RefCell<VecDeque<Scripted>>>,
    pub fetches: Rc<Cell<u32>>,
    /// The validators of the last revalidation.
    pub validators: Rc<RefCell<Option<HeaderMap>>>,
}

impl ScriptedOrigin {
    pub fn answering(script: Vec<Scripted>) -> Self {
        ScriptedOrigin {
            script: Rc::new(RefCell::new(script.into())),
            fetches: Rc::default(),
            validators: Rc::default(),
        }
    }
}

impl Origin for ScriptedOrigin {
    type Body = Vec<u8>;

    async fn fetch(&self, _head_only: bool) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        self.fetches.set(self.fetches.get() + 1);
        let next = self.script.borrow_mut().pop_front();
        let (status, headers, body) =
            next.unwrap_or_else(|| Err(OriginError::Unreachable("script ended".into())))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(http::HeaderName::from_static(name), http::HeaderValue::from_static(value));
        }
        Ok(OriginResponse { status, headers: map, body })
    }

    async fn revalidate(&self, validators: &HeaderMap) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        *self.validators.borrow_mut() = Some(validators.clone());
        self.fetch(false).await
    }

    async fn collect(&self, body: Vec<u8>, limit: u64) -> Result<Collected<Vec<u8>>, OriginError> {
        Ok(if body.len() as u64 > limit { Collected::TooLarge(body) } else { Collected::Whole(body) })
    }
}
