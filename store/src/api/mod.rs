//! etcd's v3 gRPC services over a running member, plus `/health`,
//! `/metrics` and `/version` over HTTP on the same client port.

pub mod authority;
pub mod cluster;
pub mod http;

pub mod kv;
pub mod lease;
pub mod maintenance;

use capstan_proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse,
    ResponseHeader, TxnResponse,
};
use capstan_proto::raft::{StoreRequest, store_request, store_response};
use prost::Message;
use tonic::Status;

use crate::error::{Error, Result};
use crate::server::member::Member;

/// etcd's `--max-request-bytes` default: a proposal larger than this is refused.
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// gRPC receive limit: the request limit plus etcd's 512 KiB of slack.
pub const MAX_RECV_BYTES: usize = MAX_REQUEST_BYTES + 512 * 1024;

/// The version reported to clients: a 3.5 release recent enough that clients
/// (kube-apiserver among them) enable watch progress requests.
pub const ETCD_VERSION: &str = "3.5.21";
pub const ETCD_CLUSTER_VERSION: &str = "3.5.0";

pub fn proposal(req: store_request::Request) -> Result<StoreRequest> {
    let req = StoreRequest { request: Some(req) };
    if req.encoded_len() > MAX_REQUEST_BYTES {
        return Err(Error::RequestTooLarge);
    }
    Ok(req)
}

/// A response whose header the serving member fills in.
pub trait WithHeader {
    fn header_slot(&mut self) -> &mut Option<ResponseHeader>;
}

macro_rules! with_header {
    ($($t:ty),*) => {
        $(impl WithHeader for $t {
            fn header_slot(&mut self) -> &mut Option<ResponseHeader> {
                &mut self.header
            }
        })*
    };
}

with_header!(
    PutResponse,
    DeleteRangeResponse,
    TxnResponse,
    CompactionResponse,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    AlarmResponse
);

/// Proposes a write and returns its response, of the kind `pick` selects,
/// with this member's header at the revision the write produced.
pub async fn write<T: WithHeader>(
    member: &Member,
    req: store_request::Request,
    pick: fn(store_response::Response) -> Option<T>,
) -> Result<T, Status> {
    let resp = member.propose(proposal(req)?).await?;
    let mut out = resp.response.and_then(pick).ok_or_else(|| Error::Storage("unexpected response kind".into()))?;
    let revision = out.header_slot().as_ref().map_or(0, |h| h.revision);
    *out.header_slot() = Some(member.header(revision));
    Ok(out)
}
