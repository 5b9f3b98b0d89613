//! An agent joining with a server's token: it gets a client certificate for
//! its node (`system:node:<name>`, group `system:nodes`) and the list of
//! servers, then reaches the API through the local load balancer, which it
//! keeps told of the servers alive. Everything lives in the agent's data
//! dir, so a restart needs no server to be up but one of those it knew.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use capstan_apiserver::join_token::JoinToken;
use capstan_apiserver::supervisor_wire::{NodeCredentials, NodeRequest, ServerList};
use tokio_util::sync::CancellationToken;

use crate::apiserver_balancer::{ApiserverBalancer, address_of};
use crate::supervisor_client::{Caller, SupervisorClient};

const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// The name every server's certificate carries, whichever answers.
const SERVER_NAME: &str = "kubernetes";

/// The files of a joined agent.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The credentials of an earlier join as `node_name`, if any.
    fn cached(&self, node_name: &str) -> Option<(NodeCredentials, String)> {
        let read = |name: &str| std::fs::read_to_string(self.path(name)).ok();
        if read("node-name")?.trim() != node_name {
            return None;
        }
        let servers: ServerList = serde_json::from_str(&read("servers.json")?).ok()?;
        let credentials = NodeCredentials {
            ca_cert: read("ca.crt")?,
            client_cert: read("kubelet.crt")?,
            client_key: read("kubelet.key")?,
            servers: servers.servers,
        };
        Some((credentials, read("secret")?.trim().to_string()))
    }

    fn save(&self, node_name: &str, credentials: &NodeCredentials, secret: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        crate::server_cmd::write_private(&self.path("ca.crt"), credentials.ca_cert.as_bytes())?;
        crate::server_cmd::write_private(&self.path("kubelet.crt"), credentials.client_cert.as_bytes())?;
        crate::server_cmd::write_private(&self.path("kubelet.key"), credentials.client_key.as_bytes())?;
        crate::server_cmd::write_private(&self.path("secret"), secret.as_bytes())?;
        self.save_servers(&credentials.servers)?;
        // Last: its presence says the rest is complete.
        crate::server_cmd::write_private(&self.path("node-name"), node_name.as_bytes())
    }

    fn save_servers(&self, servers: &[String]) -> anyhow::Result<()> {
        let list = serde_json::to_vec(&ServerList { servers: servers.to_vec() })?;
        crate::server_cmd::write_private(&self.path("servers.json"), &list)
    }
}

/// Joins through `server` (or reuses an earlier join in `data_dir`), starts
/// the balancer and returns a client through it; the balancer and the list
/// refresh stop with `shutdown`.
pub async fn connect(
    server: &str,
    token: &JoinToken,
    node_name: &str,
    data_dir: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<kube::Client> {
    let files = Files { dir: data_dir.to_path_buf() };
    let (credentials, secret) = match files.cached(node_name) {
        Some(cached) => {
            tracing::info!(dir = %data_dir.display(), "using the credentials of an earlier join");
            cached
        }
        None => {
            tracing::info!(%server, node = node_name, "joining the cluster");
            let client = SupervisorClient::connect(server, token, Caller::Node).await?;
            let credentials: NodeCredentials = client
                .post("/v1-capstan/node", &NodeRequest { node_name: node_name.to_string() })
                .await
                .map_err(|e| anyhow::anyhow!("joining through {e}"))?;
            files.save(node_name, &credentials, &token.secret)?;
            (credentials, token.secret.clone())
        }
    };
    let mut addresses: Vec<String> = credentials.servers.iter().filter_map(|u| address_of(u)).collect();
    if let Some(given) = address_of(server).filter(|a| !addresses.contains(a)) {
        addresses.push(given);
    }
    let balancer = ApiserverBalancer::start(addresses, shutdown.clone()).await?;
    let url = format!("https://{}", balancer.local_addr);
    let kubeconfig = files.path("kubelet.kubeconfig");
    write_kubeconfig(&kubeconfig, &url, node_name, &credentials)?;
    let refresher = SupervisorClient::with_ca(&url, &credentials.ca_cert, Some(SERVER_NAME), &secret, Caller::Node)?;
    tokio::spawn(refresh_servers(refresher, balancer, files, shutdown));
    crate::components::client(&kubeconfig).await
}

/// Keeps the balancer's list current: servers that joined or left.
async fn refresh_servers(
    client: SupervisorClient,
    balancer: ApiserverBalancer,
    files: Files,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
        match client.get::<ServerList>("/v1-capstan/servers").await {
            Ok(list) if !list.servers.is_empty() => {
                balancer.set_servers(list.servers.iter().filter_map(|u| address_of(u)).collect());
                if let Err(e) = files.save_servers(&list.servers) {
                    tracing::warn!(error = %e, "saving the list of servers");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "refreshing the list of servers"),
        }
    }
}

/// The agent's kubeconfig: the balancer, verified as `kubernetes` against
/// the cluster CA, with the node's certificate inline (kubectl can use it).
fn write_kubeconfig(path: &Path, url: &str, node_name: &str, credentials: &NodeCredentials) -> anyhow::Result<()> {
    let user = format!("system:node:{node_name}");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: capstan\n  cluster:\n    server: {url}\n    \
         tls-server-name: {SERVER_NAME}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    \
         client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {user}@capstan\n  context:\n    \
         cluster: capstan\n    user: {user}\ncurrent-context: {user}@capstan\n",
        ca = STANDARD.encode(&credentials.ca_cert),
        cert = STANDARD.encode(&credentials.client_cert),
        key = STANDARD.encode(&credentials.client_key),
    );
    crate::server_cmd::write_private(path, kubeconfig.as_bytes())
}
