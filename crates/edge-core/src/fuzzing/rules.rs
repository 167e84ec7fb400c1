//! The `rules_config` target: `CACHE_RULES` (docs §3) and the whole configuration (docs §1).

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL};
use http::{HeaderMap, Method, Uri};

use super::lines;
use crate::cache_control::CacheControl;
use crate::config::Config;
use crate::key::{normalized_path, url_id_of};
use crate::policy::{request_decision, response_decision};
use crate::rules::browser::apply_browser_ttl;
use crate::rules::cache_key::QueryKey;
use crate::rules::matching::cookies;
use crate::rules::{CacheRules, Glob, PathPattern, RequestView, Rule};

/// `CACHE_RULES` and the whole configuration, and each parsed rule on a request.
///
/// Input: up to the first NUL byte, the text is parsed as `CACHE_RULES`; then its lines, as
/// `NAME=value`, are the environment for [`Config::from_lookup`]. After the NUL: line 1 the
/// host, line 2 the request target, every further line `name: value` a header (of the request,
/// and of the response for `browser_ttl`). Without a NUL, a fixed request.
pub fn rules_config(data: &[u8]) {
    let (config, request) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], FuzzRequest::parse(&data[at + 1..])),
        None => (data, None),
    };
    let request = request.unwrap_or_else(FuzzRequest::fixed);
    let text = String::from_utf8_lossy(config);
    if let Ok(rules) = CacheRules::parse(&text) {
        check_rules(&rules, &request);
    }

    let vars: Vec<(&str, &str)> = text.split('\n').filter_map(|line| line.split_once('=')).collect();
    let lookup =
        |name: &str| vars.iter().rev().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
    match Config::from_lookup(lookup) {
        Ok(config) => {
            check_rules(&config.rules, &request);
            if let Some(session) = &config.session {
                assert!(session.secret.len() >= 32 && session.idle_ttl_s > 0 && session.absolute_ttl_s > 0);
            }
        }
        Err(error) => {
            // Errors never repeat a secret, not even in part. The probe: a non-ASCII character
            // of the secret that no other variable holds. The messages' own words are ASCII, so
            // if it shows in the message, the secret leaked. (Comparing whole values raised two
            // false alarms, docs §11.3: `SESSION_SECRET=N_SECRET`, which is inside the variable's
            // own name, and a token that a neighbour's quoted value plus its closing quote spelt.)
            let message = error.to_string();
            for secret in
                ["SESSION_SECRET", "UPSTASH_REDIS_REST_TOKEN", "UPSTASH_REDIS_REST_URL", "ADMIN_TOKEN"]
            {
                let Some(value) = lookup(secret) else { continue };
                let probe = value.chars().find(|c| {
                    !c.is_ascii() && !vars.iter().any(|(key, other)| *key != secret && other.contains(*c))
                });
                if let Some(probe) = probe {
                    assert!(!message.contains(probe), "the error for {} repeats {secret}", error.variable);
                }
            }
        }
    }
}

