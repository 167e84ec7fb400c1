//! Redis's own account of what each command does (`COMMAND`, the same data as `COMMAND INFO`),
//! read once at start-up when read-only tokens are configured. A command is read-only here when
//! Redis flags it neither `write` nor `may_replicate` nor `admin`, and none of its key
//! specifications may change a key (`RW`, `OW`, `RM`, `INSERT`, `UPDATE`, `DELETE`: that is how
//! Redis 7.0 marks `EVAL`, `EVALSHA` and `FCALL`, whose scripts may write). `PUBLISH` and
//! `SPUBLISH` deliver messages, so they count as writing too (Redis 7.2 flags them
//! `may_replicate`; 7.0 does not), and `EVAL`, `EVALSHA` and `FCALL` are named as writing as
//! well, for servers older than 7.0 that have no key specifications (their `_RO` forms remain).

use std::collections::{HashMap, HashSet};

use crate::command::Command;
use crate::resp::Reply;

/// Read-only or not, per command name and per `container|subcommand` (`config|get`).
#[derive(Debug, Clone, Default)]
pub struct CommandFlags {
    read_only: HashMap<String, bool>,
    /// Commands whose meaning depends on their first argument (`CLIENT`, `OBJECT`, …).
    containers: HashSet<String>,
}

/// `COMMAND`'s reply was not the shape Redis documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCommandReply(pub String);

impl std::fmt::Display for BadCommandReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read Redis's COMMAND reply: {}", self.0)
    }
}

fn text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Bulk(b) | Reply::Status(b) => Some(String::from_utf8_lossy(b).to_ascii_lowercase()),
        _ => None,
    }
}

/// True if any key specification (a flat list of name/value pairs) has a flag that changes keys.
fn key_specs_may_change_keys(specs: Option<&Reply>) -> bool {
    let Some(Reply::Array(specs)) = specs else { return false };
    specs.iter().any(|spec| {
        let Reply::Array(pairs) = spec else { return false };
        pairs.chunks(2).any(|pair| match pair {
            [key, Reply::Array(flags)] if text(key).as_deref() == Some("flags") => flags
                .iter()
                .filter_map(text)
                .any(|f| matches!(f.as_str(), "rw" | "ow" | "rm" | "insert" | "update" | "delete")),
            _ => false,
        })
    })
}

impl CommandFlags {
    /// Builds the table from the reply to `COMMAND`.
    pub fn from_reply(reply: &Reply) -> Result<CommandFlags, BadCommandReply> {
        let Reply::Array(entries) = reply else {
            return Err(BadCommandReply(format!("expected an array, got {reply:?}")));
        };
        let mut table = CommandFlags::default();
        for entry in entries {
            table.add(entry, None)?;
        }
        if table.read_only.is_empty() {
            return Err(BadCommandReply("no commands listed".into()));
        }
        Ok(table)
    }

    fn add(&mut self, entry: &Reply, container: Option<&str>) -> Result<(), BadCommandReply> {
        let bad = || BadCommandReply(format!("unexpected entry {entry:?}"));
        let Reply::Array(fields) = entry else { return Err(bad()) };
        let name = fields.first().and_then(text).ok_or_else(bad)?;
        let Some(Reply::Array(flags)) = fields.get(2) else { return Err(bad()) };
        let writes =
            flags.iter().filter_map(text).any(|f| matches!(f.as_str(), "write" | "may_replicate" | "admin"))
                || key_specs_may_change_keys(fields.get(8))
                || matches!(name.as_str(), "publish" | "spublish" | "eval" | "evalsha" | "fcall");
        self.read_only.insert(name.clone(), !writes);
        // Redis 7 lists subcommands tenth; older servers have no such field.
        if container.is_none() {
            if let Some(Reply::Array(subcommands)) = fields.get(9) {
                if !subcommands.is_empty() {
                    self.containers.insert(name.clone());
                }
                for sub in subcommands {
                    self.add(sub, Some(&name))?;
                }
            }
        }
        Ok(())
    }

