//! Reading the configured PEM files into rustls configurations, once, at
//! start: a member with a bad TLS setup refuses to start rather than refuse
//! every connection later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::accept::Acceptor;
use super::{CLIENT_FLAGS, Flags, PEER_FLAGS, provider};
use crate::server::bootstrap;
use crate::server::config::{Config, TlsFiles};

/// Client URLs serve gRPC (HTTP/2) and the HTTP/1 endpoints (/health, …).
const CLIENT_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// tonic's peer client insists on HTTP/2 being negotiated.
const PEER_ALPN: &[&[u8]] = &[b"h2"];
/// Bounds a handshake with a peer that accepted the TCP connection.
const DIAL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {}: cannot read it: {reason}", path.display())]
    Read { flag: &'static str, path: PathBuf, reason: String },
    #[error("{flag} {}: {reason}", path.display())]
    Invalid { flag: &'static str, path: PathBuf, reason: String },
    #[error("{key_flag} {} does not belong to {cert_flag} {}", key.display(), cert.display())]
    Mismatch { cert_flag: &'static str, cert: PathBuf, key_flag: &'static str, key: PathBuf },
    #[error("{url_flag} has {url}, which needs {missing}")]
    Missing { url_flag: &'static str, url: String, missing: String },
    #[error("{flag} needs {needs}")]
    Needs { flag: &'static str, needs: &'static str },
    #[error("TLS setup for {traffic} traffic: {reason}")]
    Setup { traffic: &'static str, reason: String },
}

/// What a member needs for TLS, built from `Config::client_tls` and
/// `Config::peer_tls`.
pub struct MemberTls {
    /// Terminates TLS on `https://` client URLs.
    pub client: Option<Arc<Acceptor>>,
    /// Terminates TLS on `https://` peer URLs.
    pub peer: Option<Arc<Acceptor>>,
    /// Dials `https://` peer URLs: verifies the member against
    /// `--peer-trusted-ca-file` and presents `--peer-cert-file`.
    pub peer_dial: Option<ClientTlsConfig>,
}

impl MemberTls {
    pub fn load(cfg: &Config) -> Result<MemberTls, TlsError> {
        let client = Loaded::read(&cfg.client_tls, &CLIENT_FLAGS)?;
        let peer = Loaded::read(&cfg.peer_tls, &PEER_FLAGS)?;

        let client_https = first_https(&[
            ("--listen-client-urls", &cfg.listen_client_urls),
            ("--advertise-client-urls", &cfg.advertise_client_urls),
        ]);
        let client_acceptor = match client_https {
            Some((url_flag, url)) => Some(client.acceptor(url_flag, url, CLIENT_ALPN)?),
            None => None,
        };
        let peer_https = first_https(&[
            ("--listen-peer-urls", &cfg.listen_peer_urls),
            ("--initial-advertise-peer-urls", &cfg.initial_advertise_peer_urls),
        ]);
        let peer_acceptor = match peer_https {
            Some((url_flag, url)) => Some(peer.acceptor(url_flag, url, PEER_ALPN)?),
            None => None,
        };
        // A malformed --initial-cluster is reported by bootstrap.
        let cluster_urls: Vec<String> = bootstrap::parse_initial_cluster(&cfg.initial_cluster)
            .map(|members| members.into_values().flatten().collect())
            .unwrap_or_default();
        let dials_https = peer_https.or_else(|| first_https(&[("--initial-cluster", &cluster_urls)]));
        let peer_dial = peer.dialer(dials_https)?;

        if client_https.is_none() {
            client.warn_if_unused();
        }
        if dials_https.is_none() {
            peer.warn_if_unused();
        }
        Ok(MemberTls { client: client_acceptor, peer: peer_acceptor, peer_dial })
    }
}

/// The first `https://` URL among the flags' values, with its flag.
fn first_https<'a>(lists: &[(&'static str, &'a Vec<String>)]) -> Option<(&'static str, &'a str)> {
    lists.iter().find_map(|(flag, urls)| urls.iter().find(|u| u.starts_with("https://")).map(|u| (*flag, u.as_str())))
}

/// A certificate and its key, in both forms (rustls takes DER, tonic PEM).
struct Pair {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

struct Trusted {
    roots: Arc<RootCertStore>,
    pem: Vec<u8>,
}

/// The files of one kind of traffic, read and checked.
struct Loaded {
    flags: &'static Flags,
    pair: Option<Pair>,
    trusted: Option<Trusted>,
}

impl Loaded {
    fn read(files: &TlsFiles, flags: &'static Flags) -> Result<Loaded, TlsError> {
        if files.client_cert_auth && files.trusted_ca_file.is_none() {
            return Err(TlsError::Needs { flag: flags.client_cert_auth, needs: flags.trusted_ca });
        }
        let pair = match (&files.cert_file, &files.key_file) {
            (Some(cert), Some(key)) => Some(read_pair(cert, key, flags)?),
            (None, None) => None,
            (Some(_), None) => return Err(TlsError::Needs { flag: flags.cert, needs: flags.key }),
            (None, Some(_)) => return Err(TlsError::Needs { flag: flags.key, needs: flags.cert }),
        };
        let trusted = match &files.trusted_ca_file {
            Some(path) => Some(read_trusted(path, flags.trusted_ca)?),
            None => None,
        };
        Ok(Loaded { flags, pair, trusted })
    }

    /// A TLS server for `https://` URLs; client certificates are required
    /// when a trusted CA is set (etcd's meaning of `--trusted-ca-file`).
    fn acceptor(&self, url_flag: &'static str, url: &str, alpn: &[&[u8]]) -> Result<Arc<Acceptor>, TlsError> {
        let flags = self.flags;
        let Some(pair) = &self.pair else {
            let missing = format!("{} and {}", flags.cert, flags.key);
            return Err(TlsError::Missing { url_flag, url: url.to_string(), missing });
        };
        let setup = |e: &dyn std::fmt::Display| TlsError::Setup { traffic: flags.traffic, reason: e.to_string() };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(&e))?;
        let builder = match &self.trusted {
            Some(trusted) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(trusted.roots.clone(), provider())
                    .build()
                    .map_err(|e| setup(&e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(pair.certs.clone(), pair.key.clone_key()).map_err(|e| setup(&e))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(Acceptor::new(TlsAcceptor::from(Arc::new(config)), flags, self.trusted.is_some())))
    }

    /// The TLS settings for dialing other members, if there is a CA to
    /// verify them with; `https` is a peer URL that makes one necessary.
    fn dialer(&self, https: Option<(&'static str, &str)>) -> Result<Option<ClientTlsConfig>, TlsError> {
        let Some(trusted) = &self.trusted else {
            return match https {
                Some((url_flag, url)) => Err(TlsError::Missing {
                    url_flag,
                    url: url.to_string(),
                    missing: format!("{} to verify the other members", self.flags.trusted_ca),
                }),
                None => Ok(None),
            };
        };
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&trusted.pem)).timeout(DIAL_HANDSHAKE_TIMEOUT);
        if let Some(pair) = &self.pair {
            config = config.identity(Identity::from_pem(&pair.cert_pem, &pair.key_pem));
        }
        Ok(Some(config))
    }

    fn warn_if_unused(&self) {
        let f = self.flags;
        let mut set = Vec::new();
        if self.pair.is_some() {
            set.extend([f.cert, f.key]);
        }
        if self.trusted.is_some() {
            set.push(f.trusted_ca);
        }
        if !set.is_empty() {
            let (set, traffic) = (set.join(", "), f.traffic);
            tracing::warn!("{set} given, but no {traffic} URL is https://: {traffic} traffic is plain");
        }
    }
}

fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read { flag, path: path.to_path_buf(), reason: e.to_string() })
}

fn read_certs(flag: &'static str, path: &Path) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), TlsError> {
    let pem = read_file(flag, path)?;
    let invalid = |reason: String| TlsError::Invalid { flag, path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in it".into()));
    }
    Ok((certs, pem))
}

fn read_pair(cert_path: &Path, key_path: &Path, flags: &Flags) -> Result<Pair, TlsError> {
    let (certs, cert_pem) = read_certs(flags.cert, cert_path)?;
    let key_pem = read_file(flags.key, key_path)?;
    let invalid_key = |reason: String| TlsError::Invalid { flag: flags.key, path: key_path.to_path_buf(), reason };
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid_key("no PEM private key in it".into()),
        e => invalid_key(format!("not a PEM private key file ({e})")),
    })?;
    // Loads the key and checks that it is the certificate's.
    CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert_flag: flags.cert,
            cert: cert_path.to_path_buf(),
            key_flag: flags.key,
            key: key_path.to_path_buf(),
        },
        rustls::Error::InvalidCertificate(e) => TlsError::Invalid {
            flag: flags.cert,
            path: cert_path.to_path_buf(),
            reason: format!("bad certificate: {e}"),
        },
        e => invalid_key(e.to_string()),
    })?;
    Ok(Pair { certs, key, cert_pem, key_pem })
}

fn read_trusted(path: &Path, flag: &'static str) -> Result<Trusted, TlsError> {
    let (certs, pem) = read_certs(flag, path)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            flag,
            path: path.to_path_buf(),
            reason: format!("not a usable CA certificate ({e})"),
        })?;
    }
    Ok(Trusted { roots: Arc::new(roots), pem })
}