fn check_rules(rules: &CacheRules, request: &FuzzRequest) {
    let headers = &request.headers;
    for rule in rules.rules() {
        let path = match &rule.path {
            PathPattern::Exact(path) | PathPattern::Prefix(path) => path.as_str(),
            PathPattern::Glob(glob) => glob.as_str(),
        };
        assert!(path.starts_with('/'), "rule path {path:?}");
        // A pattern's own text matches it (each star standing for itself), so some rule
        // matches it, for the rules `matching` (a GET on no host, without headers) can see.
        let takes_get = rule.methods.is_empty() || rule.methods.contains(&http::Method::GET);
        if takes_get && rule.hosts.is_empty() && rule.headers.is_empty() && rule.cookies.is_empty() {
            assert!(rules.matching(path).is_some(), "no rule matches {path:?}, the path of a rule");
        }
        for tag in &rule.tags {
            assert!(!tag.is_empty() && !tag.contains(|c: char| c == ',' || c.is_whitespace()), "tag {tag:?}");
        }
        let _ = request_decision(&http::Method::GET, headers, Some(rule));
        // The key derivation and the browser TTL take any rule without panicking.
        assert!(rules.key_url(Some(rule), &request.uri).starts_with("https://"));
        let parts = rule.key_parts(0, headers);
        for (at, (name, _)) in parts.iter().enumerate() {
            assert!(!parts[..at].iter().any(|(seen, _)| seen == name), "key part {name} twice");
        }
        if let Some(ttl) = rule.browser_ttl {
            check_browser_ttl(headers, ttl);
        }
        check_globs(rule, request);
        if let Ok(freshness) = response_decision(200, headers, Some(rule), u64::MAX, 1_800_000_000, 10) {
            assert!(freshness.stale_copy_ttl() > 0, "{freshness:?}");
        }
    }
    check_request(rules, request);
    for ttl in [0, 60, u32::MAX] {
        check_browser_ttl(headers, ttl);
    }
}

/// The request the rules are checked on.
struct FuzzRequest {
    uri: Uri,
    headers: HeaderMap,
}

