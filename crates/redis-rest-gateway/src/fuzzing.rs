//! One entry point per fuzz target (docs §11): the cargo-fuzz targets in `fuzz/` call these with
//! the fuzzer's bytes, and `tests/fuzz_corpus.rs` replays the committed corpora through the same
//! functions on stable Rust. Each must not panic on any input; the `assert!`s are the properties
//! checked beyond that. Not part of the crate's API: hidden, and free to change.

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::auth::Access;
use crate::command::{parse_batch, parse_single, parse_url_form, Command};
use crate::command_flags::CommandFlags;
use crate::encoding::{error_object, item_object, Encoding};
use crate::policy::Policy;
use crate::resp::{encode_command, parse_reply, Reply};

/// Request decoding: the JSON command, the JSON pipeline, the URL form; then what the gateway
/// does with a decoded command (the refusal policy for full and read-only tokens, RESP encoding) and the JSON it writes back.
///
/// Input: byte 0 picks the form (mod 3); the rest is the JSON body, or for the URL form
/// `path \n query \n body` (a missing query is none; the body may hold newlines).
pub fn gateway_request(data: &[u8]) {
    let Some((&form, rest)) = data.split_first() else { return };
    let body = Bytes::copy_from_slice(rest);
    let parsed = match form % 3 {
        0 => parse_single(&body).map(|command| vec![command]),
        1 => parse_batch(&body),
        _ => {
            let mut parts = rest.splitn(3, |&b| b == b'\n');
            let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let query = parts.next().map(|q| String::from_utf8_lossy(q).into_owned());
            let body = parts.next().unwrap_or_default();
            parse_url_form(&path, query.as_deref(), body).map(|command| vec![command])
        }
    };
    let commands = match parsed {
        Ok(commands) => commands,
        Err(error) => {
            // The error text (which may quote the request) is sent back as valid JSON.
            let mut out = Vec::new();
            error_object(&error.0, &mut out);
            let value: Value = serde_json::from_slice(&out).expect("error_object writes JSON");
            assert_eq!(value["error"].as_str(), Some(error.0.as_str()));
            return;
        }
    };
    if form % 3 != 2 {
        check_json_strings(rest, &commands);
    }
    for command in &commands {
        assert!(!command.args.is_empty());
        for allow_admin_commands in [false, true] {
            let policy = Policy { allow_admin_commands, flags: None };
            let _ = policy.refusal(command, Access::Full);
            // Without Redis's command flags a read-only token may run nothing.
            assert!(policy.refusal(command, Access::ReadOnly).is_some());
        }
        // Sent to Redis as RESP: reads back as the same arguments.
        let mut wire = Vec::new();
        encode_command(&command.args, &mut wire);
        let mut buf = BytesMut::from(&wire[..]);
        let echoed = parse_reply(&mut buf).expect("our own RESP parses");
        let expected = Reply::Array(command.args.iter().cloned().map(Reply::Bulk).collect());
        assert_eq!(echoed, Some(expected.clone()));
        assert!(buf.is_empty());
        // Written back as JSON, in both encodings, it says the same bytes.
        check_json_reply(&expected);
    }
}

/// Every JSON string argument is passed on as exactly its UTF-8 bytes.
fn check_json_strings(body: &[u8], commands: &[Command]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return };
    let as_args = |items: &[Value]| -> Vec<Option<Vec<u8>>> {
        items.iter().map(|item| item.as_str().map(|text| text.as_bytes().to_vec())).collect()
    };
    let expected: Vec<Vec<Option<Vec<u8>>>> = match &value {
        Value::Array(items)
            if items.iter().all(Value::is_array) && commands.len() == items.len() && !items.is_empty() =>
        {
            items.iter().filter_map(Value::as_array).map(|items| as_args(items)).collect()
        }
        Value::Array(items) if commands.len() == 1 => vec![as_args(items)],
        _ => return,
    };
    for (command, expected) in commands.iter().zip(expected) {
        assert_eq!(command.args.len(), expected.len());
        for (arg, expected) in command.args.iter().zip(expected) {
            if let Some(expected) = expected {
                assert_eq!(arg.as_ref(), expected.as_slice());
            }
        }
    }
}

/// The RESP reply reader (bytes from Redis), the JSON each reply becomes, and each reply read
/// as Redis's `COMMAND` table ([`CommandFlags::from_reply`]).
///
/// Input: the bytes Redis sent. Byte 0 also picks where the stream is cut in two: reading it in
/// two reads gives what reading it at once gives.
pub fn gateway_resp(data: &[u8]) {
    let whole = read_all(&[data]);
    let cut = data.first().map_or(0, |&b| usize::from(b) * data.len() / 256);
    let (first, second) = data.split_at(cut);
    assert_eq!(read_all(&[first, second]), whole, "cut at {cut}");
    for reply in whole.0 {
        check_json_reply(&reply);
        // A reply read as Redis's `COMMAND` table (read at start-up for read-only tokens).
        if let Ok(flags) = CommandFlags::from_reply(&reply) {
            let command = Command { args: vec![Bytes::from_static(b"get"), Bytes::from_static(b"k")] };
            let _ = flags.is_read_only(&command);
            let policy = Policy { allow_admin_commands: false, flags: Some(flags) };
            let _ = policy.refusal(&command, Access::ReadOnly);
        }
    }
}

/// Reads replies as the connection does: after each chunk arrives, every complete reply.
/// Returns the replies and whether the stream ended in a protocol error.
fn read_all(chunks: &[&[u8]]) -> (Vec<Reply>, bool) {
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match parse_reply(&mut buf) {
                Ok(Some(reply)) => {
                    assert!(buf.len() < before, "a reply read from nothing");
                    replies.push(reply);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "an incomplete reply consumed bytes");
                    break;
                }
                Err(_) => return (replies, true),
            }
        }
    }
    (replies, false)
}

/// `item_object` writes JSON that says exactly the reply, in both encodings.
fn check_json_reply(reply: &Reply) {
    for encoding in [Encoding::Plain, Encoding::Base64] {
        let mut out = Vec::new();
        item_object(reply, encoding, &mut out);
        let value: Value = serde_json::from_slice(&out).expect("item_object writes JSON");
        match reply {
            Reply::Error(text) => {
                assert_eq!(value["error"].as_str(), Some(String::from_utf8_lossy(text).as_ref()))
            }
            other => check_result(other, &value["result"], encoding),
        }
    }
}

fn check_result(reply: &Reply, value: &Value, encoding: Encoding) {
    match reply {
        Reply::Status(text) if encoding == Encoding::Base64 && text.as_ref() == b"OK" => {
            assert_eq!(value.as_str(), Some("OK"))
        }
        Reply::Status(bytes) | Reply::Bulk(bytes) | Reply::Error(bytes) => {
            let text = value.as_str().expect("a string");
            match encoding {
                Encoding::Plain => assert_eq!(text, String::from_utf8_lossy(bytes)),
                Encoding::Base64 => {
                    let decoded = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
                    assert_eq!(Bytes::from(decoded), *bytes);
                }
            }
        }
        Reply::Integer(n) => assert_eq!(value.as_i64(), Some(*n)),
        Reply::Nil => assert!(value.is_null()),
        Reply::Array(items) => {
            let values = value.as_array().expect("an array");
            assert_eq!(values.len(), items.len());
            for (item, value) in items.iter().zip(values) {
                check_result(item, value, encoding);
            }
        }
    }
}
