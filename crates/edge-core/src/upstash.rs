//! Redis over Upstash's REST protocol; the HTTP layer is `upstash_http` (the runtime's `fetch` in
//! workerd, reqwest natively).
//!
//! Every [`Store::run`] is one `POST /pipeline`, every [`Store::atomic`] one `POST /multi-exec`,
//! both with `Upstash-Encoding: base64` so that stored bytes come back exactly. Failures are
//! typed ([`StoreError`]) and bounded by `REDIS_TIMEOUT_MS`; a [`CircuitBreaker`] makes a dead
//! Redis cost one timeout per window instead of one per request.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::circuit_breaker::{Admission, CircuitBreaker};
use crate::clock::{Clock, SystemClock};
use crate::store::{Op, Reply, Store, StoreError, StoreKind};
use crate::upstash_http::{Endpoint, UpstashHttp};

/// Deletes KEYS[1] only when it still holds ARGV[1]: a lock holder that outlived its lock's TTL
/// cannot delete the next holder's lock.
pub const COMPARE_AND_DELETE_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

pub const COMPARE_AND_EXTEND_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

pub const EXPIRE_AT_LEAST_SCRIPT: &str = "local left = redis.call('PTTL', KEYS[1]) \
     if left == -2 then return 0 end \
     if left == -1 or left < tonumber(ARGV[1]) then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
     return 0";

pub const REPLACE_IF_PRESENT_SCRIPT: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then \
     redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) \
     if KEYS[1] ~= KEYS[2] then redis.call('DEL', KEYS[1]) end \
     return 1 else return 0 end";

/// KEYS[1] marker, KEYS[2] session record; ARGV marker TTL, record, record TTL.
pub const WRITE_BACK_ONCE_SCRIPT: &str =
    "if not redis.call('SET', KEYS[1], 'w', 'PX', ARGV[1], 'NX') then return 0 end \
     if redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX') then return 1 end \
     return 2";

/// A Redis REST endpoint. Clones share the HTTP client, the breaker and the request counter.
#[derive(Clone)]
pub struct UpstashStore<C: Clock = SystemClock> {
    http: UpstashHttp,
    timeout: Duration,
    breaker: CircuitBreaker,
    clock: C,
    requests: Rc<Cell<u64>>,
}

impl UpstashStore<SystemClock> {
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Self {
        Self::with_clock(base_url, token, timeout, SystemClock)
    }
}

impl<C: Clock> UpstashStore<C> {
    pub fn with_clock(base_url: &str, token: &str, timeout: Duration, clock: C) -> Self {
        UpstashStore {
            http: UpstashHttp::new(base_url, token),
            timeout,
            breaker: CircuitBreaker::default(),
            clock,
            requests: Rc::new(Cell::new(0)),
        }
    }

    /// Replaces the breaker (tests use a short window; the worker shares one per isolate).
    pub fn with_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = breaker;
        self
    }

    /// HTTP requests sent so far by this store and its clones.
    pub fn requests_sent(&self) -> u64 {
        self.requests.get()
    }

    async fn post(&self, endpoint: Endpoint, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        let admission = self.breaker.admit(self.clock.now_ms());
        if admission == Admission::Refuse {
            return Err(StoreError::CircuitOpen);
        }
        let result = self.send(endpoint, ops).await;
        match &result {
            // Redis answered: the link works even if a command was wrong.
            Ok(_) | Err(StoreError::Rejected(_)) => self.breaker.record_success(),
            Err(_) => self.breaker.record_failure(self.clock.now_ms()),
        }
        result
    }

    async fn send(&self, endpoint: Endpoint, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        let body = Value::Array(ops.iter().map(command_json).collect());
        let body = serde_json::to_vec(&body).map_err(|e| StoreError::Malformed(e.to_string()))?;
        self.requests.set(self.requests.get() + 1);
        let answer = self.http.post(endpoint, body, self.timeout).await?;
        read_reply(endpoint.path(), answer.status, &answer.body, ops.len())
    }
}

