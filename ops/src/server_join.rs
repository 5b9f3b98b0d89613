//! A server joining a running cluster through another server: it is added
//! to the store as a learner and handed the CA.

use capstan_apiserver::join_token::JoinToken;
use serde::{Deserialize, Serialize};

use crate::supervisor_client::{Caller, SupervisorClient};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinRequest<'a> {
    name: &'a str,
    #[serde(rename = "peerURLs")]
    peer_urls: &'a [String],
}

/// What a joining server is handed: the cluster's CA and where its store
/// peers are.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub ca_cert: String,
    pub ca_key: String,
    pub initial_cluster: String,
}

/// Joins through `server` (`https://host:port`) as store member `name`.
pub async fn join(server: &str, token: &JoinToken, name: &str, peer_urls: &[String]) -> anyhow::Result<Joined> {
    let client = SupervisorClient::connect(server, token, Caller::Server).await?;
    client
        .post("/v1-capstan/join", &JoinRequest { name, peer_urls })
        .await
        .map_err(|e| anyhow::anyhow!("joining through {e}"))
}
