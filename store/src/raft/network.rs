//! The client side of the peer transport: openraft's network over gRPC.
//! Channels are cached per peer URL and connect lazily; every call carries
//! the cluster id so that a member of another cluster is refused.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_proto::raft as pb;
use capstan_proto::raft::raft_peer_client::RaftPeerClient;
use futures::{Stream, StreamExt, stream};
use openraft::OptionalSend;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::codec::{
    append_request_to_pb, log_id_from_pb, log_id_to_pb, membership_to_pb, stream_reply_from_pb, vote_from_pb,
    vote_to_pb,
};
use super::snapshot::SnapshotFile;
use super::{MemberNode, Snapshot, TypeConfig, Vote};

pub const CLUSTER_ID_HEADER: &str = "capstan-cluster-id";
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

/// Lazily connected channels, one per peer URL, shared by Raft and forwarding.
#[derive(Clone, Default)]
pub struct ChannelPool {
    // A std lock: held only to look up or insert a channel.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// How to dial `https://` peer URLs (None: no `--peer-trusted-ca-file`).
    tls: Option<ClientTlsConfig>,
}

impl ChannelPool {
    pub fn new(tls: Option<ClientTlsConfig>) -> ChannelPool {
        ChannelPool { channels: Arc::default(), tls }
    }

    pub fn get(&self, url: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(url) {
            return Ok(c.clone());
        }
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5));
        if url.starts_with("https://") {
            let tls = self.tls.clone().ok_or("https:// needs --peer-trusted-ca-file")?;
            endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }

    /// A client for the member's first peer URL.
    pub fn client(&self, node: &MemberNode) -> Result<RaftPeerClient<Channel>, tonic::Status> {
        let url = node.peer_urls.first().ok_or_else(|| tonic::Status::unavailable("member has no peer URL"))?;
        let channel = self.get(url).map_err(|e| tonic::Status::unavailable(format!("peer URL {url}: {e}")))?;
        Ok(RaftPeerClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

/// Wraps a message with the cluster id and a deadline.
pub fn peer_request<T>(cluster_id: u64, msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    set_cluster_id(&mut req, cluster_id);
    req
}

fn set_cluster_id<T>(req: &mut tonic::Request<T>, cluster_id: u64) {
    if let Ok(v) = cluster_id.to_string().parse() {
        req.metadata_mut().insert(CLUSTER_ID_HEADER, v);
    }
}

#[derive(Clone)]
pub struct PeerNetwork {
    pub cluster_id: u64,
    pub pool: ChannelPool,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &MemberNode) -> PeerConnection {
        PeerConnection { target, node: node.clone(), cluster_id: self.cluster_id, pool: self.pool.clone() }
    }
}

pub struct PeerConnection {
    target: u64,
    node: MemberNode,
    cluster_id: u64,
    pool: ChannelPool,
}

fn rpc_error(s: tonic::Status) -> RPCError<TypeConfig> {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::PermissionDenied => {
            RPCError::Unreachable(Unreachable::new(&s))
        }
        _ => RPCError::Network(NetworkError::new(&s)),
    }
}

fn decode_error(e: std::io::Error) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&e))
}

fn unreachable(why: &str) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::new(std::io::ErrorKind::TimedOut, why)))
}

type StreamReply = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// How long a follower may leave an append of a stream unanswered before the
/// stream is given up (openraft then opens another). Generous: a follower's
/// fsync under load takes a good part of it; a dead connection ends the
/// stream at once, a silent one by HTTP/2 keep-alive.
const STREAM_STALL: Duration = Duration::from_secs(1);

/// The next reply of an append stream, None once the follower ended it.
async fn next_reply(
    replies: &mut tonic::Streaming<pb::AppendEntriesResponse>,
    unanswered: &AtomicUsize,
) -> Option<StreamReply> {
    // A stream is idle while there is nothing to replicate: only a request
    // left unanswered through a whole period counts as a stall.
    let mut unanswered_before = false;
    loop {
        match tokio::time::timeout(STREAM_STALL, replies.message()).await {
            Ok(Ok(Some(reply))) => {
                let _ = unanswered.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
                return Some(stream_reply_from_pb(&reply).map_err(decode_error));
            }
            Ok(Ok(None)) => return None,
            Ok(Err(status)) => return Some(Err(rpc_error(status))),
            Err(_) => {
                let unanswered_now = unanswered.load(Ordering::Relaxed) > 0;
                if unanswered_before && unanswered_now {
                    return Some(Err(unreachable("an append went unanswered")));
                }
                unanswered_before = unanswered_now;
            }
        }
    }
}

