//! The controllers (capstan-controllers) run in-process against
//! `capstan server`: ReplicaSets, Deployments (rollouts with kubectl) and
//! garbage collection. No scheduler or node agent runs, so the tests act as
//! the kubelet where pods have to become ready.

use std::future::Future;
use std::time::{Duration, Instant};

use capstan_tests::kube_cluster::Apiserver;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use capstan_controllers::CancellationToken;

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
        let server = Apiserver::server(&dir.path().join("cp"));
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
                p.metadata.owner_references.iter().flatten().any(|r| {
                    r.uid == uid && r.controller == Some(true) && r.block_owner_deletion == Some(true)
                })
            });
            (live.len() == 3 && all_owned).then_some(live)
        })
        .await;
        assert!(owned.iter().any(|p| p.metadata.name.as_deref() == Some("stray")), "the orphan was adopted");
        assert!(owned.iter().filter(|p| p.metadata.name.as_deref() != Some("stray")).all(|p| {
            p.metadata.generate_name.as_deref() == Some("rs-")
        }));
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
        pods.patch(&last_name, &Default::default(), &kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})))
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
