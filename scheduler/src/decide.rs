//! One scheduling decision: the best node for a pod, or kube-scheduler's
//! "0/3 nodes are available: …" explanation of why there is none.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::filters::failures;
use crate::node_info::NodeInfo;
use crate::scores::score;

/// The name of the node the pod should go to, or the FitError message.
pub fn pick_node(pod: &Pod, nodes: &[NodeInfo]) -> Result<String, String> {
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".into());
    }
    let mut rejections = Vec::new();
    let mut best: Vec<(&NodeInfo, i64)> = Vec::new();
    for info in nodes {
        let reasons = failures(pod, info);
        if !reasons.is_empty() {
            rejections.push(reasons);
            continue;
        }
        let points = score(pod, info);
        match best.first().map(|(_, top)| *top) {
            Some(top) if points < top => {}
            Some(top) if points == top => best.push((info, points)),
            _ => best = vec![(info, points)],
        }
    }
    if best.is_empty() {
        return Err(fit_error(nodes.len(), &rejections));
    }
    // Ties are broken at random, so equal nodes share the load.
    let chosen = best[rand::random_range(0..best.len())].0;
    Ok(chosen.name().to_string())
}

/// kube-scheduler's FitError text: each reason with how many nodes gave
/// it, sorted as strings; then the (never helpful here) preemption part.
fn fit_error(total: usize, rejections: &[Vec<String>]) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in rejections.iter().flatten() {
        *histogram.entry(reason.as_str()).or_default() += 1;
    }
    let mut counted: Vec<String> = histogram.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    counted.sort();
    format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not \
         helpful for scheduling.",
        counted.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{node, pod};
    use k8s_openapi::api::core::v1::NodeSpec;

    #[test]
    fn the_emptier_node_wins() {
        let empty = NodeInfo::new(node("empty", "4", "8Gi"));
        let mut busy = NodeInfo::new(node("busy", "4", "8Gi"));
        busy.add_pod(&pod("x", "3", "6Gi"));
        assert_eq!(pick_node(&pod("p", "100m", "100Mi"), &[busy, empty]), Ok("empty".to_string()));
    }

    #[test]
    fn no_fit_explains_every_node() {
        let small = NodeInfo::new(node("small", "1", "1Gi"));
        let mut cordoned = NodeInfo::new(node("cordoned", "64", "512Gi"));
        cordoned.node.spec = Some(NodeSpec { unschedulable: Some(true), ..NodeSpec::default() });
        let other = NodeInfo::new(node("other", "1", "1Gi"));
        let message = pick_node(&pod("p", "100m", "100Gi"), &[small, cordoned, other]).expect_err("no fit");
        assert_eq!(
            message,
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory. preemption: 0/3 nodes are \
             available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn no_nodes_at_all() {
        assert_eq!(pick_node(&pod("p", "0", "0"), &[]), Err("no nodes available to schedule pods".to_string()));
    }
}
