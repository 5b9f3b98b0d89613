//! The bodies of the supervisor endpoints, shared by the servers that answer
//! them and the joining servers and agents that call them.

use serde::{Deserialize, Serialize};

/// `POST /v1-capstan/join`: a server asking to join the store cluster.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRequest {
    pub name: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
}

/// What a joining server is handed: the cluster's CA and where its store
/// peers are.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    pub ca_cert: String,
    pub ca_key: String,
    pub initial_cluster: String,
}

/// `POST /v1-capstan/node`: an agent asking for its node's credentials.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRequest {
    pub node_name: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCredentials {
    pub ca_cert: String,
    pub client_cert: String,
    pub client_key: String,
    pub servers: Vec<String>,
}

/// `GET /v1-capstan/servers`: the API URL of every server alive.
#[derive(Debug, Deserialize, Serialize)]
pub struct ServerList {
    pub servers: Vec<String>,
}
