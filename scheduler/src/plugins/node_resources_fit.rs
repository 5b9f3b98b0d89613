//! NodeResourcesFit: the pod's requests must fit in what the node has left
//! (allocatable minus the requests of its pods), and the pod count in
//! `allocatable.pods`. Every shortage is a reason. Its LeastAllocated score
//! favours the emptiest node.

use super::{PodDemand, Rejection};
use crate::node_info::NodeInfo;

pub const TOO_MANY_PODS: &str = "Too many pods";
/// A node score ranges 0..=MAX_NODE_SCORE.
pub const MAX_NODE_SCORE: i64 = 100;

pub fn filter(demand: &PodDemand, node: &NodeInfo) -> Result<(), Rejection> {
    let mut reasons = Vec::new();
    if i64::try_from(node.pod_count).unwrap_or(i64::MAX).saturating_add(1) > node.allowed_pods {
        reasons.push(TOO_MANY_PODS.to_string());
    }
    let (want, free) = (demand.requests, node.allocatable);
    let used = node.requested;
    let short = |want: i64, allocatable: i64, used: i64| want > 0 && want > allocatable.saturating_sub(used);
    if short(want.milli_cpu, free.milli_cpu, used.milli_cpu) {
        reasons.push("Insufficient cpu".into());
    }
    if short(want.memory, free.memory, used.memory) {
        reasons.push("Insufficient memory".into());
    }
    if short(want.ephemeral_storage, free.ephemeral_storage, used.ephemeral_storage) {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}

/// LeastAllocated over cpu and memory (weight 1 each): the share left free
/// after placing the pod, counting missing requests at the non-zero
/// defaults. A resource the node does not report is left out.
pub fn least_allocated_score(demand: &PodDemand, node: &NodeInfo) -> i64 {
    let requested = node.non_zero_requested.plus(demand.non_zero_requests);
    let pairs = [(requested.milli_cpu, node.allocatable.milli_cpu), (requested.memory, node.allocatable.memory)];
    let scores: Vec<i64> =
        pairs
            .iter()
            .filter(|(_, capacity)| *capacity != 0)
            .map(|&(requested, capacity)| {
                if requested > capacity { 0 } else { (capacity - requested).saturating_mul(MAX_NODE_SCORE) / capacity }
            })
            .collect();
    if scores.is_empty() { 0 } else { scores.iter().sum::<i64>() / scores.len() as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use crate::resources::tests::requesting as pod;
    use k8s_openapi::api::core::v1::Pod;
    use std::sync::Arc;

    fn info(cpu: &str, memory: &str, pods: &str, running: &[Pod]) -> NodeInfo {
        let mut info = NodeInfo::new(Arc::new(node("n1", cpu, memory, pods)));
        running.iter().for_each(|p| info.add_pod(p));
        info
    }

    #[test]
    fn requests_must_fit_in_what_is_left() {
        let node = info("2", "4Gi", "10", &[pod(&[("cpu", "1500m"), ("memory", "1Gi")])]);
        assert_eq!(filter(&PodDemand::new(&pod(&[("cpu", "500m"), ("memory", "3Gi")])), &node), Ok(()));
        assert_eq!(filter(&PodDemand::new(&pod(&[("cpu", "501m")])), &node), Err(vec!["Insufficient cpu".to_string()]));
        assert_eq!(
            filter(&PodDemand::new(&pod(&[("cpu", "1"), ("memory", "4Gi")])), &node),
            Err(vec!["Insufficient cpu".to_string(), "Insufficient memory".to_string()])
        );
        assert_eq!(
            filter(&PodDemand::new(&pod(&[("ephemeral-storage", "1Gi")])), &node),
            Err(vec!["Insufficient ephemeral-storage".to_string()])
        );
    }

    #[test]
    fn the_pod_count_is_a_resource_too() {
        let full = info("2", "4Gi", "2", &[pod(&[]), pod(&[])]);
        assert_eq!(filter(&PodDemand::new(&pod(&[])), &full), Err(vec![TOO_MANY_PODS.to_string()]));
        assert_eq!(
            filter(&PodDemand::new(&pod(&[("cpu", "3")])), &full),
            Err(vec![TOO_MANY_PODS.to_string(), "Insufficient cpu".to_string()])
        );
        let room = info("2", "4Gi", "3", &[pod(&[]), pod(&[])]);
        assert_eq!(filter(&PodDemand::new(&pod(&[])), &room), Ok(()));
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let wanted = pod(&[("cpu", "1"), ("memory", "1Gi")]);
        let demand = PodDemand::new(&wanted);
        // cpu (4000-1000)*100/4000 = 75, memory (4Gi-1Gi)*100/4Gi = 75.
        assert_eq!(least_allocated_score(&demand, &info("4", "4Gi", "10", &[])), 75);
        let busy = info("4", "4Gi", "10", &[pod(&[("cpu", "2"), ("memory", "2Gi")])]);
        // cpu 25, memory 25.
        assert_eq!(least_allocated_score(&demand, &busy), 25);
        let overcommitted = info("4", "4Gi", "10", &[pod(&[("cpu", "4"), ("memory", "4Gi")])]);
        assert_eq!(least_allocated_score(&demand, &overcommitted), 0);
    }

    #[test]
    fn least_allocated_counts_missing_requests_at_the_defaults() {
        let best_effort = pod(&[]);
        // cpu (1000-100)*100/1000 = 90; memory (1000Mi-200Mi)*100/1000Mi = 80; mean 85.
        assert_eq!(least_allocated_score(&PodDemand::new(&best_effort), &info("1", "1000Mi", "10", &[])), 85);
    }
}
