//! The scheduler, run in-process against `capstan server`. There is no node
//! agent: each test creates its Node objects and writes their status
//! (capacity, allocatable, Ready) through `nodes/<name>/status`, then
//! watches where pods land and what the scheduler reports.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use capstan_scheduler::CancellationToken;
use capstan_tests::kube_cluster::Apiserver;
use k8s_openapi::api::core::v1::{Event, Node, Pod, PodCondition};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A control plane, and the scheduler in this process once started.
struct Cluster {
    server: Apiserver,
    client: Client,
    shutdown: CancellationToken,
    scheduler: Option<JoinHandle<Result<(), capstan_scheduler::Error>>>,
}

impl Cluster {
    /// The control plane with the scheduler running.
    async fn start(dir: &std::path::Path) -> Cluster {
        let mut cluster = Cluster::without_scheduler(dir).await;
        cluster.start_scheduler();
        cluster
    }

    async fn without_scheduler(dir: &std::path::Path) -> Cluster {
        let server = Apiserver::api_only(dir);
        let client = server.client().await;
        Cluster { server, client, shutdown: CancellationToken::new(), scheduler: None }
    }

    fn start_scheduler(&mut self) {
        let run = capstan_scheduler::run(self.client.clone(), "default-scheduler", self.shutdown.clone());
        self.scheduler = Some(tokio::spawn(run));
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(scheduler) = self.scheduler.take() {
            let stopped = tokio::time::timeout(TIMEOUT, scheduler).await;
            assert!(matches!(stopped, Ok(Ok(Ok(())))), "the scheduler did not stop cleanly: {stopped:?}");
        }
        self.server.kill();
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// A Ready node with `cpu`/`memory` allocatable, room for 110 pods, and
    /// the given labels and taints.
    async fn add_node(&self, name: &str, cpu: &str, memory: &str, labels: Value, taints: Value) {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        }))
        .expect("node");
        self.nodes().create(&PostParams::default(), &node).await.expect("create node");
        let resources = json!({"cpu": cpu, "memory": memory, "pods": "110"});
        let status = json!({"status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "set by the test", "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
        }});
        self.nodes().patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("node status");
    }

    /// A pod asking for `cpu` and `memory`, with extra `spec` fields merged in.
    async fn add_pod(&self, name: &str, cpu: &str, memory: &str, spec: Value) {
        let mut pod = json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
        });
        if let (Some(target), Some(extra)) = (pod["spec"].as_object_mut(), spec.as_object()) {
            target.extend(extra.clone());
        }
        let pod: Pod = serde_json::from_value(pod).expect("pod");
        self.pods().create(&PostParams::default(), &pod).await.expect("create pod");
    }

    async fn node_of(&self, pod: &str) -> Option<String> {
        let pod = self.pods().get(pod).await.ok()?;
        pod.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty())
    }

    /// Waits until `pod` is bound; its node.
    async fn bound(&self, pod: &str) -> String {
        eventually(&format!("{pod} to be bound"), || self.node_of(pod)).await
    }

    async fn pod_scheduled(&self, pod: &str) -> Option<PodCondition> {
        let pod = self.pods().get(pod).await.ok()?;
        pod.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
    }

    /// Waits for PodScheduled=False with reason Unschedulable; its message.
    async fn unschedulable(&self, pod: &str) -> String {
        eventually(&format!("{pod} to be reported unschedulable"), || async {
            let condition = self.pod_scheduled(pod).await?;
            let unschedulable = condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable");
            unschedulable.then(|| condition.message.unwrap_or_default())
        })
        .await
    }

    /// The events about `pod` with `reason`.
    async fn events(&self, pod: &str, reason: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let list = events.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        list.into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some(reason))
            .collect()
    }

    /// How many of `pods` landed on each node.
    async fn spread(&self, pods: &[String]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for pod in pods {
            *counts.entry(self.bound(pod).await).or_insert(0) += 1;
        }
        counts
    }
}

fn now() -> Value {
    json!(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()))
}

/// Polls `check` until it yields a value, or panics naming `reason`.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

#[test]
fn pods_are_bound_and_spread_by_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let mut cluster = Cluster::without_scheduler(&dir.path().join("cp")).await;
        for name in ["n1", "n2", "n3"] {
            cluster.add_node(name, "4", "8Gi", json!({}), json!([])).await;
        }
        let pods: Vec<String> = (0..6).map(|i| format!("web-{i}")).collect();
        for pod in &pods {
            cluster.add_pod(pod, "1", "1Gi", json!({})).await;
        }
        // All six are pending when the scheduler starts and are placed back
        // to back; the emptiest node always scores highest: two each.
        cluster.start_scheduler();
        let spread = cluster.spread(&pods).await;
        let expected: BTreeMap<String, usize> = ["n1", "n2", "n3"].iter().map(|n| (n.to_string(), 2)).collect();
        assert_eq!(spread, expected);

        let node = cluster.bound("web-0").await;
        let condition = eventually("PodScheduled=True on web-0", || async {
            cluster.pod_scheduled("web-0").await.filter(|c| c.status == "True")
        })
        .await;
        assert_eq!(condition.reason, None);
        let scheduled =
            eventually("a Scheduled event", || async { cluster.events("web-0", "Scheduled").await.pop() }).await;
        assert_eq!(scheduled.type_.as_deref(), Some("Normal"));
        assert_eq!(scheduled.message, Some(format!("Successfully assigned default/web-0 to {node}")));
        assert_eq!(scheduled.source.and_then(|s| s.component).as_deref(), Some("default-scheduler"));
        cluster.stop().await;
    });
}

