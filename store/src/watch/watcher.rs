//! One watcher: catches up from the store's history, then follows the hub.
//! It never holds up the apply path: when it falls behind the hub's ring (or
//! its client is slow) it drops back to reading history, from the revision
//! after the last one it delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use capstan_proto::etcdserverpb::WatchResponse;
use capstan_proto::mvccpb::{Event, event::EventType};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::Error;
use crate::mvcc::RevisionEvents;
use crate::mvcc::range::KeyRange;
use crate::server::member::Member;

/// etcd batches at most this many revisions into one catch-up response.
const CATCH_UP_REVISIONS: usize = 1000;

pub struct WatcherSpec {
    pub id: i64,
    pub keys: KeyRange,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    /// Send a progress notification after this long without events.
    pub progress_every: Option<Duration>,
    /// First revision to deliver.
    pub start: i64,
}

pub type Outbound = mpsc::Sender<Result<WatchResponse, Status>>;

/// What the stream knows of a running watcher.
pub struct WatcherHandle {
    pub cancel: CancellationToken,
    /// Every revision up to this one has been delivered (or had nothing for it).
    pub delivered: Arc<AtomicI64>,
}

pub struct Watcher {
    spec: WatcherSpec,
    member: Arc<Member>,
    rx: broadcast::Receiver<Arc<RevisionEvents>>,
    out: Outbound,
    cancel: CancellationToken,
    delivered: Arc<AtomicI64>,
    next: i64,
}

enum Step {
    Continue,
    Stop,
}

impl Watcher {
    /// `rx` must be subscribed before the current revision was read for
    /// `spec.start`, so no live revision is missed.
    pub fn new(
        spec: WatcherSpec,
        member: Arc<Member>,
        rx: broadcast::Receiver<Arc<RevisionEvents>>,
        out: Outbound,
    ) -> (Self, WatcherHandle) {
        let cancel = CancellationToken::new();
        let delivered = Arc::new(AtomicI64::new(spec.start - 1));
        let handle = WatcherHandle { cancel: cancel.clone(), delivered: delivered.clone() };
        let next = spec.start;
        (Watcher { spec, member, rx, out, cancel, delivered, next }, handle)
    }

    pub async fn run(mut self) {
        self.member.metrics.watchers().inc();
        self.watch().await;
        self.member.metrics.watchers().dec();
    }

    async fn watch(&mut self) {
        let mut idle = self.spec.progress_every.map(tokio::time::interval);
        if let Some(t) = idle.as_mut() {
            t.reset();
        }
        loop {
            if self.next <= self.member.mvcc.current_revision() {
                match self.catch_up().await {
                    Step::Continue => continue,
                    Step::Stop => return,
                }
            }
            let tick = async {
                match idle.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    self.send(self.response(self.current(), vec![]).canceled()).await;
                    return;
                }
                item = self.rx.recv() => match item {
                    Ok(rev) if rev.revision < self.next => {}
                    Ok(rev) if rev.revision == self.next => {
                        let events = self.select(&rev.events, rev.revision);
                        self.next = rev.revision + 1;
                        if !events.is_empty() {
                            if !self.send(self.response(rev.revision, events)).await {
                                return;
                            }
                            if let Some(t) = idle.as_mut() {
                                t.reset();
                            }
                        }
                        self.delivered.store(rev.revision, Ordering::Release);
                    }
                    // A gap (after a snapshot install) or lag: history has it.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick => {
                    let rev = self.delivered.load(Ordering::Acquire);
                    if !self.send(self.response(rev, vec![])).await {
                        return;
                    }
                }
            }
        }
    }

    fn current(&self) -> i64 {
        self.member.mvcc.current_revision()
    }

    /// Delivers revisions `next ..= current` from history, in chunks.
    async fn catch_up(&mut self) -> Step {
        let current = self.current();
        let history = self.member.mvcc.history(self.next, current, CATCH_UP_REVISIONS);
        let revisions = match history {
            Ok(r) => r,
            Err(Error::Compacted) => {
                let compacted = self.member.mvcc.compact_revision();
                let mut resp = self.response(0, vec![]);
                if let Some(h) = resp.header.as_mut() {
                    h.revision = 0;
                }
                resp.canceled = true;
                resp.compact_revision = compacted;
                self.send(resp).await;
                return Step::Stop;
            }
            Err(e) => {
                let _ = self.out.send(Err(e.into())).await;
                return Step::Stop;
            }
        };
        let last = revisions.last().map(|r| r.revision);
        let mut events = Vec::new();
        for rev in &revisions {
            events.extend(self.select(&rev.events, rev.revision));
        }
        // Less than a full chunk means history is exhausted up to `current`.
        let through = if revisions.len() < CATCH_UP_REVISIONS { current } else { last.unwrap_or(current) };
        if !events.is_empty() && !self.send(self.response(current, events)).await {
            return Step::Stop;
        }
        self.next = through + 1;
        self.delivered.store(through, Ordering::Release);
        if self.cancel.is_cancelled() {
            self.send(self.response(current, vec![]).canceled()).await;
            return Step::Stop;
        }
        Step::Continue
    }

    /// The events of one revision this watcher wants, with prev_kv if asked.
    fn select(&self, events: &[Event], revision: i64) -> Vec<Event> {
        let mut out = Vec::new();
        for ev in events {
            let Some(kv) = ev.kv.as_ref() else { continue };
            if !self.spec.keys.contains(&kv.key) {
                continue;
            }
            let is_put = ev.r#type == EventType::Put as i32;
            if (is_put && self.spec.no_put) || (!is_put && self.spec.no_delete) {
                continue;
            }
            let mut ev = ev.clone();
            if self.spec.prev_kv {
                // Omitted when that revision is compacted, as etcd does.
                ev.prev_kv = self.member.mvcc.get_at(&kv.key, revision - 1).ok().flatten();
            }
            out.push(ev);
        }
        out
    }

    fn response(&self, revision: i64, events: Vec<Event>) -> WatchResponse {
        WatchResponse {
            header: Some(self.member.header(revision)),
            watch_id: self.spec.id,
            events,
            ..Default::default()
        }
    }

    async fn send(&self, resp: WatchResponse) -> bool {
        self.out.send(Ok(resp)).await.is_ok()
    }
}

trait Canceled {
    fn canceled(self) -> Self;
}

impl Canceled for WatchResponse {
    fn canceled(mut self) -> Self {
        self.canceled = true;
        self
    }
}
