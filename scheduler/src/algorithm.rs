//! One scheduling decision (kube-scheduler's `schedulePod`): filter every
//! node, score the feasible ones, pick the best, ties at random.

use std::thread;

use k8s_openapi::api::core::v1::Pod;
use rand::Rng;

use crate::fit_error::FitError;
use crate::node_info::NodeInfo;
use crate::plugins::{self, PodDemand, Rejection};

/// kube-scheduler's text when the cluster has no nodes at all.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// Clusters at least this large are filtered on several threads.
const PARALLEL_FROM: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No node exists.
    NoNodes,
    /// Nodes exist, none fits.
    Unfit(FitError),
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Failure::NoNodes => NO_NODES.to_string(),
            Failure::Unfit(error) => error.message(),
        }
    }
}

/// The node to bind `pod` to.
pub fn schedule(pod: &Pod, nodes: &[NodeInfo], rng: &mut impl Rng) -> Result<String, Failure> {
    if nodes.is_empty() {
        return Err(Failure::NoNodes);
    }
    let demand = PodDemand::new(pod);
    let verdicts = filter_all(&demand, nodes);
    let feasible: Vec<&NodeInfo> =
        nodes.iter().zip(&verdicts).filter(|(_, verdict)| verdict.is_ok()).map(|(node, _)| node).collect();
    if feasible.is_empty() {
        let rejections = verdicts.iter().filter_map(|v| v.as_ref().err()).map(Vec::as_slice);
        return Err(Failure::Unfit(FitError::new(nodes.len(), rejections)));
    }
    let scored: Vec<(&NodeInfo, i64)> = feasible.into_iter().map(|n| (n, plugins::score(&demand, n))).collect();
    Ok(select_host(&scored, rng).to_string())
}

/// The filters' verdicts, one per node, in order.
fn filter_all(demand: &PodDemand, nodes: &[NodeInfo]) -> Vec<Result<(), Rejection>> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    if nodes.len() < PARALLEL_FROM || threads < 2 {
        return nodes.iter().map(|node| plugins::filter(demand, node)).collect();
    }
    let chunk = nodes.len().div_ceil(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|node| plugins::filter(demand, node)).collect::<Vec<_>>()))
            .collect();
        // A filter that panicked is a bug; its nodes then count as rejected
        // rather than taking the scheduler down.
        handles
            .into_iter()
            .zip(nodes.chunks(chunk))
            .flat_map(|(handle, part)| {
                handle.join().unwrap_or_else(|_| vec![Err(vec!["filter failed".to_string()]); part.len()])
            })
            .collect()
    })
}

/// The highest score wins; among equals each is picked with equal chance
/// (reservoir sampling, as kube-scheduler's `selectHost`).
fn select_host<'a>(scored: &[(&'a NodeInfo, i64)], rng: &mut impl Rng) -> &'a str {
    let mut best: Option<(&NodeInfo, i64)> = None;
    let mut ties = 0u32;
    for &(node, score) in scored {
        match best {
            Some((_, top)) if score < top => {}
            Some((_, top)) if score == top => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((node, score));
                }
            }
            _ => {
                best = Some((node, score));
                ties = 1;
            }
        }
    }
    best.map_or("", |(node, _)| node.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use crate::resources::tests::requesting as pod;
    use k8s_openapi::api::core::v1::NodeSpec;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn info(name: &str, cpu: &str, memory: &str, running: &[Pod]) -> NodeInfo {
        let mut info = NodeInfo::new(Arc::new(node(name, cpu, memory, "110")));
        running.iter().for_each(|p| info.add_pod(p));
        info
    }

    #[test]
    fn the_emptier_node_wins() {
        let nodes =
            [info("busy", "4", "8Gi", &[pod(&[("cpu", "3"), ("memory", "6Gi")])]), info("idle", "4", "8Gi", &[])];
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(schedule(&pod(&[("cpu", "500m"), ("memory", "1Gi")]), &nodes, &mut rng), Ok("idle".to_string()));
    }

    #[test]
    fn ties_are_broken_at_random() {
        let nodes = [info("a", "4", "8Gi", &[]), info("b", "4", "8Gi", &[]), info("c", "4", "8Gi", &[])];
        let mut rng = StdRng::seed_from_u64(7);
        let picked: BTreeSet<String> =
            (0..60).filter_map(|_| schedule(&pod(&[("cpu", "1")]), &nodes, &mut rng).ok()).collect();
        assert_eq!(picked, ["a", "b", "c"].into_iter().map(String::from).collect());
    }

    #[test]
    fn no_fit_counts_the_reasons_of_every_node() {
        let mut cordoned = node("cordoned", "64", "64Gi", "110");
        cordoned.spec = Some(NodeSpec { unschedulable: Some(true), ..Default::default() });
        let nodes = [info("small", "1", "1Gi", &[]), NodeInfo::new(Arc::new(cordoned))];
        let mut rng = StdRng::seed_from_u64(1);
        let failure = schedule(&pod(&[("memory", "2Gi")]), &nodes, &mut rng);
        assert_eq!(
            failure.map_err(|f| f.message()),
            Err("0/2 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable. \
                 preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                .to_string())
        );
    }

    #[test]
    fn no_nodes_is_its_own_failure() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(schedule(&pod(&[]), &[], &mut rng), Err(Failure::NoNodes));
        assert_eq!(Failure::NoNodes.message(), NO_NODES);
    }

    #[test]
    fn large_clusters_are_filtered_in_parallel_with_the_same_verdicts() {
        let nodes: Vec<NodeInfo> = (0..300)
            .map(|i| {
                if i % 3 == 0 {
                    info(&format!("n{i}"), "4", "8Gi", &[])
                } else {
                    info(&format!("n{i}"), "1", "1Gi", &[])
                }
            })
            .collect();
        let wanted = pod(&[("cpu", "2")]);
        let demand = PodDemand::new(&wanted);
        let parallel = filter_all(&demand, &nodes);
        let sequential: Vec<_> = nodes.iter().map(|n| plugins::filter(&demand, n)).collect();
        assert_eq!(parallel, sequential);
        assert_eq!(parallel.iter().filter(|v| v.is_ok()).count(), 100);
    }
}
