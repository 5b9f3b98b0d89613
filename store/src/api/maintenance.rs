//! The Maintenance service: status, alarms, defragment, hashes, snapshot
//! stream and leader transfer.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use capstan_proto::etcdserverpb::alarm_request::AlarmAction;
use capstan_proto::etcdserverpb::maintenance_server::Maintenance;
use capstan_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest, HashKvResponse, HashRequest,
    HashResponse, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest,
    StatusResponse,
};
use capstan_proto::raft::{store_request::Request as Req, store_response::Response as Resp};
use futures::Stream;
use openraft::async_runtime::WatchReceiver;
use tokio::io::AsyncReadExt;
use tonic::{Request, Response, Status};

use super::{ETCD_VERSION, write};
use crate::error::Error;
use crate::raft::state_machine::build_to;
use crate::server::member::Member;

/// etcd sends snapshots in 32 KiB messages.
const SNAPSHOT_CHUNK: usize = 32 * 1024;

pub struct MaintenanceService {
    member: Arc<Member>,
    snapshot_dir: crate::raft::snapshot::SnapshotDir,
}

impl MaintenanceService {
    pub fn new(member: Arc<Member>, snapshot_dir: crate::raft::snapshot::SnapshotDir) -> Self {
        MaintenanceService { member, snapshot_dir }
    }

    fn header(&self) -> Option<capstan_proto::etcdserverpb::ResponseHeader> {
        Some(self.member.header(self.member.mvcc.current_revision()))
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let r = req.into_inner();
        if r.action() == AlarmAction::Get {
            let alarms = self.member.mvcc.applied_state().alarms;
            return Ok(Response::new(AlarmResponse { header: self.header(), alarms }));
        }
        let a = write(&self.member, Req::Alarm(r), |r| if let Resp::Alarm(a) = r { Some(a) } else { None }).await?;
        Ok(Response::new(a))
    }

    async fn status(&self, _req: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let m = self.member.raft.metrics().borrow_watched().clone();
        let voters: std::collections::BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
        let db_size = self.member.mvcc.backend().size() as i64;
        let mut errors = vec![];
        if m.current_leader.is_none() {
            errors.push(Error::NoLeader.to_string());
        }
        Ok(Response::new(StatusResponse {
            header: self.header(),
            version: ETCD_VERSION.to_string(),
            db_size,
            leader: m.current_leader.unwrap_or(0),
            raft_index: m.last_log_index.unwrap_or(0),
            raft_term: m.current_term,
            raft_applied_index: m.last_applied.map_or(0, |l| l.index),
            errors,
            db_size_in_use: db_size,
            is_learner: !voters.contains(&self.member.id),
            storage_version: String::new(),
            db_size_quota: 0,
        }))
    }

    async fn defragment(&self, _req: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        let backend = self.member.mvcc.backend().clone();
        tokio::task::spawn_blocking(move || backend.defragment())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(DefragmentResponse { header: self.header() }))
    }

    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, _, _) = self.member.mvcc.hash_kv(0)?;
        Ok(Response::new(HashResponse { header: self.header(), hash }))
    }

    async fn hash_kv(&self, req: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        let (hash, compact_revision, hash_revision) = self.member.mvcc.hash_kv(req.into_inner().revision)?;
        Ok(Response::new(HashKvResponse { header: self.header(), hash, compact_revision, hash_revision }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(&self, _req: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        let path = self.snapshot_dir.temp_path();
        let mvcc = self.member.mvcc.clone();
        let build_path = path.clone();
        tokio::task::spawn_blocking(move || build_to(&mvcc, &build_path))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("building snapshot: {e}")))?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| Status::internal(e.to_string()))?;
        // Unlinked at once: the open handle keeps the data until the stream ends.
        let _ = tokio::fs::remove_file(&path).await;
        let total = file.metadata().await.map_err(|e| Status::internal(e.to_string()))?.len();
        let header = self.header();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                let n = match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(format!("reading snapshot: {e}")))).await;
                        return;
                    }
                };
                buf.truncate(n);
                sent += n as u64;
                let msg = SnapshotResponse {
                    header,
                    remaining_bytes: total - sent,
                    blob: buf.into(),
                    version: ETCD_VERSION.to_string(),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn move_leader(&self, req: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        let target = req.into_inner().target_id;
        if !self.member.is_leader() {
            return Err(Error::NotLeader.into());
        }
        if !self.member.membership().voter_ids().any(|id| id == target) {
            return Err(Error::BadLeaderTransferee.into());
        }
        if target != self.member.id {
            self.member.raft.trigger().transfer_leader(target).await.map_err(|_| Error::Stopped)?;
            let timeout = Some(Duration::from_millis(self.member.timing.election_ms * 5));
            self.member
                .raft
                .wait(timeout)
                .metrics(|m| m.current_leader == Some(target), "leader moved")
                .await
                .map_err(|_| Error::Timeout)?;
        }
        Ok(Response::new(MoveLeaderResponse { header: self.header() }))
    }
}
