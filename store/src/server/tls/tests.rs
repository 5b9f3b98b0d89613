use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{Acceptor, MemberTls, incoming, provider};
use crate::server::config::{Config, TlsFiles};

struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn new_ca(name: &str) -> TestCa {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("CA");
    TestCa { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// A certificate for 127.0.0.1 usable by servers and clients: (cert, key) PEM.
fn leaf(ca: &TestCa) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca.issuer).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// ca.crt, m.crt and m.key of a fresh CA.
    fn member(&self, ca: &TestCa) -> TlsFiles {
        let (cert, key) = leaf(ca);
        TlsFiles {
            cert_file: Some(self.write("m.crt", &cert)),
            key_file: Some(self.write("m.key", &key)),
            trusted_ca_file: Some(self.write("ca.crt", &ca.pem)),
            client_cert_auth: true,
        }
    }
}

fn https_client(tls: TlsFiles) -> Config {
    Config {
        listen_client_urls: vec!["https://127.0.0.1:2379".into()],
        advertise_client_urls: vec!["https://127.0.0.1:2379".into()],
        client_tls: tls,
        ..Config::default()
    }
}

fn load_err(cfg: &Config) -> String {
    match MemberTls::load(cfg) {
        Ok(_) => panic!("loaded a bad TLS setup"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn plain_http_needs_nothing() {
    let tls = MemberTls::load(&Config::default()).expect("loads");
    assert!(tls.client.is_none() && tls.peer.is_none() && tls.peer_dial.is_none());
}

#[test]
fn https_urls_need_certificates() {
    assert_eq!(
        load_err(&https_client(TlsFiles::default())),
        "--listen-client-urls has https://127.0.0.1:2379, which needs --cert-file and --key-file"
    );
    let cfg =
        Config { initial_cluster: "a=https://127.0.0.1:2380,b=https://127.0.0.1:2381".into(), ..Config::default() };
    assert_eq!(
        load_err(&cfg),
        "--initial-cluster has https://127.0.0.1:2380, which needs --peer-trusted-ca-file to verify the other members"
    );
}

#[test]
fn client_cert_auth_needs_a_ca() {
    let files = Files::new();
    let mut tls = files.member(&new_ca("ca"));
    tls.trusted_ca_file = None;
    assert_eq!(load_err(&https_client(tls.clone())), "--client-cert-auth needs --trusted-ca-file");
    let cfg = Config { peer_tls: tls, ..Config::default() };
    assert_eq!(load_err(&cfg), "--peer-client-cert-auth needs --peer-trusted-ca-file");
}

#[test]
fn bad_files_are_named() {
    let files = Files::new();
    let good = files.member(&new_ca("ca"));
    let show = |p: &Path| p.display().to_string();

    let missing = files.dir.path().join("missing.crt");
    let err = load_err(&https_client(TlsFiles { cert_file: Some(missing.clone()), ..good.clone() }));
    assert!(err.starts_with(&format!("--cert-file {}: cannot read it: ", show(&missing))), "{err}");

    let garbage = files.write("garbage.pem", "hello\n");
    let err = load_err(&https_client(TlsFiles { cert_file: Some(garbage.clone()), ..good.clone() }));
    assert_eq!(err, format!("--cert-file {}: no PEM certificate in it", show(&garbage)));
    let err = load_err(&https_client(TlsFiles { key_file: Some(garbage.clone()), ..good.clone() }));
    assert_eq!(err, format!("--key-file {}: no PEM private key in it", show(&garbage)));
    let err = load_err(&https_client(TlsFiles { trusted_ca_file: Some(garbage.clone()), ..good.clone() }));
    assert_eq!(err, format!("--trusted-ca-file {}: no PEM certificate in it", show(&garbage)));

    let (_, other_key) = leaf(&new_ca("other"));
    let other_key = files.write("other.key", &other_key);
    let err = load_err(&https_client(TlsFiles { key_file: Some(other_key.clone()), ..good.clone() }));
    let cert = good.cert_file.as_deref().map(show).unwrap_or_default();
    assert_eq!(err, format!("--key-file {} does not belong to --cert-file {cert}", show(&other_key)));

    let err = load_err(&https_client(TlsFiles { key_file: None, ..good }));
    assert_eq!(err, "--cert-file needs --key-file");
}

/// A TLS client of `ca`, presenting `identity` if given.
fn connector(ca: &TestCa, identity: Option<(String, String)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("ca")).expect("root");
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// Serves `acceptor` on a fresh port; returns the address and the stream of
/// finished handshakes.
async fn serve(
    acceptor: Arc<Acceptor>,
    shutdown: &CancellationToken,
) -> (std::net::SocketAddr, ReceiverStream<std::io::Result<TlsStream<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (streams, accepting) = incoming(listener, acceptor, shutdown.clone());
    tokio::spawn(accepting);
    (addr, streams)
}

/// Exchanges one byte over TLS, as the server reads only after it finished
/// its side of the handshake (TLS 1.3 reports a refused client certificate
/// on the first read).
async fn talk(connector: &TlsConnector, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"x").await?;
    tls.flush().await?;
    let mut buf = [0u8; 1];
    tls.read_exact(&mut buf).await.map(|_| ())
}

#[tokio::test]
async fn silent_client_does_not_hold_up_others() {
    let files = Files::new();
    let ca = new_ca("ca");
    let tls = MemberTls::load(&https_client(files.member(&ca))).expect("loads");
    let shutdown = CancellationToken::new();
    let (addr, mut streams) = serve(tls.client.expect("client TLS"), &shutdown).await;

    // Connects and never says a word.
    let _silent = TcpStream::connect(addr).await.expect("connect");
    let client = connector(&ca, Some(leaf(&ca)));
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let handshake = async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        client.connect(name, tcp).await.expect("handshake")
    };
    let (_client_side, served) =
        tokio::time::timeout(Duration::from_secs(3), async { tokio::join!(handshake, streams.next()) })
            .await
            .expect("the second client's handshake finished while the first is silent");
    assert!(matches!(served, Some(Ok(_))));
    shutdown.cancel();
}

#[tokio::test]
async fn client_certificates_are_checked() {
    let files = Files::new();
    let ca = new_ca("ca");
    let tls = MemberTls::load(&https_client(files.member(&ca))).expect("loads");
    let shutdown = CancellationToken::new();
    let (addr, mut streams) = serve(tls.client.expect("client TLS"), &shutdown).await;

    let no_cert = talk(&connector(&ca, None), addr).await.expect_err("no client certificate");
    assert!(no_cert.to_string().contains("CertificateRequired"), "{no_cert}");
    let other = talk(&connector(&ca, Some(leaf(&new_ca("other")))), addr).await.expect_err("another CA");
    assert!(other.to_string().contains("UnknownCA"), "{other}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), streams.next()).await.is_err(),
        "a refused connection reached the server"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn plain_http_gets_an_answer_it_can_read() {
    let files = Files::new();
    let tls = MemberTls::load(&https_client(files.member(&new_ca("ca")))).expect("loads");
    let shutdown = CancellationToken::new();
    let (addr, _streams) = serve(tls.client.expect("client TLS"), &shutdown).await;

    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(reply.contains("Client sent an HTTP request to an HTTPS server."), "{reply}");
    shutdown.cancel();
}
