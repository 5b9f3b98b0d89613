//! The supervisor endpoints beside the Kubernetes API (k3s serves the same
//! on its API port): the CA for a joiner to pin, a server joining the store
//! cluster, an agent getting its node credentials, and the list of servers
//! alive. All but `/cacerts` take HTTP Basic auth with the join secret.

mod members;
pub mod servers;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::http::respond::{Body, error_response, json_response, with_type};
use crate::pki::Pki;
use crate::storage::Store;
use crate::supervisor_wire::{JoinRequest, JoinResponse, NodeCredentials, NodeRequest, ServerList};

/// The Basic-auth user of servers; agents use [`NODE_USER`].
const SERVER_USER: &str = "server";
const NODE_USER: &str = "node";

pub struct Supervisor {
    pki: Pki,
    secret: String,
    store: Store,
}

/// Whether the supervisor answers `path`.
pub fn owns(path: &str) -> bool {
    path == "/cacerts" || path.starts_with("/v1-capstan/")
}

impl Supervisor {
    pub fn new(pki: Pki, secret: String, store: Store) -> Supervisor {
        Supervisor { pki, secret, store }
    }

    pub async fn handle(&self, method: &Method, path: &str, headers: &HeaderMap, body: Bytes) -> Response<Body> {
        match self.route(method, path, headers, body).await {
            Ok(response) => response,
            Err(e) => error_response(&e),
        }
    }

    async fn route(&self, method: &Method, path: &str, headers: &HeaderMap, body: Bytes) -> ApiResult<Response<Body>> {
        match (method.as_str(), path) {
            ("GET", "/cacerts") => {
                let (cert, _) = self.pki.ca_pems().map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok(with_type(StatusCode::OK, "text/plain", cert))
            }
            ("POST", "/v1-capstan/join") => {
                self.authenticate(headers, &[SERVER_USER])?;
                self.join(parse(&body)?).await
            }
            ("POST", "/v1-capstan/node") => {
                self.authenticate(headers, &[NODE_USER])?;
                self.node_credentials(parse(&body)?).await
            }
            ("GET", "/v1-capstan/servers") => {
                self.authenticate(headers, &[NODE_USER, SERVER_USER])?;
                let servers = servers::list(&self.store).await.map_err(unavailable)?;
                Ok(json_response(StatusCode::OK, &serde_json::to_value(ServerList { servers }).map_err(internal)?))
            }
            (_, "/cacerts" | "/v1-capstan/join" | "/v1-capstan/node" | "/v1-capstan/servers") => {
                Err(ApiError::MethodNotSupported)
            }
            _ => Err(ApiError::not_found("path", path)),
        }
    }

    fn authenticate(&self, headers: &HeaderMap, users: &[&str]) -> ApiResult<()> {
        let credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| STANDARD.decode(v.trim()).ok())
            .and_then(|v| String::from_utf8(v).ok());
        let Some((user, password)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
            return Err(ApiError::Unauthorized);
        };
        if users.contains(&user) && same_secret(password, &self.secret) { Ok(()) } else { Err(ApiError::Unauthorized) }
    }

    /// Adds the joiner to the store as a learner, first removing any member
    /// it replaces, and hands it the CA and the `--initial-cluster` to start with.
    async fn join(&self, request: JoinRequest) -> ApiResult<Response<Body>> {
        if !is_name(&request.name) {
            return Err(ApiError::bad_request(format!("server name {:?} is not a DNS label", request.name)));
        }
        if request.peer_urls.is_empty()
            || !request.peer_urls.iter().all(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(ApiError::bad_request("peerURLs must be one or more http(s) URLs"));
        }
        let current = members::list(&self.store).await.map_err(unavailable)?;
        for old in members::replaced_by(&current, &request.name, &request.peer_urls) {
            tracing::info!(name = %old.name, id = format!("{:x}", old.id), "removing the store member a joining server replaces");
            members::remove(&self.store, old.id).await.map_err(unavailable)?;
        }
        let added = members::add_learner(&self.store, &request.peer_urls).await.map_err(unavailable)?;
        tracing::info!(name = %request.name, id = format!("{:x}", added.id), "a server joined as a store learner");
        let current = members::list(&self.store).await.map_err(unavailable)?;
        let (ca_cert, ca_key) = self.pki.ca_pems().map_err(|e| ApiError::Internal(e.to_string()))?;
        let response = JoinResponse {
            ca_cert,
            ca_key,
            initial_cluster: members::initial_cluster(&current, &request.name, &request.peer_urls),
        };
        Ok(json_response(StatusCode::OK, &serde_json::to_value(response).map_err(internal)?))
    }

    /// A client certificate for `system:node:<name>` in `system:nodes`, as the
    /// kubelet's TLS bootstrap would end with.
    async fn node_credentials(&self, request: NodeRequest) -> ApiResult<Response<Body>> {
        if !is_subdomain(&request.node_name) {
            return Err(ApiError::bad_request(format!("node name {:?} is not a DNS subdomain", request.node_name)));
        }
        let user = format!("system:node:{}", request.node_name);
        let (client_cert, client_key) = self
            .pki
            .issue_client_certificate(&user, Some("system:nodes"))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let (ca_cert, _) = self.pki.ca_pems().map_err(|e| ApiError::Internal(e.to_string()))?;
        let servers = servers::list(&self.store).await.map_err(unavailable)?;
        let credentials = NodeCredentials { ca_cert, client_cert, client_key, servers };
        Ok(json_response(StatusCode::OK, &serde_json::to_value(credentials).map_err(internal)?))
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("malformed request body: {e}")))
}

fn unavailable(e: crate::storage::StoreError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Compares without an early exit, so timing says nothing of the secret.
fn same_secret(given: &str, secret: &str) -> bool {
    given.len() == secret.len() && given.bytes().zip(secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor(dir: &std::path::Path) -> Supervisor {
        let pki = Pki::ensure(&dir.join("pki"), &[]).expect("pki");
        let store = Store::connect(&["http://127.0.0.1:1".to_string()], None).expect("lazy store");
        Supervisor::new(pki, "s3cret".into(), store)
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[tokio::test]
    async fn the_ca_is_public_and_the_rest_needs_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sup = supervisor(dir.path());
        let ca = sup.handle(&Method::GET, "/cacerts", &HeaderMap::new(), Bytes::new()).await;
        assert_eq!(ca.status(), StatusCode::OK);
        let body = br#"{"nodeName":"worker-1"}"#;
        for headers in [HeaderMap::new(), basic("node", "wrong"), basic("admin", "s3cret"), basic("server", "s3cret")] {
            let response = sup.handle(&Method::POST, "/v1-capstan/node", &headers, Bytes::from_static(body)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = sup.handle(&Method::DELETE, "/v1-capstan/node", &HeaderMap::new(), Bytes::new()).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn bad_join_requests_are_refused_before_the_store_is_touched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sup = supervisor(dir.path());
        let auth = basic("server", "s3cret");
        for body in [
            r#"{"name":"Bad_Name","peerURLs":["https://a:2380"]}"#,
            r#"{"name":"s2","peerURLs":[]}"#,
            r#"{"name":"s2","peerURLs":["a:2380"]}"#,
            r#"{"name":"s2","peerURLs":["https://a:2380"],"extra":1}"#,
            "not json",
        ] {
            let response = sup.handle(&Method::POST, "/v1-capstan/join", &auth, Bytes::from(body)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
    }
}
