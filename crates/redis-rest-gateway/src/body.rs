//! Reading a request body within the size limit, the way Upstash refuses an oversized one.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

use crate::errors::GatewayError;

/// Most bytes of an oversized body read and thrown away before answering 413.
/// Answering while the client is still sending would reset the connection under
/// it, and it would never see the error; past this, it gets the reset.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// Longest time spent draining an oversized body.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The whole body, refused with Upstash's error past `limit` bytes (by its
/// `Content-Length`, or while it streams in).
pub async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, GatewayError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    let mut too_large = declared.is_some_and(|len| len > limit as u64);
    // The first frame is kept as it came (usually the whole body: no copy); later ones are
    // appended to a buffer.
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    let mut received = 0usize;
    if !too_large {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| GatewayError::BodyUnreadable(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                received += data.len();
                if received > limit {
                    too_large = true;
                    break;
                }
                match &first {
                    None => first = Some(data),
                    Some(head) => {
                        if rest.is_empty() {
                            rest.reserve(declared.unwrap_or(0).min(limit as u64) as usize);
                            rest.extend_from_slice(head);
                        }
                        rest.extend_from_slice(&data);
                    }
                }
            }
        }
    }
    if !too_large {
        return Ok(if rest.is_empty() { first.unwrap_or_default() } else { Bytes::from(rest) });
    }
    drop((first, rest));
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
