//! The HTTP side: routing, auth, metrics, response headers. The accept loop is in
//! [`crate::listener`], the body limit in [`crate::body`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{self, Tokens};
use crate::body::read_body;
use crate::command::{parse_batch, parse_single, parse_url_form};
use crate::encoding::{error_object, Encoding};
use crate::errors::GatewayError;
use crate::gateway::{run_pipeline, run_single, run_transaction, JsonBody, Run};
use crate::log;
use crate::metrics::METRICS;
use crate::policy::Policy;
use crate::redis_client::RedisClient;

/// Everything a request handler needs.
pub struct State {
    pub redis: RedisClient,
    pub tokens: Tokens,
    pub policy: Policy,
    pub max_body_bytes: usize,
    /// `--metrics-token`: `GET /metrics` with it answers the metrics.
    pub metrics_token: Option<Vec<u8>>,
    /// Sent back as `upstash-sync-token`. With one Redis behind the gateway every
    /// read already sees every earlier write, so it only has to be present.
    sync_token: AtomicU64,
}

impl State {
    pub fn new(
        redis: RedisClient,
        tokens: Tokens,
        policy: Policy,
        max_body_bytes: usize,
        metrics_token: Option<String>,
    ) -> State {
        State {
            redis,
            tokens,
            policy,
            max_body_bytes,
            metrics_token: metrics_token.map(String::into_bytes),
            sync_token: AtomicU64::new(0),
        }
    }
}

/// What a listener serves.
#[derive(Clone)]
pub enum Site {
    /// The REST API (and `/metrics` with its token, if configured).
    Api(Arc<State>),
    /// `--metrics-listen`: only `GET /metrics`, no token.
    Metrics,
}

/// Which of the protocol's request forms a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `POST /` with a JSON command.
    Json,
    /// `GET|POST /cmd/arg/...`.
    UrlForm,
    /// `POST /pipeline`.
    Pipeline,
    /// `POST /multi-exec`.
    Transaction,
    /// `GET /metrics` (only when a metrics token is configured).
    Metrics,
}

impl Route {
    /// The index of its `endpoint` label in [`crate::metrics::ENDPOINTS`].
    fn endpoint(self) -> usize {
        self as usize
    }
}

fn route(path: &str, metrics: bool) -> Route {
    match path.trim_end_matches('/') {
        "" => Route::Json,
        "/pipeline" => Route::Pipeline,
        "/multi-exec" => Route::Transaction,
        "/metrics" if metrics => Route::Metrics,
        _ => Route::UrlForm,
    }
}

type HttpResponse = Response<Full<Bytes>>;

/// Every request on every listener.
pub async fn dispatch(site: Site, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    match site {
        Site::Api(state) => handle(state, request).await,
        Site::Metrics => Ok(metrics_only(&request)),
    }
}

fn metrics_response() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(METRICS.render())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