/// Reads the answer to a `POST path` of `commands` commands: its status and body, as sent by a
/// Redis REST server (remote bytes: anything may come back; never panics).
pub(crate) fn read_reply(
    path: &str,
    status: u16,
    bytes: &[u8],
    commands: usize,
) -> Result<Vec<Reply>, StoreError> {
    if status == 401 || status == 403 {
        return Err(StoreError::Unauthorized);
    }
    let parsed: Result<Value, _> = serde_json::from_slice(bytes);
    if status == 400 && path == "/multi-exec" {
        // A queue-time error discards the whole transaction.
        let message =
            parsed.ok().and_then(|v| error_text(&v)).unwrap_or_else(|| "transaction refused".into());
        return Err(StoreError::Rejected(message));
    }
    if !(200..300).contains(&status) {
        let message = parsed
            .ok()
            .and_then(|v| error_text(&v))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned());
        return Err(StoreError::Http { status, message });
    }
    let value = parsed.map_err(|e| StoreError::Malformed(format!("not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(StoreError::Malformed("expected a JSON array of results".into()));
    };
    if items.len() != commands {
        return Err(StoreError::Malformed(format!("{} results for {commands} commands", items.len())));
    }
    items.iter().map(item_reply).collect()
}

fn error_text(v: &Value) -> Option<String> {
    v.get("error").and_then(Value::as_str).map(str::to_string)
}

fn command_json(op: &Op) -> Value {
    let s = |x: &str| Value::String(x.to_string());
    let mut args: Vec<Value> = match op {
        Op::Get(k) => vec![s("GET"), s(k)],
        Op::MGet(keys) => std::iter::once(s("MGET")).chain(keys.iter().map(|k| s(k))).collect(),
        Op::Set { key, value, ttl_ms, nx } => {
            let mut v = vec![s("SET"), s(key), s(value)];
            if let Some(ms) = ttl_ms {
                v.push(s("PX"));
                v.push(Value::from(*ms));
            }
            if *nx {
                v.push(s("NX"));
            }
            v
        }
        Op::Del(keys) => std::iter::once(s("DEL")).chain(keys.iter().map(|k| s(k))).collect(),
        Op::PTtl(k) => vec![s("PTTL"), s(k)],
        Op::PExpire { key, ttl_ms } => vec![s("PEXPIRE"), s(key), Value::from(*ttl_ms)],
        Op::IncrBy { key, by } => vec![s("INCRBY"), s(key), Value::from(*by)],
        Op::CompareAndDelete { key, token } => {
            vec![s("EVAL"), s(COMPARE_AND_DELETE_SCRIPT), Value::from(1), s(key), s(token)]
        }
        Op::CompareAndExtend { key, token, ttl_ms } => {
            vec![
                s("EVAL"),
                s(COMPARE_AND_EXTEND_SCRIPT),
                Value::from(1),
                s(key),
                s(token),
                Value::from(*ttl_ms),
            ]
        }
        Op::Exists(keys) => std::iter::once(s("EXISTS")).chain(keys.iter().map(|k| s(k))).collect(),
        Op::ExpireAtLeast { key, ttl_ms } => {
            vec![s("EVAL"), s(EXPIRE_AT_LEAST_SCRIPT), Value::from(1), s(key), Value::from(*ttl_ms)]
        }
        Op::ReplaceIfPresent { old_key, new_key, value, ttl_ms } => vec![
            s("EVAL"),
            s(REPLACE_IF_PRESENT_SCRIPT),
            Value::from(2),
            s(old_key),
            s(new_key),
            s(value),
            Value::from(*ttl_ms),
        ],
        Op::WriteBackOnce { marker_key, marker_ttl_ms, key, value, ttl_ms } => vec![
            s("EVAL"),
            s(WRITE_BACK_ONCE_SCRIPT),
            Value::from(2),
            s(marker_key),
            s(key),
            Value::from(*marker_ttl_ms),
            s(value),
            Value::from(*ttl_ms),
        ],
        Op::SAdd { key, members } => {
            [s("SADD"), s(key)].into_iter().chain(members.iter().map(|m| s(m))).collect()
        }
        Op::SMembers(k) => vec![s("SMEMBERS"), s(k)],
        Op::SRandMember { key, count } => vec![s("SRANDMEMBER"), s(key), Value::from(*count)],
        Op::SScan { key, cursor, count } => {
            vec![s("SSCAN"), s(key), s(cursor), s("COUNT"), Value::from(*count)]
        }
        Op::SRem { key, members } => {
            [s("SREM"), s(key)].into_iter().chain(members.iter().map(|m| s(m))).collect()
        }
    };
    args.shrink_to_fit();
    Value::Array(args)
}

/// One `{"result": …}` / `{"error": …}` item of a pipeline answer.
fn item_reply(item: &Value) -> Result<Reply, StoreError> {
    if let Some(message) = error_text(item) {
        return Ok(Reply::Error(message));
    }
    match item.get("result") {
        Some(result) => decode_result(result),
        None => Err(StoreError::Malformed("pipeline item has neither result nor error".into())),
    }
}

/// Decodes a base64-encoded result: strings are base64 of their bytes except the status "OK"
/// (which can never be base64 output: that is always a multiple of 4 characters long).
fn decode_result(v: &Value) -> Result<Reply, StoreError> {
    match v {
        Value::Null => Ok(Reply::Nil),
        Value::Number(n) => {
            n.as_i64().map(Reply::Int).ok_or_else(|| StoreError::Malformed(format!("non-integer number {n}")))
        }
        Value::String(text) if text == "OK" => Ok(Reply::Status("OK".into())),
        Value::String(text) => STANDARD
            .decode(text)
            .map(Reply::Bytes)
            .map_err(|_| StoreError::Malformed("a result string is not base64".into())),
        Value::Array(items) => items.iter().map(decode_result).collect::<Result<_, _>>().map(Reply::Array),
        Value::Bool(_) | Value::Object(_) => {
            Err(StoreError::Malformed("unexpected JSON type in result".into()))
        }
    }
}

impl<C: Clock> Store for UpstashStore<C> {
    fn kind(&self) -> StoreKind {
        StoreKind::Upstash
    }

    async fn run(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.post(Endpoint::Pipeline, ops).await
    }

    async fn atomic(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.post(Endpoint::MultiExec, ops).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_as_upstash_arrays() {
        let set = Op::Set { key: "k".into(), value: "v".into(), ttl_ms: Some(5000), nx: true };
        assert_eq!(command_json(&set), serde_json::json!(["SET", "k", "v", "PX", 5000, "NX"]));
        let cad = Op::CompareAndDelete { key: "l".into(), token: "t".into() };
        assert_eq!(command_json(&cad), serde_json::json!(["EVAL", COMPARE_AND_DELETE_SCRIPT, 1, "l", "t"]));
        assert_eq!(
            command_json(&Op::MGet(vec!["a".into(), "b".into()])),
            serde_json::json!(["MGET", "a", "b"])
        );
    }

    #[test]
    fn results_are_decoded_from_base64() {
        let item = serde_json::json!({"result": ["aGk=", null, 3, "OK", ["AP8="]]});
        assert_eq!(
            item_reply(&item).unwrap(),
            Reply::Array(vec![
                Reply::Bytes(b"hi".to_vec()),
                Reply::Nil,
                Reply::Int(3),
                Reply::Status("OK".into()),
                Reply::Array(vec![Reply::Bytes(vec![0, 255])]),
            ])
        );
        assert_eq!(
            item_reply(&serde_json::json!({"error": "ERR boom"})).unwrap(),
            Reply::Error("ERR boom".into())
        );
    }

    #[test]
    fn garbage_results_are_malformed_not_panics() {
        for bad in [
            serde_json::json!({"result": "not base64!"}),
            serde_json::json!({"result": 1.5}),
            serde_json::json!({"result": {"a": 1}}),
            serde_json::json!({"nothing": 1}),
            serde_json::json!(42),
        ] {
            assert!(matches!(item_reply(&bad), Err(StoreError::Malformed(_))), "{bad}");
        }
    }
}