impl FuzzRequest {
    fn parse(data: &[u8]) -> Option<FuzzRequest> {
        let mut parts = lines(data);
        let host = String::from_utf8_lossy(parts.next()?);
        let target = String::from_utf8_lossy(parts.next().unwrap_or(b"/"));
        let uri = format!("https://{host}{target}").parse::<Uri>().ok()?;
        let mut headers = HeaderMap::new();
        for line in parts {
            let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
            let name = HeaderName::from_bytes(&line[..colon]);
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
        Some(FuzzRequest { uri, headers })
    }

    fn fixed() -> FuzzRequest {
        let mut headers = HeaderMap::new();
        headers
            .append(CACHE_CONTROL, HeaderValue::from_static("max-age=60, stale-while-revalidate=4294967295"));
        headers.append(http::header::AGE, HeaderValue::from_static("99999999999"));
        FuzzRequest { uri: Uri::from_static("https://a.example/p?utm_source=x&b=1&a="), headers }
    }
}

/// The rule a `GET` of the request finds: the first that matches; a URL purge of its URL
/// finds the entry it keys (its `url_id` is among [`CacheRules::url_ids`], whatever the
/// headers); and its key does not depend on the order of differently named query parameters.
fn check_request(rules: &CacheRules, request: &FuzzRequest) {
    let host = request.uri.host().unwrap_or("").to_ascii_lowercase();
    let path = normalized_path(request.uri.path());
    let view = RequestView { method: &Method::GET, host: &host, path: &path, headers: &request.headers };
    let found = rules.first_match(&view);
    if let Some((index, rule)) = found {
        assert!(rule.matches(&view));
        assert!(!rules.rules()[..index].iter().any(|earlier| earlier.matches(&view)), "not the first");
    }
    let rule = found.map(|(_, rule)| rule);
    let key_url = rules.key_url(rule, &request.uri);
    assert!(
        rules.url_ids(&request.uri).contains(&url_id_of(&key_url)),
        "a purge of {} misses the entry keyed {key_url}",
        request.uri
    );
    // Reordered: the parameters sorted by name backwards (stable, so those of one name keep
    // their order, which can mean something).
    if let Some(query) = request.uri.query() {
        let mut params: Vec<&str> = query.split('&').collect();
        params.sort_by(|a, b| param_name(b).cmp(param_name(a)));
        let reordered =
            format!("https://{}{}?{}", authority(&request.uri), request.uri.path(), params.join("&"));
        if let Ok(reordered) = reordered.parse::<Uri>() {
            assert_eq!(rules.key_url(rule, &reordered), key_url, "the key depends on the query's order");
        }
    }
}

fn param_name(param: &str) -> &str {
    param.split('=').next().unwrap_or(param)
}

fn authority(uri: &Uri) -> &str {
    uri.authority().map_or("", |authority| authority.as_str())
}

/// `browser_ttl` never makes a `private`, `no-store` or `no-cache` response (qualified or not)
/// cacheable by a browser; what it rewrites reads as one `max-age` and no `s-maxage`, with the
/// other directives kept.
fn check_browser_ttl(headers: &HeaderMap, ttl: u32) {
    let before = CacheControl::from_headers(headers);
    let mut served = headers.clone();
    if !apply_browser_ttl(&mut served, ttl) {
        assert_eq!(&served, headers, "changed without rewriting");
        return;
    }
    let restrictive = |cc: &CacheControl| {
        cc.private
            || cc.no_store
            || cc.no_cache
            || !cc.private_fields.is_empty()
            || !cc.no_cache_fields.is_empty()
    };
    assert!(!restrictive(&before), "browser_ttl rewrote {before:?}");
    let after = CacheControl::from_headers(&served);
    assert!(!restrictive(&after), "browser_ttl made {after:?}");
    assert!(after.max_age.is_some() && after.s_maxage.is_none(), "{after:?}");
    assert_eq!(
        (after.public, after.must_revalidate, after.immutable, after.no_transform),
        (before.public, before.must_revalidate, before.immutable, before.no_transform),
        "browser_ttl changed other directives"
    );
}

/// Every glob of the rule matches its own text (a star standing for itself) and agrees with a
/// plain dynamic-programming matcher on the request's path, host, cookie and parameter names.
fn check_globs(rule: &Rule, request: &FuzzRequest) {
    let path = normalized_path(request.uri.path());
    let host = request.uri.host().unwrap_or("").to_ascii_lowercase();
    let mut subjects: Vec<&str> = vec![&path, &host];
    subjects.extend(cookies(&request.headers).map(|(name, _)| name));
    subjects.extend(request.uri.query().unwrap_or("").split('&').map(param_name));
    let mut globs: Vec<&Glob> = rule.bypass_cookies.iter().collect();
    if let QueryKey::Include(names) | QueryKey::Exclude(names) = &rule.key.query {
        globs.extend(names);
    }
    let path_text = match &rule.path {
        PathPattern::Glob(glob) => {
            globs.push(glob);
            glob.as_str().to_string()
        }
        PathPattern::Exact(exact) => exact.clone(),
        PathPattern::Prefix(prefix) => format!("{prefix}*"),
    };
    for subject in subjects.iter().chain([&path_text.as_str()]).filter(|s| s.len() <= 1024) {
        assert_eq!(
            rule.path.matches(subject),
            reference_match(&path_text, subject),
            "path {path_text:?} on {subject:?}"
        );
    }
    for glob in globs {
        assert!(glob.matches(glob.as_str()), "{:?} does not match itself", glob.as_str());
        for subject in subjects.iter().filter(|s| s.len() <= 1024) {
            let expected = reference_match(glob.as_str(), subject);
            assert_eq!(glob.matches(subject), expected, "{:?} on {subject:?}", glob.as_str());
        }
    }
}

/// Whether `subject` matches `pattern`, `*` any run of characters: row by row over the pattern,
/// `reach[j]` saying whether the pattern so far matches the subject's first `j` characters.
fn reference_match(pattern: &str, subject: &str) -> bool {
    let subject: Vec<char> = subject.chars().collect();
    let mut reach = vec![false; subject.len() + 1];
    reach[0] = true;
    for p in pattern.chars() {
        let mut next = vec![false; subject.len() + 1];
        if p == '*' {
            let mut any = false;
            for (j, slot) in next.iter_mut().enumerate() {
                any |= reach[j];
                *slot = any;
            }
        } else {
            for j in 1..=subject.len() {
                next[j] = reach[j - 1] && subject[j - 1] == p;
            }
        }
        reach = next;
    }
    reach[subject.len()]
}
