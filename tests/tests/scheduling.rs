//! The scheduler in `capstan server` against nodes the test registers
//! itself (no agent: the nodes are API objects with a status), through the
//! real kubectl and the kube client.

use std::time::Duration;

use capstan_tests::kube_cluster::Apiserver;
use capstan_tests::{have, wait_for};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

async fn add_node(client: &kube::Client, name: &str, cpu: &str, memory: &str, labels: serde_json::Value) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("node");
    nodes.create(&PostParams::default(), &node).await.expect("create node");
    let status = json!({"status": {
        "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("node status");
}

async fn add_pod(client: &kube::Client, name: &str, cpu: &str, memory: &str, extra: serde_json::Value) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut spec = json!({"containers": [{"name": "c", "image": "capstan.local/busybox:1",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
}

fn node_of(server: &Apiserver, pod: &str) -> String {
    let out = server.kubectl(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn failed_scheduling(server: &Apiserver, pod: &str) -> String {
    let selector = format!("involvedObject.name={pod},reason=FailedScheduling");
    let out = server.kubectl(&["get", "events", "--field-selector", &selector, "-o", "jsonpath={.items[*].message}"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_go_where_they_fit_and_wait_with_the_reason_when_nothing_does() {
    if !have("kubectl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(dir.path());
    let client = server.client().await;
    add_node(&client, "small", "1", "1Gi", json!({"disk": "hdd"})).await;
    add_node(&client, "big", "8", "16Gi", json!({"disk": "ssd"})).await;

    // Least allocated: the bigger node wins an ordinary pod.
    add_pod(&client, "first", "500m", "512Mi", json!({})).await;
    let node = wait_for(Duration::from_secs(30), "first to be bound", || Some(node_of(&server, "first")).filter(|n| !n.is_empty()));
    assert_eq!(node, "big");
    let scheduled = server.kubectl_ok(&["get", "pod", "first", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}"]);
    assert_eq!(scheduled, "True");
    let events = server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=first,reason=Scheduled", "-o", "jsonpath={.items[*].message}"]);
    assert!(events.contains("Successfully assigned default/first to big"), "{events}");

    // A nodeSelector steers; nothing has 100Gi, so that pod waits with the reason.
    add_pod(&client, "on-hdd", "100m", "64Mi", json!({"nodeSelector": {"disk": "hdd"}})).await;
    wait_for(Duration::from_secs(30), "on-hdd to land on small", || (node_of(&server, "on-hdd") == "small").then_some(()));
    add_pod(&client, "huge", "100m", "100Gi", json!({})).await;
    let message = wait_for(Duration::from_secs(30), "a FailedScheduling event", || {
        Some(failed_scheduling(&server, "huge")).filter(|m| !m.is_empty())
    });
    assert_eq!(
        message,
        "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    let condition = server.kubectl_ok(&["get", "pod", "huge", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}"]);
    assert_eq!(condition, "Unschedulable");

    // A node that fits appears: the waiting pod goes there.
    add_node(&client, "giant", "64", "512Gi", json!({})).await;
    wait_for(Duration::from_secs(30), "huge to land on giant", || (node_of(&server, "huge") == "giant").then_some(()));

    // Cordoned nodes take no new pods; uncordoned they do.
    for node in ["small", "big", "giant"] {
        server.kubectl_ok(&["cordon", node]);
    }
    add_pod(&client, "later", "100m", "64Mi", json!({})).await;
    let message = wait_for(Duration::from_secs(30), "later to be refused", || {
        Some(failed_scheduling(&server, "later")).filter(|m| !m.is_empty())
    });
    assert!(message.starts_with("0/3 nodes are available: 3 node(s) were unschedulable."), "{message}");
    server.kubectl_ok(&["uncordon", "small"]);
    wait_for(Duration::from_secs(30), "later to land on small", || (node_of(&server, "later") == "small").then_some(()));

    // Taints keep pods off unless tolerated.
    server.kubectl_ok(&["taint", "node", "small", "dedicated=db:NoSchedule"]);
    add_pod(&client, "plain", "100m", "64Mi", json!({})).await;
    let message = wait_for(Duration::from_secs(30), "plain to be refused", || {
        Some(failed_scheduling(&server, "plain")).filter(|m| m.contains("untolerated taint"))
    });
    assert!(message.contains("1 node(s) had untolerated taint {dedicated: db}"), "{message}");
    let toleration = json!({"tolerations": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]});
    add_pod(&client, "tolerant", "100m", "64Mi", toleration).await;
    wait_for(Duration::from_secs(30), "tolerant to land on small", || (node_of(&server, "tolerant") == "small").then_some(()));
    assert_eq!(node_of(&server, "plain"), "");
}
