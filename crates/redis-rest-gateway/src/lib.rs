//! `redis-rest-gateway`: Upstash's Redis REST protocol in front of any Redis.
//!
//! The request path, top to bottom: [`server`] accepts HTTP, checks the method
//! and the token ([`auth`]), reads the body within its limit; [`command`] turns it
//! into Redis commands and refuses the ones that cannot work over stateless HTTP;
//! [`gateway`] sends them through the shared, multiplexed connection
//! ([`redis_conn`], speaking [`resp`]) and shapes the replies as Upstash's JSON
//! ([`encoding`]); every failure is a [`errors::GatewayError`] with its status.

pub mod auth;
pub mod command;
pub mod config;
pub mod encoding;
pub mod errors;
/// Entry points of the fuzz targets and their corpus replay (docs §11); not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod log;
pub mod redis_conn;
pub mod resp;
pub mod server;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::config::{Args, Config};
use crate::redis_conn::{RedisClient, RedisError};
use crate::server::State;

/// The binary's entry point: flags, runtime, run, exit code.
pub fn main_entry() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("redis-rest-gateway: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
    let redis = RedisClient::new(config.redis.clone(), config.redis_timeout);
    redis.connect_now().await.map_err(|e| match e {
        RedisError::Unavailable(why) => format!("cannot reach Redis at {}: {why}", config.redis),
        other => format!("cannot reach Redis at {}: {other}", config.redis),
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    log::info(&format!("listening on http://{address} (redis {})", config.redis));
    let state = Arc::new(State::new(redis, &config.token, config.max_body_bytes));
    server::serve(listener, state, shutdown_signal()).await;
    log::info("stopped");
    Ok(())
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
