//! The gateway's handle on Redis: one live connection, replaced when it breaks or when the
//! server says it is no longer the primary. With Sentinels, every new connection first asks
//! them where the primary is, and a request that finds no primary waits for one (within its
//! timeout) instead of failing: only the requests in flight when the primary went away fail.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::RedisTlsOptions;
use crate::metrics::METRICS;
use crate::redis_conn::{Connection, Handshake, RedisError};
use crate::redis_target::{Endpoint, RedisAddress, RedisTarget};
use crate::resp::Reply;
use crate::sentinel::Sentinels;
use crate::tls_client::TlsClient;
use crate::transport;

/// How long a failed connect is remembered: requests in that window fail fast (or, with
/// Sentinels, wait) instead of each trying a new connect, so an outage is not a connect storm.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait for a new connection (Sentinel lookup, TLS, AUTH/SELECT/PING).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Everything needed to open a connection.
pub struct RedisSettings {
    pub target: RedisTarget,
    pub tls: RedisTlsOptions,
    pub sentinel_password: Option<String>,
    pub request_timeout: Duration,
}

pub struct RedisClient {
    target: RedisTarget,
    tls: Option<TlsClient>,
    sentinel_password: Option<String>,
    request_timeout: Duration,
    current: RwLock<Option<Arc<Connection>>>,
    connecting: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<(Instant, RedisError)>>,
    /// The address of the last successful connection, to log (and count) a primary change.
    last_address: Mutex<Option<RedisAddress>>,
}

impl RedisClient {
    /// Loads the TLS files if any; the error is one line.
    pub fn new(settings: RedisSettings) -> Result<RedisClient, String> {
        let tls = if settings.target.tls { Some(TlsClient::new(&settings.tls)?) } else { None };
        Ok(RedisClient {
            target: settings.target,
            tls,
            sentinel_password: settings.sentinel_password,
            request_timeout: settings.request_timeout,
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
            last_address: Mutex::new(None),
        })
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    fn follows_sentinels(&self) -> bool {
        matches!(self.target.endpoint, Endpoint::Sentinel { .. })
    }

    fn live_connection(&self) -> Option<Arc<Connection>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|c| c.is_alive()).cloned()
    }

    /// Where to connect: the fixed address, or the primary the Sentinels name now.
    async fn resolve(&self) -> Result<RedisAddress, RedisError> {
        match &self.target.endpoint {
            Endpoint::Direct(address) => Ok(address.clone()),
            Endpoint::Sentinel { sentinels, master } => {
                let sentinels = Sentinels {
                    addresses: sentinels,
                    master,
                    password: self.sentinel_password.as_deref(),
                    tls: self.tls.as_ref(),
                };
                sentinels.primary().await
            }
        }
    }

    async fn open(&self) -> Result<(Connection, RedisAddress), RedisError> {
        let attempt = async {
            let address = self.resolve().await?;
            let io = transport::connect(&address, self.tls.as_ref()).await?;
            let handshake = Handshake {
                username: self.target.username.clone(),
                password: self.target.password.clone(),
                db: self.target.db,
                require_primary: self.follows_sentinels(),
            };
            let connection = Connection::open(io, &handshake).await?;
            Ok((connection, address))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::Unavailable("connect timed out".into())),
        }
    }

    /// Makes `connection` the one new requests use.
    fn install(&self, connection: Connection, address: RedisAddress) -> Arc<Connection> {
        let connection = Arc::new(connection);
        let replaced = self.current.write().unwrap_or_else(|p| p.into_inner()).replace(connection.clone());
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let previous = self.last_address.lock().unwrap_or_else(|p| p.into_inner()).replace(address.clone());
        if replaced.is_some() {
            METRICS.redis_reconnects.inc();
            match previous {
                Some(previous) if previous != address => {
                    METRICS.redis_primary_changes.inc();
                    crate::log::info(&format!("connected to the new primary {address} (was {previous})"));
                }
                _ => crate::log::info(&format!("reconnected to Redis at {address}")),
            }
        }
        connection
    }

    async fn connection(&self) -> Result<Arc<Connection>, RedisError> {
        if let Some(connection) = self.live_connection() {
            return Ok(connection);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.live_connection() {
            return Ok(connection);
        }
        if let Some((when, error)) = &*self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) {
            if when.elapsed() < RECONNECT_BACKOFF {
                return Err(error.clone());
            }
        }
        match self.open().await {
            Ok((connection, address)) => Ok(self.install(connection, address)),
            Err(error) => {
                METRICS.redis_connect_failures.inc();
                crate::log::error(&format!("cannot connect to {}: {error}", self.target));
                *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Connects now (at start-up), without logging: the caller reports the failure.
    pub async fn connect_now(&self) -> Result<(), RedisError> {
        let (connection, address) = self.open().await?;
        *self.last_address.lock().unwrap_or_else(|p| p.into_inner()) = Some(address);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(connection));
        Ok(())
    }

    /// A connection for a request. With Sentinels, waits for a primary until `deadline`.
    async fn connection_until(&self, deadline: tokio::time::Instant) -> Result<Arc<Connection>, RedisError> {
        loop {
            match self.connection().await {
                Ok(connection) => return Ok(connection),
                Err(error) if !self.follows_sentinels() => return Err(error),
                Err(error) => {
                    let retry_at = tokio::time::Instant::now() + RECONNECT_BACKOFF;
                    if retry_at >= deadline {
                        return Err(error);
                    }
                    tokio::time::sleep_until(retry_at).await;
                }
            }
        }
    }

    /// Runs `commands` as one batch (connecting first if needed), within the request timeout.
    pub async fn execute(&self, commands: &[Vec<Bytes>]) -> Result<Vec<Reply>, RedisError> {
        let _in_flight = METRICS.in_flight_batches.track();
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let attempt = async {
            let connection = self.connection_until(deadline).await?;
            connection.execute(commands).await
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::Timeout),
        }
    }
}
