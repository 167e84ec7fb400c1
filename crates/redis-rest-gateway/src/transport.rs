//! Opening a byte stream to a Redis address: TCP, TCP with TLS, or a unix socket.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::redis_conn::RedisError;
use crate::redis_target::RedisAddress;
use crate::tls_client::TlsClient;

/// The two halves of a connection, for the reader and writer tasks.
pub type Io = (Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>);

/// Connects to `address`, with TLS if `tls` is given.
pub async fn connect(address: &RedisAddress, tls: Option<&TlsClient>) -> Result<Io, RedisError> {
    let unavailable = |e: std::io::Error| RedisError::Unavailable(format!("{address}: {e}"));
    match address {
        RedisAddress::Tcp { host, port } => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await.map_err(unavailable)?;
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let (r, w) = stream.into_split();
                    Ok((Box::new(r), Box::new(w)))
                }
                Some(tls) => {
                    let stream = tls.connect(host, stream).await.map_err(|e| {
                        RedisError::Unavailable(format!("{address}: TLS handshake failed: {e}"))
                    })?;
                    let (r, w) = tokio::io::split(stream);
                    Ok((Box::new(r), Box::new(w)))
                }
            }
        }
        RedisAddress::Unix(path) => open_unix(path).await.map_err(unavailable),
    }
}

#[cfg(unix)]
async fn open_unix(path: &str) -> std::io::Result<Io> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    let (r, w) = stream.into_split();
    Ok((Box::new(r), Box::new(w)))
}

#[cfg(not(unix))]
async fn open_unix(_path: &str) -> std::io::Result<Io> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "unix sockets are not supported here"))
}
