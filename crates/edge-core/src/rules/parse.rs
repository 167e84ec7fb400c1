//! `CACHE_RULES` JSON → [`Rule`]s. Every error names the rule by its 0-based index and the
//! field, in words an operator can act on ("rule 2: `ttl` must be a non-negative integer
//! (seconds)"). Unknown fields are errors, as with serde's `deny_unknown_fields`: a typo such as
//! `"tll"` must not silently do nothing.

use http::Method;
use serde_json::{Map, Value};

use super::cache_key::{KeySpec, QueryKey};
use super::glob::Glob;
use super::matching::{HostPattern, PathPattern, Presence};
use super::status_ttl::StatusTtl;
use super::{Rule, RulesError};

/// Every field a rule may have, in the order the error message lists them.
pub const FIELDS: &[&str] = &[
    "path",
    "host",
    "methods",
    "headers",
    "cookies",
    "ttl",
    "swr",
    "sie",
    "override",
    "cache",
    "tags",
    "bypass_cookies",
    "status_ttl",
    "browser_ttl",
    "query",
    "key_headers",
    "key_cookies",
    "key_host",
    "strip_query",
];

/// At most this many entries in one list field (hosts, methods, names, patterns).
const MAX_LIST: usize = 64;

pub(super) fn parse_rules(json: &str) -> Result<Vec<Rule>, RulesError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|error| RulesError { rule: None, reason: format!("not valid JSON: {error}") })?;
    let Value::Array(items) = value else {
        return Err(RulesError { rule: None, reason: format!("not a JSON array (got {})", kind(&value)) });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_rule(item).map_err(|reason| RulesError { rule: Some(index), reason }))
        .collect()
}

