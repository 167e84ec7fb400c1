//! `redis-rest-gateway`: Upstash's Redis REST protocol in front of any Redis.
//!
//! The request path, top to bottom: [`listener`] accepts HTTP or HTTPS ([`tls_server`]);
//! [`server`] routes, checks the method and the token ([`auth`]), reads the body within its
//! limit ([`body`]); [`command`] turns it into Redis commands and [`policy`] decides which may
//! run; [`gateway`] sends them through the shared, multiplexed connection ([`redis_client`],
//! [`redis_conn`], [`transport`], speaking [`resp`]) and shapes the replies as Upstash's JSON
//! ([`encoding`]); every failure is a [`errors::GatewayError`] with its status. [`metrics`] and
//! [`log`] are what an operator sees.

pub mod auth;
pub mod body;
pub mod command;
pub mod command_flags;
pub mod config;
pub mod encoding;
pub mod errors;
/// Entry points of the fuzz targets and their corpus replay (docs §11); not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod listener;
pub mod log;
pub mod metrics;
pub mod policy;
pub mod redis_client;
pub mod redis_conn;
pub mod redis_target;
pub mod resp;
pub mod sentinel;
pub mod server;
pub mod tls_client;
pub mod tls_server;
pub mod transport;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::command_flags::CommandFlags;
use crate::config::{Args, Config};
use crate::policy::Policy;
use crate::redis_client::{RedisClient, RedisSettings};
use crate::redis_conn::RedisError;
use crate::server::{Site, State};
use crate::tls_server::TlsCertificates;

/// The binary's entry point: flags, runtime, run, exit code.
pub fn main_entry() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("redis-rest-gateway: {why}");
            return ExitCode::from(2);
        }
    };
    let mut builder = match config.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("redis-rest-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("redis-rest-gateway: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Checks Redis, binds, serves until SIGTERM or Ctrl-C. The error is one line.
pub async fn run(config: Config) -> Result<(), String> {
    log::set_format(config.log_format);
    let redis = RedisClient::new(RedisSettings {
        target: config.redis.clone(),
        tls: config.redis_tls.clone(),
        sentinel_password: config.sentinel_password.clone(),
        request_timeout: config.redis_timeout,
    })?;
    redis.connect_now().await.map_err(|e| match e {
        RedisError::Unavailable(why) => format!("cannot reach Redis at {}: {why}", config.redis),
        other => format!("cannot reach Redis at {}: {other}", config.redis),
    })?;
    let flags = if config.tokens.has_readonly() { Some(command_flags(&redis).await?) } else { None };
    let policy = Policy { allow_admin_commands: config.allow_admin_commands, flags };
    let tls = match &config.https {
        Some(files) => {
            let certificates = Arc::new(TlsCertificates::load(files.clone())?);
            tls_server::reload_on_sighup(certificates.clone())?;
            Some(certificates)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    let metrics_listener = match config.metrics_listen {
        Some(at) => {
            let l =
                tokio::net::TcpListener::bind(at).await.map_err(|e| format!("cannot listen on {at}: {e}"))?;
            let bound = l.local_addr().map_err(|e| format!("cannot read the metrics address: {e}"))?;
            log::info(&format!("metrics on http://{bound}/metrics"));
            Some(l)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    log::info(&format!(
        "redis-rest-gateway {} listening on {scheme}://{address} (redis {})",
        env!("CARGO_PKG_VERSION"),
        config.redis
    ));
    let state = Arc::new(State::new(
        redis,
        config.tokens.clone(),
        policy,
        config.max_body_bytes,
        config.metrics_token.clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_task = metrics_listener.map(|l| {
        let mut stop = stop_rx.clone();
        tokio::spawn(listener::serve(l, None, Site::Metrics, async move {
            let _ = stop.changed().await;
        }))
    });
    listener::serve(listener, tls, Site::Api(state), shutdown_signal()).await;
    let _ = stop_tx.send(true);
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    log::info("stopped");
    Ok(())
}

/// Redis's command flags, for the read-only tokens.
async fn command_flags(redis: &RedisClient) -> Result<CommandFlags, String> {
    let replies = redis
        .execute(&[vec![bytes::Bytes::from_static(b"COMMAND")]])
        .await
        .map_err(|e| format!("cannot read Redis's command flags (COMMAND): {e}"))?;
    let reply = replies.first().ok_or("cannot read Redis's command flags: no reply to COMMAND")?;
    if let Some(text) = reply.error_text() {
        return Err(format!("cannot read Redis's command flags (COMMAND): {text}"));
    }
    CommandFlags::from_reply(reply).map_err(|e| e.to_string())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => log::error(&format!("cannot listen for SIGTERM: {e}")),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
