//! A rule's `status_ttl` (docs §3.4): the edge TTL by status, `{"200-299": 300, "404": 10,
//! "5xx": 0}`. A status code beats a range, and a narrower range a wider one, whatever the
//! order they are written in.

use serde_json::{Map, Value};

/// One entry: the statuses `from..=to` get `ttl` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatusRange {
    from: u16,
    to: u16,
    ttl: u32,
}

/// The parsed `status_ttl`; empty when the rule has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusTtl(Vec<StatusRange>);

impl StatusTtl {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The TTL for `status`, if an entry covers it: the narrowest such entry's.
    pub fn get(&self, status: u16) -> Option<u32> {
        self.0
            .iter()
            .filter(|range| (range.from..=range.to).contains(&status))
            .min_by_key(|range| (range.to - range.from, range.from))
            .map(|range| range.ttl)
    }

    /// Parses a rule's `status_ttl` object. Keys: a status (`"404"`), a range (`"200-299"`) or
    /// a class (`"5xx"`), within 200–599; values: whole seconds.
    pub fn parse(fields: &Map<String, Value>) -> Result<StatusTtl, String> {
        let mut ranges = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            let (from, to) = parse_key(key)?;
            let ttl = match value.as_u64() {
                Some(seconds) => u32::try_from(seconds)
                    .map_err(|_| format!("`status_ttl[{key:?}]` must be at most {} (seconds)", u32::MAX))?,
                None => {
                    return Err(format!("`status_ttl[{key:?}]` must be a non-negative integer (seconds)"))
                }
            };
            if let Some(same) = ranges.iter().find(|r: &&StatusRange| (r.from, r.to) == (from, to)) {
                return Err(format!(
                    "`status_ttl` names {from}-{to} twice (got {key:?} after {}-{})",
                    same.from, same.to
                ));
            }
            ranges.push(StatusRange { from, to, ttl });
        }
        Ok(StatusTtl(ranges))
    }
}

fn parse_key(key: &str) -> Result<(u16, u16), String> {
    let bad = || {
        format!(
            "`status_ttl` key {key:?} must be a status (\"404\"), a range (\"200-299\") or a class (\"5xx\")"
        )
    };
    let status = |text: &str| -> Result<u16, String> {
        let code: u16 = text.trim().parse().map_err(|_| bad())?;
        if (200..=599).contains(&code) && text.trim().len() == 3 {
            Ok(code)
        } else {
            Err(format!("`status_ttl` key {key:?}: statuses are 200-599 (a 1xx is never final)"))
        }
    };
    let lower = key.trim().to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let digit: u16 = class.parse().map_err(|_| bad())?;
        if class.len() != 1 || !(2..=5).contains(&digit) {
            return Err(bad());
        }
        return Ok((digit * 100, digit * 100 + 99));
    }
    match lower.split_once('-') {
        Some((from, to)) => {
            let (from, to) = (status(from)?, status(to)?);
            if from > to {
                return Err(format!("`status_ttl` key {key:?}: the range is backwards"));
            }
            Ok((from, to))
        }
        None => status(&lower).map(|code| (code, code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<StatusTtl, String> {
        match serde_json::from_str::<Value>(json).unwrap() {
            Value::Object(fields) => StatusTtl::parse(&fields),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_narrowest_entry_wins() {
        let ttl = parse(r#"{"5xx": 0, "200-299": 300, "404": 10, "4xx": 5, "400-404": 7}"#).unwrap();
        let table = [
            (200, Some(300)),
            (299, Some(300)),
            (301, None),
            (404, Some(10)),
            (403, Some(7)),
            (410, Some(5)),
        ];
        for (status, expected) in table {
            assert_eq!(ttl.get(status), expected, "{status}");
        }
        assert_eq!(ttl.get(503), Some(0));
        assert!(StatusTtl::default().get(200).is_none());
    }

    #[test]
    fn errors_name_the_key() {
        for (json, expected) in [
            (r#"{"2x": 1}"#, "`status_ttl` key \"2x\" must be a status"),
            (r#"{"1xx": 1}"#, "`status_ttl` key \"1xx\" must be a status"),
            (r#"{"abc": 1}"#, "`status_ttl` key \"abc\" must be a status"),
            (r#"{"99": 1}"#, "`status_ttl` key \"99\": statuses are 200-599"),
            (r#"{"600": 1}"#, "`status_ttl` key \"600\": statuses are 200-599"),
            (r#"{"299-200": 1}"#, "`status_ttl` key \"299-200\": the range is backwards"),
            (r#"{"404": -1}"#, "`status_ttl[\"404\"]` must be a non-negative integer"),
            (r#"{"404": "10"}"#, "`status_ttl[\"404\"]` must be a non-negative integer"),
            (r#"{"404": 4294967296}"#, "`status_ttl[\"404\"]` must be at most 4294967295"),
            (r#"{"2xx": 1, "200-299": 2}"#, "`status_ttl` names 200-299 twice"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.starts_with(expected), "{json}: {error}");
        }
    }
}
