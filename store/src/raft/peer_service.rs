//! The server side of the peer transport: Raft RPCs into openraft, plus the
//! requests followers carry to the leader (proposals, read index, lease
//! keep-alives, membership changes). Every call but `ClusterInfo` must carry
//! this cluster's id.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use capstan_proto::raft as pb;
use capstan_proto::raft::raft_peer_server::RaftPeer;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, future};
use openraft::raft::{AppendEntriesResponse, TransferLeaderRequest, VoteRequest};
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use super::codec::{
    append_request_from_pb, log_id_from_pb, log_id_to_pb, stream_reply_to_pb, vote_from_pb, vote_to_pb,
};
use super::network::{CLUSTER_ID_HEADER, transfer_reply_to_pb};
use super::snapshot::SnapshotFile;
use super::state_machine::meta_from_pb;
use super::{Snapshot, TypeConfig};
use crate::server::forward::error_response;
use crate::server::member::Member;

pub struct PeerService {
    member: Arc<Member>,
    snapshot_dir: super::snapshot::SnapshotDir,
}

impl PeerService {
    pub fn new(member: Arc<Member>, snapshot_dir: super::snapshot::SnapshotDir) -> Self {
        PeerService { member, snapshot_dir }
    }

    fn check_cluster<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let theirs =
            req.metadata().get(CLUSTER_ID_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        match theirs {
            Some(id) if id == self.member.cluster_id => Ok(()),
            Some(id) => Err(Status::permission_denied(format!(
                "peer belongs to cluster {id:x}, this member to cluster {:x}",
                self.member.cluster_id
            ))),
            None => Err(Status::permission_denied("peer request without a cluster id")),
        }
    }
}

