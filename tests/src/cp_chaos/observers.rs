//! Watchers that resume from the last resourceVersion they saw, through any
//! server: one on ConfigMaps (did it miss an acknowledged write?) and one on
//! Pods (was a pod ever bound to two nodes?).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::clients::Clients;
use super::workload::NAMESPACE;

/// What the watchers saw.
#[derive(Default)]
pub struct Seen {
    /// (ConfigMap, resourceVersion) of every event.
    pub configmap_versions: Vec<(String, String)>,
    /// Pod uid → the node it was bound to.
    pub bindings: HashMap<String, String>,
    /// Pods seen on a second node: (pod, first node, second node).
    pub double_bound: Vec<(String, String, String)>,
    /// Times a watch could not resume anywhere and had to re-list.
    pub relists: u64,
    pub resumes: u64,
    /// Watchers that have listed and are watching.
    pub watching: u32,
}

pub type SharedSeen = Arc<Mutex<Seen>>;

fn lock(seen: &SharedSeen) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn watch_configmaps(clients: Clients, seen: SharedSeen, stop: CancellationToken) {
    let record = |seen: &SharedSeen, cm: &ConfigMap| {
        lock(seen).configmap_versions.push((cm.name_any(), cm.resource_version().unwrap_or_default()));
    };
    watch_resuming::<ConfigMap>(clients, seen, stop, record).await;
}

pub async fn watch_pods(clients: Clients, seen: SharedSeen, stop: CancellationToken) {
    let record = |seen: &SharedSeen, pod: &Pod| {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()) else { return };
        let uid = pod.uid().unwrap_or_default();
        let mut seen = lock(seen);
        match seen.bindings.get(&uid).cloned() {
            Some(first) if first != node => seen.double_bound.push((pod.name_any(), first, node)),
            Some(_) => {}
            None => {
                seen.bindings.insert(uid, node);
            }
        }
    };
    watch_resuming::<Pod>(clients, seen, stop, record).await;
}

/// Lists once, then watches from the list's resourceVersion; every break
/// resumes from the last version seen, on each server in turn. Only when no
/// server can resume it (410 everywhere) does it list again, a gap.
async fn watch_resuming<K>(
    clients: Clients,
    seen: SharedSeen,
    stop: CancellationToken,
    record: impl Fn(&SharedSeen, &K),
) where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let mut version = None;
    let mut server = 0usize;
    let mut expired_in_a_row = 0usize;
    while !stop.is_cancelled() {
        let n = clients.all().len();
        let api: Api<K> = Api::namespaced(clients.all()[server % n].clone(), NAMESPACE);
        let Some(from) = version.clone() else {
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    for item in &list.items {
                        record(&seen, item);
                    }
                    version = list.metadata.resource_version;
                    lock(&seen).watching += 1;
                }
                Err(_) => {
                    server += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            continue;
        };
        let params = WatchParams::default().timeout(60);
        let stream = match api.watch(&params, &from).await {
            Ok(stream) => stream,
            Err(_) => {
                server += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut stream = stream.boxed();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = stream.try_next() => next,
            };
            match next {
                Ok(Some(WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o))) => {
                    version = o.resource_version();
                    record(&seen, &o);
                    expired_in_a_row = 0;
                }
                Ok(Some(WatchEvent::Bookmark(b))) => version = Some(b.metadata.resource_version),
                Ok(Some(WatchEvent::Error(e))) if e.code == 410 => {
                    // This server's cache starts later (it restarted): another may have it.
                    expired_in_a_row += 1;
                    if expired_in_a_row >= n {
                        lock(&seen).relists += 1;
                        version = None;
                        expired_in_a_row = 0;
                    }
                    break;
                }
                Ok(Some(WatchEvent::Error(_))) | Ok(None) | Err(_) => break,
            }
        }
        lock(&seen).resumes += 1;
        server += 1;
    }
}
