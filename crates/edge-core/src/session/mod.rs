//! Edge sessions: a signed cookie names a session whose JSON data lives in Redis.
//!
//! The life of a session, in the order the worker uses these pieces:
//! - `settings`: `SESSION_*` configuration, validated once ([`SessionSettings`]).
//! - `cookie`: [`read_cookie`] turns the request's `Cookie` headers into a [`CookieCheck`];
//!   the MAC is verified (constant time) before anything else, so a forged cookie never costs
//!   a Redis lookup. A valid cookie only names a *candidate*: the session exists only if Redis
//!   has its record ([`crate::Namespace::session`]).
//! - `record`: the stored value, [`SessionRecord`] (`{"c":created_ms,"d":{...}}`).
//! - `ttl`: the Redis TTL slides on use ([`should_slide`]) and never passes the absolute
//!   lifetime ([`ttl_ms`]).
//! - `forward`: what the origin sees (`Edge-Session-Id`, `Edge-Session`), and the removal of
//!   client-sent `Edge-Session*` headers.
//! - `fallback`, `outage`, `revocations`: sessions through a store outage (docs §5.11, §5.12):
//!   the session sealed in the cookie, written back once the store answers; destroys kept in
//!   the isolate until they can be written.
//! - `directive`: how the origin steers the session (`Edge-Session-Set`, `-Rotate`,
//!   `-Destroy`), and the removal of those headers before the client sees the response.
//!
//! Nothing here does I/O or reads a clock: time is an argument (ms since the Unix epoch).
//! Randomness comes from the platform CSPRNG through `getrandom`.

mod cookie;
mod directive;
pub mod fallback;
mod flow;
pub use flow::*;
mod forward;
mod id;
mod outage;
mod record;
mod revocations;
mod settings;
mod ttl;

pub use self::cookie::{
    carried_part, carrying_cookie_header, clear_cookie_header, cookie_header_without_session, cookie_value,
    read_cookie, set_cookie_header, CookieCheck, InvalidCookie, COOKIE_VALUE_CHARS, MAX_CARRYING_VALUE_CHARS,
};
pub use self::directive::{
    read_directives, strip_directive_headers, DirectiveError, SessionDirective, EDGE_SESSION_DESTROY,
    EDGE_SESSION_ROTATE, EDGE_SESSION_SET,
};
pub use self::fallback::CarriedSession;
pub use self::forward::{
    forward_headers, strip_client_session_headers, EDGE_SESSION, EDGE_SESSION_ID, EDGE_SESSION_STATUS,
};
pub use self::id::{new_session_id, SessionId};
pub use self::outage::FallbackPlan;
pub use self::record::SessionRecord;
pub use self::revocations::{fallback_marker_ttl_ms, revocation_ops, Revocations};
pub use self::settings::{SameSitePolicy, SessionConfigError, SessionSettings};
pub use self::ttl::{cookie_needs_refresh, should_slide, slide_slack_ms, ttl_ms};

use std::fmt;

/// A session operation that failed at run time (as opposed to [`SessionConfigError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The platform CSPRNG did not answer; no session id can be issued.
    RandomUnavailable,
    /// A stored record did not decode. The reason never quotes the record (it holds user data).
    UndecodableRecord(&'static str),
}

impl SessionError {
    /// Short, stable name for logs and `Cache-Status detail=`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionError::RandomUnavailable => "session-random-unavailable",
            SessionError::UndecodableRecord(_) => "session-record-undecodable",
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::RandomUnavailable => {
                f.write_str("the platform random number generator is unavailable")
            }
            SessionError::UndecodableRecord(why) => write!(f, "session record undecodable: {why}"),
        }
    }
}

impl std::error::Error for SessionError {}
