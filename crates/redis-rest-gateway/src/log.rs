//! One line per event on stderr: `<unix time> redis-rest-gateway <level>: <message>`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn line(level: &str, message: &str) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // One message per line, whatever it contains.
    let message = message.replace(['\r', '\n'], " ");
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "{}.{:03} redis-rest-gateway {level}: {message}",
        now.as_secs(),
        now.subsec_millis()
    );
}

pub fn info(message: &str) {
    line("info", message);
}

pub fn error(message: &str) {
    line("error", message);
}
