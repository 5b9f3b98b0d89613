//! HTTPS for the API: rustls with optional client certificates (verified
//! against the cluster CA), HTTP/2 or HTTP/1.1 by ALPN, one task per
//! connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use crate::http::{Api, handle};
use crate::pki::Pki;
use crate::{authn, rbac::UserInfo};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{}: {reason}", path.display())]
    Pem { path: std::path::PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("listening on {address}: {reason}")]
    Listen { address: String, reason: String },
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let pem_error =
        |e: rustls::pki_types::pem::Error| ServeError::Pem { path: path.to_path_buf(), reason: e.to_string() };
    CertificateDer::pem_file_iter(path).map_err(pem_error)?.collect::<Result<Vec<_>, _>>().map_err(pem_error)
}

/// The server's TLS configuration: its certificate, and client
/// certificates accepted (not required) when the cluster CA signed them.
pub fn tls_acceptor(pki: &Pki) -> Result<TlsAcceptor, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&pki.ca_cert())? {
        roots.add(cert).map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let key_path = pki.serving_key();
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| ServeError::Pem { path: key_path.clone(), reason: e.to_string() })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(&pki.serving_cert())?, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub async fn bind(address: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| ServeError::Listen { address: address.to_string(), reason: e.to_string() })
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, api: Arc<Api>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, peer, tls.clone(), api.clone()));
    }
}

async fn connection(tcp: tokio::net::TcpStream, peer: SocketAddr, tls: TlsAcceptor, api: Arc<Api>) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let user: Option<UserInfo> = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| authn::user_from_certificate(cert.as_ref()));
    let service = service_fn(move |request| {
        let api = api.clone();
        let user = user.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(api, request, user).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}
