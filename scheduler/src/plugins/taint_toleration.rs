//! TaintToleration: a node's NoSchedule and NoExecute taints keep out every
//! pod that does not tolerate them (PreferNoSchedule only steers scoring,
//! which capstan does not do).

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use super::Rejection;
use crate::node_info::NodeInfo;

pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let taints = node.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let untolerated = taints
        .iter()
        .filter(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute"))
        .find(|t| !tolerated(tolerations, t));
    match untolerated {
        Some(taint) => Err(vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key,
            taint.value.as_deref().unwrap_or_default()
        )]),
        None => Ok(()),
    }
}

/// Whether any toleration matches the taint (`Toleration.ToleratesTaint`):
/// an empty effect or key matches all, `Exists` ignores the value, `Equal`
/// (the default operator) compares it.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect = t.effect.as_deref().unwrap_or_default();
        let key = t.key.as_deref().unwrap_or_default();
        if (!effect.is_empty() && effect != taint.effect) || (!key.is_empty() && key != taint.key) {
            return false;
        }
        match t.operator.as_deref().unwrap_or_default() {
            "" | "Equal" => t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
            "Exists" => true,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec};
    use std::sync::Arc;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        Toleration {
            key: opt(key),
            operator: opt(operator),
            value: opt(value),
            effect: opt(effect),
            ..Default::default()
        }
    }

    fn tainted(taints: Vec<Taint>) -> NodeInfo {
        let mut n = node("n1", "1", "1Gi", "10");
        n.spec = Some(NodeSpec { taints: Some(taints), ..Default::default() });
        NodeInfo::new(Arc::new(n))
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod { spec: Some(PodSpec { tolerations: Some(tolerations), ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn an_untolerated_taint_is_named() {
        let node = tainted(vec![taint("dedicated", "gpu", "NoSchedule")]);
        assert_eq!(
            filter(&pod(vec![]), &node),
            Err(vec!["node(s) had untolerated taint {dedicated: gpu}".to_string()])
        );
        let no_value = tainted(vec![taint("node.kubernetes.io/not-ready", "", "NoExecute")]);
        assert_eq!(
            filter(&pod(vec![]), &no_value),
            Err(vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }".to_string()])
        );
    }

    #[test]
    fn prefer_no_schedule_does_not_filter() {
        assert_eq!(filter(&pod(vec![]), &tainted(vec![taint("a", "b", "PreferNoSchedule")])), Ok(()));
    }

    #[test]
    fn tolerated_taints_let_the_pod_in() {
        let node = tainted(vec![taint("dedicated", "gpu", "NoSchedule"), taint("zone", "", "NoExecute")]);
        let both = vec![toleration("dedicated", "Equal", "gpu", "NoSchedule"), toleration("zone", "Exists", "", "")];
        assert_eq!(filter(&pod(both), &node), Ok(()));
        let one = vec![toleration("dedicated", "", "gpu", "")];
        assert_eq!(filter(&pod(one), &node), Err(vec!["node(s) had untolerated taint {zone: }".to_string()]));
    }

    #[test]
    fn toleration_matching_rules() {
        let t = taint("k", "v", "NoSchedule");
        assert!(tolerated(&[toleration("", "Exists", "", "")], &t), "empty key with Exists tolerates everything");
        assert!(tolerated(&[toleration("k", "Equal", "v", "NoSchedule")], &t));
        assert!(!tolerated(&[toleration("k", "Equal", "w", "NoSchedule")], &t), "value differs");
        assert!(!tolerated(&[toleration("k", "Exists", "", "NoExecute")], &t), "effect differs");
        assert!(!tolerated(&[toleration("other", "Exists", "", "")], &t), "key differs");
        assert!(!tolerated(&[toleration("k", "Gt", "v", "")], &t), "unknown operator");
        assert!(!tolerated(&[], &t));
    }
}
