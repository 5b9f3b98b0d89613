//! The workloads, one file each, and what they share: their settings, the
//! run's timeline and what a run measured.
//!
//! Every workload prepares first (preloads keys, creates watchers), then
//! starts the timeline with [`Starter::start`]: a warm-up that is not
//! measured, then the measured window.

mod closed_loop;
mod k8s_mix;
mod kv;
mod put;
mod range;
mod txn_cas;
mod watch;
mod watch_fanout;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::args::Workload;

/// What every workload is given.
pub struct Context {
    pub channels: Vec<Channel>,
    pub clients: usize,
    pub key_size: usize,
    pub value_size: usize,
    /// Puts per second of the watch-fanout writer.
    pub rate: u32,
    pub errors: Arc<ErrorLog>,
}

/// The run's timeline.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// When the load began (the warm-up with it).
    pub origin: Instant,
    pub measure_start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn measures(&self, at: Instant) -> bool {
        at >= self.measure_start && at < self.end
    }
}

/// Starts the timeline once a workload is ready, and tells whoever waits
/// for it (the sampling of the servers) when it began.
pub struct Starter {
    warmup: Duration,
    duration: Duration,
    started: oneshot::Sender<Window>,
}

impl Starter {
    pub fn new(warmup: Duration, duration: Duration) -> (Starter, oneshot::Receiver<Window>) {
        let (started, on_start) = oneshot::channel();
        (Starter { warmup, duration, started }, on_start)
    }

    pub fn start(self) -> Window {
        let origin = Instant::now();
        let measure_start = origin + self.warmup;
        let window = Window { origin, measure_start, end: measure_start + self.duration };
        // Nobody waiting only means nobody samples the servers.
        let _ = self.started.send(window);
        window
    }
}

/// What a run measured: only operations that started inside the measured window count.
#[derive(Debug, Default)]
pub struct Measured {
    /// One sample per successful operation (per delivered event, for watch-fanout).
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub events: Option<Events>,
}

/// Watch events the workload's watchers received, and for watch-fanout how many they should have.
#[derive(Clone, Copy, Debug)]
pub struct Events {
    pub expected: Option<u64>,
    pub delivered: u64,
}

/// Prints the first few errors of a run to stderr; the clients count them all.
#[derive(Default)]
pub struct ErrorLog {
    seen: AtomicUsize,
}

impl ErrorLog {
    const PRINTED: usize = 5;

    pub fn record(&self, error: &anyhow::Error) {
        let seen = self.seen.fetch_add(1, Ordering::Relaxed);
        if seen < Self::PRINTED {
            eprintln!("error: {error:#}");
        } else if seen == Self::PRINTED {
            eprintln!("error: (further errors are only counted)");
        }
    }
}

pub async fn run(workload: Workload, ctx: Context, starter: Starter) -> anyhow::Result<Measured> {
    match workload {
        Workload::Put => put::run(ctx, starter).await,
        Workload::RangeLinearizable => range::run(ctx, starter, range::Consistency::Linearizable).await,
        Workload::RangeSerializable => range::run(ctx, starter, range::Consistency::Serializable).await,
        Workload::TxnCas => txn_cas::run(ctx, starter).await,
        Workload::WatchFanout => watch_fanout::run(ctx, starter).await,
        Workload::K8sMix => k8s_mix::run(ctx, starter).await,
    }
}
