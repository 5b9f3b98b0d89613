//! A server joining a running cluster through another server's supervisor
//! endpoints: fetch the CA and check it against the token's hash before
//! trusting it, then ask to be added to the store.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use capstan_apiserver::join_token::JoinToken;
use http::{HeaderValue, Request, header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

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
    if token.ca_hash.is_none() {
        anyhow::bail!(
            "--token must be the full token (K10…::server:…) from the first server's data dir, to pin its CA"
        );
    }
    let ca = fetch_ca(server).await?;
    if !token.ca_matches(ca.as_bytes()) {
        anyhow::bail!(
            "the CA of {server} does not match the token (its sha256 is {}); is this the right cluster?",
            capstan_apiserver::join_token::ca_hash(ca.as_bytes())
        );
    }
    let client = pinned_client(server, &ca, &token.secret)?;
    let body = serde_json::to_vec(&JoinRequest { name, peer_urls })?;
    let request = Request::post("/v1-capstan/join").header(header::CONTENT_TYPE, "application/json").body(body)?;
    client.request::<Joined>(request).await.map_err(|e| match e {
        kube::Error::Api(status) if status.code == 401 => anyhow::anyhow!("{server} refused the token"),
        other => anyhow::anyhow!("joining through {server}: {other}"),
    })
}

/// The CA, fetched without verification: the token's hash is what checks it.
async fn fetch_ca(server: &str) -> anyhow::Result<String> {
    let mut config = kube::Config::new(server.parse()?);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(std::time::Duration::from_secs(5));
    let client = kube::Client::try_from(config)?;
    let request = Request::get("/cacerts").body(Vec::new())?;
    client.request_text(request).await.map_err(|e| anyhow::anyhow!("fetching the CA from {server}: {e}"))
}

/// A client that trusts only `ca_pem` and authenticates as a server.
fn pinned_client(server: &str, ca_pem: &str, secret: &str) -> anyhow::Result<kube::Client> {
    let roots = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .map(|cert| cert.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("the CA of {server} is not PEM: {e}"))?;
    let mut config = kube::Config::new(server.parse()?);
    config.root_cert = Some(roots);
    let credentials = STANDARD.encode(format!("server:{secret}"));
    config.headers.push((header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {credentials}"))?));
    Ok(kube::Client::try_from(config)?)
}
