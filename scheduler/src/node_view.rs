//! The parts of a Node the filters read. A node update that leaves them
//! alone (a heartbeat, a condition's timestamp) cannot help a pod fit, so
//! it does not wake the unschedulable pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    labels: Option<BTreeMap<String, String>>,
    taints: Option<Vec<Taint>>,
    unschedulable: Option<bool>,
    allocatable: Option<BTreeMap<String, Quantity>>,
}

impl NodeView {
    pub fn of(node: &Node) -> NodeView {
        NodeView {
            labels: node.metadata.labels.clone(),
            taints: node.spec.as_ref().and_then(|s| s.taints.clone()),
            unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable),
            allocatable: node.status.as_ref().and_then(|s| s.allocatable.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec};

    #[test]
    fn heartbeats_do_not_count_as_changes() {
        let before = node("n1", "4", "8Gi", "110");
        let mut heartbeat = before.clone();
        if let Some(status) = heartbeat.status.as_mut() {
            status.conditions =
                Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]);
        }
        assert_eq!(NodeView::of(&before), NodeView::of(&heartbeat));
        let mut cordoned = before.clone();
        cordoned.spec = Some(NodeSpec { unschedulable: Some(true), ..Default::default() });
        assert_ne!(NodeView::of(&before), NodeView::of(&cordoned));
        let bigger = node("n1", "8", "8Gi", "110");
        assert_ne!(NodeView::of(&before), NodeView::of(&bigger));
    }
}
