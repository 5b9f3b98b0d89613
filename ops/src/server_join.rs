//! A server joining a running cluster through another server: it is added
//! to the store as a learner and handed the CA.

use capstan_apiserver::join_token::JoinToken;
use capstan_apiserver::supervisor_wire::{JoinRequest, JoinResponse};

use crate::supervisor_client::{Caller, SupervisorClient};

/// Joins through `server` (`https://host:port`) as store member `name`.
pub async fn join(server: &str, token: &JoinToken, name: &str, peer_urls: &[String]) -> anyhow::Result<JoinResponse> {
    let client = SupervisorClient::connect(server, token, Caller::Server).await?;
    client
        .post("/v1-capstan/join", &JoinRequest { name: name.to_string(), peer_urls: peer_urls.to_vec() })
        .await
        .map_err(|e| anyhow::anyhow!("joining through {e}"))
}
