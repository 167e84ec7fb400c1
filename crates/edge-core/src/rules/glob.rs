//! Glob patterns for rules (docs §3.2): `*` stands for any run of characters, `/` included
//! (Cloudflare's `wildcard` operator); every other character stands for itself. Written here
//! rather than taken from the regex crate, which would cost the wasm far more than this file.

use std::fmt;

/// Longest pattern accepted, so that matching stays cheap whatever the configuration.
pub const MAX_GLOB_CHARS: usize = 256;

/// A parsed glob: the literal pieces between its stars.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    /// Literal pieces, in order; a star sits between consecutive pieces.
    pieces: Vec<String>,
    anchored_start: bool,
    anchored_end: bool,
}

impl Glob {
    /// Parses `text`; runs of stars count as one. Errors say what is wrong, for a rule error.
    pub fn parse(text: &str) -> Result<Glob, String> {
        if text.chars().count() > MAX_GLOB_CHARS {
            return Err(format!("is longer than {MAX_GLOB_CHARS} characters"));
        }
        let pieces: Vec<String> = text.split('*').map(str::to_string).collect();
        Ok(Glob {
            text: text.to_string(),
            anchored_start: !text.starts_with('*'),
            anchored_end: !text.ends_with('*'),
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has a star at all (else it is an exact string).
    pub fn has_wildcard(&self) -> bool {
        self.text.contains('*')
    }

    /// Whether `subject` matches the whole pattern. Greedy-free: each literal piece is found at
    /// its leftmost place after the previous one, which is exact for stars that match any
    /// character, and linear in the subject for each piece.
    pub fn matches(&self, subject: &str) -> bool {
        if !self.has_wildcard() {
            return subject == self.text;
        }
        let mut rest = subject;
        let mut pieces = self.pieces.as_slice();
        if self.anchored_start {
            let Some((first, others)) = pieces.split_first() else { return subject.is_empty() };
            let Some(after) = rest.strip_prefix(first.as_str()) else { return false };
            rest = after;
            pieces = others;
        }
        let last = if self.anchored_end {
            match pieces.split_last() {
                Some((last, others)) => {
                    pieces = others;
                    Some(last)
                }
                None => None,
            }
        } else {
            None
        };
        for piece in pieces {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        match last {
            Some(last) => rest.len() >= last.len() && rest.ends_with(last.as_str()),
            None => true,
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let table: &[(&str, &str, bool)] = &[
            ("/a", "/a", true),
            ("/a", "/ab", false),
            ("/api/*", "/api/", true),
            ("/api/*", "/api/x/y", true),
            ("/api/*", "/api", false),
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("/*.css", "/a/b/site.css", true),
            ("/*.css", "/a/b/site.css.map", false),
            ("/img/*/thumb/*", "/img/a/b/thumb/c.png", true),
            ("/img/*/thumb/*", "/img/thumb/c.png", false),
            ("/a*b*c", "/abc", true),
            ("/a*b*c", "/aXbYc", true),
            ("/a*b*c", "/aXcYb", false),
            ("/a**b", "/ab", true),
            ("*b", "bb", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("wordpress_logged_in_*", "wordpress_logged_in_abc123", true),
            ("wordpress_logged_in_*", "wordpress_logged_out", false),
            ("utm_*", "utm_source", true),
            ("utm_*", "xutm_source", false),
        ];
        for &(pattern, subject, expected) in table {
            assert_eq!(Glob::parse(pattern).unwrap().matches(subject), expected, "{pattern} ~ {subject}");
        }
    }

    #[test]
    fn long_patterns_are_refused() {
        assert!(Glob::parse(&"a".repeat(MAX_GLOB_CHARS)).is_ok());
        assert!(Glob::parse(&"a".repeat(MAX_GLOB_CHARS + 1)).is_err());
    }
}
