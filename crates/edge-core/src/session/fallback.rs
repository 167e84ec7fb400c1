//! The fallback cookie (docs §5.11): when the session store cannot take a `Set` or `Rotate`,
//! the session travels in the cookie itself, sealed with AES-256-GCM, until a request finds
//! the store again and writes it back.
//!
//! - Value: `<id>.<mac>.<sealed>`: the ordinary signed id (so everything that reads the id,
//!   `unavailable` included, works unchanged), then base64url(nonce ‖ ciphertext ‖ tag).
//! - Key: HMAC-SHA256(`SESSION_SECRET`, [`KEY_LABEL`]): never the cookie's HMAC key itself.
//! - Associated data: [`KEY_LABEL`] and the id, so a sealed part moved onto another signed id
//!   does not open.
//! - Plaintext: compact JSON `{"t":issued_ms,"c":created_ms,"d":{…}}`, trusted only for
//!   `SESSION_FALLBACK_TTL` after `t`.
//!
//! The sealing itself is the platform's ([`crate::Host::seal`]): WebCrypto in the worker, so
//! the wasm carries no AES. Nothing here does I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::{SessionError, SessionId, SessionRecord, SessionSettings};

/// Domain separation: the key derivation's message and the start of the associated data.
pub const KEY_LABEL: &[u8] = b"edge-cache session fallback cookie v1";
/// AES-GCM's standard nonce length.
pub const NONCE_BYTES: usize = 12;
/// The whole `Set-Cookie` value of a fallback cookie stays under this, so that every browser
/// keeps it (they keep at least 4096 bytes of name, value and attributes).
pub const MAX_SET_COOKIE_BYTES: usize = 4000;
/// Clock skew between isolates tolerated on `issued_ms` (a cookie "issued" later than this
/// in the future is not trusted).
const SKEW_MS: u64 = 60_000;

/// The AES-256-GCM key for `secret`'s fallback cookies.
pub fn derive_key(secret: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    // HMAC takes keys of any length; the all-zero key of the unreachable error seals nothing
    // anyone could open with the real key.
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        mac.update(KEY_LABEL);
        key.copy_from_slice(&mac.finalize().into_bytes());
    }
    key
}

/// The associated data binding a sealed session to its id.
pub fn associated_data(id: &SessionId) -> Vec<u8> {
    let mut aad = KEY_LABEL.to_vec();
    aad.push(b':');
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

/// A fresh nonce from the platform CSPRNG (random 96-bit nonces: one key seals far fewer than
/// the 2^32 messages NIST allows).
pub fn new_nonce() -> Result<[u8; NONCE_BYTES], SessionError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|_| SessionError::RandomUnavailable)?;
    Ok(nonce)
}

/// A session as the cookie carries it: the record and when this cookie was issued.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedSession {
    pub record: SessionRecord,
    pub issued_ms: u64,
}

#[derive(Serialize)]
struct WireOut<'a> {
    t: u64,
    c: u64,
    d: &'a Map<String, Value>,
}

#[derive(Deserialize)]
struct WireIn {
    t: u64,
    c: u64,
    d: Map<String, Value>,
}

