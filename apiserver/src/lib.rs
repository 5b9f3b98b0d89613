//! capstan's apiserver: the Kubernetes REST API over the store.
//!
//! A replica is stateless: objects live in the store (through its etcd v3
//! API), per-resource watch caches are rebuilt at start, and certificates
//! come from a directory replicas may share. See README.md.

mod admission;
mod authn;
mod authz;
mod bootstrap;
mod defaults;
mod discovery;
mod error;
mod http;
pub mod join_token;
mod kubernetes_service;
mod managed_fields;
mod metrics;
mod object;
mod openapi;
mod patch;
pub mod pki;
mod protobuf;
mod rbac;
mod registry;
mod request;
mod resources;
mod schema;
mod selectors;
mod server;
mod storage;
mod strategic;
mod strategy;
mod supervisor;
pub mod supervisor_wire;
mod table;
mod validation;
mod version;
mod watch_cache;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use pki::{ADMIN_GROUP, ADMIN_USER};
pub use storage::StoreTls;

/// How one replica runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub store_endpoints: Vec<String>,
    /// TLS to https:// store endpoints.
    pub store_tls: Option<StoreTls>,
    pub data_dir: PathBuf,
    /// Where the CA and certificates live; replicas may share it.
    pub pki_dir: PathBuf,
    pub bind_address: String,
    pub secure_port: u16,
    /// Extra names and addresses for the serving certificate.
    pub tls_sans: Vec<String>,
    pub token_auth_file: Option<PathBuf>,
    /// Events each resource's watch cache keeps; older resourceVersions get 410.
    pub watch_cache_size: usize,
    /// The address other machines reach this replica at (default: the bind
    /// address, or 127.0.0.1 when that is a wildcard).
    pub advertise_address: Option<String>,
    /// On a `capstan server`: the join secret, which turns on the supervisor
    /// endpoints and this server's entry in the list of servers.
    pub join_secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    #[error(transparent)]
    Tokens(#[from] authn::TokenFileError),
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error("{0}")]
    Setup(String),
}

/// The kubeconfigs this replica writes into its data directory: the admin's
/// and one per cluster component, each with its own identity (the node
/// agent's is this host's, in the `system:nodes` group).
fn write_kubeconfigs(pki: &pki::Pki, data_dir: &Path, url: &str) -> Result<(), StartError> {
    pki.write_admin_kubeconfig(&data_dir.join("admin.kubeconfig"), url)?;
    let node = format!("system:node:{}", hostname());
    let components = [
        ("controller-manager.kubeconfig", "system:kube-controller-manager", None),
        ("scheduler.kubeconfig", "system:kube-scheduler", None),
        ("kubelet.kubeconfig", node.as_str(), Some("system:nodes")),
    ];
    for (file, user, group) in components {
        pki.write_component_kubeconfig(&data_dir.join(file), url, user, group)?;
    }
    Ok(())
}

/// This machine's host name, as the node agent names its Node by default.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// The replica's certificates, created at first start: the serving
/// certificate names the bind and advertise addresses and `--tls-san`.
pub fn ensure_pki(config: &Config) -> Result<pki::Pki, StartError> {
    let mut hosts = vec![config.bind_address.clone()];
    hosts.extend(config.advertise_address.iter().cloned());
    hosts.extend(config.tls_sans.iter().cloned());
    hosts.retain(|h| h != "0.0.0.0" && h != "::" && !h.is_empty());
    Ok(pki::Pki::ensure(&config.pki_dir, &hosts)?)
}

/// Runs one apiserver replica until the future is dropped.
pub async fn run(config: Config) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartError::Setup(format!("{}: {e}", config.data_dir.display())))?;
    let pki = ensure_pki(&config)?;
    let tls = server::tls_acceptor(&pki)?;
    let tokens = match &config.token_auth_file {
        Some(path) => authn::Tokens::load(path)?,
        None => authn::Tokens::default(),
    };
    let listener = server::bind(&format!("{}:{}", bracket(&config.bind_address), config.secure_port)).await?;
    let address = listener.local_addr().map_err(|e| StartError::Setup(e.to_string()))?;
    let client_host = match config.bind_address.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        other => bracket(other),
    };
    let url = format!("https://{client_host}:{}", address.port());
    write_kubeconfigs(&pki, &config.data_dir, &url)?;

    let store = storage::Store::connect(&config.store_endpoints, config.store_tls.as_ref())?;
    // Stops the registration and the endpoints reconciler when this future is dropped.
    let registration = CancellationToken::new();
    let _registered = registration.clone().drop_guard();
    let advertised = match &config.advertise_address {
        Some(advertise) => format!("https://{}:{}", bracket(advertise), address.port()),
        None => url.clone(),
    };
    tokio::spawn(supervisor::servers::register(store.clone(), advertised, registration.clone()));
    let supervisor = config
        .join_secret
        .clone()
        .map(|secret| supervisor::Supervisor::new(pki::Pki { dir: config.pki_dir.clone() }, secret, store.clone()));
    let registry = registry::Registry::start(store.clone(), config.watch_cache_size);
    let authorizer =
        authz::Authorizer::new(&registry).ok_or_else(|| StartError::Setup("RBAC caches missing".into()))?;
    let api = Arc::new(http::Api {
        bootstrapped: AtomicBool::new(false),
        registry,
        authorizer,
        tokens,
        metrics: metrics::Metrics::new(),
        supervisor,
    });
    tokio::spawn(bootstrap_defaults(api.clone(), address.port()));
    tokio::spawn(kubernetes_service::reconcile(api.clone(), store.clone(), registration.clone()));
    tracing::info!(%url, kubeconfig = %config.data_dir.join("admin.kubeconfig").display(), "apiserver serving");
    server::serve(listener, tls, api).await;
    Ok(())
}

/// The defaults need the store; keep trying while it elects a leader.
/// Until they exist, /readyz says not ready.
async fn bootstrap_defaults(api: Arc<http::Api>, secure_port: u16) {
    loop {
        match bootstrap::ensure_defaults(&api.registry, secure_port).await {
            Ok(()) => {
                api.bootstrapped.store(true, Ordering::Release);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "creating the default namespaces and roles; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() }
}
