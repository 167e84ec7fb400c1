//! Response `Cache-Control` parsing (RFC 9111 §5.2, RFC 5861), for a shared cache.
//!
//! Hand-written rather than the `http-cache-semantics` crate: that crate reads the clock itself
//! (`SystemTime::now()` panics on wasm32-unknown-unknown) and models a browser-or-shared cache
//! with heuristic freshness, while edge-cache needs only the directives below, a clock passed in
//! as an argument, and docs §2.3's stricter rule (no freshness information ⇒ not stored).

/// Largest delta-seconds value: larger ones saturate to it (RFC 9111 §1.2.2).
pub const DELTA_SECONDS_MAX: u32 = 1 << 31;

/// The directives of one response's `Cache-Control` field lines that edge-cache acts on.
///
/// Numeric directives (`Option<u32>`, seconds):
/// - absent ⇒ `None`;
/// - present but invalid (no value, not digits, negative, e.g. `max-age=abc`) ⇒ `Some(0)`:
///   RFC 9111 §4.2.1 says to treat such a response as stale, and it stops a rule default from
///   silently replacing what the origin tried to say;
/// - larger than 2^31 ⇒ 2^31 ([`DELTA_SECONDS_MAX`]);
/// - given more than once ⇒ the smallest (the most restrictive; RFC 9111 §4.2.1 allows
///   "first or stale", and a shorter lifetime is always allowed).
///
/// `private` and `no-cache` are true only in their unqualified form. The qualified forms
/// (`private="Set-Cookie"`, `no-cache="X-Foo"`) allow a shared cache to store the response
/// without the named fields (RFC 9111 §5.2.2.4, §5.2.2.7): the names are collected in
/// `private_fields` / `no_cache_fields` (lower case) and `entry::storable_headers` drops them.
/// A qualified form with an empty list counts as unqualified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<u32>,
    pub s_maxage: Option<u32>,
    pub stale_while_revalidate: Option<u32>,
    pub stale_if_error: Option<u32>,
    pub no_store: bool,
    /// Unqualified `no-cache`.
    pub no_cache: bool,
    /// Unqualified `private`.
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub no_transform: bool,
    pub immutable: bool,
    /// `must-understand` (RFC 9111 §5.2.2.3): store only a status code the cache understands,
    /// and then `no-store` may be ignored.
    pub must_understand: bool,
    /// Field names (lower case) from `no-cache="..."`.
    pub no_cache_fields: Vec<String>,
    /// Field names (lower case) from `private="..."`.
    pub private_fields: Vec<String>,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line of a message (pass them all, in order: lines and
    /// comma-separated lists combine). Names are case-insensitive; values may be tokens or
    /// quoted strings; unknown directives and malformed fragments are ignored.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> CacheControl {
        let mut cc = CacheControl::default();
        for line in values {
            for (name, value) in Directives::new(line) {
                cc.apply(&name, value.as_deref());
            }
        }
        cc
    }

    /// Parses the `Cache-Control` lines of `headers`. A line with bytes that are not ASCII is
    /// still read (they become unknown text): ignoring it could lose a `no-store`.
    pub fn from_headers(headers: &http::HeaderMap) -> CacheControl {
        let lines: Vec<String> = headers
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        CacheControl::parse(lines.iter().map(String::as_str))
    }

    /// The directives this cache obeys: `CDN-Cache-Control` when present and valid (RFC 9213: it
    /// takes precedence over `Cache-Control` for a CDN, and an invalid one is ignored), else
    /// `Cache-Control`. The qualified `private`/`no-cache` field lists always come from
    /// `Cache-Control`.
    pub fn for_this_cache(headers: &http::HeaderMap) -> CacheControl {
        let cc = CacheControl::from_headers(headers);
        let lines: Vec<String> = headers
            .get_all("cdn-cache-control")
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        // An empty dictionary is the field left out (RFC 8941 §3.2): an empty line must not
        // silence Cache-Control's `private` or `no-store` (docs §11.3).
        if lines.iter().all(|line| line.trim_matches([' ', '\t']).is_empty()) {
            return cc;
        }
        match crate::structured_field::parse_dictionary(&lines.join(", ")) {
            Some(members) => {
                let mut cdn = CacheControl::default();
                for (name, value) in members {
                    cdn.apply(&name, value.as_deref());
                }
                cdn.private_fields = cc.private_fields;
                cdn.no_cache_fields = cc.no_cache_fields;
                cdn
            }
            None => cc,
        }
    }

    /// True when a stale copy must not be served without revalidation unless the origin or an
    /// overriding rule explicitly grants a stale window: `must-revalidate`, `proxy-revalidate`
    /// or `s-maxage` (which implies proxy-revalidate, RFC 9111 §5.2.2.10).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }

    fn apply(&mut self, name: &str, value: Option<&str>) {
        match name {
            "max-age" => merge_seconds(&mut self.max_age, value),
            "s-maxage" => merge_seconds(&mut self.s_maxage, value),
            "stale-while-revalidate" => merge_seconds(&mut self.stale_while_revalidate, value),
            "stale-if-error" => merge_seconds(&mut self.stale_if_error, value),
            "no-store" => self.no_store = true,
            "no-cache" => match field_names(value) {
                Some(names) => self.no_cache_fields.extend(names),
                None => self.no_cache = true,
            },
            "private" => match field_names(value) {
                Some(names) => self.private_fields.extend(names),
                None => self.private = true,
            },
            "public" => self.public = true,
            "must-revalidate" => self.must_revalidate = true,
            "proxy-revalidate" => self.proxy_revalidate = true,
            "no-transform" => self.no_transform = true,
            "immutable" => self.immutable = true,
            "must-understand" => self.must_understand = true,
            _ => {}
        }
    }
}

