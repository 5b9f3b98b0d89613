//! A node as the plugins see it: what it offers and what the pods already
//! on it take (kube-scheduler's `NodeInfo`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::resources::{Missing, Resources, pod_requests};
use capstan_kubeutil::quantity;

/// One host port a container claims (`hostIP`, protocol, `hostPort`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

const ANY_IP: &str = "0.0.0.0";

impl HostPort {
    /// Two claims collide on the same protocol and port when their
    /// addresses are equal or either is the wildcard.
    pub fn conflicts_with(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == ANY_IP || other.ip == ANY_IP)
    }
}

/// The host ports a pod claims: its containers' and its sidecars'.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else { return Vec::new() };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|port| *port > 0)?;
            Some(HostPort {
                ip: p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| ANY_IP.to_string()),
                protocol: p.protocol.clone().filter(|proto| !proto.is_empty()).unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub allowed_pods: i64,
    /// The sum of the requests of the pods on the node.
    pub requested: Resources,
    /// The same with kube-scheduler's defaults for missing requests (scoring).
    pub non_zero_requested: Resources,
    pub pod_count: usize,
    pub used_ports: Vec<HostPort>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let allowed_pods = allocatable.and_then(|a| a.get("pods")).and_then(quantity::value).unwrap_or(0);
        NodeInfo {
            allocatable: Resources::from_list(allocatable),
            allowed_pods,
            node,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pod_count: 0,
            used_ports: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    /// Counts a pod that runs (or is assumed to run) here.
    pub fn add_pod(&mut self, pod: &Pod) {
        self.requested.add(pod_requests(pod, Missing::Zero));
        self.non_zero_requested.add(pod_requests(pod, Missing::NonZeroDefaults));
        self.pod_count += 1;
        self.used_ports.extend(host_ports(pod));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resources::tests::{container, list};
    use k8s_openapi::api::core::v1::{ContainerPort, NodeStatus, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub(crate) fn node(name: &str, cpu: &str, memory: &str, pods: &str) -> Node {
        Node {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            status: Some(NodeStatus {
                allocatable: Some(list(&[("cpu", cpu), ("memory", memory), ("pods", pods)])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn pod_with_ports(ports: &[(Option<&str>, Option<&str>, i32)]) -> Pod {
        let mut c = container(&[]);
        c.ports = Some(
            ports
                .iter()
                .map(|(ip, proto, port)| ContainerPort {
                    host_ip: ip.map(str::to_string),
                    protocol: proto.map(str::to_string),
                    host_port: Some(*port),
                    container_port: 80,
                    ..Default::default()
                })
                .collect(),
        );
        Pod { spec: Some(PodSpec { containers: vec![c], ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn allocatable_and_requests_add_up() {
        let mut info = NodeInfo::new(Arc::new(node("n1", "4", "8Gi", "110")));
        assert_eq!(info.allocatable, Resources { milli_cpu: 4000, memory: 8 << 30, ephemeral_storage: 0 });
        assert_eq!(info.allowed_pods, 110);
        let pod = Pod {
            spec: Some(PodSpec { containers: vec![container(&[("cpu", "1")])], ..Default::default() }),
            ..Default::default()
        };
        info.add_pod(&pod);
        info.add_pod(&pod);
        assert_eq!(info.requested.milli_cpu, 2000);
        assert_eq!(info.requested.memory, 0);
        assert_eq!(info.non_zero_requested.memory, 2 * crate::resources::DEFAULT_MEMORY_REQUEST);
        assert_eq!(info.pod_count, 2);
    }

    #[test]
    fn host_ports_default_to_any_address_and_tcp() {
        let ports = host_ports(&pod_with_ports(&[(None, None, 8080), (Some("10.0.0.1"), Some("UDP"), 53)]));
        assert_eq!(
            ports,
            vec![
                HostPort { ip: "0.0.0.0".into(), protocol: "TCP".into(), port: 8080 },
                HostPort { ip: "10.0.0.1".into(), protocol: "UDP".into(), port: 53 },
            ]
        );
        assert!(host_ports(&pod_with_ports(&[(None, None, 0)])).is_empty(), "no host port, no claim");
    }

    #[test]
    fn wildcard_addresses_collide_with_every_address() {
        let port = |ip: &str, proto: &str, port| HostPort { ip: ip.into(), protocol: proto.into(), port };
        assert!(port("0.0.0.0", "TCP", 80).conflicts_with(&port("10.0.0.1", "TCP", 80)));
        assert!(port("10.0.0.1", "TCP", 80).conflicts_with(&port("0.0.0.0", "TCP", 80)));
        assert!(port("10.0.0.1", "TCP", 80).conflicts_with(&port("10.0.0.1", "TCP", 80)));
        assert!(!port("10.0.0.1", "TCP", 80).conflicts_with(&port("10.0.0.2", "TCP", 80)));
        assert!(!port("0.0.0.0", "TCP", 80).conflicts_with(&port("0.0.0.0", "UDP", 80)));
        assert!(!port("0.0.0.0", "TCP", 80).conflicts_with(&port("0.0.0.0", "TCP", 81)));
    }
}
