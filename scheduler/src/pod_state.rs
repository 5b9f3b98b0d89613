//! Which pods this scheduler must place, and which pods occupy a node.

use k8s_openapi::api::core::v1::Pod;

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The queue's key for a pod: `namespace/name`.
pub fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// The node a pod is bound to, if any.
pub fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

/// Succeeded or Failed: its containers are gone for good.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// An unbound pod for `scheduler_name` that is neither being deleted, nor
/// finished, nor held back by scheduling gates.
pub fn needs_scheduling(pod: &Pod, scheduler_name: &str) -> bool {
    let Some(spec) = &pod.spec else { return false };
    let wanted = spec.scheduler_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(DEFAULT_SCHEDULER_NAME);
    node_name(pod).is_none()
        && wanted == scheduler_name
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
        && spec.scheduling_gates.as_ref().is_none_or(Vec::is_empty)
}

/// The node whose resources a pod uses: bound and not finished. A pod being
/// deleted still counts until it is gone, as its containers still run.
pub fn occupied_node(pod: &Pod) -> Option<&str> {
    node_name(pod).filter(|_| !is_terminal(pod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSchedulingGate, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn pod(scheduler: Option<&str>, node: Option<&str>, phase: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                scheduler_name: scheduler.map(str::to_string),
                node_name: node.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn unbound_pods_for_us_need_scheduling() {
        assert!(needs_scheduling(&pod(None, None, "Pending"), DEFAULT_SCHEDULER_NAME));
        assert!(needs_scheduling(&pod(Some(""), None, "Pending"), DEFAULT_SCHEDULER_NAME));
        assert!(needs_scheduling(&pod(Some("default-scheduler"), Some(""), "Pending"), DEFAULT_SCHEDULER_NAME));
        assert!(!needs_scheduling(&pod(Some("other"), None, "Pending"), DEFAULT_SCHEDULER_NAME));
        assert!(!needs_scheduling(&pod(None, Some("n1"), "Pending"), DEFAULT_SCHEDULER_NAME));
        assert!(!needs_scheduling(&pod(None, None, "Failed"), DEFAULT_SCHEDULER_NAME));
    }

    #[test]
    fn deleting_and_gated_pods_wait() {
        let mut deleting = pod(None, None, "Pending");
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!needs_scheduling(&deleting, DEFAULT_SCHEDULER_NAME));
        let mut gated = pod(None, None, "Pending");
        if let Some(spec) = gated.spec.as_mut() {
            spec.scheduling_gates = Some(vec![PodSchedulingGate { name: "wait".into() }]);
        }
        assert!(!needs_scheduling(&gated, DEFAULT_SCHEDULER_NAME));
    }

    #[test]
    fn bound_running_pods_occupy_their_node() {
        assert_eq!(occupied_node(&pod(None, Some("n1"), "Running")), Some("n1"));
        assert_eq!(occupied_node(&pod(None, Some("n1"), "Succeeded")), None);
        assert_eq!(occupied_node(&pod(None, None, "Pending")), None);
    }
}
