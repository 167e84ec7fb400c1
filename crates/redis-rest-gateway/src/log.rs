//! One line per event on stderr, as text (`<unix time> redis-rest-gateway <level>: <message>`)
//! or, with `--log-format json`, as one JSON object (`{"ts":…,"level":…,"msg":…}` plus the
//! request's fields for a failed request).

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Chooses the format once, at start-up; later calls change nothing.
pub fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
}

fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Text)
}

fn now() -> (u64, u32) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.as_secs(), now.subsec_millis())
}

fn emit(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// The JSON form of an event.
fn json_line(level: &str, message: &str, fields: Map<String, Value>) -> String {
    let (secs, millis) = now();
    let mut object = Map::new();
    object.insert("ts".into(), json!(secs as f64 + f64::from(millis) / 1000.0));
    object.insert("level".into(), json!(level));
    object.insert("msg".into(), json!(message));
    object.extend(fields);
    Value::Object(object).to_string()
}

fn line(level: &str, message: &str) {
    match format() {
        LogFormat::Text => {
            let (secs, millis) = now();
            // One message per line, whatever it contains.
            let message = message.replace(['\r', '\n'], " ");
            emit(&format!("{secs}.{millis:03} redis-rest-gateway {level}: {message}"));
        }
        LogFormat::Json => emit(&json_line(level, message, Map::new())),
    }
}

pub fn info(message: &str) {
    line("info", message);
}

pub fn error(message: &str) {
    line("error", message);
}

/// A request that failed.
pub struct FailedRequest<'a> {
    pub status: u16,
    pub method: &'a str,
    pub path: &'a str,
    pub kind: &'a str,
    /// The command names, comma-separated (empty if the body was never parsed).
    pub commands: &'a str,
    pub message: &'a str,
}

pub fn failed_request(r: &FailedRequest<'_>) {
    match format() {
        LogFormat::Text => {
            let commands = if r.commands.is_empty() { String::new() } else { format!(" ({})", r.commands) };
            error(&format!("{} {} {} {}{commands}: {}", r.status, r.method, r.path, r.kind, r.message));
        }
        LogFormat::Json => emit(&request_json(r)),
    }
}

fn request_json(r: &FailedRequest<'_>) -> String {
    let mut fields = Map::new();
    fields.insert("status".into(), json!(r.status));
    fields.insert("method".into(), json!(r.method));
    fields.insert("path".into(), json!(r.path));
    fields.insert("kind".into(), json!(r.kind));
    if !r.commands.is_empty() {
        fields.insert("commands".into(), json!(r.commands));
    }
    json_line("error", r.message, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_one_object_each() {
        let r = FailedRequest {
            status: 400,
            method: "POST",
            path: "/pipeline",
            kind: "command-error",
            commands: "INCR,GET",
            message: "ERR value is not an integer\nor out of range",
        };
        let line = request_json(&r);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["status"], 400);
        assert_eq!(v["commands"], "INCR,GET");
        assert_eq!(v["msg"], "ERR value is not an integer\nor out of range");
        assert!(v["ts"].as_f64().unwrap() > 1.6e9);
    }
}
