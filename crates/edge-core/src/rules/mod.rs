//! `CACHE_RULES` (docs §3): a JSON array of rules; the first rule whose conditions all match a
//! request wins. A rule matches on the host, the normalised path, the method and request
//! headers or cookies ([`matching`]); it shapes the cache key ([`cache_key`]), the lifetimes
//! (`ttl`, `swr`, `sie`, [`status_ttl`]), the tags, what bypasses the cache
//! (`cache: false`, `bypass_cookies`) and what browsers are told ([`browser`]).
//!
//! Parsing ([`parse`]) is by hand over `serde_json::Value` so that every error names the rule
//! index and the field. A condition on a header or cookie makes its value part of the key
//! ([`Rule::key_parts`]): otherwise the first request to fill an entry would choose the rule,
//! and with it the TTL and tags, for every request that shares the entry.

pub mod browser;
pub mod cache_key;
pub mod glob;
pub mod matching;
mod parse;
pub mod status_ttl;
#[cfg(test)]
mod tests;

use std::fmt;

use http::{HeaderMap, Method, Uri};

pub use self::cache_key::KeySpec;
pub use self::glob::Glob;
pub use self::matching::{HostPattern, PathPattern, Presence, RequestView};
pub use self::status_ttl::StatusTtl;

use self::cache_key::{cookie_part, header_part};
use self::matching::{cookie_value, cookies, header_value};

/// One rule. `ttl`, `swr` and `sie` are seconds; they apply field by field when the origin gives
/// no value for that field, or always when `override_origin` (JSON `"override": true`).
/// `cache: false` means never look up or store matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathPattern,
    /// `host`: any of these; empty matches every host.
    pub hosts: Vec<HostPattern>,
    /// `methods`, upper-case; empty matches every method.
    pub methods: Vec<Method>,
    /// `headers`: lower-cased name and condition, all of which must hold.
    pub headers: Vec<(String, Presence)>,
    /// `cookies`: name and condition, all of which must hold.
    pub cookies: Vec<(String, Presence)>,
    pub ttl: Option<u32>,
    pub swr: Option<u32>,
    pub sie: Option<u32>,
    pub override_origin: bool,
    pub cache: bool,
    pub tags: Vec<String>,
    /// `bypass_cookies`: a request carrying a cookie whose name one matches is passed through.
    pub bypass_cookies: Vec<Glob>,
    pub status_ttl: StatusTtl,
    /// `browser_ttl`: the `max-age` clients are given.
    pub browser_ttl: Option<u32>,
    pub key: KeySpec,
}

impl Rule {
    /// A rule for `path` that changes nothing (`cache: true`, no values, no tags).
    pub fn new(path: PathPattern) -> Rule {
        Rule {
            path,
            hosts: Vec::new(),
            methods: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            ttl: None,
            swr: None,
            sie: None,
            override_origin: false,
            cache: true,
            tags: Vec::new(),
            bypass_cookies: Vec::new(),
            status_ttl: StatusTtl::default(),
            browser_ttl: None,
            key: KeySpec::default(),
        }
    }

    /// Whether every condition of the rule holds for `request`.
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.path.matches(request.path)
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(request.host)))
            && (self.methods.is_empty() || self.methods.contains(request.method))
            && self
                .headers
                .iter()
                .all(|(name, cond)| cond.matches(header_value(request.headers, name).as_deref()))
            && self.cookies.iter().all(|(name, cond)| cond.matches(cookie_value(request.headers, name)))
    }

    /// Whether the rule looks at more of the request than its path and host.
    fn has_request_conditions(&self) -> bool {
        !self.methods.is_empty() || !self.headers.is_empty() || !self.cookies.is_empty()
    }

    /// The TTL a rule gives a response with `status`: its `status_ttl` entry, else `ttl`.
    pub fn ttl_for_status(&self, status: u16) -> Option<u32> {
        self.status_ttl.get(status).or(self.ttl)
    }

    /// The name of the first cookie in `client_headers` that `bypass_cookies` names.
    pub fn bypass_cookie<'h>(&self, client_headers: &'h HeaderMap) -> Option<&'h str> {
        if self.bypass_cookies.is_empty() {
            return None;
        }
        cookies(client_headers)
            .map(|(name, _)| name)
            .find(|name| self.bypass_cookies.iter().any(|glob| glob.matches(name)))
    }

    /// The parts of the key beyond the URL, read from the headers as forwarded: each
    /// `key_headers` and `key_cookies` value, the value of every header or cookie a condition
    /// looked at, and, for a rule that matches on more than the path and host (or leaves the
    /// host out of the key while matching on it), the rule's own index, so that no entry is
    /// shared between requests that different rules govern. Names are prefixed by their kind;
    /// an absent value is distinct from an empty one. Without duplicates, in the rule's own
    /// order (fixed for a rule, so no sort: one less generic sort in the wasm).
    pub fn key_parts(&self, index: usize, headers: &HeaderMap) -> Vec<(String, String)> {
        let present = |value: Option<String>| match value {
            Some(value) => format!("={value}"),
            None => "absent".to_string(),
        };
        let mut parts: Vec<(String, String)> = Vec::new();
        let mut add = |name: String, value: String| {
            if !parts.iter().any(|(seen, _)| *seen == name) {
                parts.push((name, value));
            }
        };
        let header_names = self.key.headers.iter().chain(self.headers.iter().map(|(name, _)| name));
        for name in header_names {
            add(format!("header:{name}"), present(header_part(headers, name)));
        }
        let cookie_names = self.key.cookies.iter().chain(self.cookies.iter().map(|(name, _)| name));
        for name in cookie_names {
            add(format!("cookie:{name}"), present(cookie_part(headers, name)));
        }
        if self.has_request_conditions() || (!self.key.host && !self.hosts.is_empty()) {
            add("rule".to_string(), index.to_string());
        }
        parts
    }
}

