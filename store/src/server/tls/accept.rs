//! Terminating TLS on a listener.
//!
//! The accept loop never waits on a handshake: each connection gets its own
//! task with a deadline, and only finished TLS streams reach the server,
//! through a channel that is the server's incoming stream. A slow or silent
//! client therefore costs one task, not everyone's connection. A refused
//! handshake is logged once, at warn, with the peer address and the reason.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, CertificateError};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::Flags;

/// How long a client has, from its TCP connect, to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused client gets to read why and hang up.
const LINGER: Duration = Duration::from_secs(1);
/// Finished handshakes waiting for the server to take them.
const READY_BACKLOG: usize = 64;
/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// What an HTTP/1 client that forgot the `s` in `https://` reads back.
const PLAIN_HTTP_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n\
Client sent an HTTP request to an HTTPS server.\n";

/// A TLS server configuration and what to call its refusals.
pub struct Acceptor {
    tls: TlsAcceptor,
    flags: &'static Flags,
    /// Whether client certificates are required (for refusal messages).
    requires_client_cert: bool,
}

impl Acceptor {
    pub(super) fn new(tls: TlsAcceptor, flags: &'static Flags, requires_client_cert: bool) -> Acceptor {
        Acceptor { tls, flags, requires_client_cert }
    }

    /// Peeks at the first bytes, then runs the handshake.
    async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Refusal> {
        let mut first = [0u8; 16];
        let n = tcp.peek(&mut first).await.map_err(|e| Refusal::Failed(e.to_string()))?;
        match first[..n].first() {
            None => return Err(Refusal::Closed),
            Some(&TLS_HANDSHAKE_RECORD) => {}
            Some(_) => return Err(refuse_plaintext(tcp, &first[..n]).await),
        }
        match self.tls.accept(tcp).into_fallible().await {
            Ok(stream) => Ok(stream),
            Err((e, tcp)) => {
                close_gently(tcp).await;
                Err(Refusal::Failed(self.explain(&e)))
            }
        }
    }

    /// A handshake error in terms of this member's flags.
    fn explain(&self, e: &io::Error) -> String {
        let ca = self.flags.trusted_ca;
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::NoCertificatesPresented) if self.requires_client_cert => {
                format!("no client certificate (one signed by {ca} is required)")
            }
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                format!("client certificate not signed by {ca} (unknown issuer)")
            }
            Some(rustls::Error::InvalidCertificate(reason)) => format!("bad client certificate: {reason}"),
            Some(rustls::Error::AlertReceived(alert)) => {
                format!(
                    "the client ended the handshake with alert {alert:?} (does it trust this member's certificate?)"
                )
            }
            Some(other) => other.to_string(),
            None => e.to_string(),
        }
    }
}

/// Why a connection never became a TLS stream.
enum Refusal {
    /// Closed (or reset) before sending a byte, as port probes do.
    Closed,
    Failed(String),
}

/// Answers an HTTP/1 request in plain text (HTTP/2 clients get no answer
/// they could read), and names the mistake.
async fn refuse_plaintext(mut tcp: TcpStream, first: &[u8]) -> Refusal {
    let reason = if first.starts_with(b"PRI ") {
        "plain HTTP/2 instead of a TLS handshake (an http:// client on an https:// URL)".to_string()
    } else if first.first().is_some_and(u8::is_ascii_uppercase) {
        // Best effort: the client may already be gone.
        let _ = tcp.write_all(PLAIN_HTTP_REPLY).await;
        "plain HTTP/1 instead of a TLS handshake (an http:// client on an https:// URL)".to_string()
    } else {
        format!("not a TLS handshake (first byte 0x{:02x})", first.first().copied().unwrap_or(0))
    };
    close_gently(tcp).await;
    Refusal::Failed(reason)
}

/// Closes a refused connection so that the client reads our last words (a
/// TLS alert, the plain-HTTP reply): closing with its unread bytes still in
/// our receive buffer would send a reset, which can destroy them in flight.
async fn close_gently(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let drained = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(LINGER, drained).await;
}

/// Accepts connections on `listener` until `shutdown`, and returns the TLS
/// streams (to serve) and the accept loop (to run beside the server).
pub fn incoming(
    listener: TcpListener,
    acceptor: Arc<Acceptor>,
    shutdown: CancellationToken,
) -> (ReceiverStream<io::Result<TlsStream<TcpStream>>>, impl Future<Output = ()> + Send) {
    let (ready, streams) = mpsc::channel(READY_BACKLOG);
    (ReceiverStream::new(streams), accept_loop(Source::Listener(listener), acceptor, ready, shutdown))
}

/// Like [`incoming`], for connections another task accepted and handed over
/// (see `server::shards`).
pub fn incoming_handed(
    handed: mpsc::UnboundedReceiver<std::net::TcpStream>,
    acceptor: Arc<Acceptor>,
    shutdown: CancellationToken,
) -> (ReceiverStream<io::Result<TlsStream<TcpStream>>>, impl Future<Output = ()> + Send) {
    let (ready, streams) = mpsc::channel(READY_BACKLOG);
    (ReceiverStream::new(streams), accept_loop(Source::Handed(handed), acceptor, ready, shutdown))
}

/// Where TCP connections come from.
enum Source {
    Listener(TcpListener),
    Handed(mpsc::UnboundedReceiver<std::net::TcpStream>),
}

impl Source {
    /// The next connection; None once no more can come.
    async fn next(&mut self) -> Option<io::Result<(TcpStream, SocketAddr)>> {
        match self {
            Source::Listener(listener) => Some(listener.accept().await),
            Source::Handed(handed) => {
                let tcp = handed.recv().await?;
                Some(TcpStream::from_std(tcp).and_then(|tcp| {
                    let peer = tcp.peer_addr()?;
                    Ok((tcp, peer))
                }))
            }
        }
    }
}

async fn accept_loop(
    mut source: Source,
    acceptor: Arc<Acceptor>,
    ready: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
    shutdown: CancellationToken,
) {
    // Dropped on shutdown, which aborts the handshakes still running.
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            accepted = source.next() => match accepted {
                Some(Ok((tcp, peer))) => {
                    handshakes.spawn(handshake(tcp, peer, acceptor.clone(), ready.clone()));
                }
                Some(Err(e)) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, traffic = acceptor.flags.traffic, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => return,
            },
        }
    }
}

async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Arc<Acceptor>,
    ready: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
) {
    let traffic = acceptor.flags.traffic;
    // Small gRPC messages must not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.handshake(tcp)).await {
        Ok(Ok(stream)) => {
            // Fails only when the server is gone, and the stream with it.
            let _ = ready.send(Ok(stream)).await;
        }
        Ok(Err(Refusal::Closed)) => tracing::debug!(%peer, traffic, "connection closed before a TLS handshake"),
        Ok(Err(Refusal::Failed(reason))) => tracing::warn!(%peer, traffic, %reason, "TLS handshake refused"),
        Err(_) => {
            let reason = format!("no TLS handshake within {}s", HANDSHAKE_TIMEOUT.as_secs());
            tracing::warn!(%peer, traffic, %reason, "TLS handshake refused");
        }
    }
}
