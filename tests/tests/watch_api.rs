//! The Watch and KV APIs through a gRPC client (what etcd client libraries
//! do, beyond etcdctl): many watches on one stream, filters, prev_kv,
//! progress requests, cancel, a compacted start, and a watcher that never
//! reads while writes go on.

use std::time::Duration;

use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::watch_client::WatchClient;
use capstan_proto::etcdserverpb::watch_create_request::FilterType;
use capstan_proto::etcdserverpb::watch_request::RequestUnion;
use capstan_proto::etcdserverpb::{
    CompactionRequest, PutRequest, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
    WatchResponse,
};
use capstan_tests::store_cluster::Cluster;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

async fn channel(c: &Cluster, i: usize) -> Channel {
    Channel::from_shared(c.members[i].client_url())
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn put(kv: &mut KvClient<Channel>, k: &str, v: &str) -> i64 {
    let r = kv
        .put(PutRequest {
            key: k.as_bytes().to_vec().into(),
            value: v.as_bytes().to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("put {k}: {e}"));
    r.into_inner().header.map(|h| h.revision).unwrap_or_default()
}

fn create(key: &str, end: &str, start: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.as_bytes().to_vec().into(),
            range_end: end.as_bytes().to_vec().into(),
            start_revision: start,
            ..Default::default()
        })),
    }
}

async fn next(stream: &mut Streaming<WatchResponse>) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no watch response within 10 s"))
        .unwrap_or_else(|| panic!("watch stream ended"))
        .unwrap_or_else(|e| panic!("watch stream failed: {e}"))
}

async fn open(ch: &Channel) -> (mpsc::Sender<WatchRequest>, Streaming<WatchResponse>) {
    let (tx, rx) = mpsc::channel(16);
    let stream = WatchClient::new(ch.clone())
        .watch(ReceiverStream::new(rx))
        .await
        .unwrap_or_else(|e| panic!("watch: {e}"))
        .into_inner();
    (tx, stream)
}

