//! The ReplicaSet controller (pkg/controller/replicaset): keeps
//! `spec.replicas` pods running from the template, adopts matching orphans,
//! releases pods that stopped matching, and reports status.

mod expectations;
mod rank;
mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_kubeutil::{EventType, Recorder};
use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::expectations::Expectations;
use crate::informer::{self, Change, Informer};
use crate::owner::{self, Claim};
use crate::runtime::{self, Queue};
use crate::{Error, Result, selector};

/// At most this many pods are created or deleted in one sync (`burstReplicas`).
const BURST: usize = 500;
/// Resync even without events, in case one was missed.
const RESYNC: Duration = Duration::from_secs(300);

struct Context {
    client: Client,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

/// The controller, wired to the shared informers; `run` drives it.
pub struct ReplicaSetController {
    context: Arc<Context>,
    queue: futures::channel::mpsc::UnboundedReceiver<kube::runtime::reflector::ObjectRef<ReplicaSet>>,
}

impl ReplicaSetController {
    pub fn new(client: Client, replica_sets: &mut Informer<ReplicaSet>, pods: &mut Informer<Pod>) -> Self {
        let (queue, rx) = Queue::new();
        let expectations = Arc::new(Expectations::default());
        let context = Arc::new(Context {
            recorder: Recorder::new(client.clone(), "replicaset-controller", None),
            client,
            replica_sets: replica_sets.store(),
            pods: pods.store(),
            expectations: expectations.clone(),
        });

        let (q, gone) = (queue.clone(), expectations.clone());
        replica_sets.on_change(move |rs, change| {
            if let Some((ns, name)) = runtime::key_of(rs) {
                if change == Change::Deleted {
                    gone.forget(&key(ns, name));
                }
                q.add(ns, name);
            }
        });
        let rs_store = replica_sets.store();
        pods.on_change(move |pod, _| {
            let ns = pod.metadata.namespace.as_deref();
            match owner::controller_of(&pod.metadata) {
                Some(r) if r.kind == "ReplicaSet" => {
                    if let Some(name) = &pod.metadata.name {
                        expectations.observed(&key(ns, &r.name), name);
                    }
                    queue.add(ns, &r.name);
                }
                Some(_) => {}
                // An orphan: every ReplicaSet that may adopt it.
                None => {
                    for rs in rs_store.state() {
                        let selects = rs.spec.as_ref().is_some_and(|s| {
                            !selector::is_empty(&s.selector)
                                && selector::matches(&s.selector, pod.metadata.labels.as_ref())
                        });
                        if rs.metadata.namespace.as_deref() == ns && selects {
                            queue.add(ns, rs.metadata.name.as_deref().unwrap_or_default());
                        }
                    }
                }
            }
        });
        ReplicaSetController { context, queue: rx }
    }

    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let ctx = self.context;
        informer::wait_ready(&ctx.replica_sets, "replicasets").await?;
        informer::wait_ready(&ctx.pods, "pods").await?;
        tracing::info!("replicaset controller started");
        let store = ctx.replica_sets.clone();
        runtime::drive("replicaset", store, self.queue, ctx, reconcile, shutdown).await;
        Ok(())
    }
}

fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action> {
    let name = rs.metadata.name.clone().ok_or(Error::MissingField { kind: "ReplicaSet", field: "name" })?;
    let namespace =
        rs.metadata.namespace.clone().ok_or(Error::MissingField { kind: "ReplicaSet", field: "namespace" })?;
    let key = key(Some(&namespace), &name);
    let Some(spec) = rs.spec.as_ref() else { return Ok(Action::await_change()) };
    if selector::is_empty(&spec.selector) {
        tracing::warn!(replicaset = key, "empty selector; refusing to select every pod");
        return Ok(Action::await_change());
    }

    let in_namespace = ctx.pods.state_filter(|p| p.metadata.namespace.as_deref() == Some(&namespace));
    let needs_sync = ctx.expectations.satisfied(
        &key,
        Instant::now(),
        |pod_name| in_namespace.iter().any(|p| p.metadata.name.as_deref() == Some(pod_name)),
        |uid| {
            in_namespace
                .iter()
                .any(|p| p.metadata.uid.as_deref() == Some(uid) && p.metadata.deletion_timestamp.is_none())
        },
    );
    let owned = claim_pods(&ctx, &rs, &in_namespace).await?;

    let mut create_error = None;
    if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        create_error = manage_replicas(&ctx, &rs, &key, &owned).await;
    }

    let now = Timestamp::now();
    let owned_refs: Vec<&Pod> = owned.iter().map(Arc::as_ref).collect();
    let desired = status::calculate(&rs, &owned_refs, create_error.as_deref(), now);
    if status::normalized(rs.status.as_ref()) != desired {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
        let mut body = json!({"status": desired});
        if desired.conditions.is_none() {
            body["status"]["conditions"] = serde_json::Value::Null;
        }
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body)).await?;
    }

    // Pods become available minReadySeconds after turning ready; look again then.
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let replicas = spec.replicas.unwrap_or(1);
    if min_ready > 0 && desired.ready_replicas == Some(replicas) && desired.available_replicas != Some(replicas) {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::requeue(RESYNC))
}

