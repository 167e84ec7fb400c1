//! The Upstash client's HTTP layer: one `POST` of a JSON body to `/pipeline` or `/multi-exec`,
//! answered with the status and the body's bytes, bounded by `REDIS_TIMEOUT_MS`.
//!
//! One API on both targets. Natively it is reqwest (hyper), which the client's tests drive
//! against a real Redis behind the gateway. In workerd it is the runtime's own `fetch`, called
//! directly: the CPU profile of a hit (bench/RESULTS.md, issue 11) showed reqwest's wasm layer
//! as the largest single cost of a Redis round trip (a `Request` and a `Headers` object, an
//! `AbortController` aborted when the response is dropped, a JS timer set and cleared, the URL
//! re-parsed by the `url` crate), and it kept `url`/`idna` in the wasm. Here the timeout is
//! `AbortSignal.timeout`, a timer inside the runtime with no callback into wasm.

use std::time::Duration;

use crate::store::StoreError;

/// Which REST endpoint a batch goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Pipeline,
    MultiExec,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Pipeline => "/pipeline",
            Endpoint::MultiExec => "/multi-exec",
        }
    }
}

/// An HTTP answer: its status and its whole body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

pub use transport::UpstashHttp;

#[cfg(not(target_arch = "wasm32"))]
mod transport {
    use super::*;

    /// reqwest over hyper; clones share the connection pool.
    #[derive(Clone)]
    pub struct UpstashHttp {
        base_url: String,
        /// `/pipeline` and `/multi-exec`, parsed once rather than on every request.
        pipeline_url: Option<reqwest::Url>,
        multi_exec_url: Option<reqwest::Url>,
        authorization: String,
        client: reqwest::Client,
    }

    impl UpstashHttp {
        pub fn new(base_url: &str, token: &str) -> Self {
            let base_url = base_url.trim_end_matches('/').to_string();
            UpstashHttp {
                pipeline_url: reqwest::Url::parse(&format!("{base_url}/pipeline")).ok(),
                multi_exec_url: reqwest::Url::parse(&format!("{base_url}/multi-exec")).ok(),
                base_url,
                authorization: format!("Bearer {token}"),
                client: reqwest::Client::new(),
            }
        }

        pub async fn post(
            &self,
            endpoint: Endpoint,
            body: Vec<u8>,
            timeout: Duration,
        ) -> Result<Answer, StoreError> {
            let url = match endpoint {
                Endpoint::Pipeline => &self.pipeline_url,
                Endpoint::MultiExec => &self.multi_exec_url,
            };
            let Some(url) = url.clone() else {
                return Err(StoreError::Unreachable(format!(
                    "{}{} is not a URL",
                    self.base_url,
                    endpoint.path()
                )));
            };
            let response = self
                .client
                .post(url)
                .header("Authorization", &self.authorization)
                .header("Upstash-Encoding", "base64")
                .header("Content-Type", "application/json")
                .timeout(timeout)
                .body(body)
                .send()
                .await
                .map_err(classify)?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(classify)?;
            Ok(Answer { status, body: body.to_vec() })
        }
    }

    fn classify(e: reqwest::Error) -> StoreError {
        if e.is_timeout() {
            StoreError::Timeout
        } else {
            StoreError::Unreachable(e.to_string())
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod transport {
    use super::*;
    use crate::js_await::settled_of;
    use js_sys::{Object, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::{AbortSignal, RequestInit, Response, WorkerGlobalScope};

    /// The runtime's `fetch`. The headers are a plain JS object built once per isolate (not an
    /// I/O object, so sharing it between requests is allowed); `fetch` copies it per call.
    #[derive(Clone)]
    pub struct UpstashHttp {
        pipeline_url: String,
        multi_exec_url: String,
        headers: Object,
    }

    impl UpstashHttp {
        pub fn new(base_url: &str, token: &str) -> Self {
            let base_url = base_url.trim_end_matches('/');
            let headers = Object::new();
            // Setting a string property on a fresh plain object cannot fail; if it somehow did,
            // the missing header makes Redis answer 401, which the client reports.
            for (name, value) in [
                ("authorization", format!("Bearer {token}")),
                ("upstash-encoding", "base64".to_string()),
                ("content-type", "application/json".to_string()),
            ] {
                let _ = Reflect::set(&headers, &JsValue::from_str(name), &JsValue::from_str(&value));
            }
            UpstashHttp {
                pipeline_url: format!("{base_url}/pipeline"),
                multi_exec_url: format!("{base_url}/multi-exec"),
                headers,
            }
        }

        pub async fn post(
            &self,
            endpoint: Endpoint,
            mut body: Vec<u8>,
            timeout: Duration,
        ) -> Result<Answer, StoreError> {
            let url = match endpoint {
                Endpoint::Pipeline => &self.pipeline_url,
                Endpoint::MultiExec => &self.multi_exec_url,
            };
            let init = RequestInit::new();
            init.set_method("POST");
            init.set_headers(&self.headers);
            init.set_body_opt_u8_slice(Some(&mut body));
            // Bounds the head and the body read alike (the signal aborts both).
            let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            init.set_signal(Some(&AbortSignal::timeout_with_u32(millis)));
            let global: WorkerGlobalScope = js_sys::global().unchecked_into();
            let answer = settled_of(&global.fetch_with_str_and_init(url, &init)).await.map_err(classify)?;
            let response: Response = answer
                .dyn_into()
                .map_err(|_| StoreError::Unreachable("fetch answered no Response".into()))?;
            let status = response.status();
            let buffer = response.array_buffer().map_err(classify)?;
            let buffer = settled_of(&buffer).await.map_err(classify)?;
            Ok(Answer { status, body: Uint8Array::new(&buffer).to_vec() })
        }
    }

    /// A rejected fetch or body read: the timeout signal's `TimeoutError`, or anything else
    /// (refused, reset, a bad URL) as unreachable with the runtime's message.
    fn classify(error: JsValue) -> StoreError {
        let field =
            |name: &str| Reflect::get(&error, &JsValue::from_str(name)).ok().and_then(|v| v.as_string());
        if field("name").as_deref() == Some("TimeoutError") {
            return StoreError::Timeout;
        }
        StoreError::Unreachable(
            field("message").or_else(|| error.as_string()).unwrap_or_else(|| "fetch failed".into()),
        )
    }
}
