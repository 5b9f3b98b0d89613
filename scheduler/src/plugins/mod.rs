//! kube-scheduler's filter and score plugins that capstan runs, in the
//! default profile's order. A filter answers `Err(reasons)` with
//! kube-scheduler's reason texts; the first filter that rejects a node
//! decides its reasons, as in the framework.

pub mod balanced_allocation;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod taint_toleration;

use k8s_openapi::api::core::v1::Pod;

use crate::node_info::{HostPort, NodeInfo, host_ports};
use crate::resources::{Missing, Resources, pod_requests};

/// Why a filter turned a node down.
pub type Rejection = Vec<String>;

/// What the plugins need from the pod, worked out once per attempt
/// (kube-scheduler's PreFilter/PreScore state).
#[derive(Clone, Debug)]
pub struct PodDemand<'a> {
    pub pod: &'a Pod,
    pub requests: Resources,
    pub non_zero_requests: Resources,
    pub host_ports: Vec<HostPort>,
}

impl<'a> PodDemand<'a> {
    pub fn new(pod: &'a Pod) -> PodDemand<'a> {
        PodDemand {
            pod,
            requests: pod_requests(pod, Missing::Zero),
            non_zero_requests: pod_requests(pod, Missing::NonZeroDefaults),
            host_ports: host_ports(pod),
        }
    }
}

/// Runs the filters on one node.
pub fn filter(demand: &PodDemand, node: &NodeInfo) -> Result<(), Rejection> {
    node_unschedulable::filter(demand.pod, node)?;
    node_name::filter(demand.pod, node)?;
    taint_toleration::filter(demand.pod, node)?;
    node_affinity::filter(demand.pod, node)?;
    node_ports::filter(demand, node)?;
    node_resources_fit::filter(demand, node)
}

/// The node's total score; every score plugin weighs 1 in the default profile.
pub fn score(demand: &PodDemand, node: &NodeInfo) -> i64 {
    node_resources_fit::least_allocated_score(demand, node) + balanced_allocation::score(demand, node)
}
