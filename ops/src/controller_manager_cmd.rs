//! `capstan controller-manager`: the Deployment, ReplicaSet and garbage
//! collection controllers, leader-elected through the
//! `kube-system/kube-controller-manager` Lease.

use tokio_util::sync::CancellationToken;

use crate::components::{ElectedArgs, LeaderElectionArgs, client, run_elected, until_terminated};

/// The Lease that elects the acting controller-manager.
const LEASE: &str = "kube-controller-manager";

pub async fn run(args: ElectedArgs) -> anyhow::Result<()> {
    let client = client(&args.kubeconfig.kubeconfig).await?;
    run_in_process(client, &args.election, until_terminated()).await
}

/// The controllers until `shutdown`; `capstan server` runs them this way too.
pub async fn run_in_process(
    client: kube::Client,
    election: &LeaderElectionArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_elected(client, LEASE, election, shutdown, capstan_controllers::run)
        .await
        .map_err(|e| anyhow::anyhow!("controller-manager: {e}"))
}
