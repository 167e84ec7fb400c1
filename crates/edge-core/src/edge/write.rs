//! Writes (docs §6.6): a request with a body, or any method but GET/HEAD, is streamed to the
//! origin and back, never cached; a successful answer invalidates what it changed.

use http::{HeaderMap, Method, Uri};

use super::host::fetch_checked;
use super::{Edge, Host, LogLevel, OriginRequest};
use crate::engine::{origin_error_response, set_cache_headers, Served, ServedBody};
use crate::hygiene::strip_tag_headers;
use crate::phase::{CachePhase, NoCacheReason};
use crate::purge::{
    invalidation_after_write, purge_tags_header, purge_with_rules, PurgeRequest, PurgeTarget,
};
use crate::stats::Counter;
use crate::store::Store;

/// A write on its way to the origin.
pub(super) struct Write<B> {
    pub method: Method,
    pub target: String,
    pub headers: HeaderMap,
    pub body: Option<B>,
}

impl<S: Store + Clone + 'static> Edge<S> {
    /// Forwards `write`; a 2xx answer invalidates the cached GET of its URL (RFC 9111 §4.4)
    /// and the tags in `Edge-Purge-Tags` before it is answered, so the client's next read sees
    /// its write (docs §8.1).
    pub(super) async fn forward_write<H: Host>(
        &self,
        host: &H,
        write: Write<H::RequestBody>,
        uri: &Uri,
        reason: NoCacheReason,
    ) -> Served<H::Body> {
        self.stats.add(Counter::Bypass);
        self.stats.add(Counter::OriginFetch);
        let method = write.method.clone();
        let request = OriginRequest {
            method: write.method,
            url: write.target,
            headers: write.headers,
            body: write.body,
            timeout_ms: self.config.origin_timeout_ms,
        };
        let response = match fetch_checked(host, request).await {
            Ok(response) => response,
            Err(e) => return origin_error_response(&e),
        };
        let now = host.now_ms();
        for target in invalidations(&method, uri, response.status, &response.headers) {
            let request = PurgeRequest { target, soft: false };
            if let Err(e) =
                purge_with_rules(&self.store, &self.config.namespace, &self.config.rules, &request, now).await
            {
                host.log(LogLevel::Error, &format!("edge-cache: invalidation after a write failed: {e}"));
            }
            self.cache_state.purged(&request.target, &self.config.rules);
        }
        let mut headers = response.headers;
        strip_tag_headers(&mut headers);
        let phase = CachePhase::Bypass(reason);
        set_cache_headers(&mut headers, phase, None);
        Served { status: response.status, headers, body: ServedBody::Stream(response.body), phase }
    }
}

/// What a write's answer invalidates: its URLs, and the tags the origin names.
fn invalidations(method: &Method, uri: &Uri, status: u16, headers: &HeaderMap) -> Vec<PurgeTarget> {
    let mut targets = Vec::new();
    if let Some(urls) = invalidation_after_write(method, uri, status, headers) {
        targets.push(urls);
        let tags = purge_tags_header(headers);
        if !tags.is_empty() {
            targets.push(PurgeTarget::Tags(tags));
        }
    }
    targets
}
