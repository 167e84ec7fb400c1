//! Which commands a request may run, decided before anything reaches Redis:
//!
//! 1. commands that cannot work over stateless HTTP on a shared connection (blocking, pub/sub,
//!    connection state) are never forwarded;
//! 2. server administration (`SHUTDOWN`, `CONFIG`, `REPLICAOF`, …) is refused unless the gateway
//!    runs with `--allow-admin-commands`, as Upstash's REST API refuses it; `FLUSHALL`, `FLUSHDB`
//!    and `SCRIPT FLUSH` stay available, as on Upstash;
//! 3. a read-only token may run only what Redis itself flags as not writing ([`CommandFlags`]).

use crate::auth::Access;
use crate::command::Command;
use crate::command_flags::CommandFlags;

/// Why a command is not forwarded; the text is the error the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Cannot work over this gateway at all (400).
    Unsupported(String),
    /// Not allowed for this gateway or this token (403).
    Forbidden(String),
}

impl Refusal {
    pub fn text(&self) -> &str {
        match self {
            Refusal::Unsupported(t) | Refusal::Forbidden(t) => t,
        }
    }
}

/// The gateway-wide rules.
pub struct Policy {
    pub allow_admin_commands: bool,
    /// Redis's own command flags; present when read-only tokens are configured.
    pub flags: Option<CommandFlags>,
}

/// The command name (or an argument) in upper case, without allocating; names longer than the
/// buffer come back empty, which matches no rule (every rule's name is shorter).
fn upper<'a>(arg: Option<&[u8]>, buf: &'a mut [u8; 24]) -> &'a [u8] {
    match arg {
        Some(a) if a.len() <= buf.len() => {
            let out = &mut buf[..a.len()];
            out.copy_from_slice(a);
            out.make_ascii_uppercase();
            out
        }
        _ => &[],
    }
}

impl Policy {
    /// Why `command` may not run with `access`, or `None` if it may.
    pub fn refusal(&self, command: &Command, access: Access) -> Option<Refusal> {
        let (mut name_buf, mut sub_buf) = ([0u8; 24], [0u8; 24]);
        let name = upper(command.args.first().map(|a| a.as_ref()), &mut name_buf);
        let sub = upper(command.args.get(1).map(|a| a.as_ref()), &mut sub_buf);
        if let Some(reason) = unsupported(command, name, sub) {
            return Some(Refusal::Unsupported(format!(
                "ERR command '{}' is not supported by the REST gateway: {reason}",
                command.name().to_ascii_lowercase()
            )));
        }
        if !self.allow_admin_commands && is_admin(name, sub) {
            let what = match name {
                b"CLIENT" | b"MEMORY" | b"SLOWLOG" => {
                    format!("{} {}", command.name(), String::from_utf8_lossy(sub)).to_ascii_lowercase()
                }
                _ => command.name().to_ascii_lowercase(),
            };
            return Some(Refusal::Forbidden(format!(
                "ERR command '{what}' is not allowed through the REST gateway: server administration is \
                 disabled (start the gateway with --allow-admin-commands to allow it)"
            )));
        }
        if access == Access::ReadOnly {
            let allowed = match &self.flags {
                Some(flags) => flags.is_read_only(command),
                None => false,
            };
            if !allowed {
                return Some(Refusal::Forbidden(format!(
                    "NOPERM this token is read-only: Redis flags '{}' as writing (or does not know it)",
                    command.name().to_ascii_lowercase()
                )));
            }
        }
        None
    }
}

/// Server administration: refused unless `--allow-admin-commands`.
fn is_admin(name: &[u8], sub: &[u8]) -> bool {
    match name {
        b"SHUTDOWN" | b"CONFIG" | b"DEBUG" | b"REPLICAOF" | b"SLAVEOF" | b"SAVE" | b"BGSAVE"
        | b"BGREWRITEAOF" | b"MODULE" | b"ACL" | b"FAILOVER" | b"CLUSTER" | b"SWAPDB" | b"MIGRATE"
        | b"LATENCY" => true,
        b"CLIENT" => matches!(sub, b"KILL" | b"PAUSE"),
        b"MEMORY" => sub == b"PURGE",
        b"SLOWLOG" => sub == b"RESET",
        _ => false,
    }
}

/// Why a command cannot work over a shared connection and stateless requests.
fn unsupported(command: &Command, name: &[u8], sub: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"BLPOP" | b"BRPOP" | b"BRPOPLPUSH" | b"BLMOVE" | b"BLMPOP" | b"BZPOPMIN" | b"BZPOPMAX"
        | b"BZMPOP" | b"WAIT" | b"WAITAOF" => {
            "blocking commands are not supported over HTTP; use the non-blocking form and poll"
        }
        b"XREAD" | b"XREADGROUP" if has_block_option(command) => {
            "blocking commands are not supported over HTTP; drop the BLOCK option and poll"
        }
        b"SUBSCRIBE" | b"PSUBSCRIBE" | b"SSUBSCRIBE" | b"UNSUBSCRIBE" | b"PUNSUBSCRIBE" | b"SUNSUBSCRIBE"
        | b"MONITOR" => "needs a long-lived connection, which this gateway does not offer",
        b"MULTI" | b"EXEC" | b"DISCARD" | b"WATCH" | b"UNWATCH" => {
            "transactions go through POST /multi-exec with the whole command list"
        }
        b"SELECT" => "each request is stateless; choose the database in the gateway's --redis URL",
        b"AUTH" | b"HELLO" | b"RESET" | b"QUIT" | b"READONLY" | b"READWRITE" | b"ASKING" => {
            "changes the state of the gateway's shared connection"
        }
        b"SYNC" | b"PSYNC" | b"REPLCONF" => "replication commands are not supported over HTTP",
        b"CLIENT" => match sub {
            b"REPLY" | b"TRACKING" | b"CACHING" | b"SETNAME" | b"SETINFO" | b"NO-EVICT" | b"NO-TOUCH" => {
                "changes the state of the gateway's shared connection"
            }
            _ => return None,
        },
        _ => return None,
    })
}

