//! Answering a client's conditional and range requests from a stored response (RFC 9110 §13,
//! §14; docs §6.1): `If-Match`/`If-Unmodified-Since` failing ⇒ 412, `If-None-Match` (weak
//! comparison, `*`)/`If-Modified-Since` matching ⇒ 304, and a single `Range: bytes=…` of a stored
//! 200 ⇒ 206 (`If-Range` honoured; unsatisfiable ⇒ 416). Preconditions are evaluated in the
//! order §13.2.2 gives. Several ranges are answered with the whole 200, which §14.2 allows.

use http::{HeaderMap, HeaderValue, Method};

use crate::engine::{Served, ServedBody};
use crate::http_date::parse_http_date;

/// Headers a 304 keeps (RFC 9110 §15.4.5), besides the cache's own.
const KEPT_ON_304: [&str; 9] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "age",
    "x-cache",
    "cache-status",
];

/// Rewrites `served` (a response built from a stored entry) as the answer to the client's
/// conditionals and range, if they call for one.
pub fn answer_from_entry<B>(method: &Method, client: &HeaderMap, served: &mut Served<B>) {
    // The common hit carries none of these: answer it without reading a header twice.
    let asks = ["if-match", "if-unmodified-since", "if-none-match", "if-modified-since", "range"];
    if !(200..300).contains(&served.status) || !asks.iter().any(|name| client.contains_key(*name)) {
        return;
    }
    let etag = header_text(&served.headers, "etag");
    let last_modified = header_text(&served.headers, "last-modified").as_deref().and_then(parse_http_date);

    // §13.2.2 step 1–2: If-Match, else If-Unmodified-Since.
    if let Some(if_match) = header_text(client, "if-match") {
        if !etag_list_matches(&if_match, etag.as_deref(), true) {
            return precondition_failed(served);
        }
    } else if let Some(since) =
        header_text(client, "if-unmodified-since").as_deref().and_then(parse_http_date)
    {
        if last_modified.is_none_or(|modified| modified > since) {
            return precondition_failed(served);
        }
    }
    // Step 3–4: If-None-Match, else If-Modified-Since (GET and HEAD).
    let read = matches!(*method, Method::GET | Method::HEAD);
    if let Some(if_none_match) = header_text(client, "if-none-match") {
        if etag_list_matches(&if_none_match, etag.as_deref(), false) {
            return if read { not_modified(served) } else { precondition_failed(served) };
        }
    } else if let Some(since) = header_text(client, "if-modified-since").as_deref().and_then(parse_http_date)
    {
        if read && last_modified.is_some_and(|modified| modified <= since) {
            return not_modified(served);
        }
    }
    // Step 5: Range, for a GET of a stored 200, when If-Range (if any) still holds.
    if *method == Method::GET && served.status == 200 {
        if let Some(range) = header_text(client, "range") {
            let if_range_holds = match header_text(client, "if-range") {
                None => true,
                Some(value) if value.starts_with('"') || value.starts_with("W/") => {
                    etag.as_deref().is_some_and(|tag| strong_match(&value, tag))
                }
                Some(value) => parse_http_date(&value).is_some_and(|date| last_modified == Some(date)),
            };
            if if_range_holds {
                answer_range(&range, served);
            }
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Whether a comma-separated entity-tag list (or `*`) matches the stored `etag`.
fn etag_list_matches(list: &str, etag: Option<&str>, strong: bool) -> bool {
    let Some(etag) = etag else { return false };
    if list.trim() == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|candidate| {
        if strong {
            strong_match(candidate, etag)
        } else {
            weak_match(candidate, etag)
        }
    })
}

fn opaque(tag: &str) -> &str {
    tag.trim().strip_prefix("W/").unwrap_or(tag.trim())
}

/// Weak comparison (§8.8.3.2): the opaque tags are equal, weak or not.
fn weak_match(a: &str, b: &str) -> bool {
    opaque(a) == opaque(b)
}

/// Strong comparison: both strong and equal.
fn strong_match(a: &str, b: &str) -> bool {
    !a.trim().starts_with("W/") && !b.trim().starts_with("W/") && a.trim() == b.trim()
}

fn not_modified<B>(served: &mut Served<B>) {
    served.status = 304;
    let kept: Vec<(http::HeaderName, HeaderValue)> = served
        .headers
        .iter()
        .filter(|(name, _)| KEPT_ON_304.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    served.headers.clear();
    for (name, value) in kept {
        served.headers.append(name, value);
    }
    served.body = ServedBody::Empty;
}

fn precondition_failed<B>(served: &mut Served<B>) {
    served.status = 412;
    served.headers.remove(http::header::CONTENT_TYPE);
    served.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    served.body = ServedBody::Empty;
}

/// A single `bytes=` range of the stored body: 206 with `Content-Range`, or 416 when it lies
/// past the end; anything else (several ranges, another unit, garbage) leaves the 200 whole.
fn answer_range<B>(range: &str, served: &mut Served<B>) {
    let ServedBody::Bytes(body) = &served.body else { return };
    let length = body.len() as u64;
    let Some(spec) = range.trim().strip_prefix("bytes=") else { return };
    if spec.contains(',') {
        return;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return };
    let (first, last) = (first.trim(), last.trim());
    let span = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => Some((start, end.min(length.saturating_sub(1)))),
        (Some(start), None) if last.is_empty() => Some((start, length.saturating_sub(1))),
        (None, Some(suffix)) if first.is_empty() && suffix > 0 => {
            Some((length.saturating_sub(suffix), length.saturating_sub(1)))
        }
        (None, Some(0)) if first.is_empty() => None,
        _ => return,
    };
    match span {
        Some((start, end)) if start < length => {
            let slice = body[start as usize..=end as usize].to_vec();
            served.status = 206;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{length}")) {
                served.headers.insert(http::header::CONTENT_RANGE, value);
            }
            served.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(slice.len()));
            served.body = ServedBody::Bytes(slice);
        }
        _ => {
            served.status = 416;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}")) {
                served.headers.insert(http::header::CONTENT_RANGE, value);
            }
            served.headers.remove(http::header::CONTENT_TYPE);
            served.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            served.body = ServedBody::Empty;
        }
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table rows are tuples
mod tests {
    use super::*;
    use crate::phase::CachePhase;

