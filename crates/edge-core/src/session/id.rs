//! Session ids: 128 bits from the platform CSPRNG, base64url without padding (22 characters).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::SessionError;

/// Random bytes in a session id: 128 bits, the contract's minimum.
pub const SESSION_ID_BYTES: usize = 16;
/// Length of a session id's text: base64url of 16 bytes, unpadded.
pub const SESSION_ID_CHARS: usize = 22;

/// A session id as issued by [`new_session_id`] or read from a cookie whose MAC verified.
///
/// There is no public constructor from text: an id the client chose is never adopted (docs
/// §5). The id alone is not a credential (the cookie also needs the MAC), so it may be logged and
/// is forwarded to the origin as `Edge-Session-Id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// The id's text: 22 characters of the base64url alphabet.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts exactly the ids [`new_session_id`] can produce: 22 base64url characters that
    /// decode canonically to 16 bytes. Only called on ids whose MAC already verified.
    pub(crate) fn from_signed_text(text: &str) -> Option<SessionId> {
        if text.len() != SESSION_ID_CHARS {
            return None;
        }
        // The engine refuses non-canonical trailing bits, so one id has exactly one spelling.
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        (bytes.len() == SESSION_ID_BYTES).then(|| SessionId(text.to_owned()))
    }
}

/// Issues a fresh session id from the platform CSPRNG (`crypto.getRandomValues` in workerd).
/// Fails only when the platform has no randomness to give; never falls back to anything weaker.
pub fn new_session_id() -> Result<SessionId, SessionError> {
    let mut bytes = [0u8; SESSION_ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| SessionError::RandomUnavailable)?;
    Ok(SessionId(URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_22_url_safe_chars_and_distinct() {
        let ids: Vec<SessionId> = (0..1000).map(|_| new_session_id().unwrap()).collect();
        let distinct: HashSet<&str> = ids.iter().map(SessionId::as_str).collect();
        assert_eq!(distinct.len(), 1000);
        for id in &ids {
            assert_eq!(id.as_str().len(), SESSION_ID_CHARS, "{id:?}");
            assert!(
                id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id:?}"
            );
            assert_eq!(URL_SAFE_NO_PAD.decode(id.as_str()).unwrap().len(), SESSION_ID_BYTES);
            assert_eq!(SessionId::from_signed_text(id.as_str()).as_ref(), Some(id));
        }
    }

    #[test]
    fn ids_look_random() {
        // 1000 ids = 128000 bits: a broken generator (zeros, a counter, a repeated block) shows
        // up as a lopsided bit count. The bound is ~14 standard deviations: never flaky.
        let mut ones = 0u32;
        for _ in 0..1000 {
            let id = new_session_id().unwrap();
            for byte in URL_SAFE_NO_PAD.decode(id.as_str()).unwrap() {
                ones += byte.count_ones();
            }
        }
        assert!((62_000..66_000).contains(&ones), "{ones} one-bits out of 128000");
    }

    #[test]
    fn only_canonical_22_char_ids_are_accepted() {
        let good = "AAAAAAAAAAAAAAAAAAAAAA";
        assert!(SessionId::from_signed_text(good).is_some());
        for bad in [
            "",
            "AAAAAAAAAAAAAAAAAAAAA",   // 21
            "AAAAAAAAAAAAAAAAAAAAAAA", // 23
            "AAAAAAAAAAAAAAAAAAAAAB",  // trailing bits set: not canonical
            "AAAAAAAAAAAAAAAAAAAA+A",  // standard alphabet, not url-safe
            "AAAAAAAAAAAAAAAAAAAAA=",  // padding
            "AAAAAAAAAAAAAAAAAAAAé",   // 22 bytes, not base64
        ] {
            assert_eq!(SessionId::from_signed_text(bad), None, "{bad:?}");
        }
    }
}
