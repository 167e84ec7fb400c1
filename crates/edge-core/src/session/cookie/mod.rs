//! The session cookie: `<name>=<id>.<mac>`, `mac` = base64url(HMAC-SHA256(secret, id)).
//!
//! Reading is strict and cheap: a value is refused on its length before any work, and its MAC
//! is verified in constant time before the id is looked at, so a forged or tampered cookie never
//! reaches Redis. A valid cookie is only a *candidate*: the session exists only if Redis holds
//! its record.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

use self::set_cookie::session_cookie;
use super::id::{SessionId, SESSION_ID_CHARS};
use super::settings::SessionSettings;

mod set_cookie;

type HmacSha256 = Hmac<Sha256>;

/// Length of the MAC's text: base64url of 32 bytes, unpadded.
const MAC_CHARS: usize = 43;
/// Length of every cookie value we issue: id, `.`, MAC. Anything longer is refused unread.
pub const COOKIE_VALUE_CHARS: usize = SESSION_ID_CHARS + 1 + MAC_CHARS;

/// The longest value read as `<id>.<mac>.<sealed session>` (the fallback cookie, docs §5.11);
/// every browser keeps 4096 bytes of a cookie, so nothing we issue is longer.
pub const MAX_CARRYING_VALUE_CHARS: usize = 4096;

/// What the request's `Cookie` headers say about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieCheck {
    /// No cookie of our name: no session, nothing to clear.
    Absent,
    /// Our cookie, with a MAC that verifies: a candidate id, to be confirmed by Redis.
    Valid(SessionId),
    /// Our cookie, refused: no session, no Redis lookup. The caller may clear it.
    Invalid(InvalidCookie),
}

/// Why our cookie was refused. [`InvalidCookie::as_str`] names it in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidCookie {
    /// The value is empty (`name=`).
    Empty,
    /// The value is longer than any cookie we issue; not even parsed.
    TooLong,
    /// Not `<id>.<mac>` with a 43-character base64url MAC, or not text at all.
    Malformed,
    /// The MAC does not verify under our secret (tampered, or signed with another secret).
    BadMac,
    /// The MAC verifies but the id is not one we would issue (22 base64url chars, 128 bits):
    /// the secret is probably shared with something else.
    BadId,
    /// Several cookies of our name that do not all verify to the same id; none is trusted.
    Ambiguous,
    /// A fallback cookie whose sealed session does not open (tampered, or sealed with another
    /// key): found by the session step, never by [`read_cookie`] (docs §5.11).
    BadSeal,
}

impl InvalidCookie {
    /// Short, stable name for logs and `Cache-Status detail=`.
    pub fn as_str(&self) -> &'static str {
        match self {
            InvalidCookie::Empty => "session-cookie-empty",
            InvalidCookie::TooLong => "session-cookie-too-long",
            InvalidCookie::Malformed => "session-cookie-malformed",
            InvalidCookie::BadMac => "session-cookie-bad-mac",
            InvalidCookie::BadId => "session-cookie-bad-id",
            InvalidCookie::Ambiguous => "session-cookie-ambiguous",
            InvalidCookie::BadSeal => "session-cookie-bad-seal",
        }
    }
}

/// The cookie's value for `id`: `<id>.<mac>`.
pub fn cookie_value(id: &SessionId, settings: &SessionSettings) -> String {
    format!("{}.{}", id.as_str(), mac_text(&settings.secret, id.as_str()))
}

