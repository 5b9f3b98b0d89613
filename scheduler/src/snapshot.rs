//! The cluster as one decision sees it: every node with the pods that run
//! on it, the assumed ones included (kube-scheduler's cache snapshot).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::assume::AssumeCache;
use crate::node_info::NodeInfo;
use crate::pod_state;

/// Nodes sorted by name, each holding its bound, unfinished pods and the
/// pods assumed onto it. Pods on unknown nodes are left out.
pub fn snapshot(nodes: &[Arc<Node>], pods: &[Arc<Pod>], assumed: &AssumeCache) -> Vec<NodeInfo> {
    let mut infos: Vec<NodeInfo> = nodes.iter().cloned().map(NodeInfo::new).collect();
    infos.sort_by(|a, b| a.name().cmp(b.name()));
    let index: HashMap<String, usize> = infos.iter().enumerate().map(|(i, n)| (n.name().to_string(), i)).collect();
    let running = pods.iter().map(|p| p.as_ref()).chain(assumed.pods());
    for pod in running {
        if let Some(&i) = pod_state::occupied_node(pod).and_then(|node| index.get(node)) {
            infos[i].add_pod(pod);
        }
    }
    infos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use crate::resources::tests::container;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, node: Option<&str>, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta { uid: Some(uid.into()), ..Default::default() },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                containers: vec![container(&[("cpu", "1")])],
                ..Default::default()
            }),
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        }
    }

    #[test]
    fn bound_assumed_and_finished_pods() {
        let nodes = vec![Arc::new(node("b", "4", "4Gi", "10")), Arc::new(node("a", "4", "4Gi", "10"))];
        let pods = vec![
            Arc::new(pod("u1", Some("a"), "Running")),
            Arc::new(pod("u2", Some("a"), "Succeeded")),
            Arc::new(pod("u3", None, "Pending")),
            Arc::new(pod("u4", Some("gone"), "Running")),
        ];
        let mut assumed = AssumeCache::default();
        assumed.assume(&pod("u3", None, "Pending"), "b");
        let infos = snapshot(&nodes, &pods, &assumed);
        let summary: Vec<(&str, usize, i64)> =
            infos.iter().map(|n| (n.name(), n.pod_count, n.requested.milli_cpu)).collect();
        assert_eq!(summary, vec![("a", 1, 1000), ("b", 1, 1000)]);
    }

    #[test]
    fn an_assumed_pod_steers_the_next_decision() {
        use rand::SeedableRng;
        let nodes = vec![Arc::new(node("a", "4", "4Gi", "10")), Arc::new(node("b", "4", "4Gi", "10"))];
        let (first, second) = (pod("u1", None, "Pending"), pod("u2", None, "Pending"));
        let watched = vec![Arc::new(first.clone()), Arc::new(second.clone())];
        // Without the assumption both nodes would tie for the second pod.
        for seed in 0..16 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut assumed = AssumeCache::default();
            let chosen = crate::algorithm::schedule(&first, &snapshot(&nodes, &watched, &assumed), &mut rng);
            let Ok(chosen) = chosen else { panic!("the first pod fits: {chosen:?}") };
            assumed.assume(&first, &chosen);
            // The watch still shows the first pod unbound; the assumption counts it.
            let next = crate::algorithm::schedule(&second, &snapshot(&nodes, &watched, &assumed), &mut rng);
            assert!(matches!(next, Ok(ref other) if *other != chosen), "{next:?} after {chosen}");
        }
    }
}
