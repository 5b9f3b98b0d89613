//! The Deployment controller (pkg/controller/deployment): one ReplicaSet per
//! pod template, named `<deployment>-<pod-template-hash>`, rolled forward
//! with RollingUpdate or Recreate, scaled, cleaned up past the revision
//! history limit, and a status `kubectl rollout status` understands.

mod hash;
mod replicas;
mod revision;
mod rolling;
mod scale;
mod status;
mod sync;

use std::sync::Arc;

use capstan_kubeutil::Recorder;
use futures::channel::mpsc::UnboundedReceiver;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::informer::{self, Change, Informer};
use crate::runtime::{self, Queue};
use crate::{Result, owner, selector};

struct Context {
    client: Client,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// The controller, wired to the shared informers; `run` drives it.
pub struct DeploymentController {
    context: Arc<Context>,
    deployments: Store<Deployment>,
    queue: UnboundedReceiver<ObjectRef<Deployment>>,
}

impl DeploymentController {
    pub fn new(
        client: Client,
        deployments: &mut Informer<Deployment>,
        replica_sets: &mut Informer<ReplicaSet>,
        pods: &mut Informer<Pod>,
    ) -> Self {
        let (queue, rx) = Queue::new();
        let q = queue.clone();
        deployments.on_change(move |d, _| {
            if let Some((ns, name)) = runtime::key_of(d) {
                q.add(ns, name);
            }
        });

        let (q, deployment_store) = (queue.clone(), deployments.store());
        replica_sets.on_change(move |rs, _| {
            let ns = rs.metadata.namespace.as_deref();
            match owner::controller_of(&rs.metadata) {
                Some(r) if r.kind == "Deployment" => q.add(ns, &r.name),
                Some(_) => {}
                // An orphan: every Deployment that may adopt it.
                None => {
                    for d in deployment_store.state() {
                        let selects = d.spec.as_ref().is_some_and(|s| {
                            !selector::is_empty(&s.selector)
                                && selector::matches(&s.selector, rs.metadata.labels.as_ref())
                        });
                        if d.metadata.namespace.as_deref() == ns && selects {
                            q.add(ns, d.metadata.name.as_deref().unwrap_or_default());
                        }
                    }
                }
            }
        });

        // Recreate waits for the old pods to be gone; their deletion moves it on.
        let rs_store = replica_sets.store();
        pods.on_change(move |pod, change| {
            if change != Change::Deleted {
                return;
            }
            let ns = pod.metadata.namespace.as_deref();
            let Some(rs_ref) = owner::controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else { return };
            let mut key = ObjectRef::new(&rs_ref.name);
            if let Some(ns) = ns {
                key = key.within(ns);
            }
            if let Some(rs) = rs_store.get(&key)
                && let Some(d) = owner::controller_of(&rs.metadata).filter(|r| r.kind == "Deployment")
            {
                queue.add(ns, &d.name);
            }
        });

        let context = Arc::new(Context {
            recorder: Recorder::new(client.clone(), "deployment-controller", None),
            client,
            replica_sets: replica_sets.store(),
            pods: pods.store(),
        });
        DeploymentController { context, deployments: deployments.store(), queue: rx }
    }

    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        informer::wait_ready(&self.deployments, "deployments").await?;
        informer::wait_ready(&self.context.replica_sets, "replicasets").await?;
        informer::wait_ready(&self.context.pods, "pods").await?;
        tracing::info!("deployment controller started");
        runtime::drive("deployment", self.deployments, self.queue, self.context, sync::reconcile, shutdown).await;
        Ok(())
    }
}