/// base64url(HMAC-SHA256(secret, id)). HMAC takes keys of any length, so the key step cannot
/// fail; if it ever did, the empty MAC returned never verifies.
fn mac_text(secret: &[u8], id: &str) -> String {
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(id.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Finds our cookie among every `Cookie` header (several headers, `a=b; c=d` lists) and checks
/// it. Garbage, empty values and non-UTF-8 bytes are refused or skipped, never a panic; other
/// cookies are never looked at beyond their names.
///
/// Several cookies of our name are [`CookieCheck::Valid`] only if every one verifies and names
/// the same id. Otherwise they are [`InvalidCookie::Ambiguous`] when at least one verified (we
/// cannot tell which one the browser meant, nor whether a sibling subdomain planted one), or
/// the first one's reason when none did.
pub fn read_cookie(cookie_headers: &HeaderMap, settings: &SessionSettings) -> CookieCheck {
    let mut verdict = CookieCheck::Absent;
    for piece in cookie_pieces(cookie_headers) {
        let check = match our_value(piece, &settings.cookie_name) {
            Candidate::NotOurs => continue,
            Candidate::NotText => Err(InvalidCookie::Malformed),
            Candidate::Text(value) => check_value(value, settings),
        };
        verdict = match (verdict, check) {
            (CookieCheck::Absent, Ok(id)) => CookieCheck::Valid(id),
            (CookieCheck::Absent, Err(why)) => CookieCheck::Invalid(why),
            (CookieCheck::Valid(seen), Ok(id)) if seen == id => CookieCheck::Valid(seen),
            (CookieCheck::Valid(_), _) | (CookieCheck::Invalid(_), Ok(_)) => {
                CookieCheck::Invalid(InvalidCookie::Ambiguous)
            }
            (first @ CookieCheck::Invalid(_), Err(_)) => first,
        };
    }
    verdict
}

/// Checks one value of our cookie. Order: length (free), shape, MAC (constant time), then the
/// id's shape; nothing about the id is trusted before its MAC verified.
fn check_value(value: &str, settings: &SessionSettings) -> Result<SessionId, InvalidCookie> {
    if value.is_empty() {
        return Err(InvalidCookie::Empty);
    }
    let value = match split_carried(value) {
        Some((signed, _)) => signed,
        None if value.len() > COOKIE_VALUE_CHARS => return Err(InvalidCookie::TooLong),
        None => value,
    };
    let Some((id_text, mac_part)) = value.split_once('.') else {
        return Err(InvalidCookie::Malformed);
    };
    if id_text.is_empty() || mac_part.len() != MAC_CHARS {
        return Err(InvalidCookie::Malformed);
    }
    let Ok(claimed_mac) = URL_SAFE_NO_PAD.decode(mac_part) else {
        return Err(InvalidCookie::Malformed);
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(&settings.secret) else {
        return Err(InvalidCookie::BadMac);
    };
    mac.update(id_text.as_bytes());
    if mac.verify_slice(&claimed_mac).is_err() {
        return Err(InvalidCookie::BadMac);
    }
    SessionId::from_signed_text(id_text).ok_or(InvalidCookie::BadId)
}

/// A fallback cookie's value, `<id>.<mac>.<sealed>`, split after the signed id: only the first
/// part is a cookie as [`check_value`] reads it; the rest is opened (and bound to the id) by
/// the session step.
fn split_carried(value: &str) -> Option<(&str, &str)> {
    let long = value.len() > COOKIE_VALUE_CHARS + 1 && value.len() <= MAX_CARRYING_VALUE_CHARS;
    // Byte 66 is an ASCII '.', so both split points are character boundaries.
    if long && value.as_bytes().get(COOKIE_VALUE_CHARS) == Some(&b'.') {
        Some((&value[..COOKIE_VALUE_CHARS], &value[COOKIE_VALUE_CHARS + 1..]))
    } else {
        None
    }
}

/// The sealed session a fallback cookie carries after its signed id, if our cookie is one.
/// Only meaningful once [`read_cookie`] answered [`CookieCheck::Valid`]: the first such piece.
pub fn carried_part(cookie_headers: &HeaderMap, settings: &SessionSettings) -> Option<String> {
    cookie_pieces(cookie_headers).find_map(|piece| match our_value(piece, &settings.cookie_name) {
        Candidate::Text(value) => split_carried(value).map(|(_, sealed)| sealed.to_string()),
        _ => None,
    })
}

/// `Set-Cookie` for a fallback cookie: the signed id, `.`, then `sealed` (base64url), with the
/// same attributes as [`set_cookie_header`].
pub fn carrying_cookie_header(id: &SessionId, sealed: &str, settings: &SessionSettings) -> String {
    let value = format!("{}.{sealed}", cookie_value(id, settings));
    let max_age = (!settings.expire_at_browser_close).then_some(settings.idle_ttl_s);
    session_cookie(settings, &value, max_age, false)
}

/// Every `name=value` piece of every `Cookie` header, as raw bytes, empty pieces skipped.
fn cookie_pieces(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .filter(|piece| !piece.is_empty())
}

enum Candidate<'a> {
    NotOurs,
    /// Our cookie, value as sent (no percent-decoding: we never percent-encode).
    Text(&'a str),
    /// Our name, but bytes that are not UTF-8.
    NotText,
}

/// Whether a piece is our cookie. A piece that is text is `name=value`, both trimmed, split at
/// the first `=` (as the `cookie` crate parses one; the tests hold the two to each other); a
/// piece that is not UTF-8 is ours if its name (the bytes before the first `=`, trimmed) is ours.
fn our_value<'a>(piece: &'a [u8], cookie_name: &str) -> Candidate<'a> {
    match std::str::from_utf8(piece) {
        Ok(text) => match text.split_once('=') {
            Some((name, value)) if name.trim() == cookie_name => Candidate::Text(value.trim()),
            _ => Candidate::NotOurs,
        },
        Err(_) => {
            let name = piece.split(|&b| b == b'=').next().unwrap_or(&[]).trim_ascii();
            let has_pair = piece.contains(&b'=');
            if has_pair && name == cookie_name.as_bytes() {
                Candidate::NotText
            } else {
                Candidate::NotOurs
            }
        }
    }
}

/// `Set-Cookie` value issuing `id`:
/// `<name>=<id>.<mac>; HttpOnly; SameSite=<policy>; Secure; Path=/; [Domain=<domain>;]
/// Max-Age=<idle_ttl_s>` (attribute order is the `cookie` crate's; order carries no meaning),
/// without `Max-Age` under `SESSION_EXPIRE_AT_BROWSER_CLOSE`. Send it whenever the session is
/// created, rotated or its expiry needs refreshing, so the browser's expiry slides too.
pub fn set_cookie_header(id: &SessionId, settings: &SessionSettings) -> String {
    let max_age = (!settings.expire_at_browser_close).then_some(settings.idle_ttl_s);
    session_cookie(settings, &cookie_value(id, settings), max_age, false)
}

/// `Set-Cookie` value that deletes the cookie: same name and attributes, empty value,
/// `Max-Age=0` and `Expires` at the Unix epoch (for clients that ignore `Max-Age`).
pub fn clear_cookie_header(settings: &SessionSettings) -> String {
    session_cookie(settings, "", Some(0), true)
}

/// The `Cookie` header to forward to the origin: every `Cookie` header joined into one
/// (`; `-separated, RFC 9113 §8.2.3) with our cookie removed; `None` when nothing is left.
///
/// The origin learns the session from `Edge-Session-Id`/`Edge-Session`; the signed cookie is a
/// bearer credential it has no use for, and keeping it out of the origin keeps it out of the
/// origin's logs. Other pieces are forwarded byte for byte, garbage included.
pub fn cookie_header_without_session(
    cookie_headers: &HeaderMap,
    settings: &SessionSettings,
) -> Option<HeaderValue> {
    let mut joined: Vec<u8> = Vec::new();
    for piece in cookie_pieces(cookie_headers) {
        if !matches!(our_value(piece, &settings.cookie_name), Candidate::NotOurs) {
            continue;
        }
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(piece);
    }
    if joined.is_empty() {
        return None;
    }
    // Every byte came from a valid header value, so this cannot fail; if it did, forwarding no
    // cookie at all is the side that leaks nothing.
    HeaderValue::from_bytes(&joined).ok()
}

#[cfg(test)]
mod tests;
