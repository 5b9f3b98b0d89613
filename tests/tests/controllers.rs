//! The controllers (capstan-controllers) run in-process against
//! `capstan server`: ReplicaSets, Deployments (rollouts with kubectl) and
//! garbage collection. No scheduler or node agent runs, so the tests act as
//! the kubelet where pods have to become ready.

use std::future::Future;
use std::time::{Duration, Instant};

use capstan_controllers::CancellationToken;
use capstan_tests::kube_cluster::Apiserver;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A control plane plus the controllers running in this process.
struct Cluster {
    server: Apiserver,
    client: kube::Client,
    shutdown: CancellationToken,
    controllers: tokio::task::JoinHandle<Result<(), capstan_controllers::Error>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Apiserver::api_only(&dir.path().join("cp"));
        let client = server.client().await;
        let shutdown = CancellationToken::new();
        let controllers = tokio::spawn(capstan_controllers::run(client.clone(), shutdown.clone()));
        Cluster { server, client, shutdown, controllers, _dir: dir }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Stops the controllers, which must return cleanly.
    async fn stop(mut self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(TIMEOUT, self.controllers).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "controllers did not stop cleanly: {result:?}");
        self.server.kill();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

/// Polls `check` until it returns Some, or panics with `reason`.
async fn eventually<T, F, Fut>(reason: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {TIMEOUT:?} waiting for {reason}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pods matching `selector` that are not being deleted.
async fn live_pods(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    let list = pods.list(&ListParams::default().labels(selector)).await.map(|l| l.items).unwrap_or_default();
    list.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
}

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .expect("replica set")
}

fn orphan_pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .expect("pod")
}

#[test]
fn a_replica_set_creates_scales_adopts_and_releases_pods() {
    runtime().block_on(async {
        let cluster = Cluster::start().await;
        let (sets, pods) = (cluster.api::<ReplicaSet>(), cluster.api::<Pod>());

        // An orphan that matches is adopted and counts toward the replicas.
        pods.create(&PostParams::default(), &orphan_pod("stray", "rs")).await.expect("orphan");
        let rs = sets.create(&PostParams::default(), &replica_set("rs", 3)).await.expect("create rs");
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let owned = eventually("3 pods owned by the replica set", || async {
            let live = live_pods(&pods, "app=rs").await;
            let all_owned = live.iter().all(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid && r.controller == Some(true) && r.block_owner_deletion == Some(true))
            });
            (live.len() == 3 && all_owned).then_some(live)
        })
        .await;
        assert!(owned.iter().any(|p| p.metadata.name.as_deref() == Some("stray")), "the orphan was adopted");
        assert!(
            owned
                .iter()
                .filter(|p| p.metadata.name.as_deref() != Some("stray"))
                .all(|p| { p.metadata.generate_name.as_deref() == Some("rs-") })
        );
        eventually("status.replicas 3", || async {
            let rs = sets.get("rs").await.ok()?;
            let status = rs.status?;
            (status.replicas == 3 && status.fully_labeled_replicas == Some(3) && status.observed_generation.is_some())
                .then_some(())
        })
        .await;

        // Scale up, then down; never more pods than asked for on the way down.
        sets.patch("rs", &Default::default(), &kube::api::Patch::Merge(json!({"spec": {"replicas": 5}})))
            .await
            .expect("scale up");
        eventually("5 pods", || async { (live_pods(&pods, "app=rs").await.len() == 5).then_some(()) }).await;
        sets.patch("rs", &Default::default(), &kube::api::Patch::Merge(json!({"spec": {"replicas": 1}})))
            .await
            .expect("scale down");
        eventually("1 pod", || async { (live_pods(&pods, "app=rs").await.len() == 1).then_some(()) }).await;

        // A pod relabelled out of the selector is released and replaced.
        let last = live_pods(&pods, "app=rs").await.remove(0);
        let last_name = last.metadata.name.clone().unwrap_or_default();
        pods.patch(
            &last_name,
            &Default::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
        )
        .await
        .expect("relabel");
        eventually("the relabelled pod released", || async {
            let pod = pods.get(&last_name).await.ok()?;
            pod.metadata.owner_references.unwrap_or_default().iter().all(|r| r.uid != uid).then_some(())
        })
        .await;
        eventually("a replacement pod", || async { (live_pods(&pods, "app=rs").await.len() == 1).then_some(()) }).await;
        let events = cluster.server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=rs"]);
        assert!(events.contains("SuccessfulCreate") && events.contains("Created pod: rs-"), "{events}");
        assert!(events.contains("SuccessfulDelete"), "{events}");
        cluster.stop().await;
    });
}

