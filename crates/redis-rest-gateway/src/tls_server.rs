//! The HTTPS listener's certificate: loaded at start-up, reloaded from the same files on SIGHUP
//! (a renewed certificate without a restart). A reload that fails keeps the current one.

use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::HttpsFiles;
use crate::metrics::METRICS;
use crate::tls_client::{read_certificates, read_private_key};

pub struct TlsCertificates {
    files: HttpsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

fn load(files: &HttpsFiles) -> Result<Arc<ServerConfig>, String> {
    let chain = read_certificates(&files.cert)?;
    let key = read_private_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!("--tls-cert {} / --tls-key {}: {e}", files.cert.display(), files.key.display())
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl TlsCertificates {
    /// Loads the files; the error is one line.
    pub fn load(files: HttpsFiles) -> Result<TlsCertificates, String> {
        let config = load(&files)?;
        Ok(TlsCertificates { files, current: RwLock::new(config) })
    }

    /// An acceptor with the certificate current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Reads the files again; new connections get the new certificate, open ones keep theirs.
    pub fn reload(&self) -> Result<(), String> {
        match load(&self.files) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
                METRICS.tls_reloads.inc();
                Ok(())
            }
            Err(e) => {
                METRICS.tls_reload_failures.inc();
                Err(e)
            }
        }
    }
}

/// Reloads `certificates` on every SIGHUP, for as long as the process runs.
#[cfg(unix)]
pub fn reload_on_sighup(certificates: Arc<TlsCertificates>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match certificates.reload() {
                Ok(()) => crate::log::info("SIGHUP: reloaded the TLS certificate and key"),
                Err(e) => crate::log::error(&format!("SIGHUP: kept the previous TLS certificate: {e}")),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub fn reload_on_sighup(_certificates: Arc<TlsCertificates>) -> Result<(), String> {
    Ok(())
}
