//! What must hold: Deployments converge, acknowledged writes are there, the
//! ConfigMap watcher saw every acknowledged version.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};

use super::clients::Clients;
use super::observers::Seen;
use super::workload::{DEPLOYMENTS, Ledger, NAMESPACE};

const REVISION: &str = "cp-chaos/revision";

/// Why a Deployment has not converged yet, or None when every one has:
/// its status reports the stored spec, all its pods run the current template.
pub async fn unconverged(clients: &Clients) -> Option<String> {
    for name in DEPLOYMENTS {
        let found = clients.call(|c| async move { Api::<Deployment>::namespaced(c, NAMESPACE).get(name).await }).await;
        let deployment = match found {
            Ok(d) => d,
            Err(e) => return Some(format!("{name}: {e}")),
        };
        let spec = deployment.spec.clone().unwrap_or_default();
        let want = spec.replicas.unwrap_or(1);
        let revision = spec.template.metadata.and_then(|m| m.annotations).and_then(|a| a.get(REVISION).cloned());
        let status = deployment.status.clone().unwrap_or_default();
        let generation = deployment.metadata.generation.unwrap_or_default();
        if status.observed_generation.unwrap_or_default() < generation {
            return Some(format!("{name}: generation {generation} not observed yet"));
        }
        let counts = [status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas];
        if counts.iter().any(|c| c.unwrap_or(0) != want) {
            return Some(format!("{name}: status {counts:?}, want {want}"));
        }
        let selector = format!("app={name}");
        let pods = clients
            .call(|c| {
                let selector = selector.clone();
                async move { Api::<Pod>::namespaced(c, NAMESPACE).list(&ListParams::default().labels(&selector)).await }
            })
            .await;
        let pods = match pods {
            Ok(p) => p.items,
            Err(e) => return Some(format!("{name} pods: {e}")),
        };
        let current = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter(|p| p.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)) == revision.as_ref())
            .count();
        if current != want as usize || pods.len() != want as usize {
            return Some(format!("{name}: {current} current pods of {} listed, want {want}", pods.len()));
        }
    }
    None
}

/// Waits for convergence; how long it took, or why it did not.
pub async fn wait_converged(clients: &Clients, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        match unconverged(clients).await {
            None => return Ok(started.elapsed()),
            Some(why) if started.elapsed() > timeout => return Err(why),
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Acknowledged writes that are not in the store: a ConfigMap's counter or
/// a Deployment's spec older than what was acknowledged (a later write of
/// unknown outcome may have won).
pub async fn lost_writes(clients: &Clients, ledger: &Ledger) -> Result<Vec<String>, kube::Error> {
    let mut lost = Vec::new();
    let configmaps = clients
        .call(|c| async move { Api::<ConfigMap>::namespaced(c, NAMESPACE).list(&ListParams::default()).await })
        .await?;
    for (name, acked) in &ledger.acknowledged {
        let stored = configmaps
            .items
            .iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(name.as_str()))
            .and_then(|cm| cm.data.as_ref()?.get("n")?.parse::<u64>().ok());
        let later = ledger.unknown_after.get(name).cloned().unwrap_or_default();
        if stored != Some(*acked) && !stored.is_some_and(|s| later.contains(&s)) {
            lost.push(format!("configmap {name}: acknowledged n={acked}, stored {stored:?}"));
        }
    }
    for (name, acked) in &ledger.deployments {
        let d = clients.call(|c| async move { Api::<Deployment>::namespaced(c, NAMESPACE).get(name).await }).await?;
        let spec = d.spec.unwrap_or_default();
        let revision = spec.template.metadata.and_then(|m| m.annotations).and_then(|a| a.get(REVISION).cloned());
        let stored = (spec.replicas.unwrap_or(1), revision.and_then(|r| r.parse::<u64>().ok()).unwrap_or_default());
        let later = ledger.deployments_unknown.get(name).cloned().unwrap_or_default();
        if stored != *acked && !later.contains(&stored) {
            lost.push(format!("deployment {name}: acknowledged {acked:?}, stored {stored:?}"));
        }
    }
    Ok(lost)
}

/// Acknowledged ConfigMap versions the watcher never saw.
pub fn watch_gaps(ledger: &Ledger, seen: &Seen) -> Vec<String> {
    let seen_versions: HashSet<&(String, String)> = seen.configmap_versions.iter().collect();
    ledger.versions.iter().filter(|v| !seen_versions.contains(v)).map(|(n, rv)| format!("{n}@{rv}")).collect()
}
