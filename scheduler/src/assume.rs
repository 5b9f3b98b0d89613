//! The assume cache: a pod this scheduler bound counts on its node at once,
//! before the pod watch shows the binding, so the next decision sees the
//! node's resources as taken. The watch confirming the binding, or the pod
//! going away, ends the assumption; a failed binding forgets it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::pod_state;

#[derive(Debug, Default)]
pub struct AssumeCache {
    /// By pod uid: the pod as bound (`spec.nodeName` set).
    assumed: HashMap<String, Pod>,
}

impl AssumeCache {
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut bound = pod.clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        self.assumed.insert(pod_state::uid(pod).to_string(), bound);
    }

    pub fn forget(&mut self, uid: &str) {
        self.assumed.remove(uid);
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.assumed.contains_key(uid)
    }

    /// Drops the assumptions the watched pods settle: pods seen bound, and
    /// pods no longer there.
    pub fn reconcile(&mut self, watched: &[Arc<Pod>]) {
        let still_unbound: HashSet<&str> =
            watched.iter().filter(|p| pod_state::node_name(p).is_none()).map(|p| pod_state::uid(p)).collect();
        self.assumed.retain(|uid, _| still_unbound.contains(uid.as_str()));
    }

    /// The assumed pods, each with its node set.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.assumed.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, node: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta { uid: Some(uid.into()), name: Some(uid.into()), ..Default::default() },
            spec: Some(PodSpec { node_name: node.map(str::to_string), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn an_assumed_pod_counts_on_its_node_until_the_watch_confirms() {
        let mut cache = AssumeCache::default();
        cache.assume(&pod("u1", None), "n1");
        assert!(cache.is_assumed("u1"));
        let nodes: Vec<_> = cache.pods().map(|p| pod_state::node_name(p).map(str::to_string)).collect();
        assert_eq!(nodes, vec![Some("n1".to_string())]);

        cache.reconcile(&[Arc::new(pod("u1", None))]);
        assert!(cache.is_assumed("u1"), "the watch has not caught up yet");
        cache.reconcile(&[Arc::new(pod("u1", Some("n1")))]);
        assert!(!cache.is_assumed("u1"), "the watched pod now counts itself");
    }

    #[test]
    fn a_failed_binding_or_a_deleted_pod_forgets() {
        let mut cache = AssumeCache::default();
        cache.assume(&pod("u1", None), "n1");
        cache.assume(&pod("u2", None), "n1");
        cache.forget("u1");
        assert!(!cache.is_assumed("u1"));
        cache.reconcile(&[]);
        assert!(!cache.is_assumed("u2"));
        assert_eq!(cache.pods().count(), 0);
    }
}