impl CarriedSession {
    /// What gets sealed.
    pub fn plaintext(&self) -> Vec<u8> {
        let wire = WireOut { t: self.issued_ms, c: self.record.created_ms, d: &self.record.data };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Reads an opened plaintext; `None` for anything else (it authenticated, so only a bug or
    /// another version of the worker could produce one).
    pub fn from_plaintext(bytes: &[u8]) -> Option<CarriedSession> {
        let wire: WireIn = serde_json::from_slice(bytes).ok()?;
        Some(CarriedSession { record: SessionRecord::new(wire.d, wire.c), issued_ms: wire.t })
    }

    /// Whether the cookie is still inside its window (`SESSION_FALLBACK_TTL` after issue).
    pub fn trusted_at(&self, now_ms: u64, settings: &SessionSettings) -> bool {
        let ttl_ms = settings.fallback_ttl_ms();
        ttl_ms > 0
            && self.issued_ms <= now_ms.saturating_add(SKEW_MS)
            && now_ms < self.issued_ms.saturating_add(ttl_ms)
    }
}

/// The sealed part of a cookie, decoded: nonce and ciphertext (with its tag).
pub fn decode_sealed(text: &str) -> Option<([u8; NONCE_BYTES], Vec<u8>)> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    // A GCM tag alone is 16 bytes; anything shorter cannot open.
    if bytes.len() < NONCE_BYTES + 16 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
    Some((nonce, ciphertext.to_vec()))
}

/// The sealed part's text for the cookie.
pub fn encode_sealed(nonce: &[u8; NONCE_BYTES], ciphertext: &[u8]) -> String {
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(ciphertext);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The fallback cookie's `Set-Cookie` value, or `None` when it would not fit under
/// [`MAX_SET_COOKIE_BYTES`] (the session data is too large to travel in a cookie).
pub fn fallback_set_cookie(
    id: &SessionId,
    nonce: &[u8; NONCE_BYTES],
    ciphertext: &[u8],
    settings: &SessionSettings,
) -> Option<String> {
    let line = super::carrying_cookie_header(id, &encode_sealed(nonce, ciphertext), settings);
    (line.len() <= MAX_SET_COOKIE_BYTES).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::new_session_id;

    fn settings() -> SessionSettings {
        SessionSettings::new(&[9u8; 32]).unwrap()
    }

    #[test]
    fn the_key_is_derived_under_its_own_label() {
        let key = derive_key(&[9u8; 32]);
        assert_eq!(key, settings().fallback_key);
        assert_ne!(key, derive_key(&[8u8; 32]));
        assert_ne!(&key[..], &[9u8; 32][..], "not the HMAC key itself");
        let mut mac = Hmac::<Sha256>::new_from_slice(&[9u8; 32]).unwrap();
        mac.update(b"edge-cache session fallback cookie v1");
        assert_eq!(&key[..], &mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn plaintext_round_trips_and_names_its_issue_time() {
        let mut data = Map::new();
        data.insert("user".into(), Value::from("ada"));
        let carried = CarriedSession { record: SessionRecord::new(data, 5), issued_ms: 7 };
        let text = String::from_utf8(carried.plaintext()).unwrap();
        assert_eq!(text, r#"{"t":7,"c":5,"d":{"user":"ada"}}"#);
        assert_eq!(CarriedSession::from_plaintext(text.as_bytes()), Some(carried));
        assert_eq!(CarriedSession::from_plaintext(b"{}"), None);
        assert_eq!(CarriedSession::from_plaintext(br#"{"t":1,"c":1,"d":[]}"#), None);
    }

    #[test]
    fn trust_ends_after_the_fallback_ttl() {
        let s = settings().with_fallback_ttl(900);
        let carried = CarriedSession { record: SessionRecord::default(), issued_ms: 1_000_000 };
        assert!(carried.trusted_at(1_000_000, &s));
        assert!(carried.trusted_at(1_000_000 + 899_999, &s));
        assert!(!carried.trusted_at(1_000_000 + 900_000, &s));
        assert!(!carried.trusted_at(1_000_000 - SKEW_MS - 1, &s), "issued too far in the future");
        assert!(!carried.trusted_at(1_000_000, &s.with_fallback_ttl(0)), "0 turns it off");
    }

    #[test]
    fn sealed_text_round_trips_and_short_or_garbage_is_refused() {
        let text = encode_sealed(&[1; NONCE_BYTES], &[2; 20]);
        assert_eq!(decode_sealed(&text), Some(([1; NONCE_BYTES], vec![2; 20])));
        assert_eq!(decode_sealed(&encode_sealed(&[1; NONCE_BYTES], &[2; 15])), None);
        assert_eq!(decode_sealed("not base64!"), None);
        assert_eq!(decode_sealed(""), None);
    }

    #[test]
    fn a_cookie_that_would_pass_4000_bytes_is_not_issued() {
        let s = settings();
        let id = new_session_id().unwrap();
        let fits = fallback_set_cookie(&id, &[0; NONCE_BYTES], &[0; 2000], &s).unwrap();
        assert!(fits.len() <= MAX_SET_COOKIE_BYTES);
        assert!(fits.starts_with(&format!("__Host-session={}.", crate::session::cookie_value(&id, &s))));
        assert_eq!(fallback_set_cookie(&id, &[0; NONCE_BYTES], &[0; 3000], &s), None);
        assert_ne!(associated_data(&id), associated_data(&new_session_id().unwrap()));
    }
}
