//! The HTTP side: routing, auth, body limits, response headers, the accept loop
//! and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::auth;
use crate::command::{parse_batch, parse_single, parse_url_form};
use crate::encoding::{error_object, Encoding};
use crate::errors::GatewayError;
use crate::gateway::{run_pipeline, run_single, run_transaction, JsonBody};
use crate::log;
use crate::redis_conn::RedisClient;

/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything a request handler needs.
pub struct State {
    pub redis: RedisClient,
    pub token: Vec<u8>,
    pub max_body_bytes: usize,
    /// Sent back as `upstash-sync-token`. With one Redis behind the gateway every
    /// read already sees every earlier write, so it only has to be present.
    sync_token: AtomicU64,
}

impl State {
    pub fn new(redis: RedisClient, token: &str, max_body_bytes: usize) -> State {
        State { redis, token: token.as_bytes().to_vec(), max_body_bytes, sync_token: AtomicU64::new(0) }
    }
}

/// Which of the protocol's request forms a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `POST /` with a JSON command.
    Json,
    /// `POST /pipeline`.
    Pipeline,
    /// `POST /multi-exec`.
    Transaction,
    /// `GET|POST /cmd/arg/...`.
    UrlForm,
}

fn route(path: &str) -> Route {
    match path.trim_end_matches('/') {
        "" => Route::Json,
        "/pipeline" => Route::Pipeline,
        "/multi-exec" => Route::Transaction,
        _ => Route::UrlForm,
    }
}

/// Accepts connections until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = service_fn(move |request| handle(state.clone(), request));
                    let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        // A client that hangs up mid-request is not the gateway's error.
                        let _ = connection.await;
                    });
                }
                Err(e) => {
                    log::error(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    log::info("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        log::error("shutdown: some connections were still busy after the grace period");
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut what = String::new();
    let (status, body) = match respond(&state, request, &mut what).await {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            let message = error.message();
            log::error(&format!(
                "{} {} {} {}{}: {}",
                error.status().as_u16(),
                method,
                path,
                error.kind(),
                if what.is_empty() { String::new() } else { format!(" ({what})") },
                message
            ));
            let mut body = Vec::with_capacity(message.len() + 16);
            error_object(&message, &mut body);
            (error.status(), body)
        }
    };
    let sync_token = state.sync_token.fetch_add(1, Ordering::Relaxed) + 1;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&sync_token.to_string()) {
        headers.insert("upstash-sync-token", value);
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, POST"));
    }
    Ok(response)
}

/// The request's 200 body, or why it failed. `what` collects the command names for the log.
async fn respond(
    state: &State,
    request: Request<Incoming>,
    what: &mut String,
) -> Result<JsonBody, GatewayError> {
    let route = route(request.uri().path());
    match (request.method(), route) {
        (&Method::POST, _) => {}
        (&Method::GET, Route::UrlForm | Route::Json) => {}
        _ => return Err(GatewayError::MethodNotAllowed),
    }

    let query = request.uri().query().map(str::to_string);
    let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let presented = auth::presented_token(authorization, query.as_deref());
    auth::check(&state.token, presented.as_deref())?;

    let encoding = Encoding::from_header(request.headers().get("upstash-encoding").map(|v| v.as_bytes()));
    let path = request.uri().path().to_string();
    let is_post = request.method() == Method::POST;
    let body = if is_post { read_body(request, state.max_body_bytes).await? } else { Bytes::new() };

    let redis = &state.redis;
    match route {
        Route::Json if is_post => {
            let command = parse_single(&body).map_err(|e| GatewayError::Malformed(e.0))?;
            *what = command.name();
            run_single(redis, command, encoding).await
        }
        Route::Pipeline | Route::Transaction => {
            let commands = parse_batch(&body).map_err(|e| GatewayError::Malformed(e.0))?;
            *what = commands.iter().map(|c| c.name()).collect::<Vec<_>>().join(",");
            if route == Route::Pipeline {
                run_pipeline(redis, commands, encoding).await
            } else {
                run_transaction(redis, commands, encoding).await
            }
        }
        Route::Json | Route::UrlForm => {
            let command =
                parse_url_form(&path, query.as_deref(), &body).map_err(|e| GatewayError::Malformed(e.0))?;
            *what = command.name();
            run_single(redis, command, encoding).await
        }
    }
}

/// Most bytes of an oversized body read and thrown away before answering 413.
/// Answering while the client is still sending would reset the connection under
/// it, and it would never see the error; past this, it gets the reset.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// Longest time spent draining an oversized body.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The whole body, refused with Upstash's error past `limit` bytes (by its
/// `Content-Length`, or while it streams in).
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, GatewayError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    let mut too_large = declared.is_some_and(|len| len > limit as u64);
    let mut collected: Vec<u8> = Vec::new();
    if !too_large {
        collected.reserve(declared.unwrap_or(0).min(limit as u64) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| GatewayError::BodyUnreadable(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if collected.len() + data.len() > limit {
                    too_large = true;
                    break;
                }
                collected.extend_from_slice(&data);
            }
        }
    }
    if !too_large {
        return Ok(Bytes::from(collected));
    }
    drop(collected);
    let drain = async {
        let mut drained: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                drained += data.len() as u64;
                if drained > DRAIN_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    Err(GatewayError::BodyTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Route::Json);
        assert_eq!(route("/pipeline"), Route::Pipeline);
        assert_eq!(route("/pipeline/"), Route::Pipeline);
        assert_eq!(route("/multi-exec"), Route::Transaction);
        assert_eq!(route("/get/k"), Route::UrlForm);
    }
}
