//! The garbage collector's decisions (garbagecollector.go
//! `attemptToDeleteItem`, `processDeletingDependentsItem`,
//! `orphanDependents`) over a snapshot of every watched object.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// What the collector knows of one object.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Index into the watched kinds.
    pub kind: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: Option<String>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
    pub owners: Vec<OwnerReference>,
}

impl Node {
    pub fn from_meta(kind: usize, meta: &ObjectMeta) -> Option<Node> {
        Some(Node {
            kind,
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            resource_version: meta.resource_version.clone(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
        })
    }

    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }
}

/// One write the collector makes; `node` indexes the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Delete a dependent whose owners are all gone or deleting in the
    /// foreground, with this propagation policy.
    Delete { node: usize, propagation: &'static str },
    /// Drop the references to these owners (gone, deleting in the
    /// foreground while another owner stays, or orphaning).
    RemoveOwners { node: usize, owners: Vec<String> },
    /// The owner's dependents are handled; let it go.
    RemoveFinalizer { node: usize, finalizer: &'static str },
}

/// Every object, indexed by uid and by owner.
pub struct Graph<'a> {
    nodes: &'a [Node],
    by_uid: HashMap<&'a str, usize>,
    dependents: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Graph<'a> {
    pub fn new(nodes: &'a [Node]) -> Self {
        let mut by_uid = HashMap::new();
        let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            by_uid.insert(node.uid.as_str(), i);
            for owner in &node.owners {
                dependents.entry(owner.uid.as_str()).or_default().push(i);
            }
        }
        Graph { nodes, by_uid, dependents }
    }

    /// Owner uids referenced but not in the snapshot: to be confirmed
    /// absent with the apiserver before anything is deleted for them.
    pub fn missing_owners(&self) -> Vec<(usize, &'a OwnerReference)> {
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for owner in &node.owners {
                if !self.by_uid.contains_key(owner.uid.as_str()) && seen.insert(owner.uid.as_str()) {
                    missing.push((i, owner));
                }
            }
        }
        missing
    }

    /// The writes to make, given the owner uids confirmed to be gone.
    pub fn decide(&self, gone: &HashSet<String>) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.deleting {
                self.decide_deleting_owner(i, node, &mut decisions);
            } else if !node.owners.is_empty() {
                self.decide_dependent(i, node, gone, &mut decisions);
            }
        }
        decisions
    }

    /// An owner being deleted with the orphan or foreground finalizer.
    fn decide_deleting_owner(&self, i: usize, node: &Node, decisions: &mut Vec<Decision>) {
        let dependents = self.dependents.get(node.uid.as_str()).map(Vec::as_slice).unwrap_or_default();
        if node.has_finalizer(ORPHAN) {
            if dependents.is_empty() {
                decisions.push(Decision::RemoveFinalizer { node: i, finalizer: ORPHAN });
            }
            for &d in dependents {
                decisions.push(Decision::RemoveOwners { node: d, owners: vec![node.uid.clone()] });
            }
        } else if node.has_finalizer(FOREGROUND) {
            let blocking = dependents.iter().any(|&d| {
                self.nodes[d].owners.iter().any(|o| o.uid == node.uid && o.block_owner_deletion == Some(true))
            });
            if !blocking {
                decisions.push(Decision::RemoveFinalizer { node: i, finalizer: FOREGROUND });
            }
        }
    }

    /// A dependent not being deleted: classify its owners (`classifyReferences`).
    fn decide_dependent(&self, i: usize, node: &Node, gone: &HashSet<String>, decisions: &mut Vec<Decision>) {
        let (mut solid, mut dangling, mut waiting) = (0, Vec::new(), Vec::new());
        for owner in &node.owners {
            match self.by_uid.get(owner.uid.as_str()).map(|&o| &self.nodes[o]) {
                Some(o) if o.deleting && o.has_finalizer(FOREGROUND) && !o.has_finalizer(ORPHAN) => {
                    waiting.push(owner.uid.clone())
                }
                Some(_) => solid += 1,
                None if gone.contains(&owner.uid) => dangling.push(owner.uid.clone()),
                // Not confirmed gone (a lagging cache, or a kind not watched).
                None => solid += 1,
            }
        }
        if solid > 0 {
            if !dangling.is_empty() || !waiting.is_empty() {
                dangling.extend(waiting);
                decisions.push(Decision::RemoveOwners { node: i, owners: dangling });
            }
        } else if !waiting.is_empty() && self.dependents.contains_key(node.uid.as_str()) {
            // Its own dependents go first, so its owner keeps waiting.
            decisions.push(Decision::Delete { node: i, propagation: "Foreground" });
        } else if !dangling.is_empty() || !waiting.is_empty() {
            decisions.push(Decision::Delete { node: i, propagation: "Background" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, owners: &[(&str, bool)]) -> Node {
        Node {
            name: format!("n-{uid}"),
            uid: uid.into(),
            owners: owners
                .iter()
                .map(|(o, block)| OwnerReference {
                    uid: o.to_string(),
                    block_owner_deletion: Some(*block),
                    ..Default::default()
                })
                .collect(),
            ..Node::default()
        }
    }

    fn deleting(mut n: Node, finalizer: &str) -> Node {
        n.deleting = true;
        n.finalizers = vec![finalizer.into()];
        n
    }

    fn gone(uids: &[&str]) -> HashSet<String> {
        uids.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn dependents_of_a_confirmed_gone_owner_are_deleted_in_the_background() {
        let nodes = [node("rs", &[("deploy", true)]), node("pod", &[("rs", true)])];
        let graph = Graph::new(&nodes);
        let missing: Vec<&str> = graph.missing_owners().iter().map(|(_, o)| o.uid.as_str()).collect();
        assert_eq!(missing, ["deploy"]);
        assert!(graph.decide(&gone(&[])).is_empty(), "not confirmed: nothing happens");
        assert_eq!(graph.decide(&gone(&["deploy"])), [Decision::Delete { node: 0, propagation: "Background" }]);
    }

    #[test]
    fn a_dependent_with_a_living_owner_only_loses_the_dangling_reference() {
        let nodes = [node("a", &[]), node("pod", &[("a", false), ("gone", false)])];
        let decisions = Graph::new(&nodes).decide(&gone(&["gone"]));
        assert_eq!(decisions, [Decision::RemoveOwners { node: 1, owners: vec!["gone".into()] }]);
    }

    #[test]
    fn foreground_deletion_cascades_and_waits_for_blocking_dependents() {
        let nodes =
            [deleting(node("deploy", &[]), FOREGROUND), node("rs", &[("deploy", true)]), node("pod", &[("rs", true)])];
        let decisions = Graph::new(&nodes).decide(&gone(&[]));
        assert_eq!(decisions, [Decision::Delete { node: 1, propagation: "Foreground" }], "the owner keeps waiting");

        // The ReplicaSet, itself deleting in the foreground, goes once its
        // pods are gone; until then the Deployment waits for it.
        let nodes = [deleting(node("deploy", &[]), FOREGROUND), deleting(node("rs", &[("deploy", true)]), FOREGROUND)];
        assert_eq!(
            Graph::new(&nodes).decide(&gone(&[])),
            [Decision::RemoveFinalizer { node: 1, finalizer: FOREGROUND }]
        );
        let nodes = [deleting(node("deploy", &[]), FOREGROUND)];
        assert_eq!(
            Graph::new(&nodes).decide(&gone(&[])),
            [Decision::RemoveFinalizer { node: 0, finalizer: FOREGROUND }]
        );

        // A leaf is deleted in the background; non-blocking dependents do not hold the owner.
        let nodes = [deleting(node("rs", &[]), FOREGROUND), node("pod", &[("rs", false)])];
        let decisions = Graph::new(&nodes).decide(&gone(&[]));
        assert!(decisions.contains(&Decision::RemoveFinalizer { node: 0, finalizer: FOREGROUND }));
        assert!(decisions.contains(&Decision::Delete { node: 1, propagation: "Background" }));
    }

    #[test]
    fn orphaning_drops_references_before_the_finalizer() {
        let nodes = [deleting(node("rs", &[]), ORPHAN), node("p1", &[("rs", true)]), node("p2", &[("rs", true)])];
        let decisions = Graph::new(&nodes).decide(&gone(&[]));
        assert_eq!(
            decisions,
            [
                Decision::RemoveOwners { node: 1, owners: vec!["rs".into()] },
                Decision::RemoveOwners { node: 2, owners: vec!["rs".into()] },
            ],
            "orphaned dependents are not deleted"
        );
        let nodes = [deleting(node("rs", &[]), ORPHAN)];
        assert_eq!(Graph::new(&nodes).decide(&gone(&[])), [Decision::RemoveFinalizer { node: 0, finalizer: ORPHAN }]);
    }

    #[test]
    fn objects_being_deleted_are_not_collected_again() {
        let mut pod = node("pod", &[("gone", true)]);
        pod.deleting = true;
        assert!(Graph::new(&[pod]).decide(&gone(&["gone"])).is_empty());
    }
}
