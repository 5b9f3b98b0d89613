//! The scheduler's writes to the apiserver: bindings, the PodScheduled
//! condition and Events. Thin on purpose; the decisions are made elsewhere.

use capstan_kubeutil::{EventType, Recorder};
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::error::Error;
use crate::pod_state;

pub struct Cluster {
    client: Client,
    recorder: Recorder,
}

impl Cluster {
    pub fn new(client: Client, scheduler_name: &str) -> Cluster {
        let recorder = Recorder::new(client.clone(), scheduler_name, None);
        Cluster { client, recorder }
    }

    fn pods(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"))
    }

    /// `POST pods/<name>/binding`, guarded by the pod's uid.
    pub async fn bind(&self, pod: &Pod, node: &str) -> Result<(), Error> {
        let binding = Binding {
            metadata: ObjectMeta {
                name: pod.metadata.name.clone(),
                namespace: pod.metadata.namespace.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.into()),
                ..Default::default()
            },
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        self.pods(pod)
            .create_subresource::<_, Value>("binding", name, &PostParams::default(), &binding)
            .await
            .map(drop)
            .map_err(|source| Error::Bind { pod: pod_state::key(pod), node: node.to_string(), source })
    }

    /// A strategic merge patch of `pods/<name>/status`.
    pub async fn patch_status(&self, pod: &Pod, patch: &Value) -> Result<(), Error> {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        self.pods(pod)
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .map(drop)
            .map_err(|source| Error::PodStatus { pod: pod_state::key(pod), source })
    }

    pub async fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        };
        self.recorder.record(&reference, kind, reason, message).await;
    }
}
