//! Revision and replica annotations on a Deployment's ReplicaSets, and which
//! old ReplicaSets the revision history limit lets go (deployment/util,
//! sync.go `cleanupDeployment`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::replicas::{self, DESIRED_REPLICAS, MAX_REPLICAS, REVISION, REVISION_HISTORY};

/// Longest revision-history annotation kept.
const MAX_HISTORY_CHARS: usize = 2000;

/// Deployment annotations that are not copied to its ReplicaSets.
fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

/// The annotations the new ReplicaSet should carry (`SetNewReplicaSetAnnotations`):
/// the Deployment's own, the revision raised to `new_revision` (the old one
/// appended to the history), and for a new set the replica annotations.
/// None when nothing changes.
pub fn new_rs_annotations(
    d: &Deployment,
    rs: &ReplicaSet,
    new_revision: i64,
    exists: bool,
    max_surge: i32,
) -> Option<BTreeMap<String, String>> {
    let mut annotations = rs.metadata.annotations.clone().unwrap_or_default();
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !skip_copy(k) && annotations.get(k) != Some(v) {
            annotations.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let old_revision = annotations.get(REVISION).cloned().unwrap_or_default();
    if old_revision.parse::<i64>().unwrap_or(0) < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if !old_revision.is_empty() {
            let history = append_history(annotations.get(REVISION_HISTORY).map_or("", String::as_str), &old_revision);
            if let Some(history) = history {
                annotations.insert(REVISION_HISTORY.into(), history);
            }
        }
    }
    if !exists {
        let desired = replicas::desired(d);
        annotations.insert(DESIRED_REPLICAS.into(), desired.to_string());
        annotations.insert(MAX_REPLICAS.into(), (desired + max_surge).to_string());
        changed = true;
    }
    changed.then_some(annotations)
}

/// `history` with `revision` appended, oldest entries dropped to fit.
fn append_history(history: &str, revision: &str) -> Option<String> {
    if history.is_empty() {
        return Some(revision.to_string());
    }
    let mut entries: Vec<&str> = history.split(',').collect();
    entries.push(revision);
    while entries.join(",").len() > MAX_HISTORY_CHARS && entries.len() > 1 {
        entries.remove(0);
    }
    let joined = entries.join(",");
    (joined.len() <= MAX_HISTORY_CHARS).then_some(joined)
}

/// Whether `rs`'s desired/max replica annotations differ from these.
pub fn replica_annotations_differ(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    replicas::desired_annotation(rs) != Some(desired) || replicas::max_annotation(rs) != Some(max)
}

/// Old ReplicaSets beyond `revisionHistoryLimit` that may be deleted: the
/// lowest revisions first, only when fully scaled down and settled.
pub fn history_to_delete<'a>(d: &Deployment, old: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Vec::new() };
    let mut alive: Vec<&ReplicaSet> =
        old.iter().copied().filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
    let excess = alive.len() as i64 - i64::from(limit);
    if excess <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| replicas::by_revision(a, b));
    alive
        .into_iter()
        .take(excess as usize)
        .filter(|rs| {
            let settled = rs.status.as_ref().and_then(|s| s.observed_generation) >= rs.metadata.generation;
            replicas::status_replicas(rs) == 0 && replicas::spec_replicas(rs) == 0 && settled
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::rolling::tests::{deployment, rs};

    fn with_revision(mut rs: ReplicaSet, revision: &str) -> ReplicaSet {
        rs.metadata.annotations.get_or_insert_default().insert(REVISION.into(), revision.into());
        rs
    }

    #[test]
    fn a_new_replica_set_gets_revision_and_replica_annotations() {
        let mut d = deployment(4, "1", "1");
        d.metadata.annotations =
            Some(BTreeMap::from([("team".to_string(), "a".to_string()), (REVISION.to_string(), "9".to_string())]));
        let annotations = new_rs_annotations(&d, &rs("new", 0, 0, 0), 3, false, 1).unwrap_or_default();
        assert_eq!(annotations.get("team").map(String::as_str), Some("a"));
        assert_eq!(annotations.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(annotations.get(DESIRED_REPLICAS).map(String::as_str), Some("4"));
        assert_eq!(annotations.get(MAX_REPLICAS).map(String::as_str), Some("5"));
    }

    #[test]
    fn a_reused_replica_set_moves_to_the_newest_revision_once() {
        let d = deployment(1, "1", "0");
        let old = with_revision(rs("old", 0, 0, 0), "1");
        let annotations = new_rs_annotations(&d, &old, 3, true, 1).unwrap_or_default();
        assert_eq!(annotations.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(annotations.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert!(!annotations.contains_key(DESIRED_REPLICAS), "an existing set keeps its replica annotations");
        let mut bumped = old.clone();
        bumped.metadata.annotations = Some(annotations);
        assert_eq!(new_rs_annotations(&d, &bumped, 3, true, 1), None);
    }

    #[test]
    fn revision_history_drops_its_oldest_entries() {
        assert_eq!(append_history("1,2", "4").as_deref(), Some("1,2,4"));
        let long = vec!["12345"; 400].join(",");
        let appended = append_history(&long, "9").unwrap_or_default();
        assert!(appended.len() <= MAX_HISTORY_CHARS && appended.ends_with(",9"));
    }

    #[test]
    fn history_beyond_the_limit_is_deleted_lowest_revision_first() {
        let mut d = deployment(1, "1", "0");
        if let Some(spec) = d.spec.as_mut() {
            spec.revision_history_limit = Some(1);
        }
        let (r1, r2, r3) = (
            with_revision(rs("r1", 5, 0, 0), "1"),
            with_revision(rs("r2", 0, 0, 0), "2"),
            with_revision(rs("r3", 1, 0, 0), "3"),
        );
        let doomed: Vec<&str> = history_to_delete(&d, &[&r3, &r1, &r2]).into_iter().map(replicas::name).collect();
        assert_eq!(doomed, ["r1", "r2"]);
        let busy = with_revision(rs("busy", 0, 1, 1), "1");
        assert!(history_to_delete(&d, &[&busy, &r3]).is_empty(), "a set with pods is kept");
    }
}
