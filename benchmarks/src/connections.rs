//! The gRPC connections the clients share: `conns` channels spread
//! round-robin over the endpoints; client `i` uses channel `i % conns`.

use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Channel, Endpoint};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `conns` connections, the n-th to endpoint `n % endpoints.len()`.
pub async fn open(endpoints: &[String], conns: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(conns);
    for endpoint in endpoints.iter().cycle().take(conns) {
        channels.push(connect(endpoint).await?);
    }
    Ok(channels)
}

/// The channel client `client` uses.
pub fn for_client(channels: &[Channel], client: usize) -> Channel {
    channels[client % channels.len()].clone()
}

async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
    let url = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
    Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad endpoint {endpoint:?}"))?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}
