//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods
//! that tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use k8s_openapi::api::core::v1::{Pod, Taint};

use super::Rejection;
use super::taint_toleration::tolerated;
use crate::node_info::NodeInfo;

pub const REASON: &str = "node(s) were unschedulable";
pub const TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let cordoned = node.node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    if !cordoned {
        return Ok(());
    }
    let taint = Taint { key: TAINT_KEY.into(), effect: "NoSchedule".into(), ..Default::default() };
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    if tolerated(tolerations, &taint) { Ok(()) } else { Err(vec![REASON.into()]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, Toleration};
    use std::sync::Arc;

    fn cordoned(flag: Option<bool>) -> NodeInfo {
        let mut n = node("n1", "1", "1Gi", "10");
        n.spec = Some(NodeSpec { unschedulable: flag, ..Default::default() });
        NodeInfo::new(Arc::new(n))
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod { spec: Some(PodSpec { tolerations: Some(tolerations), ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn a_cordoned_node_rejects_pods() {
        assert_eq!(filter(&pod(vec![]), &cordoned(Some(true))), Err(vec![REASON.to_string()]));
        assert_eq!(filter(&pod(vec![]), &cordoned(Some(false))), Ok(()));
        assert_eq!(filter(&pod(vec![]), &cordoned(None)), Ok(()));
    }

    #[test]
    fn the_unschedulable_toleration_lets_a_pod_in() {
        let exists = Toleration { key: Some(TAINT_KEY.into()), operator: Some("Exists".into()), ..Default::default() };
        assert_eq!(filter(&pod(vec![exists]), &cordoned(Some(true))), Ok(()));
        let wrong_effect = Toleration {
            key: Some(TAINT_KEY.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        };
        assert!(filter(&pod(vec![wrong_effect]), &cordoned(Some(true))).is_err());
    }
}
