//! WebSocket pass-through (docs §6.2): a `GET` with `Upgrade: websocket` is forwarded as an
//! upgrade, with the session like any other request, and the origin's answer comes back as it
//! is: its `101` with the socket (never cached, `X-Cache: BYPASS`, `detail=upgrade`), or its
//! refusal (a 403, a 200 from an origin that ignores the upgrade) streamed like any bypass.
//!
//! `ORIGIN_TIMEOUT_MS` bounds the handshake only: once the `101` is here, the socket lives as
//! long as the client and the origin keep it open.

use http::HeaderMap;

use super::{Edge, Host, LogLevel, OriginRequest};
use crate::engine::{origin_error_response, set_cache_headers, Served, ServedBody};
use crate::hygiene::{restore_websocket_handshake, strip_tag_headers};
use crate::phase::{CachePhase, NoCacheReason};
use crate::runtime::OriginError;
use crate::stats::Counter;
use crate::store::Store;

/// `101 Switching Protocols`.
const SWITCHING_PROTOCOLS: u16 = 101;

impl<S: Store + Clone + 'static> Edge<S> {
    /// Sends the handshake to `target` with `forwarded` (already cleaned and carrying the
    /// session) plus the client's WebSocket headers, and answers what the origin said.
    pub(super) async fn forward_upgrade<H: Host>(
        &self,
        host: &H,
        target: String,
        client: &HeaderMap,
        mut forwarded: HeaderMap,
    ) -> Served<H::Body> {
        self.stats.add(Counter::Bypass);
        self.stats.add(Counter::OriginFetch);
        restore_websocket_handshake(client, &mut forwarded);
        let request = OriginRequest {
            method: http::Method::GET,
            url: target,
            headers: forwarded,
            body: None,
            timeout_ms: self.config.origin_timeout_ms,
        };
        let response = match host.fetch(request).await {
            Ok(response) => response,
            Err(e) => return origin_error_response(&e),
        };
        let status = response.status;
        if status != SWITCHING_PROTOCOLS && !(200..=599).contains(&status) {
            host.log(LogLevel::Warn, &format!("edge-cache: origin answered the invalid status {status}"));
            return origin_error_response(&OriginError::InvalidStatus(status));
        }
        let mut headers = response.headers;
        strip_tag_headers(&mut headers);
        let phase = CachePhase::Bypass(NoCacheReason::Upgrade);
        set_cache_headers(&mut headers, phase, None);
        let body = if status == SWITCHING_PROTOCOLS {
            ServedBody::Upgraded(response.body)
        } else {
            ServedBody::Stream(response.body)
        };
        Served { status, headers, body, phase }
    }
}
