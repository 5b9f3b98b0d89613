//! The apiserver's only way to the store: the etcd v3 gRPC API, so the same
//! code runs against capstan's store or etcd. Writes are transactions on
//! `mod_revision`, which is what makes every update optimistic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use capstan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::request_op::Request;
use capstan_proto::etcdserverpb::watch_client::WatchClient;
use capstan_proto::etcdserverpb::watch_request::RequestUnion;
use capstan_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest, WatchCreateRequest,
    WatchProgressRequest, WatchRequest, WatchResponse,
};
use capstan_proto::mvccpb::KeyValue;
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

/// The store's answer when a revision has been compacted away.
const COMPACTED: &str = "mvcc: required revision has been compacted";
/// A unary call that takes longer is given up on and tried elsewhere.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Objects may be up to 3 MiB; lists carry many.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("revision {0} has been compacted")]
    Compacted(i64),
    #[error("store error: {0}")]
    Other(String),
}

/// One stored object: its bytes and the revision that last wrote them.
#[derive(Debug, Clone)]
pub struct Stored {
    pub value: Bytes,
    pub mod_revision: i64,
}

impl Stored {
    fn from_kv(kv: KeyValue) -> (String, Stored) {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        (key, Stored { value: kv.value, mod_revision: kv.mod_revision })
    }
}

/// One page of a prefix read at a fixed revision.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<(String, Stored)>,
    pub revision: i64,
    pub more: bool,
}

/// How a conditional write ended.
#[derive(Debug)]
pub enum Written {
    /// Stored at this revision.
    Done(i64),
    /// The key changed (or appeared, or went) since the expected revision.
    Stale,
}

/// One change under a watched prefix.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: String,
    /// None for a deletion.
    pub value: Option<Bytes>,
    pub revision: i64,
}

/// What a store watch delivers: changes, or "everything up to here is sent".
#[derive(Debug)]
pub enum WatchItem {
    Changes(Vec<Change>),
    Progress(i64),
}

/// TLS to https:// store endpoints: the CA the store's certificate is
/// checked against, and the client certificate and key a store that
/// checks clients (`--client-cert-auth`) asks for.
#[derive(Debug, Clone)]
pub struct StoreTls {
    pub ca_file: PathBuf,
    pub client: Option<(PathBuf, PathBuf)>,
}

impl StoreTls {
    fn client_config(&self) -> Result<ClientTlsConfig, StoreError> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| StoreError::Other(format!("store {what} {}: {e}", path.display())))
        };
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("CA", &self.ca_file)?));
        if let Some((cert, key)) = &self.client {
            config = config.identity(Identity::from_pem(read("client certificate", cert)?, read("client key", key)?));
        }
        Ok(config)
    }
}

/// A client over every store endpoint: calls go to one and move to the next
/// when it is unreachable, so losing a store member costs one retry.
#[derive(Clone)]
pub struct Store {
    channels: Arc<Vec<Channel>>,
    current: Arc<AtomicUsize>,
}

