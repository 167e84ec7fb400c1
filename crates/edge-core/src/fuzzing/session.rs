//! The session cookie targets: `session_cookie` (the signed id) and `session_fallback` (the
//! fallback cookie's carried part, its sealed session and the cookie attributes, docs §5.11).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{HeaderValue, COOKIE};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::lines;
use crate::session::fallback::{
    associated_data, decode_sealed, derive_key, encode_sealed, fallback_set_cookie, MAX_SET_COOKIE_BYTES,
    NONCE_BYTES,
};
use crate::session::{
    carried_part, carrying_cookie_header, clear_cookie_header, cookie_header_without_session, cookie_value,
    read_cookie, set_cookie_header, CarriedSession, CookieCheck, SameSitePolicy, SessionId, SessionRecord,
    SessionSettings, COOKIE_VALUE_CHARS, MAX_CARRYING_VALUE_CHARS,
};

const FUZZ_SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret!";

/// The session cookie reader and verifier.
///
/// Input: line 1 is the secret (a fixed one when shorter than 32 bytes), line 2 the cookie name
/// (the default when invalid), every further line one `Cookie` header. In a header, a piece
/// `name=~text` becomes `name=text.<MAC of text>`, signed with the secret: the fuzzer cannot
/// forge MACs, and this lets it reach the checks that run after the MAC verified.
pub fn session_cookie(data: &[u8]) {
    let mut parts = lines(data);
    let secret = parts.next().filter(|secret| secret.len() >= 32).unwrap_or(FUZZ_SECRET);
    let Ok(mut settings) = SessionSettings::new(secret) else {
        panic!("a 32-byte secret is refused");
    };
    if let Some(Ok(named)) = parts
        .next()
        .and_then(|name| std::str::from_utf8(name).ok())
        .map(|name| settings.clone().with_cookie_name(name))
    {
        settings = named;
    }
    let mut headers = HeaderMap::new();
    for line in parts {
        if let Ok(value) = HeaderValue::from_bytes(&sign_marked(line, secret)) {
            headers.append(COOKIE, value);
        }
    }

    let check = read_cookie(&headers, &settings);
    if let CookieCheck::Valid(id) = &check {
        assert!(
            id.as_str().len() == 22
                && id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "accepted id {id:?}"
        );
        // The cookie we would issue for that id reads back as that id.
        let mut issued = HeaderMap::new();
        let value = format!("{}={}", settings.cookie_name, cookie_value(id, &settings));
        issued.append(COOKIE, HeaderValue::from_str(&value).expect("a cookie we issue is a header value"));
        assert_eq!(read_cookie(&issued, &settings), check);
        let _ = set_cookie_header(id, &settings);
    }
    let _ = clear_cookie_header(&settings);
    // What the origin receives carries no cookie of our name, valid or not.
    if let Some(forwarded) = cookie_header_without_session(&headers, &settings) {
        let mut again = HeaderMap::new();
        again.append(COOKIE, forwarded);
        assert_eq!(read_cookie(&again, &settings), CookieCheck::Absent, "our cookie forwarded");
    }
}

/// Replaces each `;`-separated piece `name=~text` of `line` with `name=text.<MAC(text)>`.
fn sign_marked(line: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 48);
    for (index, piece) in line.split(|&b| b == b';').enumerate() {
        if index > 0 {
            out.push(b';');
        }
        match piece.windows(2).position(|w| w == b"=~") {
            Some(at) => {
                let text = &piece[at + 2..];
                out.extend_from_slice(&piece[..=at]);
                out.extend_from_slice(text);
                out.push(b'.');
                out.extend_from_slice(mac_of(text, secret).as_bytes());
            }
            None => out.extend_from_slice(piece),
        }
    }
    out
}

/// The platform's AES-256-GCM ([`crate::Host::seal`], [`crate::Host::open`]): WebCrypto in the
/// worker. The fuzz target and the corpus replay pass RustCrypto's `aes-gcm`, which edge-core
/// itself does not depend on (the wasm carries no AES).
pub trait FallbackAead {
    fn seal(&self, key: &[u8; 32], nonce: &[u8; NONCE_BYTES], aad: &[u8], plaintext: &[u8]) -> Vec<u8>;
    /// `None` when the ciphertext, the nonce, `aad` or the key differ from the sealing's.
    fn open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Vec<u8>>;
}

