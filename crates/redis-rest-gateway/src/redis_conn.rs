//! One shared, multiplexed connection to Redis, and the client that keeps it alive.
//!
//! Every HTTP request hands the connection a *batch*: the RESP bytes of one or
//! more commands and the number of replies they produce. A single writer task
//! writes batches whole, one after another, coalescing whatever is queued into
//! one `write`; a single reader task hands replies back in the same order. So
//! requests never wait for each other's round trips (no head-of-line blocking),
//! and a `MULTI … EXEC` batch reaches Redis with nothing from another request in
//! between, which together with Redis's own queueing makes it atomic.
//!
//! When the socket fails, every request waiting on it gets
//! [`RedisError::Unavailable`] and the next request opens a new connection. A
//! `READONLY` reply (the server was demoted to a replica) *retires* the connection:
//! requests already on it get their replies, new ones go to a new connection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::resp::{encode_command, parse_reply, Reply};
use crate::transport::Io;

/// Why a request got no reply from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisError {
    /// Could not connect, or the connection broke while the request was in flight.
    Unavailable(String),
    /// Redis did not answer within the request timeout.
    Timeout,
    /// Redis answered something that is not RESP; the connection was dropped.
    Protocol(String),
}

impl std::fmt::Display for RedisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisError::Unavailable(why) => write!(f, "Redis is unavailable: {why}"),
            RedisError::Timeout => write!(f, "Redis did not answer in time"),
            RedisError::Protocol(why) => write!(f, "{why}"),
        }
    }
}

type ReplySender = oneshot::Sender<Result<Vec<Reply>, RedisError>>;

/// Commands for one request, already in RESP.
struct Batch {
    bytes: Vec<u8>,
    replies_expected: usize,
    reply_to: ReplySender,
}

/// A batch that has been written and awaits its replies.
struct InFlight {
    replies_expected: usize,
    replies: Vec<Reply>,
    reply_to: ReplySender,
}

/// State the reader and writer tasks share.
struct Shared {
    /// Batches in the order they were written. `alive` is only changed with this
    /// lock held, so nothing is queued after the queue was failed.
    in_flight: Mutex<InFlightQueue>,
    alive: AtomicBool,
    /// Still answering, but new requests should go elsewhere (it said `READONLY`).
    retired: AtomicBool,
    /// The handshake succeeded. A failure before that is the connect's error, reported by
    /// whoever connects (one line at start-up), not logged as a dropped connection.
    ready: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

struct InFlightQueue {
    alive: bool,
    batches: VecDeque<InFlight>,
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, InFlightQueue> {
        // A poisoned lock only means another task panicked mid-update; the
        // queue itself is still a valid VecDeque.
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, batch: InFlight) {
        let mut queue = self.lock_queue();
        if queue.alive {
            queue.batches.push_back(batch);
        } else {
            let _ = batch.reply_to.send(Err(RedisError::Unavailable("connection lost".into())));
        }
    }

    /// Hands replies, in order, to the oldest batches, under one lock. Returns false if a
    /// reply arrived that no batch expected.
    fn deliver(&self, replies: &mut Vec<Reply>) -> bool {
        if replies.iter().any(|r| matches!(r, Reply::Error(text) if text.starts_with(b"READONLY")))
            && !self.retired.swap(true, Ordering::SeqCst)
        {
            crate::log::error("Redis answered READONLY (it is a replica now): reconnecting to the primary");
        }
        let mut done = Vec::new();
        let mut queue = self.lock_queue();
        for reply in replies.drain(..) {
            let Some(front) = queue.batches.front_mut() else {
                return false;
            };
            front.replies.push(reply);
            if front.replies.len() >= front.replies_expected {
                if let Some(batch) = queue.batches.pop_front() {
                    done.push(batch);
                }
            }
        }
        drop(queue);
        // Woken outside the lock, so a woken request never waits on it.
        for batch in done {
            let _ = batch.reply_to.send(Ok(batch.replies));
        }
        true
    }

