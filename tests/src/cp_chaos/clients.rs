//! One `kube` client per server, used in turn: a call that cannot reach its
//! server moves on to the next, as a client with several endpoints would.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone)]
pub struct Clients {
    clients: Arc<Vec<kube::Client>>,
    next: Arc<AtomicUsize>,
}

impl Clients {
    pub fn new(clients: Vec<kube::Client>) -> Clients {
        Clients { clients: Arc::new(clients), next: Arc::default() }
    }

    /// Runs `call` on the current server, and on the others while the
    /// server is unreachable or unavailable. Any other answer is final.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, kube::Error>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let start = self.next.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..self.clients.len() {
            let i = (start + attempt) % self.clients.len();
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), call(self.clients[i].clone())).await;
            match outcome {
                Ok(Ok(value)) => {
                    self.next.store(i, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(e)) if !moves_on(&e) => return Err(e),
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(kube::Error::Service("the server did not answer in 10 s".into())),
            }
        }
        Err(last.unwrap_or_else(|| kube::Error::Service("no servers".into())))
    }

    pub fn all(&self) -> &[kube::Client] {
        &self.clients
    }
}

/// Errors that say nothing about the request, only about the server.
fn moves_on(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            status.code == 503 || status.code == 504 || status.code == 500 || status.code == 429
        }
        _ => true,
    }
}
