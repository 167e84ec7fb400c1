//! Structured Field dictionaries (RFC 8941 §3.2), as `CDN-Cache-Control` needs them (RFC 9213):
//! a member is `key`, `key=item` or either with `;parameters`. Values come back as text (an
//! integer's digits, a token, a string's content; a bare key is boolean true and reads as no
//! value); parameters are checked and dropped. Any syntax error makes the whole field invalid,
//! which RFC 9213 says to ignore.

/// The members of a dictionary, in order, or `None` if the text is not one.
pub fn parse_dictionary(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut members = Vec::new();
    let mut rest = text.trim_matches([' ', '\t']);
    if rest.is_empty() {
        return Some(members);
    }
    loop {
        let (key, after) = key(rest)?;
        rest = after;
        // `key=?0` is false: an absent directive, though its parameters must still be valid.
        let (value, present) = match rest.strip_prefix('=') {
            None => (None, true),
            Some(after) => {
                let (item, after) = bare_item(after)?;
                rest = after;
                match item {
                    Item::Boolean(present) => (None, present),
                    Item::Text(text) => (Some(text), true),
                }
            }
        };
        rest = parameters(rest)?;
        if present {
            members.push((key, value));
        }
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Some(members);
        }
        rest = rest.strip_prefix(',')?.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return None; // a trailing comma
        }
    }
}

enum Item {
    Boolean(bool),
    Text(String),
}

fn key(text: &str) -> Option<(String, &str)> {
    let first = text.bytes().next()?;
    if !(first.is_ascii_lowercase() || first == b'*') {
        return None;
    }
    let end = text
        .bytes()
        .position(|b| {
            !(b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*'))
        })
        .unwrap_or(text.len());
    Some((text[..end].to_string(), &text[end..]))
}

fn bare_item(text: &str) -> Option<(Item, &str)> {
    let first = text.bytes().next()?;
    match first {
        b'-' | b'0'..=b'9' => {
            let end = text[1..]
                .bytes()
                .position(|b| !(b.is_ascii_digit() || b == b'.'))
                .map_or(text.len(), |i| i + 1);
            let number = &text[..end];
            let digits = number.trim_start_matches('-');
            let valid = match digits.split_once('.') {
                None => !digits.is_empty() && digits.len() <= 15,
                Some((int, frac)) => {
                    !int.is_empty() && int.len() <= 12 && !frac.is_empty() && frac.len() <= 3
                }
            };
            valid.then(|| (Item::Text(number.to_string()), &text[end..]))
        }
        b'"' => {
            let mut out = String::new();
            let mut chars = text[1..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => return Some((Item::Text(out), &text[i + 2..])),
                    '\\' => match chars.next() {
                        Some((_, escaped @ ('"' | '\\'))) => out.push(escaped),
                        _ => return None,
                    },
                    ' '..='~' => out.push(c),
                    _ => return None,
                }
            }
            None
        }
        b'?' => match text.get(1..2) {
            Some("0") => Some((Item::Boolean(false), &text[2..])),
            Some("1") => Some((Item::Boolean(true), &text[2..])),
            _ => None,
        },
        b':' => {
            let end = text[1..].find(':')? + 1;
            let valid =
                text[1..end].bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            valid.then(|| (Item::Text(text[1..end].to_string()), &text[end + 1..]))
        }
        b if b.is_ascii_alphabetic() || b == b'*' => {
            let end = text
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b":/!#$%&'*+-.^_`|~".contains(&b)))
                .unwrap_or(text.len());
            Some((Item::Text(text[..end].to_string()), &text[end..]))
        }
        _ => None,
    }
}

fn parameters(mut text: &str) -> Option<&str> {
    while let Some(after) = text.strip_prefix(';') {
        let (_, after) = key(after.trim_start_matches(' '))?;
        text = match after.strip_prefix('=') {
            Some(value) => bare_item(value)?.1,
            None => after,
        };
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Option<Vec<(String, Option<String>)>> {
        parse_dictionary(text)
    }

    #[test]
    fn cdn_cache_control_members() {
        let parsed = pairs("max-age=600, stale-while-revalidate=30,no-store").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("max-age".into(), Some("600".into())),
                ("stale-while-revalidate".into(), Some("30".into())),
                ("no-store".into(), None),
            ]
        );
        assert_eq!(pairs("private=?1;x=1").unwrap(), vec![("private".into(), None)]);
        assert_eq!(pairs("no-store=?0").unwrap(), vec![], "false is absent");
        assert_eq!(pairs(r#"a="q\"uote", b=tok/en, c=:aGk=:"#).unwrap().len(), 3);
        assert_eq!(pairs("").unwrap(), vec![]);
    }

    #[test]
    fn invalid_dictionaries_are_refused_whole() {
        for bad in [
            "Max-Age=60",
            "max-age=60,",
            "max-age=",
            "max-age=60 no-store",
            "a=\"open",
            "a=?2",
            "1a=1",
            "a=1.2345",
        ] {
            assert_eq!(pairs(bad), None, "{bad:?}");
        }
    }
}
