//! Client connections are served on shards: one single-threaded Tokio
//! runtime per core, each on its own thread. The accept loop hands every new
//! connection to the next shard, where the connection, its streams and its
//! watchers stay.
//!
//! Why not the multi-threaded runtime: h2 writes what is queued when its
//! connection task runs, and on the multi-threaded runtime a task woken by
//! the running one runs next (the LIFO slot). A watch event fanned out to the
//! streams of one connection then wakes the connection task after the first
//! stream's frame and leaves in one `send` per stream. A shard runs woken
//! tasks in order, so every stream queues its frame before the connection
//! task writes them all in one `send`: a fifth of the syscalls and under half
//! the CPU for 1,000 watchers (benchmarks/README.md).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The shards' job queues. Dropping this lets each shard thread end once its
/// jobs have.
pub struct Shards {
    jobs: Vec<mpsc::UnboundedSender<Job>>,
}

impl Shards {
    /// Starts one shard per core.
    pub fn start() -> io::Result<Shards> {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut jobs = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            std::thread::Builder::new()
                .name(format!("client-shard-{i}"))
                .spawn(move || runtime.block_on(run_jobs(rx)))?;
            jobs.push(tx);
        }
        Ok(Shards { jobs })
    }

    pub fn count(&self) -> usize {
        self.jobs.len()
    }

    /// Runs `job` on shard `i`. The returned future ends when the job does;
    /// dropping it stops the job.
    pub fn run<F>(&self, i: usize, job: F) -> impl Future<Output = ()> + Send + use<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let stop_on_drop = stop.clone().drop_guard();
        let (done, finished) = oneshot::channel();
        let job: Job = Box::pin(async move {
            tokio::select! {
                _ = job => {}
                _ = stop.cancelled() => {}
            }
            let _ = done.send(());
        });
        // A shard only goes away after its queue does, so the send succeeds.
        let _ = self.jobs[i].send(job);
        async move {
            let _stop_on_drop = stop_on_drop;
            let _ = finished.await;
        }
    }
}

async fn run_jobs(mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => {
                    running.spawn(job);
                }
                None => break,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// Accepts connections on `listener` until `shutdown` and hands them to the
/// `outlets` in turn (one per shard).
pub async fn hand_out(
    listener: TcpListener,
    outlets: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    shutdown: CancellationToken,
) {
    for outlet in outlets.iter().cycle() {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let handed = accepted.and_then(|(tcp, _)| {
            // Small gRPC replies must not wait for the peer's delayed ACK.
            tcp.set_nodelay(true)?;
            tcp.into_std()
        });
        match handed {
            Ok(tcp) => {
                if outlet.send(tcp).is_err() {
                    return;
                }
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a client connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_runs_on_a_shard_and_stops_when_its_handle_is_dropped() {
        let shards = Shards::start().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = oneshot::channel();
        shards
            .run(0, async move {
                let _ = tx.send(std::thread::current().name().map(String::from));
            })
            .await;
        assert_eq!(rx.await.ok().flatten().as_deref(), Some("client-shard-0"));

        let (alive, dropped) = oneshot::channel::<()>();
        let endless = shards.run(0, async move {
            let _alive = alive;
            std::future::pending::<()>().await
        });
        drop(endless);
        assert!(dropped.await.is_err(), "the job was dropped with its handle");
    }

    #[tokio::test]
    async fn connections_are_handed_to_the_shards_in_turn() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (first, mut to_first) = mpsc::unbounded_channel();
        let (second, mut to_second) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let handing = tokio::spawn(hand_out(listener, vec![first, second], shutdown.clone()));
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}")));
        }
        for outlet in [&mut to_first, &mut to_second] {
            for _ in 0..2 {
                let tcp = outlet.recv().await.unwrap_or_else(|| panic!("a connection for each shard in turn"));
                assert!(tcp.nodelay().unwrap_or(false), "handed out with TCP_NODELAY");
            }
        }
        shutdown.cancel();
        assert!(handing.await.is_ok());
    }
}
