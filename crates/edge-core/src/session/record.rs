//! What Redis stores for a session, and under which key.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SessionError;

/// A session as stored: the origin's data and when the session was created (for the absolute
/// lifetime; the idle lifetime is the Redis TTL). `Debug` shows the shape, never the data.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SessionRecord {
    /// The JSON object the origin set with `Edge-Session-Set`.
    pub data: Map<String, Value>,
    /// Creation time, ms since the Unix epoch. Kept across rotation.
    pub created_ms: u64,
}

/// The stored form: `{"c":created_ms,"d":{...}}`. Unknown fields are ignored, so a newer
/// worker may add some without breaking an older one during a deploy.
#[derive(Serialize)]
struct WireOut<'a> {
    c: u64,
    d: &'a Map<String, Value>,
}

#[derive(Deserialize)]
struct WireIn {
    c: u64,
    d: Map<String, Value>,
}

impl SessionRecord {
    pub fn new(data: Map<String, Value>, created_ms: u64) -> Self {
        SessionRecord { data, created_ms }
    }

    /// Compact JSON, `{"c":created_ms,"d":{...}}`.
    pub fn encode(&self) -> Vec<u8> {
        // A map with string keys always serializes; an empty Vec (which would not decode) is
        // the unreachable fallback, not a panic.
        serde_json::to_vec(&WireOut { c: self.created_ms, d: &self.data }).unwrap_or_default()
    }

    /// Decodes [`SessionRecord::encode`]'s output. Anything else (garbage, wrong types, data
    /// that is not an object, trailing bytes) is an error that never quotes the input.
    pub fn decode(bytes: &[u8]) -> Result<SessionRecord, SessionError> {
        let wire: WireIn = serde_json::from_slice(bytes).map_err(|err| {
            SessionError::UndecodableRecord(match err.classify() {
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Eof => "truncated",
                serde_json::error::Category::Data => "not a session record",
                serde_json::error::Category::Io => "unreadable",
            })
        })?;
        Ok(SessionRecord { data: wire.d, created_ms: wire.c })
    }

    /// The data as compact JSON: what `Edge-Session` carries (base64url) and what
    /// `SESSION_MAX_BYTES` measures.
    pub fn data_json(&self) -> Vec<u8> {
        data_json(&self.data)
    }
}

/// Compact JSON of session data (an object always serializes; see [`SessionRecord::encode`]).
pub(crate) fn data_json(data: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(data).unwrap_or_default()
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("created_ms", &self.created_ms)
            .field("data", &format_args!("<{} keys, redacted>", self.data.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::new_session_id;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn encoding_is_compact_and_stable() {
        let record =
            SessionRecord::new(object(json!({"user": "ada", "roles": ["admin"]})), 1_700_000_000_000);
        assert_eq!(
            String::from_utf8(record.encode()).unwrap(),
            r#"{"c":1700000000000,"d":{"roles":["admin"],"user":"ada"}}"#
        );
        assert_eq!(SessionRecord::decode(&record.encode()).unwrap(), record);
        assert_eq!(record.data_json(), br#"{"roles":["admin"],"user":"ada"}"#);
        let empty = SessionRecord::default();
        assert_eq!(empty.encode(), br#"{"c":0,"d":{}}"#);
    }

    #[test]
    fn decode_refuses_garbage_and_wrong_types() {
        let cases: &[&[u8]] = &[
            b"",
            b"null",
            b"garbage",
            b"\xff\xfe\x00",
            b"[]",
            b"{}",
            br#"{"c":1}"#,
            br#"{"d":{}}"#,
            br#"{"c":"1","d":{}}"#,
            br#"{"c":-1,"d":{}}"#,
            br#"{"c":1.5,"d":{}}"#,
            br#"{"c":1,"d":[]}"#,
            br#"{"c":1,"d":"x"}"#,
            br#"{"c":1,"d":null}"#,
            br#"{"c":1,"d":{}} trailing"#,
            br#"{"c":1,"d":{"a":"#,
        ];
        for bytes in cases {
            let err = SessionRecord::decode(bytes).unwrap_err();
            assert!(matches!(err, SessionError::UndecodableRecord(_)), "{bytes:?}");
        }
        // The error never quotes the record.
        let err = SessionRecord::decode(br#"{"c":1,"d":"password123"}"#).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("password123"));
        // Unknown fields are ignored (a newer writer).
        let record = SessionRecord::decode(br#"{"c":5,"d":{"a":1},"v":2}"#).unwrap();
        assert_eq!(record, SessionRecord::new(object(json!({"a": 1})), 5));
    }

    #[test]
    fn debug_does_not_print_data() {
        let record = SessionRecord::new(object(json!({"token": "s3cr3t"})), 1);
        assert!(!format!("{record:?}").contains("s3cr3t"));
    }

    #[test]
    fn session_key_hashes_the_id() {
        let id = new_session_id().unwrap();
        let key = crate::Namespace::new("edge").session(&id);
        let hash = key.strip_prefix("edge:sess:").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(!key.contains(id.as_str()));
        assert_eq!(crate::Namespace::new("edge").session(&id), key, "stable");
        assert_ne!(crate::Namespace::new("edge").session(&new_session_id().unwrap()), key);
        assert!(crate::Namespace::new("other").session(&id).starts_with("other:sess:"));
    }

    #[test]
    fn session_key_is_sha256_hex() {
        // sha256("AAAAAAAAAAAAAAAAAAAAAA"), computed independently.
        let id = crate::session::SessionId::from_signed_text("AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        use sha2::{Digest, Sha256};
        let want: String =
            Sha256::digest(b"AAAAAAAAAAAAAAAAAAAAAA").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(crate::Namespace::new("ns").session(&id), format!("ns:sess:{want}"));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Dyadic fractions: exact in binary, so they survive JSON without serde_json's
            // `float_roundtrip` (arbitrary floats may come back one ULP off).
            (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn records_round_trip(
            data in prop::collection::btree_map(".*", json_value(), 0..8),
            created_ms in any::<u64>(),
        ) {
            let record = SessionRecord::new(data.into_iter().collect(), created_ms);
            let bytes = record.encode();
            prop_assert_eq!(SessionRecord::decode(&bytes).unwrap(), record);
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = SessionRecord::decode(&bytes);
        }
    }
}
