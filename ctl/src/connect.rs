//! Connections to the store: endpoint parsing, dialing within the dial
//! timeout, the generated gRPC clients, and unary calls within the command
//! timeout with etcdctl's error texts.

use std::future::Future;
use std::time::Duration;

use anyhow::anyhow;
use capstan_proto::etcdserverpb::cluster_client::ClusterClient;
use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::lease_client::LeaseClient;
use capstan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use capstan_proto::etcdserverpb::watch_client::WatchClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::args::GlobalArgs;
use crate::error::{exit, fail};

/// etcd's client accepts responses up to 2 GiB; tonic's default is 4 MiB,
/// less than one page of large values.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// One open connection to one endpoint.
#[derive(Clone)]
pub struct Conn {
    /// The endpoint as the user gave it (etcdctl prints it that way).
    pub endpoint: String,
    channel: Channel,
    command_timeout: Duration,
}

impl Conn {
    pub fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub fn watch(&self) -> WatchClient<Channel> {
        WatchClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub fn lease(&self) -> LeaseClient<Channel> {
        LeaseClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub fn cluster(&self) -> ClusterClient<Channel> {
        ClusterClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub fn maintenance(&self) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// Runs one call within the command timeout. Server errors keep the
    /// server's text (`etcdserver: …`), as etcdctl prints them.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.status_error(&status)),
            Err(_) => Err(anyhow!("context deadline exceeded")),
        }
    }

    /// A gRPC status as one line: the server's message, or what went wrong
    /// on the way to this endpoint.
    pub fn status_error(&self, status: &tonic::Status) -> anyhow::Error {
        let message = status.message();
        match status.code() {
            tonic::Code::DeadlineExceeded => anyhow!("context deadline exceeded"),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                if !message.starts_with("etcdserver:") =>
            {
                // "transport error" or "operation was canceled" alone says
                // nothing; the innermost cause names it (a refused TLS
                // handshake, a reset connection). A server that refuses a TLS
                // 1.3 client certificate does so after the client has sent its
                // request, which then fails as canceled.
                let why = std::error::Error::source(status).map(innermost).unwrap_or_default();
                let what = match (message.is_empty(), why.is_empty()) {
                    (_, false) => why,
                    (true, true) => "unavailable".to_string(),
                    (false, true) => message.to_string(),
                };
                anyhow!("lost the connection to {}: {what}", self.endpoint)
            }
            _ if message.is_empty() => anyhow!("{}", status.code().description()),
            _ => anyhow!("{message}"),
        }
    }
}

/// The URL tonic dials for an endpoint given as `host:port`, `http://…` or
/// `https://…`; a bare `host:port` is https when TLS files are given.
pub fn grpc_url(endpoint: &str, tls: bool) -> String {
    let url = if endpoint.contains("://") {
        endpoint.to_string()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    };
    url.trim_end_matches('/').to_string()
}

/// The client side of TLS from --cacert, --cert and --key.
fn tls_config(global: &GlobalArgs) -> anyhow::Result<ClientTlsConfig> {
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| fail(exit::BAD_ARGS, format!("{flag} {}: {e}", path.display())))
    };
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = &global.cacert {
        config = config.ca_certificate(Certificate::from_pem(read("--cacert", ca)?));
    }
    if let (Some(cert), Some(key)) = (&global.cert, &global.key) {
        config = config.identity(Identity::from_pem(read("--cert", cert)?, read("--key", key)?));
    }
    Ok(config)
}

/// Opens a connection to one endpoint within the dial timeout.
pub async fn dial(endpoint: &str, global: &GlobalArgs) -> anyhow::Result<Conn> {
    let url = grpc_url(endpoint, global.uses_tls());
    let mut target = Endpoint::from_shared(url.clone())
        .map_err(|e| fail(exit::BAD_ARGS, format!("bad endpoint {endpoint:?}: {e}")))?;
    if url.starts_with("https://") {
        target = target
            .tls_config(tls_config(global)?)
            .map_err(|e| fail(exit::BAD_ARGS, format!("TLS for {endpoint}: {e}")))?;
    }
    let target = target
        .connect_timeout(global.dial_timeout)
        .tcp_nodelay(true)
        // etcdctl's keepalive: a dead server ends long streams (watch, keep-alive).
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(6));
    let channel = match tokio::time::timeout(global.dial_timeout, target.connect()).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return Err(unreachable(endpoint, &cause(&e))),
        Err(_) => return Err(unreachable(endpoint, &format!("no answer within {:?}", global.dial_timeout))),
    };
    Ok(Conn { endpoint: endpoint.to_string(), channel, command_timeout: global.command_timeout })
}

/// Connects to the first endpoint, in the order given, that answers.
pub async fn connect(global: &GlobalArgs) -> anyhow::Result<Conn> {
    let endpoints = global.endpoint_list();
    let mut failures = Vec::new();
    for endpoint in &endpoints {
        match dial(endpoint, global).await {
            Ok(conn) => return Ok(conn),
            Err(e) if crate::error::exit_code(&e) == exit::BAD_ARGS => return Err(e),
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Err(fail(exit::BAD_ARGS, "no endpoints given (--endpoints)")),
        1 => Err(failures.remove(0)),
        _ => {
            let each: Vec<String> = failures.iter().map(|e| e.to_string()).collect();
            Err(fail(exit::BAD_CONNECTION, format!("could not connect to any endpoint: {}", each.join("; "))))
        }
    }
}

fn unreachable(endpoint: &str, why: &str) -> anyhow::Error {
    fail(exit::BAD_CONNECTION, format!("could not connect to {endpoint}: {why}"))
}

/// The message of the last error in a source chain.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The most telling cause of a dial failure: the OS error if there is one
/// ("connection refused"), else the innermost message.
fn cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = err.to_string();
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind().to_string();
        }
        innermost = e.to_string();
        current = e.source();
    }
    innermost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_with_or_without_scheme() {
        assert_eq!(grpc_url("127.0.0.1:2379", false), "http://127.0.0.1:2379");
        assert_eq!(grpc_url("http://127.0.0.1:2379/", false), "http://127.0.0.1:2379");
        assert_eq!(grpc_url("127.0.0.1:2379", true), "https://127.0.0.1:2379");
        assert_eq!(grpc_url("https://127.0.0.1:2379", false), "https://127.0.0.1:2379");
    }
}
