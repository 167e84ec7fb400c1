//! What each kind of request sends to Redis and how its replies become a response
//! body: a single command, a pipeline, or a transaction. No HTTP in here.

use bytes::Bytes;

use crate::auth::Access;
use crate::command::Command;
use crate::encoding::{error_object, item_object, write_result, Encoding};
use crate::errors::GatewayError;
use crate::policy::{Policy, Refusal};
use crate::redis_client::RedisClient;
use crate::redis_conn::RedisError;
use crate::resp::Reply;

/// A JSON response body for a 200.
pub type JsonBody = Vec<u8>;

/// Who is asking and how they want their answer.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub redis: &'a RedisClient,
    pub policy: &'a Policy,
    pub access: Access,
    pub encoding: Encoding,
}

impl Run<'_> {
    fn refusal(&self, command: &Command) -> Option<Refusal> {
        self.policy.refusal(command, self.access)
    }
}

/// `POST /` or the URL form: `{"result": …}`, or a 400 with Redis's error text.
pub async fn run_single(run: Run<'_>, command: Command) -> Result<JsonBody, GatewayError> {
    if let Some(refusal) = run.refusal(&command) {
        return Err(refusal.into());
    }
    let encoding = run.encoding;
    let replies = run.redis.execute(&[command.args]).await?;
    let reply = one_reply(replies)?;
    if let Some(text) = reply.error_text() {
        return Err(GatewayError::Command(text));
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"result\":");
    write_result(&reply, encoding, &mut out);
    out.push(b'}');
    Ok(out)
}

fn one_reply(replies: Vec<Reply>) -> Result<Reply, GatewayError> {
    replies
        .into_iter()
        .next()
        .ok_or_else(|| GatewayError::Redis(RedisError::Protocol("no reply from Redis".into())))
}

/// `POST /pipeline`: every command runs, in order; each gets `{"result"}` or
/// `{"error"}`. A refused command gets its error in place and is not sent.
pub async fn run_pipeline(run: Run<'_>, commands: Vec<Command>) -> Result<JsonBody, GatewayError> {
    let encoding = run.encoding;
    let refusals: Vec<Option<Refusal>> = commands.iter().map(|c| run.refusal(c)).collect();
    let to_send: Vec<Vec<Bytes>> = commands
        .into_iter()
        .zip(&refusals)
        .filter(|(_, refused)| refused.is_none())
        .map(|(command, _)| command.args)
        .collect();
    let replies = run.redis.execute(&to_send).await?;
    if replies.len() != to_send.len() {
        return Err(GatewayError::Redis(RedisError::Protocol(
            "reply count does not match the pipeline".into(),
        )));
    }
    let mut replies = replies.into_iter();
    let mut out = Vec::with_capacity(32 * refusals.len());
    out.push(b'[');
    for (i, refused) in refusals.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match refused {
            Some(refusal) => error_object(refusal.text(), &mut out),
            None => match replies.next() {
                Some(reply) => item_object(&reply, encoding, &mut out),
                None => error_object("ERR no reply from Redis", &mut out),
            },
        }
    }
    out.push(b']');
    Ok(out)
}

/// `POST /multi-exec`: `MULTI`, the commands and `EXEC` go to Redis as one
/// uninterrupted batch, so the transaction is atomic. A command Redis rejects
/// while queueing (unknown command, wrong arity) discards the whole transaction
/// and the request gets a 400 with that command's error; an error while
/// executing (e.g. INCR on a string) is that item's `{"error"}`.
pub async fn run_transaction(run: Run<'_>, commands: Vec<Command>) -> Result<JsonBody, GatewayError> {
    let encoding = run.encoding;
    for command in &commands {
        if let Some(refusal) = run.refusal(command) {
            return Err(refusal.into());
        }
    }
    let count = commands.len();
    let mut batch: Vec<Vec<Bytes>> = Vec::with_capacity(count + 2);
    batch.push(vec![Bytes::from_static(b"MULTI")]);
    batch.extend(commands.into_iter().map(|c| c.args));
    batch.push(vec![Bytes::from_static(b"EXEC")]);
    let replies = run.redis.execute(&batch).await?;
    if replies.len() != count + 2 {
        return Err(GatewayError::Redis(RedisError::Protocol(
            "reply count does not match the transaction".into(),
        )));
    }
    // replies[0] answers MULTI, replies[1..=count] are QUEUED or a queue-time error.
    if let Some(text) = replies[0].error_text() {
        return Err(GatewayError::Command(text));
    }
    if let Some(text) = replies[1..=count].iter().find_map(Reply::error_text) {
        return Err(GatewayError::Command(text));
    }
    match &replies[count + 1] {
        Reply::Array(results) => {
            let mut out = Vec::with_capacity(32 * count);
            out.push(b'[');
            for (i, result) in results.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                item_object(result, encoding, &mut out);
            }
            out.push(b']');
            Ok(out)
        }
        Reply::Error(text) => Err(GatewayError::Command(String::from_utf8_lossy(text).into_owned())),
        _ => Err(GatewayError::Command("ERR transaction aborted".into())),
    }
}
