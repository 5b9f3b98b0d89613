//! The node agent in-process against `capstan server` and the machine's
//! real containerd (prepared by `ops/deploy/containerd-setup.sh`, as root).
//! Pods are created already bound (spec.nodeName): no scheduler runs here.
//! Every test removes the sandboxes its agent made, even when it fails.

use std::collections::HashMap;
use std::future::Future;
use std::process::Command;
use std::time::Duration;

use capstan_node::cri::Runtime;
use capstan_node::{AgentConfig, DEFAULT_CONTAINER_RUNTIME_ENDPOINT, labels};
use capstan_tests::kube_cluster::Apiserver;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SOCKET: &str = "/run/containerd/containerd.sock";
const IMAGE: &str = "capstan.local/busybox:1";

/// Fails (never skips) when containerd is not there.
fn require_containerd() {
    assert!(
        std::path::Path::new(SOCKET).exists(),
        "containerd's socket {SOCKET} is missing: run `ops/deploy/containerd-setup.sh` as root first"
    );
}

/// A running agent for one node, with a kube client to the same server.
struct Agent {
    node: String,
    client: kube::Client,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), capstan_node::Error>>>,
}

impl Agent {
    fn start(client: kube::Client, node: &str) -> Agent {
        let stop = CancellationToken::new();
        let config = AgentConfig {
            node_status_update_frequency: Duration::from_secs(1),
            node_lease_renew_interval: Duration::from_secs(1),
            pod_sync_period: Duration::from_millis(500),
            ..AgentConfig::new(node)
        };
        let task = tokio::spawn(capstan_node::run(client.clone(), config, stop.clone()));
        Agent { node: node.to_string(), client, stop, task: Some(task) }
    }

    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let result = task.await.expect("the agent task panicked");
            result.expect("the agent returned an error");
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Creates a pod bound to this node from a JSON spec.
    async fn create_pod(&self, name: &str, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["nodeName"] = json!(self.node);
        spec["terminationGracePeriodSeconds"] = json!(2);
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod json");
        self.pods().create(&PostParams::default(), &pod).await.expect("create pod")
    }
}

impl Drop for Agent {
    /// A failed test stops its agent before [`Cleanup`] runs.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Removes every sandbox labelled with `node`, also when a test panics.
/// Declare it before the [`Agent`], so that it is dropped after it.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let node = self.0.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            // An agent that was just told to stop may still be starting a container.
            rt.block_on(async {
                let mut result = Ok(());
                for _ in 0..20 {
                    result = remove_sandboxes(&node).await;
                    if result.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                result
            })
        })
        .join();
        if let Ok(Err(err)) = done {
            eprintln!("cleanup of node {}'s sandboxes failed: {err}", self.0);
        }
    }
}

async fn runtime() -> Runtime {
    Runtime::connect(DEFAULT_CONTAINER_RUNTIME_ENDPOINT).await.expect("connect to containerd")
}

async fn remove_sandboxes(node: &str) -> Result<(), capstan_node::Error> {
    let runtime = Runtime::connect(DEFAULT_CONTAINER_RUNTIME_ENDPOINT).await?;
    for sandbox in runtime.list_sandboxes(labels::node_selector(node)).await? {
        runtime.stop_sandbox(&sandbox.id).await?;
        runtime.remove_sandbox(&sandbox.id).await?;
        let label = |key: &str| sandbox.labels.get(key).cloned().unwrap_or_default();
        let logs = format!(
            "/var/log/pods/{}_{}_{}",
            label(labels::POD_NAMESPACE),
            label(labels::POD_NAME),
            label(labels::POD_UID)
        );
        let _ = std::fs::remove_dir_all(logs);
    }
    Ok(())
}

/// Containers of `node`'s pod `uid` known to the runtime.
async fn containers_of(uid: &str, node: &str) -> Vec<capstan_proto::cri::Container> {
    runtime().await.list_containers(labels::pod_selector(node, uid)).await.expect("list containers")
}

/// Polls `cond` until it gives Some, panicking with `reason` after `timeout`.
async fn wait_for<T, F: Future<Output = Option<T>>>(timeout: Duration, reason: &str, mut cond: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {reason}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn container_status(pods: &Api<Pod>, pod: &str, container: &str) -> Option<ContainerStatus> {
    let pod = pods.get(pod).await.ok()?;
    pod.status?.container_statuses?.into_iter().find(|c| c.name == container)
}

fn condition(pod: &Pod, type_: &str) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.clone())
}

fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn ctr_containers() -> String {
    let out = Command::new("ctr").args(["-n", "k8s.io", "c", "ls", "-q"]).output().expect("ctr runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_registers_ready_and_renews_its_lease() {
    require_containerd();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(dir.path());
    let node = unique("lease-node");
    let _cleanup = Cleanup(node.clone());
    let mut agent = Agent::start(server.client().await, &node);
    let nodes: Api<Node> = Api::all(agent.client.clone());

    tracing_phase("the node registers and is Ready");
    let registered = wait_for(Duration::from_secs(30), "the node to be Ready", || async {
        let n = nodes.get_opt(&node).await.ok()??;
        let ready = n.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(n)
    })
    .await;
    let labels = registered.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("kubernetes.io/hostname"), Some(&node));
    assert_eq!(labels.get("kubernetes.io/os").map(String::as_str), Some("linux"));
    let status = registered.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    assert!(info.container_runtime_version.starts_with("containerd://"), "{info:?}");
    assert_eq!(status.capacity.unwrap_or_default().get("pods").map(|q| q.0.as_str()), Some("110"));
    assert_eq!(status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port), Some(10250));
    let table = server.kubectl_ok(&["get", "node", &node]);
    assert!(table.contains("Ready"), "{table}");

    tracing_phase("the lease is owned by the node and renewed");
    let leases: Api<Lease> = Api::namespaced(agent.client.clone(), "kube-node-lease");
    let renew_time = |l: &Lease| l.spec.as_ref().and_then(|s| s.renew_time.clone());
    let first =
        wait_for(Duration::from_secs(15), "the node lease", || async { leases.get_opt(&node).await.ok()? }).await;
    let spec = first.spec.clone().unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some(node.as_str()));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = first.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| (o.kind.as_str(), o.name.as_str())), Some(("Node", node.as_str())));
    assert_eq!(owner.first().map(|o| o.uid.clone()), registered.metadata.uid.clone());
    wait_for(Duration::from_secs(15), "the lease to be renewed", || async {
        let now = leases.get(&node).await.ok()?;
        (renew_time(&now) > renew_time(&first)).then_some(())
    })
    .await;
    agent.stop().await;
}

