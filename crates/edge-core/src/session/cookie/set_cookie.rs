//! The session cookie's `Set-Cookie` line, written by hand: the `cookie` crate did this before,
//! and with it the `time` crate (its date parsing and formatting), about 60 KB of the worker's
//! wasm for one fixed date (issue 11). The attributes and their order are the crate's, and the
//! tests parse what is written here with the crate.

use std::fmt::Write as _;

use super::super::settings::{SameSitePolicy, SessionSettings};

/// `Expires` of a clearing cookie: the Unix epoch, in the crate's format (RFC 1123 with `GMT`).
const EPOCH: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// `<name>=<value>; HttpOnly; SameSite=<policy>; Secure; Path=/[; Domain=<domain>]
/// [; Max-Age=<s>][; Expires=<epoch>]`. `value` is written as it is: every value we issue is
/// base64url and dots, nothing to encode.
pub(super) fn session_cookie(
    settings: &SessionSettings,
    value: &str,
    max_age_s: Option<u64>,
    expired: bool,
) -> String {
    let same_site = match settings.same_site {
        SameSitePolicy::Lax => "Lax",
        SameSitePolicy::Strict => "Strict",
        SameSitePolicy::None => "None",
    };
    let mut line = String::with_capacity(settings.cookie_name.len() + value.len() + 96);
    line.push_str(&settings.cookie_name);
    line.push('=');
    line.push_str(value);
    line.push_str("; HttpOnly; SameSite=");
    line.push_str(same_site);
    line.push_str("; Secure; Path=/");
    if let Some(domain) = &settings.domain {
        line.push_str("; Domain=");
        // As the crate wrote it: one leading dot dropped (settings never keep one anyway).
        line.push_str(domain.strip_prefix('.').unwrap_or(domain));
    }
    if let Some(seconds) = max_age_s {
        // The crate's Max-Age was an i64 of seconds; larger settings were written as i64::MAX.
        let seconds = seconds.min(i64::MAX as u64);
        // Writing to a String cannot fail.
        let _ = write!(line, "; Max-Age={seconds}");
    }
    if expired {
        line.push_str("; Expires=");
        line.push_str(EPOCH);
    }
    line
}
