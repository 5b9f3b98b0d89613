//! The fan-out point between the apply path and watchers. Apply publishes
//! each revision's events once (an `Arc`, no per-watcher copy) into a bounded
//! broadcast ring and never waits: a watcher that falls behind the ring
//! catches up from the store's history instead.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast};

use crate::mvcc::RevisionEvents;

/// How many revisions the ring holds before slow watchers must catch up from history.
const RING_REVISIONS: usize = 4096;

type Events = Arc<RevisionEvents>;

#[derive(Clone)]
pub struct WatchHub {
    tx: broadcast::Sender<Events>,
    /// Set on a shard's hub: what feeds it from the member's hub.
    relay: Option<Arc<Relay>>,
}

/// The link from the member's hub to a shard's. It follows the member's hub
/// only while the shard has watchers: following wakes the shard's thread on
/// every write, which a shard without watchers would pay for nothing.
struct Relay {
    /// Weak: the member's hub closes when its owner drops it, relays or not.
    source: broadcast::WeakSender<Events>,
    state: Mutex<RelayState>,
    started: Notify,
}

enum RelayState {
    Idle,
    /// A watcher subscribed: the relay task is to follow from this receiver.
    Starting(broadcast::Receiver<Events>),
    Following,
}

impl Default for WatchHub {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(RING_REVISIONS);
        WatchHub { tx, relay: None }
    }

    pub fn publish(&self, events: RevisionEvents) {
        // No receiver is not an error: nobody is watching.
        let _ = self.tx.send(Arc::new(events));
    }

    /// Events published from now on. On a shard's hub this also starts the
    /// relay if it was idle, before returning, so nothing published after
    /// this call is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Events> {
        let rx = self.tx.subscribe();
        if let Some(relay) = &self.relay {
            relay.start();
        }
        rx
    }

    /// A hub fed from this one by the returned task, for the watchers of one
    /// client shard: run on that shard, the task wakes them from inside its
    /// runtime, which then runs them in the order they were woken, before
    /// the streams and connections they wake (see `server::shards`). The
    /// task ends when this hub closes while it follows it; an idle one waits
    /// for a watcher, so run it beside the shard's shutdown signal.
    pub fn relay(&self) -> (WatchHub, impl Future<Output = ()> + Send + 'static) {
        let (tx, _) = broadcast::channel(RING_REVISIONS);
        let relay = Arc::new(Relay {
            source: self.tx.downgrade(),
            state: Mutex::new(RelayState::Idle),
            started: Notify::new(),
        });
        let local = WatchHub { tx: tx.clone(), relay: Some(relay.clone()) };
        (local, relay.run(tx))
    }
}

impl Relay {
    fn state(&self) -> std::sync::MutexGuard<'_, RelayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self) {
        let mut state = self.state();
        if matches!(*state, RelayState::Idle) {
            // A closed source has nothing more to relay: stay idle.
            if let Some(source) = self.source.upgrade() {
                *state = RelayState::Starting(source.subscribe());
                self.started.notify_one();
            }
        }
    }

    async fn run(self: Arc<Self>, local: broadcast::Sender<Events>) {
        loop {
            let Some(mut rx) = self.wait_for_watchers().await else { return };
            loop {
                match rx.recv().await {
                    Ok(events) => {
                        let _ = local.send(events);
                    }
                    // Watchers see the gap in revisions and read history.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                // Checked under the lock `start` takes: a watcher subscribes
                // to the shard's hub before it looks at the state.
                let mut state = self.state();
                if local.receiver_count() == 0 {
                    *state = RelayState::Idle;
                    break;
                }
            }
        }
    }

    /// The receiver to follow once a watcher subscribed; None once the
    /// source has closed.
    async fn wait_for_watchers(&self) -> Option<broadcast::Receiver<Events>> {
        loop {
            let notified = self.started.notified();
            {
                let mut state = self.state();
                match std::mem::replace(&mut *state, RelayState::Following) {
                    RelayState::Starting(rx) => return Some(rx),
                    idle => *state = idle,
                }
                self.source.upgrade()?;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next_revision(rx: &mut broadcast::Receiver<Events>) -> Option<i64> {
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.ok()?.ok().map(|e| e.revision)
    }

    #[tokio::test]
    async fn a_relay_passes_on_every_revision_from_its_first_watcher_on() {
        let hub = WatchHub::new();
        let (local, relaying) = hub.relay();
        let relaying = tokio::spawn(relaying);
        hub.publish(RevisionEvents { revision: 4, events: vec![] });
        let mut rx = local.subscribe();
        for revision in [5, 6] {
            hub.publish(RevisionEvents { revision, events: vec![] });
        }
        for revision in [5, 6] {
            assert_eq!(next_revision(&mut rx).await, Some(revision));
        }
        drop(hub);
        assert!(relaying.await.is_ok(), "the relay ends once its source is gone");
    }

    #[tokio::test]
    async fn a_relay_stops_following_without_watchers_and_resumes_for_the_next() {
        let hub = WatchHub::new();
        let (local, relaying) = hub.relay();
        let relaying = tokio::spawn(relaying);
        let mut first = local.subscribe();
        hub.publish(RevisionEvents { revision: 1, events: vec![] });
        assert_eq!(next_revision(&mut first).await, Some(1));
        drop(first);
        // The next revision tells the relay its shard has no watchers left.
        hub.publish(RevisionEvents { revision: 2, events: vec![] });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while hub.tx.receiver_count() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the relay still follows with no watchers");
            tokio::task::yield_now().await;
        }
        let mut second = local.subscribe();
        assert_eq!(hub.tx.receiver_count(), 1, "subscribing starts the relay at once");
        hub.publish(RevisionEvents { revision: 3, events: vec![] });
        assert_eq!(next_revision(&mut second).await, Some(3));
        drop(hub);
        assert!(relaying.await.is_ok(), "a following relay ends with its source");
    }
}
