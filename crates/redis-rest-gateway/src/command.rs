//! Turning an HTTP request into Redis commands: the JSON body forms, the URL
//! form. Which of them may run is [`crate::policy`]'s business.

use bytes::Bytes;
use serde_json::value::RawValue;

/// One Redis command: its name followed by its arguments, as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<Bytes>,
}

impl Command {
    /// The command name in upper case, for policy checks and logs.
    pub fn name(&self) -> String {
        self.args.first().map(|n| String::from_utf8_lossy(n).to_ascii_uppercase()).unwrap_or_default()
    }
}

/// A request that cannot be turned into commands; the text is the `error` the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedRequest(pub String);

fn malformed(text: impl Into<String>) -> MalformedRequest {
    MalformedRequest(text.into())
}

const SINGLE_SHAPE: &str = "ERR failed to parse command: the body must be a JSON array of strings and numbers, like [\"SET\",\"key\",\"value\"]";
const BATCH_SHAPE: &str = "ERR failed to parse pipeline: the body must be a JSON array of commands, like [[\"SET\",\"k\",\"v\"],[\"GET\",\"k\"]]";

fn parse_json(body: &[u8]) -> Result<&RawValue, MalformedRequest> {
    serde_json::from_slice::<&RawValue>(body)
        .map_err(|e| malformed(format!("ERR failed to parse command: invalid JSON: {e}")))
}

fn is_array(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('[')
}

fn elements(raw: &RawValue) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str::<Vec<&RawValue>>(raw.get())
}

/// One argument: a JSON string is its UTF-8 bytes; a JSON number is its literal
/// text exactly as sent (`1.50` stays `1.50`); `true`/`false` are their names.
fn argument(raw: &RawValue, body: &Bytes) -> Result<Bytes, MalformedRequest> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<&str>(text) {
            // No escapes: the argument is a slice of the body itself.
            Ok(s) => Ok(share(body, s.as_bytes())),
            // Escapes (or an invalid string: this parse says which).
            Err(_) => {
                let s: String = serde_json::from_str(text).map_err(|e| {
                    malformed(format!("ERR failed to parse command: bad string argument: {e}"))
                })?;
                Ok(Bytes::from(s.into_bytes()))
            }
        },
        Some(b'-' | b'0'..=b'9') => Ok(share(body, text.as_bytes())),
        Some(b't' | b'f') if text == "true" || text == "false" => Ok(share(body, text.as_bytes())),
        _ => Err(malformed(format!(
            "ERR failed to parse command: arguments must be strings or numbers, got {}",
            truncate(text, 40)
        ))),
    }
}

/// `part` as a `Bytes` sharing `body`'s memory when it lies within it (no copy), else copied.
fn share(body: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if start <= body.len() && end <= body.len() => body.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

fn command_from(raw: &RawValue, body: &Bytes) -> Result<Command, MalformedRequest> {
    if !is_array(raw) {
        return Err(malformed(SINGLE_SHAPE));
    }
    let items = elements(raw).map_err(|e| malformed(format!("ERR failed to parse command: {e}")))?;
    if items.is_empty() {
        return Err(malformed("ERR empty command"));
    }
    let args = items.into_iter().map(|item| argument(item, body)).collect::<Result<Vec<_>, _>>()?;
    Ok(Command { args })
}

/// `POST /` with `["SET","k","v"]`.
pub fn parse_single(body: &Bytes) -> Result<Command, MalformedRequest> {
    command_from(parse_json(body)?, body)
}

/// `POST /pipeline` or `/multi-exec` with `[["SET","k","v"],["GET","k"]]`.
pub fn parse_batch(body: &Bytes) -> Result<Vec<Command>, MalformedRequest> {
    let raw = parse_json(body)?;
    if !is_array(raw) {
        return Err(malformed(BATCH_SHAPE));
    }
    let items = elements(raw).map_err(|e| malformed(format!("ERR failed to parse pipeline: {e}")))?;
    if items.is_empty() {
        return Err(malformed("ERR empty pipeline: send at least one command"));
    }
    items
        .into_iter()
        .map(|item| if is_array(item) { command_from(item, body) } else { Err(malformed(BATCH_SHAPE)) })
        .collect()
}

/// The URL form: `/set/key/value?EX=100` is `SET key value EX 100`.
///
/// Path segments and query pairs are percent-decoded to raw bytes (`+` is a
/// plain `+`); `_token` is the credential, not an argument; a non-empty POST body
/// is the last argument, byte for byte.
pub fn parse_url_form(path: &str, query: Option<&str>, body: &[u8]) -> Result<Command, MalformedRequest> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut args: Vec<Bytes> = Vec::new();
    if !path.is_empty() {
        for segment in path.split('/') {
            args.push(percent_decode(segment));
        }
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            if key == "_token" {
                continue;
            }
            args.push(percent_decode(key));
            if let Some(value) = value {
                args.push(percent_decode(value));
            }
        }
    }
    if !body.is_empty() {
        args.push(Bytes::copy_from_slice(body));
    }
    if args.is_empty() || args[0].is_empty() {
        return Err(malformed(
            "ERR empty command: send a JSON array with POST /, or a command in the path like /get/key",
        ));
    }
    Ok(Command { args })
}

