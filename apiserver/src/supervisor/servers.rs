//! Which servers are alive: each `capstan server` keeps its API URL in the
//! store under a lease it renews, so the list heals itself when one dies
//! (kube-apiserver's lease endpoint reconciler works the same way).

use std::time::Duration;

use bytes::Bytes;
use capstan_proto::etcdserverpb::lease_client::LeaseClient;
use capstan_proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest};
use tokio_util::sync::CancellationToken;

use crate::storage::{Store, StoreError};

const PREFIX: &str = "/capstan/servers/";
/// A dead server leaves the list this long after its last renewal.
const TTL_SECONDS: i64 = 15;
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// The API URLs of the servers alive now, sorted.
pub async fn list(store: &Store) -> Result<Vec<String>, StoreError> {
    let page = store.list(PREFIX, PREFIX, 0, 0).await?;
    let mut urls: Vec<String> =
        page.items.iter().filter_map(|(_, stored)| String::from_utf8(stored.value.to_vec()).ok()).collect();
    urls.sort();
    urls.dedup();
    Ok(urls)
}

/// Keeps `url` registered until `shutdown`; a lost lease (a long pause, a
/// store outage) is granted and written again.
pub async fn register(store: Store, url: String, shutdown: CancellationToken) {
    let mut lease = None;
    loop {
        let renewed = match lease {
            Some(id) => keep_alive(&store, id).await,
            None => Ok(false),
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => match grant_and_put(&store, &url).await {
                Ok(id) => lease = Some(id),
                Err(e) => tracing::warn!(error = %e, "registering this server in the store; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "renewing this server's registration; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
}

async fn grant_and_put(store: &Store, url: &str) -> Result<i64, StoreError> {
    let grant = store
        .with_channel(|channel| async move {
            LeaseClient::new(channel).lease_grant(LeaseGrantRequest { ttl: TTL_SECONDS, id: 0 }).await
        })
        .await?
        .into_inner();
    store.put_with_lease(&format!("{PREFIX}{url}"), Bytes::from(url.to_string()), grant.id).await?;
    Ok(grant.id)
}

/// One keep-alive round; false when the lease is gone.
async fn keep_alive(store: &Store, id: i64) -> Result<bool, StoreError> {
    let reply = store
        .with_channel(|channel| async move {
            let requests = tokio_stream::once(LeaseKeepAliveRequest { id });
            let mut replies = LeaseClient::new(channel).lease_keep_alive(requests).await?.into_inner();
            replies.message().await
        })
        .await?;
    Ok(reply.is_some_and(|r| r.ttl > 0))
}
