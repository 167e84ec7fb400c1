//! A [`Host`] for driving whole requests through `Edge::handle` natively: the tokio runtime
//! and test clock of [`super::TestRuntime`], an in-process origin that records every request it
//! gets and answers through a closure, and a log the test can read.

use std::cell::RefCell;
use std::rc::Rc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use edge_core::{
    BodyRead, Collected, CryptoError, Host, LogLevel, OriginError, OriginRequest, OriginResponse, Runtime,
};
use futures::future::LocalBoxFuture;
use http::{HeaderMap, Method};

use super::TestRuntime;

/// What the origin received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
}

/// The origin's reply to one request: status, headers, body.
pub type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

type Handler = Rc<dyn Fn(&Received) -> Reply>;

#[derive(Clone)]
pub struct TestHost {
    pub rt: TestRuntime,
    pub received: Rc<RefCell<Vec<Received>>>,
    pub logs: Rc<RefCell<Vec<String>>>,
    handler: Handler,
}

impl TestHost {
    pub fn new(rt: TestRuntime, handler: impl Fn(&Received) -> Reply + 'static) -> Self {
        TestHost { rt, received: Rc::default(), logs: Rc::default(), handler: Rc::new(handler) }
    }

    pub fn origin_requests(&self) -> usize {
        self.received.borrow().len()
    }

    pub fn last_received(&self) -> Received {
        self.received.borrow().last().cloned().expect("the origin was asked")
    }
}

impl Runtime for TestHost {
    fn now_ms(&self) -> u64 {
        self.rt.now_ms()
    }
    async fn sleep(&self, ms: u64) {
        self.rt.sleep(ms).await
    }
    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        self.rt.spawn(task)
    }
}

impl Host for TestHost {
    type Body = Vec<u8>;
    type RequestBody = Vec<u8>;

    async fn fetch(&self, request: OriginRequest<Vec<u8>>) -> Result<OriginResponse<Vec<u8>>, OriginError> {
        let received = Received {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let (status, pairs, body) = (self.handler)(&received);
        self.received.borrow_mut().push(received);
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, value.parse().expect("test header"));
        }
        Ok(OriginResponse { status, headers, body })
    }

    async fn collect(&self, body: Vec<u8>, limit: u64) -> Result<Collected<Vec<u8>>, OriginError> {
        Ok(if body.len() as u64 > limit { Collected::TooLarge(body) } else { Collected::Whole(body) })
    }

    async fn read_request_body(&self, body: Vec<u8>, limit: u64) -> BodyRead {
        if body.len() as u64 > limit {
            BodyRead::TooLarge
        } else {
            BodyRead::Whole(body)
        }
    }

    fn log(&self, _level: LogLevel, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }

    // AES-256-GCM natively with RustCrypto's `aes-gcm` (a dev-dependency only: the worker uses
    // WebCrypto), so the fallback cookie is sealed for real in the native suites.
    async fn seal(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Failed)?;
        cipher
            .encrypt(Nonce::from_slice(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| CryptoError::Failed)
    }

    async fn open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Failed)?;
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| CryptoError::Failed)
    }
}