/// Acts as the kubelet for every pod: reports it Running and Ready, until stopped.
fn start_kubelet(pods: Api<Pod>) -> CancellationToken {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        while !stopped.is_cancelled() {
            let list = pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
            for pod in list.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    continue;
                }
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                ]}});
                let name = pod.metadata.name.clone().unwrap_or_default();
                let _ = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await;
            }
            tokio::select! {
                _ = stopped.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    });
    stop
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1
"#;

/// The ReplicaSets controlled by the Deployment with `uid`.
async fn owned_sets(sets: &Api<ReplicaSet>, uid: &str) -> Vec<ReplicaSet> {
    let list = sets.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    list.into_iter()
        .filter(|rs| rs.metadata.owner_references.iter().flatten().any(|r| r.uid == uid && r.controller == Some(true)))
        .collect()
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.metadata.annotations.as_ref()?.get(key).cloned()
}

fn hash_label(rs: &ReplicaSet) -> String {
    rs.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")).cloned().unwrap_or_default()
}

#[test]
fn a_deployment_rolls_out_scales_and_rolls_back_with_kubectl() {
    runtime().block_on(async {
        let cluster = Cluster::start().await;
        let (deployments, sets, pods) =
            (cluster.api::<Deployment>(), cluster.api::<ReplicaSet>(), cluster.api::<Pod>());
        let kubelet = start_kubelet(pods.clone());
        let kubectl = |args: &[&str]| cluster.server.kubectl_ok(args);

        tracing_phase("create: one ReplicaSet named after the template hash, three pods");
        cluster.server.kubectl_apply(&["apply", "-f", "-"], WEB);
        let uid = deployments.get("web").await.expect("deployment").metadata.uid.unwrap_or_default();
        let first = eventually("one replica set for web", || async {
            let owned = owned_sets(&sets, &uid).await;
            (owned.len() == 1).then(|| owned.into_iter().next()).flatten()
        })
        .await;
        let hash = hash_label(&first);
        let first_name = first.metadata.name.clone().unwrap_or_default();
        assert_eq!(first_name, format!("web-{hash}"));
        let selector = first.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        assert_eq!(selector.match_labels.unwrap_or_default().get("pod-template-hash"), Some(&hash));
        assert_eq!(annotation(&first, "deployment.kubernetes.io/revision").as_deref(), Some("1"));
        assert_eq!(annotation(&first, "deployment.kubernetes.io/desired-replicas").as_deref(), Some("3"));
        assert_eq!(annotation(&first, "deployment.kubernetes.io/max-replicas").as_deref(), Some("4"));
        let out = kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
        assert!(out.contains("successfully rolled out"), "{out}");
        let live = live_pods(&pods, "app=web").await;
        assert_eq!(live.len(), 3);
        let first_uid = first.metadata.uid.clone().unwrap_or_default();
        assert!(live.iter().all(|p| p.metadata.owner_references.iter().flatten().any(|r| r.uid == first_uid)));
        let d = deployments.get("web").await.expect("deployment");
        let status = d.status.unwrap_or_default();
        assert_eq!((status.replicas, status.updated_replicas, status.available_replicas), (Some(3), Some(3), Some(3)));
        let conditions = status.conditions.unwrap_or_default();
        let reason = |t: &str| conditions.iter().find(|c| c.type_ == t).and_then(|c| c.reason.clone());
        assert_eq!(reason("Available").as_deref(), Some("MinimumReplicasAvailable"));
        assert_eq!(reason("Progressing").as_deref(), Some("NewReplicaSetAvailable"));

        tracing_phase("kubectl scale 3 -> 5 -> 1");
        kubectl(&["scale", "deployment/web", "--replicas=5"]);
        eventually("5 pods", || async { (live_pods(&pods, "app=web").await.len() == 5).then_some(()) }).await;
        kubectl(&["scale", "deployment/web", "--replicas=1"]);
        eventually("1 pod", || async { (live_pods(&pods, "app=web").await.len() == 1).then_some(()) }).await;
        kubectl(&["scale", "deployment/web", "--replicas=3"]);
        kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);

        tracing_phase("a new image rolls out to a second ReplicaSet");
        kubectl(&["set", "image", "deployment/web", "c=nginx:2"]);
        let out = kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
        assert!(out.contains("successfully rolled out"), "{out}");
        let owned = owned_sets(&sets, &uid).await;
        assert_eq!(owned.len(), 2, "old and new replica sets");
        let second = owned.iter().find(|rs| rs.metadata.uid.as_deref() != Some(&first_uid)).cloned().expect("new rs");
        assert_eq!(annotation(&second, "deployment.kubernetes.io/revision").as_deref(), Some("2"));
        let second_hash = hash_label(&second);
        let live = live_pods(&pods, "app=web").await;
        assert_eq!(live.len(), 3);
        assert!(
            live.iter()
                .all(|p| p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")) == Some(&second_hash))
        );
        let old = sets.get(&first_name).await.expect("old rs");
        assert_eq!(old.spec.and_then(|s| s.replicas), Some(0));

        tracing_phase("kubectl rollout undo reuses the first ReplicaSet at revision 3");
        kubectl(&["rollout", "undo", "deployment/web"]);
        let out = kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
        assert!(out.contains("successfully rolled out"), "{out}");
        let owned = owned_sets(&sets, &uid).await;
        assert_eq!(owned.len(), 2, "no third replica set");
        let first = sets.get(&first_name).await.expect("first rs");
        assert_eq!(annotation(&first, "deployment.kubernetes.io/revision").as_deref(), Some("3"));
        assert_eq!(first.spec.and_then(|s| s.replicas), Some(3));
        eventually("only the first replica set's pods", || async {
            let live = live_pods(&pods, "app=web").await;
            let all_first =
                live.iter().all(|p| p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")) == Some(&hash));
            (live.len() == 3 && all_first).then_some(())
        })
        .await;
        let history = kubectl(&["rollout", "history", "deployment/web"]);
        assert!(history.contains('2') && history.contains('3'), "{history}");

        tracing_phase("kubectl rollout restart makes a third revision");
        kubectl(&["rollout", "restart", "deployment/web"]);
        kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
        assert_eq!(owned_sets(&sets, &uid).await.len(), 3);

        let events = kubectl(&["get", "events", "--field-selector", "involvedObject.name=web"]);
        assert!(events.contains(&format!("Scaled up replica set {first_name} from 0 to 3")), "{events}");
        assert!(events.contains("Scaled down replica set"), "{events}");
        kubelet.cancel();
        cluster.stop().await;
    });
}

fn tracing_phase(what: &str) {
    eprintln!("--- {what}");
}

/// Live ReplicaSets whose names start with `prefix`.
async fn sets_named(sets: &Api<ReplicaSet>, prefix: &str) -> Vec<ReplicaSet> {
    let list = sets.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    list.into_iter().filter(|rs| rs.metadata.name.as_deref().is_some_and(|n| n.starts_with(prefix))).collect()
}

#[test]
fn deletion_cascades_in_the_background_and_orphans_on_request() {
    runtime().block_on(async {
        let cluster = Cluster::start().await;
        let (sets, pods) = (cluster.api::<ReplicaSet>(), cluster.api::<Pod>());

        tracing_phase("background: kubectl delete removes the ReplicaSets and pods after the Deployment");
        cluster.server.kubectl_apply(&["apply", "-f", "-"], WEB);
        eventually("3 web pods", || async { (live_pods(&pods, "app=web").await.len() == 3).then_some(()) }).await;
        cluster.server.kubectl_ok(&["delete", "deployment", "web"]);
        eventually("web's replica sets and pods gone", || async {
            let rs_left = sets_named(&sets, "web-").await.len();
            let pods_left = pods.list(&ListParams::default().labels("app=web")).await.ok()?.items.len();
            (rs_left == 0 && pods_left == 0).then_some(())
        })
        .await;

        tracing_phase("orphan: the pods stay, without an owner reference");
        sets.create(&PostParams::default(), &replica_set("solo", 2)).await.expect("create rs");
        eventually("2 solo pods", || async { (live_pods(&pods, "app=solo").await.len() == 2).then_some(()) }).await;
        cluster.server.kubectl_ok(&["delete", "replicaset", "solo", "--cascade=orphan"]);
        eventually("the replica set gone", || async { sets.get("solo").await.is_err().then_some(()) }).await;
        let left = live_pods(&pods, "app=solo").await;
        assert_eq!(left.len(), 2, "orphaned pods are not deleted");
        assert!(left.iter().all(|p| p.metadata.owner_references.as_ref().is_none_or(Vec::is_empty)), "{left:?}");

        tracing_phase("a new ReplicaSet adopts the orphans instead of creating pods");
        let rs = sets.create(&PostParams::default(), &replica_set("solo", 2)).await.expect("recreate rs");
        let uid = rs.metadata.uid.unwrap_or_default();
        eventually("the orphans adopted", || async {
            let live = live_pods(&pods, "app=solo").await;
            let adopted = live.iter().all(|p| p.metadata.owner_references.iter().flatten().any(|r| r.uid == uid));
            (live.len() == 2 && adopted).then_some(())
        })
        .await;
        let names: Vec<_> = live_pods(&pods, "app=solo").await.into_iter().filter_map(|p| p.metadata.name).collect();
        let before: Vec<_> = left.into_iter().filter_map(|p| p.metadata.name).collect();
        assert_eq!(names.len(), 2);
        assert!(names.iter().all(|n| before.contains(n)), "{names:?} vs {before:?}");
        cluster.stop().await;
    });
}

#[test]
fn foreground_deletion_waits_for_blocking_dependents() {
    runtime().block_on(async {
        let cluster = Cluster::start().await;
        let (deployments, sets, pods) =
            (cluster.api::<Deployment>(), cluster.api::<ReplicaSet>(), cluster.api::<Pod>());
        cluster.server.kubectl_apply(&["apply", "-f", "-"], WEB);
        eventually("3 web pods", || async { (live_pods(&pods, "app=web").await.len() == 3).then_some(()) }).await;
        let d = deployments.get("web").await.expect("deployment");

        // A dependent that blocks its owner and is held by a finalizer of its own.
        let held: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "held",
                "labels": {"app": "held"},
                "finalizers": ["example.com/hold"],
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": d.metadata.uid, "blockOwnerDeletion": true
                }]
            },
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .expect("pod");
        pods.create(&PostParams::default(), &held).await.expect("held pod");

        deployments.delete("web", &kube::api::DeleteParams::foreground()).await.expect("foreground delete");
        eventually("the replica set and its pods gone first", || async {
            let rs_left = sets_named(&sets, "web-").await.len();
            let pods_left = pods.list(&ListParams::default().labels("app=web")).await.ok()?.items.len();
            (rs_left == 0 && pods_left == 0).then_some(())
        })
        .await;
        let waiting = deployments.get("web").await.expect("the deployment waits for the held pod");
        assert!(waiting.metadata.deletion_timestamp.is_some());
        assert_eq!(waiting.metadata.finalizers.as_deref(), Some(&["foregroundDeletion".to_string()][..]));
        let held = pods.get("held").await.expect("held pod");
        assert!(held.metadata.deletion_timestamp.is_some(), "the collector deleted the held pod");

        pods.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
            .await
            .expect("release the hold");
        eventually("the deployment gone", || async { deployments.get("web").await.is_err().then_some(()) }).await;
        cluster.stop().await;
    });
}

