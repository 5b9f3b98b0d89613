//! Writes that a follower carries to the leader, in batches. Under load many
//! writes wait at once; one peer call carries all of them, instead of one
//! HTTP/2 request each on both members. A single write goes out at once.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use capstan_proto::raft::raft_peer_client::RaftPeerClient;
use capstan_proto::raft::{ForwardedProposals, StoreRequest, StoreResponse, store_response};
use prost::Message;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use super::member::status_to_error;
use crate::error::{Error, Result};
use crate::raft::network::peer_request;

/// Batches in flight at once: a new write need not wait for a whole round trip.
const MAX_IN_FLIGHT: usize = 4;
/// Writes in one batch, and their bytes (one write may be 1.5 MiB).
const MAX_BATCH: usize = 1024;
const MAX_BATCH_BYTES: usize = 8 << 20;

struct Pending {
    leader: u64,
    client: RaftPeerClient<Channel>,
    request: StoreRequest,
    deadline: Instant,
    reply: oneshot::Sender<Result<StoreResponse>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    senders: usize,
}

#[derive(Default)]
pub struct Forwarder {
    queue: Mutex<Queue>,
}

impl Forwarder {
    /// Proposes `request` on `leader` (reached through `client`). An error
    /// the leader decided comes back as `Err`; `NotLeader` means nothing was done.
    pub async fn forward(
        self: &Arc<Self>,
        cluster_id: u64,
        leader: u64,
        client: RaftPeerClient<Channel>,
        request: StoreRequest,
        deadline: Instant,
    ) -> Result<StoreResponse> {
        let (reply, rx) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.waiting.push(Pending { leader, client, request, deadline, reply });
            let start = queue.senders < MAX_IN_FLIGHT;
            if start {
                queue.senders += 1;
            }
            start
        };
        if start {
            // A task of its own: a caller that gives up must not strand the others.
            tokio::spawn(self.clone().send_batches(cluster_id));
        }
        // A lost reply means the batch's fate is unknown.
        rx.await.unwrap_or(Err(Error::LeaderChanged))
    }

    async fn send_batches(self: Arc<Self>, cluster_id: u64) {
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.waiting.is_empty() {
                    queue.senders -= 1;
                    return;
                }
                take_batch(&mut queue.waiting, |p| p.leader, |p| p.request.encoded_len())
            };
            send(cluster_id, batch).await;
        }
    }
}

/// The oldest waiting write and, within the limits, the next ones for the same leader.
fn take_batch<T>(waiting: &mut Vec<T>, leader_of: impl Fn(&T) -> u64, size_of: impl Fn(&T) -> usize) -> Vec<T> {
    let Some(leader) = waiting.first().map(&leader_of) else { return Vec::new() };
    let (mut batch, mut rest) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for p in std::mem::take(waiting) {
        let fits = batch.is_empty() || (batch.len() < MAX_BATCH && bytes + size_of(&p) <= MAX_BATCH_BYTES);
        if leader_of(&p) == leader && fits {
            bytes += size_of(&p);
            batch.push(p);
        } else {
            rest.push(p);
        }
    }
    *waiting = rest;
    batch
}

async fn send(cluster_id: u64, batch: Vec<Pending>) {
    let Some(first) = batch.first() else { return };
    let mut client = first.client.clone();
    let deadline = batch.iter().map(|p| p.deadline).max().unwrap_or(first.deadline);
    let (replies, requests): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.reply, p.request)).unzip();
    let timeout = deadline.saturating_duration_since(Instant::now());
    let sent = client.propose_batch(peer_request(cluster_id, ForwardedProposals { requests }, timeout)).await;
    match sent {
        Ok(results) if results.get_ref().responses.len() == replies.len() => {
            for (reply, response) in replies.into_iter().zip(results.into_inner().responses) {
                let _ = reply.send(leader_result(response));
            }
        }
        Ok(_) => {
            for reply in replies {
                let _ = reply
                    .send(Err(Error::Storage("the leader answered a batch of writes with a different count".into())));
            }
        }
        Err(status) => {
            let error = status_to_error(&status);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// A response with an error in it becomes that error.
fn leader_result(response: StoreResponse) -> Result<StoreResponse> {
    match &response.response {
        Some(store_response::Response::Error(e)) => Err(Error::from_wire(e.code, &e.message)),
        _ => Ok(response),
    }
}

/// How the leader reports a write of a batch that failed.
pub fn error_response(e: &Error) -> StoreResponse {
    let error = capstan_proto::raft::ApplyError { code: e.code() as i32, message: e.to_string() };
    StoreResponse { response: Some(store_response::Response::Error(error)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_one_leader_oldest_first_and_bounded() {
        let count = MAX_BATCH * 2;
        let mut waiting: Vec<(u64, usize)> = (0..count).map(|i| (if i % 3 == 1 { 9 } else { 7 }, i)).collect();
        let one_byte = |_: &(u64, usize)| 1;
        let batch = take_batch(&mut waiting, |p| p.0, one_byte);
        assert_eq!(batch.len(), MAX_BATCH);
        assert!(batch.iter().all(|p| p.0 == 7));
        assert!(batch.windows(2).all(|w| w[0].1 < w[1].1));
        // What stays keeps its order: leader 9's writes are now the oldest.
        let next = take_batch(&mut waiting, |p| p.0, one_byte);
        assert!(!next.is_empty() && next.iter().all(|p| p.0 == 9));
        let last = take_batch(&mut waiting, |p| p.0, one_byte);
        assert!(!last.is_empty() && last.iter().all(|p| p.0 == 7));
        assert_eq!(batch.len() + next.len() + last.len(), count);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_batch_is_bounded_in_bytes_but_never_empty() {
        let mut waiting: Vec<(u64, usize)> = vec![(1, MAX_BATCH_BYTES * 2), (1, 10), (1, MAX_BATCH_BYTES)];
        let batch = take_batch(&mut waiting, |p| p.0, |p| p.1);
        assert_eq!(batch, vec![(1, MAX_BATCH_BYTES * 2)], "an oversized write goes alone");
        let batch = take_batch(&mut waiting, |p| p.0, |p| p.1);
        assert_eq!(batch, vec![(1, 10)]);
        assert_eq!(waiting, vec![(1, MAX_BATCH_BYTES)]);
    }

    #[test]
    fn errors_cross_the_batch_intact() {
        for e in [Error::NotLeader, Error::Timeout, Error::LeaseNotFound, Error::LeaderChanged] {
            assert_eq!(leader_result(error_response(&e)), Err(e));
        }
        let storage = leader_result(error_response(&Error::Storage("disk on fire".into())));
        assert!(matches!(storage, Err(Error::Storage(m)) if m.contains("disk on fire")));
        let ok = StoreResponse { response: None };
        assert_eq!(leader_result(ok.clone()), Ok(ok));
    }
}
