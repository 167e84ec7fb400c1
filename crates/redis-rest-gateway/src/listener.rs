//! The accept loop: plain HTTP or HTTPS (the TLS handshake in each connection's own task, with
//! the certificate current at that moment), HTTP/1.1 keep-alive, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::log;
use crate::server::{dispatch, Site};
use crate::tls_server::TlsCertificates;

/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest a client may take over the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<TlsCertificates>>,
    site: Site,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let site = site.clone();
                    let service = service_fn(move |request| dispatch(site.clone(), request));
                    match &tls {
                        None => {
                            let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                            tokio::spawn(async move {
                                // A client that hangs up mid-request is not the gateway's error.
                                let _ = connection.await;
                            });
                        }
                        Some(tls) => {
                            let acceptor = tls.acceptor();
                            let watcher = graceful.watcher();
                            let builder = builder.clone();
                            tokio::spawn(async move {
                                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                                let stream = match handshake.await {
                                    Ok(Ok(stream)) => stream,
                                    // Scanners and clients that give up: nothing to answer.
                                    Ok(Err(_)) | Err(_) => return,
                                };
                                let connection = builder.serve_connection(TokioIo::new(stream), service);
                                let _ = watcher.watch(connection).await;
                            });
                        }
                    }
                }
                Err(e) => {
                    log::error(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    log::info("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        log::error("shutdown: some connections were still busy after the grace period");
    }
}
