//! Which pods a ReplicaSet deletes first when it scales down
//! (`controller.ActivePodsWithRanks`): the ones whose loss hurts least.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The `count` pods to delete, best candidates first. `related` are the
/// active pods of the same owner family, used to spread deletions away from
/// nodes that run many of them.
pub fn pods_to_delete<'a>(candidates: &[&'a Pod], related: &[&Pod], count: usize) -> Vec<&'a Pod> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| pods::is_active(p)) {
        let node = pods::node_name(pod);
        if !node.is_empty() {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&Pod, usize)> =
        candidates.iter().map(|p| (*p, on_node.get(pods::node_name(p)).copied().unwrap_or(0))).collect();
    ranked.sort_by(delete_first);
    ranked.into_iter().take(count).map(|(pod, _)| pod).collect()
}

/// Ordering where the pod to delete sooner comes first.
fn delete_first((a, rank_a): &(&Pod, usize), (b, rank_b): &(&Pod, usize)) -> Ordering {
    let (node_a, node_b) = (pods::node_name(a), pods::node_name(b));
    // Unassigned before assigned.
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        return node_b.is_empty().cmp(&node_a.is_empty());
    }
    // Pending before Unknown before Running.
    phase_order(a)
        .cmp(&phase_order(b))
        // Not ready before ready.
        .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
        // Lower deletion cost first.
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        // More siblings on the same node first.
        .then_with(|| rank_b.cmp(rank_a))
        // Ready for less time first.
        .then_with(|| match (pods::is_ready(a), pods::is_ready(b)) {
            (true, true) => newer_first(pods::ready_since(a), pods::ready_since(b)),
            _ => Ordering::Equal,
        })
        // More restarts first.
        .then_with(|| pods::max_restarts(b).cmp(&pods::max_restarts(a)))
        // Younger first.
        .then_with(|| newer_first(created(a), created(b)))
}

fn phase_order(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    let annotations = pod.metadata.annotations.as_ref();
    annotations.and_then(|a| a.get(DELETION_COST)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn created(pod: &Pod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// A missing time sorts first, then later times before earlier ones.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ContainerStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::pods::testing::{at, pod};

    fn on(node: &str, mut p: Pod) -> Pod {
        p.spec.get_or_insert_default().node_name = Some(node.into());
        p
    }

    fn names(pods: Vec<&Pod>) -> Vec<&str> {
        pods.iter().filter_map(|p| p.metadata.name.as_deref()).collect()
    }

    #[test]
    fn unassigned_pending_and_unready_pods_go_first() {
        let running_ready = on("n1", pod("running-ready", "Running", Some(0)));
        let running = on("n2", pod("running", "Running", None));
        let pending = on("n3", pod("pending", "Pending", None));
        let unknown = on("n4", pod("unknown", "Unknown", None));
        let unassigned = pod("unassigned", "Running", Some(0));
        let all = [&running_ready, &running, &pending, &unknown, &unassigned];
        assert_eq!(
            names(pods_to_delete(&all, &all, 5)),
            ["unassigned", "pending", "unknown", "running", "running-ready"]
        );
        assert_eq!(names(pods_to_delete(&all, &all, 2)), ["unassigned", "pending"]);
    }

    #[test]
    fn recently_ready_restarting_and_young_pods_go_first() {
        let old_ready = on("n1", pod("old-ready", "Running", Some(10)));
        let new_ready = on("n2", pod("new-ready", "Running", Some(50)));
        let all = [&old_ready, &new_ready];
        assert_eq!(names(pods_to_delete(&all, &all, 1)), ["new-ready"]);

        let mut restarting = on("n1", pod("restarting", "Running", None));
        restarting.status.get_or_insert_default().container_statuses =
            Some(vec![ContainerStatus { restart_count: 4, ..ContainerStatus::default() }]);
        let mut young = on("n2", pod("young", "Running", None));
        young.metadata.creation_timestamp = Some(Time(at(100)));
        let steady = on("n3", pod("steady", "Running", None));
        let all = [&steady, &young, &restarting];
        assert_eq!(names(pods_to_delete(&all, &all, 3)), ["restarting", "young", "steady"]);
    }

    #[test]
    fn crowded_nodes_and_cheap_pods_go_first() {
        let crowded_a = on("n1", pod("crowded-a", "Running", None));
        let crowded_b = on("n1", pod("crowded-b", "Running", None));
        let alone = on("n2", pod("alone", "Running", None));
        let all = [&alone, &crowded_a, &crowded_b];
        assert_eq!(names(pods_to_delete(&all, &all, 1)), ["crowded-a"]);

        let mut cheap = on("n2", pod("cheap", "Running", None));
        cheap.metadata.annotations = Some([(DELETION_COST.to_string(), "-5".to_string())].into());
        let all = [&crowded_a, &crowded_b, &cheap];
        assert_eq!(names(pods_to_delete(&all, &all, 1)), ["cheap"]);
    }
}
