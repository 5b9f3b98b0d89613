//! The Lease service: grant, revoke, keep-alive stream, time-to-live, list.

use std::pin::Pin;
use std::sync::Arc;

use capstan_proto::etcdserverpb::lease_server::Lease;
use capstan_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use capstan_proto::raft::{store_request::Request as Req, store_response::Response as Resp};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::write;
use crate::error::Error;
use crate::lease::{MAX_LEASE_TTL, min_ttl};
use crate::server::member::Member;

pub struct LeaseService {
    member: Arc<Member>,
}

impl LeaseService {
    pub fn new(member: Arc<Member>) -> Self {
        LeaseService { member }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(&self, req: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        let mut g = req.into_inner();
        if g.ttl > MAX_LEASE_TTL {
            return Err(Error::LeaseTtlTooLarge.into());
        }
        g.ttl = g.ttl.max(min_ttl(self.member.timing.election_ms));
        if g.id == 0 {
            // Positive ids only, as etcd's; a clash is refused at apply.
            loop {
                let id = (rand::random::<u64>() >> 1) as i64;
                if id != 0 && self.member.mvcc.lease(id).is_none() {
                    g.id = id;
                    break;
                }
            }
        }
        let r = write(&self.member, Req::LeaseGrant(g), |r| if let Resp::LeaseGrant(g) = r { Some(g) } else { None })
            .await?;
        Ok(Response::new(r))
    }

    async fn lease_revoke(&self, req: Request<LeaseRevokeRequest>) -> Result<Response<LeaseRevokeResponse>, Status> {
        let r = req.into_inner();
        let r = write(&self.member, Req::LeaseRevoke(r), |r| if let Resp::LeaseRevoke(r) = r { Some(r) } else { None })
            .await?;
        Ok(Response::new(r))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let member = self.member.clone();
        let inbound = req.into_inner();
        let out = inbound.then(move |item| {
            let member = member.clone();
            async move {
                let id = item?.id;
                // An unknown lease answers TTL 0, not an error, as etcd's does.
                let ttl = member.lease_ttl(id, true).await?;
                let rev = member.mvcc.current_revision();
                Ok(LeaseKeepAliveResponse { header: Some(member.header(rev)), id, ttl })
            }
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let r = req.into_inner();
        let ttl = self.member.lease_ttl(r.id, false).await?;
        let lease = self.member.mvcc.lease(r.id);
        let header = Some(self.member.header(self.member.mvcc.current_revision()));
        let Some(lease) = lease.filter(|_| ttl >= 0) else {
            return Ok(Response::new(LeaseTimeToLiveResponse {
                header,
                id: r.id,
                ttl: -1,
                granted_ttl: 0,
                keys: vec![],
            }));
        };
        let keys = if r.keys { lease.keys } else { vec![] };
        Ok(Response::new(LeaseTimeToLiveResponse { header, id: r.id, ttl, granted_ttl: lease.ttl, keys }))
    }

    async fn lease_leases(&self, _req: Request<LeaseLeasesRequest>) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.member.read_barrier().await?;
        let leases = self.member.mvcc.lease_ids().into_iter().map(|id| LeaseStatus { id }).collect();
        let header = Some(self.member.header(self.member.mvcc.current_revision()));
        Ok(Response::new(LeaseLeasesResponse { header, leases }))
    }
}
