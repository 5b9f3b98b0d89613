//! `capstan agent`: the node agent, with the kubelet's flag names. It
//! reaches the API through a kubeconfig, or joins with a server's token and
//! then goes through a load balancer over every server it knows.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use capstan_apiserver::join_token::JoinToken;
use clap::Args;

use crate::components::{client, until_terminated};

#[derive(Args)]
pub struct AgentArgs {
    /// The kubeconfig with this node's credentials and the API server.
    #[arg(long, env = "KUBECONFIG", required_unless_present = "server", conflicts_with = "server")]
    kubeconfig: Option<PathBuf>,
    /// Join through this server (https://HOST:PORT) with --token, instead of a kubeconfig.
    #[arg(long, env = "CAPSTAN_SERVER", requires = "token")]
    server: Option<String>,
    /// The join token from a server's <data-dir>/token.
    #[arg(long, env = "CAPSTAN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where a joined agent keeps its credentials and the list of servers.
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = "capstan-agent")]
    data_dir: PathBuf,
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
    let node_name = args.node_name.unwrap_or_else(capstan_apiserver::hostname);
    let shutdown = until_terminated();
    let client = match (&args.kubeconfig, &args.server, &args.token) {
        (Some(kubeconfig), _, _) => client(kubeconfig).await?,
        (None, Some(server), Some(token)) => {
            let token = JoinToken::parse(token).map_err(|e| anyhow::anyhow!("--token: {e}"))?;
            crate::agent_join::connect(server, &token, &node_name, &args.data_dir, shutdown.clone()).await?
        }
        _ => anyhow::bail!("give --kubeconfig, or --server with --token"),
    };
    let config = capstan_node::AgentConfig {
        container_runtime_endpoint: args.container_runtime_endpoint,
        node_ip: args.node_ip,
        node_status_update_frequency: args.node_status_update_frequency,
        ..capstan_node::AgentConfig::new(&node_name)
    };
    capstan_node::run(client, config, shutdown).await.map_err(|e| anyhow::anyhow!("node agent: {e}"))
}