    /// Marks the connection dead, fails everything in flight, stops both tasks.
    fn fail(&self, error: RedisError) {
        let drained: Vec<InFlight> = {
            let mut queue = self.lock_queue();
            if !queue.alive {
                return;
            }
            queue.alive = false;
            self.alive.store(false, Ordering::SeqCst);
            queue.batches.drain(..).collect()
        };
        if self.ready.load(Ordering::SeqCst) {
            crate::log::error(&format!("redis connection dropped: {error}"));
        }
        for batch in drained {
            let _ = batch.reply_to.send(Err(error.clone()));
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}

/// What to send right after connecting.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
    /// Check with `ROLE` that the server is a primary (when Sentinels named it).
    pub require_primary: bool,
}

/// A live, multiplexed connection. Cheap to share behind an `Arc`.
pub struct Connection {
    queue: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
}

/// Bytes the writer gathers from queued batches before one `write`.
const COALESCE_BYTES: usize = 256 * 1024;

impl Connection {
    /// Starts the reader and writer on `io`, logs in, selects the database.
    pub async fn open(io: Io, handshake: &Handshake) -> Result<Connection, RedisError> {
        let (reader, writer) = io;
        let shared = Arc::new(Shared {
            in_flight: Mutex::new(InFlightQueue { alive: true, batches: VecDeque::new() }),
            alive: AtomicBool::new(true),
            retired: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let (queue, batches) = mpsc::channel::<Batch>(4096);
        let writer_task = tokio::spawn(write_loop(writer, batches, shared.clone()));
        let reader_task = tokio::spawn(read_loop(reader, shared.clone()));
        {
            let mut tasks = shared.tasks.lock().unwrap_or_else(|p| p.into_inner());
            tasks.push(writer_task.abort_handle());
            tasks.push(reader_task.abort_handle());
        }
        let connection = Connection { queue, shared };
        connection.handshake(handshake).await?;
        connection.shared.ready.store(true, Ordering::SeqCst);
        Ok(connection)
    }

    async fn handshake(&self, target: &Handshake) -> Result<(), RedisError> {
        let mut commands: Vec<Vec<Bytes>> = Vec::new();
        if let Some(password) = &target.password {
            let mut auth = vec![Bytes::from_static(b"AUTH")];
            if let Some(user) = &target.username {
                auth.push(Bytes::from(user.clone()));
            }
            auth.push(Bytes::from(password.clone()));
            commands.push(auth);
        }
        if target.db != 0 {
            commands.push(vec![Bytes::from_static(b"SELECT"), Bytes::from(target.db.to_string())]);
        }
        commands.push(vec![Bytes::from_static(b"PING")]);
        if target.require_primary {
            commands.push(vec![Bytes::from_static(b"ROLE")]);
        }
        let replies = self.execute(&commands).await?;
        for reply in &replies {
            if let Some(text) = reply.error_text() {
                self.shared.fail(RedisError::Unavailable(text.clone()));
                return Err(RedisError::Unavailable(text));
            }
        }
        if target.require_primary {
            let role = match replies.last() {
                Some(Reply::Array(fields)) => match fields.first() {
                    Some(Reply::Bulk(role) | Reply::Status(role)) => {
                        String::from_utf8_lossy(role).into_owned()
                    }
                    _ => String::new(),
                },
                _ => String::new(),
            };
            if role != "master" {
                let error = RedisError::Unavailable(format!("the server named as primary is a {role:?}"));
                self.shared.fail(error.clone());
                return Err(error);
            }
        }
        Ok(())
    }

    /// Open, and not retired: new requests may use it.
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst) && !self.shared.retired.load(Ordering::SeqCst)
    }

    /// Sends `commands` as one uninterrupted batch; returns one reply per command.
    pub async fn execute(&self, commands: &[Vec<Bytes>]) -> Result<Vec<Reply>, RedisError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut bytes =
            Vec::with_capacity(commands.iter().map(|c| c.iter().map(|a| a.len() + 16).sum::<usize>()).sum());
        for command in commands {
            encode_command(command, &mut bytes);
        }
        let (reply_to, reply) = oneshot::channel();
        let batch = Batch { bytes, replies_expected: commands.len(), reply_to };
        self.queue.send(batch).await.map_err(|_| RedisError::Unavailable("connection lost".into()))?;
        match reply.await {
            Ok(result) => result,
            Err(_) => Err(RedisError::Unavailable("connection lost".into())),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let tasks = std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}

async fn write_loop(
    mut writer: Box<dyn AsyncWrite + Send + Unpin>,
    mut batches: mpsc::Receiver<Batch>,
    shared: Arc<Shared>,
) {
    let mut buffer: Vec<u8> = Vec::with_capacity(COALESCE_BYTES);
    while let Some(first) = batches.recv().await {
        buffer.clear();
        // Let the other request tasks that are ready run first: their batches join this
        // write instead of each costing a send of its own (on loopback a send is most of the
        // per-request CPU). Costs one trip through the scheduler's queue.
        if batches.is_empty() {
            tokio::task::yield_now().await;
        }
        let mut next = Some(first);
        while let Some(batch) = next.take() {
            // Registered before its bytes leave, so the reader always finds it.
            shared.push(InFlight {
                replies_expected: batch.replies_expected,
                replies: Vec::with_capacity(batch.replies_expected),
                reply_to: batch.reply_to,
            });
            buffer.extend_from_slice(&batch.bytes);
            if buffer.len() < COALESCE_BYTES {
                next = batches.try_recv().ok();
            }
        }
        if let Err(e) = writer.write_all(&buffer).await {
            shared.fail(RedisError::Unavailable(format!("write failed: {e}")));
            return;
        }
        if buffer.capacity() > 4 * COALESCE_BYTES {
            buffer = Vec::with_capacity(COALESCE_BYTES);
        }
    }
    // Every sender is gone: the connection was replaced or the process is ending.
    let _ = writer.shutdown().await;
}

async fn read_loop(mut reader: Box<dyn AsyncRead + Send + Unpin>, shared: Arc<Shared>) {
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    let mut replies: Vec<Reply> = Vec::with_capacity(64);
    loop {
        loop {
            match parse_reply(&mut buffer) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(e) => {
                    shared.fail(RedisError::Protocol(e.to_string()));
                    return;
                }
            }
        }
        if !replies.is_empty() && !shared.deliver(&mut replies) {
            shared.fail(RedisError::Protocol("a reply arrived that no request asked for".into()));
            return;
        }
        if buffer.capacity() - buffer.len() < 16 * 1024 {
            buffer.reserve(64 * 1024);
        }
        match reader.read_buf(&mut buffer).await {
            Ok(0) => {
                shared.fail(RedisError::Unavailable("Redis closed the connection".into()));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.fail(RedisError::Unavailable(format!("read failed: {e}")));
                return;
            }
        }
    }
}