/// The parsed `CACHE_RULES`, in order, and `CACHE_KEEP_MARKETING_PARAMS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheRules {
    rules: Vec<Rule>,
    /// Marketing parameters stay in keys (off by default, docs §3.6).
    keep_marketing: bool,
}

/// Why `CACHE_RULES` was refused; `Display` gives the whole reason, e.g.
/// "rule 0: `path` must start with / (got \"api\")".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// Index of the offending rule, when the problem is inside one.
    pub rule: Option<usize>,
    pub reason: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(index) => write!(f, "rule {index}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RulesError {}

impl CacheRules {
    pub fn new(rules: Vec<Rule>) -> CacheRules {
        CacheRules { rules, keep_marketing: false }
    }

    /// Parses the `CACHE_RULES` value. An empty or all-whitespace string means no rules.
    pub fn parse(json: &str) -> Result<CacheRules, RulesError> {
        parse::parse_rules(json).map(CacheRules::new)
    }

    /// `CACHE_KEEP_MARKETING_PARAMS`: keep `utm_*`, `fbclid`, … in keys.
    pub fn keeping_marketing_params(mut self, keep: bool) -> CacheRules {
        self.keep_marketing = keep;
        self
    }

    /// The URL as it enters the key under `rule` (no rule: the defaults): normalised, with the
    /// query parameters the rule keeps and the host if it keeps it (docs §3.6).
    pub fn key_url(&self, rule: Option<&Rule>, uri: &Uri) -> String {
        let default = KeySpec::default();
        let spec = rule.map_or(&default, |rule| &rule.key);
        crate::key::normalized_url_with(uri, &|name| spec.keeps_param(name, self.keep_marketing), spec.host)
    }

    /// Every `url_id` a `GET` of `uri` may have stored entries under (one per rule that could
    /// govern it, [`CacheRules::candidates`]): what a URL purge and a write's invalidation
    /// delete, so that they find what lookups stored whatever the request's headers were.
    pub fn url_ids(&self, uri: &Uri) -> Vec<String> {
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        let path = crate::key::normalized_path(uri.path());
        let mut ids: Vec<String> = self
            .candidates(&host, &path)
            .into_iter()
            .map(|rule| crate::key::url_id_of(&self.key_url(rule, uri)))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The origin URL `target` for a request `rule` governs: without the query parameters the
    /// key leaves out when the rule says `strip_query`, as it is otherwise.
    pub fn origin_url(&self, rule: Option<&Rule>, target: &str) -> String {
        match rule {
            Some(rule) if rule.key.strip_query => {
                cache_key::strip_query(target, |name| rule.key.keeps_param(name, self.keep_marketing))
            }
            _ => target.to_string(),
        }
    }

    /// The first rule that matches `request`, with its index.
    pub fn first_match(&self, request: &RequestView<'_>) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, rule)| rule.matches(request))
    }

    /// The first rule whose path matches `path`, for a `GET` with no headers on any host
    /// (tests and tools; requests go through [`CacheRules::first_match`]).
    pub fn matching(&self, path: &str) -> Option<&Rule> {
        let headers = HeaderMap::new();
        let request = RequestView { method: &Method::GET, host: "", path, headers: &headers };
        self.rules.iter().find(|rule| rule.hosts.is_empty() && rule.matches(&request))
    }

    /// Every rule a `GET` of this host and path could be governed by, whatever its headers and
    /// cookies say: the rules whose path and host match, up to the first that looks at nothing
    /// else (`None` in the list: no rule, when none such matched). URL purges and write
    /// invalidations derive a key URL under each, so they find what lookups stored.
    pub fn candidates(&self, host: &str, path: &str) -> Vec<Option<&Rule>> {
        let mut found = Vec::new();
        for rule in &self.rules {
            let path_and_host = rule.path.matches(path)
                && (rule.hosts.is_empty() || rule.hosts.iter().any(|h| h.matches(host)));
            let takes_get = rule.methods.is_empty() || rule.methods.contains(&Method::GET);
            if !path_and_host || !takes_get {
                continue;
            }
            found.push(Some(rule));
            if rule.headers.is_empty() && rule.cookies.is_empty() {
                return found;
            }
        }
        found.push(None);
        found
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