/// The active pods `rs` owns after adopting matching orphans and releasing
/// owned pods that no longer match.
async fn claim_pods(ctx: &Context, rs: &ReplicaSet, in_namespace: &[Arc<Pod>]) -> Result<Vec<Arc<Pod>>> {
    let Some(spec) = rs.spec.as_ref() else { return Ok(Vec::new()) };
    let namespace = rs.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let mut owned = Vec::new();
    for pod in in_namespace.iter().filter(|p| crate::pods::is_active(p)) {
        let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
        match owner::claim(&rs.metadata, &spec.selector, &pod.metadata) {
            Claim::Keep => owned.push(pod.clone()),
            Claim::Ignore => {}
            Claim::Adopt => {
                let Some(reference) = owner::controller_ref(rs) else { continue };
                let patch =
                    owner::owner_references_patch(&pod.metadata, &owner::with_reference(&pod.metadata, reference));
                match api.patch(pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::from) {
                    Ok(adopted) => {
                        tracing::info!(pod = pod_name, replicaset = ?rs.metadata.name, "adopted pod");
                        owned.push(Arc::new(adopted));
                    }
                    // Gone meanwhile: nothing to count.
                    Err(err) if err.is_status(404) => {}
                    // Counting without it could create a pod too many.
                    Err(err) => return Err(err),
                }
            }
            Claim::Release => {
                let uid = rs.metadata.uid.as_deref().unwrap_or_default();
                let patch = owner::owner_references_patch(&pod.metadata, &owner::without_reference(&pod.metadata, uid));
                match api.patch(pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::from) {
                    Ok(_) => tracing::info!(pod = pod_name, replicaset = ?rs.metadata.name, "released pod"),
                    Err(err) if err.is_status(404) => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
    Ok(owned)
}

/// Creates or deletes pods toward `spec.replicas`; the create failure to
/// report, if any.
async fn manage_replicas(ctx: &Context, rs: &ReplicaSet, key: &str, owned: &[Arc<Pod>]) -> Option<String> {
    let spec = rs.spec.as_ref()?;
    let wanted = spec.replicas.unwrap_or(1).max(0) as usize;
    if owned.len() < wanted {
        create_pods(ctx, rs, key, (wanted - owned.len()).min(BURST)).await
    } else {
        if owned.len() > wanted {
            let candidates: Vec<&Pod> = owned.iter().map(Arc::as_ref).collect();
            let victims = rank::pods_to_delete(&candidates, &candidates, (owned.len() - wanted).min(BURST));
            delete_pods(ctx, rs, key, &victims).await;
        }
        None
    }
}

/// Creates `count` pods in batches of 1, 2, 4 … (`slowStartBatch`), so a
/// failing create (quota, admission) fails once rather than `count` times.
async fn create_pods(ctx: &Context, rs: &ReplicaSet, key: &str, count: usize) -> Option<String> {
    let namespace = rs.metadata.namespace.as_deref().unwrap_or_default();
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let template = rs.spec.as_ref()?.template.clone().unwrap_or_default();
    let reference = owner::controller_ref(rs)?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let rs_ref = rs.object_ref(&());
    ctx.expectations.expect(key, count, [], Instant::now());
    let pod = status::pod_from_template(&template, name, namespace, reference);
    let params = PostParams::default();
    let (mut done, mut batch) = (0, 1);
    while done < count {
        let size = batch.min(count - done);
        let results = join_all((0..size).map(|_| api.create(&params, &pod))).await;
        done += size;
        let mut failure = None;
        for result in results {
            match result {
                Ok(created) => {
                    let pod_name = created.metadata.name.unwrap_or_default();
                    ctx.expectations.created(key, &pod_name);
                    ctx.recorder
                        .record(&rs_ref, EventType::Normal, "SuccessfulCreate", &format!("Created pod: {pod_name}"))
                        .await;
                }
                Err(err) => {
                    ctx.expectations.create_failed(key);
                    let message = format!("Error creating: {err}");
                    ctx.recorder.record(&rs_ref, EventType::Warning, "FailedCreate", &message).await;
                    failure = Some(err.to_string());
                }
            }
        }
        if failure.is_some() {
            // The batches not attempted will not be observed either.
            (done..count).for_each(|_| ctx.expectations.create_failed(key));
            return failure;
        }
        batch *= 2;
    }
    None
}

async fn delete_pods(ctx: &Context, rs: &ReplicaSet, key: &str, victims: &[&Pod]) {
    let namespace = rs.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let rs_ref = rs.object_ref(&());
    let uids = victims.iter().filter_map(|p| p.metadata.uid.clone());
    ctx.expectations.expect(key, 0, uids, Instant::now());
    let deletes = victims.iter().map(|pod| {
        let api = api.clone();
        async move {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            (pod, api.delete(name, &DeleteParams::default()).await.map_err(Error::from))
        }
    });
    for (pod, result) in join_all(deletes).await {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match result {
            Ok(_) => {
                ctx.recorder
                    .record(&rs_ref, EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}"))
                    .await;
            }
            // Already gone is what was wanted.
            Err(err) if err.is_status(404) => {}
            Err(err) => {
                ctx.expectations.delete_failed(key, pod.metadata.uid.as_deref().unwrap_or_default());
                let message = format!("Error deleting: {err}");
                ctx.recorder.record(&rs_ref, EventType::Warning, "FailedDelete", &message).await;
            }
        }
    }
}
