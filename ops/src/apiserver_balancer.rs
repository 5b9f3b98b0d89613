//! A load balancer on 127.0.0.1 in front of every server's API, as k3s's
//! agent has: each connection is passed byte for byte (TLS untouched) to the
//! first server that accepts it, starting with the one that answered last.
//! When a server dies its connections break, clients reconnect, and the
//! next server takes them: that is the agent's failover.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a server gets to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The servers (`host:port`) and which one answered last.
#[derive(Default)]
struct Servers {
    addresses: Vec<String>,
    preferred: usize,
}

impl Servers {
    /// Every server once, the preferred one first.
    fn in_turn(&self) -> Vec<String> {
        let n = self.addresses.len();
        (0..n).map(|i| self.addresses[(self.preferred + i) % n].clone()).collect()
    }

    fn answered(&mut self, address: &str) {
        if let Some(i) = self.addresses.iter().position(|a| a == address) {
            self.preferred = i;
        }
    }

    /// A new list; the preferred server stays preferred while it is listed.
    fn replace(&mut self, addresses: Vec<String>) {
        let current = self.addresses.get(self.preferred).cloned();
        self.addresses = addresses;
        self.preferred = current.and_then(|c| self.addresses.iter().position(|a| *a == c)).unwrap_or(0);
    }
}

#[derive(Clone)]
pub struct ApiserverBalancer {
    servers: Arc<Mutex<Servers>>,
    pub local_addr: SocketAddr,
}

impl ApiserverBalancer {
    /// Listens on 127.0.0.1 (any free port) until `shutdown`.
    pub async fn start(addresses: Vec<String>, shutdown: CancellationToken) -> std::io::Result<ApiserverBalancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let servers = Arc::new(Mutex::new(Servers::default()));
        let balancer = ApiserverBalancer { servers, local_addr };
        balancer.set_servers(addresses);
        let accepting = balancer.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => {
                            tokio::spawn(accepting.clone().forward(client));
                        }
                        Err(e) => tracing::warn!(error = %e, "accepting an API connection"),
                    },
                }
            }
        });
        Ok(balancer)
    }

    /// Replaces the servers; an empty list keeps the old one.
    pub fn set_servers(&self, addresses: Vec<String>) {
        if addresses.is_empty() {
            return;
        }
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        if servers.addresses != addresses {
            tracing::info!(servers = ?addresses, "API servers");
            servers.replace(addresses);
        }
    }

    async fn forward(self, mut client: TcpStream) {
        let _ = client.set_nodelay(true);
        let candidates = self.servers.lock().unwrap_or_else(|e| e.into_inner()).in_turn();
        for address in candidates {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await {
                Ok(Ok(mut server)) => {
                    self.servers.lock().unwrap_or_else(|e| e.into_inner()).answered(&address);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                Ok(Err(e)) => tracing::debug!(%address, error = %e, "API server refused; trying the next"),
                Err(_) => tracing::debug!(%address, "API server did not answer; trying the next"),
            }
        }
        tracing::warn!("no API server answered; closing the connection");
    }
}

/// `host:port` of an `https://host:port` URL.
pub fn address_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.contains(':').then(|| authority.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn servers_come_in_turn_from_the_one_that_answered_last() {
        let mut servers = Servers::default();
        servers.replace(vec!["a:1".into(), "b:1".into(), "c:1".into()]);
        assert_eq!(servers.in_turn(), ["a:1", "b:1", "c:1"]);
        servers.answered("c:1");
        assert_eq!(servers.in_turn(), ["c:1", "a:1", "b:1"]);
        servers.replace(vec!["b:1".into(), "c:1".into()]);
        assert_eq!(servers.in_turn(), ["c:1", "b:1"], "the preferred server stays first");
        servers.replace(vec!["d:1".into()]);
        assert_eq!(servers.in_turn(), ["d:1"]);
    }

    #[test]
    fn addresses_come_from_https_urls() {
        assert_eq!(address_of("https://127.0.0.21:6443").as_deref(), Some("127.0.0.21:6443"));
        assert_eq!(address_of("https://[::1]:6443/").as_deref(), Some("[::1]:6443"));
        assert_eq!(address_of("http://x:1"), None);
        assert_eq!(address_of("https://no-port"), None);
    }

    async fn server() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        (listener, address)
    }

    /// Answers one connection with `name`.
    async fn serve_once(listener: &TcpListener, name: &str) {
        let (mut conn, _) = listener.accept().await.expect("accept");
        conn.write_all(name.as_bytes()).await.expect("write");
    }

    async fn ask(balancer: &ApiserverBalancer) -> String {
        let mut conn = TcpStream::connect(balancer.local_addr).await.expect("connect to the balancer");
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer).await;
        answer
    }

    #[tokio::test]
    async fn connections_move_to_the_next_server_when_one_dies() {
        let (first, first_addr) = server().await;
        let (second, second_addr) = server().await;
        let shutdown = CancellationToken::new();
        let balancer =
            ApiserverBalancer::start(vec![first_addr, second_addr.clone()], shutdown.clone()).await.expect("balancer");
        let (answer, ()) = tokio::join!(ask(&balancer), serve_once(&first, "first"));
        assert_eq!(answer, "first");
        drop(first);
        let (answer, ()) = tokio::join!(ask(&balancer), serve_once(&second, "second"));
        assert_eq!(answer, "second", "the dead server is skipped");
        let (third, third_addr) = server().await;
        balancer.set_servers(vec![third_addr]);
        let (answer, ()) = tokio::join!(ask(&balancer), serve_once(&third, "third"));
        assert_eq!(answer, "third", "a new list is used");
        drop((second, third));
        assert_eq!(ask(&balancer).await, "", "no server: the connection is closed, not held");
        shutdown.cancel();
    }
}
