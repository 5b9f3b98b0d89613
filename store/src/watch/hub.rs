//! The fan-out point between the apply path and watchers. Apply publishes
//! each revision's events once (an `Arc`, no per-watcher copy) into a bounded
//! broadcast ring and never waits: a watcher that falls behind the ring
//! catches up from the store's history instead.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::mvcc::RevisionEvents;

/// How many revisions the ring holds before slow watchers must catch up from history.
const RING_REVISIONS: usize = 4096;

#[derive(Clone)]
pub struct WatchHub {
    tx: broadcast::Sender<Arc<RevisionEvents>>,
}

impl Default for WatchHub {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(RING_REVISIONS);
        WatchHub { tx }
    }

    pub fn publish(&self, events: RevisionEvents) {
        // No receiver is not an error: nobody is watching.
        let _ = self.tx.send(Arc::new(events));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RevisionEvents>> {
        self.tx.subscribe()
    }

    /// A hub fed from this one by the returned task, for the watchers of one
    /// client shard: run on that shard, the task wakes them from inside its
    /// runtime, which then runs them in the order they were woken, before
    /// the streams and connections they wake (see `server::shards`).
    pub fn relay(&self) -> (WatchHub, impl Future<Output = ()> + Send + 'static) {
        let local = WatchHub::new();
        let tx = local.tx.clone();
        let mut rx = self.subscribe();
        let relaying = async move {
            loop {
                match rx.recv().await {
                    Ok(events) => {
                        let _ = tx.send(events);
                    }
                    // Watchers see the gap in revisions and read history.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        (local, relaying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relay_passes_on_every_revision_and_ends_with_its_source() {
        let hub = WatchHub::new();
        let (local, relaying) = hub.relay();
        let relaying = tokio::spawn(relaying);
        let mut rx = local.subscribe();
        for revision in [5, 6] {
            hub.publish(RevisionEvents { revision, events: vec![] });
        }
        for revision in [5, 6] {
            assert_eq!(rx.recv().await.map(|e| e.revision).ok(), Some(revision));
        }
        drop(hub);
        assert!(relaying.await.is_ok(), "the relay ends once its source is gone");
    }
}
