//! Shares one run of an operation among the callers that wait for it.
//!
//! A linearizable read needs a read index obtained *after* the read arrived:
//! a round of heartbeats on the leader, a round trip to the leader on a
//! follower. One such round serves every read that arrived before it began,
//! so under load each read costs a fraction of a round rather than one.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Op<T> = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = T> + Send>> + Send>;

struct Waiter<T> {
    reply: oneshot::Sender<T>,
    op: Op<T>,
}

struct State<T> {
    running: bool,
    waiting: Vec<Waiter<T>>,
}

pub struct Coalescer<T> {
    state: Mutex<State<T>>,
}

impl<T> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer { state: Mutex::new(State { running: false, waiting: Vec::new() }) }
    }
}

impl<T: Clone + Send + 'static> Coalescer<T> {
    /// The result of a run of `op` (or of an equivalent op of another caller)
    /// that starts after this call. None if the run was lost (the runtime is
    /// shutting down).
    pub async fn run<F, Fut>(self: &Arc<Self>, op: F) -> Option<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Op<T> = Box::new(move || Box::pin(op()));
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push(Waiter { reply, op });
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            // A task of its own: a caller that gives up must not strand the others.
            tokio::spawn(self.clone().drive());
        }
        rx.await.ok()
    }

    /// Runs rounds until nobody waits. Each round takes everyone waiting at
    /// its start and runs the newest caller's op (the freshest view of who
    /// leads).
    async fn drive(self: Arc<Self>) {
        loop {
            let mut batch = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.waiting.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let Some(newest) = batch.pop() else { continue };
            let result = (newest.op)().await;
            for waiter in batch {
                let _ = waiter.reply.send(result.clone());
            }
            let _ = newest.reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn callers_during_a_run_share_the_next_one() {
        let coalescer = Arc::new(Coalescer::<usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let op = |runs: Arc<AtomicUsize>| {
            move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        let first = tokio::spawn({
            let (c, r) = (coalescer.clone(), runs.clone());
            async move { c.run(op(r)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // These arrive while the first run is under way: they must not take
        // its result, and they share one later run.
        let later: Vec<_> = (0..20)
            .map(|_| {
                let (c, r) = (coalescer.clone(), runs.clone());
                tokio::spawn(async move { c.run(op(r)).await })
            })
            .collect();
        assert_eq!(first.await.expect("join"), Some(1));
        for handle in later {
            assert_eq!(handle.await.expect("join"), Some(2));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_strands_nobody() {
        let coalescer = Arc::new(Coalescer::<u8>::default());
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            7
        };
        let abandoned = tokio::time::timeout(Duration::from_millis(5), coalescer.run(slow)).await;
        assert!(abandoned.is_err());
        assert_eq!(coalescer.run(slow).await, Some(7));
    }
}
