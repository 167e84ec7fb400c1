//! Revalidation (docs §4.13): a stale copy with a validator is refreshed with a conditional
//! request; a 304 freshens it (RFC 9111 §4.3.4) without the origin sending the body again.

use std::rc::Rc;

use http::Method;

use super::lookup::Lookup;
use super::poll_board::PollOutcome;
use super::served::{from_entry, set_cache_headers, Served};
use super::{Cache, CacheRequest};
use crate::entry::{storable_headers, CacheEntry};
use crate::key::normalized_path;
use crate::phase::CachePhase;
use crate::policy::{origin_age, response_decision};
use crate::runtime::Runtime;
use crate::store::{Op, Store};

impl<S, R> Cache<S, R>
where
    S: Store + Clone + 'static,
    R: Runtime,
{
    /// A 304 to a revalidation (RFC 9111 §4.3.4): the stored headers updated with the 304's
    /// (framing kept), the body untouched, the freshness recomputed; stored again and served.
    pub(super) fn freshen<B>(
        &self,
        req: &CacheRequest,
        lookup: &Lookup,
        stale: &CacheEntry,
        not_modified: &http::HeaderMap,
        finally: Vec<Op>,
        started: u64,
    ) -> Served<B> {
        let now = self.rt.now_ms();
        // The 304's fields replace the stored ones of the same name; what is never stored
        // (framing, hop-by-hop, Set-Cookie, Age) is left as it was.
        let mut merged = stale.header_map();
        // The stored Date describes the old response; without one in the 304 it would make the
        // freshened copy look old (its age on arrival counts from Date).
        if !not_modified.contains_key(http::header::DATE) {
            merged.remove(http::header::DATE);
        }
        let updates = storable_headers(not_modified);
        for (name, _) in &updates {
            merged.remove(name.as_str());
        }
        for (name, value) in updates {
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(&value))
            {
                merged.append(name, value);
            }
        }
        let rule = self.rule(req);
        let decision = response_decision(
            stale.status,
            &merged,
            rule,
            self.settings.max_bytes,
            now / 1_000,
            self.heuristic_for(req),
        );
        let entry = CacheEntry {
            headers: storable_headers(&merged),
            stored_at_ms: now,
            initial_age_secs: origin_age(&merged, now / 1_000),
            freshness: decision.unwrap_or_default(),
            ..stale.clone()
        };
        let head_only = req.method == Method::HEAD;
        match decision {
            Ok(_) => {
                let fill_ms = Some(now.saturating_sub(started));
                let path = normalized_path(req.uri.path());
                let mut ops = self.entry_ops(&lookup.keys, &path, &entry, &entry.vary, fill_ms);
                ops.extend(finally);
                self.spawn_ops(ops);
                let shared = Rc::new(entry.clone());
                self.keep_stored_in_l1(req, &lookup.keys, &shared, fill_ms, lookup);
                self.isolate.polls.publish(&lookup.keys.lock, now, PollOutcome::Ready(shared));
                from_entry(&entry, CachePhase::Revalidated, head_only, now)
            }
            Err(reason) => {
                // The origin now forbids storing it: serve the still-valid body this once.
                self.spawn_ops(finally);
                self.isolate.polls.publish(&lookup.keys.lock, now, PollOutcome::LookAgain);
                let mut served = from_entry(&entry, CachePhase::MissUnstored(reason), head_only, now);
                set_cache_headers(&mut served.headers, CachePhase::MissUnstored(reason), None);
                served
            }
        }
    }
}

/// The validators to revalidate a stored copy with: its `ETag` as `If-None-Match`, its
/// `Last-Modified` as `If-Modified-Since`; `None` when it has neither.
pub(super) fn validators_of(entry: &CacheEntry) -> Option<http::HeaderMap> {
    let mut validators = http::HeaderMap::new();
    for (name, value) in &entry.headers {
        let as_header = match name.as_str() {
            "etag" => http::header::IF_NONE_MATCH,
            "last-modified" => http::header::IF_MODIFIED_SINCE,
            _ => continue,
        };
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            validators.insert(as_header, value);
        }
    }
    (!validators.is_empty()).then_some(validators)
}