/// XREAD/XREADGROUP options come before `STREAMS`; after it, words are keys and IDs.
/// The values of `GROUP group consumer` and `COUNT n` are skipped, so a group named
/// "BLOCK" is not mistaken for the option.
fn has_block_option(command: &Command) -> bool {
    let mut args = command.args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg.eq_ignore_ascii_case(b"STREAMS") {
            return false;
        }
        if arg.eq_ignore_ascii_case(b"BLOCK") {
            return true;
        }
        let values_to_skip = if arg.eq_ignore_ascii_case(b"GROUP") {
            2
        } else if arg.eq_ignore_ascii_case(b"COUNT") {
            1
        } else {
            0
        };
        for _ in 0..values_to_skip {
            args.next();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_single;

    fn refusal(body: &str, allow_admin: bool) -> Option<Refusal> {
        let policy = Policy { allow_admin_commands: allow_admin, flags: None };
        policy.refusal(&parse_single(&bytes::Bytes::copy_from_slice(body.as_bytes())).unwrap(), Access::Full)
    }

    #[test]
    fn refuses_connection_wedging_commands() {
        for body in [
            r#"["BLPOP","q",0]"#,
            r#"["subscribe","c"]"#,
            r#"["SELECT",1]"#,
            r#"["MULTI"]"#,
            r#"["exec"]"#,
            r#"["WATCH","k"]"#,
            r#"["MONITOR"]"#,
            r#"["XREAD","BLOCK",0,"STREAMS","s","$"]"#,
            r#"["XREADGROUP","GROUP","g","c","BLOCK",0,"STREAMS","s",">"]"#,
            r#"["CLIENT","REPLY","OFF"]"#,
        ] {
            assert!(matches!(refusal(body, true), Some(Refusal::Unsupported(_))), "{body} should be refused");
        }
        for body in [
            r#"["GET","k"]"#,
            r#"["XREAD","STREAMS","BLOCK","0"]"#,
            r#"["XREADGROUP","GROUP","BLOCK","c","COUNT",1,"STREAMS","s",">"]"#,
            r#"["CLIENT","ID"]"#,
        ] {
            assert_eq!(refusal(body, false), None, "{body} should run");
        }
    }

    #[test]
    fn refuses_administration_unless_allowed() {
        for body in [
            r#"["SHUTDOWN","NOSAVE"]"#,
            r#"["config","set","maxmemory","1"]"#,
            r#"["CONFIG","GET","*"]"#,
            r#"["DEBUG","SLEEP",0]"#,
            r#"["REPLICAOF","127.0.0.1",1]"#,
            r#"["slaveof","no","one"]"#,
            r#"["SAVE"]"#,
            r#"["BGSAVE"]"#,
            r#"["BGREWRITEAOF"]"#,
            r#"["MODULE","LIST"]"#,
            r#"["ACL","SETUSER","x"]"#,
            r#"["FAILOVER"]"#,
            r#"["CLUSTER","INFO"]"#,
            r#"["client","kill","ID",1]"#,
            r#"["CLIENT","PAUSE",100]"#,
            r#"["SWAPDB",0,1]"#,
            r#"["MIGRATE","h",1,"k",0,1]"#,
            r#"["LATENCY","RESET"]"#,
            r#"["MEMORY","PURGE"]"#,
            r#"["SLOWLOG","reset"]"#,
        ] {
            let refused = refusal(body, false);
            assert!(
                matches!(&refused, Some(Refusal::Forbidden(t)) if t.contains("--allow-admin-commands")),
                "{body}: {refused:?}"
            );
            assert_eq!(refusal(body, true), None, "{body} with --allow-admin-commands");
        }
        for body in [
            r#"["FLUSHALL"]"#,
            r#"["FLUSHDB","ASYNC"]"#,
            r#"["SCRIPT","FLUSH"]"#,
            r#"["MEMORY","USAGE","k"]"#,
            r#"["SLOWLOG","GET"]"#,
            r#"["CLIENT","LIST"]"#,
        ] {
            assert_eq!(refusal(body, false), None, "{body} stays available");
        }
        let text = refusal(r#"["client","kill","ID",1]"#, false).unwrap();
        assert!(text.text().contains("'client kill'"), "{text:?}");
    }

    #[test]
    fn read_only_tokens_need_the_flags() {
        let policy = Policy { allow_admin_commands: false, flags: None };
        let get = parse_single(&bytes::Bytes::from_static(br#"["GET","k"]"#)).unwrap();
        assert_eq!(policy.refusal(&get, Access::Full), None);
        // Without Redis's flags nothing can be proven read-only.
        assert!(matches!(policy.refusal(&get, Access::ReadOnly), Some(Refusal::Forbidden(_))));
    }
}
