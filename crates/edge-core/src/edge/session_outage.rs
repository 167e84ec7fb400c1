//! Sessions through a session-store outage, with I/O (docs §5.11, §5.12): sealing a session
//! into the fallback cookie, writing a carried session back once the store answers, and the
//! isolate's revocations.

use futures::FutureExt;
use http::HeaderValue;

use super::session_step::make_private;
use super::{Edge, Host, LogLevel};
use crate::engine::Served;
use crate::session::fallback::{associated_data, fallback_set_cookie, new_nonce};
use crate::session::{
    fallback_marker_ttl_ms, revocation_ops, ttl_ms, CarriedSession, FallbackPlan, SessionId, SessionRecord,
    SessionSettings, SessionState,
};
use crate::store::{Op, Reply, Store};

impl<S: Store + Clone + 'static> Edge<S> {
    /// Writes a carried session back as a new record, once (`WriteBackOnce`): never over a
    /// record (`NX`), never after another write-back or a revocation (the marker).
    pub(super) async fn write_back<H: Host>(
        &self,
        host: &H,
        id: SessionId,
        record: SessionRecord,
        settings: &SessionSettings,
    ) -> SessionState {
        let namespace = &self.config.namespace;
        let Some(ttl) = ttl_ms(host.now_ms(), record.created_ms, settings) else {
            return SessionState::Unknown;
        };
        let Ok(value) = String::from_utf8(record.encode()) else {
            return SessionState::Unknown;
        };
        let op = Op::WriteBackOnce {
            marker_key: namespace.session_fallback_used(&id),
            marker_ttl_ms: fallback_marker_ttl_ms(settings),
            key: namespace.session(&id),
            value,
            ttl_ms: ttl,
        };
        match self.sessions().run(std::slice::from_ref(&op)).await.map(|r| r.into_iter().next()) {
            Ok(Some(Reply::Int(1))) => {
                host.log(LogLevel::Info, "edge-cache: session: fallback cookie written back");
                SessionState::Live { id, record, pttl_ms: i64::try_from(ttl).unwrap_or(i64::MAX) }
            }
            Ok(Some(Reply::Int(0))) => {
                host.log(
                    LogLevel::Info,
                    "edge-cache: session: fallback cookie refused: already written back or revoked",
                );
                SessionState::Unknown
            }
            // A record appeared between the lookup and the write: it is the truth; the next
            // request reads it (the cookie is kept meanwhile).
            Ok(Some(Reply::Int(2))) => SessionState::Unavailable { id },
            // The store refused the write (e.g. `OOM` from a full `noeviction` Redis): the
            // cookie still carries the session; a later request tries again.
            Ok(Some(Reply::Error(text))) => {
                host.log(LogLevel::Warn, &format!("edge-cache: session: write-back refused: {text}"));
                SessionState::Carried { id, record }
            }
            Ok(_) => SessionState::Unavailable { id },
            Err(error) => {
                host.log(LogLevel::Warn, &format!("edge-cache: session: write-back failed: {error}"));
                SessionState::Carried { id, record }
            }
        }
    }

    /// Seals `plan`'s session into the cookie (AES-256-GCM through the host). Too large for a
    /// cookie, or no AEAD: the response passes as the origin sent it, with an error logged.
    pub(super) async fn issue_fallback<H: Host>(
        &self,
        host: &H,
        served: &mut Served<H::Body>,
        plan: FallbackPlan,
        settings: &SessionSettings,
    ) {
        let carried = CarriedSession { record: plan.record, issued_ms: host.now_ms() };
        let nonce = match new_nonce() {
            Ok(nonce) => nonce,
            Err(error) => {
                host.log(
                    LogLevel::Error,
                    &format!("edge-cache: session: fallback cookie not issued: {error}"),
                );
                return;
            }
        };
        let sealed =
            host.seal(&settings.fallback_key, &nonce, &associated_data(&plan.id), &carried.plaintext()).await;
        let Ok(ciphertext) = sealed else {
            host.log(LogLevel::Error, "edge-cache: session: fallback cookie not issued: sealing failed");
            return;
        };
        let Some(cookie) = fallback_set_cookie(&plan.id, &nonce, &ciphertext, settings) else {
            host.log(
                LogLevel::Error,
                "edge-cache: session: directive lost: the store is unavailable and the session data is too \
                 large for the fallback cookie (4000 bytes); the response passes as the origin sent it",
            );
            return;
        };
        let Ok(value) = HeaderValue::from_str(&cookie) else {
            return;
        };
        served.headers.append(http::header::SET_COOKIE, value);
        make_private(&mut served.headers);
        host.log(LogLevel::Warn, "edge-cache: session: store unavailable: session carried in the cookie");
        self.revoke(host, plan.replaces.into_iter().collect());
    }

    /// Keeps `ids` in the isolate's revocation list and tries to write them at once.
    pub(super) fn revoke<H: Host>(&self, host: &H, ids: Vec<SessionId>) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            if self.revocations.add(id).is_some() {
                host.log(LogLevel::Warn, "edge-cache: session: revocation list full: the oldest was dropped");
            }
        }
        self.flush_revocations(host);
    }

    /// Writes the pending revocations in the background; on failure they are kept for the
    /// next request that finds the store answering.
    pub(super) fn flush_revocations<H: Host>(&self, host: &H) {
        let Some(settings) = self.config.session.as_ref() else { return };
        let Some(ids) = self.revocations.begin_flush() else { return };
        let ops = revocation_ops(&ids, &self.config.namespace, settings);
        let store = self.sessions().clone();
        let revocations = self.revocations.clone();
        let log = host.clone();
        host.spawn(
            async move {
                let written = store.run(&ops).await.map(|replies| {
                    // Every op must have succeeded: a per-op error keeps the ids too.
                    !replies.iter().any(|reply| matches!(reply, Reply::Error(_)))
                });
                match written {
                    Ok(true) => {
                        revocations.end_flush(Some(&ids));
                        log.log(
                            LogLevel::Info,
                            &format!("edge-cache: session: {} revocation(s) written", ids.len()),
                        );
                    }
                    Ok(false) | Err(_) => {
                        revocations.end_flush(None);
                        log.log(
                            LogLevel::Warn,
                            "edge-cache: session: revocations kept: the store did not take them",
                        );
                    }
                }
            }
            .boxed_local(),
        );
    }

    /// Runs session `ops` on the session store after the response; a failure is logged.
    pub(super) fn spawn_session_ops<H: Host>(&self, host: &H, ops: Vec<Op>, what: &'static str) {
        let store = self.sessions().clone();
        let log = host.clone();
        host.spawn(
            async move {
                if let Err(e) = store.run(&ops).await {
                    log.log(LogLevel::Error, &format!("edge-cache: {what} failed: {e}"));
                }
            }
            .boxed_local(),
        );
    }
}
