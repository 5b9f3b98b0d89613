//! `capstan agent`: the node agent, with the kubelet's flag names.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;

use crate::components::{KubeconfigArg, client, until_terminated};

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    kubeconfig: KubeconfigArg,
    /// This node's name (default: the host name, lowercased).
    #[arg(long, env = "CAPSTAN_NODE_NAME")]
    node_name: Option<String>,
    /// The CRI runtime's socket.
    #[arg(long, env = "CAPSTAN_CONTAINER_RUNTIME_ENDPOINT", default_value = capstan_node::DEFAULT_CONTAINER_RUNTIME_ENDPOINT)]
    container_runtime_endpoint: String,
    /// The node's InternalIP (default: the address of the default route's interface).
    #[arg(long, env = "CAPSTAN_NODE_IP")]
    node_ip: Option<IpAddr>,
    /// How often the node's status is written.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    node_status_update_frequency: Duration,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let client = client(&args.kubeconfig.kubeconfig).await?;
    let node_name = args.node_name.unwrap_or_else(capstan_apiserver::hostname);
    let config = capstan_node::AgentConfig {
        container_runtime_endpoint: args.container_runtime_endpoint,
        node_ip: args.node_ip,
        node_status_update_frequency: args.node_status_update_frequency,
        ..capstan_node::AgentConfig::new(&node_name)
    };
    capstan_node::run(client, config, until_terminated()).await.map_err(|e| anyhow::anyhow!("node agent: {e}"))
}
