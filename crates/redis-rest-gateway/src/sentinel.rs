//! Asking Redis Sentinels where the primary is (`SENTINEL get-master-addr-by-name`).

use std::time::Duration;

use bytes::Bytes;

use crate::redis_conn::{Connection, Handshake, RedisError};
use crate::redis_target::RedisAddress;
use crate::resp::Reply;
use crate::tls_client::TlsClient;
use crate::transport;

/// Longest wait for one Sentinel's answer before asking the next.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach the Sentinels.
pub struct Sentinels<'a> {
    pub addresses: &'a [(String, u16)],
    pub master: &'a str,
    pub password: Option<&'a str>,
    pub tls: Option<&'a TlsClient>,
}

impl Sentinels<'_> {
    /// The primary's address from the first Sentinel that knows it. The error names why each
    /// Sentinel could not tell.
    pub async fn primary(&self) -> Result<RedisAddress, RedisError> {
        let mut why = Vec::new();
        for (host, port) in self.addresses {
            match tokio::time::timeout(ASK_TIMEOUT, self.ask(host, *port)).await {
                Ok(Ok(address)) => return Ok(address),
                Ok(Err(e)) => why.push(format!("sentinel {host}:{port}: {e}")),
                Err(_) => why.push(format!("sentinel {host}:{port}: no answer in time")),
            }
        }
        Err(RedisError::Unavailable(format!(
            "no Sentinel named the primary of {:?} ({})",
            self.master,
            why.join("; ")
        )))
    }

    async fn ask(&self, host: &str, port: u16) -> Result<RedisAddress, RedisError> {
        let address = RedisAddress::Tcp { host: host.to_string(), port };
        let io = transport::connect(&address, self.tls).await?;
        let handshake = Handshake { password: self.password.map(str::to_string), ..Handshake::default() };
        let connection = Connection::open(io, &handshake).await?;
        let question = vec![
            Bytes::from_static(b"SENTINEL"),
            Bytes::from_static(b"get-master-addr-by-name"),
            Bytes::from(self.master.to_string()),
        ];
        let replies = connection.execute(&[question]).await?;
        primary_from_reply(replies.first())
    }
}

fn primary_from_reply(reply: Option<&Reply>) -> Result<RedisAddress, RedisError> {
    match reply {
        Some(Reply::Array(fields)) => match (fields.first(), fields.get(1)) {
            (Some(Reply::Bulk(host)), Some(Reply::Bulk(port))) => {
                let host = String::from_utf8_lossy(host).into_owned();
                let port = std::str::from_utf8(port)
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| RedisError::Protocol(format!("Sentinel gave a bad port {port:?}")))?;
                Ok(RedisAddress::Tcp { host, port })
            }
            _ => Err(RedisError::Protocol(format!("unexpected Sentinel reply {fields:?}"))),
        },
        Some(Reply::Nil) => Err(RedisError::Unavailable("it does not monitor that name".into())),
        Some(Reply::Error(text)) => Err(RedisError::Unavailable(String::from_utf8_lossy(text).into_owned())),
        other => Err(RedisError::Protocol(format!("unexpected Sentinel reply {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address() {
        let reply = Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"10.0.0.5")),
            Reply::Bulk(Bytes::from_static(b"6380")),
        ]);
        assert_eq!(
            primary_from_reply(Some(&reply)),
            Ok(RedisAddress::Tcp { host: "10.0.0.5".into(), port: 6380 })
        );
        assert!(matches!(primary_from_reply(Some(&Reply::Nil)), Err(RedisError::Unavailable(_))));
        let bad =
            Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"h")), Reply::Bulk(Bytes::from_static(b"x"))]);
        assert!(matches!(primary_from_reply(Some(&bad)), Err(RedisError::Protocol(_))));
        assert!(primary_from_reply(None).is_err());
    }
}
