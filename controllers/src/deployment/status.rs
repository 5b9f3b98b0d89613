//! A Deployment's status and its Available and Progressing conditions
//! (deployment/sync.go `calculateStatus`, `syncRolloutStatus`, progress.go),
//! with Kubernetes' reasons and messages, which `kubectl rollout status` reads.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::replicas::{self, available, ready, spec_replicas, status_replicas, sum};
use super::rolling::max_unavailable;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

pub fn condition(status: &DeploymentStatus, type_: &str) -> Option<DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_).cloned()
}

pub fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets `new` unless a condition of its type already has its status and
/// reason; a same-status replacement keeps the transition time (`SetDeploymentCondition`).
pub fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_default();
    if let Some(current) = conditions.iter().find(|c| c.type_ == new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// `progressDeadlineSeconds`, unless absent or "never" (MaxInt32).
fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.as_ref()?.progress_deadline_seconds.filter(|s| *s != i32::MAX)
}

pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline(d).is_some()
}

/// Counts from the ReplicaSets and the Available condition (`calculateStatus`).
pub fn calculate(d: &Deployment, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>, now: Timestamp) -> DeploymentStatus {
    let current = d.status.clone().unwrap_or_default();
    let available_count = sum(all, available);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(all, status_replicas)),
        updated_replicas: Some(new_rs.map_or(0, status_replicas)),
        ready_replicas: Some(sum(all, ready)),
        available_replicas: Some(available_count),
        unavailable_replicas: Some((sum(all, spec_replicas) - available_count).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions,
        terminating_replicas: current.terminating_replicas,
    };
    let condition = if available_count >= replicas::desired(d) - max_unavailable(d) {
        new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), now)
    } else {
        new_condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, condition);
    status
}

