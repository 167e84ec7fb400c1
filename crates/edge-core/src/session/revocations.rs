//! Sessions destroyed while their store was down (docs §5.12): kept in the isolate until the
//! store answers, then written there, so that a copied cookie stops working everywhere.
//!
//! Meanwhile this isolate refuses them itself; other isolates cannot know until the write
//! lands (the revocation window the docs state).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use super::{SessionId, SessionSettings};
use crate::keyspace::Namespace;
use crate::store::Op;

/// Bounds the isolate's memory during a long outage (an id is 22 bytes). Past it the oldest is
/// dropped, with a log line: its cookie was already cleared, and its record still expires.
pub const MAX_PENDING_REVOCATIONS: usize = 10_000;

/// The ids this isolate revoked and has not yet written to the store.
#[derive(Debug, Default)]
pub struct Revocations {
    pending: RefCell<VecDeque<SessionId>>,
    /// A write of the pending ids is under way (one at a time).
    flushing: Cell<bool>,
}

impl Revocations {
    /// Records `id`; answers the id dropped to stay under [`MAX_PENDING_REVOCATIONS`], if any.
    pub fn add(&self, id: SessionId) -> Option<SessionId> {
        let mut pending = self.pending.borrow_mut();
        if pending.contains(&id) {
            return None;
        }
        pending.push_back(id);
        if pending.len() > MAX_PENDING_REVOCATIONS {
            pending.pop_front()
        } else {
            None
        }
    }

    /// Whether this isolate revoked `id` and has not yet written it.
    pub fn contains(&self, id: &SessionId) -> bool {
        self.pending.borrow().contains(id)
    }

    pub fn is_empty(&self) -> bool {
        self.pending.borrow().is_empty()
    }

    /// The pending ids, to write, unless a write is already under way (or none is pending).
    /// They stay refused here until [`Revocations::end_flush`] is told they were written.
    pub fn begin_flush(&self) -> Option<Vec<SessionId>> {
        if self.flushing.get() || self.is_empty() {
            return None;
        }
        self.flushing.set(true);
        Some(self.pending.borrow().iter().cloned().collect())
    }

    /// The write begun by [`Revocations::begin_flush`] ended: `written` ids leave the list
    /// (the store refuses them now); on failure (`None`) they all stay.
    pub fn end_flush(&self, written: Option<&[SessionId]>) {
        self.flushing.set(false);
        if let Some(written) = written {
            self.pending.borrow_mut().retain(|id| !written.contains(id));
        }
    }
}

/// The store ops that revoke `ids`: the record deleted, and the fallback marker set to `r` for
/// as long as any fallback cookie of theirs could still be trusted, so none is written back.
pub fn revocation_ops(ids: &[SessionId], namespace: &Namespace, settings: &SessionSettings) -> Vec<Op> {
    let mut ops = Vec::with_capacity(ids.len() * 2);
    for id in ids {
        ops.push(Op::Del(vec![namespace.session(id)]));
        if settings.fallback_ttl_s > 0 {
            ops.push(Op::Set {
                key: namespace.session_fallback_used(id),
                value: "r".to_owned(),
                ttl_ms: Some(fallback_marker_ttl_ms(settings)),
                nx: false,
            });
        }
    }
    ops
}

/// A used-up marker outlives every fallback cookie it could stop: the window plus the clock
/// skew tolerated on the cookie's issue time.
pub fn fallback_marker_ttl_ms(settings: &SessionSettings) -> u64 {
    settings.fallback_ttl_ms().saturating_add(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::new_session_id;

    #[test]
    fn pending_ids_are_refused_until_written() {
        let list = Revocations::default();
        assert_eq!(list.begin_flush(), None, "nothing to write");
        let (a, b) = (new_session_id().unwrap(), new_session_id().unwrap());
        assert_eq!(list.add(a.clone()), None);
        assert_eq!(list.add(a.clone()), None, "twice is once");
        list.add(b.clone());
        let writing = list.begin_flush().unwrap();
        assert_eq!(writing, vec![a.clone(), b.clone()]);
        assert_eq!(list.begin_flush(), None, "one write at a time");
        assert!(list.contains(&a) && list.contains(&b), "refused while the write is under way");
        list.end_flush(None);
        assert!(list.contains(&a), "a failed write keeps them");
        let c = new_session_id().unwrap();
        let writing = list.begin_flush().unwrap();
        list.add(c.clone());
        list.end_flush(Some(&writing));
        assert!(!list.contains(&a) && !list.contains(&b));
        assert!(list.contains(&c), "added during the write: still pending");
    }

    #[test]
    fn the_list_is_bounded_oldest_first() {
        let list = Revocations::default();
        let first = new_session_id().unwrap();
        list.add(first.clone());
        for _ in 1..MAX_PENDING_REVOCATIONS {
            assert_eq!(list.add(new_session_id().unwrap()), None);
        }
        assert_eq!(list.add(new_session_id().unwrap()), Some(first.clone()));
        assert!(!list.contains(&first));
    }

    #[test]
    fn revoking_deletes_the_record_and_marks_the_fallback_used() {
        let settings = SessionSettings::new(&[1u8; 32]).unwrap().with_fallback_ttl(900);
        let ns = Namespace::new("edge");
        let id = new_session_id().unwrap();
        let ops = revocation_ops(std::slice::from_ref(&id), &ns, &settings);
        assert_eq!(
            ops,
            vec![
                Op::Del(vec![ns.session(&id)]),
                Op::Set {
                    key: ns.session_fallback_used(&id),
                    value: "r".into(),
                    ttl_ms: Some(960_000),
                    nx: false
                },
            ]
        );
        let off = settings.with_fallback_ttl(0);
        assert_eq!(
            revocation_ops(std::slice::from_ref(&id), &ns, &off),
            vec![Op::Del(vec![ns.session(&id)])]
        );
    }
}
