//! Small accessors over a Pod used across the agent.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};

/// Who a pod is: enough to name it in the API and in the runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PodId {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl PodId {
    pub fn of(pod: &Pod) -> PodId {
        PodId {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        }
    }

    /// The kubelet's `format.Pod`: `name_namespace(uid)`.
    pub fn display(&self) -> String {
        format!("{}_{}({})", self.name, self.namespace, self.uid)
    }
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

pub fn restart_policy(pod: &Pod) -> RestartPolicy {
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
        Some("OnFailure") => RestartPolicy::OnFailure,
        Some("Never") => RestartPolicy::Never,
        _ => RestartPolicy::Always,
    }
}

/// Whether a container that exited with `exit_code` (None: never ran) is
/// started again under `policy`.
pub fn should_restart(policy: RestartPolicy, exit_code: Option<i32>) -> bool {
    match (policy, exit_code) {
        (_, None) => true,
        (RestartPolicy::Always, _) => true,
        (RestartPolicy::OnFailure, Some(code)) => code != 0,
        (RestartPolicy::Never, Some(_)) => false,
    }
}

/// Seconds a container gets between SIGTERM and SIGKILL when the pod is
/// deleted: what is left of the deletion's grace period, at least 2 s as
/// the kubelet's minimum.
pub fn deletion_grace_seconds(pod: &Pod) -> i64 {
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    grace.max(2)
}

/// The event target for the pod, or for one of its containers.
pub fn object_ref(pod: &Pod, container: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Pod".to_string()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: container.map(|c| format!("spec.containers{{{c}}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn restart_policies() {
        use RestartPolicy::*;
        assert!(should_restart(Never, None));
        assert!(!should_restart(Never, Some(1)));
        assert!(should_restart(OnFailure, Some(1)));
        assert!(!should_restart(OnFailure, Some(0)));
        assert!(should_restart(Always, Some(0)));
    }

    #[test]
    fn deletion_grace_has_a_floor() {
        let mut pod = Pod { metadata: ObjectMeta::default(), ..Default::default() };
        assert_eq!(deletion_grace_seconds(&pod), 30);
        pod.metadata.deletion_grace_period_seconds = Some(0);
        assert_eq!(deletion_grace_seconds(&pod), 2);
        pod.metadata.deletion_grace_period_seconds = Some(5);
        assert_eq!(deletion_grace_seconds(&pod), 5);
    }

    #[test]
    fn display_is_kubelets_format() {
        let id = PodId { namespace: "ns".into(), name: "p".into(), uid: "u".into() };
        assert_eq!(id.display(), "p_ns(u)");
    }
}
