//! Filter plugins: can this pod go on this node? Each returns the reason
//! text kube-scheduler uses when the answer is no.

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration};

use crate::node_info::{NodeInfo, host_ports, pod_requests};

const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Every filter in kube-scheduler's order; the reasons of those that fail.
pub fn failures(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    let checks: [fn(&Pod, &NodeInfo) -> Vec<String>; 6] =
        [node_unschedulable, node_name, taint_toleration, node_affinity, node_ports, resources_fit];
    for check in checks {
        let reasons = check(pod, info);
        // kube-scheduler stops at the first failing plugin for a node.
        if !reasons.is_empty() {
            return reasons;
        }
    }
    Vec::new()
}

fn node_unschedulable(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    let cordoned = info.node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    let taint = Taint { key: UNSCHEDULABLE_TAINT.into(), effect: "NoSchedule".into(), ..Taint::default() };
    if cordoned && !tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
        return vec!["node(s) were unschedulable".into()];
    }
    Vec::new()
}

fn node_name(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
        Some(wanted) if wanted != info.name() => vec!["node(s) didn't match the requested node name".into()],
        _ => Vec::new(),
    }
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default()
}

/// A toleration matches a taint by key (or empty key with Exists), value
/// (Equal) and effect (or any effect when unset).
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect_ok = toleration.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = toleration.key.as_deref().unwrap_or_default();
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    let key_ok = key == taint.key || (key.is_empty() && operator == "Exists");
    let value_ok = match operator {
        "Exists" => true,
        _ => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
    };
    effect_ok && key_ok && value_ok
}

fn taint_toleration(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    let taints = info.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let untolerated = taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations(pod).iter().any(|t| tolerates(t, taint)));
    match untolerated {
        Some(taint) => vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key,
            taint.value.as_deref().unwrap_or_default()
        )],
        None => Vec::new(),
    }
}

fn node_affinity(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    let Some(spec) = &pod.spec else { return Vec::new() };
    let labels = info.node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    // Terms are ORed; an empty list of terms matches nothing.
    let affinity_ok = required.is_none_or(|r| r.node_selector_terms.iter().any(|term| term_matches(term, info)));
    if selector_ok && affinity_ok {
        Vec::new()
    } else {
        vec!["node(s) didn't match Pod's node affinity/selector".into()]
    }
}

fn term_matches(term: &NodeSelectorTerm, info: &NodeInfo) -> bool {
    let labels = info.node.metadata.labels.clone().unwrap_or_default();
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(info.name())))
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let number = |v: &str| v.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b),
        "Lt" => matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b),
        _ => false,
    }
}

fn node_ports(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    let conflict = host_ports(pod).iter().any(|(protocol, ip, port)| {
        info.host_ports
            .iter()
            .any(|(p, i, n)| p == protocol && n == port && (i == ip || i == "0.0.0.0" || ip == "0.0.0.0"))
    });
    if conflict { vec!["node(s) didn't have free ports for the requested pod ports".into()] } else { Vec::new() }
}

fn resources_fit(pod: &Pod, info: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if info.pods + 1 > info.allowed_pods() {
        reasons.push("Too many pods".to_string());
    }
    let wanted = pod_requests(pod);
    let free = info.allocatable();
    let used = info.requested;
    if wanted.cpu > 0 && used.cpu + wanted.cpu > free.cpu {
        reasons.push("Insufficient cpu".into());
    }
    if wanted.memory > 0 && used.memory + wanted.memory > free.memory {
        reasons.push("Insufficient memory".into());
    }
    if wanted.ephemeral_storage > 0 && used.ephemeral_storage + wanted.ephemeral_storage > free.ephemeral_storage {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{node, pod};
    use k8s_openapi::api::core::v1::NodeSpec;

    #[test]
    fn cordoned_nodes_take_only_pods_that_tolerate_it() {
        let mut info = NodeInfo::new(node("n1", "4", "8Gi"));
        info.node.spec = Some(NodeSpec { unschedulable: Some(true), ..NodeSpec::default() });
        let plain = pod("p", "100m", "1Gi");
        assert_eq!(failures(&plain, &info), ["node(s) were unschedulable"]);
        let mut tolerant = plain.clone();
        if let Some(spec) = tolerant.spec.as_mut() {
            spec.tolerations = Some(vec![Toleration {
                key: Some(UNSCHEDULABLE_TAINT.into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }]);
        }
        assert!(failures(&tolerant, &info).is_empty());
    }

    #[test]
    fn requests_must_fit_what_is_left() {
        let mut info = NodeInfo::new(node("n1", "1", "1Gi"));
        assert!(failures(&pod("a", "500m", "512Mi"), &info).is_empty());
        info.add_pod(&pod("a", "500m", "512Mi"));
        assert_eq!(failures(&pod("b", "600m", "600Mi"), &info), ["Insufficient cpu", "Insufficient memory"]);
        assert!(failures(&pod("c", "500m", "512Mi"), &info).is_empty());
    }

    #[test]
    fn taints_need_tolerations() {
        let mut info = NodeInfo::new(node("n1", "4", "8Gi"));
        info.node.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "dedicated".into(),
                value: Some("db".into()),
                effect: "NoSchedule".into(),
                ..Taint::default()
            }]),
            ..NodeSpec::default()
        });
        assert_eq!(failures(&pod("p", "0", "0"), &info), ["node(s) had untolerated taint {dedicated: db}"]);
        let mut tolerant = pod("p", "0", "0");
        if let Some(spec) = tolerant.spec.as_mut() {
            spec.tolerations = Some(vec![Toleration {
                key: Some("dedicated".into()),
                value: Some("db".into()),
                ..Toleration::default()
            }]);
        }
        assert!(failures(&tolerant, &info).is_empty());
    }

    #[test]
    fn node_selectors_and_required_affinity_match_labels() {
        let info = NodeInfo::new(node("n1", "4", "8Gi"));
        let mut selective = pod("p", "0", "0");
        if let Some(spec) = selective.spec.as_mut() {
            spec.node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        }
        assert_eq!(failures(&selective, &info), ["node(s) didn't match Pod's node affinity/selector"]);
        let requirement = |key: &str, operator: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        assert!(requirement_matches(&requirement("k", "In", &["a", "b"]), Some("b")));
        assert!(requirement_matches(&requirement("k", "NotIn", &["a"]), None));
        assert!(requirement_matches(&requirement("k", "Gt", &["3"]), Some("5")));
        assert!(!requirement_matches(&requirement("k", "Lt", &["3"]), Some("5")));
        let by_name = NodeSelectorTerm {
            match_fields: Some(vec![requirement("metadata.name", "In", &["n1"])]),
            ..NodeSelectorTerm::default()
        };
        assert!(term_matches(&by_name, &info));
    }

    #[test]
    fn host_ports_conflict() {
        use k8s_openapi::api::core::v1::ContainerPort;
        let mut info = NodeInfo::new(node("n1", "4", "8Gi"));
        let mut web = pod("web", "0", "0");
        if let Some(spec) = web.spec.as_mut() {
            spec.containers[0].ports =
                Some(vec![ContainerPort { container_port: 80, host_port: Some(8080), ..ContainerPort::default() }]);
        }
        assert!(failures(&web, &info).is_empty());
        info.add_pod(&web);
        assert_eq!(failures(&web, &info), ["node(s) didn't have free ports for the requested pod ports"]);
    }
}