/// Keeps the smallest of the seconds seen so far and `value` (invalid ⇒ 0).
fn merge_seconds(slot: &mut Option<u32>, value: Option<&str>) {
    let seconds = value.and_then(parse_delta_seconds).unwrap_or(0);
    *slot = Some(slot.map_or(seconds, |previous| previous.min(seconds)));
}

/// `delta-seconds = 1*DIGIT`, saturating at 2^31. `None` when not all digits or empty.
pub fn parse_delta_seconds(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut total: u64 = 0;
    for digit in text.bytes() {
        total = total * 10 + u64::from(digit - b'0');
        if total >= u64::from(DELTA_SECONDS_MAX) {
            return Some(DELTA_SECONDS_MAX);
        }
    }
    u32::try_from(total).ok()
}

/// Field names of a qualified `private`/`no-cache`; `None` when unqualified or the list is empty.
fn field_names(value: Option<&str>) -> Option<Vec<String>> {
    let names: Vec<String> = value?
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        None
    } else {
        Some(names)
    }
}

/// The `(lower-case name, unquoted value)` of each directive of one field line, as
/// [`CacheControl::parse`] reads them (also what `browser_ttl` keeps, docs §3.7).
pub(crate) fn directives(line: &str) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    Directives::new(line)
}

/// Iterator over `(lower-case name, unquoted value)` of one field line.
struct Directives<'a> {
    rest: &'a str,
}

impl<'a> Directives<'a> {
    fn new(line: &'a str) -> Directives<'a> {
        Directives { rest: line }
    }
}

impl Iterator for Directives<'_> {
    type Item = (String, Option<String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.rest = self.rest.trim_start_matches([' ', '\t', ',']);
            if self.rest.is_empty() {
                return None;
            }
            let name_end = self.rest.find([',', '=', ' ', '\t']).unwrap_or(self.rest.len());
            let (name, after_name) = self.rest.split_at(name_end);
            let name = name.to_ascii_lowercase();
            let after_name = after_name.trim_start_matches([' ', '\t']);
            let Some(after_eq) = after_name.strip_prefix('=') else {
                // No value: skip to the next comma (anything else before it is junk).
                self.rest = skip_to_comma(after_name);
                if name.is_empty() {
                    continue;
                }
                return Some((name, None));
            };
            let after_eq = after_eq.trim_start_matches([' ', '\t']);
            let (value, rest) = match after_eq.strip_prefix('"') {
                Some(quoted) => parse_quoted(quoted),
                None => {
                    let end = after_eq.find([',', ' ', '\t']).unwrap_or(after_eq.len());
                    let (token, rest) = after_eq.split_at(end);
                    (token.to_string(), rest)
                }
            };
            self.rest = skip_to_comma(rest);
            if name.is_empty() {
                continue;
            }
            return Some((name, Some(value)));
        }
    }
}

fn skip_to_comma(text: &str) -> &str {
    match text.find(',') {
        Some(index) => text.get(index..).unwrap_or(""),
        None => "",
    }
}

