//! Keys, values and the KV requests the workloads build from them.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use capstan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::request_op::Request;
use capstan_proto::etcdserverpb::{Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, ResponseHeader};
use capstan_proto::mvccpb::KeyValue;
use rand::RngCore;
use rand::rngs::SmallRng;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::connections;

/// Puts in flight at once while preloading.
const PRELOAD_WORKERS: usize = 32;

/// `prefix` followed by `n` zero-padded to `size` bytes in all (longer if `n` needs more digits).
pub fn padded_key(prefix: &str, n: u64, size: usize) -> Bytes {
    Bytes::from(format!("{prefix}{n:0width$}", width = size.saturating_sub(prefix.len())))
}

pub fn random_bytes(rng: &mut SmallRng, len: usize) -> Bytes {
    let mut bytes = vec![0; len];
    rng.fill_bytes(&mut bytes);
    Bytes::from(bytes)
}

/// etcd's range end for "every key starting with `prefix`": the prefix with
/// its last byte incremented, after dropping trailing 0xff bytes.
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    // No byte can be incremented: "\0" means to the end of the keyspace.
    Bytes::from_static(b"\0")
}

/// Puts `key`, returning the revision it was written at.
pub async fn put(kv: &mut KvClient<Channel>, key: Bytes, value: Bytes) -> anyhow::Result<i64> {
    let response = kv.put(PutRequest { key, value, ..Default::default() }).await?.into_inner();
    revision(response.header)
}

/// The key-value of `key`, if it exists.
pub async fn get(kv: &mut KvClient<Channel>, key: Bytes, serializable: bool) -> anyhow::Result<Option<KeyValue>> {
    let response = kv.range(RangeRequest { key, serializable, ..Default::default() }).await?.into_inner();
    Ok(response.kvs.into_iter().next())
}

pub fn revision(header: Option<ResponseHeader>) -> anyhow::Result<i64> {
    header.map(|h| h.revision).context("response without a header")
}

/// Compares the mod_revision of `key` (0 when it does not exist) with `revision`.
pub fn mod_revision(key: Bytes, result: CompareResult, revision: i64) -> Compare {
    Compare {
        result: result as i32,
        target: CompareTarget::Mod as i32,
        key,
        range_end: Bytes::new(),
        target_union: Some(TargetUnion::ModRevision(revision)),
    }
}

pub fn put_op(key: Bytes, value: Bytes) -> RequestOp {
    RequestOp { request: Some(Request::RequestPut(PutRequest { key, value, ..Default::default() })) }
}

pub fn get_op(key: Bytes) -> RequestOp {
    RequestOp { request: Some(Request::RequestRange(RangeRequest { key, ..Default::default() })) }
}

pub fn delete_op(key: Bytes) -> RequestOp {
    RequestOp { request: Some(Request::RequestDeleteRange(DeleteRangeRequest { key, ..Default::default() })) }
}

/// Writes every key-value before the measuring starts; returns the revision of each, in order.
pub async fn preload(channels: &[Channel], items: Vec<(Bytes, Bytes)>) -> anyhow::Result<Vec<i64>> {
    let items = Arc::new(items);
    let workers = PRELOAD_WORKERS.min(items.len());
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        let items = items.clone();
        let mut kv = KvClient::new(connections::for_client(channels, worker));
        tasks.spawn(async move {
            let mut revisions = Vec::new();
            for (i, (key, value)) in items.iter().enumerate().skip(worker).step_by(workers) {
                let revision = put(&mut kv, key.clone(), value.clone()).await.context("preloading")?;
                revisions.push((i, revision));
            }
            anyhow::Ok(revisions)
        });
    }
    let mut revisions = vec![0; items.len()];
    while let Some(done) = tasks.join_next().await {
        for (i, revision) in done.context("a preload task failed")?? {
            revisions[i] = revision;
        }
    }
    Ok(revisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_to_their_size() {
        assert_eq!(padded_key("", 42, 16), Bytes::from_static(b"0000000000000042"));
        assert_eq!(padded_key("cas-", 7, 8), Bytes::from_static(b"cas-0007"));
        assert_eq!(padded_key("k", 12345, 3), Bytes::from_static(b"k12345"));
    }

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"/fanout/"), Bytes::from_static(b"/fanout0"));
        assert_eq!(prefix_end(b"a\xff\xff"), Bytes::from_static(b"b"));
        assert_eq!(prefix_end(b"\xff"), Bytes::from_static(b"\0"));
    }
}
