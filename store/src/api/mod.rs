//! etcd's v3 gRPC services over a running member, plus `/health`,
//! `/metrics` and `/version` over HTTP on the same client port.

pub mod authority;
pub mod cluster;
pub mod http;

pub mod kv;
pub mod lease;
pub mod maintenance;

use capstan_proto::raft::{StoreRequest, store_request};
use prost::Message;

use crate::error::{Error, Result};

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
