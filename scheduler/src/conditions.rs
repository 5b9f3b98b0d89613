//! The pod's PodScheduled condition, as a strategic merge patch of
//! `pods/<name>/status` (merge key `type`), written only when it changes.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

pub const POD_SCHEDULED: &str = "PodScheduled";
/// The reason kube-scheduler gives when no node fits.
pub const UNSCHEDULABLE: &str = "Unschedulable";
/// The reason when the attempt failed for another cause (binding).
pub const SCHEDULER_ERROR: &str = "SchedulerError";

/// The patch that sets PodScheduled to `status` with `reason` and
/// `message`, or `None` when the pod already says exactly that. The
/// transition time moves only when the status flips.
pub fn pod_scheduled_patch(
    pod: &Pod,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: Timestamp,
) -> Option<Value> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == POD_SCHEDULED));
    if let Some(c) = current
        && c.status == status
        && c.reason.as_deref() == reason
        && c.message.as_deref() == message
    {
        return None;
    }
    let since = match current {
        Some(c) if c.status == status => c.last_transition_time.clone().unwrap_or(Time(now)),
        _ => Time(now),
    };
    Some(json!({"status": {"conditions": [{
        "type": POD_SCHEDULED,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": since,
    }]}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn pod_with(condition: Option<PodCondition>) -> Pod {
        Pod {
            status: Some(PodStatus { conditions: condition.map(|c| vec![c]), ..Default::default() }),
            ..Default::default()
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_new_condition_starts_now() {
        let patch = pod_scheduled_patch(&pod_with(None), "False", Some(UNSCHEDULABLE), Some("0/1 nodes"), at(100));
        let condition = patch.as_ref().map(|p| p["status"]["conditions"][0].clone()).unwrap_or_default();
        assert_eq!(condition["type"], "PodScheduled");
        assert_eq!(condition["status"], "False");
        assert_eq!(condition["reason"], "Unschedulable");
        assert_eq!(condition["message"], "0/1 nodes");
        assert_eq!(condition["lastTransitionTime"], json!(Time(at(100))));
    }

    #[test]
    fn the_same_condition_is_not_written_again() {
        let existing = PodCondition {
            type_: POD_SCHEDULED.into(),
            status: "False".into(),
            reason: Some(UNSCHEDULABLE.into()),
            message: Some("0/1 nodes".into()),
            last_transition_time: Some(Time(at(100))),
            ..Default::default()
        };
        let pod = pod_with(Some(existing));
        assert_eq!(pod_scheduled_patch(&pod, "False", Some(UNSCHEDULABLE), Some("0/1 nodes"), at(200)), None);
        let new_message = pod_scheduled_patch(&pod, "False", Some(UNSCHEDULABLE), Some("0/2 nodes"), at(200));
        let condition = new_message.map(|p| p["status"]["conditions"][0].clone()).unwrap_or_default();
        assert_eq!(condition["lastTransitionTime"], json!(Time(at(100))), "same status: the transition time stays");
        let scheduled = pod_scheduled_patch(&pod, "True", None, None, at(300));
        let condition = scheduled.map(|p| p["status"]["conditions"][0].clone()).unwrap_or_default();
        assert_eq!(condition["lastTransitionTime"], json!(Time(at(300))));
        assert_eq!(condition["reason"], Value::Null, "null removes the old reason");
    }
}
