//! `capstan scheduler`: binds pending pods to nodes, leader-elected through
//! the `kube-system/kube-scheduler` Lease.

use tokio_util::sync::CancellationToken;

use crate::components::{ElectedArgs, LeaderElectionArgs, client, run_elected, until_terminated};

/// The Lease that elects the acting scheduler.
const LEASE: &str = "kube-scheduler";

pub async fn run(args: ElectedArgs) -> anyhow::Result<()> {
    let client = client(&args.kubeconfig.kubeconfig).await?;
    run_in_process(client, &args.election, until_terminated()).await
}

/// The scheduler until `shutdown`; `capstan server` runs it this way too.
pub async fn run_in_process(
    client: kube::Client,
    election: &LeaderElectionArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let schedule = |client, leading| async move {
        capstan_scheduler::run(client, capstan_scheduler::DEFAULT_SCHEDULER_NAME, leading).await
    };
    run_elected(client, LEASE, election, shutdown, schedule).await.map_err(|e| anyhow::anyhow!("scheduler: {e}"))
}
