//! The labels and annotations that tie runtime sandboxes and containers to
//! their pod (the kubelet's `io.kubernetes.*` keys), so a restarted agent
//! finds everything it started by asking the runtime.

use std::collections::HashMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// Not a kubelet label: the node whose agent owns the sandbox or container.
/// One containerd can serve several agents (the tests run several), and an
/// agent must never collect another's pods as orphans.
pub const NODE_NAME: &str = "io.capstan.node-name";

/// Labels every sandbox and container of one pod carries.
pub fn pod_labels(node: &str, namespace: &str, name: &str, uid: &str) -> HashMap<String, String> {
    HashMap::from([
        (NODE_NAME.to_string(), node.to_string()),
        (POD_NAMESPACE.to_string(), namespace.to_string()),
        (POD_NAME.to_string(), name.to_string()),
        (POD_UID.to_string(), uid.to_string()),
    ])
}

/// The selector for everything one agent started.
pub fn node_selector(node: &str) -> HashMap<String, String> {
    HashMap::from([(NODE_NAME.to_string(), node.to_string())])
}

/// The selector for one pod's sandboxes and containers.
pub fn pod_selector(node: &str, uid: &str) -> HashMap<String, String> {
    HashMap::from([(NODE_NAME.to_string(), node.to_string()), (POD_UID.to_string(), uid.to_string())])
}

/// The restart count a container was started with; 0 when absent or bad.
pub fn restart_count(annotations: &HashMap<String, String>) -> i32 {
    annotations.get(RESTART_COUNT).and_then(|v| v.parse().ok()).unwrap_or(0)
}
