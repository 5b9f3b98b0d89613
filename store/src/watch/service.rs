//! The etcd Watch service: one task per stream reads create, cancel and
//! progress requests; one task per watcher sends its events. All of a
//! stream's responses go through one bounded channel, so a watcher's
//! `created` always precedes its events.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use capstan_proto::etcdserverpb::watch_create_request::FilterType;
use capstan_proto::etcdserverpb::watch_request::RequestUnion;
use capstan_proto::etcdserverpb::watch_server::Watch;
use capstan_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::WatchHub;
use super::watcher::{Outbound, Watcher, WatcherHandle, WatcherSpec};
use crate::mvcc::range::KeyRange;
use crate::server::member::Member;

pub struct WatchService {
    member: Arc<Member>,
    /// The member's hub, or a relay of it on this service's client shard.
    hub: WatchHub,
    progress_every: Duration,
}

impl WatchService {
    pub fn new(member: Arc<Member>, hub: WatchHub, progress_every: Duration) -> Self {
        WatchService { member, hub, progress_every }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<Streaming<WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        let (tx, rx) = mpsc::channel(256);
        let stream = StreamState {
            member: self.member.clone(),
            hub: self.hub.clone(),
            progress_every: self.progress_every,
            out: tx,
            watchers: HashMap::new(),
            next_id: 0,
        };
        tokio::spawn(stream.run(req.into_inner()));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

struct StreamState {
    member: Arc<Member>,
    hub: WatchHub,
    progress_every: Duration,
    out: Outbound,
    watchers: HashMap<i64, WatcherHandle>,
    next_id: i64,
}

impl StreamState {
    async fn run(mut self, mut inbound: Streaming<WatchRequest>) {
        self.member.metrics.watch_streams().inc();
        loop {
            let msg = tokio::select! {
                m = inbound.next() => m,
                _ = self.out.closed() => None,
                _ = self.member.shutdown.cancelled() => None,
            };
            let Some(Ok(req)) = msg else { break };
            let sent = match req.request_union {
                Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
                Some(RequestUnion::CancelRequest(c)) => {
                    // The watcher sends its own `canceled`; an unknown id gets no reply.
                    if let Some(h) = self.watchers.remove(&c.watch_id) {
                        h.cancel.cancel();
                    }
                    true
                }
                Some(RequestUnion::ProgressRequest(_)) => self.progress().await,
                None => true,
            };
            if !sent {
                break;
            }
        }
        for (_, h) in self.watchers.drain() {
            h.cancel.cancel();
        }
        self.member.metrics.watch_streams().dec();
    }

    async fn reply(&self, resp: WatchResponse) -> bool {
        self.out.send(Ok(resp)).await.is_ok()
    }

    async fn create(&mut self, c: WatchCreateRequest) -> bool {
        let key = if c.key.is_empty() { vec![0u8] } else { c.key.to_vec() };
        let keys = KeyRange::new(&key, &c.range_end);
        let header = Some(self.member.header(self.member.mvcc.current_revision()));
        let refuse = |reason: &str| WatchResponse {
            header,
            watch_id: -1,
            created: true,
            canceled: true,
            cancel_reason: reason.to_string(),
            ..Default::default()
        };
        if keys.is_empty() {
            return self.reply(refuse("mvcc: watcher range is empty")).await;
        }
        let id = if c.watch_id != 0 {
            if self.watchers.contains_key(&c.watch_id) {
                return self.reply(refuse("mvcc: duplicate watch ID provided on the WatchStream")).await;
            }
            c.watch_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id
        };
        // Subscribe before reading the revision, so nothing after it is missed.
        let rx = self.hub.subscribe();
        let current = self.member.mvcc.current_revision();
        let start = if c.start_revision <= 0 { current + 1 } else { c.start_revision };
        let spec = WatcherSpec {
            id,
            keys,
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
            prev_kv: c.prev_kv,
            progress_every: c.progress_notify.then_some(self.progress_every),
            start,
        };
        let created = WatchResponse {
            header: Some(self.member.header(current)),
            watch_id: id,
            created: true,
            ..Default::default()
        };
        if !self.reply(created).await {
            return false;
        }
        let (watcher, handle) = Watcher::new(spec, self.member.clone(), rx, self.out.clone());
        self.watchers.insert(id, handle);
        tokio::spawn(watcher.run());
        true
    }

    /// Answers with the revision every watcher on the stream has caught up to.
    async fn progress(&self) -> bool {
        let current = self.member.mvcc.current_revision();
        let rev =
            self.watchers.values().map(|h| h.delivered.load(Ordering::Acquire)).min().unwrap_or(current).min(current);
        self.reply(WatchResponse { header: Some(self.member.header(rev)), watch_id: -1, ..Default::default() }).await
    }
}
