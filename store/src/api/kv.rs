//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use capstan_proto::etcdserverpb::kv_server::Kv;
use capstan_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use capstan_proto::raft::{store_request::Request as Req, store_response::Response as Resp};
use tonic::{Request, Response, Status};

use super::write;
use crate::error::Error;
use crate::mvcc::txn::{validate_put, validate_txn};
use crate::server::member::Member;

pub struct KvService {
    member: Arc<Member>,
}

impl KvService {
    pub fn new(member: Arc<Member>) -> Self {
        KvService { member }
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let r = req.into_inner();
        if r.key.is_empty() {
            return Err(Error::EmptyKey.into());
        }
        if !r.serializable {
            self.member.read_barrier().await?;
        }
        let mut resp = self.member.mvcc.range(&r)?;
        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
        resp.header = Some(self.member.header(rev));
        Ok(Response::new(resp))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let p = req.into_inner();
        validate_put(&p)?;
        let r = write(&self.member, Req::Put(p), |r| if let Resp::Put(p) = r { Some(p) } else { None }).await?;
        Ok(Response::new(r))
    }

    async fn delete_range(&self, req: Request<DeleteRangeRequest>) -> Result<Response<DeleteRangeResponse>, Status> {
        let d = req.into_inner();
        if d.key.is_empty() {
            return Err(Error::EmptyKey.into());
        }
        let r = write(&self.member, Req::DeleteRange(d), |r| if let Resp::DeleteRange(d) = r { Some(d) } else { None })
            .await?;
        Ok(Response::new(r))
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let t = req.into_inner();
        validate_txn(&t)?;
        let r = write(&self.member, Req::Txn(t), |r| if let Resp::Txn(t) = r { Some(t) } else { None }).await?;
        Ok(Response::new(r))
    }

    async fn compact(&self, req: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        // Compaction runs inside the apply, so a physical compaction has finished on return.
        let c = req.into_inner();
        let r = write(&self.member, Req::Compaction(c), |r| if let Resp::Compaction(c) = r { Some(c) } else { None })
            .await?;
        Ok(Response::new(r))
    }
}