impl Store {
    /// Channels connect lazily: the apiserver starts while the store is
    /// still electing, and requests wait for it.
    pub fn connect(endpoints: &[String], tls: Option<&StoreTls>) -> Result<Store, StoreError> {
        let tls = tls.map(StoreTls::client_config).transpose()?;
        let mut channels = Vec::new();
        for url in endpoints {
            // etcdctl takes bare host:port endpoints too.
            let url = if url.contains("://") { url.clone() } else { format!("http://{url}") };
            let mut endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| StoreError::Other(format!("bad store endpoint {url}: {e}")))?;
            if url.starts_with("https://") {
                let Some(tls) = &tls else {
                    return Err(StoreError::Other(format!(
                        "store endpoint {url} uses TLS: give the CA that signed its certificate (--store-cafile)"
                    )));
                };
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .map_err(|e| StoreError::Other(format!("TLS for store endpoint {url}: {e}")))?;
            }
            let endpoint = endpoint
                .connect_timeout(Duration::from_secs(3))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5));
            channels.push(endpoint.connect_lazy());
        }
        if channels.is_empty() {
            return Err(StoreError::Other("no store endpoints given".into()));
        }
        Ok(Store { channels: Arc::new(channels), current: Arc::new(AtomicUsize::new(0)) })
    }

    fn kv(channel: Channel) -> KvClient<Channel> {
        KvClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE)
    }

    async fn with_kv<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(KvClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.with_channel(|channel| call(Store::kv(channel))).await
    }

    /// Runs `call` on the current endpoint, moving on while endpoints are
    /// unreachable; any other answer is final.
    pub(crate) async fn with_channel<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for attempt in 0..self.channels.len() * 2 {
            let index = start + attempt;
            let channel = self.channels[index % self.channels.len()].clone();
            let outcome = tokio::time::timeout(CALL_TIMEOUT, call(channel))
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("the store did not answer in time")));
            match outcome {
                Ok(reply) => {
                    self.current.store(index % self.channels.len(), Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(status) if retriable(&status) => {
                    last = status.message().to_string();
                    if attempt + 1 >= self.channels.len() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                Err(status) => return Err(classify(status)),
            }
        }
        Err(StoreError::Unavailable(last))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        let reply = self.range(RangeRequest { key: key.as_bytes().to_vec().into(), ..Default::default() }).await?;
        Ok(reply.kvs.into_iter().next().map(|kv| Stored::from_kv(kv).1))
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        let reply = self
            .with_kv(|mut kv| {
                let request = request.clone();
                async move { kv.range(request).await }
            })
            .await?;
        Ok(reply.into_inner())
    }

    /// Keys in `[start, end of prefix)` at `revision` (0: now), at most
    /// `limit` of them (0: all).
    pub async fn list(&self, prefix: &str, start: &str, limit: i64, revision: i64) -> Result<Page, StoreError> {
        let request = RangeRequest {
            key: start.as_bytes().to_vec().into(),
            range_end: prefix_end(prefix.as_bytes()).into(),
            limit,
            revision,
            ..Default::default()
        };
        let reply = self.range(request).await.map_err(|e| match e {
            StoreError::Compacted(_) => StoreError::Compacted(revision),
            other => other,
        })?;
        let revision = reply.header.map(|h| h.revision).unwrap_or_default();
        Ok(Page { items: reply.kvs.into_iter().map(Stored::from_kv).collect(), revision, more: reply.more })
    }

    /// The store's current revision, read linearizably.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        let request =
            RangeRequest { key: Bytes::from_static(b"/registry/"), count_only: true, limit: 1, ..Default::default() };
        let reply = self.range(request).await?;
        Ok(reply.header.map(|h| h.revision).unwrap_or_default())
    }

    /// Writes `value` unconditionally, attached to `lease` (it goes with it).
    pub async fn put_with_lease(&self, key: &str, value: Bytes, lease: i64) -> Result<(), StoreError> {
        let request = PutRequest { key: key.as_bytes().to_vec().into(), value, lease, ..Default::default() };
        self.with_kv(|mut kv| {
            let request = request.clone();
            async move { kv.put(request).await }
        })
        .await?;
        Ok(())
    }

    /// Writes `value` if the key's `mod_revision` is `expected` (0: absent).
    pub async fn put_if(&self, key: &str, value: Bytes, expected: i64) -> Result<Written, StoreError> {
        let put = Request::RequestPut(PutRequest { key: key.as_bytes().to_vec().into(), value, ..Default::default() });
        self.txn_if(key, expected, put).await
    }

    /// Deletes the key if its `mod_revision` is `expected`.
    pub async fn delete_if(&self, key: &str, expected: i64) -> Result<Written, StoreError> {
        let delete = Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..Default::default()
        });
        self.txn_if(key, expected, delete).await
    }

    async fn txn_if(&self, key: &str, expected: i64, then: Request) -> Result<Written, StoreError> {
        let request = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                key: key.as_bytes().to_vec().into(),
                target_union: Some(TargetUnion::ModRevision(expected)),
                ..Default::default()
            }],
            success: vec![RequestOp { request: Some(then) }],
            failure: Vec::new(),
        };
        let reply = self
            .with_kv(|mut kv| {
                let request = request.clone();
                async move { kv.txn(request).await }
            })
            .await?
            .into_inner();
        Ok(if reply.succeeded {
            Written::Done(reply.header.map(|h| h.revision).unwrap_or_default())
        } else {
            Written::Stale
        })
    }

    /// Watches every key under `prefix` from `start_revision`, with progress
    /// notifications on request. The stream ends on the first error.
    pub async fn watch(&self, prefix: &str, start_revision: i64) -> Result<StoreWatch, StoreError> {
        let (requests, outbound) = mpsc::channel(4);
        let create = WatchCreateRequest {
            key: prefix.as_bytes().to_vec().into(),
            range_end: prefix_end(prefix.as_bytes()).into(),
            start_revision,
            ..Default::default()
        };
        requests
            .send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) })
            .await
            .map_err(|_| StoreError::Other("watch request channel closed".into()))?;
        let index = self.current.load(Ordering::Relaxed);
        let channel = self.channels[index % self.channels.len()].clone();
        let mut client = WatchClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
        let stream = match client.watch(tokio_stream::wrappers::ReceiverStream::new(outbound)).await {
            Ok(reply) => reply.into_inner(),
            Err(status) => {
                // The next watch tries the next endpoint.
                self.current.store((index + 1) % self.channels.len(), Ordering::Relaxed);
                return Err(classify(status));
            }
        };
        Ok(StoreWatch { requests, stream, created: false })
    }
}

