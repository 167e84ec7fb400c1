//! The origin as the cache state machine sees it ([`edge_core::runtime::Origin`]): a body-less
//! GET (or HEAD) of one URL with prepared headers, which may be sent more than once (a
//! background refresh, a waiter that takes over the lock).

use std::rc::Rc;

use edge_core::runtime::{Collected, Origin, OriginError, OriginResponse};
use http::HeaderMap;
use web_sys::{RequestInit, RequestRedirect, Response};

use crate::body::{read_up_to, Read};
use crate::origin::{fetch_with_timeout, response_headers, web_headers};

#[derive(Clone)]
pub struct CacheOrigin {
    target: Rc<str>,
    headers: Rc<HeaderMap>,
    timeout_ms: u64,
}

impl CacheOrigin {
    /// `headers` are the origin request's headers, already prepared (forwarding, session).
    pub fn new(target: String, headers: HeaderMap, timeout_ms: u64) -> Self {
        CacheOrigin { target: target.into(), headers: Rc::new(headers), timeout_ms }
    }
}

impl Origin for CacheOrigin {
    type Body = Response;

    async fn fetch(&self, head_only: bool) -> Result<OriginResponse<Response>, OriginError> {
        let init = RequestInit::new();
        init.set_method(if head_only { "HEAD" } else { "GET" });
        init.set_headers_headers(&web_headers(&self.headers)?);
        init.set_redirect(RequestRedirect::Manual);
        let response = fetch_with_timeout(&self.target, &init, self.timeout_ms).await?;
        Ok(OriginResponse { status: response.status(), headers: response_headers(&response), body: response })
    }

    async fn collect(&self, body: Response, limit: u64) -> Result<Collected<Response>, OriginError> {
        match read_up_to(body, limit).await {
            Ok(Read::Whole(bytes)) => Ok(Collected::Whole(bytes)),
            Ok(Read::TooLarge(rest)) => Ok(Collected::TooLarge(rest)),
            Err(e) => Err(OriginError::Unreachable(e)),
        }
    }
}