/// Every replica updated and available, and the latest spec observed (`DeploymentComplete`).
pub fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = replicas::desired(d);
    status.updated_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) == desired
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` moved the rollout forward from `d`'s stored status (`DeploymentProgressing`).
fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Whether the Progressing condition in `status` has gone without an update
/// for longer than the deadline (`DeploymentTimedOut`).
fn is_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let (Some(deadline), Some(condition)) = (progress_deadline(d), condition(status, PROGRESSING)) else {
        return false;
    };
    match condition.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => {
            condition.last_update_time.is_some_and(|from| from.0 + SignedDuration::from_secs(i64::from(deadline)) < now)
        }
    }
}

/// The status after a sync step (`syncRolloutStatus`), and when to look
/// again if the rollout may time out meanwhile.
pub fn rollout(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> (DeploymentStatus, Option<Duration>) {
    let mut status = calculate(d, all, new_rs, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, PROGRESSING);
    }
    let stored = d.status.clone().unwrap_or_default();
    let current = condition(&stored, PROGRESSING);
    let complete_before = status.replicas == status.updated_replicas
        && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let subject = match new_rs {
        Some(rs) => format!("ReplicaSet \"{}\"", replicas::name(rs)),
        None => format!("Deployment \"{}\"", d.metadata.name.as_deref().unwrap_or_default()),
    };
    if has_progress_deadline(d) && !complete_before {
        if is_complete(d, &status) {
            let message = format!("{subject} has successfully progressed.");
            set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now));
        } else if is_progressing(d, &status) {
            let mut condition =
                new_condition(PROGRESSING, "True", RS_UPDATED, format!("{subject} is progressing."), now);
            if let Some(current) = &current {
                if current.status == "True" {
                    condition.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, condition);
        } else if is_timed_out(d, &status, now) {
            let message = format!("{subject} has timed out progressing.");
            set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT, message, now));
        }
    }
    let requeue = if status == stored { stuck_requeue(d, &status, now) } else { None };
    (status, requeue)
}

/// When a rollout that is making no progress would pass its deadline (`requeueStuckDeployment`).
fn stuck_requeue(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let current = condition(status, PROGRESSING)?;
    if is_complete(d, status) || current.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = current.last_update_time?.0;
    let left = (from + SignedDuration::from_secs(i64::from(deadline))).duration_since(now);
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    Some(if left < Duration::from_secs(1) { Duration::from_millis(100) } else { left + Duration::from_secs(1) })
}

/// The Progressing condition for a pause or resume (`checkPausedConditions`),
/// or None when it already says so.
pub fn paused_transition(d: &Deployment, now: Timestamp) -> Option<DeploymentStatus> {
    if !has_progress_deadline(d) {
        return None;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let mut status = d.status.clone().unwrap_or_default();
    let reason = condition(&status, PROGRESSING).and_then(|c| c.reason);
    let was_paused = reason.as_deref() == Some(PAUSED);
    let condition = if paused && !was_paused {
        new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), now)
    } else if !paused && was_paused {
        new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into(), now)
    } else {
        return None;
    };
    set_condition(&mut status, condition);
    Some(status)
}

/// `status` with absent counts as zero, for comparing a stored status.
pub fn normalized(status: Option<&DeploymentStatus>) -> DeploymentStatus {
    let mut status = status.cloned().unwrap_or_default();
    for count in [
        &mut status.replicas,
        &mut status.updated_replicas,
        &mut status.ready_replicas,
        &mut status.available_replicas,
        &mut status.unavailable_replicas,
    ] {
        count.get_or_insert(0);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::rolling::tests::{deployment, rs};
    use crate::pods::testing::at;

    fn with_deadline(mut d: Deployment, seconds: i32) -> Deployment {
        if let Some(spec) = d.spec.as_mut() {
            spec.progress_deadline_seconds = Some(seconds);
        }
        d.metadata.generation = Some(2);
        d
    }

    fn reason(status: &DeploymentStatus, type_: &str) -> Option<String> {
        condition(status, type_).and_then(|c| c.reason)
    }

    #[test]
    fn counts_come_from_the_replica_sets() {
        let d = deployment(4, "1", "1");
        let (old, new) = (rs("old", 0, 2, 2), rs("new", 1, 3, 1));
        let status = calculate(&d, &[&old, &new], Some(&new), at(0));
        assert_eq!(status.replicas, Some(5));
        assert_eq!(status.updated_replicas, Some(3));
        assert_eq!((status.ready_replicas, status.available_replicas), (Some(3), Some(3)));
        assert_eq!(status.unavailable_replicas, Some(2));
        assert_eq!(reason(&status, AVAILABLE).as_deref(), Some("MinimumReplicasAvailable"));
        let starving = calculate(&d, &[&rs("new", 1, 4, 2)], None, at(0));
        assert_eq!(reason(&starving, AVAILABLE).as_deref(), Some("MinimumReplicasUnavailable"));
    }

    #[test]
    fn a_same_reason_condition_is_kept_and_a_same_status_keeps_its_transition_time() {
        let mut status = DeploymentStatus::default();
        set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_CREATED, "a".into(), at(0)));
        set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_CREATED, "b".into(), at(5)));
        assert_eq!(condition(&status, PROGRESSING).and_then(|c| c.message).as_deref(), Some("a"));
        set_condition(&mut status, new_condition(PROGRESSING, "True", RS_UPDATED, "c".into(), at(9)));
        let c = condition(&status, PROGRESSING).unwrap_or_default();
        assert_eq!((c.last_transition_time, c.last_update_time), (Some(Time(at(0))), Some(Time(at(9)))));
    }

    #[test]
    fn a_rollout_progresses_completes_and_times_out() {
        let d = with_deadline(deployment(2, "1", "0"), 60);
        let (old, new) = (rs("web-old", 0, 2, 2), rs("web-new", 1, 1, 0));
        let (status, _) = rollout(&d, &[&old, &new], Some(&new), at(0));
        let progressing = condition(&status, PROGRESSING).unwrap_or_default();
        assert_eq!(progressing.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(progressing.message.as_deref(), Some("ReplicaSet \"web-new\" is progressing."));

        // No progress since: a requeue for the deadline, then a timeout.
        let mut stuck = d.clone();
        stuck.status = Some(status);
        let (same, requeue) = rollout(&stuck, &[&old, &new], Some(&new), at(10));
        assert_eq!(Some(&same), stuck.status.as_ref());
        assert_eq!(requeue, Some(Duration::from_secs(51)));
        let (late, _) = rollout(&stuck, &[&old, &new], Some(&new), at(61));
        assert_eq!(reason(&late, PROGRESSING).as_deref(), Some(TIMED_OUT));
        let message = condition(&late, PROGRESSING).and_then(|c| c.message);
        assert_eq!(message.as_deref(), Some("ReplicaSet \"web-new\" has timed out progressing."));

        let done = rs("web-new", 1, 2, 2);
        let (complete, requeue) = rollout(&stuck, &[&done], Some(&done), at(20));
        assert_eq!(reason(&complete, PROGRESSING).as_deref(), Some(NEW_RS_AVAILABLE));
        assert!(is_complete(&stuck, &complete));
        assert_eq!(requeue, None);
    }

    #[test]
    fn without_a_deadline_there_is_no_progressing_condition() {
        let mut d = deployment(1, "1", "0");
        if let Some(spec) = d.spec.as_mut() {
            spec.progress_deadline_seconds = Some(i32::MAX);
        }
        let new = rs("new", 0, 1, 1);
        let (status, requeue) = rollout(&d, &[&new], Some(&new), at(0));
        assert!(condition(&status, PROGRESSING).is_none());
        assert!(condition(&status, AVAILABLE).is_some());
        assert_eq!(requeue, None);
    }

    #[test]
    fn pausing_and_resuming_set_progressing_unknown() {
        let mut d = with_deadline(deployment(1, "1", "0"), 600);
        if let Some(spec) = d.spec.as_mut() {
            spec.paused = Some(true);
        }
        let paused = paused_transition(&d, at(0)).unwrap_or_default();
        assert_eq!(reason(&paused, PROGRESSING).as_deref(), Some(PAUSED));
        d.status = Some(paused);
        assert!(paused_transition(&d, at(1)).is_none(), "already says paused");
        if let Some(spec) = d.spec.as_mut() {
            spec.paused = Some(false);
        }
        let resumed = paused_transition(&d, at(2)).unwrap_or_default();
        assert_eq!(reason(&resumed, PROGRESSING).as_deref(), Some(RESUMED));
    }
}