/// An open store watch.
pub struct StoreWatch {
    requests: mpsc::Sender<WatchRequest>,
    stream: tonic::Streaming<WatchResponse>,
    created: bool,
}

impl StoreWatch {
    /// Asks the store to report how far this watch has been delivered.
    pub async fn request_progress(&self) -> Result<(), StoreError> {
        let request = WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) };
        self.requests.send(request).await.map_err(|_| StoreError::Unavailable("watch closed".into()))
    }

    /// The next changes or progress report; an error ends the watch.
    pub async fn next(&mut self) -> Result<WatchItem, StoreError> {
        loop {
            let reply = match self.stream.message().await {
                Ok(Some(reply)) => reply,
                Ok(None) => return Err(StoreError::Unavailable("the store closed the watch".into())),
                Err(status) => return Err(classify(status)),
            };
            if reply.compact_revision > 0 {
                return Err(StoreError::Compacted(reply.compact_revision));
            }
            if reply.canceled {
                return Err(StoreError::Other(format!("watch canceled: {}", reply.cancel_reason)));
            }
            if reply.created && !self.created {
                self.created = true;
                continue;
            }
            let revision = reply.header.as_ref().map(|h| h.revision).unwrap_or_default();
            if reply.events.is_empty() {
                return Ok(WatchItem::Progress(revision));
            }
            let changes = reply
                .events
                .into_iter()
                .filter_map(|event| {
                    let kv = event.kv?;
                    let deleted = event.r#type == capstan_proto::mvccpb::event::EventType::Delete as i32;
                    Some(Change {
                        key: String::from_utf8_lossy(&kv.key).into_owned(),
                        value: (!deleted).then_some(kv.value),
                        revision: kv.mod_revision,
                    })
                })
                .collect();
            return Ok(WatchItem::Changes(changes));
        }
    }
}

fn retriable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded)
        && !status.message().contains(COMPACTED)
}

fn classify(status: Status) -> StoreError {
    if status.message().contains(COMPACTED) {
        StoreError::Compacted(0)
    } else if retriable(&status) {
        StoreError::Unavailable(status.message().to_string())
    } else {
        StoreError::Other(format!("{:?}: {}", status.code(), status.message()))
    }
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn compaction_is_told_apart_from_unavailability() {
        assert!(matches!(classify(Status::out_of_range(COMPACTED)), StoreError::Compacted(_)));
        assert!(matches!(classify(Status::unavailable("leader lost")), StoreError::Unavailable(_)));
        assert!(matches!(classify(Status::invalid_argument("bad")), StoreError::Other(_)));
    }
}