fn parse_rule(item: &Value) -> Result<Rule, String> {
    let Value::Object(fields) = item else {
        return Err(format!("must be a JSON object (got {})", kind(item)));
    };
    if let Some(unknown) = fields.keys().find(|name| !FIELDS.contains(&name.as_str())) {
        return Err(format!("unknown field `{unknown}` (expected one of {})", FIELDS.join(", ")));
    }
    let path = match fields.get("path") {
        Some(Value::String(text)) => PathPattern::parse(text)?,
        Some(_) => return Err("`path` must be a string".to_string()),
        None => return Err("`path` is required".to_string()),
    };
    let hosts = match fields.get("host") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(host)) => vec![HostPattern::parse(host)?],
        Some(Value::Array(_)) => {
            strings(fields, "host")?.iter().map(|h| HostPattern::parse(h)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err("`host` must be a string or an array of strings".to_string()),
    };
    let methods = strings(fields, "methods")?
        .iter()
        .map(|name| match name.to_ascii_uppercase().as_str() {
            // The standard methods only (no `Method::from_bytes` in the wasm for this).
            "GET" => Ok(Method::GET),
            "HEAD" => Ok(Method::HEAD),
            "POST" => Ok(Method::POST),
            "PUT" => Ok(Method::PUT),
            "PATCH" => Ok(Method::PATCH),
            "DELETE" => Ok(Method::DELETE),
            "OPTIONS" => Ok(Method::OPTIONS),
            _ => Err(format!("`methods` entry {name:?} is not a method name: GET, HEAD, POST, PUT, …")),
        })
        .collect::<Result<Vec<Method>, String>>()?;
    let headers = conditions(fields, "headers")?
        .into_iter()
        .map(|(name, cond)| {
            http::HeaderName::from_bytes(name.as_bytes())
                .map(|n| (n.as_str().to_string(), cond))
                .map_err(|_| format!("`headers` key {name:?} is not a header name"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let cookies = conditions(fields, "cookies")?;
    for (name, _) in &cookies {
        check_cookie_name("cookies", name)?;
    }
    let cache = boolean(fields, "cache")?.unwrap_or(true);
    let key = key_spec(fields)?;
    let rule = Rule {
        path,
        hosts,
        methods,
        headers,
        cookies,
        ttl: seconds(fields, "ttl")?,
        swr: seconds(fields, "swr")?,
        sie: seconds(fields, "sie")?,
        override_origin: boolean(fields, "override")?.unwrap_or(false),
        cache,
        tags: tags(fields)?,
        bypass_cookies: globs(fields, "bypass_cookies")?,
        status_ttl: match fields.get("status_ttl") {
            None | Some(Value::Null) => StatusTtl::default(),
            Some(Value::Object(entries)) => StatusTtl::parse(entries)?,
            Some(_) => return Err("`status_ttl` must be an object such as {\"404\": 10, \"5xx\": 0}".into()),
        },
        browser_ttl: seconds(fields, "browser_ttl")?,
        key,
    };
    Ok(rule)
}

fn key_spec(fields: &Map<String, Value>) -> Result<KeySpec, String> {
    let query = match fields.get("query") {
        None | Some(Value::Null) => QueryKey::All,
        Some(Value::String(text)) if text == "ignore" => QueryKey::Ignore,
        Some(Value::String(text)) if text == "all" => QueryKey::All,
        Some(Value::Object(spec)) if spec.len() == 1 && spec.contains_key("include") => {
            QueryKey::Include(globs(spec, "include").map_err(|e| format!("`query`: {e}"))?)
        }
        Some(Value::Object(spec)) if spec.len() == 1 && spec.contains_key("exclude") => {
            QueryKey::Exclude(globs(spec, "exclude").map_err(|e| format!("`query`: {e}"))?)
        }
        Some(_) => {
            return Err(
                "`query` must be \"all\", \"ignore\", {\"include\": [...]} or {\"exclude\": [...]}".into()
            )
        }
    };
    let headers = strings(fields, "key_headers")?
        .into_iter()
        .map(|name| {
            http::HeaderName::from_bytes(name.as_bytes())
                .map(|n| n.as_str().to_string())
                .map_err(|_| format!("`key_headers` entry {name:?} is not a header name"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let cookies = strings(fields, "key_cookies")?;
    for name in &cookies {
        check_cookie_name("key_cookies", name)?;
    }
    Ok(KeySpec {
        query,
        headers,
        cookies,
        host: boolean(fields, "key_host")?.unwrap_or(true),
        strip_query: boolean(fields, "strip_query")?.unwrap_or(false),
    })
}

/// `{"name": true | false | "glob"}`: present, absent, or a value.
fn conditions(fields: &Map<String, Value>, name: &str) -> Result<Vec<(String, Presence)>, String> {
    let entries = match fields.get(name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            return Err(format!(
                "`{name}` must be an object of names to true (present), false (absent) or a value pattern"
            ))
        }
    };
    if entries.len() > MAX_LIST {
        return Err(format!("`{name}` has more than {MAX_LIST} entries"));
    }
    entries
        .iter()
        .map(|(key, value)| {
            let condition = match value {
                Value::Bool(true) => Presence::Present,
                Value::Bool(false) => Presence::Absent,
                Value::String(pattern) => {
                    Presence::Value(Glob::parse(pattern).map_err(|why| format!("`{name}[{key:?}]` {why}"))?)
                }
                _ => return Err(format!("`{name}[{key:?}]` must be true, false or a string")),
            };
            Ok((key.clone(), condition))
        })
        .collect()
}

fn check_cookie_name(field: &str, name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("`{field}` name {name:?} is not a cookie name"));
    }
    Ok(())
}

/// An optional array of strings (non-empty, at most [`MAX_LIST`]).
fn strings(fields: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    let items = match fields.get(name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("`{name}` must be an array of strings")),
    };
    if items.len() > MAX_LIST {
        return Err(format!("`{name}` has more than {MAX_LIST} entries"));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(text) if text.is_empty() => Err(format!("`{name}[{index}]` is empty")),
            Value::String(text) => Ok(text.clone()),
            _ => Err(format!("`{name}[{index}]` must be a string")),
        })
        .collect()
}

fn globs(fields: &Map<String, Value>, name: &str) -> Result<Vec<Glob>, String> {
    strings(fields, name)?
        .iter()
        .enumerate()
        .map(|(index, text)| Glob::parse(text).map_err(|why| format!("`{name}[{index}]` {why}")))
        .collect()
}

fn seconds(fields: &Map<String, Value>, name: &str) -> Result<Option<u32>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(seconds) => u32::try_from(seconds)
                .map(Some)
                .map_err(|_| format!("`{name}` must be at most {} (seconds)", u32::MAX)),
            None => Err(format!("`{name}` must be a non-negative integer (seconds)")),
        },
        Some(_) => Err(format!("`{name}` must be a non-negative integer (seconds)")),
    }
}

fn boolean(fields: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(format!("`{name}` must be true or false")),
    }
}

fn tags(fields: &Map<String, Value>) -> Result<Vec<String>, String> {
    let items = match fields.get("tags") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("`tags` must be an array of strings".to_string()),
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(tag) if tag.is_empty() => Err(format!("`tags[{index}]` is empty")),
            Value::String(tag) if tag.contains(|c: char| c == ',' || c.is_whitespace()) => {
                Err(format!("`tags[{index}]` must not contain commas or whitespace (got {tag:?})"))
            }
            Value::String(tag) => Ok(tag.clone()),
            _ => Err(format!("`tags[{index}]` must be a string")),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
