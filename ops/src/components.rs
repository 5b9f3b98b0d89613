//! What the cluster components (controller-manager, scheduler, node agent)
//! share on the command line: a kubeconfig, and for the leader-elected ones
//! kube-controller-manager's `--leader-elect*` flags.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use capstan_kubeutil::{ElectionConfig, run_when_leader};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// A client with the credentials and server of a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading the kubeconfig {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("using the kubeconfig {}", kubeconfig.display()))?;
    kube::Client::try_from(config).context("building the Kubernetes client")
}

#[derive(Args, Clone)]
pub struct KubeconfigArg {
    /// The kubeconfig with this component's credentials and the API server.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
}

/// The flags of a leader-elected component: where the API is, and the election.
#[derive(Args)]
pub struct ElectedArgs {
    #[command(flatten)]
    pub kubeconfig: KubeconfigArg,
    #[command(flatten)]
    pub election: LeaderElectionArgs,
}

#[derive(Args, Clone)]
pub struct LeaderElectionArgs {
    /// Run only while holding the component's Lease in kube-system, so that
    /// of several replicas exactly one acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a leader's lease lasts without renewal before another replica may take over.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// A leader that cannot renew for this long stops acting.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates try to acquire, and the leader renews.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub leader_elect_retry_period: Duration,
}

impl LeaderElectionArgs {
    fn election(&self, lease: &str) -> ElectionConfig {
        ElectionConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            ..ElectionConfig::new(lease, &capstan_apiserver::hostname())
        }
    }
}

/// Runs `work` until `shutdown`: whenever this replica holds `lease` when
/// leader election is on, all the time when it is off.
pub async fn run_elected<W, F, E>(
    client: kube::Client,
    lease: &str,
    election: &LeaderElectionArgs,
    shutdown: CancellationToken,
    mut work: W,
) -> Result<(), E>
where
    W: FnMut(kube::Client, CancellationToken) -> F,
    F: Future<Output = Result<(), E>>,
{
    if !election.leader_elect {
        return work(client, shutdown).await;
    }
    let worker = client.clone();
    run_when_leader(client, election.election(lease), shutdown, move |leading| work(worker.clone(), leading)).await
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn until_terminated() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        crate::store_cmd::terminated().await;
        cancel.cancel();
    });
    token
}
