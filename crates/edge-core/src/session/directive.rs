//! How the origin steers the session: response headers the client never sees.
//!
//! - `Edge-Session-Set: <JSON object>` replaces the data (creating the session if needed).
//! - `Edge-Session-Rotate: 1` moves the data to a new id and deletes the old one.
//! - `Edge-Session-Destroy: 1` deletes the session and expires the cookie.
//!
//! Order: Destroy wins outright (Set and Rotate are then not even read, so a broken Set can
//! never stop a logout); otherwise Set applies first, then Rotate (log in = set the user, then
//! rotate). Rotate and Destroy are on for any value but `0`/`false`: both only move toward
//! safety, so an origin's `Destroy: yes` must not silently leave a user logged in.

use std::fmt;

use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

use super::record::data_json;
use super::settings::SessionSettings;

pub const EDGE_SESSION_SET: HeaderName = HeaderName::from_static("edge-session-set");
pub const EDGE_SESSION_ROTATE: HeaderName = HeaderName::from_static("edge-session-rotate");
pub const EDGE_SESSION_DESTROY: HeaderName = HeaderName::from_static("edge-session-destroy");

/// One thing the origin asked for, in the order [`read_directives`] returns them.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionDirective {
    /// Replace the session's data with this object (create the session if there is none).
    Set(Map<String, Value>),
    /// Issue a new id for the same data and created time; delete the old record. No-op
    /// without a session.
    Rotate,
    /// Delete the session and expire the cookie. Always alone.
    Destroy,
}

/// Why the origin's `Edge-Session-Set` was refused. The caller logs it and leaves the session
/// unchanged; the text never quotes the origin's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectiveError {
    /// The data, as compact JSON, is over `SESSION_MAX_BYTES`.
    TooLarge { bytes: usize, max_bytes: usize },
    /// Not JSON (or not UTF-8); the position is where parsing stopped.
    Malformed { line: usize, column: usize },
    /// JSON, but not an object.
    NotAnObject,
    /// More than one `Edge-Session-Set` header: which one is meant is anyone's guess.
    MultipleSet,
}

impl DirectiveError {
    /// Short, stable name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            DirectiveError::TooLarge { .. } => "session-set-too-large",
            DirectiveError::Malformed { .. } => "session-set-malformed",
            DirectiveError::NotAnObject => "session-set-not-an-object",
            DirectiveError::MultipleSet => "session-set-multiple",
        }
    }
}

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectiveError::TooLarge { bytes, max_bytes } => write!(
                f,
                "Edge-Session-Set refused: {bytes} bytes of session data, SESSION_MAX_BYTES is {max_bytes}"
            ),
            DirectiveError::Malformed { line, column } => {
                write!(f, "Edge-Session-Set refused: not valid JSON (line {line}, column {column})")
            }
            DirectiveError::NotAnObject => f.write_str("Edge-Session-Set refused: the JSON is not an object"),
            DirectiveError::MultipleSet => {
                f.write_str("Edge-Session-Set refused: the response has more than one")
            }
        }
    }
}

impl std::error::Error for DirectiveError {}

/// Reads the origin's session directives (see the module doc for their order). An empty Vec
/// means "leave the session alone". `Err` means the Set was refused: log it and leave the
/// session unchanged (a Rotate in the same response is dropped with it). `max_bytes` limits
/// the data's compact JSON, which is what is stored and forwarded, so an origin's
/// pretty-printing does not count against it.
pub fn read_directives(
    response_headers: &HeaderMap,
    settings: &SessionSettings,
) -> Result<Vec<SessionDirective>, DirectiveError> {
    if flag_is_on(response_headers, &EDGE_SESSION_DESTROY) {
        return Ok(vec![SessionDirective::Destroy]);
    }
    let mut directives = Vec::new();
    let mut sets = response_headers.get_all(EDGE_SESSION_SET).iter();
    if let Some(value) = sets.next() {
        if sets.next().is_some() {
            return Err(DirectiveError::MultipleSet);
        }
        directives.push(SessionDirective::Set(parse_set(value.as_bytes(), settings.max_bytes)?));
    }
    if flag_is_on(response_headers, &EDGE_SESSION_ROTATE) {
        directives.push(SessionDirective::Rotate);
    }
    Ok(directives)
}