fn bad(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

fn raft_status(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn vote(&self, req: Request<pb::VoteRequest>) -> Result<Response<pb::VoteResponse>, Status> {
        self.check_cluster(&req)?;
        let r = req.into_inner();
        let rpc = VoteRequest::<TypeConfig> {
            vote: vote_from_pb(r.vote.as_ref()).map_err(bad)?,
            last_log_id: r.last_log_id.as_ref().map(log_id_from_pb),
            leadership_transfer: r.leadership_transfer,
        };
        let resp = self.member.raft.vote(rpc).await.map_err(raft_status)?;
        Ok(Response::new(pb::VoteResponse {
            vote: Some(vote_to_pb(&resp.vote)),
            vote_granted: resp.vote_granted,
            last_log_id: resp.last_log_id.as_ref().map(log_id_to_pb),
        }))
    }

    async fn append_entries(
        &self,
        req: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        self.check_cluster(&req)?;
        let rpc = append_request_from_pb(req.into_inner()).map_err(bad)?;
        let resp = self.member.raft.append_entries(rpc).await.map_err(raft_status)?;
        let out = match resp {
            AppendEntriesResponse::Success => pb::AppendEntriesResponse::default(),
            AppendEntriesResponse::PartialSuccess(l) => {
                pb::AppendEntriesResponse { last_log_id: l.as_ref().map(log_id_to_pb), ..Default::default() }
            }
            AppendEntriesResponse::Conflict => pb::AppendEntriesResponse { conflict: true, ..Default::default() },
            AppendEntriesResponse::HigherVote(v) => {
                pb::AppendEntriesResponse { rejected_by: Some(vote_to_pb(&v)), ..Default::default() }
            }
        };
        Ok(Response::new(out))
    }

    type AppendEntriesStreamStream = BoxStream<'static, Result<pb::AppendEntriesResponse, Status>>;

    async fn append_entries_stream(
        &self,
        req: Request<Streaming<pb::AppendEntriesRequest>>,
    ) -> Result<Response<Self::AppendEntriesStreamStream>, Status> {
        self.check_cluster(&req)?;
        // A request that cannot be decoded ends the input; its error then
        // ends the replies, after those of the requests before it.
        let refused = Arc::new(Mutex::new(None));
        let requests = req.into_inner().scan(refused.clone(), |refused, msg| {
            let decoded = msg.and_then(|m| append_request_from_pb(m).map_err(bad));
            future::ready(match decoded {
                Ok(rpc) => Some(rpc),
                Err(status) => {
                    *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                    None
                }
            })
        });
        let replies = self.member.raft.stream_append(requests).map(|r| match r {
            Ok(reply) => Ok(stream_reply_to_pb(&reply)),
            Err(fatal) => Err(raft_status(fatal)),
        });
        let last = stream::once(async move { refused.lock().unwrap_or_else(|e| e.into_inner()).take() })
            .filter_map(|refused| future::ready(refused.map(Err)));
        Ok(Response::new(Box::pin(replies.chain(last))))
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotReply>, Status> {
        self.check_cluster(&req)?;
        let mut stream = req.into_inner();
        let first = stream.next().await.ok_or_else(|| bad("empty snapshot stream"))??;
        let Some(pb::snapshot_chunk::Payload::Meta(meta)) = first.payload else {
            return Err(bad("snapshot stream must start with its meta"));
        };
        let vote = vote_from_pb(meta.vote.as_ref()).map_err(bad)?;
        let snapshot_meta = meta_from_pb(&meta).map_err(bad)?;
        let path = self.snapshot_dir.temp_path();
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| Status::internal(e.to_string()))?;
        while let Some(chunk) = stream.next().await {
            match chunk?.payload {
                Some(pb::snapshot_chunk::Payload::Data(d)) => {
                    file.write_all(&d).await.map_err(|e| Status::internal(e.to_string()))?;
                }
                _ => return Err(bad("snapshot data expected")),
            }
        }
        file.sync_all().await.map_err(|e| Status::internal(e.to_string()))?;
        drop(file);
        // The file is verified (size, checksum) when it is installed.
        let snapshot = Snapshot { meta: snapshot_meta, snapshot: SnapshotFile { path: path.clone() } };
        let result = self.member.raft.install_full_snapshot(vote, snapshot).await;
        if path.exists() {
            // Not installed (stale or refused): the temporary file is not needed.
            let _ = tokio::fs::remove_file(&path).await;
        }
        let resp = result.map_err(raft_status)?;
        Ok(Response::new(pb::SnapshotReply { vote: Some(vote_to_pb(&resp.vote)) }))
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderReply>, Status> {
        self.check_cluster(&req)?;
        let r = req.into_inner();
        let from = vote_from_pb(r.from_leader.as_ref()).map_err(bad)?;
        let rpc =
            TransferLeaderRequest::<TypeConfig>::new(from, r.to_node_id, r.last_log_id.as_ref().map(log_id_from_pb));
        let resp = self.member.raft.handle_transfer_leader(rpc).await.map_err(raft_status)?;
        Ok(Response::new(transfer_reply_to_pb(&resp)))
    }

    async fn propose_batch(
        &self,
        req: Request<pb::ForwardedProposals>,
    ) -> Result<Response<pb::ForwardedResults>, Status> {
        self.check_cluster(&req)?;
        let deadline = Instant::now() + self.member.timing.request_timeout();
        // Only the leader proposes: a forwarded write is never forwarded
        // again. Proposed together, the writes share appends and fsyncs.
        let proposals = req.into_inner().requests.into_iter().map(|r| self.member.propose_as_leader(r, deadline));
        let responses = futures::future::join_all(proposals)
            .await
            .into_iter()
            .map(|result| result.unwrap_or_else(|e| error_response(&e)))
            .collect();
        Ok(Response::new(pb::ForwardedResults { responses }))
    }

    async fn read_index(&self, req: Request<pb::Empty>) -> Result<Response<pb::ReadIndexResponse>, Status> {
        self.check_cluster(&req)?;
        let read_index = self.member.read_index_as_leader().await?;
        Ok(Response::new(pb::ReadIndexResponse { read_index }))
    }

    async fn lease_keep_alive(
        &self,
        req: Request<pb::KeepAliveForward>,
    ) -> Result<Response<pb::TimeToLiveReply>, Status> {
        self.check_cluster(&req)?;
        let ttl = self.member.keep_alive_as_leader(req.into_inner().id)?;
        Ok(Response::new(pb::TimeToLiveReply { ttl }))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<pb::TimeToLiveForward>,
    ) -> Result<Response<pb::TimeToLiveReply>, Status> {
        self.check_cluster(&req)?;
        let ttl = self.member.time_to_live_as_leader(req.into_inner().id)?;
        Ok(Response::new(pb::TimeToLiveReply { ttl }))
    }

    async fn change_membership(&self, req: Request<pb::MembershipChange>) -> Result<Response<pb::ClusterInfo>, Status> {
        self.check_cluster(&req)?;
        self.member.change_membership_as_leader(&req.into_inner()).await.map_err(Status::from)?;
        Ok(Response::new(self.member.cluster_info()))
    }

    async fn cluster_info(&self, _req: Request<pb::Empty>) -> Result<Response<pb::ClusterInfo>, Status> {
        Ok(Response::new(self.member.cluster_info()))
    }
}