#[test]
fn recreate_and_paused_rollouts() {
    runtime().block_on(async {
        let cluster = Cluster::start().await;
        let (deployments, sets, pods) =
            (cluster.api::<Deployment>(), cluster.api::<ReplicaSet>(), cluster.api::<Pod>());
        let kubelet = start_kubelet(pods.clone());
        let kubectl = |args: &[&str]| cluster.server.kubectl_ok(args);
        let recreate = WEB.replace("  replicas: 3\n", "  replicas: 2\n  strategy: {type: Recreate}\n");
        cluster.server.kubectl_apply(&["apply", "-f", "-"], &recreate);
        kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
        let uid = deployments.get("web").await.expect("deployment").metadata.uid.unwrap_or_default();

        tracing_phase("paused: a template change waits for resume");
        kubectl(&["rollout", "pause", "deployment/web"]);
        kubectl(&["set", "image", "deployment/web", "c=nginx:2"]);
        eventually("the paused change observed", || async {
            let d = deployments.get("web").await.ok()?;
            let status = d.status?;
            let paused = status.conditions.iter().flatten().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused") && c.status == "Unknown"
            });
            (paused && status.observed_generation == d.metadata.generation).then_some(())
        })
        .await;
        assert_eq!(owned_sets(&sets, &uid).await.len(), 1, "no new replica set while paused");

        tracing_phase("resumed: Recreate scales the old set to zero before the new one comes up");
        kubectl(&["rollout", "resume", "deployment/web"]);
        let out = kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
        assert!(out.contains("successfully rolled out"), "{out}");
        let owned = owned_sets(&sets, &uid).await;
        assert_eq!(owned.len(), 2);
        let sizes: Vec<i32> = owned.iter().filter_map(|rs| rs.spec.as_ref().and_then(|s| s.replicas)).collect();
        assert!(sizes.contains(&0) && sizes.contains(&2), "{sizes:?}");
        let events = kubectl(&["get", "events", "--field-selector", "involvedObject.name=web"]);
        assert!(events.contains("from 2 to 0"), "{events}");
        kubelet.cancel();
        cluster.stop().await;
    });
}