    /// True if Redis says `command` does not write. Unknown commands and unknown subcommands
    /// are not read-only.
    pub fn is_read_only(&self, command: &Command) -> bool {
        let Some(name) = command.args.first() else { return false };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if self.containers.contains(&name) {
            let Some(sub) = command.args.get(1) else { return false };
            let key = format!("{name}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase());
            return self.read_only.get(&key).copied().unwrap_or(false);
        }
        self.read_only.get(&name).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn status(s: &'static str) -> Reply {
        Reply::Status(Bytes::from_static(s.as_bytes()))
    }

    fn entry(name: &'static str, flags: &[&'static str], subs: Vec<Reply>) -> Reply {
        entry_with_keys(name, flags, &[], subs)
    }

    fn entry_with_keys(
        name: &'static str,
        flags: &[&'static str],
        key_flags: &[&'static str],
        subs: Vec<Reply>,
    ) -> Reply {
        let spec = Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"flags")),
            Reply::Array(key_flags.iter().map(|f| status(f)).collect()),
        ]);
        let mut fields = vec![
            Reply::Bulk(Bytes::from_static(name.as_bytes())),
            Reply::Integer(-1),
            Reply::Array(flags.iter().map(|f| status(f)).collect()),
            Reply::Integer(0),
            Reply::Integer(0),
            Reply::Integer(0),
            Reply::Array(vec![]),
            Reply::Array(vec![]),
            Reply::Array(if key_flags.is_empty() { vec![] } else { vec![spec] }),
        ];
        fields.push(Reply::Array(subs));
        Reply::Array(fields)
    }

    fn cmd(args: &[&'static str]) -> Command {
        Command { args: args.iter().map(|a| Bytes::from_static(a.as_bytes())).collect() }
    }

    #[test]
    fn reads_flags_and_subcommands() {
        let reply = Reply::Array(vec![
            entry("get", &["readonly", "fast"], vec![]),
            entry("set", &["write", "denyoom"], vec![]),
            entry("eval", &["noscript", "may_replicate"], vec![]),
            entry_with_keys("evalsha", &["noscript"], &["RW", "access", "update"], vec![]),
            entry_with_keys("eval_ro", &["readonly", "noscript"], &["RO", "access"], vec![]),
            entry("publish", &["pubsub", "fast"], vec![]),
            // Judged by their key specifications alone.
            entry_with_keys("keywriter", &["fast"], &["OW", "update"], vec![]),
            entry_with_keys("keyreader", &["fast"], &["RO", "access"], vec![]),
            entry(
                "object",
                &[],
                vec![
                    entry("object|encoding", &["readonly"], vec![]),
                    entry("object|freq", &["readonly"], vec![]),
                ],
            ),
            entry("config", &[], vec![entry("config|set", &["admin", "noscript"], vec![])]),
        ]);
        let flags = CommandFlags::from_reply(&reply).unwrap();
        assert!(flags.is_read_only(&cmd(&["GET", "k"])));
        assert!(!flags.is_read_only(&cmd(&["set", "k", "v"])));
        assert!(!flags.is_read_only(&cmd(&["EVAL", "return 1", "0"])));
        assert!(!flags.is_read_only(&cmd(&["EVALSHA", "abc", "0"])));
        assert!(flags.is_read_only(&cmd(&["EVAL_RO", "return 1", "0"])));
        assert!(!flags.is_read_only(&cmd(&["PUBLISH", "c", "m"])));
        assert!(!flags.is_read_only(&cmd(&["KEYWRITER", "k"])));
        assert!(flags.is_read_only(&cmd(&["KEYREADER", "k"])));
        assert!(flags.is_read_only(&cmd(&["OBJECT", "ENCODING", "k"])));
        assert!(!flags.is_read_only(&cmd(&["OBJECT"])));
        assert!(!flags.is_read_only(&cmd(&["OBJECT", "NOSUCH"])));
        assert!(!flags.is_read_only(&cmd(&["CONFIG", "SET", "x", "y"])));
        assert!(!flags.is_read_only(&cmd(&["NOSUCHCOMMAND"])));
        assert!(CommandFlags::from_reply(&Reply::Array(vec![])).is_err());
        assert!(CommandFlags::from_reply(&Reply::Integer(1)).is_err());
    }
}
