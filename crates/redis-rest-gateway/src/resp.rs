//! RESP2, the wire format Redis speaks: commands out, replies in.
//!
//! The gateway only ever speaks RESP2 (it never sends `HELLO 3`), so the reply
//! types are the five RESP2 ones.

use bytes::{Bytes, BytesMut};

/// One reply from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`, `+QUEUED`, ...
    Status(Bytes),
    /// `-ERR ...`: Redis's own error text, without the leading `-`.
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$n` followed by n bytes.
    Bulk(Bytes),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n` followed by n replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// The error text if this is an error reply, lossily decoded.
    pub fn error_text(&self) -> Option<String> {
        match self {
            Reply::Error(text) => Some(String::from_utf8_lossy(text).into_owned()),
            _ => None,
        }
    }
}

/// Appends one command, as a RESP array of bulk strings, to `out`.
pub fn encode_command(args: &[Bytes], out: &mut Vec<u8>) {
    let mut digits = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(digits.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(digits.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// The bytes from Redis could not be understood: the connection is out of step
/// and must be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid reply from Redis: {}", self.0)
    }
}

/// Deepest array nesting accepted from Redis (a guard against runaway recursion).
const MAX_DEPTH: usize = 64;

/// Takes one complete reply off the front of `buf`.
///
/// Returns `Ok(None)` (and leaves `buf` untouched) when `buf` does not yet hold a
/// whole reply.
pub fn parse_reply(buf: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
    match measure(buf, 0, 0)? {
        None => Ok(None),
        Some(len) => {
            let frame = buf.split_to(len).freeze();
            let mut cursor = 0;
            let reply = build(&frame, &mut cursor)?;
            Ok(Some(reply))
        }
    }
}

/// Finds the end of the line that starts at `start`; returns the index of `\r`.
fn line_end(buf: &[u8], start: usize) -> Option<usize> {
    let rest = buf.get(start..)?;
    let pos = rest.windows(2).position(|w| w == b"\r\n")?;
    Some(start + pos)
}

/// RESP's integers: an optional `-` and one or more ASCII digits, nothing else (`str::parse`
/// would also take a leading `+`, which Redis never sends: a stream that has one is out of step).
fn parse_int(line: &[u8]) -> Result<i64, ProtocolError> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    let well_formed = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    std::str::from_utf8(line)
        .ok()
        .filter(|_| well_formed)
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ProtocolError(format!("bad integer {:?}", String::from_utf8_lossy(line))))
}

/// Redis's own ceiling on a bulk string (`proto-max-bulk-len`, 512 MiB by default): a longer
/// length is a stream out of step, not a reply to wait for.
const MAX_LEN: usize = 512 * 1024 * 1024;

/// A bulk string's or an array's length: -1 is nil (`None`); any other negative, or anything
/// over [`MAX_LEN`], is an error.
fn parse_len(line: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match parse_int(line)? {
        -1 => Ok(None),
        n => usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_LEN)
            .map(Some)
            .ok_or_else(|| ProtocolError(format!("bad length {n}"))),
    }
}

/// Length in bytes of the complete reply starting at `start`, or `None` if it is
/// not all there yet. Cheap: no allocation.
fn measure(buf: &[u8], start: usize, depth: usize) -> Result<Option<usize>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deeply".into()));
    }
    let Some(&kind) = buf.get(start) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, start + 1) else {
        return Ok(None);
    };
    let after_line = eol + 2;
    match kind {
        b'+' | b'-' | b':' => Ok(Some(after_line - start)),
        b'$' => {
            let Some(n) = parse_len(&buf[start + 1..eol])? else {
                return Ok(Some(after_line - start));
            };
            let end = after_line.saturating_add(n).saturating_add(2);
            match buf.get(end - 2..end) {
                None => Ok(None),
                // The data is followed by CRLF; anything else means the length lied.
                Some(b"\r\n") => Ok(Some(end - start)),
                Some(_) => Err(ProtocolError(format!("bulk string of {n} bytes not followed by CRLF"))),
            }
        }
        b'*' => {
            let n = parse_len(&buf[start + 1..eol])?.unwrap_or(0);
            let mut pos = after_line;
            for _ in 0..n {
                match measure(buf, pos, depth + 1)? {
                    None => return Ok(None),
                    Some(len) => pos += len,
                }
            }
            Ok(Some(pos - start))
        }
        other => Err(ProtocolError(format!("unexpected type byte {:?}", other as char))),
    }
}