impl PeerConnection {
    fn client(&self) -> Result<RaftPeerClient<Channel>, RPCError<TypeConfig>> {
        self.pool.client(&self.node).map_err(|s| RPCError::Unreachable(Unreachable::new(&s)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let msg = append_request_to_pb(&rpc);
        let resp = self
            .client()?
            .append_entries(peer_request(self.cluster_id, msg, option.hard_ttl()))
            .await
            .map_err(rpc_error)?
            .into_inner();
        if let Some(v) = resp.rejected_by {
            return Ok(AppendEntriesResponse::HigherVote(vote_from_pb(Some(&v)).map_err(decode_error)?));
        }
        if resp.conflict {
            return Ok(AppendEntriesResponse::Conflict);
        }
        Ok(match resp.last_log_id {
            Some(l) => AppendEntriesResponse::PartialSuccess(Some(log_id_from_pb(&l))),
            None => AppendEntriesResponse::Success,
        })
    }

    /// One gRPC stream carries every request of a replication session: a
    /// request is one HTTP/2 frame, not a call of its own, and the next one
    /// goes out without waiting for the reply to the last.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, StreamReply>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let mut client = self.client()?;
            let unanswered = Arc::new(AtomicUsize::new(0));
            let sent = unanswered.clone();
            let requests = input.map(move |rpc| {
                sent.fetch_add(1, Ordering::Relaxed);
                append_request_to_pb(&rpc)
            });
            let mut req = tonic::Request::new(requests);
            set_cluster_id(&mut req, self.cluster_id);
            let opened = tokio::time::timeout(option.soft_ttl(), client.append_entries_stream(req))
                .await
                .map_err(|_| unreachable("no answer to opening an append stream"))?;
            let replies = opened.map_err(rpc_error)?.into_inner();
            let replies = stream::unfold(Some(replies), move |open| {
                let unanswered = unanswered.clone();
                async move {
                    let mut replies = open?;
                    match next_reply(&mut replies, &unanswered).await? {
                        Ok(reply) => Some((Ok(reply), Some(replies))),
                        Err(e) => Some((Err(e), None)),
                    }
                }
            });
            Ok(Box::pin(replies) as BoxStream<'s, StreamReply>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let msg = pb::VoteRequest {
            vote: Some(vote_to_pb(&rpc.vote)),
            last_log_id: rpc.last_log_id.as_ref().map(log_id_to_pb),
            leadership_transfer: rpc.leadership_transfer,
        };
        let resp = self
            .client()?
            .vote(peer_request(self.cluster_id, msg, option.hard_ttl()))
            .await
            .map_err(rpc_error)?
            .into_inner();
        let vote = vote_from_pb(resp.vote.as_ref()).map_err(decode_error)?;
        Ok(VoteResponse::new(vote, resp.last_log_id.as_ref().map(log_id_from_pb), resp.vote_granted))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&other)),
        })?;
        let meta = &snapshot.meta;
        let head = pb::SnapshotChunk {
            payload: Some(pb::snapshot_chunk::Payload::Meta(pb::SnapshotMeta {
                vote: Some(vote_to_pb(&vote)),
                last_log_id: meta.last_log_id.as_ref().map(log_id_to_pb),
                last_membership_log_id: meta.last_membership.log_id().as_ref().map(log_id_to_pb),
                last_membership: Some(membership_to_pb(meta.last_membership.membership())),
            })),
        };
        let mut file = tokio::fs::File::open(&snapshot.snapshot.path).await.map_err(|e| NetworkError::new(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::SnapshotChunk>(4);
        let target = self.target;
        let reader = async move {
            if tx.send(head).await.is_err() {
                return;
            }
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        let chunk = pb::SnapshotChunk { payload: Some(pb::snapshot_chunk::Payload::Data(buf.into())) };
                        if tx.send(chunk).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target, error = %e, "reading snapshot file to send");
                        return;
                    }
                }
            }
        };
        tokio::spawn(reader);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|c| c);
        let mut req = tonic::Request::new(stream);
        set_cluster_id(&mut req, self.cluster_id);
        let call = client.install_snapshot(req);
        let resp = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = call => r.map_err(|s| NetworkError::new(&s))?.into_inner(),
        };
        let vote = vote_from_pb(resp.vote.as_ref()).map_err(|e| NetworkError::new(&e))?;
        Ok(SnapshotResponse::new(vote))
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let msg = pb::TransferLeaderRequest {
            from_leader: Some(vote_to_pb(req.from_leader())),
            to_node_id: *req.to_node_id(),
            last_log_id: req.last_log_id().map(log_id_to_pb),
        };
        let resp = self
            .client()?
            .transfer_leader(peer_request(self.cluster_id, msg, option.hard_ttl()))
            .await
            .map_err(rpc_error)?
            .into_inner();
        transfer_reply_from_pb(resp).map_err(decode_error)
    }
}

fn transfer_reply_from_pb(r: pb::TransferLeaderReply) -> std::io::Result<TransferLeaderResponse<TypeConfig>> {
    use openraft::raft::TransferLeaderError;
    if let (Some(e), Some(a)) = (&r.vote_changed_expected, &r.vote_changed_actual) {
        return Ok(Err(TransferLeaderError::VoteChanged {
            expected: vote_from_pb(Some(e))?,
            actual: vote_from_pb(Some(a))?,
        }));
    }
    if r.log_not_flushed {
        return Ok(Err(TransferLeaderError::LogNotFlushed {
            expected: r.log_expected.as_ref().map(log_id_from_pb),
            actual: r.log_actual.as_ref().map(log_id_from_pb),
        }));
    }
    Ok(Ok(()))
}

pub fn transfer_reply_to_pb(r: &TransferLeaderResponse<TypeConfig>) -> pb::TransferLeaderReply {
    use openraft::raft::TransferLeaderError;
    match r {
        Ok(()) => pb::TransferLeaderReply::default(),
        Err(TransferLeaderError::VoteChanged { expected, actual }) => pb::TransferLeaderReply {
            vote_changed_expected: Some(vote_to_pb(expected)),
            vote_changed_actual: Some(vote_to_pb(actual)),
            ..Default::default()
        },
        Err(TransferLeaderError::LogNotFlushed { expected, actual }) => pb::TransferLeaderReply {
            log_not_flushed: true,
            log_expected: expected.as_ref().map(log_id_to_pb),
            log_actual: actual.as_ref().map(log_id_to_pb),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_peers_need_a_peer_ca() {
        let err = ChannelPool::default().get("https://127.0.0.1:2380").expect_err("no TLS settings");
        assert_eq!(err, "https:// needs --peer-trusted-ca-file");
        assert!(ChannelPool::default().get("http://127.0.0.1:2380").is_ok());
    }
}
