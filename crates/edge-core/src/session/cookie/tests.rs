//! The session cookie's tests; `cookie` (the crate, a dev-dependency) cross-checks our
//! reading and writing.

use ::cookie::time::Duration;
use ::cookie::{Cookie, SameSite};
use proptest::prelude::*;

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
        format!("__Host-session={}; HttpOnly; SameSite=Strict; Secure; Path=/", cookie_value(&id, &strict)),
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
    assert_eq!(check(&[&format!("__Host-session={tampered}.{mac_part}")]), invalid(InvalidCookie::BadMac));
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
        ("__Host-session=.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", invalid(InvalidCookie::Malformed)),
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
    assert_eq!(cookie_header_without_session(&map, &s).unwrap(), HeaderValue::from_static("a=1; b=2; c=3"));
    assert_eq!(cookie_header_without_session(&headers(&[ours.as_bytes()]), &s), None);
    assert_eq!(cookie_header_without_session(&HeaderMap::new(), &s), None);
    // Bad values of ours go too; other people's garbage is forwarded untouched.
    let map = headers(&[b"__Host-session=\xff; x=\xfe\xfd; __Host-session=junk; y"]);
    assert_eq!(cookie_header_without_session(&map, &s).unwrap().as_bytes(), b"x=\xfe\xfd; y");
}

/// What the `cookie` crate (which read our cookie before) makes of one piece.
fn crate_reading<'a>(piece: &'a str, name: &str) -> Option<&'a str> {
    match Cookie::parse(piece) {
        Ok(cookie) if cookie.name_raw() == Some(name) => Some(cookie.value_raw().unwrap_or("")),
        _ => None,
    }
}

fn our_reading<'a>(piece: &'a str, name: &str) -> Option<&'a str> {
    match our_value(piece.as_bytes(), name) {
        Candidate::Text(value) => Some(value),
        Candidate::NotOurs => None,
        Candidate::NotText => unreachable!("a &str is text"),
    }
}

#[test]
fn pieces_read_as_the_cookie_crate_reads_them() {
    let name = "__Host-session";
    for piece in [
        "__Host-session=abc",
        "__Host-session = abc ",
        "__Host-session\u{a0}=\u{2003}abc\u{3000}",
        "__Host-session==",
        "__Host-session=a=b",
        "__Host-session=\"quoted\"",
        "__Host-session=",
        "__Host-session",
        "=__Host-session",
        " =x",
        "__host-session=x",
        "__Host-sessionx=y",
    ] {
        assert_eq!(our_reading(piece, name), crate_reading(piece, name), "{piece:?}");
    }
}

proptest! {
    #[test]
    fn any_piece_reads_as_the_cookie_crate_reads_it(
        before in "[ \t\u{a0}\u{2003}]{0,2}",
        name in "(__Host-session|__Host-sessio|s|=|\u{e9})",
        gap in "[ \t\u{a0}]{0,2}",
        eq in "(=|==|)",
        value in "[ -~\u{a0}-\u{ff}\u{3000}]{0,12}",
    ) {
        let piece = format!("{before}{name}{gap}{eq}{value}");
        // Pieces come trimmed of ASCII whitespace (`cookie_pieces`), never with a `;`.
        let piece = piece.trim_ascii().replace(';', "");
        prop_assert_eq!(our_reading(&piece, "__Host-session"), crate_reading(&piece, "__Host-session"));
    }
}

#[test]
fn set_cookie_lines_are_what_the_cookie_crate_reads() {
    let id = new_session_id().unwrap();
    let base = settings();
    let variants = [
        base.clone(),
        base.clone().with_same_site("Strict").unwrap(),
        base.clone()
            .with_cookie_name("sid")
            .unwrap()
            .with_same_site("None")
            .unwrap()
            .with_domain("a.example")
            .unwrap(),
        base.clone().with_lifetime_model(true, false),
    ];
    for s in variants {
        for line in
            [set_cookie_header(&id, &s), clear_cookie_header(&s), carrying_cookie_header(&id, "c2Vh", &s)]
        {
            let parsed = Cookie::parse(line.as_str()).unwrap();
            assert_eq!(parsed.name(), s.cookie_name, "{line}");
            assert_eq!(parsed.http_only(), Some(true), "{line}");
            assert_eq!(parsed.secure(), Some(true), "{line}");
            assert_eq!(parsed.path(), Some("/"), "{line}");
            assert_eq!(parsed.domain(), s.domain.as_deref(), "{line}");
            let same_site = match s.same_site {
                crate::session::settings::SameSitePolicy::Lax => SameSite::Lax,
                crate::session::settings::SameSitePolicy::Strict => SameSite::Strict,
                crate::session::settings::SameSitePolicy::None => SameSite::None,
            };
            assert_eq!(parsed.same_site(), Some(same_site), "{line}");
            // The crate writes the same line back: same attributes, same order.
            assert_eq!(parsed.to_string(), line);
        }
        let cleared = Cookie::parse(clear_cookie_header(&s)).unwrap();
        assert_eq!(cleared.value(), "");
        assert_eq!(cleared.max_age(), Some(Duration::ZERO));
        assert_eq!(cleared.expires_datetime(), Some(::cookie::time::OffsetDateTime::UNIX_EPOCH));
    }
}
