//! The fan-out point between the apply path and watchers. Apply publishes
//! each revision's events once (an `Arc`, no per-watcher copy) into a bounded
//! broadcast ring and never waits: a watcher that falls behind the ring
//! catches up from the store's history instead.

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
}