/// Ids that no `^` piece derives in practice, for opening under the wrong id.
const OTHER_IDS: [&str; 2] = ["AAAAAAAAAAAAAAAAAAAAAA", "QQQQQQQQQQQQQQQQQQQQQQ"];

/// The fallback cookie, `<id>.<mac>.<sealed>` (docs §5.11): finding the carried part, decoding
/// the sealed part's framing, reading what it opens to, and the attributes of every cookie we
/// issue under `SESSION_COOKIE_SAMESITE`, `SESSION_COOKIE_DOMAIN` and
/// `SESSION_EXPIRE_AT_BROWSER_CLOSE`.
///
/// Input: byte 0 picks settings (bits 0-1 SameSite, bit 2 expire at browser close, bit 3 save
/// every request, bits 4-5 `SESSION_FALLBACK_TTL` of 0, 1 s, 900 s or the largest, bit 6 the
/// largest idle TTL); then line 1 is the plaintext to seal, line 2 `<cookie name> <domain>`
/// (each ignored when refused), every further line a `Cookie` header. In a header, a piece
/// `name=~ID.rest` becomes `name=ID.<MAC of ID>.rest`, and `name=^seed.rest` a fallback cookie
/// that seals line 1 under an id derived from `seed`, with `rest` appended to the sealed part.
/// The fuzzer cannot forge a MAC or a GCM tag: this lets it reach what runs after them.
///
/// Properties: what opens is exactly what was sealed; the sealed part has one spelling; a
/// sealed part with any byte changed, moved to another id or opened with another secret's key
/// does not open; the carried session re-encodes to itself and is trusted exactly inside its
/// window; the fallback cookie we would issue reads back as the same id and sealed part; every
/// cookie we issue (session, fallback, clearing) parses back with our name, `Path=/`, `Secure`,
/// `HttpOnly`, the SameSite and Domain configured, and the clearing one deletes the same cookie.
pub fn session_fallback(data: &[u8], aead: &dyn FallbackAead) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut parts = lines(rest);
    let plaintext = parts.next().unwrap_or_default();
    let settings = fallback_settings(flags, parts.next().unwrap_or_default());
    check_issued_cookies(&settings);
    let expected = CarriedSession::from_plaintext(plaintext);
    if let Some(carried) = &expected {
        check_carried(carried, &settings);
    }

    let mut headers = HeaderMap::new();
    for line in parts {
        if let Ok(value) = HeaderValue::from_bytes(&build_marked(line, plaintext, &settings, aead)) {
            headers.append(COOKIE, value);
        }
    }
    let check = read_cookie(&headers, &settings);
    let sealed = carried_part(&headers, &settings);
    if let Some(sealed) = &sealed {
        assert!(!sealed.is_empty(), "an empty carried part");
        assert!(
            sealed.len() < MAX_CARRYING_VALUE_CHARS - COOKIE_VALUE_CHARS,
            "carried part of {}",
            sealed.len()
        );
    }
    if let Some(forwarded) = cookie_header_without_session(&headers, &settings) {
        let mut again = HeaderMap::new();
        again.append(COOKIE, forwarded);
        assert_eq!(read_cookie(&again, &settings), CookieCheck::Absent, "our cookie forwarded");
    }
    // What the session step does (edge/session_step.rs): only a valid id's sealed part is opened.
    let (CookieCheck::Valid(id), Some(sealed)) = (&check, &sealed) else { return };
    let Some((nonce, ciphertext)) = decode_sealed(sealed) else { return };
    assert_eq!(&encode_sealed(&nonce, &ciphertext), sealed, "a sealed part with two spellings");
    let key = &settings.fallback_key;
    let Some(opened) = aead.open(key, &nonce, &associated_data(id), &ciphertext) else { return };
    assert_eq!(opened, plaintext, "opened to something never sealed");
    assert_eq!(CarriedSession::from_plaintext(&opened), expected);

    let mut framed = nonce.to_vec();
    framed.extend_from_slice(&ciphertext);
    let last = framed.len() - 1;
    for at in [0, NONCE_BYTES - 1, NONCE_BYTES, framed.len() / 2, last, usize::from(flags) * 7 % framed.len()]
    {
        let mut tampered = framed.clone();
        tampered[at] ^= 1 << (at % 8);
        let Some((nonce, ciphertext)) = decode_sealed(&URL_SAFE_NO_PAD.encode(&tampered)) else {
            panic!("a tampered sealed part of the same length does not decode");
        };
        assert_eq!(aead.open(key, &nonce, &associated_data(id), &ciphertext), None, "byte {at} changed");
    }
    for other in OTHER_IDS.iter().filter_map(|text| SessionId::from_signed_text(text)).filter(|o| o != id) {
        assert_eq!(aead.open(key, &nonce, &associated_data(&other), &ciphertext), None, "moved to {other:?}");
    }
    let other_key = derive_key(b"another-secret-another-secret-another!");
    assert_eq!(aead.open(&other_key, &nonce, &associated_data(id), &ciphertext), None, "another key");

    // The fallback cookie we would issue again reads back as this id and sealed part.
    if let Some(line) = fallback_set_cookie(id, &nonce, &ciphertext, &settings) {
        assert!(line.len() <= MAX_SET_COOKIE_BYTES);
        let Some(pair) = line.split(';').next().and_then(|pair| HeaderValue::from_str(pair).ok()) else {
            panic!("our Set-Cookie {line:?} is not a Cookie header");
        };
        let mut issued = HeaderMap::new();
        issued.append(COOKIE, pair);
        assert_eq!(read_cookie(&issued, &settings), check);
        assert_eq!(carried_part(&issued, &settings).as_ref(), Some(sealed));
    }
}

