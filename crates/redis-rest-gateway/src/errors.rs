//! Every way a request can fail, with the HTTP status and `{"error": …}` text it gets.

use hyper::StatusCode;

use crate::policy::Refusal;
use crate::redis_conn::RedisError;

/// The text Upstash answers for a body over its size limit.
pub const MAX_REQUEST_SIZE_EXCEEDED: &str = "ERR max request size exceeded";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No token presented.
    MissingToken,
    /// A token was presented and it is not the gateway's.
    WrongToken,
    /// A method other than GET or POST (or GET where only POST makes sense).
    MethodNotAllowed,
    /// The body is over `--max-body-bytes`.
    BodyTooLarge,
    /// The body could not be read from the client.
    BodyUnreadable(String),
    /// Not JSON, not an array, an empty command, ...
    Malformed(String),
    /// A command the gateway never forwards (blocking, stateful, streaming).
    Refused(String),
    /// A command this gateway or this token may not run (administration, writes with a
    /// read-only token).
    Forbidden(String),
    /// Redis answered with an error: its own text.
    Command(String),
    /// Redis could not be reached or did not answer.
    Redis(RedisError),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::MissingToken | GatewayError::WrongToken => StatusCode::UNAUTHORIZED,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyUnreadable(_)
            | GatewayError::Malformed(_)
            | GatewayError::Refused(_)
            | GatewayError::Command(_) => StatusCode::BAD_REQUEST,
            GatewayError::Redis(RedisError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Redis(RedisError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Redis(RedisError::Protocol(_)) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `error` field of the response body.
    pub fn message(&self) -> String {
        match self {
            GatewayError::MissingToken => "Unauthorized: no token; send Authorization: Bearer <token>".into(),
            GatewayError::WrongToken => "Unauthorized: invalid token".into(),
            GatewayError::MethodNotAllowed => {
                "ERR method not allowed: use POST (or GET for the URL form)".into()
            }
            GatewayError::BodyTooLarge => MAX_REQUEST_SIZE_EXCEEDED.into(),
            GatewayError::BodyUnreadable(why) => {
                format!("ERR could not read the request body: {why}")
            }
            GatewayError::Malformed(text)
            | GatewayError::Refused(text)
            | GatewayError::Forbidden(text)
            | GatewayError::Command(text) => text.clone(),
            GatewayError::Redis(e) => format!("ERR {e}"),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::MissingToken => "missing-token",
            GatewayError::WrongToken => "wrong-token",
            GatewayError::MethodNotAllowed => "method-not-allowed",
            GatewayError::BodyTooLarge => "body-too-large",
            GatewayError::BodyUnreadable(_) => "body-unreadable",
            GatewayError::Malformed(_) => "malformed",
            GatewayError::Refused(_) => "refused",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::Command(_) => "command-error",
            GatewayError::Redis(RedisError::Unavailable(_)) => "redis-unavailable",
            GatewayError::Redis(RedisError::Timeout) => "redis-timeout",
            GatewayError::Redis(RedisError::Protocol(_)) => "redis-protocol",
        }
    }
}

impl From<Refusal> for GatewayError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unsupported(text) => GatewayError::Refused(text),
            Refusal::Forbidden(text) => GatewayError::Forbidden(text),
        }
    }
}

impl From<RedisError> for GatewayError {
    fn from(e: RedisError) -> Self {
        GatewayError::Redis(e)
    }
}
