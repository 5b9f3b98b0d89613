//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use capstan_proto::etcdserverpb::kv_server::Kv;
use capstan_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use capstan_proto::raft::{store_request::Request as Req, store_response::Response as Resp};
use tonic::{Request, Response, Status};

use super::proposal;
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

fn unexpected() -> Status {
    Error::Storage("unexpected response kind".into()).into()
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
        match self.member.propose(proposal(Req::Put(p))?).await?.response {
            Some(Resp::Put(mut r)) => {
                r.header = Some(self.member.header(r.header.map_or(0, |h| h.revision)));
                Ok(Response::new(r))
            }
            _ => Err(unexpected()),
        }
    }

    async fn delete_range(&self, req: Request<DeleteRangeRequest>) -> Result<Response<DeleteRangeResponse>, Status> {
        let d = req.into_inner();
        if d.key.is_empty() {
            return Err(Error::EmptyKey.into());
        }
        match self.member.propose(proposal(Req::DeleteRange(d))?).await?.response {
            Some(Resp::DeleteRange(mut r)) => {
                r.header = Some(self.member.header(r.header.map_or(0, |h| h.revision)));
                Ok(Response::new(r))
            }
            _ => Err(unexpected()),
        }
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let t = req.into_inner();
        validate_txn(&t)?;
        match self.member.propose(proposal(Req::Txn(t))?).await?.response {
            Some(Resp::Txn(mut r)) => {
                r.header = Some(self.member.header(r.header.map_or(0, |h| h.revision)));
                Ok(Response::new(r))
            }
            _ => Err(unexpected()),
        }
    }

    async fn compact(&self, req: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        // Compaction runs inside the apply, so a physical compaction has finished on return.
        match self.member.propose(proposal(Req::Compaction(req.into_inner()))?).await?.response {
            Some(Resp::Compaction(mut r)) => {
                r.header = Some(self.member.header(r.header.map_or(0, |h| h.revision)));
                Ok(Response::new(r))
            }
            _ => Err(unexpected()),
        }
    }
}
