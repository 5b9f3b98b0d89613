//! Checks a certificate the way members and clients will, so that a
//! certificate that would be refused is caught when it is made.

use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::ServerCertVerifier;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};

use super::provider;

/// The first certificate of a PEM file's contents.
pub fn cert_from_pem(pem: &[u8]) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem).map_err(|e| format!("no PEM certificate ({e})"))
}

/// Checks that `cert`, issued by `ca`, is accepted as a client certificate
/// and, for each of `server_hosts`, as that host's server certificate.
pub fn verify_issued(
    ca: &CertificateDer<'_>,
    cert: &CertificateDer<'_>,
    server_hosts: &[String],
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned()).map_err(|e| format!("not a usable CA certificate: {e}"))?;
    let roots = std::sync::Arc::new(roots);
    let now = UnixTime::now();
    let as_client =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider()).build().map_err(|e| e.to_string())?;
    as_client.verify_client_cert(cert, &[], now).map_err(|e| format!("refused as a client certificate: {e}"))?;
    if server_hosts.is_empty() {
        return Ok(());
    }
    let as_server =
        WebPkiServerVerifier::builder_with_provider(roots, provider()).build().map_err(|e| e.to_string())?;
    for host in server_hosts {
        let name = ServerName::try_from(host.as_str()).map_err(|e| format!("{host}: {e}"))?;
        as_server
            .verify_server_cert(cert, &[], &name, &[], now)
            .map_err(|e: rustls::Error| format!("refused as the server certificate of {host}: {e}"))?;
    }
    Ok(())
}
