//! Sessions through a session-store outage (issue 18 items 2–4, docs §5.11–§5.12) and sessions
//! on a store of their own (issue 14 item 4, docs §5.10), as whole requests through
//! `Edge::handle`: the memory store behind a wrapper that fails on demand (the memory store
//! cannot fail by itself; the Miniflare suite does the same against real Redis through the
//! fault-injecting proxy), and the fallback cookie sealed for real (AES-256-GCM, `aes-gcm`).

use std::cell::RefCell;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_core::session::SessionRecord;
use edge_core::{Config, Edge, MemoryStore, Op, Reply as StoreReply, Served, Store, StoreError, StoreKind};
use http::Method;

use crate::support::host::{Received, Reply, TestHost};
use crate::support::site::{body, header_of, path_of, request};
use crate::support::{local, settle, CountingStore, TestClock, TestRuntime};

const SECRET: &str = "an-outage-test-secret-of-32-bytes-or-more";
const COOKIE: &str = "__Host-session";

type Mem = CountingStore<MemoryStore<TestClock>>;

/// The origin: `/login` sets a user, `/big` sets data too large for a cookie, `/logout`
/// destroys, `/promote` changes the data; every page echoes what the origin was told.
fn origin(req: &Received) -> Reply {
    let told = format!(
        "{}|{}|{}",
        header_of(req, "edge-session-status"),
        header_of(req, "edge-session-id"),
        String::from_utf8(URL_SAFE_NO_PAD.decode(header_of(req, "edge-session")).unwrap_or_default())
            .unwrap_or_default(),
    );
    let directive = match path_of(req) {
        "/login" => Some(("edge-session-set", r#"{"user":"ada"}"#.to_string())),
        "/big" => Some(("edge-session-set", format!(r#"{{"blob":"{}"}}"#, "x".repeat(5_000)))),
        "/promote" => Some(("edge-session-set", r#"{"user":"ada","role":"admin"}"#.to_string())),
        "/logout" => Some(("edge-session-destroy", "1".to_string())),
        _ => None,
    };
    let mut headers = vec![("cache-control", "no-store".to_string())];
    headers.extend(directive);
    (200, headers, told.into_bytes())
}

struct Stack {
    edge: Edge<Mem>,
    host: TestHost,
    cache: Mem,
    sessions: Mem,
    clock: TestClock,
    /// The browser's session cookie value.
    jar: RefCell<Option<String>>,
}

fn stack(separate_session_store: bool) -> Stack {
    let vars = [("SESSION_SECRET", SECRET)];
    let config =
        Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
            .expect("config");
    let clock = TestClock::new();
    let cache = CountingStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = if separate_session_store {
        CountingStore::new(MemoryStore::with_clock(clock.clone()))
    } else {
        cache.clone()
    };
    let mut edge = Edge::new(Rc::new(config), cache.clone());
    if separate_session_store {
        edge = edge.with_session_store(sessions.clone());
    }
    let host = TestHost::new(TestRuntime { clock: clock.clone() }, origin);
    Stack { edge, host, cache, sessions, clock, jar: RefCell::default() }
}

impl Stack {
    /// A GET with the browser's cookie (or `cookie` instead); the browser keeps what it is set.
    async fn visit_with(&self, path: &str, cookie: Option<&str>) -> Served<Vec<u8>> {
        let pair = cookie.map(|value| format!("{COOKIE}={value}"));
        let headers: Vec<(&'static str, &str)> = pair.iter().map(|p| ("cookie", p.as_str())).collect();
        let url = format!("https://shop.example{path}");
        let served = self.edge.handle(&self.host, request(Method::GET, &url, &headers, None)).await;
        settle().await;
        for line in served.headers.get_all("set-cookie") {
            let line = line.to_str().unwrap();
            let Some(rest) = line.strip_prefix(&format!("{COOKIE}=")) else { continue };
            let value = rest.split(';').next().unwrap().to_string();
            *self.jar.borrow_mut() = if line.contains("Max-Age=0") { None } else { Some(value) };
        }
        served
    }

    async fn visit(&self, path: &str) -> Served<Vec<u8>> {
        let jar = self.jar.borrow().clone();
        self.visit_with(path, jar.as_deref()).await
    }

    fn jar(&self) -> String {
        self.jar.borrow().clone().expect("the browser holds a session cookie")
    }

    fn set_down(&self, down: bool) {
        self.sessions.failing.set(down);
    }

    fn logs(&self) -> String {
        self.host.logs.borrow().join("\n")
    }

    /// The record stored for the id in the browser's cookie.
    async fn record_of(&self, cookie: &str) -> Option<SessionRecord> {
        use sha2::{Digest, Sha256};
        let key = format!("edge:sess:{:x}", Sha256::digest(cookie.get(..22)?.as_bytes()));
        match self.sessions.inner.run(&[Op::Get(key)]).await.ok()?.pop()? {
            StoreReply::Bytes(bytes) => SessionRecord::decode(&bytes).ok(),
            _ => None,
        }
    }
}

fn told(served: &Served<Vec<u8>>) -> (String, String, String) {
    let text = body(served);
    let mut parts = text.splitn(3, '|').map(str::to_string);
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

fn set_cookie(served: &Served<Vec<u8>>) -> String {
    served
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A short cookie is `<id>.<mac>`: 66 characters; a fallback cookie carries more.
const SHORT: usize = 66;

#[test]
fn a_logged_in_user_during_an_outage_is_unavailable_with_the_proven_id() {
    local(async {
        let s = stack(false);
        s.visit("/login").await;
        let id = s.jar()[..22].to_string();
        s.set_down(true);
        let (status, told_id, data) = told(&s.visit("/me").await);
        assert_eq!((status.as_str(), told_id.as_str(), data.as_str()), ("unavailable", id.as_str(), ""));
        assert_eq!(s.jar().len(), SHORT, "the cookie is kept");
    });
}

#[test]
fn a_login_during_the_outage_travels_in_the_cookie_and_is_written_back_when_the_store_is_back() {
    local(async {
        let s = stack(false);
        s.set_down(true);
        let login = s.visit("/login").await;
        assert_eq!(told(&login).0, "anonymous");
        let cookie = s.jar();
        assert!(cookie.len() > SHORT, "a fallback cookie: {cookie}");
        assert!(set_cookie(&login).len() <= 4000);
        assert!(header_of_served(&login, "cache-control").starts_with("private"));
        assert!(s.logs().contains("session write failed"), "{}", s.logs());
        // Still down: the cookie is the session.
        let (status, id, data) = told(&s.visit("/me").await);
        assert_eq!((status.as_str(), data.as_str()), ("active", r#"{"user":"ada"}"#));
        assert_eq!(id, cookie[..22]);
        assert!(s.record_of(&cookie).await.is_none());

        // The store is back: the next request writes it back and returns to the short cookie.
        s.set_down(false);
        let back = s.visit("/me").await;
        let (status, id, data) = told(&back);
        assert_eq!((status.as_str(), data.as_str()), ("active", r#"{"user":"ada"}"#));
        assert_eq!(id, cookie[..22]);
        assert_eq!(s.jar().len(), SHORT, "back to the short cookie: {}", set_cookie(&back));
        assert_eq!(s.jar(), cookie[..SHORT]);
        let record = s.record_of(&cookie).await.expect("written back");
        assert_eq!(serde_json::to_string(&record.data).unwrap(), r#"{"user":"ada"}"#);
        assert!(s.logs().contains("fallback cookie written back"));

        // Once written back the record is the truth: a change is not undone by the copy.
        s.visit("/promote").await;
        let (status, _, data) = told(&s.visit_with("/me", Some(&cookie)).await);
        assert_eq!((status.as_str(), data.as_str()), ("active", r#"{"role":"admin","user":"ada"}"#));
        // And after a logout the copy is refused: never written back a second time.
        s.visit("/logout").await;
        let copied = s.visit_with("/me", Some(&cookie)).await;
        assert_eq!(told(&copied).0, "anonymous");
        assert!(set_cookie(&copied).contains("Max-Age=0"), "cleared: {}", set_cookie(&copied));
        assert!(s.record_of(&cookie).await.is_none(), "not resurrected");
    });
}

fn header_of_served(served: &Served<Vec<u8>>, name: &str) -> String {
    served.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[test]
fn a_set_on_an_unavailable_session_moves_it_to_a_new_id_and_revokes_the_old() {
    local(async {
        let s = stack(false);
        s.visit("/login").await;
        let old = s.jar();
        s.set_down(true);
        s.visit("/promote").await;
        let carried = s.jar();
        assert!(carried.len() > SHORT);
        assert_ne!(carried[..22], old[..22], "a new id");
        let (status, _, data) = told(&s.visit("/me").await);
        assert_eq!((status.as_str(), data.as_str()), ("active", r#"{"role":"admin","user":"ada"}"#));
        // The old cookie is refused in this isolate at once, and everywhere once written.
        assert_eq!(told(&s.visit_with("/me", Some(&old)).await).0, "anonymous");
        s.set_down(false);
        assert_eq!(told(&s.visit_with("/me", Some(&carried)).await).0, "active");
        settle().await;
        assert!(s.record_of(&old).await.is_none(), "the old record is deleted");
        assert_eq!(told(&s.visit_with("/me", Some(&old)).await).0, "anonymous");
        assert_eq!(s.record_of(&carried).await.map(|r| r.data.len()), Some(2));
    });
}

#[test]
fn a_tampered_fallback_cookie_is_invalid_and_costs_no_lookup() {
    local(async {
        let s = stack(false);
        s.set_down(true);
        s.visit("/login").await;
        let cookie = s.jar();
        s.set_down(false);
        // Flip one character of the sealed part (not the last, whose low bits base64 ignores).
        let at = SHORT + 10;
        let flipped = if &cookie[at..at + 1] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &cookie[..at], &cookie[at + 1..]);
        let before = s.sessions.log.borrow().len();
        let served = s.visit_with("/me", Some(&tampered)).await;
        assert_eq!(told(&served).0, "invalid");
        assert!(set_cookie(&served).contains("Max-Age=0"));
        let session_reads = s.sessions.log.borrow()[before..]
            .iter()
            .flatten()
            .filter(|op| matches!(op, Op::Get(key) if key.contains(":sess")))
            .count();
        assert_eq!(session_reads, 0, "refused before any lookup");
        // The sealed part of one session moved onto another signed id does not open either.
        s.set_down(true);
        s.visit_with("/login", None).await;
        let other = s.jar();
        let spliced = format!("{}{}", &other[..SHORT], &cookie[SHORT..]);
        assert_eq!(told(&s.visit_with("/me", Some(&spliced)).await).0, "invalid");
        // The genuine one still works.
        s.set_down(false);
        assert_eq!(told(&s.visit_with("/me", Some(&cookie)).await).0, "active");
    });
}

#[test]
fn a_fallback_cookie_is_trusted_only_within_session_fallback_ttl() {
    local(async {
        let s = stack(false);
        s.set_down(true);
        s.visit("/login").await;
        let cookie = s.jar();
        s.clock.advance(14 * 60 * 1000);
        assert_eq!(told(&s.visit_with("/me", Some(&cookie)).await).0, "active");
        s.clock.advance(61 * 1000);
        // Past 15 minutes: an id the MAC proves, nothing more.
        assert_eq!(told(&s.visit_with("/me", Some(&cookie)).await).0, "unavailable");
        s.set_down(false);
        let served = s.visit_with("/me", Some(&cookie)).await;
        assert_eq!(told(&served).0, "anonymous", "never written back");
        assert!(s.record_of(&cookie).await.is_none());
    });
}

#[test]
fn a_destroy_during_the_outage_is_revoked_once_the_store_answers() {
    local(async {
        let s = stack(false);
        s.visit("/login").await;
        let copied = s.jar();
        s.set_down(true);
        let logout = s.visit("/logout").await;
        assert!(set_cookie(&logout).contains("Max-Age=0"));
        // This isolate refuses the copy at once.
        assert_eq!(told(&s.visit_with("/me", Some(&copied)).await).0, "anonymous");
        assert!(s.record_of(&copied).await.is_some(), "the store has not been told yet");
        s.set_down(false);
        // The first request that reaches the store writes the revocation.
        s.visit_with("/", None).await;
        s.visit_with("/me", Some("not-ours")).await;
        let anyone = s.visit_with("/me", Some(&copied)).await;
        settle().await;
        assert_eq!(told(&anyone).0, "anonymous");
        assert!(s.record_of(&copied).await.is_none(), "deleted once the store answered");
        assert!(s.logs().contains("revocation(s) written"), "{}", s.logs());

        // A fallback cookie destroyed during the outage is never written back.
        s.set_down(true);
        s.visit_with("/login", None).await;
        let carried = s.jar();
        assert!(carried.len() > SHORT);
        s.visit("/logout").await;
        s.set_down(false);
        s.visit_with("/me", Some(&copied)).await;
        settle().await;
        let other_isolate = stack_sharing(&s);
        assert_eq!(told(&other_isolate.visit_with("/me", Some(&carried)).await).0, "anonymous");
        assert!(s.record_of(&carried).await.is_none(), "not written back after its revocation");
    });
}

/// Another isolate on the same store: it shares nothing in memory with `s`.
fn stack_sharing(s: &Stack) -> Stack {
    let vars = [("SESSION_SECRET", SECRET)];
    let config =
        Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
            .expect("config");
    let edge = Edge::new(Rc::new(config), s.cache.clone());
    let host = TestHost::new(TestRuntime { clock: s.clock.clone() }, origin);
    Stack {
        edge,
        host,
        cache: s.cache.clone(),
        sessions: s.sessions.clone(),
        clock: s.clock.clone(),
        jar: RefCell::default(),
    }
}

#[test]
fn an_oversize_set_during_the_outage_passes_as_sent_with_an_error() {
    local(async {
        let s = stack(false);
        s.set_down(true);
        let served = s.visit("/big").await;
        assert_eq!(served.status, 200);
        assert_eq!(told(&served).0, "anonymous");
        assert!(!set_cookie(&served).contains(COOKIE), "no cookie of ours: {}", set_cookie(&served));
        assert!(s.logs().contains("too large for the fallback cookie"), "{}", s.logs());
        assert!(s.jar.borrow().is_none());
    });
}

/// A store that records when each round trip starts and ends, yielding in between, so a test
/// can see whether two were in flight together.
#[derive(Clone)]
struct Traced {
    name: &'static str,
    inner: Mem,
    events: Rc<RefCell<Vec<String>>>,
}

impl Store for Traced {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }
    async fn run(&self, ops: &[Op]) -> Result<Vec<StoreReply>, StoreError> {
        self.events.borrow_mut().push(format!("{} start", self.name));
        tokio::task::yield_now().await;
        let replies = self.inner.run(ops).await;
        self.events.borrow_mut().push(format!("{} end", self.name));
        replies
    }
    async fn atomic(&self, ops: &[Op]) -> Result<Vec<StoreReply>, StoreError> {
        self.run(ops).await
    }
}

#[test]
fn with_two_stores_a_hit_with_a_session_costs_one_request_to_each_sent_together() {
    local(async {
        let s = stack(true);
        s.visit("/login").await;
        assert!(s.record_of(&s.jar()).await.is_some(), "the session is on its own store");
        let events = Rc::new(RefCell::new(Vec::new()));
        let traced = |name, inner: &Mem| Traced { name, inner: inner.clone(), events: events.clone() };
        // Without the L1, which would answer the shared entry with no cache-store request at all
        // (tests/two_tier.rs): here the two stores' requests are the subject.
        let vars = [("SESSION_SECRET", SECRET), ("CACHE_L1_BYTES", "0")];
        let config = Config::from_lookup(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
            .expect("config");
        let edge = Edge::new(Rc::new(config), traced("cache", &s.cache))
            .with_session_store(traced("sessions", &s.sessions));
        let cookie = format!("{COOKIE}={}", s.jar());
        let hit =
            || request(Method::GET, "https://shop.example/cached", &[("cookie", cookie.as_str())], None);
        let host = TestHost::new(TestRuntime { clock: s.clock.clone() }, |_| {
            (200, vec![("cache-control", "public, max-age=60".to_string())], b"shared".to_vec())
        });
        edge.handle(&host, hit()).await;
        settle().await;
        events.borrow_mut().clear();
        let (cache_before, sessions_before) = (s.cache.round_trips.get(), s.sessions.round_trips.get());
        let served = edge.handle(&host, hit()).await;
        assert_eq!(header_of_served(&served, "x-cache"), "HIT");
        assert_eq!(s.cache.round_trips.get() - cache_before, 1, "one request to the cache store");
        assert_eq!(s.sessions.round_trips.get() - sessions_before, 1, "one request to the session store");
        let events = events.borrow().clone();
        assert_eq!(&events[..2], ["cache start", "sessions start"], "both in flight together: {events:?}");
    });
}

#[test]
fn health_reports_both_stores() {
    local(async {
        let s = stack(true);
        let health = s.visit_with("/__edge/health", None).await;
        assert_eq!(
            body(&health),
            r#"{"redis":"ok","sessions":{"redis":"ok","store":"memory"},"status":"ok","store":"memory"}"#
        );
        s.set_down(true);
        let health = s.visit_with("/__edge/health", None).await;
        assert_eq!(
            body(&health),
            r#"{"redis":"ok","sessions":{"redis":"unreachable","store":"memory"},"status":"degraded","store":"memory"}"#
        );
        // One store: the answer is as before.
        let one = stack(false);
        assert_eq!(
            body(&one.visit_with("/__edge/health", None).await),
            r#"{"redis":"ok","status":"ok","store":"memory"}"#
        );
    });
}

#[test]
fn with_two_stores_an_outage_of_the_session_store_leaves_the_cache_serving() {
    local(async {
        let s = stack(true);
        s.visit("/login").await;
        s.set_down(true);
        let (status, _, _) = told(&s.visit("/me").await);
        assert_eq!(status, "unavailable", "the session store is the one that is down");
        assert!(!s.cache.failing.get());
    });
}
