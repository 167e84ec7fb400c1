//! `CACHE_RULES` (docs §3): a JSON array of per-path policies; the first rule whose `path`
//! matches wins.
//!
//! Validation is by hand over `serde_json::Value` rather than `#[derive(Deserialize)]` so that
//! every error names the rule index and the field, in words an operator can act on
//! ("rule 2: `ttl` must be a non-negative integer (seconds)"). Unknown fields are errors, as with
//! serde's `deny_unknown_fields`: a typo such as `"tll"` must not silently do nothing.

use std::fmt;

use serde_json::{Map, Value};

/// Which request paths a rule applies to. Matching is on the raw (still percent-encoded) path,
/// case-sensitive, without the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// The path equals this string.
    Exact(String),
    /// The path starts with this string (written in JSON with a trailing `*`, which is not kept
    /// here: `"/api/*"` is `Prefix("/api/")`).
    Prefix(String),
}

impl PathPattern {
    /// Parses a rule's `path`: must start with `/`; a single `*` is allowed only at the end and
    /// makes the rest a prefix.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if !text.starts_with('/') {
            return Err(format!("`path` must start with / (got {text:?})"));
        }
        match text.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Ok(PathPattern::Prefix(prefix.to_string())),
            Some(_) => Err(format!("`path` may contain `*` only once, at its end (got {text:?})")),
            None if text.contains('*') => {
                Err(format!("`path` may contain `*` only at its end (got {text:?})"))
            }
            None => Ok(PathPattern::Exact(text.to_string())),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(exact) => path == exact,
            PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }
}

/// One rule. `ttl`, `swr` and `sie` are seconds; they apply field by field when the origin gives
/// no value for that field, or always when `override_origin` (JSON `"override": true`).
/// `cache: false` means never look up or store matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathPattern,
    pub ttl: Option<u32>,
    pub swr: Option<u32>,
    pub sie: Option<u32>,
    pub override_origin: bool,
    pub cache: bool,
    pub tags: Vec<String>,
}

impl Rule {
    /// A rule for `path` that changes nothing (`cache: true`, no values, no tags).
    pub fn new(path: PathPattern) -> Rule {
        Rule { path, ttl: None, swr: None, sie: None, override_origin: false, cache: true, tags: Vec::new() }
    }
}

/// The parsed `CACHE_RULES`, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheRules(Vec<Rule>);

