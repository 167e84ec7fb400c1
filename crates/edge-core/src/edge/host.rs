//! What a request needs from the platform it runs on ([`Host`]): the clock and background
//! tasks ([`Runtime`]), HTTP to the origin, reading bodies up to a limit, and a log. The worker
//! implements it over workerd; the native tests over tokio and an in-process origin.

use std::future::Future;
use std::rc::Rc;

use http::{HeaderMap, Method};

use crate::runtime::{Collected, Origin, OriginError, OriginResponse, Runtime};

/// How loud a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// A client body, read up to a limit.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRead {
    Whole(Vec<u8>),
    TooLarge,
    Unreadable,
}

/// Why the platform's AEAD did not seal or open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// This host has no AEAD: the fallback cookie is off (docs §5.11).
    Unsupported,
    /// Sealing failed, or the ciphertext did not authenticate (tampered, another key).
    Failed,
}

/// One request to the origin.
pub struct OriginRequest<B> {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    /// The client's body, streamed through unread (writes only).
    pub body: Option<B>,
    /// No response head within this long ⇒ [`OriginError::Timeout`] (the fetch is aborted).
    pub timeout_ms: u64,
}

pub trait Host: Runtime {
    /// A response body from the origin, streamed to the client untouched unless the cache
    /// reads it.
    type Body: 'static;
    /// The client's request body.
    type RequestBody: 'static;

    /// Sends `request` without following redirects; answers the response head.
    fn fetch(
        &self,
        request: OriginRequest<Self::RequestBody>,
    ) -> impl Future<Output = Result<OriginResponse<Self::Body>, OriginError>>;

    /// Reads an origin body to its end, unless it grows past `limit` bytes.
    fn collect(
        &self,
        body: Self::Body,
        limit: u64,
    ) -> impl Future<Output = Result<Collected<Self::Body>, OriginError>>;

    /// Reads a client body to its end, stopping as soon as it grows past `limit` bytes.
    fn read_request_body(&self, body: Self::RequestBody, limit: u64) -> impl Future<Output = BodyRead>;

    fn log(&self, level: LogLevel, message: &str);

    /// AES-256-GCM encryption of `plaintext` (ciphertext with its 16-byte tag appended), for the
    /// session fallback cookie (docs §5.11). The worker uses WebCrypto, so the wasm carries no
    /// AES; a host without an AEAD keeps this default, which turns the fallback cookie off.
    fn seal(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, CryptoError>> {
        let _ = (key, nonce, aad, plaintext);
        async { Err(CryptoError::Unsupported) }
    }

    /// The inverse of [`Host::seal`]: the plaintext, or [`CryptoError::Failed`] when the
    /// ciphertext or `aad` were changed or another key sealed it.
    fn open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, CryptoError>> {
        let _ = (key, nonce, aad, ciphertext);
        async { Err(CryptoError::Unsupported) }
    }
}

/// The origin of one cacheable URL as the state machine sees it: a body-less GET (or HEAD)
/// with prepared headers, which may be sent more than once (a background refresh, a waiter
/// that takes over the lock).
pub struct HostOrigin<H> {
    host: H,
    url: Rc<str>,
    headers: Rc<HeaderMap>,
    timeout_ms: u64,
}

impl<H: Clone> Clone for HostOrigin<H> {
    fn clone(&self) -> Self {
        HostOrigin {
            host: self.host.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            timeout_ms: self.timeout_ms,
        }
    }
}

impl<H: Host> HostOrigin<H> {
    /// `headers` are the origin request's headers, already prepared (forwarding, session).
    pub fn new(host: H, url: String, headers: HeaderMap, timeout_ms: u64) -> Self {
        HostOrigin { host, url: url.into(), headers: Rc::new(headers), timeout_ms }
    }
}

/// Sends `request` through `host`, refusing a final status HTTP cannot relay (docs §6.3).
pub async fn fetch_checked<H: Host>(
    host: &H,
    request: OriginRequest<H::RequestBody>,
) -> Result<OriginResponse<H::Body>, OriginError> {
    let response = host.fetch(request).await?;
    if !(200..=599).contains(&response.status) {
        host.log(
            LogLevel::Warn,
            &format!("edge-cache: origin answered the invalid status {}", response.status),
        );
        return Err(OriginError::InvalidStatus(response.status));
    }
    Ok(response)
}

impl<H: Host> Origin for HostOrigin<H> {
    type Body = H::Body;

    async fn fetch(&self, head_only: bool) -> Result<OriginResponse<H::Body>, OriginError> {
        let host = &self.host;
        fetch_checked(
            host,
            OriginRequest {
                method: if head_only { Method::HEAD } else { Method::GET },
                url: self.url.to_string(),
                headers: (*self.headers).clone(),
                body: None,
                timeout_ms: self.timeout_ms,
            },
        )
        .await
    }

    async fn revalidate(&self, validators: &HeaderMap) -> Result<OriginResponse<H::Body>, OriginError> {
        let mut headers = (*self.headers).clone();
        for (name, value) in validators {
            headers.insert(name.clone(), value.clone());
        }
        let request = OriginRequest {
            method: Method::GET,
            url: self.url.to_string(),
            headers,
            body: None,
            timeout_ms: self.timeout_ms,
        };
        fetch_checked(&self.host, request).await
    }

    async fn collect(&self, body: H::Body, limit: u64) -> Result<Collected<H::Body>, OriginError> {
        self.host.collect(body, limit).await
    }
}