fn keys(r: &WatchResponse) -> Vec<String> {
    r.events.iter().filter_map(|e| e.kv.as_ref()).map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_share_a_stream_and_keep_etcds_rules() {
    let c = Cluster::start(1, &[]);
    let ch = channel(&c, 0).await;
    let mut kv = KvClient::new(ch.clone());
    let (tx, mut stream) = open(&ch).await;

    // --- two watches on one stream get ids 0 and 1, created first
    tx.send(create("a", "b", 0)).await.unwrap_or_else(|e| panic!("{e}"));
    let created = next(&mut stream).await;
    assert!(created.created && created.watch_id == 0);
    let mut only_deletes = create("a", "", 0);
    if let Some(RequestUnion::CreateRequest(c)) = &mut only_deletes.request_union {
        c.filters = vec![FilterType::Noput as i32];
        c.prev_kv = true;
    }
    tx.send(only_deletes).await.unwrap_or_else(|e| panic!("{e}"));
    let created = next(&mut stream).await;
    assert!(created.created && created.watch_id == 1);

    // --- events go to the watches whose range and filters match
    let rev = put(&mut kv, "a", "1").await;
    let r = next(&mut stream).await;
    assert_eq!((r.watch_id, keys(&r)), (0, vec!["a".to_string()]));
    assert_eq!(r.header.map(|h| h.revision), Some(rev));
    let mut kv2 = kv.clone();
    kv2.delete_range(capstan_proto::etcdserverpb::DeleteRangeRequest {
        key: b"a".to_vec().into(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut seen = [next(&mut stream).await, next(&mut stream).await];
    seen.sort_by_key(|r| r.watch_id);
    assert_eq!(seen[0].watch_id, 0);
    assert_eq!(seen[1].watch_id, 1, "the NOPUT watch sees the delete");
    let prev = seen[1].events[0].prev_kv.as_ref().map(|kv| kv.value.to_vec());
    assert_eq!(prev, Some(b"1".to_vec()), "prev_kv on the delete");

    // --- a progress request answers with the revision every watch has reached
    tx.send(WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p = next(&mut stream).await;
    assert_eq!(p.watch_id, -1);
    assert!(p.events.is_empty());
    assert_eq!(p.header.map(|h| h.revision), Some(rev + 1));

    // --- cancel: a canceled response, then nothing more for that watch
    tx.send(WatchRequest { request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest { watch_id: 0 })) })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = next(&mut stream).await;
    assert!(r.canceled && r.watch_id == 0);

    // --- a start below the compacted revision is canceled with compact_revision
    for i in 0..5 {
        put(&mut kv, "z", &i.to_string()).await;
    }
    let rev = put(&mut kv, "z", "last").await;
    kv.compact(CompactionRequest { revision: rev - 1, physical: true }).await.unwrap_or_else(|e| panic!("{e}"));
    tx.send(create("z", "", 2)).await.unwrap_or_else(|e| panic!("{e}"));
    let created = next(&mut stream).await;
    assert!(created.created);
    let r = next(&mut stream).await;
    assert!(r.canceled, "{r:?}");
    assert_eq!(r.compact_revision, rev - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_does_not_stall_writes() {
    let c = Cluster::start(1, &[]);
    let ch = channel(&c, 0).await;
    let mut kv = KvClient::new(ch.clone());
    let (tx, mut stream) = open(&ch).await;
    tx.send(create("slow/", "slow0", 0)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(next(&mut stream).await.created);
    let value = "v".repeat(2048);
    // --- far more than the stream's buffers and the hub's ring hold, unread
    let first = put(&mut kv, "slow/0000", &value).await;
    let writes = tokio::time::timeout(Duration::from_secs(120), async {
        let mut last = first;
        for i in 1..6000 {
            last = put(&mut kv, &format!("slow/{i:04}"), &value).await;
        }
        last
    })
    .await;
    let last = writes.unwrap_or_else(|_| panic!("writes stalled behind an unread watch"));
    // --- the watcher then delivers every revision, in order, exactly once
    let mut expect = first;
    while expect <= last {
        let r = next(&mut stream).await;
        for e in &r.events {
            let rev = e.kv.as_ref().map(|kv| kv.mod_revision).unwrap_or_default();
            assert_eq!(rev, expect, "events out of order or missing");
            expect += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watches_asking_for_it_get_progress_notifications() {
    let c = Cluster::start(1, &["--experimental-watch-progress-notify-interval=1s"]);
    let ch = channel(&c, 0).await;
    let mut kv = KvClient::new(ch.clone());
    let rev = put(&mut kv, "p", "1").await;
    let (tx, mut stream) = open(&ch).await;
    let mut req = create("p", "", 0);
    if let Some(RequestUnion::CreateRequest(c)) = &mut req.request_union {
        c.progress_notify = true;
    }
    tx.send(req).await.unwrap_or_else(|e| panic!("{e}"));
    let created = next(&mut stream).await;
    assert!(created.created);
    let n = next(&mut stream).await;
    assert_eq!(n.watch_id, created.watch_id);
    assert!(n.events.is_empty() && !n.canceled && !n.created);
    assert_eq!(n.header.map(|h| h.revision), Some(rev));
}

/// One HTTP/1.1 GET on the client port.
fn http_get(c: &Cluster, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", c.members[0].client_port)).unwrap_or_else(|e| panic!("{e}"));
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap_or_else(|e| panic!("{e}"));
    out
}

#[test]
fn health_metrics_and_version_are_served_over_http() {
    let c = Cluster::start(1, &[]);
    let health = http_get(&c, "/health");
    assert!(health.starts_with("HTTP/1.1 200") && health.contains(r#"{"health":"true""#), "{health}");
    let metrics = http_get(&c, "/metrics");
    for name in [
        "capstan_raft_term",
        "capstan_raft_leader_changes_total",
        "capstan_raft_applied_index",
        "capstan_raft_proposals_total",
        "capstan_disk_wal_fsync_duration_seconds_bucket",
        "capstan_mvcc_db_size_bytes",
        "capstan_watchers",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    let version = http_get(&c, "/version");
    assert!(version.contains(r#""etcdserver":"3.5.21""#), "{version}");
}
