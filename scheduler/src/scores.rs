//! Score plugins over the nodes that passed the filters: NodeResourcesFit
//! (least allocated) and NodeResourcesBalancedAllocation, each 0..=100 and
//! weighted equally.

use k8s_openapi::api::core::v1::Pod;

use crate::node_info::{NodeInfo, non_zero_requests};

/// The node's total score for the pod.
pub fn score(pod: &Pod, info: &NodeInfo) -> i64 {
    let (cpu, memory) = fractions(pod, info);
    least_allocated(cpu, memory) + balanced(cpu, memory)
}

/// Requested share of allocatable cpu and memory once the pod is on it.
fn fractions(pod: &Pod, info: &NodeInfo) -> (f64, f64) {
    let wanted = non_zero_requests(pod);
    let allocatable = info.allocatable();
    let share = |used: i128, capacity: i128| {
        if capacity <= 0 { 1.0 } else { ((used as f64) / (capacity as f64)).min(1.0) }
    };
    (
        share(info.non_zero_requested.cpu + wanted.cpu, allocatable.cpu),
        share(info.non_zero_requested.memory + wanted.memory, allocatable.memory),
    )
}

/// More free capacity scores higher.
fn least_allocated(cpu: f64, memory: f64) -> i64 {
    (((1.0 - cpu) * 100.0 + (1.0 - memory) * 100.0) / 2.0) as i64
}

/// Similar cpu and memory shares score higher: 100 × (1 − std deviation).
fn balanced(cpu: f64, memory: f64) -> i64 {
    ((1.0 - (cpu - memory).abs() / 2.0) * 100.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{node, pod};

    #[test]
    fn emptier_nodes_score_higher() {
        let empty = NodeInfo::new(node("a", "4", "8Gi"));
        let mut busy = NodeInfo::new(node("b", "4", "8Gi"));
        busy.add_pod(&pod("x", "2", "4Gi"));
        let p = pod("p", "500m", "1Gi");
        assert!(score(&p, &empty) > score(&p, &busy));
    }

    #[test]
    fn balanced_use_beats_lopsided_use() {
        assert_eq!(balanced(0.5, 0.5), 100);
        assert!(balanced(0.9, 0.1) < balanced(0.5, 0.4));
        assert_eq!(least_allocated(0.0, 0.0), 100);
    }
}
