//! capstan's node agent: what the kubelet does, on containerd through the
//! CRI v1.
//!
//! - [`run`] registers the Node, keeps its status and Lease fresh
//!   ([`heartbeat`]), and runs the pods bound to it ([`pods`], one
//!   [`worker`] per pod).
//! - Decisions are plain functions over plain data: [`node_status`],
//!   [`actions`] (what to start, kill, collect), [`pod_status`], [`backoff`],
//!   [`probe`] (thresholds and gating), [`runtime_spec`] (sandbox and
//!   container configs).
//! - I/O: [`cri`] (the containerd client), [`prober`] (exec/HTTP/TCP
//!   probes), [`snapshot`] (a pod's runtime state), [`machine`].
//!
//! Everything the agent starts carries its pod's labels ([`labels`]), so an
//! agent that restarts adopts what runs instead of starting it again.

pub mod actions;
pub mod backoff;
pub mod cri;
mod error;
pub mod heartbeat;
pub mod labels;
pub mod machine;
pub mod node_status;
pub mod pod_status;
pub mod pod_util;
pub mod pods;
pub mod probe;
pub mod prober;
pub mod runtime_spec;
pub mod snapshot;
pub mod worker;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use capstan_kubeutil::Recorder;
use tokio_util::sync::CancellationToken;

pub use error::Error;

/// containerd's CRI socket, the kubelet's usual endpoint.
pub const DEFAULT_CONTAINER_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";

/// How the agent is configured; the kubelet's flag for each field is named.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `--node-name`: the Node this agent registers and whose pods it runs.
    pub node_name: String,
    /// `--container-runtime-endpoint`: `unix:///run/containerd/containerd.sock`.
    pub container_runtime_endpoint: String,
    /// `--node-ip`: the InternalIP to report; detected from the default route when None.
    pub node_ip: Option<IpAddr>,
    /// `--node-status-update-frequency` (10 s).
    pub node_status_update_frequency: Duration,
    /// How often the Lease is renewed (10 s: a quarter of its 40 s duration).
    pub node_lease_renew_interval: Duration,
    /// How often each pod is compared with the runtime (1 s, the kubelet's
    /// PLEG relist period); probes are checked at the same pace.
    pub pod_sync_period: Duration,
}

impl AgentConfig {
    /// The kubelet's defaults for `node_name` on containerd's socket.
    pub fn new(node_name: &str) -> AgentConfig {
        AgentConfig {
            node_name: node_name.to_string(),
            container_runtime_endpoint: DEFAULT_CONTAINER_RUNTIME_ENDPOINT.to_string(),
            node_ip: None,
            node_status_update_frequency: Duration::from_secs(10),
            node_lease_renew_interval: Duration::from_secs(10),
            pod_sync_period: Duration::from_secs(1),
        }
    }
}

/// Runs the node agent until `shutdown`. Containers keep running after it
/// returns; the next run adopts them.
pub async fn run(client: kube::Client, config: AgentConfig, shutdown: CancellationToken) -> Result<(), Error> {
    let runtime = cri::Runtime::connect(&config.container_runtime_endpoint).await?;
    let version = runtime.version().await?;
    tracing::info!(
        runtime = %version.runtime_name,
        version = %version.runtime_version,
        api = %version.runtime_api_version,
        "connected to the container runtime"
    );
    let machine = machine::Machine::read(config.node_ip)?;
    let node_ip = machine.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let memory_capacity = i64::try_from(machine.memory_bytes).unwrap_or(i64::MAX);
    let heartbeat = heartbeat::Heartbeat {
        client: client.clone(),
        runtime: runtime.clone(),
        node_name: config.node_name.clone(),
        machine,
        runtime_version: version.runtime_version,
    };
    let node = heartbeat.register().await?;
    if let Err(err) = heartbeat.renew_lease(&node).await {
        tracing::warn!(%err, "creating the node lease failed; retrying");
    }
    let periods =
        heartbeat::Periods { status: config.node_status_update_frequency, lease: config.node_lease_renew_interval };
    let beats = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { heartbeat.run(node, periods, shutdown).await })
    };
    let shared = Arc::new(worker::Shared {
        recorder: Recorder::new(client.clone(), "kubelet", Some(&config.node_name)),
        client,
        runtime,
        node_name: config.node_name.clone(),
        node_ip,
        memory_capacity,
        sync_period: config.pod_sync_period,
    });
    pods::run(shared, shutdown).await;
    if let Err(err) = beats.await {
        tracing::warn!(%err, "the heartbeat task failed");
    }
    Ok(())
}
