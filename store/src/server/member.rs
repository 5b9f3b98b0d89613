//! One running store member: the handle every API service and the peer
//! service share. It proposes writes (forwarding them to the leader),
//! confirms linearizable reads, changes membership, and runs the leader's
//! lease expiry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan_proto::etcdserverpb::{LeaseRevokeRequest, ResponseHeader};
use capstan_proto::raft::{self as pb, StoreRequest, StoreResponse, membership_change, store_request, store_response};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ChangeMembershipError, ClientWriteError, RaftError};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::coalesce::Coalescer;
use super::forward::Forwarder;
use crate::error::{Error, Result};
use crate::lease::clock::LeaseClock;
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::raft::codec::{membership_to_pb, node_from_pb};
use crate::raft::network::{ChannelPool, peer_request};
use crate::raft::{ChangeMembers, MemberNode, Membership, Proposal, Raft, ReadPolicy, ServerState};
use crate::watch::WatchHub;

/// Timing a member runs with (etcd's `--election-timeout`).
#[derive(Clone, Debug)]
pub struct Timing {
    pub election_ms: u64,
}

impl Timing {
    /// etcd's request timeout: 5 s plus two election timeouts.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(5000 + 2 * self.election_ms)
    }
}

pub struct Member {
    pub id: u64,
    pub cluster_id: u64,
    pub name: String,
    pub raft: Raft,
    pub mvcc: Arc<MvccStore>,
    pub hub: WatchHub,
    pub metrics: Metrics,
    pub pool: ChannelPool,
    pub timing: Timing,
    // A std lock: taken for map updates only, never across an await. Shared
    // with the state machine, which starts a lease's TTL when its grant applies.
    pub(crate) lease_clock: Arc<Mutex<LeaseClock>>,
    pub shutdown: CancellationToken,
    /// Read index rounds shared by concurrent reads: as leader, and as a follower asking it.
    pub(crate) leader_reads: Arc<Coalescer<Result<u64>>>,
    pub(crate) follower_reads: Arc<Coalescer<Result<u64>>>,
    /// Writes on their way to the leader, sent in batches.
    pub(crate) forwarder: Arc<Forwarder>,
    /// One membership change at a time on this leader: openraft commits a
    /// change in two steps, and another change committed between them (a
    /// member publishing its name) failed the second with "last membership
    /// log id mismatch".
    pub(crate) membership_changes: tokio::sync::Mutex<()>,
}

fn fatal(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "raft stopped");
    Error::Stopped
}

