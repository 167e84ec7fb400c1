//! TLS to Redis (`rediss://`): rustls with the platform's root certificates or a CA file, an
//! optional client certificate (mutual TLS), and SNI with the URL's host or a name given apart.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::RedisTlsOptions;

/// A ready TLS client configuration.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    /// `--redis-tls-server-name`: sent and verified instead of the host connected to.
    server_name: Option<ServerName<'static>>,
}

/// The PEM certificates in `path`, at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The PEM private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()))
}

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsClient {
    pub fn new(options: &RedisTlsOptions) -> Result<TlsClient, String> {
        let mut roots = RootCertStore::empty();
        match &options.ca_file {
            Some(path) => {
                for cert in read_certificates(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A platform store can hold a certificate rustls cannot parse; skip it.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(format!(
                        "no root certificates found on this system ({:?}); install ca-certificates or \
                         pass --redis-ca-file",
                        found.errors.first().map(ToString::to_string).unwrap_or_default()
                    ));
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots);
        let config = match (&options.client_cert, &options.client_key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_certificates(cert)?, read_private_key(key)?)
                .map_err(|e| format!("--redis-client-cert/--redis-client-key: {e}"))?,
            _ => builder.with_no_client_auth(),
        };
        let server_name = options
            .server_name
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.to_string())
                    .map_err(|e| format!("--redis-tls-server-name {name:?}: {e}"))
            })
            .transpose()?;
        Ok(TlsClient { connector: TlsConnector::from(Arc::new(config)), server_name })
    }

    /// The TLS handshake over `tcp`, verifying the certificate for `host` (or the name given apart).
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host.to_string()).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host:?} as a TLS name: {e}"))
            })?,
        };
        self.connector.connect(name, tcp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_errors_for_bad_files() {
        let missing = RedisTlsOptions { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let error = TlsClient::new(&missing).err().unwrap_or_default();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");

        let dir = std::env::temp_dir().join(format!("gw-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let options = RedisTlsOptions { ca_file: Some(not_pem.clone()), ..Default::default() };
        let error = TlsClient::new(&options).err().unwrap_or_default();
        assert!(error.contains("no CERTIFICATE"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