fn tracing_phase(what: &str) {
    eprintln!("--- {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bound_pod_runs_with_an_ip_and_its_containers_go_when_it_is_deleted() {
    require_containerd();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(dir.path());
    let node = unique("run-node");
    let _cleanup = Cleanup(node.clone());
    let mut agent = Agent::start(server.client().await, &node);
    let pods = agent.pods();

    tracing_phase("a pod with env from fields runs and gets a pod IP");
    let pod = agent
        .create_pod(
            "web",
            json!({"containers": [{
                "name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c"], "args": ["echo $(GREETING) from $(POD_NAME); sleep 3600"],
                "workingDir": "/tmp",
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
            }]}),
        )
        .await;
    let uid = pod.metadata.uid.clone().expect("uid");
    let running = wait_for(Duration::from_secs(60), "the pod to run and be Ready", || async {
        let p = pods.get("web").await.ok()?;
        let status = p.status.as_ref()?;
        (status.phase.as_deref() == Some("Running") && condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    let status = running.status.clone().unwrap_or_default();
    let pod_ip = status.pod_ip.clone().expect("a pod IP");
    assert!(pod_ip.starts_with("10.88."), "a bridge network IP, got {pod_ip}");
    assert_eq!(status.pod_ips.clone().unwrap_or_default().len(), 1);
    assert!(status.host_ip.is_some() && status.start_time.is_some());
    for wanted in ["PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady"] {
        assert!(condition(&running, wanted).is_some(), "condition {wanted} in {:?}", status.conditions);
    }
    let c = status.container_statuses.clone().unwrap_or_default().remove(0);
    let container_id = c.container_id.clone().expect("containerID");
    assert!(container_id.starts_with("containerd://"), "{container_id}");
    assert!(c.ready && c.started == Some(true) && c.restart_count == 0);
    assert!(c.image_id.starts_with("sha256:"), "imageID {:?}", c.image_id);
    assert!(c.state.as_ref().and_then(|s| s.running.as_ref()).is_some());

    tracing_phase("the container is visible to ctr, with env and working dir applied");
    let id = container_id.trim_start_matches("containerd://").to_string();
    assert!(ctr_containers().contains(&id), "ctr -n k8s.io c ls lists {id}");
    let exec = runtime().await.exec_sync(&id, vec!["sh".into(), "-c".into(), "echo $POD_IP $(pwd)".into()], 5).await;
    let out = exec.expect("exec");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{pod_ip} /tmp"));

    let version = running.metadata.resource_version.clone();

    tracing_phase("kubectl describe lists the kubelet's events");
    let describe = wait_for(Duration::from_secs(20), "the Started event", || async {
        let text = server.kubectl_ok(&["describe", "pod", "web"]);
        text.contains("Started container main").then_some(text)
    })
    .await;
    for wanted in ["already present on machine", "Created container: main", "kubelet"] {
        assert!(describe.contains(wanted), "describe shows {wanted:?}:\n{describe}");
    }
    let steady = pods.get("web").await.expect("get").metadata.resource_version;
    assert_eq!(steady, version, "an unchanged pod's status is not written again");

    tracing_phase("deleting the pod stops and removes its containers, then the pod");
    pods.delete("web", &DeleteParams::default()).await.expect("delete");
    wait_for(Duration::from_secs(30), "the pod to leave the API", || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(containers_of(&uid, &node).await.is_empty(), "no containers left");
    assert!(!ctr_containers().contains(&id), "ctr no longer lists {id}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_container_goes_crash_loop_with_growing_restarts() {
    require_containerd();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(dir.path());
    let node = unique("crash-node");
    let _cleanup = Cleanup(node.clone());
    let mut agent = Agent::start(server.client().await, &node);
    let pods = agent.pods();

    agent
        .create_pod(
            "crash",
            json!({"containers": [{"name": "fail", "image": IMAGE, "command": ["sh", "-c", "exit 1"]}]}),
        )
        .await;
    let status = wait_for(Duration::from_secs(60), "CrashLoopBackOff with restartCount >= 1", || async {
        let c = container_status(&pods, "crash", "fail").await?;
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        (waiting.reason.as_deref() == Some("CrashLoopBackOff") && c.restart_count >= 1).then_some(c)
    })
    .await;
    let waiting = status.state.as_ref().and_then(|s| s.waiting.clone()).unwrap_or_default();
    let message = waiting.message.unwrap_or_default();
    assert!(message.starts_with("back-off 10s restarting failed container=fail pod=crash_default("), "{message}");
    let last = status.last_state.as_ref().and_then(|s| s.terminated.clone()).expect("lastState.terminated");
    assert_eq!(last.exit_code, 1);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    let phase = pods.get("crash").await.ok().and_then(|p| p.status).and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Running"), "restartPolicy Always keeps the pod Running");

    wait_for(Duration::from_secs(60), "restartCount to grow to 2 with a 20s back-off", || async {
        let c = container_status(&pods, "crash", "fail").await?;
        let message = c.state.as_ref()?.waiting.as_ref()?.message.clone()?;
        (c.restart_count >= 2 && message.starts_with("back-off 20s")).then_some(())
    })
    .await;
    let uid = pods.get("crash").await.ok().and_then(|p| p.metadata.uid).expect("uid");
    let kept = containers_of(&uid, &node).await;
    assert!(kept.len() <= 2, "only the last dead containers are kept: {}", kept.len());
    let describe = server.kubectl_ok(&["describe", "pod", "crash"]);
    assert!(describe.contains("Back-off restarting failed container fail in pod crash_default"), "{describe}");

    pods.delete("crash", &DeleteParams::default()).await.expect("delete");
    wait_for(Duration::from_secs(30), "the pod to leave the API", || async {
        pods.get_opt("crash").await.ok()?.is_none().then_some(())
    })
    .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probes_restart_on_liveness_failure_and_keep_unready_on_readiness_failure() {
    require_containerd();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(dir.path());
    let node = unique("probe-node");
    let _cleanup = Cleanup(node.clone());
    let mut agent = Agent::start(server.client().await, &node);
    let pods = agent.pods();

    tracing_phase("a failing liveness probe restarts the container");
    agent
        .create_pod(
            "live",
            json!({"containers": [{
                "name": "app", "image": IMAGE, "command": ["sleep", "3600"],
                "livenessProbe": {"exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1, "failureThreshold": 2},
            }]}),
        )
        .await;
    wait_for(Duration::from_secs(60), "a restart after the liveness failure", || async {
        (container_status(&pods, "live", "app").await?.restart_count >= 1).then_some(())
    })
    .await;
    let describe = server.kubectl_ok(&["describe", "pod", "live"]);
    assert!(describe.contains("Container app failed liveness probe, will be restarted"), "{describe}");
    assert!(describe.contains("Liveness probe failed"), "{describe}");

    tracing_phase("a failing readiness probe keeps the pod unready; a passing one makes it ready");
    agent
        .create_pod(
            "ready",
            json!({"containers": [
                {"name": "never", "image": IMAGE, "command": ["sleep", "3600"],
                 "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}},
                {"name": "http", "image": IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/tmp"],
                 "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}},
            ]}),
        )
        .await;
    let pod = wait_for(Duration::from_secs(60), "the tcp-probed container to be ready", || async {
        let c = container_status(&pods, "ready", "http").await?;
        c.ready.then_some(())?;
        pods.get("ready").await.ok()
    })
    .await;
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"));
    assert_eq!(condition(&pod, "ContainersReady").as_deref(), Some("False"));
    let never = container_status(&pods, "ready", "never").await.expect("status");
    assert!(!never.ready && never.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
    assert_eq!(never.restart_count, 0, "readiness never restarts");
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Running"));

    for name in ["live", "ready"] {
        pods.delete(name, &DeleteParams::default()).await.expect("delete");
    }
    wait_for(Duration::from_secs(30), "the pods to leave the API", || async {
        let left = pods.list(&Default::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_agent_adopts_what_runs_without_duplicates() {
    require_containerd();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(dir.path());
    let node = unique("adopt-node");
    let _cleanup = Cleanup(node.clone());
    let client = server.client().await;
    let mut agent = Agent::start(client.clone(), &node);
    let pods = agent.pods();

    let pod = agent
        .create_pod(
            "steady",
            json!({"containers": [
                {"name": "a", "image": IMAGE, "command": ["sleep", "3600"]},
                {"name": "b", "image": IMAGE, "command": ["sh", "-c", "sleep 1; exit 3"]},
            ]}),
        )
        .await;
    let uid = pod.metadata.uid.clone().expect("uid");
    let before = wait_for(Duration::from_secs(60), "b to have restarted once", || async {
        let a = container_status(&pods, "steady", "a").await?;
        let b = container_status(&pods, "steady", "b").await?;
        (a.ready && b.restart_count >= 1).then_some((a, b))
    })
    .await;

    tracing_phase("the agent stops and starts again");
    agent.stop().await;
    let sandboxes_before = runtime().await.list_sandboxes(labels::pod_selector(&node, &uid)).await.expect("list");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let renewed = || async { leases.get(&node).await.ok()?.spec?.renew_time };
    let stopped_at = renewed().await;
    let mut agent = Agent::start(client, &node);
    let pods = agent.pods();
    // Two renewals by the new agent: it has been syncing pods (every 0.5 s) for a while.
    let first = wait_for(Duration::from_secs(20), "the new agent's first lease renewal", || async {
        renewed().await.filter(|t| Some(t) > stopped_at.as_ref())
    })
    .await;
    wait_for(Duration::from_secs(20), "the new agent's second lease renewal", || async {
        renewed().await.filter(|t| *t > first)
    })
    .await;

    let a = container_status(&pods, "steady", "a").await.expect("a status");
    assert_eq!(a.container_id, before.0.container_id, "the running container is adopted, not replaced");
    let sandboxes = runtime().await.list_sandboxes(labels::pod_selector(&node, &uid)).await.expect("list");
    assert_eq!(sandboxes.len(), sandboxes_before.len(), "no new sandbox");
    let containers = containers_of(&uid, &node).await;
    let mut per_name: HashMap<String, usize> = HashMap::new();
    for c in containers.iter().filter(|c| c.state == capstan_proto::cri::ContainerState::ContainerRunning as i32) {
        *per_name.entry(c.metadata.clone().map(|m| m.name).unwrap_or_default()).or_default() += 1;
    }
    assert!(per_name.values().all(|n| *n <= 1), "no container name runs twice: {per_name:?}");
    let b = container_status(&pods, "steady", "b").await.expect("b status");
    assert!(
        b.restart_count >= before.1.restart_count,
        "restart count preserved: {} then {}",
        before.1.restart_count,
        b.restart_count
    );

    pods.delete("steady", &DeleteParams::default()).await.expect("delete");
    wait_for(Duration::from_secs(30), "the pod to leave the API", || async {
        pods.get_opt("steady").await.ok()?.is_none().then_some(())
    })
    .await;
    let left = containers_of(&uid, &node).await;
    assert!(left.is_empty(), "containers left: {left:?}");
    agent.stop().await;
}