fn parse_set(value: &[u8], max_bytes: usize) -> Result<Map<String, Value>, DirectiveError> {
    let parsed: Value = serde_json::from_slice(value)
        .map_err(|err| DirectiveError::Malformed { line: err.line(), column: err.column() })?;
    let Value::Object(data) = parsed else {
        return Err(DirectiveError::NotAnObject);
    };
    let bytes = data_json(&data).len();
    if bytes > max_bytes {
        return Err(DirectiveError::TooLarge { bytes, max_bytes });
    }
    Ok(data)
}

/// A flag header is on when present with any value other than `0` or `false` (trimmed,
/// case-insensitive). Several headers: on if any is on.
fn flag_is_on(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(name).iter().any(|value| {
        let value = value.as_bytes().trim_ascii();
        !(value == b"0" || value.eq_ignore_ascii_case(b"false"))
    })
}

/// Removes every response header whose name starts with `edge-session` (any case), directives
/// and anything else so named, before the response goes to the client (or the cache).
pub fn strip_directive_headers(response_headers: &mut HeaderMap) {
    crate::hygiene::strip_reserved(response_headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn settings() -> SessionSettings {
        SessionSettings::new(&[9u8; 32]).unwrap()
    }

    fn response(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn read(pairs: &[(&str, &[u8])]) -> Result<Vec<SessionDirective>, DirectiveError> {
        read_directives(&response(pairs), &settings())
    }

    fn set(value: Value) -> SessionDirective {
        match value {
            Value::Object(map) => SessionDirective::Set(map),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn no_directives_leave_the_session_alone() {
        assert_eq!(read(&[]), Ok(vec![]));
        assert_eq!(read(&[("content-type", b"text/html"), ("edge-session-other", b"1")]), Ok(vec![]));
    }

    #[test]
    fn set_parses_a_json_object() {
        assert_eq!(
            read(&[("Edge-Session-Set", br#" {"user": "ada", "n": [1, 2]} "#)]),
            Ok(vec![set(json!({"user": "ada", "n": [1, 2]}))])
        );
        assert_eq!(read(&[("edge-session-set", b"{}")]), Ok(vec![set(json!({}))]));
        // Non-ASCII UTF-8 is fine.
        assert_eq!(
            read(&[("edge-session-set", "{\"name\":\"Zoë\"}".as_bytes())]),
            Ok(vec![set(json!({"name": "Zoë"}))])
        );
    }

    #[test]
    fn set_must_be_a_json_object() {
        for value in [&b"[]"[..], b"\"str\"", b"1", b"null", b"true"] {
            assert_eq!(read(&[("edge-session-set", value)]), Err(DirectiveError::NotAnObject), "{value:?}");
        }
        for value in [&b""[..], b"{", b"{\"a\":}", b"{'a':1}", b"{\"a\":1} x", b"\xff\xfe", b"user=ada"] {
            let got = read(&[("edge-session-set", value)]);
            assert!(matches!(got, Err(DirectiveError::Malformed { .. })), "{value:?}: {got:?}");
        }
        // Deeply nested input hits serde_json's recursion limit: an error, not a stack overflow.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            read(&[("edge-session-set", deep.as_bytes())]),
            Err(DirectiveError::Malformed { .. })
        ));
    }

    #[test]
    fn set_over_max_bytes_is_too_large() {
        let s = settings().with_max_bytes(20).unwrap();
        let ok = br#"{"a":"123456789012"}"#; // exactly 20 bytes
        assert_eq!(ok.len(), 20);
        assert!(read_directives(&response(&[("edge-session-set", ok)]), &s).is_ok());
        let over = br#"{"a":"1234567890123"}"#;
        assert_eq!(
            read_directives(&response(&[("edge-session-set", over)]), &s),
            Err(DirectiveError::TooLarge { bytes: 21, max_bytes: 20 })
        );
        // Measured on the compact form: whitespace the origin adds does not count.
        let pretty = b"{ \"a\" :   \"123456789012\"   }";
        assert!(read_directives(&response(&[("edge-session-set", pretty)]), &s).is_ok());
        // Default limit, 16 KiB.
        let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(16_384));
        assert!(matches!(
            read(&[("edge-session-set", big.as_bytes())]),
            Err(DirectiveError::TooLarge { max_bytes: 16_384, .. })
        ));
    }

    #[test]
    fn errors_never_quote_the_data() {
        for value in [&br#"{"pw":"hunter2""#[..], br#""hunter2""#, br#"{"pw":"hunter2"}"#] {
            let s = settings().with_max_bytes(3).unwrap();
            let err = read_directives(&response(&[("edge-session-set", value)]), &s).unwrap_err();
            let text = format!("{err} {err:?} {}", err.as_str());
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn two_sets_are_refused() {
        assert_eq!(
            read(&[("edge-session-set", b"{\"a\":1}"), ("edge-session-set", b"{\"b\":2}")]),
            Err(DirectiveError::MultipleSet)
        );
    }

    #[test]
    fn flags() {
        for on in [&b"1"[..], b"true", b"TRUE", b" 1 ", b"yes", b"2", b""] {
            assert_eq!(read(&[("edge-session-rotate", on)]), Ok(vec![SessionDirective::Rotate]), "{on:?}");
            assert_eq!(read(&[("edge-session-destroy", on)]), Ok(vec![SessionDirective::Destroy]), "{on:?}");
        }
        for off in [&b"0"[..], b"false", b"False", b" 0"] {
            assert_eq!(read(&[("edge-session-rotate", off)]), Ok(vec![]), "{off:?}");
            assert_eq!(read(&[("edge-session-destroy", off)]), Ok(vec![]), "{off:?}");
        }
        assert_eq!(
            read(&[("edge-session-destroy", b"0"), ("edge-session-destroy", b"1")]),
            Ok(vec![SessionDirective::Destroy])
        );
    }

    #[test]
    fn order_is_destroy_alone_else_set_then_rotate() {
        assert_eq!(
            read(&[("edge-session-rotate", b"1"), ("edge-session-set", b"{\"u\":1}")]),
            Ok(vec![set(json!({"u": 1})), SessionDirective::Rotate])
        );
        assert_eq!(
            read(&[
                ("edge-session-set", b"{\"u\":1}"),
                ("edge-session-rotate", b"1"),
                ("edge-session-destroy", b"1"),
            ]),
            Ok(vec![SessionDirective::Destroy])
        );
        // A broken Set cannot stop a logout.
        assert_eq!(
            read(&[("edge-session-set", b"{broken"), ("edge-session-destroy", b"1")]),
            Ok(vec![SessionDirective::Destroy])
        );
        // Without Destroy, a broken Set refuses the lot.
        assert!(read(&[("edge-session-set", b"{broken"), ("edge-session-rotate", b"1")]).is_err());
    }

    #[test]
    fn directive_headers_are_stripped_in_any_case() {
        let mut headers = response(&[
            ("Edge-Session-Set", b"{}"),
            ("EDGE-SESSION-ROTATE", b"1"),
            ("edge-session-destroy", b"1"),
            ("edge-session-destroy", b"1"),
            ("Edge-Sessionx", b"1"),
            ("edge-session", b"x"),
            ("content-type", b"text/plain"),
            ("x-edge-session", b"kept"),
            ("set-cookie", b"a=b"),
        ]);
        strip_directive_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "set-cookie", "x-edge-session"]);
        assert_eq!(headers.len(), 3);
    }
}
