//! The origin's `Set` and `Rotate` while the session store is unreachable (docs §5.11): nothing
//! the origin asked for is dropped in silence. The session moves to a new id carried in a
//! sealed cookie ([`FallbackPlan`]), and the id it replaces is revoked, so that when the store
//! is back the carried session is written as a new record (`SET NX`) and never over one it
//! could not read.

use super::{
    new_session_id, SessionDirective, SessionId, SessionOutcome, SessionRecord, SessionSettings, SessionState,
};

/// A session to seal into the cookie instead of writing it to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackPlan {
    pub id: SessionId,
    pub record: SessionRecord,
    /// The id the browser held, revoked once the new cookie is sent.
    pub replaces: Option<SessionId>,
}

/// `Set` and/or `Rotate` (never `Destroy`, handled before) on a state whose store did not
/// answer: [`SessionState::Unavailable`] (the cookie proves an id, the data is unknown) or
/// [`SessionState::Carried`] (the cookie carries the session).
pub(super) fn steer_without_store(
    state: &SessionState,
    directives: &[SessionDirective],
    settings: &SessionSettings,
    now_ms: u64,
    outcome: &mut SessionOutcome,
) {
    let (old_id, carried) = match state {
        SessionState::Carried { id, record } | SessionState::Restorable { id, record } => {
            (id, Some(record.clone()))
        }
        SessionState::Unavailable { id } => (id, None),
        _ => return,
    };
    let set = directives.iter().find_map(|d| match d {
        SessionDirective::Set(data) => Some(data.clone()),
        _ => None,
    });
    // A Set replaces the whole data, so it needs nothing we could not read; it keeps a carried
    // session's creation time. A Rotate alone needs the data, which only a carried session has.
    let record = match (set, carried) {
        (Some(data), Some(record)) => SessionRecord::new(data, record.created_ms),
        (Some(data), None) => SessionRecord::new(data, now_ms),
        (None, Some(record)) => record,
        (None, None) => {
            outcome.log.push("session directive dropped: redis unavailable, nothing to rotate".to_owned());
            return;
        }
    };
    if settings.fallback_ttl_s == 0 {
        outcome.log.push("session directive dropped: redis unavailable (SESSION_FALLBACK_TTL=0)".to_owned());
        return;
    }
    match new_session_id() {
        Ok(id) => outcome.fallback = Some(FallbackPlan { id, record, replaces: Some(old_id.clone()) }),
        Err(error) => outcome.log.push(format!("session unchanged: {error} ({})", error.as_str())),
    }
}
