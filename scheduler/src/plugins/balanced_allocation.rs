//! NodeResourcesBalancedAllocation: favours the node on which cpu and
//! memory would be used in the most equal shares after placing the pod.
//! As in kube-scheduler 1.33 it counts actual requests (no defaults) and
//! skips pods that request neither cpu nor memory (score 0 everywhere).

use super::PodDemand;
use super::node_resources_fit::MAX_NODE_SCORE;
use crate::node_info::NodeInfo;

pub fn score(demand: &PodDemand, node: &NodeInfo) -> i64 {
    if demand.requests.milli_cpu == 0 && demand.requests.memory == 0 {
        return 0;
    }
    let requested = node.requested.plus(demand.requests);
    let fractions: Vec<f64> =
        [(requested.milli_cpu, node.allocatable.milli_cpu), (requested.memory, node.allocatable.memory)]
            .iter()
            .filter(|(_, capacity)| *capacity != 0)
            .map(|&(requested, capacity)| (requested as f64 / capacity as f64).min(1.0))
            .collect();
    let std_dev = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std_dev) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use crate::resources::tests::requesting as pod;
    use std::sync::Arc;

    #[test]
    fn equal_shares_score_highest() {
        let empty = NodeInfo::new(Arc::new(node("n1", "4", "4Gi", "10")));
        let balanced = pod(&[("cpu", "1"), ("memory", "1Gi")]);
        assert_eq!(score(&PodDemand::new(&balanced), &empty), 100);
        // cpu 1/4 = 0.25, memory 3/4 = 0.75: std 0.25, score 75.
        let lopsided = pod(&[("cpu", "1"), ("memory", "3Gi")]);
        assert_eq!(score(&PodDemand::new(&lopsided), &empty), 75);
    }

    #[test]
    fn the_pods_already_there_count_and_shares_cap_at_one() {
        let mut busy = NodeInfo::new(Arc::new(node("n1", "4", "4Gi", "10")));
        busy.add_pod(&pod(&[("cpu", "3")]));
        // cpu (3+1)/4 = 1, memory 1/4: std 0.375, score 62.
        assert_eq!(score(&PodDemand::new(&pod(&[("cpu", "1"), ("memory", "1Gi")])), &busy), 62);
        // cpu (3+2)/4 caps at 1, memory 0: std 0.5.
        assert_eq!(score(&PodDemand::new(&pod(&[("cpu", "2")])), &busy), 50);
    }

    #[test]
    fn best_effort_pods_are_not_scored() {
        let empty = NodeInfo::new(Arc::new(node("n1", "4", "4Gi", "10")));
        assert_eq!(score(&PodDemand::new(&pod(&[])), &empty), 0);
    }

    #[test]
    fn one_reported_resource_is_balanced_by_definition() {
        let cpu_only = NodeInfo::new(Arc::new(node("n1", "4", "0", "10")));
        assert_eq!(score(&PodDemand::new(&pod(&[("cpu", "1"), ("memory", "1Gi")])), &cpu_only), 100);
    }
}
