//! The `kubernetes` Service in `default`: the API's in-cluster address,
//! 10.96.0.1:443, with Endpoints and an EndpointSlice naming the apiservers
//! alive. kube-apiserver's lease endpoint reconciler keeps the same; here
//! the list comes from the servers' registrations (supervisor/servers.rs),
//! and every replica writes only when what it sees differs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::http::Api;
use crate::registry::{Registry, WriteOptions};
use crate::resources;
use crate::schema::FieldValidation;
use crate::storage::Store;
use crate::supervisor::servers;

const NAME: &str = "kubernetes";
const NAMESPACE: &str = "default";
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// The Service, created with the other defaults; its target port is the
/// creating replica's (Kubernetes expects every apiserver on one port).
pub fn service(secure_port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]}
    })
}

/// Keeps the Endpoints and the EndpointSlice in step with the servers
/// alive, until `shutdown`.
pub async fn reconcile(api: Arc<Api>, store: Store, shutdown: CancellationToken) {
    loop {
        if let Err(e) = reconcile_once(&api.registry, &store).await {
            tracing::warn!(error = %e, "updating the kubernetes Service's endpoints");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
}

async fn reconcile_once(registry: &Registry, store: &Store) -> ApiResult<()> {
    let urls = servers::list(store).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let by_port = addresses_by_port(&urls);
    if by_port.is_empty() {
        return Ok(());
    }
    write(registry, "endpoints", endpoints(&by_port)).await?;
    write(registry, "endpointslices", endpoint_slice(&by_port)).await
}

/// Creates `wanted`, or updates the current object when its content differs.
async fn write(registry: &Registry, plural: &str, wanted: Value) -> ApiResult<()> {
    let (group, version) = if plural == "endpoints" { ("", "v1") } else { ("discovery.k8s.io", "v1") };
    let resource =
        resources::find(group, version, plural).ok_or_else(|| ApiError::Internal(format!("no resource {plural}")))?;
    let options = WriteOptions {
        dry_run: false,
        field_manager: "capstan-apiserver".into(),
        validation: FieldValidation::Strict,
        force: false,
    };
    let current = match registry.get(resource, NAMESPACE, NAME).await {
        Ok(current) => current,
        Err(ApiError::NotFound { .. }) => {
            return match registry.create(resource, NAMESPACE, wanted, &options).await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    if same_content(&current, &wanted) {
        return Ok(());
    }
    let replace = |current: &Value| {
        let mut next = wanted.clone();
        next["metadata"] = current["metadata"].clone();
        next["metadata"]["labels"] = wanted["metadata"]["labels"].clone();
        Ok(next)
    };
    registry.update_with(resource, NAMESPACE, NAME, None, &options, replace).await.map(|_| ())
}

/// Whether the parts this module owns already read as wanted.
fn same_content(current: &Value, wanted: &Value) -> bool {
    ["subsets", "endpoints", "ports", "addressType"].iter().all(|field| current[field] == wanted[field])
        && current["metadata"]["labels"] == wanted["metadata"]["labels"]
}

/// The servers' IP addresses grouped by API port; host names are left out
/// (Endpoints hold addresses only).
fn addresses_by_port(urls: &[String]) -> BTreeMap<u16, Vec<IpAddr>> {
    let mut by_port: BTreeMap<u16, Vec<IpAddr>> = BTreeMap::new();
    for url in urls {
        let Some(authority) = url.strip_prefix("https://") else { continue };
        let Some((host, port)) = authority.trim_end_matches('/').rsplit_once(':') else { continue };
        let (Ok(ip), Ok(port)) = (host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>(), port.parse())
        else {
            continue;
        };
        let ips = by_port.entry(port).or_default();
        if !ips.contains(&ip) {
            ips.push(ip);
            ips.sort();
        }
    }
    by_port
}

fn port(number: u16) -> Value {
    json!({"name": "https", "port": number, "protocol": "TCP"})
}

fn endpoints(by_port: &BTreeMap<u16, Vec<IpAddr>>) -> Value {
    let subsets: Vec<Value> = by_port
        .iter()
        .map(|(number, ips)| {
            let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
            json!({"addresses": addresses, "ports": [port(*number)]})
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets
    })
}

/// One slice holds one port: the one most servers use.
fn endpoint_slice(by_port: &BTreeMap<u16, Vec<IpAddr>>) -> Value {
    let (number, ips) =
        by_port.iter().max_by_key(|(_, ips)| ips.len()).map(|(p, ips)| (*p, ips.clone())).unwrap_or_default();
    let endpoints: Vec<Value> =
        ips.iter().map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}})).collect();
    let address_type = if ips.iter().all(IpAddr::is_ipv4) { "IPv4" } else { "IPv6" };
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": NAME}},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [port(number)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_become_addresses_grouped_by_port() {
        let urls = [
            "https://10.0.0.2:6443".to_string(),
            "https://10.0.0.1:6443".to_string(),
            "https://cp-3.example:6443".to_string(),
            "https://10.0.0.9:7443".to_string(),
        ];
        let by_port = addresses_by_port(&urls);
        assert_eq!(by_port.len(), 2);
        let e = endpoints(&by_port);
        assert_eq!(e["subsets"][0]["addresses"], json!([{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]));
        assert_eq!(e["subsets"][0]["ports"][0]["port"], 6443);
        let slice = endpoint_slice(&by_port);
        assert_eq!(slice["ports"][0]["port"], 6443, "the port most servers use");
        assert_eq!(slice["endpoints"].as_array().map(Vec::len), Some(2));
        assert_eq!(slice["addressType"], "IPv4");
    }

    #[test]
    fn unchanged_endpoints_are_not_written_again() {
        let by_port = addresses_by_port(&["https://10.0.0.1:6443".to_string()]);
        let wanted = endpoints(&by_port);
        let mut current = wanted.clone();
        current["metadata"]["resourceVersion"] = json!("42");
        assert!(same_content(&current, &wanted));
        let moved = endpoints(&addresses_by_port(&["https://10.0.0.2:6443".to_string()]));
        assert!(!same_content(&current, &moved));
    }
}
