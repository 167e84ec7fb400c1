//! Redis replies as Upstash's JSON: `{"result": …}`, `{"error": "…"}`, and the
//! `Upstash-Encoding: base64` variant.

use base64::Engine as _;

use crate::resp::Reply;

/// How strings in a result are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Strings as JSON text; bytes that are not UTF-8 become U+FFFD (as Upstash does).
    Plain,
    /// Every string as base64 of its exact bytes, except the status reply `OK`.
    /// Integers and nulls unchanged; errors never encoded.
    Base64,
}

impl Encoding {
    /// From the `Upstash-Encoding` request header.
    pub fn from_header(value: Option<&[u8]>) -> Encoding {
        match value {
            Some(v) if v.trim_ascii().eq_ignore_ascii_case(b"base64") => Encoding::Base64,
            _ => Encoding::Plain,
        }
    }
}

/// Writes `text` as a JSON string literal.
pub fn write_json_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{:04x}", b).as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_bytes(bytes: &[u8], encoding: Encoding, out: &mut Vec<u8>) {
    match encoding {
        Encoding::Base64 => {
            out.push(b'"');
            write_base64(bytes, out);
            out.push(b'"');
        }
        Encoding::Plain => write_json_string(&String::from_utf8_lossy(bytes), out),
    }
}

/// Appends standard, padded base64 of `bytes` straight into `out`.
fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let engine = &base64::engine::general_purpose::STANDARD;
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    match engine.encode_slice(bytes, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => {
            out.truncate(start);
            out.extend_from_slice(engine.encode(bytes).as_bytes());
        }
    }
}

/// Writes a reply as a JSON result value (not wrapped in `{"result": …}`).
///
/// An error nested inside an array (a script can return one) is written as its
/// text, like any other string.
pub fn write_result(reply: &Reply, encoding: Encoding, out: &mut Vec<u8>) {
    match reply {
        Reply::Status(s) if encoding == Encoding::Base64 && s.as_ref() == b"OK" => {
            out.extend_from_slice(b"\"OK\"")
        }
        Reply::Status(s) | Reply::Bulk(s) | Reply::Error(s) => write_bytes(s, encoding, out),
        Reply::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Reply::Nil => out.extend_from_slice(b"null"),
        Reply::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_result(item, encoding, out);
            }
            out.push(b']');
        }
    }
}

/// `{"error":"…"}`
pub fn error_object(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"error\":");
    write_json_string(text, out);
    out.push(b'}');
}

/// `{"result":…}` for a successful reply, `{"error":"…"}` for an error reply.
pub fn item_object(reply: &Reply, encoding: Encoding, out: &mut Vec<u8>) {
    match reply {
        Reply::Error(text) => error_object(&String::from_utf8_lossy(text), out),
        other => {
            out.extend_from_slice(b"{\"result\":");
            write_result(other, encoding, out);
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn json(reply: &Reply, encoding: Encoding) -> String {
        let mut out = Vec::new();
        item_object(reply, encoding, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_results() {
        let reply = Reply::Array(vec![
            Reply::Status(Bytes::from_static(b"OK")),
            Reply::Bulk(Bytes::from_static("é\"\\\n\u{1}".as_bytes())),
            Reply::Integer(-3),
            Reply::Nil,
            Reply::Bulk(Bytes::from_static(b"\xff")),
        ]);
        assert_eq!(
            json(&reply, Encoding::Plain),
            "{\"result\":[\"OK\",\"é\\\"\\\\\\n\\u0001\",-3,null,\"\u{fffd}\"]}"
        );
    }

    #[test]
    fn base64_results_keep_ok_integers_and_null() {
        let reply = Reply::Array(vec![
            Reply::Status(Bytes::from_static(b"OK")),
            Reply::Status(Bytes::from_static(b"PONG")),
            Reply::Bulk(Bytes::from_static(b"OK")),
            Reply::Bulk(Bytes::from_static(b"\xff\x00")),
            Reply::Integer(7),
            Reply::Nil,
            Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"a"))]),
        ]);
        assert_eq!(
            json(&reply, Encoding::Base64),
            "{\"result\":[\"OK\",\"UE9ORw==\",\"T0s=\",\"/wA=\",7,null,[\"YQ==\"]]}"
        );
    }

    #[test]
    fn errors_are_never_encoded() {
        let reply = Reply::Error(Bytes::from_static(b"ERR value is not an integer or out of range"));
        assert_eq!(
            json(&reply, Encoding::Base64),
            "{\"error\":\"ERR value is not an integer or out of range\"}"
        );
    }

    #[test]
    fn header_parsing() {
        assert_eq!(Encoding::from_header(Some(b"base64")), Encoding::Base64);
        assert_eq!(Encoding::from_header(Some(b" BASE64 ")), Encoding::Base64);
        assert_eq!(Encoding::from_header(Some(b"none")), Encoding::Plain);
        assert_eq!(Encoding::from_header(None), Encoding::Plain);
    }
}