fn fallback_settings(flags: u8, named: &[u8]) -> SessionSettings {
    let Ok(mut settings) = SessionSettings::new(FUZZ_SECRET) else {
        panic!("a 32-byte secret is refused");
    };
    let same_site = ["Lax", "Strict", "None", " sTrIcT "][usize::from(flags & 3)];
    if let Ok(with) = settings.clone().with_same_site(same_site) {
        settings = with;
    }
    settings = settings.with_lifetime_model(flags & 4 != 0, flags & 8 != 0);
    settings = settings.with_fallback_ttl([0, 1, 900, u64::MAX][usize::from(flags >> 4 & 3)]);
    if flags & 0x40 != 0 {
        if let Ok(with) = settings.clone().with_ttls(u64::MAX, u64::MAX) {
            settings = with;
        }
    }
    let named = String::from_utf8_lossy(named);
    let (name, domain) = named.split_once(' ').unwrap_or((&named, ""));
    if let Ok(with) = settings.clone().with_cookie_name(name) {
        settings = with;
    }
    if let Ok(with) = settings.clone().with_domain(domain) {
        settings = with;
    }
    settings
}

/// A cookie we issue parses back with our name, value, `Path=/`, `Secure`, `HttpOnly`, the
/// configured SameSite and Domain, and `Max-Age` (the idle TTL, none under
/// `SESSION_EXPIRE_AT_BROWSER_CLOSE`, 0 to clear).
fn check_issued_cookies(settings: &SessionSettings) {
    let Some(id) = SessionId::from_signed_text(OTHER_IDS[0]) else { panic!("a canonical id refused") };
    let browser_ttl =
        (!settings.expire_at_browser_close).then(|| i64::try_from(settings.idle_ttl_s).unwrap_or(i64::MAX));
    let set = set_cookie_header(&id, settings);
    check_attributes(&set, &cookie_value(&id, settings), browser_ttl, settings);
    let sealed = encode_sealed(&[7; NONCE_BYTES], &[9; 40]);
    let carrying = carrying_cookie_header(&id, &sealed, settings);
    check_attributes(&carrying, &format!("{}.{sealed}", cookie_value(&id, settings)), browser_ttl, settings);
    check_attributes(&clear_cookie_header(settings), "", Some(0), settings);
}