fn percent_decode(text: &str) -> Bytes {
    Bytes::from(percent_encoding::percent_decode_str(text).collect::<Vec<u8>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(body: &[u8]) -> Result<Command, MalformedRequest> {
        parse_single(&Bytes::copy_from_slice(body))
    }

    fn batch(body: &[u8]) -> Result<Vec<Command>, MalformedRequest> {
        parse_batch(&Bytes::copy_from_slice(body))
    }

    #[test]
    fn unescaped_arguments_share_the_body() {
        let body = Bytes::from_static(br#"["SET","key","v\n",12]"#);
        let c = parse_single(&body).unwrap();
        let within = |b: &Bytes| {
            let start = b.as_ptr() as usize;
            start >= body.as_ptr() as usize && start + b.len() <= body.as_ptr() as usize + body.len()
        };
        assert!(within(&c.args[1]) && within(&c.args[3]));
        assert!(!within(&c.args[2]));
        assert_eq!(c.args[2].as_ref(), b"v\n");
        assert_eq!(share(&body, b"elsewhere").as_ref(), b"elsewhere");
    }

    fn args(c: &Command) -> Vec<&[u8]> {
        c.args.iter().map(|a| a.as_ref()).collect()
    }

    #[test]
    fn single_commands_keep_numbers_literal() {
        let c = single(br#"["SET", "k", 1.50, "PX", 5000, -2, 1e3, true]"#).unwrap();
        assert_eq!(args(&c), vec![&b"SET"[..], b"k", b"1.50", b"PX", b"5000", b"-2", b"1e3", b"true"]);
    }

    #[test]
    fn strings_are_utf8_bytes() {
        let c = single("[\"SET\",\"k\",\"h\\u00e9\\u0000\u{1F600}\"]".as_bytes()).unwrap();
        assert_eq!(c.args[2].as_ref(), "hé\0\u{1F600}".as_bytes());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(single(b"[\"GET\"").unwrap_err().0.contains("invalid JSON"));
        assert!(single(b"{\"a\":1}").unwrap_err().0.contains("must be a JSON array"));
        assert!(single(b"\"GET\"").unwrap_err().0.contains("must be a JSON array"));
        assert_eq!(single(b"[]").unwrap_err().0, "ERR empty command");
        assert!(single(b"[\"GET\", null]").unwrap_err().0.contains("strings or numbers"));
        assert!(single(b"[\"GET\", [\"x\"]]").unwrap_err().0.contains("strings or numbers"));
        assert!(single(b"").unwrap_err().0.contains("invalid JSON"));
    }

    #[test]
    fn batches() {
        let b = batch(br#"[["SET","k","v"],["GET","k"]]"#).unwrap();
        assert_eq!(b.len(), 2);
        assert!(batch(b"[]").is_err());
        assert!(batch(br#"["GET","k"]"#).is_err());
        assert!(batch(br#"[["GET","k"],[]]"#).is_err());
    }

    #[test]
    fn url_form() {
        let c = parse_url_form("/set/a%20b/v%00", Some("EX=100&_token=secret&NX"), b"").unwrap();
        assert_eq!(args(&c), vec![&b"set"[..], b"a b", b"v\0", b"EX", b"100", b"NX"]);
        let c = parse_url_form("/set/k", None, b"\xff\x00body").unwrap();
        assert_eq!(args(&c), vec![&b"set"[..], b"k", b"\xff\x00body"]);
        let c = parse_url_form("/set//v", None, b"").unwrap();
        assert_eq!(args(&c), vec![&b"set"[..], b"", b"v"]);
        assert!(parse_url_form("/", None, b"").is_err());
        assert!(parse_url_form("/", Some("_token=x"), b"").is_err());
    }
}
