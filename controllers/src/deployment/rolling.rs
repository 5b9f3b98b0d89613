//! Rolling-update arithmetic (deployment/rolling.go and util): how far the
//! new ReplicaSet may grow and the old ones shrink, given maxSurge and
//! maxUnavailable.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::replicas::{self, available, by_creation, spec_replicas, sum};

pub fn is_rolling(d: &Deployment) -> bool {
    let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref());
    strategy != Some("Recreate")
}

/// An int, or a percent of `total` rounded up or down (`GetScaledValueFromIntOrPercent`).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else { return 0 };
            let scaled = i64::from(total) * percent;
            let value = if round_up { (scaled + 99).div_euclid(100) } else { scaled.div_euclid(100) };
            value as i32
        }
    }
}

/// (maxSurge, maxUnavailable) for `d`, surge rounded up and unavailability
/// down; both zero would deadlock, so unavailability becomes 1 (`ResolveFenceposts`).
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let rolling = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = rolling.and_then(|r| r.max_surge.as_ref()).unwrap_or(&quarter);
    let unavailable = rolling.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&quarter);
    let desired = replicas::desired(d);
    let surge = scaled_value(surge, desired, true);
    let unavailable = scaled_value(unavailable, desired, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling(d) { fenceposts(d).0 } else { 0 }
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas::desired(d);
    if !is_rolling(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

/// The size for the new ReplicaSet now (`NewRSNewReplicas`): for a rolling
/// update, as many more as the surge allows, never past the desired count.
pub fn new_rs_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = replicas::desired(d);
    if !is_rolling(d) {
        return desired;
    }
    let current = sum(all, spec_replicas);
    let max_total = desired + max_surge(d);
    if current >= max_total {
        return spec_replicas(new_rs);
    }
    let up = (max_total - current).min(desired - spec_replicas(new_rs));
    spec_replicas(new_rs) + up.max(0)
}

/// Old ReplicaSets scaled down for a rolling update (`reconcileOldReplicaSets`):
/// first unavailable pods of old sets (they cost no availability), then as
/// many available ones as maxUnavailable allows. Returns (index into `old`, new size).
pub fn old_scale_down(d: &Deployment, old: &[&ReplicaSet], new_rs: &ReplicaSet) -> Vec<(usize, i32)> {
    let mut sizes: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();
    let old_count: i32 = sizes.iter().sum();
    if old_count == 0 {
        return Vec::new();
    }
    let desired = replicas::desired(d);
    let min_available = desired - max_unavailable(d);
    let all_count = old_count + spec_replicas(new_rs);
    let new_unavailable = spec_replicas(new_rs) - available(new_rs);
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|a, b| by_creation(old[*a], old[*b]));

    // Unhealthy replicas first (`cleanupUnhealthyReplicas`).
    let mut cleaned = 0;
    for &i in &order {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = sizes[i] - available(old[i]);
        if sizes[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        sizes[i] -= down;
        cleaned += down;
    }

    // Then available ones, keeping minAvailable (`scaleDownOldReplicaSetsForRollingUpdate`).
    let available_count = available(new_rs) + old.iter().map(|rs| available(rs)).sum::<i32>();
    if available_count > min_available {
        let total = available_count - min_available;
        let mut scaled = 0;
        for &i in &order {
            if scaled >= total {
                break;
            }
            if sizes[i] == 0 {
                continue;
            }
            let down = sizes[i].min(total - scaled);
            sizes[i] -= down;
            scaled += down;
        }
    }
    (0..old.len()).filter(|&i| sizes[i] != spec_replicas(old[i])).map(|i| (i, sizes[i])).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;
    use crate::pods::testing::at;

    fn value(v: &str) -> IntOrString {
        v.parse::<i32>().map(IntOrString::Int).unwrap_or_else(|_| IntOrString::String(v.into()))
    }

    pub fn deployment(replicas: i32, surge: &str, unavailable: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some("web".into()), ..ObjectMeta::default() },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(value(surge)),
                        max_unavailable: Some(value(unavailable)),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    /// A ReplicaSet created at `created` seconds with `replicas`, of which `available` are available.
    pub fn rs(name: &str, created: i64, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(at(created))),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..ReplicaSetSpec::default() }),
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(available),
                ready_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
        }
    }

    #[test]
    fn percents_round_surge_up_and_unavailability_down() {
        assert_eq!(scaled_value(&value("25%"), 10, true), 3);
        assert_eq!(scaled_value(&value("25%"), 10, false), 2);
        assert_eq!(scaled_value(&value("2"), 10, false), 2);
        assert_eq!(scaled_value(&value("bogus%"), 10, true), 0);
        assert_eq!(fenceposts(&deployment(10, "25%", "25%")), (3, 2));
        assert_eq!(fenceposts(&deployment(3, "0", "10%")), (0, 1), "both zero: one may be unavailable");
        assert_eq!(max_unavailable(&deployment(2, "0", "5")), 2, "never more than the replicas");
        let mut recreate = deployment(3, "1", "1");
        if let Some(s) = recreate.spec.as_mut().and_then(|s| s.strategy.as_mut()) {
            s.type_ = Some("Recreate".into());
        }
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    #[test]
    fn the_new_replica_set_grows_within_the_surge() {
        let d = deployment(10, "3", "2");
        let (old, new) = (rs("old", 0, 10, 10), rs("new", 1, 0, 0));
        assert_eq!(new_rs_replicas(&d, &[&old, &new], &new), 3);
        let (old, new) = (rs("old", 0, 8, 8), rs("new", 1, 3, 0));
        assert_eq!(new_rs_replicas(&d, &[&old, &new], &new), 5);
        let (old, new) = (rs("old", 0, 10, 10), rs("new", 1, 3, 0));
        assert_eq!(new_rs_replicas(&d, &[&old, &new], &new), 3, "at the surge limit");
        let new = rs("new", 1, 9, 9);
        assert_eq!(new_rs_replicas(&d, &[&new], &new), 10, "never past the desired count");
    }

    #[test]
    fn old_replica_sets_shrink_within_max_unavailable() {
        let d = deployment(10, "3", "2");
        // 10 old available + 3 new unavailable: may drop to 8 available.
        let (old, new) = (rs("old", 0, 10, 10), rs("new", 1, 3, 0));
        assert_eq!(old_scale_down(&d, &[&old], &new), vec![(0, 8)]);
        // The new pods became available: 13 available, keep 8.
        let (old, new) = (rs("old", 0, 8, 8), rs("new", 1, 5, 5));
        assert_eq!(old_scale_down(&d, &[&old], &new), vec![(0, 3)]);
        // Nothing to give: the new pods are not available yet.
        let (old, new) = (rs("old", 0, 8, 8), rs("new", 1, 5, 0));
        assert!(old_scale_down(&d, &[&old], &new).is_empty());
    }

    #[test]
    fn unhealthy_old_replicas_are_cleaned_up_first_oldest_first() {
        let d = deployment(10, "0", "1");
        // 11 pods, 9 must stay available, the new one is: 2 may go, taken
        // from the older set's unavailable pods; available ones stay.
        let (older, old, new) = (rs("older", 0, 3, 0), rs("old", 1, 7, 7), rs("new", 2, 1, 1));
        assert_eq!(old_scale_down(&d, &[&old, &older], &new), vec![(1, 1)]);
        // An unavailable new pod leaves room for one.
        let (older, old, new) = (rs("older", 0, 3, 0), rs("old", 1, 7, 7), rs("new", 2, 1, 0));
        assert_eq!(old_scale_down(&d, &[&older, &old], &new), vec![(0, 2)]);
        let (older, new) = (rs("older", 0, 5, 0), rs("new", 2, 9, 9));
        assert_eq!(old_scale_down(&d, &[&older], &new), vec![(0, 0)]);
    }
}
