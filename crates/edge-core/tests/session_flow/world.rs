//! The session flow's test world: a store, a clock, a browser's cookie jar, one visit at a time.

use edge_core::session::{
    apply, begin, prepare_origin_request, SessionOutcome, SessionSettings, SessionState,
};
use edge_core::MemoryStore;
use edge_core::{Clock, ManualClock};
use edge_core::{Op, Reply, Store, StoreError, StoreKind};
use futures::executor::block_on;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

pub fn ns() -> edge_core::Namespace {
    edge_core::Namespace::new("edge")
}
pub const T0: u64 = 1_700_000_000_000;
pub const SECOND: u64 = 1_000;
/// Idle TTL 100 s (slide slack 10 s), absolute 1000 s.
pub const IDLE_S: u64 = 100;
pub const ABSOLUTE_S: u64 = 1_000;

pub fn settings() -> SessionSettings {
    SessionSettings::new(b"flow-test-secret-flow-test-secret!!")
        .unwrap()
        .with_ttls(IDLE_S, ABSOLUTE_S)
        .unwrap()
        .with_max_bytes(64)
        .unwrap()
}

/// A store whose round trips always fail, and which records that it was asked.
pub struct DownStore {
    pub calls: std::cell::Cell<usize>,
}

impl Store for DownStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Upstash
    }
    async fn run(&self, _ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        self.calls.set(self.calls.get() + 1);
        Err(StoreError::Timeout)
    }
    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        self.run(ops).await
    }
}

pub struct World<S: Store> {
    pub store: S,
    pub clock: ManualClock,
    pub settings: SessionSettings,
    /// The browser's session cookie value (`<id>.<mac>`), if it holds one.
    pub jar: Option<String>,
    /// Ops another request runs between this visit's lookup and its write.
    pub meanwhile: Vec<Op>,
}

/// What one visit did, for the test to inspect.
pub struct Visit {
    pub lookup_ops: Vec<Op>,
    pub state: SessionState,
    pub origin_request: HeaderMap,
    pub response: HeaderMap,
    pub outcome: SessionOutcome,
}

pub fn world() -> World<MemoryStore<ManualClock>> {
    let clock = ManualClock::at(T0);
    World {
        store: MemoryStore::with_clock(clock.clone()),
        clock,
        settings: settings(),
        jar: None,
        meanwhile: Vec::new(),
    }
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

impl<S: Store> World<S> {
    /// One request: the browser's cookie plus `extra` request headers, the origin answering
    /// with `origin_response` headers.
    pub fn visit(&mut self, extra: &[(&str, &str)], origin_response: &[(&str, &str)]) -> Visit {
        let mut request = headers(extra);
        if let Some(value) = &self.jar {
            request.append(
                COOKIE,
                HeaderValue::from_str(&format!("{}={value}", self.settings.cookie_name)).unwrap(),
            );
        }
        self.visit_with(request, origin_response)
    }

    pub fn visit_with(&mut self, mut request: HeaderMap, origin_response: &[(&str, &str)]) -> Visit {
        let now = self.clock.now_ms();
        edge_core::session::strip_client_session_headers(&mut request);
        let lookup = begin(&request, &self.settings, &ns());
        let lookup_ops = lookup.ops();
        let replies =
            if lookup_ops.is_empty() { Ok(Vec::new()) } else { block_on(self.store.run(&lookup_ops)) };
        let state = lookup.resolve(replies.as_ref().map(Vec::as_slice), now);
        prepare_origin_request(&mut request, &state, &self.settings);
        let mut response = headers(origin_response);
        let mut outcome = apply(&state, &mut response, &self.settings, &ns(), now);
        let meanwhile = std::mem::take(&mut self.meanwhile);
        if !meanwhile.is_empty() {
            block_on(self.store.run(&meanwhile)).unwrap();
        }
        if !outcome.store_ops.is_empty() {
            if let Ok(replies) = block_on(self.store.run(&outcome.store_ops)) {
                for reply in &replies {
                    assert!(!matches!(reply, Reply::Error(_)), "{reply:?}");
                }
                if let Some(cookies) = outcome.after_write(&replies, &self.settings) {
                    outcome.set_cookies = cookies;
                }
            }
        }
        for set_cookie in &outcome.set_cookies {
            response.append(SET_COOKIE, HeaderValue::from_str(set_cookie).unwrap());
            self.absorb(set_cookie);
        }
        Visit { lookup_ops, state, origin_request: request, response, outcome }
    }

    /// What a browser does with our `Set-Cookie`.
    pub fn absorb(&mut self, set_cookie: &str) {
        let cookie = cookie::Cookie::parse(set_cookie.to_owned()).unwrap();
        assert_eq!(cookie.name(), self.settings.cookie_name);
        if cookie.max_age() == Some(cookie::time::Duration::ZERO) {
            self.jar = None;
        } else {
            self.jar = Some(cookie.value().to_owned());
        }
    }

    pub fn advance_s(&self, seconds: u64) {
        self.clock.advance(seconds * SECOND);
    }
}

pub fn live_data(state: &SessionState) -> (String, Value, u64) {
    match state {
        SessionState::Live { id, record, .. } => {
            (id.as_str().to_owned(), Value::Object(record.data.clone()), record.created_ms)
        }
        other => panic!("expected a live session, got {other:?}"),
    }
}

pub fn is_clearing(set_cookie: &str) -> bool {
    set_cookie.contains("Max-Age=0")
}

/// Logs in: the origin sets `data` on a cookie-less request.
pub fn log_in<S: Store>(w: &mut World<S>, data: &str) -> Visit {
    let visit = w.visit(&[], &[("edge-session-set", data)]);
    assert!(w.jar.is_some(), "no cookie issued: {:?}", visit.outcome);
    visit
}
