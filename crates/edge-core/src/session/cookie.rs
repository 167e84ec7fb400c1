//! The session cookie: `<name>=<id>.<mac>`, `mac` = base64url(HMAC-SHA256(secret, id)).
//!
//! Reading is strict and cheap: a value is refused on its length before any work, and its MAC
//! is verified in constant time before the id is looked at, so a forged or tampered cookie never
//! reaches Redis. A valid cookie is only a *candidate*: the session exists only if Redis holds
//! its record.

use ::cookie::time::{Duration, OffsetDateTime};
use ::cookie::{Cookie, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

use super::id::{SessionId, SESSION_ID_CHARS};
use super::settings::{SameSitePolicy, SessionSettings};

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
    session_cookie(settings, value, max_age).to_string()
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

/// Whether a piece is our cookie. Pieces that are text go through the `cookie` crate; a piece
/// that is not UTF-8 is ours if its name (the bytes before the first `=`, trimmed) is ours.
fn our_value<'a>(piece: &'a [u8], cookie_name: &str) -> Candidate<'a> {
    match std::str::from_utf8(piece) {
        Ok(text) => match Cookie::parse(text) {
            Ok(cookie) if cookie.name_raw() == Some(cookie_name) => {
                Candidate::Text(cookie.value_raw().unwrap_or(""))
            }
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
    session_cookie(settings, cookie_value(id, settings), max_age).to_string()
}

/// `Set-Cookie` value that deletes the cookie: same name and attributes, empty value,
/// `Max-Age=0` and `Expires` at the Unix epoch (for clients that ignore `Max-Age`).
pub fn clear_cookie_header(settings: &SessionSettings) -> String {
    let cookie = session_cookie(settings, String::new(), Some(0));
    let mut expired = cookie.clone();
    expired.set_expires(OffsetDateTime::UNIX_EPOCH);
    // Only the date can fail to format, and a fixed date cannot; without it Max-Age=0 still
    // deletes the cookie.
    let mut out = String::new();
    match std::fmt::write(&mut out, format_args!("{expired}")) {
        Ok(()) => out,
        Err(_) => cookie.to_string(),
    }
}

fn session_cookie(settings: &SessionSettings, value: String, max_age_s: Option<u64>) -> Cookie<'static> {
    let same_site = match settings.same_site {
        SameSitePolicy::Lax => SameSite::Lax,
        SameSitePolicy::Strict => SameSite::Strict,
        SameSitePolicy::None => SameSite::None,
    };
    let mut cookie = Cookie::build((settings.cookie_name.clone(), value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(same_site)
        .build();
    if let Some(seconds) = max_age_s {
        cookie.set_max_age(Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)));
    }
    if let Some(domain) = &settings.domain {
        cookie.set_domain(domain.clone());
    }
    cookie
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
mod tests {
    use super::*;
    use crate::session::new_session_id;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

    fn settings() -> SessionSettings {
        SessionSettings::new(SECRET).unwrap()
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn check(values: &[&str]) -> CookieCheck {
        let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        read_cookie(&headers(&bytes), &settings())
    }

    fn signed(id: &SessionId) -> String {
        format!("__Host-session={}", cookie_value(id, &settings()))
    }

    fn invalid(why: InvalidCookie) -> CookieCheck {
        CookieCheck::Invalid(why)
    }

    #[test]
    fn set_cookie_attributes_are_exact() {
        let s = settings();
        let id = new_session_id().unwrap();
        let header = set_cookie_header(&id, &s);
        assert_eq!(
            header,
            format!(
                "__Host-session={}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=1209600",
                cookie_value(&id, &s)
            )
        );
        let parsed = Cookie::parse(header.as_str()).unwrap();
        assert_eq!(parsed.name(), "__Host-session");
        assert_eq!(parsed.value(), cookie_value(&id, &s));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.same_site(), Some(SameSite::Lax));
        assert_eq!(parsed.max_age(), Some(Duration::seconds(1_209_600)));
        assert_eq!(parsed.domain(), None, "__Host- cookies must not carry Domain");
        assert_eq!(parsed.expires(), None);
    }

    #[test]
    fn set_cookie_uses_the_configured_name_and_idle_ttl() {
        let s = settings().with_cookie_name("sid").unwrap().with_ttls(300, 600).unwrap();
        let id = new_session_id().unwrap();
        assert_eq!(
            set_cookie_header(&id, &s),
            format!("sid={}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=300", cookie_value(&id, &s))
        );
        let huge = SessionSettings { idle_ttl_s: u64::MAX, ..s };
        assert!(set_cookie_header(&id, &huge).ends_with(&format!("Max-Age={}", i64::MAX)));
    }

    #[test]
    fn samesite_domain_and_browser_close_shape_the_cookie() {
        let id = new_session_id().unwrap();
        let s = settings()
            .with_cookie_name("__Secure-session")
            .unwrap()
            .with_same_site("None")
            .unwrap()
            .with_domain("example.com")
            .unwrap();
        assert_eq!(
            set_cookie_header(&id, &s),
            format!(
                "__Secure-session={}; HttpOnly; SameSite=None; Secure; Path=/; Domain=example.com; Max-Age=1209600",
                cookie_value(&id, &s)
            )
        );
        assert_eq!(
            clear_cookie_header(&s),
            "__Secure-session=; HttpOnly; SameSite=None; Secure; Path=/; Domain=example.com; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "the clearing cookie names the same Domain, or the browser would keep the first"
        );
        let strict = settings().with_same_site("strict").unwrap().with_lifetime_model(true, false);
        assert_eq!(
            set_cookie_header(&id, &strict),
            format!(
                "__Host-session={}; HttpOnly; SameSite=Strict; Secure; Path=/",
                cookie_value(&id, &strict)
            ),
            "expire at browser close: no Max-Age, no Expires"
        );
        assert!(clear_cookie_header(&strict).contains("Max-Age=0"), "clearing still expires it");
        // The fallback cookie of a store outage follows the same settings.
        assert_eq!(
            carrying_cookie_header(&id, "c2VhbGVk", &strict),
            format!(
                "__Host-session={}.c2VhbGVk; HttpOnly; SameSite=Strict; Secure; Path=/",
                cookie_value(&id, &strict)
            )
        );
        assert!(carrying_cookie_header(&id, "c2VhbGVk", &s).contains("Domain=example.com; Max-Age=1209600"));
    }

    #[test]
    fn clear_cookie_is_exact() {
        assert_eq!(
            clear_cookie_header(&settings()),
            "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn sign_then_read_round_trips() {
        let id = new_session_id().unwrap();
        let value = cookie_value(&id, &settings());
        assert_eq!(value.len(), COOKIE_VALUE_CHARS);
        let (id_part, mac_part) = value.split_once('.').unwrap();
        assert_eq!(id_part, id.as_str());
        assert_eq!(URL_SAFE_NO_PAD.decode(mac_part).unwrap().len(), 32);
        assert_eq!(check(&[&signed(&id)]), CookieCheck::Valid(id.clone()));
        // Whitespace around the pair is not part of it.
        assert_eq!(check(&[&format!("  {}  ", signed(&id))]), CookieCheck::Valid(id));
    }

    #[test]
    fn mac_is_hmac_sha256_of_the_id() {
        // RFC 4231 test case 2 checks the construction (its key is short, hence `mac_text`).
        let mac = URL_SAFE_NO_PAD.decode(mac_text(b"Jefe", "what do ya want for nothing?")).unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn tampered_id_or_mac_is_bad_mac() {
        let id = new_session_id().unwrap();
        let value = cookie_value(&id, &settings());
        let (id_part, mac_part) = value.split_once('.').unwrap();
        let other_id = new_session_id().unwrap();
        // Another well-formed id under the first id's MAC: the classic swap.
        assert_eq!(
            check(&[&format!("__Host-session={}.{mac_part}", other_id.as_str())]),
            invalid(InvalidCookie::BadMac)
        );
        // One character of the id changed.
        let mut tampered = id_part.as_bytes().to_vec();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            check(&[&format!("__Host-session={tampered}.{mac_part}")]),
            invalid(InvalidCookie::BadMac)
        );
        // One character of the MAC changed (keeping it canonical base64url).
        let mut mac = mac_part.as_bytes().to_vec();
        mac[0] = if mac[0] == b'A' { b'B' } else { b'A' };
        let mac = String::from_utf8(mac).unwrap();
        assert_eq!(check(&[&format!("__Host-session={id_part}.{mac}")]), invalid(InvalidCookie::BadMac));
    }

    #[test]
    fn cookie_signed_with_another_secret_is_bad_mac() {
        let other = SessionSettings::new(b"another-secret-another-secret-another").unwrap();
        let id = new_session_id().unwrap();
        let forged = format!("__Host-session={}", cookie_value(&id, &other));
        assert_eq!(check(&[&forged]), invalid(InvalidCookie::BadMac));
    }

    #[test]
    fn a_signed_id_we_would_not_issue_is_bad_id() {
        // Only someone holding the secret can get here: the MAC verifies, the id is wrong.
        for id in ["short", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAA+/"] {
            let value = format!("{id}.{}", mac_text(SECRET, id));
            assert_eq!(check(&[&format!("__Host-session={value}")]), invalid(InvalidCookie::BadId), "{id}");
        }
    }

    #[test]
    fn truncated_values_are_refused() {
        let id = new_session_id().unwrap();
        let value = cookie_value(&id, &settings());
        for cut in 1..value.len() {
            let got = check(&[&format!("__Host-session={}", &value[..cut])]);
            assert!(
                matches!(got, CookieCheck::Invalid(InvalidCookie::Malformed | InvalidCookie::BadMac)),
                "cut at {cut}: {got:?}"
            );
        }
        assert_eq!(check(&[&format!("__Host-session={}", id.as_str())]), invalid(InvalidCookie::Malformed));
    }

    #[test]
    fn a_carrying_cookie_is_its_signed_id_then_the_sealed_part() {
        let s = settings();
        let id = new_session_id().unwrap();
        let line = carrying_cookie_header(&id, "c2VhbGVk", &s);
        let pair = line.split(';').next().unwrap().to_string();
        assert_eq!(check(&[&pair]), CookieCheck::Valid(id.clone()));
        assert_eq!(carried_part(&headers(&[pair.as_bytes()]), &s).as_deref(), Some("c2VhbGVk"));
        // A short cookie carries nothing; the id part is still checked first.
        assert_eq!(carried_part(&headers(&[signed(&id).as_bytes()]), &s), None);
        let forged = format!("__Host-session={}.c2VhbGVk", cookie_value(&id, &s).replace('.', "x"));
        assert!(matches!(check(&[&forged]), CookieCheck::Invalid(_)));
        let other = new_session_id().unwrap();
        let spliced = format!("__Host-session={}.{}.c2VhbGVk", id.as_str(), mac_text(SECRET, other.as_str()));
        assert_eq!(check(&[&spliced]), invalid(InvalidCookie::BadMac));
        let too_long = format!("{pair}{}", "A".repeat(MAX_CARRYING_VALUE_CHARS));
        assert_eq!(check(&[&too_long]), invalid(InvalidCookie::TooLong));
    }

    #[test]
    fn oversized_values_are_refused_unread() {
        let id = new_session_id().unwrap();
        let long = format!("{}{}", cookie_value(&id, &settings()), "A".repeat(10 * 1024));
        assert_eq!(check(&[&format!("__Host-session={long}")]), invalid(InvalidCookie::TooLong));
        let one_more = format!("{}A", cookie_value(&id, &settings()));
        assert_eq!(check(&[&format!("__Host-session={one_more}")]), invalid(InvalidCookie::TooLong));
    }

    #[test]
    fn garbage_is_refused_or_ignored_without_panicking() {
        let cases: &[(&str, CookieCheck)] = &[
            ("", CookieCheck::Absent),
            (";;;", CookieCheck::Absent),
            ("=", CookieCheck::Absent),
            ("__Host-session", CookieCheck::Absent),
            ("__host-session=x.y", CookieCheck::Absent), // names are case-sensitive
            ("__Host-session=", invalid(InvalidCookie::Empty)),
            ("__Host-session=.", invalid(InvalidCookie::Malformed)),
            ("__Host-session=abc", invalid(InvalidCookie::Malformed)),
            ("__Host-session=a.b.c", invalid(InvalidCookie::Malformed)),
            ("__Host-session=\"quoted.value\"", invalid(InvalidCookie::Malformed)),
            ("__Host-session=héllo.wörld", invalid(InvalidCookie::Malformed)),
            ("__Host-session=🍪🍪🍪", invalid(InvalidCookie::Malformed)),
            ("__Host-session==", invalid(InvalidCookie::Malformed)),
            (
                "__Host-session=AAAAAAAAAAAAAAAAAAAAAA.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
                invalid(InvalidCookie::Malformed),
            ),
            (
                "__Host-session=.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                invalid(InvalidCookie::Malformed),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(&check(&[header]), want, "{header:?}");
        }
        // Non-UTF-8 bytes: in our cookie they make it malformed; elsewhere they are skipped.
        let s = settings();
        assert_eq!(
            read_cookie(&headers(&[b"__Host-session=\xff\xfe.abc"]), &s),
            invalid(InvalidCookie::Malformed)
        );
        let id = new_session_id().unwrap();
        let mut mixed = b"junk=\xc3\xff; ".to_vec();
        mixed.extend_from_slice(signed(&id).as_bytes());
        mixed.extend_from_slice(b"; \xfe=\xfe; more=\x80");
        assert_eq!(read_cookie(&headers(&[&mixed]), &s), CookieCheck::Valid(id));
        assert_eq!(read_cookie(&headers(&[b"\xff\xff\xff"]), &s), CookieCheck::Absent);
        assert_eq!(read_cookie(&HeaderMap::new(), &s), CookieCheck::Absent);
    }

    #[test]
    fn our_cookie_is_found_among_many() {
        let id = new_session_id().unwrap();
        let ours = signed(&id);
        let valid = CookieCheck::Valid(id.clone());
        assert_eq!(check(&[&format!("a=1; b=2; {ours}; c=3")]), valid);
        assert_eq!(check(&[&format!("a=1;{ours};c")]), valid);
        assert_eq!(check(&["a=1; b=2", &ours, "c=3"]), valid);
        assert_eq!(check(&["session=x; __Host-sessionx=y; _Host-session=z", &ours]), valid);
        let many: Vec<String> = (0..200).map(|i| format!("c{i}=v{i}")).collect();
        assert_eq!(check(&[&format!("{}; {ours}", many.join("; "))]), valid);
    }

    #[test]
    fn two_of_ours_must_agree() {
        let id = new_session_id().unwrap();
        let other = new_session_id().unwrap();
        let ours = signed(&id);
        // The same valid cookie twice (one header or two) is fine.
        assert_eq!(check(&[&format!("{ours}; {ours}")]), CookieCheck::Valid(id.clone()));
        assert_eq!(check(&[&ours, &ours]), CookieCheck::Valid(id.clone()));
        // Two different valid ids: which did the browser mean? Neither.
        assert_eq!(check(&[&ours, &signed(&other)]), invalid(InvalidCookie::Ambiguous));
        // A valid one next to a bad one, in either order.
        assert_eq!(check(&[&format!("{ours}; __Host-session=x.y")]), invalid(InvalidCookie::Ambiguous));
        assert_eq!(check(&[&format!("__Host-session=; {ours}")]), invalid(InvalidCookie::Ambiguous));
        // Only bad ones: the first reason.
        assert_eq!(
            check(&["__Host-session=", &format!("__Host-session={}", "A".repeat(100))]),
            invalid(InvalidCookie::Empty)
        );
    }

    #[test]
    fn forwarded_cookie_header_loses_only_our_cookie() {
        let s = settings();
        let id = new_session_id().unwrap();
        let ours = signed(&id);
        let map = headers(&[format!("a=1; {ours};b=2").as_bytes(), b"c=3", ours.as_bytes()]);
        assert_eq!(
            cookie_header_without_session(&map, &s).unwrap(),
            HeaderValue::from_static("a=1; b=2; c=3")
        );
        assert_eq!(cookie_header_without_session(&headers(&[ours.as_bytes()]), &s), None);
        assert_eq!(cookie_header_without_session(&HeaderMap::new(), &s), None);
        // Bad values of ours go too; other people's garbage is forwarded untouched.
        let map = headers(&[b"__Host-session=\xff; x=\xfe\xfd; __Host-session=junk; y"]);
        assert_eq!(cookie_header_without_session(&map, &s).unwrap().as_bytes(), b"x=\xfe\xfd; y");
    }
}
