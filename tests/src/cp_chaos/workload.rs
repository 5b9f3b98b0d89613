//! The client: ConfigMaps written with a counter, and Deployments scaled
//! and given new templates. Every write's outcome is kept: acknowledged
//! (with the resourceVersion it got) or unknown (an error after sending).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::clients::Clients;

pub const NAMESPACE: &str = "default";
pub const DEPLOYMENTS: [&str; 2] = ["chaos-a", "chaos-b"];
const CONFIGMAPS: u64 = 5;

/// What the client was told, per object.
#[derive(Default)]
pub struct Ledger {
    /// ConfigMap → the last acknowledged counter.
    pub acknowledged: HashMap<String, u64>,
    /// ConfigMap → counters written after it with an unknown outcome.
    pub unknown_after: HashMap<String, Vec<u64>>,
    /// (ConfigMap, resourceVersion) of every acknowledged write.
    pub versions: Vec<(String, String)>,
    /// Deployment → the last acknowledged (replicas, template revision).
    pub deployments: HashMap<String, (i32, u64)>,
    /// Deployment → changes sent after it with an unknown outcome.
    pub deployments_unknown: HashMap<String, Vec<(i32, u64)>>,
    pub writes: u64,
    pub errors: u64,
}

pub type SharedLedger = Arc<Mutex<Ledger>>;

fn lock(ledger: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes ConfigMaps until `stop`: counter n goes to `cm-<n % 5>`.
pub async fn write_configmaps(clients: Clients, ledger: SharedLedger, stop: CancellationToken) {
    let mut n = 0u64;
    while !stop.is_cancelled() {
        n += 1;
        let name = format!("cm-{}", n % CONFIGMAPS);
        let body =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": n.to_string()}});
        let written = clients
            .call(|client| {
                let (name, body) = (name.clone(), body.clone());
                async move {
                    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
                    api.patch(&name, &PatchParams::apply("cp-chaos").force(), &Patch::Apply(body)).await
                }
            })
            .await;
        {
            let mut ledger = lock(&ledger);
            ledger.writes += 1;
            match written {
                Ok(cm) => {
                    ledger.acknowledged.insert(name.clone(), n);
                    ledger.unknown_after.remove(&name);
                    let rv = cm.metadata.resource_version.unwrap_or_default();
                    ledger.versions.push((name, rv));
                }
                Err(_) => {
                    ledger.errors += 1;
                    ledger.unknown_after.entry(name).or_default().push(n);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Deployments, created once: busybox sleeping, on any node.
pub async fn create_deployments(clients: &Clients, ledger: &SharedLedger) -> anyhow::Result<()> {
    for name in DEPLOYMENTS {
        let body: Deployment = serde_json::from_value(deployment(name, 2, 0))?;
        clients
            .call(|client| {
                let body = body.clone();
                async move {
                    let api: Api<Deployment> = Api::namespaced(client, NAMESPACE);
                    match api.create(&PostParams::default(), &body).await {
                        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                        other => other.map(|_| ()),
                    }
                }
            })
            .await?;
        lock(ledger).deployments.insert(name.to_string(), (2, 0));
    }
    Ok(())
}

fn deployment(name: &str, replicas: i32, revision: u64) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"cp-chaos/revision": revision.to_string()}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "c", "image": "capstan.local/busybox:1", "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
            }
        }
    })
}

/// One change: step n scales a Deployment or gives it a new template.
pub async fn mutate_deployment(clients: &Clients, ledger: &SharedLedger, n: u64) {
    let name = DEPLOYMENTS[(n % 2) as usize];
    let (mut replicas, mut revision) = lock(ledger).deployments.get(name).copied().unwrap_or((2, 0));
    if n.is_multiple_of(3) {
        revision = n;
    } else {
        replicas = 1 + (n % 3) as i32;
    }
    let patch = json!({"spec": {"replicas": replicas,
        "template": {"metadata": {"annotations": {"cp-chaos/revision": revision.to_string()}}}}});
    let patched = clients
        .call(|client| {
            let patch = patch.clone();
            async move {
                let api: Api<Deployment> = Api::namespaced(client, NAMESPACE);
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await
            }
        })
        .await;
    let mut ledger = lock(ledger);
    ledger.writes += 1;
    match patched {
        Ok(_) => {
            ledger.deployments.insert(name.to_string(), (replicas, revision));
            ledger.deployments_unknown.remove(name);
        }
        Err(_) => {
            ledger.errors += 1;
            ledger.deployments_unknown.entry(name.to_string()).or_default().push((replicas, revision));
        }
    }
}
