//! Watchers of the key set's prefix. Each keeps one watch open and, when the
//! stream breaks or goes quiet, resumes on the next member from the last
//! revision it saw plus one, as etcd's clients do. Everything received is
//! kept for the watch checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_proto::etcdserverpb::watch_client::WatchClient;
use capstan_proto::etcdserverpb::watch_request::RequestUnion;
use capstan_proto::etcdserverpb::{WatchCreateRequest, WatchProgressRequest, WatchRequest};
use capstan_proto::mvccpb::event::EventType;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::client::prefix_end;
use super::history::{Event, WatchLog};
use super::members::channel;
use super::workload::PREFIX;

/// A stream silent this long gets a progress request; silent twice as long, it is abandoned.
const QUIET: Duration = Duration::from_secs(3);

/// Watches from `log.start_revision` until `done` carries a revision this
/// watcher has seen everything up to. The log is shared so that what was
/// received survives the task being stopped.
pub async fn run(urls: Vec<String>, log: Arc<Mutex<WatchLog>>, mut done: watch::Receiver<Option<i64>>) {
    let (mut member, mut next) = {
        let l = lock(&log);
        (l.watcher as usize, l.start_revision)
    };
    loop {
        let url = &urls[member % urls.len()];
        match stream_from(url, next, &log, &mut done).await {
            Ok(()) => return,
            Err(why) => {
                let mut l = lock(&log);
                l.reconnects += 1;
                next = l.events.last().map_or(l.start_revision, |e| e.revision + 1);
                l.breaks.push(why);
            }
        }
        member += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lock(log: &Mutex<WatchLog>) -> std::sync::MutexGuard<'_, WatchLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One watch stream: Ok when finished, Err why it broke.
async fn stream_from(
    url: &str,
    start: i64,
    log: &Mutex<WatchLog>,
    done: &mut watch::Receiver<Option<i64>>,
) -> Result<(), String> {
    let ch = channel(url).map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel(4);
    let create = WatchCreateRequest {
        key: PREFIX.as_bytes().to_vec().into(),
        range_end: prefix_end(PREFIX).into(),
        start_revision: start,
        ..Default::default()
    };
    tx.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) })
        .await
        .map_err(|e| e.to_string())?;
    let opened = tokio::time::timeout(QUIET, WatchClient::new(ch).watch(ReceiverStream::new(rx))).await;
    let mut stream = opened.map_err(|_| "no answer to the watch".to_string())?.map_err(|e| e.to_string())?.into_inner();
    // The highest revision this stream has promised everything up to.
    let mut progress = start - 1;
    let mut quiet_periods = 0;
    loop {
        if done.borrow().is_some_and(|target| progress >= target) {
            return Ok(());
        }
        let msg = tokio::select! {
            m = tokio::time::timeout(QUIET, stream.next()) => m,
            _ = done.changed() => continue,
        };
        let resp = match msg {
            Err(_) => {
                quiet_periods += 1;
                if quiet_periods >= 2 {
                    return Err("stream quiet".into());
                }
                let req = WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) };
                tx.send(req).await.map_err(|e| e.to_string())?;
                continue;
            }
            Ok(None) => return Err("stream ended".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(resp))) => resp,
        };
        quiet_periods = 0;
        if resp.created {
            // Its header is the store's revision now; the events from `start` follow it.
            continue;
        }
        if resp.canceled {
            return Err(format!("watch canceled: {} (compact revision {})", resp.cancel_reason, resp.compact_revision));
        }
        let mut l = lock(log);
        for e in &resp.events {
            let Some(kv) = &e.kv else { continue };
            let value = (e.r#type() == EventType::Put).then(|| String::from_utf8_lossy(&kv.value).into_owned());
            l.events.push(Event {
                revision: kv.mod_revision,
                key: String::from_utf8_lossy(&kv.key).into_owned(),
                value,
            });
        }
        // A response's header revision covers its events; a response
        // without events (progress) promises everything up to its revision.
        let header = resp.header.map(|h| h.revision).unwrap_or_default();
        progress =
            progress.max(if resp.events.is_empty() { header } else { l.events.last().map_or(0, |e| e.revision) });
    }
}
