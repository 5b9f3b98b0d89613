//! What the scheduler knows about a node: the Node, and what the pods
//! already on it (bound or assumed) take from it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity::parse_milli;

/// Amounts in thousandths: cpu in millicores × 1, memory in bytes × 1000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: i128,
    pub memory: i128,
    pub ephemeral_storage: i128,
}

impl Resources {
    fn add(&mut self, other: Resources) {
        self.cpu += other.cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
    }

    fn max(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.max(other.cpu),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
        }
    }

    fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let get = |name: &str| list.and_then(|l| l.get(name)).and_then(|q| parse_milli(&q.0)).unwrap_or(0);
        Resources { cpu: get("cpu"), memory: get("memory"), ephemeral_storage: get("ephemeral-storage") }
    }
}

/// kube-scheduler's stand-ins for containers that request nothing, so
/// that scoring still spreads them (100m cpu, 200Mi memory).
const DEFAULT_CPU: i128 = 100;
const DEFAULT_MEMORY: i128 = 200 * 1024 * 1024 * 1000;

/// What a pod requests: the sum over its containers or the largest init
/// container, whichever is more, plus the pod overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    pod_requests_with(pod, false)
}

/// The requests used for scoring, with defaults for unset cpu and memory.
pub fn non_zero_requests(pod: &Pod) -> Resources {
    pod_requests_with(pod, true)
}

fn pod_requests_with(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = &pod.spec else { return Resources::default() };
    let container = |requests: Option<&BTreeMap<String, Quantity>>| {
        let mut r = Resources::from_list(requests);
        if non_zero {
            let has = |name: &str| requests.is_some_and(|l| l.contains_key(name));
            if !has("cpu") {
                r.cpu = DEFAULT_CPU;
            }
            if !has("memory") {
                r.memory = DEFAULT_MEMORY;
            }
        }
        r
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(container(c.resources.as_ref().and_then(|r| r.requests.as_ref())));
    }
    for c in spec.init_containers.iter().flatten() {
        total = total.max(container(c.resources.as_ref().and_then(|r| r.requests.as_ref())));
    }
    total.add(Resources::from_list(spec.overhead.as_ref()));
    total
}

/// A host port a pod holds: protocol, address and port.
pub type HostPort = (String, String, i32);

pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else { return Vec::new() };
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|&port| port > 0)?;
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let ip = p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
            Some((protocol, ip, port))
        })
        .collect()
}

/// One node and the load on it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Node,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub pods: usize,
    pub host_ports: Vec<HostPort>,
}

impl NodeInfo {
    pub fn new(node: Node) -> NodeInfo {
        NodeInfo {
            node,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: 0,
            host_ports: Vec::new(),
        }
    }

    pub fn add_pod(&mut self, pod: &Pod) {
        self.requested.add(pod_requests(pod));
        self.non_zero_requested.add(non_zero_requests(pod));
        self.pods += 1;
        self.host_ports.extend(host_ports(pod));
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn allocatable(&self) -> Resources {
        Resources::from_list(self.node.status.as_ref().and_then(|s| s.allocatable.as_ref()))
    }

    /// How many pods the node takes (status.allocatable.pods).
    pub fn allowed_pods(&self) -> usize {
        let pods = self.node.status.as_ref().and_then(|s| s.allocatable.as_ref()).and_then(|a| a.get("pods"));
        pods.and_then(|q| parse_milli(&q.0)).map_or(0, |milli| usize::try_from(milli / 1000).unwrap_or(0))
    }
}
