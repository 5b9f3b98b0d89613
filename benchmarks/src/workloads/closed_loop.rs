//! Clients that issue operations back to back until the window ends, each
//! timing its own. An operation counts if it started inside the measured
//! window, so in a steady state the count over the window's length is the
//! throughput, and slow operations at either edge are neither lost nor doubled.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinSet;

use super::{ErrorLog, Measured, Window};
use crate::stats::micros;

/// A stalled server must not hold the run past its end for long.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// After an error, so that a failing server is not flooded with instant retries.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// One client of a closed-loop workload.
pub trait Client: Send + 'static {
    /// One logical operation, which may take several requests.
    fn operate(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

pub async fn run<C: Client>(clients: Vec<C>, window: Window, errors: Arc<ErrorLog>) -> anyhow::Result<Measured> {
    let mut tasks = JoinSet::new();
    for client in clients {
        tasks.spawn(drive(client, window, errors.clone()));
    }
    let mut measured = Measured::default();
    while let Some(done) = tasks.join_next().await {
        let (latencies, failed) = done.context("a client task failed")?;
        measured.latencies_us.extend(latencies);
        measured.errors += failed;
    }
    Ok(measured)
}

async fn drive<C: Client>(mut client: C, window: Window, errors: Arc<ErrorLog>) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut failed = 0;
    loop {
        let start = Instant::now();
        if start >= window.end {
            break;
        }
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT, client.operate())
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {OPERATION_TIMEOUT:?}")));
        let counted = window.measures(start);
        match outcome {
            Ok(()) if counted => latencies.push(micros(start.elapsed())),
            Ok(()) => {}
            Err(e) => {
                failed += u64::from(counted);
                errors.record(&e);
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    (latencies, failed)
}