fn check_attributes(line: &str, value: &str, max_age_s: Option<i64>, settings: &SessionSettings) {
    // Read here by splitting on `;` (RFC 6265 §5.2): the `cookie` crate, which the unit tests
    // hold our lines against (`session/cookie/tests.rs`), is not a dependency of the library.
    let mut pieces = line.split(';').map(str::trim);
    let Some((name, found_value)) = pieces.next().and_then(|pair| pair.split_once('=')) else {
        panic!("our Set-Cookie {line:?} has no name=value")
    };
    assert_eq!((name, found_value), (settings.cookie_name.as_str(), value), "{line}");
    let attributes: Vec<(String, Option<&str>)> = pieces
        .map(|piece| match piece.split_once('=') {
            Some((key, val)) => (key.trim().to_ascii_lowercase(), Some(val.trim())),
            None => (piece.to_ascii_lowercase(), None),
        })
        .collect();
    let attribute = |key: &str| attributes.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    assert_eq!(attribute("path"), Some(Some("/")), "{line}");
    assert_eq!((attribute("secure"), attribute("httponly")), (Some(None), Some(None)), "{line}");
    let same_site = match settings.same_site {
        SameSitePolicy::Lax => "Lax",
        SameSitePolicy::Strict => "Strict",
        SameSitePolicy::None => "None",
    };
    assert_eq!(attribute("samesite"), Some(Some(same_site)), "{line}");
    assert_eq!(attribute("domain").flatten(), settings.domain.as_deref(), "{line}");
    let max_age = attribute("max-age").flatten().map(|text| text.parse::<i64>().ok());
    assert_eq!(max_age, max_age_s.map(Some), "{line}");
}

/// A carried session re-encodes to itself (also as the record written back), and is trusted
/// only inside `SESSION_FALLBACK_TTL` after its issue (60 s of clock skew allowed before it).
fn check_carried(carried: &CarriedSession, settings: &SessionSettings) {
    assert_eq!(CarriedSession::from_plaintext(&carried.plaintext()).as_ref(), Some(carried));
    assert_eq!(SessionRecord::decode(&carried.record.encode()).as_ref(), Ok(&carried.record));
    let ttl_ms = settings.fallback_ttl_ms();
    let issued = carried.issued_ms;
    let end = issued.saturating_add(ttl_ms);
    assert_eq!(carried.trusted_at(issued, settings), ttl_ms > 0 && issued < end);
    for now in [0, issued.saturating_sub(60_001), issued, end.saturating_sub(1), end, u64::MAX] {
        if carried.trusted_at(now, settings) {
            assert!(
                now < end && issued <= now.saturating_add(60_000),
                "trusted at {now}: {issued} + {ttl_ms}"
            );
        }
    }
    assert!(!carried.trusted_at(end, settings), "trusted at the end of its window");
}

/// Builds the marked pieces of a `Cookie` line: `name=~ID.rest` is `name=ID.<MAC(ID)>.rest`,
/// `name=^seed.rest` is `name=<id>.<mac>.<line 1 sealed under id>rest`, id and nonce derived
/// from `seed`.
fn build_marked(
    line: &[u8],
    plaintext: &[u8],
    settings: &SessionSettings,
    aead: &dyn FallbackAead,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 128);
    for (index, piece) in line.split(|&b| b == b';').enumerate() {
        if index > 0 {
            out.push(b';');
        }
        let marked = piece.iter().position(|&b| b == b'=').and_then(|eq| {
            let (marker, text) = piece.get(eq + 1..)?.split_first()?;
            let (seed, rest) = match text.iter().position(|&b| b == b'.') {
                Some(dot) => text.split_at(dot),
                None => (text, &[][..]),
            };
            Some((eq, *marker, seed, rest))
        });
        match marked {
            Some((eq, b'~', id, rest)) => {
                out.extend_from_slice(&piece[..=eq]);
                out.extend_from_slice(id);
                out.push(b'.');
                out.extend_from_slice(mac_of(id, &settings.secret).as_bytes());
                out.extend_from_slice(rest);
            }
            Some((eq, b'^', seed, rest)) => {
                let digest = Sha256::digest(seed);
                let Some(id) = SessionId::from_signed_text(&URL_SAFE_NO_PAD.encode(&digest[..16])) else {
                    panic!("16 bytes make no id");
                };
                let mut nonce = [0u8; NONCE_BYTES];
                nonce.copy_from_slice(&digest[16..16 + NONCE_BYTES]);
                let ciphertext = aead.seal(&settings.fallback_key, &nonce, &associated_data(&id), plaintext);
                out.extend_from_slice(&piece[..=eq]);
                out.extend_from_slice(cookie_value(&id, settings).as_bytes());
                out.push(b'.');
                out.extend_from_slice(encode_sealed(&nonce, &ciphertext).as_bytes());
                out.extend_from_slice(rest.strip_prefix(b".").unwrap_or(rest));
            }
            _ => out.extend_from_slice(piece),
        }
    }
    out
}

fn mac_of(text: &[u8], secret: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        panic!("HMAC refused a key");
    };
    mac.update(text);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}
