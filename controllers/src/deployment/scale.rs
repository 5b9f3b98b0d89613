//! Scaling a Deployment outside a rollout step (sync.go `scale`): one active
//! ReplicaSet takes the whole count; mid-rollout, a change of
//! `spec.replicas` is spread over the active sets in proportion to their size.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::replicas::{self, by_creation, is_active, spec_replicas};
use super::rolling::{is_rolling, max_surge};

/// One resize: index into the sets given, new size, and "up"/"down" for the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resize {
    pub index: usize,
    pub size: i32,
    pub operation: &'static str,
}

fn operation(from: i32, to: i32) -> &'static str {
    if to < from { "down" } else { "up" }
}

/// The resizes for `sets` (old ones and, at `new_index`, the new one).
pub fn plan(d: &Deployment, sets: &[&ReplicaSet], new_index: Option<usize>) -> Vec<Resize> {
    let desired = replicas::desired(d);
    let active: Vec<usize> = (0..sets.len()).filter(|&i| is_active(sets[i])).collect();
    let resize =
        |index: usize, size: i32| Resize { index, size, operation: operation(spec_replicas(sets[index]), size) };

    // One active set, or none: it (or the newest) takes the full count.
    let target = match active.as_slice() {
        [only] => Some(*only),
        [] => new_index.or_else(|| (0..sets.len()).max_by(|a, b| by_creation(sets[*a], sets[*b]))),
        _ => None,
    };
    if let Some(i) = target {
        return if spec_replicas(sets[i]) == desired { Vec::new() } else { vec![resize(i, desired)] };
    }

    // A saturated new set: the old ones go.
    if let Some(n) = new_index.filter(|&n| is_saturated(d, sets[n])) {
        return active.into_iter().filter(|&i| i != n).map(|i| resize(i, 0)).collect();
    }
    if !is_rolling(d) {
        return Vec::new();
    }

    let current: i32 = active.iter().map(|&i| spec_replicas(sets[i])).sum();
    let allowed = if desired > 0 { desired + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    let mut order = active;
    match to_add.cmp(&0) {
        // Up: larger first, newer before older; down: larger first, older before newer.
        Ordering::Greater => {
            order.sort_by(|a, b| by_size(sets[*a], sets[*b]).then_with(|| by_creation(sets[*b], sets[*a])))
        }
        Ordering::Less => {
            order.sort_by(|a, b| by_size(sets[*a], sets[*b]).then_with(|| by_creation(sets[*a], sets[*b])))
        }
        Ordering::Equal => {}
    }
    let annotated_fallback = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut added = 0;
    let mut sizes: Vec<(usize, i32)> = Vec::new();
    for &i in &order {
        let size = spec_replicas(sets[i]);
        let proportion = if to_add == 0 { 0 } else { proportion(d, sets[i], to_add, added, annotated_fallback) };
        added += proportion;
        sizes.push((i, size + proportion));
    }
    // Leftovers from rounding go to the largest set.
    if let Some(first) = sizes.first_mut()
        && to_add != 0
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    let operation = if to_add > 0 { "up" } else { "down" };
    sizes.into_iter().map(|(index, size)| Resize { index, size, operation }).collect()
}

fn by_size(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b).cmp(&spec_replicas(a))
}

/// The new set holds the full count, all available (`IsSaturated`).
fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let desired = replicas::desired(d);
    replicas::desired_annotation(rs) == Some(desired)
        && spec_replicas(rs) == desired
        && replicas::available(rs) == desired
}

/// How many replicas `rs` gains or loses of `to_add` (`GetReplicaSetProportion`).
fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32, annotated_fallback: i32) -> i32 {
    let size = spec_replicas(rs);
    if size == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(d, rs, annotated_fallback);
    let allowed = to_add - added;
    if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
}

