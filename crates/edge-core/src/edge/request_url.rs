//! The parts of the incoming request's URL the worker needs.
//!
//! workerd hands the worker an absolute, already-normalised URL (`scheme://host[:port]/path?query`,
//! no credentials, no fragment), so splitting it is enough; a full URL parser would only add
//! weight to the wasm.

pub struct RequestUrl {
    url: String,
    /// Byte offset of `://`.
    scheme_end: usize,
    /// Byte offset just after `://` (0 if there is none).
    authority_start: usize,
    /// Byte offset where the path starts (just after the authority).
    path_start: usize,
    /// Byte offset of `?`, or of the end.
    query_start: usize,
}

impl RequestUrl {
    pub fn parse(url: &str) -> RequestUrl {
        let url = match url.find('#') {
            Some(hash) => url[..hash].to_string(),
            None => url.to_string(),
        };
        let scheme_end = url.find("://").unwrap_or(0);
        let authority_start = if url[scheme_end..].starts_with("://") { scheme_end + 3 } else { 0 };
        let path_start = url[authority_start..].find(['/', '?']).map_or(url.len(), |i| authority_start + i);
        let query_start = url[path_start..].find('?').map_or(url.len(), |i| path_start + i);
        RequestUrl { url, scheme_end, authority_start, path_start, query_start }
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.url[..self.scheme_end]
    }

    /// `host[:port]`, as the client addressed it.
    pub fn host(&self) -> &str {
        &self.url[self.authority_start..self.path_start]
    }

    /// The path, at least `/`.
    pub fn path(&self) -> &str {
        match &self.url[self.path_start..self.query_start] {
            "" => "/",
            path => path,
        }
    }

    /// The path and the query (with its `?`), exactly as the client sent them.
    pub fn path_and_query(&self) -> String {
        let query = &self.url[self.query_start..];
        format!("{}{}", self.path(), query)
    }

    /// The whole URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }
}
