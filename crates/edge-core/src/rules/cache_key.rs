//! What a rule puts in the cache key (docs §3.6): which query parameters, the host or not, and
//! extra parts read from request headers and cookies. Marketing parameters (`utm_*`, `fbclid`,
//! `gclid`, …) are left out of every key unless `CACHE_KEEP_MARKETING_PARAMS` is set: they
//! name a campaign, not a different page, and would make every campaign click a miss.

use http::HeaderMap;

use super::glob::Glob;
use super::matching::{cookie_value, header_value};

/// Query parameters that carry click and campaign tracking only (names as sent, globs).
pub const MARKETING_PARAMS: &[&str] = &[
    "utm_*",
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_eid",
    "mc_cid",
    "yclid",
    "twclid",
    "ttclid",
    "igshid",
    "li_fat_id",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "srsltid",
    "s_kwcid",
    "epik",
    "rb_clickid",
    "sc_cid",
    "vero_id",
    "oly_anon_id",
    "oly_enc_id",
];

/// Whether `name` is one of [`MARKETING_PARAMS`].
pub fn is_marketing(name: &str) -> bool {
    MARKETING_PARAMS.iter().any(|pattern| match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *pattern,
    })
}

/// A rule's `query`: which parameters enter the key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueryKey {
    /// Every parameter (the default), marketing ones aside.
    #[default]
    All,
    /// `"ignore"`: none; every query shares the path's entry.
    Ignore,
    /// `{"include": [...]}`: only these (marketing ones too, when named).
    Include(Vec<Glob>),
    /// `{"exclude": [...]}`: all but these, marketing ones aside.
    Exclude(Vec<Glob>),
}

/// Everything a rule says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub query: QueryKey,
    /// `key_headers`, lower-cased: each value becomes a key part.
    pub headers: Vec<String>,
    /// `key_cookies`: each value becomes a key part.
    pub cookies: Vec<String>,
    /// `key_host` (default `true`): `false` shares entries between host names.
    pub host: bool,
    /// `strip_query`: parameters left out of the key are not sent to the origin either.
    pub strip_query: bool,
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec {
            query: QueryKey::All,
            headers: Vec::new(),
            cookies: Vec::new(),
            host: true,
            strip_query: false,
        }
    }
}

impl KeySpec {
    /// Whether query parameter `name` (as sent) enters the key.
    pub fn keeps_param(&self, name: &str, keep_marketing: bool) -> bool {
        let marketing_ok = keep_marketing || !is_marketing(name);
        match &self.query {
            QueryKey::All => marketing_ok,
            QueryKey::Ignore => false,
            QueryKey::Include(globs) => globs.iter().any(|g| g.matches(name)),
            QueryKey::Exclude(globs) => marketing_ok && !globs.iter().any(|g| g.matches(name)),
        }
    }
}

/// A request header's value as a key part: `Accept-Language` is its preferred language (the
/// highest `q`, the first of equals, lower-cased), so that the many ways browsers spell the
/// same preference share one entry; any other header is its lines joined. `None`: absent.
pub fn header_part(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = header_value(headers, name)?;
    Some(if name == "accept-language" { preferred_language(&value) } else { value })
}

/// A cookie's value as a key part; `None`: absent.
pub fn cookie_part(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_value(headers, name).map(str::to_string)
}

/// The language an `Accept-Language` value prefers most: `"de-CH,de;q=0.9,en;q=0.8"` is
/// `de-ch`. Ranges with `q=0` and `*` do not count; nothing usable is `""`.
pub fn preferred_language(value: &str) -> String {
    let mut best: Option<(u32, &str)> = None;
    for item in value.split(',') {
        let mut params = item.split(';');
        let range = params.next().unwrap_or("").trim();
        if range.is_empty() || range == "*" {
            continue;
        }
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(quality)
            .unwrap_or(1000);
        if q > 0 && best.is_none_or(|(top, _)| q > top) {
            best = Some((q, range));
        }
    }
    best.map(|(_, range)| range.to_ascii_lowercase()).unwrap_or_default()
}

