//! A whole site behind `Edge::handle`, natively: the worker's configuration from `vars`, the
//! memory store on the test clock, and an in-process origin answering through a handler.
//! Shared by the suites that drive requests end to end (`edge_requests`, `edge_upgrades`).

use std::rc::Rc;

use edge_core::{Config, Edge, EdgeRequest, MemoryStore, Served, ServedBody};
use http::{HeaderMap, Method};

use super::host::{Received, Reply, TestHost};
use super::{settle, TestClock, TestRuntime};

pub struct Site {
    pub edge: Edge<MemoryStore<TestClock>>,
    pub host: TestHost,
}

impl Site {
    pub fn new(vars: &[(&str, &str)], origin: impl Fn(&Received) -> Reply + 'static) -> Site {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("config");
        let clock = TestClock::new();
        let edge = Edge::new(Rc::new(config), MemoryStore::with_clock(clock.clone()));
        Site { edge, host: TestHost::new(TestRuntime { clock }, origin) }
    }

    /// One body-less request to `https://shop.example{path}`, then time for background work.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> Served<Vec<u8>> {
        let url = format!("https://shop.example{path}");
        let served = self.edge.handle(&self.host, request(method, &url, headers, None)).await;
        settle().await;
        served
    }

    /// Logs in at `/login` and answers the `Cookie` header value that carries the session.
    pub async fn login(&self) -> String {
        let served = self.send(Method::GET, "/login", &[]).await;
        header(&served, "set-cookie").split(';').next().expect("a cookie").to_string()
    }
}

/// A request as the platform would hand it over.
pub fn request(
    method: Method,
    url: &str,
    headers: &[(&'static str, &str)],
    body: Option<Vec<u8>>,
) -> EdgeRequest<Vec<u8>> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, value.parse().expect("header"));
    }
    EdgeRequest { method, url: url.to_string(), headers: map, body }
}

/// The path (and query) of what the origin received.
pub fn path_of(req: &Received) -> &str {
    req.url.split_once("://").map_or("", |(_, rest)| &rest[rest.find('/').unwrap_or(rest.len())..])
}

/// A request header the origin received, as text ("" when absent).
pub fn header_of(req: &Received, name: &str) -> String {
    req.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// A response header, as text ("" when absent).
pub fn header(served: &Served<Vec<u8>>, name: &str) -> String {
    served.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// A response body, as text.
pub fn body(served: &Served<Vec<u8>>) -> String {
    match &served.body {
        ServedBody::Bytes(b) | ServedBody::Stream(b) | ServedBody::Upgraded(b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        ServedBody::Empty => String::new(),
    }
}