/// Why `CACHE_RULES` was refused; `Display` gives the whole reason, e.g.
/// "rule 0: `path` must start with / (got \"api\")".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// Index of the offending rule, when the problem is inside one.
    pub rule: Option<usize>,
    pub reason: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(index) => write!(f, "rule {index}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RulesError {}

const FIELDS: &str = "path, ttl, swr, sie, override, cache, tags";

impl CacheRules {
    pub fn new(rules: Vec<Rule>) -> CacheRules {
        CacheRules(rules)
    }

    /// Parses the `CACHE_RULES` value. An empty or all-whitespace string means no rules.
    pub fn parse(json: &str) -> Result<CacheRules, RulesError> {
        if json.trim().is_empty() {
            return Ok(CacheRules::default());
        }
        let value: Value = serde_json::from_str(json)
            .map_err(|error| RulesError { rule: None, reason: format!("not valid JSON: {error}") })?;
        let Value::Array(items) = value else {
            return Err(RulesError {
                rule: None,
                reason: format!("not a JSON array (got {})", kind(&value)),
            });
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_rule(item).map_err(|reason| RulesError { rule: Some(index), reason }))
            .collect::<Result<Vec<Rule>, RulesError>>()
            .map(CacheRules)
    }

    /// The first rule whose path matches `path` (the request path, without the query).
    pub fn matching(&self, path: &str) -> Option<&Rule> {
        self.0.iter().find(|rule| rule.path.matches(path))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_rule(item: &Value) -> Result<Rule, String> {
    let Value::Object(fields) = item else {
        return Err(format!("must be a JSON object (got {})", kind(item)));
    };
    if let Some(unknown) = fields.keys().find(|name| !FIELDS.split(", ").any(|f| f == *name)) {
        return Err(format!("unknown field `{unknown}` (expected one of {FIELDS})"));
    }
    let path = match fields.get("path") {
        Some(Value::String(text)) => PathPattern::parse(text)?,
        Some(_) => return Err("`path` must be a string".to_string()),
        None => return Err("`path` is required".to_string()),
    };
    Ok(Rule {
        path,
        ttl: seconds(fields, "ttl")?,
        swr: seconds(fields, "swr")?,
        sie: seconds(fields, "sie")?,
        override_origin: boolean(fields, "override")?.unwrap_or(false),
        cache: boolean(fields, "cache")?.unwrap_or(true),
        tags: tags(fields)?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_no_rules() {
        for text in ["", "   ", "\n", "[]", " [ ] "] {
            let rules = CacheRules::parse(text).unwrap();
            assert!(rules.is_empty(), "{text:?}");
            assert_eq!(rules.matching("/"), None);
        }
    }

    #[test]
    fn parses_every_field() {
        let rules = CacheRules::parse(
            r#"[{"path":"/api/*","ttl":60,"swr":30,"sie":600,"override":true,"cache":true,"tags":["api","v1"]},
                {"path":"/login","cache":false},
                {"path":"/n","ttl":null}]"#,
        )
        .unwrap();
        assert_eq!(
            rules.rules(),
            &[
                Rule {
                    path: PathPattern::Prefix("/api/".into()),
                    ttl: Some(60),
                    swr: Some(30),
                    sie: Some(600),
                    override_origin: true,
                    cache: true,
                    tags: vec!["api".into(), "v1".into()],
                },
                Rule { cache: false, ..Rule::new(PathPattern::Exact("/login".into())) },
                Rule::new(PathPattern::Exact("/n".into())),
            ]
        );
    }

    #[test]
    fn first_match_wins() {
        let rules = CacheRules::parse(
            r#"[{"path":"/api/private/*","cache":false},
                {"path":"/api/*","ttl":60},
                {"path":"/api/health","ttl":1},
                {"path":"/*","ttl":5}]"#,
        )
        .unwrap();
        let table = [
            ("/api/private/x", Some(0)),
            ("/api/private/", Some(0)),
            ("/api/private", Some(1)), // prefix "/api/private/" needs the slash
            ("/api/health", Some(1)),  // shadowed by the earlier /api/*
            ("/api/", Some(1)),
            ("/api", Some(3)),
            ("/", Some(3)),
            ("/API/x", Some(3)), // case-sensitive
        ];
        for (path, expected) in table {
            let found = rules.matching(path).and_then(|rule| rules.rules().iter().position(|r| r == rule));
            assert_eq!(found, expected, "{path}");
        }
        let exact = CacheRules::parse(r#"[{"path":"/a"}]"#).unwrap();
        assert!(exact.matching("/a").is_some());
        assert!(exact.matching("/a/").is_none());
        assert!(exact.matching("/ab").is_none());
        assert!(exact.matching("/").is_none());
    }

    #[test]
    fn errors_are_precise() {
        let table = [
            ("{", "not valid JSON: "),
            ("{}", "not a JSON array (got an object)"),
            ("\"x\"", "not a JSON array (got a string)"),
            ("[1]", "rule 0: must be a JSON object (got a number)"),
            ("[{}]", "rule 0: `path` is required"),
            (r#"[{"path":5}]"#, "rule 0: `path` must be a string"),
            (r#"[{"path":"api"}]"#, "rule 0: `path` must start with / (got \"api\")"),
            (r#"[{"path":"*"}]"#, "rule 0: `path` must start with /"),
            (r#"[{"path":"/a*b"}]"#, "rule 0: `path` may contain `*` only at its end"),
            (r#"[{"path":"/a**"}]"#, "rule 0: `path` may contain `*` only once, at its end"),
            (
                r#"[{"path":"/"},{"path":"/"},{"path":"/x","ttl":-1}]"#,
                "rule 2: `ttl` must be a non-negative integer (seconds)",
            ),
            (r#"[{"path":"/x","ttl":1.5}]"#, "rule 0: `ttl` must be a non-negative integer (seconds)"),
            (r#"[{"path":"/x","swr":"60"}]"#, "rule 0: `swr` must be a non-negative integer (seconds)"),
            (r#"[{"path":"/x","sie":4294967296}]"#, "rule 0: `sie` must be at most 4294967295 (seconds)"),
            (r#"[{"path":"/x","cache":"no"}]"#, "rule 0: `cache` must be true or false"),
            (r#"[{"path":"/x","override":1}]"#, "rule 0: `override` must be true or false"),
            (
                r#"[{"path":"/x","tll":60}]"#,
                "rule 0: unknown field `tll` (expected one of path, ttl, swr, sie, override, cache, tags)",
            ),
            (r#"[{"path":"/x","tags":"a"}]"#, "rule 0: `tags` must be an array of strings"),
            (r#"[{"path":"/x","tags":["a",1]}]"#, "rule 0: `tags[1]` must be a string"),
            (r#"[{"path":"/x","tags":[""]}]"#, "rule 0: `tags[0]` is empty"),
            (r#"[{"path":"/x","tags":["a b"]}]"#, "rule 0: `tags[0]` must not contain commas or whitespace"),
        ];
        for (json, expected) in table {
            let error = CacheRules::parse(json).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "{json}: got {error:?}, expected it to start with {expected:?}"
            );
        }
    }

    #[test]
    fn error_carries_rule_index() {
        let error = CacheRules::parse(r#"[{"path":"/"},{"path":"x"}]"#).unwrap_err();
        assert_eq!(error.rule, Some(1));
        let error = CacheRules::parse("7").unwrap_err();
        assert_eq!(error.rule, None);
    }

    #[test]
    fn path_pattern_parse() {
        assert_eq!(PathPattern::parse("/"), Ok(PathPattern::Exact("/".into())));
        assert_eq!(PathPattern::parse("/*"), Ok(PathPattern::Prefix("/".into())));
        assert_eq!(PathPattern::parse("/a/b*"), Ok(PathPattern::Prefix("/a/b".into())));
        assert!(PathPattern::Prefix("/".into()).matches("/anything/at/all"));
        assert!(PathPattern::parse("").is_err());
    }
}