#[test]
fn a_pod_too_big_for_every_node_waits_for_one_that_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let cluster = Cluster::start(&dir.path().join("cp")).await;
        cluster.add_node("small-1", "4", "8Gi", json!({}), json!([])).await;
        cluster.add_node("small-2", "4", "8Gi", json!({}), json!([])).await;
        cluster.add_pod("big", "1", "64Gi", json!({})).await;

        let message = cluster.unschedulable("big").await;
        assert_eq!(
            message,
            "0/2 nodes are available: 2 Insufficient memory. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        let failed =
            eventually("a FailedScheduling event", || async { cluster.events("big", "FailedScheduling").await.pop() })
                .await;
        assert_eq!(failed.type_.as_deref(), Some("Warning"));
        assert_eq!(failed.message.as_deref(), Some(message.as_str()));
        assert!(message.contains("Insufficient memory"));
        assert_eq!(cluster.node_of("big").await, None);

        // A node that fits arrives: the pending pod is retried and lands there.
        cluster.add_node("large", "8", "128Gi", json!({}), json!([])).await;
        assert_eq!(cluster.bound("big").await, "large");
        eventually("PodScheduled=True replacing the Unschedulable condition", || async {
            cluster.pod_scheduled("big").await.filter(|c| c.status == "True" && c.message.is_none())
        })
        .await;
        cluster.stop().await;
    });
}

#[test]
fn a_deleted_pod_makes_room_for_a_pending_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let cluster = Cluster::start(&dir.path().join("cp")).await;
        cluster.add_node("only", "1", "2Gi", json!({}), json!([])).await;
        cluster.add_pod("first", "800m", "128Mi", json!({})).await;
        assert_eq!(cluster.bound("first").await, "only");
        cluster.add_pod("second", "800m", "128Mi", json!({})).await;
        let message = cluster.unschedulable("second").await;
        assert_eq!(
            message,
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );

        // No node agent finishes a graceful deletion here: delete at once.
        cluster.pods().delete("first", &DeleteParams::default().grace_period(0)).await.expect("delete");
        assert_eq!(cluster.bound("second").await, "only");
        cluster.stop().await;
    });
}

#[test]
fn cordon_keeps_new_pods_off_and_uncordon_lets_them_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let mut cluster = Cluster::without_scheduler(&dir.path().join("cp")).await;
        cluster.add_node("n1", "4", "8Gi", json!({}), json!([])).await;
        cluster.add_node("n2", "4", "8Gi", json!({}), json!([])).await;
        cluster.server.kubectl_ok(&["cordon", "n1"]);
        // Started after the cordon, so its first list already shows it.
        cluster.start_scheduler();

        let pods: Vec<String> = (0..3).map(|i| format!("app-{i}")).collect();
        for pod in &pods {
            cluster.add_pod(pod, "100m", "128Mi", json!({})).await;
        }
        let spread = cluster.spread(&pods).await;
        assert_eq!(spread, BTreeMap::from([("n2".to_string(), 3)]), "nothing on the cordoned node");

        // n2 has 3700m cpu left, n1 is cordoned.
        cluster.add_pod("late", "3800m", "128Mi", json!({})).await;
        let message = cluster.unschedulable("late").await;
        assert_eq!(
            message,
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );

        cluster.server.kubectl_ok(&["uncordon", "n1"]);
        assert_eq!(cluster.bound("late").await, "n1");
        cluster.stop().await;
    });
}

#[test]
fn node_selectors_and_taints_steer_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let cluster = Cluster::start(&dir.path().join("cp")).await;
        cluster.add_node("ssd", "4", "8Gi", json!({"disk": "ssd"}), json!([])).await;
        cluster.add_node("plain", "4", "8Gi", json!({}), json!([])).await;
        let gpu_taint = json!([{"key": "gpu", "value": "true", "effect": "NoSchedule"}]);
        cluster.add_node("gpu", "4", "8Gi", json!({"accelerator": "gpu"}), gpu_taint).await;

        cluster.add_pod("wants-ssd", "100m", "128Mi", json!({"nodeSelector": {"disk": "ssd"}})).await;
        let tolerates_gpu = json!({
            "tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "accelerator", "operator": "In", "values": ["gpu"]}]}
            ]}}},
        });
        cluster.add_pod("wants-gpu", "100m", "128Mi", tolerates_gpu).await;
        let plain: Vec<String> = (0..4).map(|i| format!("plain-{i}")).collect();
        for pod in &plain {
            cluster.add_pod(pod, "100m", "128Mi", json!({})).await;
        }

        assert_eq!(cluster.bound("wants-ssd").await, "ssd");
        assert_eq!(cluster.bound("wants-gpu").await, "gpu");
        let spread = cluster.spread(&plain).await;
        assert!(!spread.contains_key("gpu"), "no pod without the toleration on the tainted node: {spread:?}");

        cluster.add_pod("wants-nvme", "100m", "128Mi", json!({"nodeSelector": {"disk": "nvme"}})).await;
        let message = cluster.unschedulable("wants-nvme").await;
        assert_eq!(
            message,
            "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, \
             2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        cluster.stop().await;
    });
}
