//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use k8s_openapi::api::core::v1::Pod;

use super::Rejection;
use crate::node_info::NodeInfo;

pub const REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    match crate::pod_state::node_name(pod) {
        Some(wanted) if wanted != node.name() => Err(vec![REASON.into()]),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use k8s_openapi::api::core::v1::PodSpec;
    use std::sync::Arc;

    fn pod(node_name: Option<&str>) -> Pod {
        Pod {
            spec: Some(PodSpec { node_name: node_name.map(str::to_string), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_named_node_fits() {
        let n1 = NodeInfo::new(Arc::new(node("n1", "1", "1Gi", "10")));
        assert_eq!(filter(&pod(None), &n1), Ok(()));
        assert_eq!(filter(&pod(Some("n1")), &n1), Ok(()));
        assert_eq!(filter(&pod(Some("n2")), &n1), Err(vec![REASON.to_string()]));
    }
}