    fn stored() -> Served<()> {
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("\"v1\""));
        headers.insert("last-modified", HeaderValue::from_static("Sun, 29 Nov 2026 09:00:00 GMT"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
        headers.insert("content-length", HeaderValue::from_static("10"));
        Served {
            status: 200,
            headers,
            body: ServedBody::Bytes(b"0123456789".to_vec()),
            phase: CachePhase::Hit,
        }
    }

    fn answer(method: Method, pairs: &[(&'static str, &'static str)]) -> Served<()> {
        let mut client = HeaderMap::new();
        for (name, value) in pairs {
            client.append(*name, HeaderValue::from_static(value));
        }
        let mut served = stored();
        answer_from_entry(&method, &client, &mut served);
        served
    }

    fn body(served: &Served<()>) -> Vec<u8> {
        match &served.body {
            ServedBody::Bytes(bytes) => bytes.clone(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn preconditions_table() {
        let table: Vec<(Method, Vec<(&'static str, &'static str)>, u16)> = vec![
            (Method::GET, vec![], 200),
            (Method::GET, vec![("if-none-match", "\"v1\"")], 304),
            (Method::GET, vec![("if-none-match", "W/\"v1\"")], 304),
            (Method::GET, vec![("if-none-match", "\"v0\", \"v1\"")], 304),
            (Method::GET, vec![("if-none-match", "*")], 304),
            (Method::HEAD, vec![("if-none-match", "\"v1\"")], 304),
            (Method::GET, vec![("if-none-match", "\"v2\"")], 200),
            (Method::GET, vec![("if-modified-since", "Sun, 29 Nov 2026 09:00:00 GMT")], 304),
            (Method::GET, vec![("if-modified-since", "Sun, 29 Nov 2026 08:59:59 GMT")], 200),
            (Method::GET, vec![("if-modified-since", "garbage")], 200),
            // If-None-Match wins over If-Modified-Since.
            (
                Method::GET,
                vec![("if-none-match", "\"v2\""), ("if-modified-since", "Sun, 29 Nov 2026 10:00:00 GMT")],
                200,
            ),
            (Method::GET, vec![("if-match", "\"v1\"")], 200),
            (Method::GET, vec![("if-match", "W/\"v1\"")], 412),
            (Method::GET, vec![("if-match", "\"v2\"")], 412),
            (Method::GET, vec![("if-match", "*")], 200),
            (Method::GET, vec![("if-unmodified-since", "Sun, 29 Nov 2026 08:00:00 GMT")], 412),
            (Method::GET, vec![("if-unmodified-since", "Sun, 29 Nov 2026 09:00:00 GMT")], 200),
        ];
        for (method, pairs, status) in table {
            assert_eq!(answer(method.clone(), &pairs).status, status, "{method} {pairs:?}");
        }
    }

    #[test]
    fn a_304_carries_only_what_rfc_9110_asks_and_no_body() {
        let served = answer(Method::GET, &[("if-none-match", "\"v1\"")]);
        assert_eq!(served.headers["etag"], "\"v1\"");
        assert_eq!(served.headers["cache-control"], "max-age=60");
        assert!(
            served.headers.get("content-type").is_none() && served.headers.get("content-length").is_none()
        );
        assert!(matches!(served.body, ServedBody::Empty));
    }

    #[test]
    fn ranges_table() {
        let table: Vec<(Vec<(&'static str, &'static str)>, u16, &str, &[u8])> = vec![
            (vec![("range", "bytes=0-3")], 206, "bytes 0-3/10", b"0123"),
            (vec![("range", "bytes=7-")], 206, "bytes 7-9/10", b"789"),
            (vec![("range", "bytes=-2")], 206, "bytes 8-9/10", b"89"),
            (vec![("range", "bytes=5-100")], 206, "bytes 5-9/10", b"56789"),
            (vec![("range", "bytes=10-")], 416, "bytes */10", b""),
            (vec![("range", "bytes=0-1,4-5")], 200, "", b"0123456789"),
            (vec![("range", "items=0-1")], 200, "", b"0123456789"),
            (vec![("range", "bytes=3-1")], 200, "", b"0123456789"),
            (vec![("range", "bytes=0-1"), ("if-range", "\"v1\"")], 206, "bytes 0-1/10", b"01"),
            (vec![("range", "bytes=0-1"), ("if-range", "\"v0\"")], 200, "", b"0123456789"),
            (
                vec![("range", "bytes=0-1"), ("if-range", "Sun, 29 Nov 2026 09:00:00 GMT")],
                206,
                "bytes 0-1/10",
                b"01",
            ),
            (
                vec![("range", "bytes=0-1"), ("if-range", "Sun, 29 Nov 2026 09:00:01 GMT")],
                200,
                "",
                b"0123456789",
            ),
        ];
        for (pairs, status, content_range, expected) in table {
            let served = answer(Method::GET, &pairs);
            assert_eq!(served.status, status, "{pairs:?}");
            let got_range = served.headers.get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
            assert_eq!(got_range, content_range, "{pairs:?}");
            assert_eq!(body(&served), expected, "{pairs:?}");
            if status == 206 {
                assert_eq!(served.headers["content-length"], expected.len().to_string().as_str());
            }
        }
    }
}