/// An RFC 9110 `qvalue` (`0`, `0.8`, `1.000`) in thousandths; `None` when it does not parse.
/// By hand: float parsing would cost the wasm more than this whole module.
fn quality(text: &str) -> Option<u32> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |n, digit| n * 10 + u32::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `url` with the query parameters `keep` refuses removed (in their order otherwise), for the
/// origin request of a rule with `strip_query`.
pub fn strip_query(url: &str, keep: impl Fn(&str) -> bool) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_string() };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| !param.is_empty() && keep(param.split('=').next().unwrap_or(param)))
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(names: &[&str]) -> Vec<Glob> {
        names.iter().map(|n| Glob::parse(n).unwrap()).collect()
    }

    #[test]
    fn which_parameters_enter_the_key() {
        let all = KeySpec::default();
        let include = KeySpec { query: QueryKey::Include(globs(&["page", "utm_campaign"])), ..all.clone() };
        let exclude = KeySpec { query: QueryKey::Exclude(globs(&["ref*"])), ..all.clone() };
        let ignore = KeySpec { query: QueryKey::Ignore, ..all.clone() };
        // (name, all, include, exclude, ignore), marketing parameters left out by default
        let table = [
            ("page", true, true, true, false),
            ("utm_source", false, false, false, false),
            ("utm_campaign", false, true, false, false),
            ("fbclid", false, false, false, false),
            ("gclid", false, false, false, false),
            ("referrer", true, false, false, false),
            ("sort", true, false, true, false),
        ];
        for (name, a, i, e, g) in table {
            assert_eq!(all.keeps_param(name, false), a, "all {name}");
            assert_eq!(include.keeps_param(name, false), i, "include {name}");
            assert_eq!(exclude.keeps_param(name, false), e, "exclude {name}");
            assert_eq!(ignore.keeps_param(name, false), g, "ignore {name}");
        }
        assert!(all.keeps_param("utm_source", true), "CACHE_KEEP_MARKETING_PARAMS keeps them");
        assert!(exclude.keeps_param("gclid", true));
        assert!(!exclude.keeps_param("ref", true));
    }

    #[test]
    fn marketing_names() {
        for name in ["utm_source", "utm_medium", "utm_", "fbclid", "gclid", "msclkid", "mc_eid", "_ga"] {
            assert!(is_marketing(name), "{name}");
        }
        for name in ["utm", "UTM_SOURCE", "page", "gclid2", "q"] {
            assert!(!is_marketing(name), "{name}");
        }
    }

    #[test]
    fn accept_language_is_its_preferred_language() {
        for (value, expected) in [
            ("de-CH,de;q=0.9,en;q=0.8", "de-ch"),
            ("en;q=0.5, fr", "fr"),
            ("en-US", "en-us"),
            ("*, de;q=0.1", "de"),
            ("de;q=0, en;q=0.001", "en"),
            ("da, en-gb;q=0.8, en;q=0.7", "da"),
            ("fr;q=abc, it", "fr"),
            ("fr;q=0.333, it;q=0.334", "it"),
            ("fr;q=1.0, it;q=1.5", "fr"),
            ("", ""),
            (" , ;", ""),
        ] {
            assert_eq!(preferred_language(value), expected, "{value:?}");
        }
    }

    #[test]
    fn strip_query_keeps_order_and_drops_the_rest() {
        let keep = |name: &str| !is_marketing(name);
        assert_eq!(strip_query("https://a/p?b=2&utm_source=x&a=1", keep), "https://a/p?b=2&a=1");
        assert_eq!(strip_query("https://a/p?utm_source=x&fbclid=y", keep), "https://a/p");
        assert_eq!(strip_query("https://a/p", keep), "https://a/p");
        assert_eq!(strip_query("https://a/p?&&x", keep), "https://a/p?x");
    }
}
