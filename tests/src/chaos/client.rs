//! One etcd API client of the workload: the requests it sends, each with a
//! deadline, and what a failure means for the history. It talks to one member
//! at a time and moves to the next after a failure, as etcd's clients do.

use std::time::Duration;

use capstan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::lease_client::LeaseClient;
use capstan_proto::etcdserverpb::request_op::Request;
use capstan_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp,
    ResponseHeader, TxnRequest,
};
use tonic::transport::Channel;

use super::members::channel;

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// The server said no and changed nothing (e.g. lease not found).
    Definite(tonic::Status),
    /// No answer, or one that does not say whether the request was applied.
    Unknown(String),
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Failure {
        use tonic::Code::*;
        match s.code() {
            InvalidArgument | NotFound | FailedPrecondition | OutOfRange | AlreadyExists | PermissionDenied
            | Unauthenticated | ResourceExhausted => Failure::Definite(s),
            _ => Failure::Unknown(format!("{:?}: {}", s.code(), s.message())),
        }
    }
}

pub struct Client {
    urls: Vec<String>,
    current: usize,
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    timeout: Duration,
}

fn revision(h: Option<ResponseHeader>) -> i64 {
    h.map(|h| h.revision).unwrap_or_default()
}

impl Client {
    /// A client that starts at member `first` of `urls`.
    pub fn new(urls: Vec<String>, first: usize, timeout: Duration) -> anyhow::Result<Client> {
        let ch = channel(&urls[first % urls.len()])?;
        Ok(Client {
            current: first % urls.len(),
            kv: KvClient::new(ch.clone()),
            lease: LeaseClient::new(ch),
            urls,
            timeout,
        })
    }

    /// Moves to the next member, after a failure.
    pub fn rotate(&mut self) {
        self.current = (self.current + 1) % self.urls.len();
        if let Ok(ch) = channel(&self.urls[self.current]) {
            self.kv = KvClient::new(ch.clone());
            self.lease = LeaseClient::new(ch);
        }
    }

    fn request<T>(&self, body: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(body);
        r.set_timeout(self.timeout);
        r
    }

    /// Bounds a call by the deadline even when the connection hangs.
    async fn timed<T>(&self, f: impl Future<Output = Result<T, tonic::Status>>) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout + Duration::from_millis(200), f).await {
            Ok(r) => r.map_err(Failure::from),
            Err(_) => Err(Failure::Unknown("no response before the deadline".into())),
        }
    }

    /// A linearizable read: (value, mod_revision, header revision).
    pub async fn get(&mut self, key: &str) -> Result<(Option<String>, i64, i64), Failure> {
        let req = self.request(RangeRequest { key: key.as_bytes().to_vec().into(), ..Default::default() });
        let mut kv = self.kv.clone();
        let r = self.timed(kv.range(req)).await?.into_inner();
        let (value, modrev) = match r.kvs.first() {
            Some(kv) => (Some(String::from_utf8_lossy(&kv.value).into_owned()), kv.mod_revision),
            None => (None, 0),
        };
        Ok((value, modrev, revision(r.header)))
    }

    /// The key set's contents at one revision, read linearizably.
    pub async fn get_prefix(&mut self, prefix: &str) -> Result<(Vec<(String, String)>, i64), Failure> {
        let req = self.request(RangeRequest {
            key: prefix.as_bytes().to_vec().into(),
            range_end: prefix_end(prefix).into(),
            ..Default::default()
        });
        let mut kv = self.kv.clone();
        let r = self.timed(kv.range(req)).await?.into_inner();
        let kvs = r
            .kvs
            .iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), String::from_utf8_lossy(&kv.value).into_owned()))
            .collect();
        Ok((kvs, revision(r.header)))
    }

    pub async fn put(&mut self, key: &str, value: &str, lease: i64) -> Result<i64, Failure> {
        let req = self.request(PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            lease,
            ..Default::default()
        });
        let mut kv = self.kv.clone();
        Ok(revision(self.timed(kv.put(req)).await?.into_inner().header))
    }

    /// (deleted, revision)
    pub async fn delete(&mut self, key: &str) -> Result<(i64, i64), Failure> {
        let req = self.request(DeleteRangeRequest { key: key.as_bytes().to_vec().into(), ..Default::default() });
        let mut kv = self.kv.clone();
        let r = self.timed(kv.delete_range(req)).await?.into_inner();
        Ok((r.deleted, revision(r.header)))
    }

    /// Puts `value` if the key holds `expected` (`None`: does not exist): (succeeded, revision).
    pub async fn cas(&mut self, key: &str, expected: Option<&str>, value: &str) -> Result<(bool, i64), Failure> {
        let compare = match expected {
            Some(v) => Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Value as i32,
                key: key.as_bytes().to_vec().into(),
                target_union: Some(TargetUnion::Value(v.as_bytes().to_vec().into())),
                ..Default::default()
            },
            None => Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Create as i32,
                key: key.as_bytes().to_vec().into(),
                target_union: Some(TargetUnion::CreateRevision(0)),
                ..Default::default()
            },
        };
        let put = PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            ..Default::default()
        };
        let req = self.request(TxnRequest {
            compare: vec![compare],
            success: vec![RequestOp { request: Some(Request::RequestPut(put)) }],
            failure: vec![],
        });
        let mut kv = self.kv.clone();
        let r = self.timed(kv.txn(req)).await?.into_inner();
        Ok((r.succeeded, revision(r.header)))
    }

    pub async fn grant(&mut self, ttl: i64) -> Result<i64, Failure> {
        let req = self.request(LeaseGrantRequest { ttl, id: 0 });
        let mut lease = self.lease.clone();
        Ok(self.timed(lease.lease_grant(req)).await?.into_inner().id)
    }

    pub async fn revoke(&mut self, id: i64) -> Result<i64, Failure> {
        let req = self.request(LeaseRevokeRequest { id });
        let mut lease = self.lease.clone();
        Ok(revision(self.timed(lease.lease_revoke(req)).await?.into_inner().header))
    }
}

/// The range end that makes `key` a prefix (etcd's `--prefix`).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
