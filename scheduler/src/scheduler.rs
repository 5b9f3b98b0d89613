//! The async shell: reflectors for nodes and pods, a queue of pending pods
//! with per-pod backoff, an assume cache, binding and failure reporting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use capstan_kubeutil::{EventType, Recorder};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::decide::pick_node;
use crate::node_info::NodeInfo;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Schedules the pods that name `scheduler_name` until `shutdown`.
pub async fn run(client: Client, scheduler_name: &str, shutdown: CancellationToken) -> Result<(), Error> {
    let changed = Arc::new(Notify::new());
    let (nodes, node_writer) = reflector::store::<Node>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let watch_nodes = watch(Api::<Node>::all(client.clone()), node_writer, changed.clone());
    let watch_pods = watch(Api::<Pod>::all(client.clone()), pod_writer, changed.clone());
    let mut scheduler = Scheduler {
        client: client.clone(),
        name: scheduler_name.to_string(),
        recorder: Recorder::new(client, scheduler_name, None),
        assumed: HashMap::new(),
        backoff: HashMap::new(),
    };
    let schedule = async {
        let _ = nodes.wait_until_ready().await;
        let _ = pods.wait_until_ready().await;
        tracing::info!(scheduler = %scheduler.name, "scheduling");
        loop {
            scheduler.schedule_pending(&nodes, &pods).await;
            // A change may let a pod fit; otherwise look again for backoffs.
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    };
    tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        () = schedule => Ok(()),
        result = watch_nodes => result.map_err(|source| Error::Watch { what: "nodes", source }),
        result = watch_pods => result.map_err(|source| Error::Watch { what: "pods", source }),
    }
}

/// Keeps `writer`'s store in step with the API, waking the queue on change.
async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, changed: Arc<Notify>) -> Result<(), watcher::Error>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff().reflect(writer).applied_objects();
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(_) => changed.notify_one(),
            Err(err) => tracing::warn!(%err, "watch"),
        }
    }
    Ok(())
}

struct Scheduler {
    client: Client,
    name: String,
    recorder: Recorder,
    /// Pods bound by us that the pod watch has not shown bound yet.
    assumed: HashMap<String, (String, Pod)>,
    /// Failed pods: the current delay and when to try again.
    backoff: HashMap<String, (Duration, Instant)>,
}

impl Scheduler {
    async fn schedule_pending(&mut self, nodes: &Store<Node>, pods: &Store<Pod>) {
        let all_pods = pods.state();
        let mut infos: Vec<NodeInfo> = nodes.state().iter().map(|n| NodeInfo::new((**n).clone())).collect();
        let known: HashMap<String, &Arc<Pod>> = all_pods.iter().map(|p| (uid(p), p)).collect();
        // An assumption ends when the watch shows the pod bound, or gone.
        self.assumed.retain(|id, _| known.get(id).is_some_and(|p| node_of(p).is_none()));
        self.backoff.retain(|id, _| known.contains_key(id));
        for pod in all_pods.iter().filter(|p| !is_terminal(p)) {
            if let Some(node) = node_of(pod)
                && let Some(info) = infos.iter_mut().find(|i| i.name() == node)
            {
                info.add_pod(pod);
            }
        }
        for (node, pod) in self.assumed.values() {
            if let Some(info) = infos.iter_mut().find(|i| i.name() == node) {
                info.add_pod(pod);
            }
        }
        let now = Instant::now();
        let mut pending: Vec<&Arc<Pod>> = all_pods
            .iter()
            .filter(|p| self.is_ours_to_schedule(p))
            .filter(|p| !self.assumed.contains_key(&uid(p)))
            .filter(|p| self.backoff.get(&uid(p)).is_none_or(|(_, next)| *next <= now))
            .collect();
        pending.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        for pod in pending {
            self.schedule_one(pod, &mut infos).await;
        }
    }

    fn is_ours_to_schedule(&self, pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        let scheduler = spec.and_then(|s| s.scheduler_name.as_deref()).filter(|s| !s.is_empty());
        node_of(pod).is_none()
            && scheduler.unwrap_or("default-scheduler") == self.name
            && pod.metadata.deletion_timestamp.is_none()
            && !is_terminal(pod)
    }

    async fn schedule_one(&mut self, pod: &Pod, infos: &mut [NodeInfo]) {
        let id = uid(pod);
        match pick_node(pod, infos) {
            Ok(node) => match self.bind(pod, &node).await {
                Ok(()) => {
                    self.backoff.remove(&id);
                    if let Some(info) = infos.iter_mut().find(|i| i.name() == node) {
                        info.add_pod(pod);
                    }
                    self.assumed.insert(id, (node.clone(), pod.clone()));
                    let message = format!("Successfully assigned {}/{} to {node}", namespace(pod), pod.name_any());
                    self.recorder.record(&reference(pod), EventType::Normal, "Scheduled", &message).await;
                }
                Err(err) => {
                    tracing::warn!(%err, pod = %pod.name_any(), %node, "binding");
                    self.back_off(&id);
                }
            },
            Err(message) => {
                tracing::info!(pod = %pod.name_any(), %message, "unschedulable");
                self.back_off(&id);
                self.report_unschedulable(pod, &message).await;
            }
        }
    }

    fn back_off(&mut self, id: &str) {
        let delay = match self.backoff.get(id) {
            Some((delay, _)) => (*delay * 2).min(MAX_BACKOFF),
            None => INITIAL_BACKOFF,
        };
        self.backoff.insert(id.to_string(), (delay, Instant::now() + delay));
    }

    async fn bind(&self, pod: &Pod, node: &str) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace(pod));
        let binding = Binding {
            metadata: ObjectMeta {
                name: pod.metadata.name.clone(),
                namespace: pod.metadata.namespace.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..ObjectReference::default()
            },
        };
        api.create_subresource::<_, serde_json::Value>("binding", &pod.name_any(), &PostParams::default(), &binding)
            .await?;
        Ok(())
    }

    /// PodScheduled=False with the reason, and a FailedScheduling event.
    async fn report_unschedulable(&self, pod: &Pod, message: &str) {
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        if current.is_none_or(|c| c.status != "False" || c.message.as_deref() != Some(message)) {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace(pod));
            let patch = serde_json::json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": Time(k8s_openapi::jiff::Timestamp::now()),
            }]}});
            if let Err(err) =
                api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch)).await
            {
                tracing::debug!(%err, pod = %pod.name_any(), "setting PodScheduled=False");
            }
        }
        self.recorder.record(&reference(pod), EventType::Warning, "FailedScheduling", message).await;
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn namespace(pod: &Pod) -> String {
    pod.metadata.namespace.clone().unwrap_or_else(|| "default".into())
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn reference(pod: &Pod) -> ObjectReference {
    pod.object_ref(&())
}