/// Reads a quoted-string body (after the opening quote): returns the unescaped content and the
/// text after the closing quote. An unterminated string runs to the end of the line.
fn parse_quoted(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return (value, text.get(index + 1..).unwrap_or("")),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            other => value.push(other),
        }
    }
    (value, "")
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table rows are tuples
mod tests {
    use super::*;

    fn cc(lines: &[&str]) -> CacheControl {
        CacheControl::parse(lines.iter().copied())
    }

    #[test]
    fn numeric_directives_table() {
        // (lines, max_age, s_maxage, swr, sie)
        type Row<'a> = (&'a [&'a str], Option<u32>, Option<u32>, Option<u32>, Option<u32>);
        let table: Vec<Row> = vec![
            (&[], None, None, None, None),
            (&[""], None, None, None, None),
            (&["max-age=60"], Some(60), None, None, None),
            (&["MAX-AGE=60"], Some(60), None, None, None),
            (&["Max-Age = 60"], Some(60), None, None, None),
            (&["max-age=\"60\""], Some(60), None, None, None),
            (&["s-maxage=30"], None, Some(30), None, None),
            (&["max-age=60, s-maxage=30"], Some(60), Some(30), None, None),
            (&["max-age=60", "s-maxage=30"], Some(60), Some(30), None, None),
            (
                &["max-age=1, stale-while-revalidate=59, stale-if-error=86400"],
                Some(1),
                None,
                Some(59),
                Some(86400),
            ),
            // invalid ⇒ present but 0 (stale)
            (&["max-age=abc"], Some(0), None, None, None),
            (&["max-age=-1"], Some(0), None, None, None),
            (&["max-age=+5"], Some(0), None, None, None),
            (&["max-age=1.5"], Some(0), None, None, None),
            (&["max-age"], Some(0), None, None, None),
            (&["max-age="], Some(0), None, None, None),
            (&["stale-while-revalidate=x"], None, None, Some(0), None),
            // saturation at 2^31
            (&["max-age=2147483647"], Some(2_147_483_647), None, None, None),
            (&["max-age=2147483648"], Some(DELTA_SECONDS_MAX), None, None, None),
            (&["max-age=99999999999999999999999999"], Some(DELTA_SECONDS_MAX), None, None, None),
            (&["max-age=007"], Some(7), None, None, None),
            // duplicates: the smallest wins, across lines and within a line
            (&["max-age=60, max-age=10"], Some(10), None, None, None),
            (&["max-age=10", "max-age=60"], Some(10), None, None, None),
            (&["max-age=60, max-age=abc"], Some(0), None, None, None),
            // commas and whitespace noise
            (&[" , ,max-age=5 ,, "], Some(5), None, None, None),
            (&["max-age=5 junk, s-maxage=6"], Some(5), Some(6), None, None),
            // a quoted comma does not split directives
            (&["foo=\"a,max-age=1\", max-age=9"], Some(9), None, None, None),
            // unknown directives are ignored
            (&["community=\"UCI\", max-age=3"], Some(3), None, None, None),
            // similar names are not confused
            (&["max-ages=5, smaxage=3"], None, None, None, None),
        ];
        for (lines, max_age, s_maxage, swr, sie) in table {
            let parsed = cc(lines);
            assert_eq!(parsed.max_age, max_age, "max-age of {lines:?}");
            assert_eq!(parsed.s_maxage, s_maxage, "s-maxage of {lines:?}");
            assert_eq!(parsed.stale_while_revalidate, swr, "swr of {lines:?}");
            assert_eq!(parsed.stale_if_error, sie, "sie of {lines:?}");
        }
    }

    #[test]
    fn flag_directives_table() {
        let table: Vec<(&str, fn(&CacheControl) -> bool)> = vec![
            ("no-store", |c| c.no_store),
            ("NO-STORE", |c| c.no_store),
            ("no-cache", |c| c.no_cache),
            ("private", |c| c.private),
            ("Private", |c| c.private),
            ("public", |c| c.public),
            ("must-revalidate", |c| c.must_revalidate),
            ("proxy-revalidate", |c| c.proxy_revalidate),
            ("no-transform", |c| c.no_transform),
            ("immutable", |c| c.immutable),
        ];
        for (line, flag) in &table {
            assert!(flag(&cc(&[line])), "{line} not recognised");
            assert!(flag(&cc(&["max-age=5", &format!("public, {line}")])), "{line} in a list");
            // Every other directive alone leaves this flag off.
            for (other, _) in &table {
                if !other.eq_ignore_ascii_case(line) {
                    assert!(!flag(&cc(&[other])), "{other} set the flag of {line}");
                }
            }
        }
    }

    #[test]
    fn qualified_private_and_no_cache_are_not_unqualified() {
        let parsed = cc(&["private=\"Set-Cookie, X-User\", no-cache=\"X-Debug\""]);
        assert!(!parsed.private);
        assert!(!parsed.no_cache);
        assert_eq!(parsed.private_fields, vec!["set-cookie", "x-user"]);
        assert_eq!(parsed.no_cache_fields, vec!["x-debug"]);

        // token form
        let parsed = cc(&["private=x-user"]);
        assert!(!parsed.private);
        assert_eq!(parsed.private_fields, vec!["x-user"]);

        // empty list counts as unqualified
        assert!(cc(&["private=\"\""]).private);
        assert!(cc(&["no-cache=\" , \""]).no_cache);

        // the unqualified form alongside a qualified one wins
        let parsed = cc(&["private=\"x-a\"", "private"]);
        assert!(parsed.private);
        assert_eq!(parsed.private_fields, vec!["x-a"]);
    }

    #[test]
    fn quoted_strings_unescape_and_unterminated_do_not_panic() {
        let parsed = cc(&["private=\"x-\\a\", max-age=4"]);
        assert_eq!(parsed.private_fields, vec!["x-a"]);
        assert_eq!(parsed.max_age, Some(4));
        let parsed = cc(&["private=\"x-a, max-age=4"]);
        assert_eq!(parsed.max_age, None);
        assert_eq!(parsed.private_fields, vec!["x-a", "max-age=4"]);
        for junk in ["\"", "=", "==", "=\"", "\\", "max-age=\"\\", "é=é, max-age=ü"] {
            let _ = cc(&[junk]);
        }
    }

    #[test]
    fn forbids_stale() {
        assert!(!cc(&["max-age=5"]).forbids_stale());
        assert!(cc(&["max-age=5, must-revalidate"]).forbids_stale());
        assert!(cc(&["max-age=5, proxy-revalidate"]).forbids_stale());
        assert!(cc(&["s-maxage=5"]).forbids_stale());
    }

    #[test]
    fn from_headers_reads_every_line() {
        let mut headers = http::HeaderMap::new();
        headers.append("cache-control", "public".parse().unwrap());
        headers.append("cache-control", "max-age=12".parse().unwrap());
        headers.append("cache-control", http::HeaderValue::from_bytes(b"x=\"\xe9\", no-store").unwrap());
        headers.append("cache-control", http::HeaderValue::from_bytes(b"\xffprivate").unwrap());
        let parsed = CacheControl::from_headers(&headers);
        assert!(parsed.public);
        assert_eq!(parsed.max_age, Some(12));
        assert!(parsed.no_store, "a no-store beside non-ASCII bytes is kept");
        assert!(!parsed.private, "a mangled token is unknown, not a guess");
    }

    #[test]
    fn parse_delta_seconds_table() {
        let table = [
            ("0", Some(0)),
            ("1", Some(1)),
            ("4294967295", Some(DELTA_SECONDS_MAX)),
            ("2147483648", Some(DELTA_SECONDS_MAX)),
            ("2147483647", Some(2_147_483_647)),
            ("", None),
            ("-1", None),
            (" 1", None),
            ("1s", None),
            ("١", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_delta_seconds(text), expected, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(lines in proptest::collection::vec(".*", 0..4)) {
            let _ = CacheControl::parse(lines.iter().map(String::as_str));
        }
    }

    #[test]
    fn an_empty_cdn_cache_control_line_is_no_field() {
        for empty in ["", " ", "\t "] {
            let mut headers = http::HeaderMap::new();
            headers.append(http::header::CACHE_CONTROL, http::HeaderValue::from_static("private, no-store"));
            headers.append("cdn-cache-control", http::HeaderValue::from_static(empty));
            let cc = CacheControl::for_this_cache(&headers);
            assert!(cc.private && cc.no_store, "{empty:?}: {cc:?}");
            assert_eq!(cc, CacheControl::from_headers(&headers));
        }
    }
}