fn metrics_only(request: &Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let response = if request.uri().path() == "/metrics" && request.method() == Method::GET {
        metrics_response()
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"only GET /metrics here\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    };
    let outcome = if response.status().is_success() { "ok" } else { "other" };
    METRICS.record(Route::Metrics.endpoint(), outcome, started.elapsed());
    response
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let started = Instant::now();
    let route = route(request.uri().path(), state.metrics_token.is_some());
    if route == Route::Metrics {
        let result = metrics_request(&state, &request);
        let outcome = result.as_ref().map_or_else(GatewayError::kind, |_| "ok");
        METRICS.record(route.endpoint(), outcome, started.elapsed());
        return Ok(match result {
            Ok(response) => response,
            Err(error) => error_response(&state, &error, request.method().as_str(), "/metrics", &[]),
        });
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut names: Vec<Bytes> = Vec::new();
    let result = respond(&state, route, request, &mut names).await;
    let outcome = result.as_ref().map_or_else(GatewayError::kind, |_| "ok");
    METRICS.record(route.endpoint(), outcome, started.elapsed());
    Ok(match result {
        Ok(body) => json_response(&state, StatusCode::OK, body),
        Err(error) => error_response(&state, &error, method.as_str(), &path, &names),
    })
}

fn metrics_request(state: &State, request: &Request<Incoming>) -> Result<HttpResponse, GatewayError> {
    if request.method() != Method::GET {
        return Err(GatewayError::MethodNotAllowed);
    }
    let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let presented = auth::presented_token(authorization, request.uri().query());
    auth::check_one(state.metrics_token.as_deref().unwrap_or_default(), presented.as_deref())?;
    Ok(metrics_response())
}

fn error_response(
    state: &State,
    error: &GatewayError,
    method: &str,
    path: &str,
    names: &[Bytes],
) -> HttpResponse {
    let message = error.message();
    let commands: Vec<String> =
        names.iter().map(|n| String::from_utf8_lossy(n).to_ascii_uppercase()).collect();
    log::failed_request(&log::FailedRequest {
        status: error.status().as_u16(),
        method,
        path,
        kind: error.kind(),
        commands: &commands.join(","),
        message: &message,
    });
    let mut body = Vec::with_capacity(message.len() + 16);
    error_object(&message, &mut body);
    json_response(state, error.status(), body)
}

fn json_response(state: &State, status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let sync_token = state.sync_token.fetch_add(1, Ordering::Relaxed) + 1;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("upstash-sync-token", HeaderValue::from(sync_token));
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, POST"));
    }
    response
}

/// The request's 200 body, or why it failed. `names` collects the command names for the log.
async fn respond(
    state: &State,
    route: Route,
    request: Request<Incoming>,
    names: &mut Vec<Bytes>,
) -> Result<JsonBody, GatewayError> {
    match (request.method(), route) {
        (&Method::POST, _) => {}
        (&Method::GET, Route::UrlForm | Route::Json) => {}
        _ => return Err(GatewayError::MethodNotAllowed),
    }

    let query = request.uri().query().map(str::to_string);
    let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let presented = auth::presented_token(authorization, query.as_deref());
    let access = state.tokens.check(presented.as_deref())?;

    let encoding = Encoding::from_header(request.headers().get("upstash-encoding").map(|v| v.as_bytes()));
    let path = request.uri().path().to_string();
    let is_post = request.method() == Method::POST;
    let body = if is_post { read_body(request, state.max_body_bytes).await? } else { Bytes::new() };

    let run = Run { redis: &state.redis, policy: &state.policy, access, encoding };
    let first = |args: &[Bytes]| args.first().cloned().unwrap_or_default();
    match route {
        Route::Json if is_post => {
            let command = parse_single(&body).map_err(|e| GatewayError::Malformed(e.0))?;
            names.push(first(&command.args));
            run_single(run, command).await
        }
        Route::Pipeline | Route::Transaction => {
            let commands = parse_batch(&body).map_err(|e| GatewayError::Malformed(e.0))?;
            names.extend(commands.iter().map(|c| first(&c.args)));
            if route == Route::Pipeline {
                run_pipeline(run, commands).await
            } else {
                run_transaction(run, commands).await
            }
        }
        Route::Json | Route::UrlForm | Route::Metrics => {
            let command =
                parse_url_form(&path, query.as_deref(), &body).map_err(|e| GatewayError::Malformed(e.0))?;
            names.push(first(&command.args));
            run_single(run, command).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/", false), Route::Json);
        assert_eq!(route("/pipeline", false), Route::Pipeline);
        assert_eq!(route("/pipeline/", false), Route::Pipeline);
        assert_eq!(route("/multi-exec", false), Route::Transaction);
        assert_eq!(route("/get/k", false), Route::UrlForm);
        assert_eq!(route("/metrics", false), Route::UrlForm);
        assert_eq!(route("/metrics", true), Route::Metrics);
        // The metrics labels follow the routes' order.
        for (r, name) in [
            (Route::Json, "command"),
            (Route::UrlForm, "url"),
            (Route::Pipeline, "pipeline"),
            (Route::Transaction, "multi-exec"),
            (Route::Metrics, "metrics"),
        ] {
            assert_eq!(crate::metrics::ENDPOINTS[r.endpoint()], name);
        }
    }
}
