//! The client side of a server's supervisor endpoints (see the apiserver's
//! supervisor/): fetch the CA and check it against the token's hash before
//! trusting it, then call the endpoints as a server or a node.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use capstan_apiserver::join_token::{JoinToken, ca_hash};
use http::{HeaderValue, Request, header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::de::DeserializeOwned;

/// Who calls: the Basic-auth user the supervisor expects.
#[derive(Clone, Copy)]
pub enum Caller {
    Server,
    Node,
}

impl Caller {
    fn user(self) -> &'static str {
        match self {
            Caller::Server => "server",
            Caller::Node => "node",
        }
    }
}

/// A client of one server that trusts only the cluster's CA.
pub struct SupervisorClient {
    server: String,
    client: kube::Client,
}

impl SupervisorClient {
    /// Fetches `server`'s CA without verification and keeps it only if the
    /// token pins it; every later call verifies the server with it.
    pub async fn connect(server: &str, token: &JoinToken, caller: Caller) -> anyhow::Result<SupervisorClient> {
        if token.ca_hash.is_none() {
            anyhow::bail!(
                "--token must be the full token (K10…::server:…) from the first server's data dir, to pin its CA"
            );
        }
        let ca_pem = fetch_ca(server).await?;
        if !token.ca_matches(ca_pem.as_bytes()) {
            anyhow::bail!(
                "the CA of {server} does not match the token (its sha256 is {}); is this the right cluster?",
                ca_hash(ca_pem.as_bytes())
            );
        }
        SupervisorClient::with_ca(server, &ca_pem, None, &token.secret, caller)
    }

    /// A client of `server` (or, through `server_name`, of whichever server
    /// answers there) that trusts `ca_pem`.
    pub fn with_ca(
        server: &str,
        ca_pem: &str,
        server_name: Option<&str>,
        secret: &str,
        caller: Caller,
    ) -> anyhow::Result<SupervisorClient> {
        let mut config = kube::Config::new(server.parse()?);
        config.root_cert = Some(pem_certificates(ca_pem).map_err(|e| anyhow::anyhow!("the CA of {server}: {e}"))?);
        config.tls_server_name = server_name.map(str::to_string);
        config.connect_timeout = Some(std::time::Duration::from_secs(5));
        config.read_timeout = Some(std::time::Duration::from_secs(30));
        let credentials = STANDARD.encode(format!("{}:{secret}", caller.user()));
        config.headers.push((header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {credentials}"))?));
        Ok(SupervisorClient { server: server.to_string(), client: kube::Client::try_from(config)? })
    }

    /// POSTs `body` as JSON to `path` and decodes the answer.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<T> {
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/json").body(serde_json::to_vec(body)?)?;
        self.client.request::<T>(request).await.map_err(|e| self.explain(e))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let request = Request::get(path).body(Vec::new())?;
        self.client.request::<T>(request).await.map_err(|e| self.explain(e))
    }

    fn explain(&self, error: kube::Error) -> anyhow::Error {
        match error {
            kube::Error::Api(status) if status.code == 401 => anyhow::anyhow!("{} refused the token", self.server),
            other => anyhow::anyhow!("{}: {other}", self.server),
        }
    }
}

/// The CA, fetched without verification: the token's hash is what checks it.
async fn fetch_ca(server: &str) -> anyhow::Result<String> {
    let mut config = kube::Config::new(server.parse()?);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(std::time::Duration::from_secs(5));
    config.read_timeout = Some(std::time::Duration::from_secs(30));
    let client = kube::Client::try_from(config)?;
    let request = Request::get("/cacerts").body(Vec::new())?;
    client.request_text(request).await.map_err(|e| anyhow::anyhow!("fetching the CA from {server}: {e}"))
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|cert| cert.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certificates.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certificates)
}