/// `rs`'s share of the new total, relative to the total it was sized for
/// (its max-replicas annotation) (`getReplicaSetFraction`).
fn fraction(d: &Deployment, rs: &ReplicaSet, annotated_fallback: i32) -> i32 {
    let size = spec_replicas(rs);
    let desired = replicas::desired(d);
    if desired == 0 {
        return -size;
    }
    let total = desired + max_surge(d);
    let annotated = replicas::max_annotation(rs).unwrap_or(annotated_fallback);
    if annotated == 0 {
        return 0;
    }
    let share = f64::from(size) * f64::from(total) / f64::from(annotated);
    share.round() as i32 - size
}

/// Whether the replica count changed since the active sets were sized (`isScalingEvent`).
pub fn is_scaling_event(d: &Deployment, sets: &[&ReplicaSet]) -> bool {
    let desired = replicas::desired(d);
    sets.iter().filter(|rs| is_active(rs)).any(|rs| replicas::desired_annotation(rs).is_some_and(|a| a != desired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::replicas::{DESIRED_REPLICAS, MAX_REPLICAS};
    use crate::deployment::rolling::tests::{deployment, rs};

    fn sized_for(mut rs: ReplicaSet, desired: i32, max: i32) -> ReplicaSet {
        let annotations = rs.metadata.annotations.get_or_insert_default();
        annotations.insert(DESIRED_REPLICAS.into(), desired.to_string());
        annotations.insert(MAX_REPLICAS.into(), max.to_string());
        rs
    }

    #[test]
    fn a_single_active_set_takes_the_whole_count() {
        let d = deployment(5, "1", "0");
        let (old, new) = (rs("old", 0, 0, 0), rs("new", 1, 3, 3));
        assert_eq!(plan(&d, &[&old, &new], Some(1)), vec![Resize { index: 1, size: 5, operation: "up" }]);
        let d = deployment(1, "1", "0");
        assert_eq!(plan(&d, &[&old, &new], Some(1)), vec![Resize { index: 1, size: 1, operation: "down" }]);
        // Nothing active: the new set (or the newest) is scaled.
        let (a, b) = (rs("a", 0, 0, 0), rs("b", 1, 0, 0));
        assert_eq!(plan(&d, &[&b, &a], None), vec![Resize { index: 0, size: 1, operation: "up" }]);
    }

    #[test]
    fn a_saturated_new_set_scales_the_old_ones_away() {
        let d = deployment(3, "1", "0");
        let old = rs("old", 0, 2, 2);
        let new = sized_for(rs("new", 1, 3, 3), 3, 4);
        assert_eq!(plan(&d, &[&old, &new], Some(1)), vec![Resize { index: 0, size: 0, operation: "down" }]);
    }

    #[test]
    fn mid_rollout_changes_are_proportional() {
        // 10 replicas, surge 3: sized for 13; old 8 + new 5. Scaled to 20 (max 23).
        let d = deployment(20, "3", "2");
        let (old, new) = (sized_for(rs("old", 0, 8, 8), 10, 13), sized_for(rs("new", 1, 5, 0), 10, 13));
        let resized = plan(&d, &[&old, &new], Some(1));
        let total: i32 = resized.iter().map(|r| r.size).sum();
        assert_eq!(total, 23);
        assert_eq!(resized[0], Resize { index: 0, size: 14, operation: "up" }, "8*23/13 = 14.15");
        assert_eq!(resized[1], Resize { index: 1, size: 9, operation: "up" });

        // Down to 5 (max 7 with surge 2).
        let d = deployment(5, "2", "0");
        let resized = plan(&d, &[&old, &new], Some(1));
        assert_eq!(resized.iter().map(|r| r.size).sum::<i32>(), 7);
        assert!(resized.iter().all(|r| r.operation == "down"));
    }

    #[test]
    fn a_scaling_event_is_a_changed_desired_annotation() {
        let d = deployment(4, "1", "0");
        let set = sized_for(rs("a", 0, 3, 3), 3, 4);
        assert!(is_scaling_event(&d, &[&set]));
        let set = sized_for(rs("a", 0, 4, 4), 4, 5);
        assert!(!is_scaling_event(&d, &[&set]));
        assert!(!is_scaling_event(&d, &[&rs("idle", 0, 0, 0)]), "inactive sets do not count");
    }
}
