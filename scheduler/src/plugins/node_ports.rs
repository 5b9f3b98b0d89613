//! NodePorts: a pod's host ports must be free on the node.

use super::{PodDemand, Rejection};
use crate::node_info::NodeInfo;

pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub fn filter(demand: &PodDemand, node: &NodeInfo) -> Result<(), Rejection> {
    let taken = demand.host_ports.iter().any(|want| node.used_ports.iter().any(|used| want.conflicts_with(used)));
    if taken { Err(vec![REASON.into()]) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::{node, pod_with_ports};
    use std::sync::Arc;

    #[test]
    fn a_taken_host_port_rejects_the_node() {
        let mut info = NodeInfo::new(Arc::new(node("n1", "1", "1Gi", "10")));
        info.add_pod(&pod_with_ports(&[(None, None, 8080)]));
        let same = pod_with_ports(&[(None, None, 8080)]);
        assert_eq!(filter(&PodDemand::new(&same), &info), Err(vec![REASON.to_string()]));
        let specific_ip = pod_with_ports(&[(Some("10.0.0.1"), Some("TCP"), 8080)]);
        assert!(filter(&PodDemand::new(&specific_ip), &info).is_err(), "the wildcard claim covers every address");
        let udp = pod_with_ports(&[(None, Some("UDP"), 8080)]);
        assert_eq!(filter(&PodDemand::new(&udp), &info), Ok(()));
        let other = pod_with_ports(&[(None, None, 8081)]);
        assert_eq!(filter(&PodDemand::new(&other), &info), Ok(()));
    }

    #[test]
    fn different_addresses_share_a_port() {
        let mut info = NodeInfo::new(Arc::new(node("n1", "1", "1Gi", "10")));
        info.add_pod(&pod_with_ports(&[(Some("10.0.0.1"), None, 53)]));
        let other_ip = pod_with_ports(&[(Some("10.0.0.2"), None, 53)]);
        assert_eq!(filter(&PodDemand::new(&other_ip), &info), Ok(()));
    }
}