/// Builds the reply at `*cursor` from a frame already known to be complete
/// (and no deeper than [`MAX_DEPTH`]: `measure` checked).
fn build(frame: &Bytes, cursor: &mut usize) -> Result<Reply, ProtocolError> {
    let start = *cursor;
    let kind = *frame.get(start).ok_or_else(|| ProtocolError("truncated".into()))?;
    let eol = line_end(frame, start + 1).ok_or_else(|| ProtocolError("truncated".into()))?;
    let line = frame.slice(start + 1..eol);
    *cursor = eol + 2;
    match kind {
        b'+' => Ok(Reply::Status(line)),
        b'-' => Ok(Reply::Error(line)),
        b':' => Ok(Reply::Integer(parse_int(&line)?)),
        b'$' => {
            let Some(n) = parse_len(&line)? else {
                return Ok(Reply::Nil);
            };
            let data = frame.slice(*cursor..*cursor + n);
            *cursor += n + 2;
            Ok(Reply::Bulk(data))
        }
        b'*' => {
            let Some(n) = parse_len(&line)? else {
                return Ok(Reply::Nil);
            };
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(build(frame, cursor)?);
            }
            Ok(Reply::Array(items))
        }
        other => Err(ProtocolError(format!("unexpected type byte {:?}", other as char))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Reply> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(reply) = parse_reply(&mut buf).unwrap() {
            out.push(reply);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn encodes_binary_safe_commands() {
        let mut out = Vec::new();
        encode_command(&[Bytes::from_static(b"SET"), Bytes::from_static(b"k\r\n"), Bytes::new()], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_every_reply_type() {
        let replies =
            parse_all(b"+OK\r\n-ERR bad\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n");
        assert_eq!(
            replies,
            vec![
                Reply::Status(Bytes::from_static(b"OK")),
                Reply::Error(Bytes::from_static(b"ERR bad")),
                Reply::Integer(-7),
                Reply::Bulk(Bytes::from_static(b"a\r\n")),
                Reply::Nil,
                Reply::Nil,
                Reply::Array(vec![Reply::Integer(1), Reply::Array(vec![Reply::Bulk(Bytes::new())])]),
            ]
        );
    }

    #[test]
    fn waits_for_incomplete_replies() {
        for partial in [&b"$5\r\nab"[..], b"*2\r\n:1\r\n", b"+OK", b"$", b""] {
            let mut buf = BytesMut::from(partial);
            assert_eq!(parse_reply(&mut buf).unwrap(), None);
            assert_eq!(&buf[..], partial);
        }
    }

    #[test]
    fn rejects_garbage() {
        let mut buf = BytesMut::from(&b"?what\r\n"[..]);
        assert!(parse_reply(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"$x\r\n"[..]);
        assert!(parse_reply(&mut buf).is_err());
    }

    #[test]
    fn rejects_replies_redis_never_sends() {
        for bad in [
            &b":+5\r\n"[..], // a sign Redis never writes
            b": 5\r\n",      // nor a space
            b":\r\n",        // nor an empty integer
            b"$-2\r\n",      // the only negative length is -1 (nil)
            b"*-3\r\n",
            b"$3\r\nabcXY", // the data is not followed by CRLF: the length lied
            b"$3\r\nabcd\r\n",
            b"*1\r\n$1\r\nab\r\n", // the same inside an array
            b"$9999999999\r\n",    // over proto-max-bulk-len: not worth waiting for
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(parse_reply(&mut buf).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // Still accepted: what Redis does send.
        assert_eq!(parse_all(b":-0\r\n$0\r\n\r\n"), vec![Reply::Integer(0), Reply::Bulk(Bytes::new())]);
    }
}