impl Member {
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader { cluster_id: self.cluster_id, member_id: self.id, revision, raft_term: self.term() }
    }

    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().state == ServerState::Leader
    }

    /// The membership as this member last saw it.
    pub fn membership(&self) -> Membership {
        self.raft.metrics().borrow_watched().membership_config.membership().clone()
    }

    pub fn node(&self, id: u64) -> Option<MemberNode> {
        self.membership().get_node(&id).cloned()
    }

    fn lease_clock(&self) -> std::sync::MutexGuard<'_, LeaseClock> {
        self.lease_clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until some member is leader, up to `deadline`.
    async fn wait_leader(&self, deadline: Instant) -> Result<u64> {
        if let Some(l) = self.leader() {
            return Ok(l);
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.raft.wait(Some(timeout)).metrics(|m| m.current_leader.is_some(), "a leader").await {
            Ok(m) => m.current_leader.ok_or(Error::NoLeader),
            Err(_) => Err(Error::NoLeader),
        }
    }

    /// Proposes a write and returns its applied response. Any member accepts
    /// writes; a follower forwards to the leader. An apply-time error comes
    /// back as `Err`.
    pub async fn propose(&self, req: StoreRequest) -> Result<StoreResponse> {
        let deadline = Instant::now() + self.timing.request_timeout();
        let result = self.propose_until(req, deadline).await;
        self.metrics.proposal(result.is_ok());
        result.and_then(into_result)
    }

    /// Runs `attempt` against the current leader until it answers, retrying
    /// while leadership moves (`NotLeader` means nothing was done).
    async fn at_leader<T, F, Fut>(&self, deadline: Instant, mut attempt: F) -> Result<T>
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        loop {
            let leader = self.wait_leader(deadline).await?;
            match attempt(leader).await {
                Err(Error::NotLeader) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    async fn propose_until(&self, req: StoreRequest, deadline: Instant) -> Result<StoreResponse> {
        self.at_leader(deadline, |leader| {
            let req = req.clone();
            async move {
                if leader == self.id {
                    self.propose_as_leader(req, deadline).await
                } else {
                    self.forward_proposal(leader, req, deadline).await
                }
            }
        })
        .await
    }

    /// Proposes on this member, which must be the leader.
    pub async fn propose_as_leader(&self, req: StoreRequest, deadline: Instant) -> Result<StoreResponse> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(timeout, self.raft.client_write(Proposal(detached(req)))).await {
            Err(_) => Err(Error::Timeout),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(Error::NotLeader),
            Ok(Err(RaftError::APIError(e))) => Err(Error::InvalidRequest(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(fatal(e)),
        }
    }

    async fn forward_proposal(&self, leader: u64, req: StoreRequest, deadline: Instant) -> Result<StoreResponse> {
        let node = self.node(leader).ok_or(Error::NoLeader)?;
        let client = self.pool.client(&node).map_err(|_| Error::NoLeader)?;
        self.forwarder.forward(self.cluster_id, leader, client, req, deadline).await
    }

    /// Returns once this member's state reflects every write acknowledged
    /// before the call: the leader confirms its leadership with a quorum
    /// (ReadIndex); a follower asks the leader for that index and waits to
    /// apply it.
    pub async fn read_barrier(&self) -> Result<()> {
        let deadline = Instant::now() + self.timing.request_timeout();
        self.at_leader(deadline, |leader| async move {
            if leader == self.id {
                self.read_index_as_leader().await.map(|_| ())
            } else {
                self.follower_read(leader, deadline).await
            }
        })
        .await
    }

    /// On the leader: confirms leadership and returns the index a read must see.
    pub async fn read_index_as_leader(&self) -> Result<u64> {
        let raft = self.raft.clone();
        let round = move || async move {
            match raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(read) => Ok(read.index()),
                Err(RaftError::APIError(_)) => Err(Error::NotLeader),
                Err(RaftError::Fatal(e)) => Err(fatal(e)),
            }
        };
        self.leader_reads.run(round).await.unwrap_or(Err(Error::Stopped))
    }

    async fn follower_read(&self, leader: u64, deadline: Instant) -> Result<()> {
        let node = self.node(leader).ok_or(Error::NoLeader)?;
        let mut client = self.pool.client(&node).map_err(|_| Error::NoLeader)?;
        let cluster_id = self.cluster_id;
        let round = move || async move {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match client.read_index(peer_request(cluster_id, pb::Empty {}, timeout)).await {
                Ok(r) => Ok(r.into_inner().read_index),
                Err(s) => Err(status_to_error(&s)),
            }
        };
        let index = self.follower_reads.run(round).await.unwrap_or(Err(Error::Stopped))?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read index applied")
            .await
            .map(|_| ())
            .map_err(|_| Error::Timeout)
    }

    /// Applies a membership change, on the leader or forwarded to it.
    pub async fn change_membership(&self, change: pb::MembershipChange) -> Result<Membership> {
        let deadline = Instant::now() + self.timing.request_timeout();
        let change = &change;
        self.at_leader(deadline, |leader| async move {
            if leader == self.id {
                self.change_membership_as_leader(change).await
            } else {
                self.forward_membership_change(leader, change.clone(), deadline).await
            }
        })
        .await
    }

    async fn forward_membership_change(
        &self,
        leader: u64,
        change: pb::MembershipChange,
        deadline: Instant,
    ) -> Result<Membership> {
        let node = self.node(leader).ok_or(Error::NoLeader)?;
        let mut client = self.pool.client(&node).map_err(|_| Error::NoLeader)?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        let info = client
            .change_membership(peer_request(self.cluster_id, change, timeout))
            .await
            .map_err(|s| status_to_error(&s))?;
        let m = info.into_inner().membership.unwrap_or_default();
        crate::raft::codec::membership_from_pb(&m).map_err(|e| Error::Storage(e.to_string()))
    }

    pub async fn change_membership_as_leader(&self, change: &pb::MembershipChange) -> Result<Membership> {
        let _one_at_a_time = self.membership_changes.lock().await;
        if !self.is_leader() {
            return Err(Error::NotLeader);
        }
        let current = self.membership();
        let voters: BTreeSet<u64> = current.voter_ids().collect();
        let request: ChangeMembers = match &change.change {
            Some(membership_change::Change::Add(add)) => {
                let node =
                    node_from_pb(add.node.as_ref().ok_or_else(|| Error::InvalidRequest("member without node".into()))?);
                if current.nodes().any(|(_, n)| n.peer_urls.iter().any(|u| node.peer_urls.contains(u))) {
                    return Err(Error::PeerUrlExists);
                }
                if current.get_node(&add.id).is_some() {
                    return Err(Error::MemberIdExists);
                }
                let added = BTreeMap::from([(add.id, node)]);
                // A node outside every voter set is a learner.
                if add.learner { ChangeMembers::AddNodes(added) } else { ChangeMembers::AddVoters(added) }
            }
            Some(membership_change::Change::Promote(id)) => {
                if current.get_node(id).is_none() {
                    return Err(Error::MemberNotFound);
                }
                if voters.contains(id) {
                    return Err(Error::NotLearner);
                }
                ChangeMembers::AddVoterIds(BTreeSet::from([*id]))
            }
            Some(membership_change::Change::Remove(id)) => {
                if current.get_node(id).is_none() {
                    return Err(Error::MemberNotFound);
                }
                if voters.contains(id) {
                    let remove_voter = ChangeMembers::RemoveVoters(BTreeSet::from([*id]));
                    self.run_change(remove_voter).await?;
                }
                ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
            }
            Some(membership_change::Change::Update(u)) => {
                let node =
                    node_from_pb(u.node.as_ref().ok_or_else(|| Error::InvalidRequest("member without node".into()))?);
                if current.get_node(&u.id).is_none() {
                    return Err(Error::MemberNotFound);
                }
                if current.nodes().any(|(id, n)| *id != u.id && n.peer_urls.iter().any(|p| node.peer_urls.contains(p)))
                {
                    return Err(Error::PeerUrlExists);
                }
                ChangeMembers::SetNodes(BTreeMap::from([(u.id, node)]))
            }
            None => return Err(Error::InvalidRequest("empty membership change".into())),
        };
        self.run_change(request).await
    }

    async fn run_change(&self, change: ChangeMembers) -> Result<Membership> {
        // Retries while an earlier change is still being committed.
        for _ in 0..50 {
            match self.raft.change_membership(change.clone(), true).await {
                Ok(r) => return Ok(r.membership.unwrap_or_else(|| self.membership())),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => return Err(Error::NotLeader),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(RaftError::APIError(e)) => return Err(Error::InvalidRequest(e.to_string())),
                Err(RaftError::Fatal(e)) => return Err(fatal(e)),
            }
        }
        Err(Error::Timeout)
    }

    pub fn cluster_info(&self) -> pb::ClusterInfo {
        pb::ClusterInfo { cluster_id: self.cluster_id, membership: Some(membership_to_pb(&self.membership())) }
    }

    /// Keep-alive on the leader: restarts the TTL. Returns the TTL, or 0 for an unknown lease.
    pub fn keep_alive_as_leader(&self, id: i64) -> Result<i64> {
        if !self.is_leader() {
            return Err(Error::NotLeader);
        }
        let Some(lease) = self.mvcc.lease(id) else { return Ok(0) };
        self.lease_clock().refresh(id, lease.ttl, Instant::now());
        Ok(lease.ttl)
    }

    /// Remaining TTL on the leader, or -1 for an unknown lease.
    pub fn time_to_live_as_leader(&self, id: i64) -> Result<i64> {
        if !self.is_leader() {
            return Err(Error::NotLeader);
        }
        let Some(lease) = self.mvcc.lease(id) else { return Ok(-1) };
        Ok(self.lease_clock().remaining(id, lease.ttl, Instant::now()))
    }

    /// Keep-alive or time-to-live, answered by the leader wherever asked.
    pub async fn lease_ttl(&self, id: i64, keep_alive: bool) -> Result<i64> {
        let deadline = Instant::now() + self.timing.request_timeout();
        self.at_leader(deadline, |leader| async move {
            if leader != self.id {
                self.forward_lease_ttl(leader, id, keep_alive, deadline).await
            } else if keep_alive {
                self.keep_alive_as_leader(id)
            } else {
                self.time_to_live_as_leader(id)
            }
        })
        .await
    }

    async fn forward_lease_ttl(&self, leader: u64, id: i64, keep_alive: bool, deadline: Instant) -> Result<i64> {
        let node = self.node(leader).ok_or(Error::NoLeader)?;
        let mut client = self.pool.client(&node).map_err(|_| Error::NoLeader)?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        let reply = if keep_alive {
            client.lease_keep_alive(peer_request(self.cluster_id, pb::KeepAliveForward { id }, timeout)).await
        } else {
            client.lease_time_to_live(peer_request(self.cluster_id, pb::TimeToLiveForward { id }, timeout)).await
        };
        reply.map(|r| r.into_inner().ttl).map_err(|s| status_to_error(&s))
    }

    /// The leader's expiry loop: revokes leases whose TTL ran out.
    pub async fn run_lease_expiry(self: Arc<Self>) {
        let mut was_leader = false;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let leader = self.is_leader();
            if leader != was_leader {
                // Gaining (or losing) leadership restarts every TTL.
                self.lease_clock().reset();
                was_leader = leader;
            }
            if !leader {
                continue;
            }
            let live: Vec<(i64, i64)> =
                self.mvcc.lease_ids().into_iter().filter_map(|id| self.mvcc.lease(id).map(|l| (id, l.ttl))).collect();
            let expired = self.lease_clock().expired(&live, Instant::now());
            for id in expired {
                let req =
                    StoreRequest { request: Some(store_request::Request::LeaseRevoke(LeaseRevokeRequest { id })) };
                match self.propose(req).await {
                    Ok(_) | Err(Error::LeaseNotFound) => tracing::debug!(lease = id, "lease expired"),
                    Err(e) => {
                        tracing::warn!(lease = id, error = %e, "revoking expired lease");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes metrics: Raft's as they change, the store's (costly to
    /// read, and changed by every apply) once a second.
    pub async fn run_metrics(self: Arc<Self>) {
        let mut rx = self.raft.metrics();
        let mut last_leader = None;
        let mut store_tick = tokio::time::interval(Duration::from_secs(1));
        store_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            {
                let m = rx.borrow_and_update();
                if m.current_leader != last_leader {
                    if m.current_leader.is_some() {
                        self.metrics.leader_changed();
                    }
                    last_leader = m.current_leader;
                }
                self.metrics.raft(
                    m.current_term,
                    m.state == ServerState::Leader,
                    m.last_applied.map_or(0, |l| l.index),
                    m.local_committed.map_or(0, |l| l.index),
                );
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
                _ = store_tick.tick() => {
                    let size = self.mvcc.backend().size();
                    self.metrics.store(size, self.mvcc.current_revision(), self.mvcc.lease_ids().len());
                }
            }
        }
    }
}

/// Turns an apply-time error carried in a response into `Err`.
fn into_result(resp: StoreResponse) -> Result<StoreResponse> {
    match &resp.response {
        Some(store_response::Response::Error(e)) => Err(Error::from_wire(e.code, &e.message)),
        _ => Ok(resp),
    }
}

/// A peer's reply status back to our error (its message is etcd's text).
pub fn status_to_error(s: &tonic::Status) -> Error {
    match s.code() {
        tonic::Code::Unavailable if s.message().starts_with("etcdserver:") => {
            Error::from_wire(s.code() as i32, s.message())
        }
        // The request never left this member: safe to try again.
        tonic::Code::Unavailable if s.message().contains("connect") => Error::NotLeader,
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => Error::LeaderChanged,
        tonic::Code::DeadlineExceeded => Error::Timeout,
        code => Error::from_wire(code as i32, s.message()),
    }
}

/// The request decoded again from an allocation of its own. The fields of a
/// received request share its whole gRPC buffer (8 KiB and more), which the
/// log tail and the watch ring would otherwise keep alive for every write.
fn detached(req: StoreRequest) -> StoreRequest {
    let encoded = bytes::Bytes::from(req.encode_to_vec());
    StoreRequest::decode(encoded).unwrap_or(req)
}
