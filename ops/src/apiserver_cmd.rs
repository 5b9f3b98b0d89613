//! `capstan apiserver`: one stateless apiserver replica over a store
//! cluster; and the apiserver part of `capstan server` (server_cmd.rs),
//! which runs the controller-manager and the scheduler beside it.

use std::path::{Path, PathBuf};

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::components::{LeaderElectionArgs, client};

#[derive(Args)]
pub struct ApiserverArgs {
    /// Store client URLs (comma-separated); any member will do.
    #[arg(long, env = "CAPSTAN_STORE_ENDPOINTS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    store_endpoints: Vec<String>,
    /// The CA that signed the store's certificate, for https:// store endpoints.
    #[arg(long, env = "CAPSTAN_STORE_CAFILE")]
    store_cafile: Option<PathBuf>,
    /// Client certificate for a store that checks clients (--client-cert-auth).
    #[arg(long, env = "CAPSTAN_STORE_CERTFILE", requires_all = ["store_keyfile", "store_cafile"])]
    store_certfile: Option<PathBuf>,
    /// The key of --store-certfile.
    #[arg(long, env = "CAPSTAN_STORE_KEYFILE", requires = "store_certfile")]
    store_keyfile: Option<PathBuf>,
    #[command(flatten)]
    serving: ServingArgs,
}

impl ApiserverArgs {
    fn store_tls(&self) -> Option<capstan_apiserver::StoreTls> {
        let client = self.store_certfile.clone().zip(self.store_keyfile.clone());
        self.store_cafile.clone().map(|ca_file| capstan_apiserver::StoreTls { ca_file, client })
    }
}

/// What an apiserver replica needs besides its store.
#[derive(Args)]
pub struct ServingArgs {
    /// Directory for admin.kubeconfig (and pki/ unless --pki-dir is given).
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = "capstan-data")]
    data_dir: PathBuf,
    /// The CA and certificates, created at first start; replicas may share it.
    #[arg(long, env = "CAPSTAN_PKI_DIR")]
    pki_dir: Option<PathBuf>,
    /// HTTPS port of the Kubernetes API (0: any free port).
    #[arg(long, env = "CAPSTAN_SECURE_PORT", default_value_t = 6443)]
    secure_port: u16,
    /// Address to serve the Kubernetes API on.
    #[arg(long, env = "CAPSTAN_BIND_ADDRESS", default_value = "127.0.0.1")]
    bind_address: String,
    /// The address others reach this server's API at (default: the bind address).
    #[arg(long, env = "CAPSTAN_ADVERTISE_ADDRESS")]
    advertise_address: Option<String>,
    /// Extra host names or addresses for the serving certificate (comma-separated).
    #[arg(long, env = "CAPSTAN_TLS_SAN", value_delimiter = ',')]
    tls_san: Vec<String>,
    /// Static bearer tokens, Kubernetes' CSV format: token,user,uid,"group1,group2".
    #[arg(long, env = "CAPSTAN_TOKEN_AUTH_FILE")]
    token_auth_file: Option<PathBuf>,
    /// Events each resource's watch cache keeps; a watch from an older
    /// resourceVersion gets 410 Gone and the client re-lists.
    #[arg(long, env = "CAPSTAN_DEFAULT_WATCH_CACHE_SIZE", default_value_t = 1000)]
    default_watch_cache_size: usize,
}

impl ServingArgs {
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.pki_dir.clone().unwrap_or_else(|| self.data_dir.join("pki"))
    }

    pub fn config(
        &self,
        store_endpoints: Vec<String>,
        store_tls: Option<capstan_apiserver::StoreTls>,
    ) -> capstan_apiserver::Config {
        capstan_apiserver::Config {
            pki_dir: self.pki_dir(),
            data_dir: self.data_dir.clone(),
            store_endpoints,
            store_tls,
            bind_address: self.bind_address.clone(),
            advertise_address: self.advertise_address.clone(),
            secure_port: self.secure_port,
            tls_sans: self.tls_san.clone(),
            token_auth_file: self.token_auth_file.clone(),
            watch_cache_size: self.default_watch_cache_size,
            join_secret: None,
        }
    }
}

pub async fn run(args: ApiserverArgs) -> anyhow::Result<()> {
    let config = args.serving.config(args.store_endpoints.clone(), args.store_tls());
    tokio::select! {
        result = capstan_apiserver::run(config) => result.map_err(|e| anyhow::anyhow!("apiserver: {e}")),
        () = crate::store_cmd::terminated() => Ok(()),
    }
}

/// The apiserver of a `capstan server`, with the controller-manager and the
/// scheduler in-process once it has written their kubeconfigs, until SIGTERM.
pub async fn serve_with_components(
    config: capstan_apiserver::Config,
    data_dir: &Path,
    controller_manager: bool,
    scheduler: bool,
    election: &LeaderElectionArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // A previous start's kubeconfigs may name another port: wait for new ones.
    for file in ["controller-manager.kubeconfig", "scheduler.kubeconfig"] {
        let _ = std::fs::remove_file(data_dir.join(file));
    }
    let mut components = tokio::task::JoinSet::new();
    if controller_manager {
        let (election, shutdown) = (election.clone(), shutdown.clone());
        let kubeconfig = data_dir.join("controller-manager.kubeconfig");
        components.spawn(async move {
            let client = component_client(&kubeconfig).await?;
            crate::controller_manager_cmd::run_in_process(client, &election, shutdown).await
        });
    }
    if scheduler {
        let (election, shutdown) = (election.clone(), shutdown.clone());
        let kubeconfig = data_dir.join("scheduler.kubeconfig");
        components.spawn(async move {
            let client = component_client(&kubeconfig).await?;
            crate::scheduler_cmd::run_in_process(client, &election, shutdown).await
        });
    }
    let result = tokio::select! {
        result = capstan_apiserver::run(config) => result.map_err(|e| anyhow::anyhow!("apiserver: {e}")),
        Some(Ok(Err(err))) = components.join_next() => Err(err),
        () = crate::store_cmd::terminated() => Ok(()),
    };
    tracing::info!("shutting down");
    shutdown.cancel();
    // Releasing a lease needs the store; without a quorum it never answers.
    let stopped = tokio::time::timeout(COMPONENTS_STOP, async { while components.join_next().await.is_some() {} });
    if stopped.await.is_err() {
        tracing::warn!(timeout = ?COMPONENTS_STOP, "the controller-manager or scheduler did not stop in time; stopping them");
        components.shutdown().await;
    }
    result
}

/// How long the in-process components get to stop (and release their leases).
const COMPONENTS_STOP: std::time::Duration = std::time::Duration::from_secs(5);

/// A client for an in-process component, once the apiserver has written
/// the component's kubeconfig (it does so before it serves).
async fn component_client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match client(kubeconfig).await {
            Ok(client) => return Ok(client),
            // Not written yet, or half written.
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(err) => return Err(err),
        }
    }
}
