//! One chaos run: start the cluster, run clients, watchers and the nemesis
//! side by side, heal, then read back what the checks need: the final state,
//! every event from revision 1, and each member's HashKV.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use capstan_proto::etcdserverpb::HashKvRequest;
use capstan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use tokio::sync::watch;

use super::client::Client;
use super::history::{History, WatchLog};
use super::members::{ChaosCluster, channel, leader, status};
use super::nemesis::{Counts, FaultKind, Nemesis};
use super::watcher;
use super::workload::{PREFIX, Workload};

pub struct Options {
    pub duration: Duration,
    pub seed: u64,
    pub faults: Vec<FaultKind>,
    pub clients: u32,
    pub watchers: u32,
    pub keys: usize,
}

/// What a run produced besides the history.
pub struct Outcome {
    pub history: History,
    pub faults: Counts,
    /// Members that exited on their own.
    pub crashes: Vec<String>,
    /// Each member's HashKV at the final revision, by name.
    pub hashes: Vec<(String, u32)>,
    /// Snapshots installed by members that fell behind.
    pub snapshot_installs: usize,
}

const MEMBERS: usize = 3;

pub async fn run(opts: &Options, dir: &Path) -> Result<Outcome> {
    let mut cluster = ChaosCluster::start(MEMBERS, dir)?;
    let urls: Vec<String> = (0..MEMBERS).map(|i| cluster.client_url(i)).collect();
    wait(Duration::from_secs(30), "a leader", || leader(&urls)).await?;

    let start = Instant::now();
    let until = start + opts.duration;
    let workload = Arc::new(Workload {
        keys: opts.keys,
        lease_ttl: opts.duration.as_secs() as i64 + 600,
        op_timeout: Duration::from_secs(2),
    });
    let clients: Vec<_> = (0..opts.clients)
        .map(|id| {
            let (w, urls, seed) = (workload.clone(), urls.clone(), opts.seed);
            tokio::spawn(async move { w.run_client(id, urls, seed, start, until).await })
        })
        .collect();
    let (done_tx, done_rx) = watch::channel(None);
    let watch_logs: Vec<_> = (0..opts.watchers)
        .map(|id| Arc::new(Mutex::new(WatchLog { watcher: id, start_revision: 1, ..Default::default() })))
        .collect();
    let watchers: Vec<_> =
        watch_logs.iter().map(|log| tokio::spawn(watcher::run(urls.clone(), log.clone(), done_rx.clone()))).collect();

    let mut nemesis = Nemesis::new(opts.faults.clone(), opts.seed, start);
    nemesis.run(&mut cluster, until).await?;
    let mut operations = Vec::new();
    for c in clients {
        operations.extend(c.await.context("a client task failed")?);
    }

    // Everything healed: wait for a leader and every member to answer.
    wait(Duration::from_secs(60), "every member to answer after healing", || async {
        for url in &urls {
            status(url).await?;
        }
        leader(&urls).await
    })
    .await?;
    let (final_state, final_revision) = final_read(&urls).await?;

    // Watchers stop once they have seen everything up to the final revision.
    let _ = done_tx.send(Some(final_revision));
    for w in watchers {
        if tokio::time::timeout(Duration::from_secs(60), w).await.is_err() {
            eprintln!("a watcher did not reach revision {final_revision} within 60 s");
        }
    }
    let reference = Arc::new(Mutex::new(WatchLog { start_revision: 1, ..Default::default() }));
    tokio::time::timeout(Duration::from_secs(60), watcher::run(urls.clone(), reference.clone(), done_rx))
        .await
        .with_context(|| format!("could not read every event up to revision {final_revision}"))?;

    let hashes = hash_kv(&cluster, final_revision).await?;
    // Writes still in flight at the final read may land after it; the
    // checks cover the history up to the final revision.
    let upto = |log: &Mutex<WatchLog>| {
        let mut l = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        l.events.retain(|e| e.revision <= final_revision);
        l
    };
    let history = History {
        seed: opts.seed,
        operations,
        watches: watch_logs.iter().map(|l| upto(l)).collect(),
        reference: upto(&reference).events,
        final_state,
        final_revision,
    };
    Ok(Outcome {
        history,
        faults: nemesis.counts,
        crashes: cluster.take_crashes(),
        hashes,
        snapshot_installs: cluster.snapshot_installs(),
    })
}

/// The key set's contents and the revision they were read at.
async fn final_read(urls: &[String]) -> Result<(Vec<(String, String)>, i64)> {
    let mut reader = Client::new(urls.to_vec(), 0, Duration::from_secs(5))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match reader.get_prefix(PREFIX).await {
            Ok(read) => return Ok(read),
            Err(e) if Instant::now() >= deadline => bail!("the final read failed: {e:?}"),
            Err(_) => reader.rotate(),
        }
    }
}

/// HashKV of every member at `revision`, retried while a member catches up.
async fn hash_kv(cluster: &ChaosCluster, revision: i64) -> Result<Vec<(String, u32)>> {
    let mut hashes = Vec::new();
    for (i, m) in cluster.members.iter().enumerate() {
        let url = cluster.client_url(i);
        let hash = wait(Duration::from_secs(30), &format!("HashKV of {} at revision {revision}", m.name), || async {
            let mut client = MaintenanceClient::new(channel(&url).ok()?);
            client.hash_kv(HashKvRequest { revision }).await.ok().map(|r| r.into_inner().hash)
        })
        .await?;
        hashes.push((m.name.clone(), hash));
    }
    Ok(hashes)
}

/// Polls `cond` every 200 ms until it gives a value, or fails after `timeout`.
async fn wait<T, F: Future<Output = Option<T>>>(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> F,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
