//! What the origin sees of the session: `Edge-Session-Id` and `Edge-Session` on the forwarded
//! request, after every client-sent `Edge-Session*` header has been removed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::id::SessionId;
use super::record::SessionRecord;

pub const EDGE_SESSION_ID: HeaderName = HeaderName::from_static("edge-session-id");
pub const EDGE_SESSION: HeaderName = HeaderName::from_static("edge-session");
/// `active`, `anonymous`, `unavailable` or `invalid`: what the worker knows of the session.
pub const EDGE_SESSION_STATUS: HeaderName = HeaderName::from_static("edge-session-status");

/// Removes every request header whose name starts with `edge-session` (any case), so a client
/// can never pose as the worker to the origin. Call it on every forwarded request, session or
/// not, before adding [`forward_headers`].
pub fn strip_client_session_headers(request_headers: &mut HeaderMap) {
    crate::hygiene::strip_reserved(request_headers);
}

/// The headers that tell the origin about the session: `Edge-Session-Id: <id>` and
/// `Edge-Session: <base64url of the data's compact JSON>`. Both values are base64url, always
/// valid header bytes, so both are always present.
pub fn forward_headers(id: &SessionId, record: &SessionRecord) -> Vec<(HeaderName, HeaderValue)> {
    let data = URL_SAFE_NO_PAD.encode(record.data_json());
    [(EDGE_SESSION_ID, id.as_str().to_owned()), (EDGE_SESSION, data)]
        .into_iter()
        .filter_map(|(name, value)| HeaderValue::try_from(value).ok().map(|value| (name, value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::new_session_id;
    use serde_json::{json, Value};

    #[test]
    fn forward_headers_carry_id_and_data() {
        let id = new_session_id().unwrap();
        let Value::Object(data) = json!({"user": "zoë", "admin": true}) else { unreachable!() };
        let record = SessionRecord::new(data.clone(), 42);
        let headers = forward_headers(&id, &record);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0], (EDGE_SESSION_ID, HeaderValue::from_str(id.as_str()).unwrap()));
        assert_eq!(headers[1].0, EDGE_SESSION);
        let json = URL_SAFE_NO_PAD.decode(headers[1].1.as_bytes()).unwrap();
        assert_eq!(json, r#"{"admin":true,"user":"zoë"}"#.as_bytes());
        let back: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, Value::Object(data));
        // Empty data is still forwarded (the session exists).
        let empty = forward_headers(&id, &SessionRecord::default());
        assert_eq!(empty[1].1, "e30"); // base64url("{}")
    }

    #[test]
    fn client_session_headers_are_stripped_in_any_case() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("Edge-Session-Id", "forged"),
            ("EDGE-SESSION", "eyJhZG1pbiI6dHJ1ZX0"),
            ("edge-session-set", "{}"),
            ("eDgE-sEsSiOn-AnYtHiNg", "1"),
            ("accept", "*/*"),
            ("cookie", "a=b"),
            ("x-edge-session-id", "kept: prefix only"),
        ] {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static(value));
        }
        headers.append(EDGE_SESSION_ID, HeaderValue::from_static("second"));
        strip_client_session_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "cookie", "x-edge-session-id"]);
        assert_eq!(headers.len(), 3);
    }
}
