//! A ReplicaSet's status from the pods it owns (`calculateStatus`), and the
//! pods it creates from its template.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use crate::pods;

/// The status for `rs` owning the active pods `owned`. `create_error` is the
/// failure of the last attempt to create pods, reported as ReplicaFailure.
pub fn calculate(rs: &ReplicaSet, owned: &[&Pod], create_error: Option<&str>, now: Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let template_labels = spec.and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()?.labels.as_ref());
    let min_ready_seconds = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let count = |f: &dyn Fn(&Pod) -> bool| owned.iter().filter(|p| f(p)).count() as i32;
    let fully_labeled = count(&|p: &Pod| {
        let labels = p.metadata.labels.as_ref();
        template_labels.into_iter().flatten().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    });
    let mut conditions: Vec<ReplicaSetCondition> =
        rs.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let failure = conditions.iter().position(|c| c.type_ == "ReplicaFailure");
    match (create_error, failure) {
        (Some(message), None) => conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some(message.to_string()),
            last_transition_time: Some(Time(now)),
        }),
        (None, Some(i)) => {
            conditions.remove(i);
        }
        _ => {}
    }
    ReplicaSetStatus {
        replicas: owned.len() as i32,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(count(&pods::is_ready)),
        available_replicas: Some(count(&|p: &Pod| pods::is_available(p, min_ready_seconds, now))),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: rs.status.as_ref().and_then(|s| s.terminating_replicas),
    }
}

/// `status` with absent counts as zero, so a stored status (where Go's
/// omitempty dropped zeros) compares equal to a calculated one.
pub fn normalized(status: Option<&ReplicaSetStatus>) -> ReplicaSetStatus {
    let mut status = status.cloned().unwrap_or_default();
    for count in [&mut status.fully_labeled_replicas, &mut status.ready_replicas, &mut status.available_replicas] {
        count.get_or_insert(0);
    }
    status
}

/// A new pod from `template` (`GetPodFromTemplate`), named `<prefix>-xxxxx` by the apiserver.
pub fn pod_from_template(template: &PodTemplateSpec, prefix: &str, namespace: &str, owner: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::apps::v1::ReplicaSetSpec;

    use super::*;
    use crate::pods::testing::{at, pod};

    fn labels(app: &str) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([("app".to_string(), app.to_string())]))
    }

    fn rs(min_ready_seconds: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta { name: Some("web".into()), generation: Some(3), ..ObjectMeta::default() },
            spec: Some(ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: Some(min_ready_seconds),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: labels("web"), ..ObjectMeta::default() }),
                    spec: None,
                }),
                ..ReplicaSetSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn counts_labels_readiness_and_availability() {
        let mut a = pod("a", "Running", Some(0));
        a.metadata.labels = labels("web");
        let b = pod("b", "Running", Some(8));
        let c = pod("c", "Pending", None);
        let status = calculate(&rs(5), &[&a, &b, &c], None, at(10));
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(1));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1), "b has been ready for 2s of 5");
        assert_eq!(status.observed_generation, Some(3));
        assert!(status.conditions.is_none());
    }

    #[test]
    fn a_create_failure_sets_and_clears_replica_failure() {
        let mut failing = rs(0);
        failing.status = Some(calculate(&failing, &[], Some("quota"), at(0)));
        let condition = failing.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.first());
        assert_eq!(condition.and_then(|c| c.reason.as_deref()), Some("FailedCreate"));
        assert!(calculate(&failing, &[], None, at(1)).conditions.is_none());
    }

    #[test]
    fn pods_carry_the_template_and_the_controller_ref() {
        let owner = OwnerReference { uid: "u".into(), controller: Some(true), ..OwnerReference::default() };
        let template = rs(0).spec.and_then(|s| s.template).unwrap_or_default();
        let p = pod_from_template(&template, "web", "ns", owner);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.metadata.labels, labels("web"));
        assert_eq!(p.metadata.owner_references.map(|r| r[0].uid.clone()).as_deref(), Some("u"));
    }
}
