//! apps/v1 workloads.

use std::time::SystemTime;

use serde_json::Value;

use super::{
    AGE, CONTAINERS, Column, IMAGES, NAME, age, containers_and_images, format_labels, format_selector, int_of, integer,
    name, selector_string, text, wide,
};

/// `spec.replicas`, which apps/v1 defaulting sets to 1 when omitted.
fn desired_replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1)
}

pub(super) static REPLICASET_COLUMNS: [Column; 8] = [
    NAME,
    integer("Desired", "Replicas is the number of desired pods."),
    integer("Current", "Replicas is the most recently observed number of replicas."),
    integer("Ready", "The number of ready replicas for this replica set."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "Selector is a label query over pods that should match the replica count."),
];

pub(super) fn replicaset_cells(set: &Value, now: SystemTime) -> Vec<Value> {
    let status = &set["status"];
    let [containers, images] = containers_and_images(&set["spec"]["template"]);
    vec![
        name(set),
        desired_replicas(set).into(),
        int_of(&status["replicas"]).into(),
        int_of(&status["readyReplicas"]).into(),
        age(set, now),
        containers,
        images,
        format_selector(&set["spec"]["selector"]).into(),
    ]
}

pub(super) static DEPLOYMENT_COLUMNS: [Column; 8] = [
    NAME,
    text("Ready", "Number of the pod with ready state"),
    text(
        "Up-to-date",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    text(
        "Available",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "Label selector for pods."),
];

pub(super) fn deployment_cells(deployment: &Value, now: SystemTime) -> Vec<Value> {
    let status = &deployment["status"];
    let [containers, images] = containers_and_images(&deployment["spec"]["template"]);
    // Unlike the other workloads, Kubernetes prints this selector raw: empty rather than "<none>".
    let selector = selector_string(&deployment["spec"]["selector"]).unwrap_or_else(|| "<invalid>".into());
    vec![
        name(deployment),
        format!("{}/{}", int_of(&status["readyReplicas"]), desired_replicas(deployment)).into(),
        int_of(&status["updatedReplicas"]).into(),
        int_of(&status["availableReplicas"]).into(),
        age(deployment, now),
        containers,
        images,
        selector.into(),
    ]
}

pub(super) static DAEMONSET_COLUMNS: [Column; 11] = [
    NAME,
    integer("Desired", "The total number of nodes that should be running the daemon pod."),
    integer("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to."),
    integer("Ready", "The number of nodes that should be running the daemon pod and have it running and ready."),
    integer("Up-to-date", "The total number of nodes that are running updated daemon pod."),
    integer("Available", "The number of nodes that should be running the daemon pod and have it available."),
    text("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "A label query over pods that are managed by the daemon set."),
];

pub(super) fn daemonset_cells(set: &Value, now: SystemTime) -> Vec<Value> {
    let status = &set["status"];
    let template = &set["spec"]["template"];
    let [containers, images] = containers_and_images(template);
    vec![
        name(set),
        int_of(&status["desiredNumberScheduled"]).into(),
        int_of(&status["currentNumberScheduled"]).into(),
        int_of(&status["numberReady"]).into(),
        int_of(&status["updatedNumberScheduled"]).into(),
        int_of(&status["numberAvailable"]).into(),
        format_labels(&template["spec"]["nodeSelector"]).into(),
        age(set, now),
        containers,
        images,
        format_selector(&set["spec"]["selector"]).into(),
    ]
}

pub(super) static STATEFULSET_COLUMNS: [Column; 5] =
    [NAME, text("Ready", "Number of the pod with ready state"), AGE, CONTAINERS, IMAGES];

pub(super) fn statefulset_cells(set: &Value, now: SystemTime) -> Vec<Value> {
    let [containers, images] = containers_and_images(&set["spec"]["template"]);
    let ready = format!("{}/{}", int_of(&set["status"]["readyReplicas"]), desired_replicas(set));
    vec![name(set), ready.into(), age(set, now), containers, images]
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluent-bit:3.0"}
        ]}})
    }

    #[test]
    fn deployment_rolling_out() {
        let deployment = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-04-24T12:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}
        });
        assert_eq!(
            deployment_cells(&deployment, at("2024-05-01T12:00:00Z")),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("7d"),
                json!("web,log"),
                json!("nginx:1.27,fluent-bit:3.0"),
                json!("app=web")
            ]
        );
        let empty = deployment_cells(&json!({"spec": {"selector": {}}}), at("2024-05-01T12:00:00Z"));
        assert_eq!((&empty[1], &empty[7]), (&json!("0/1"), &json!("")));
    }

    #[test]
    fn replica_and_daemon_sets() {
        let now = at("2024-05-01T12:00:00Z");
        let rs = json!({
            "metadata": {"name": "web-7d4b9c", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}},
                     "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2}
        });
        assert_eq!(replicaset_cells(&rs, now)[1..5], [json!(3), json!(3), json!(2), json!("60m")]);
        assert_eq!(replicaset_cells(&rs, now)[7], json!("app=web,pod-template-hash=7d4b9c"));

        let ds = json!({
            "metadata": {"name": "kube-proxy"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "kube-proxy", "image": "kube-proxy:v1.33.1"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 3,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        let cells = daemonset_cells(&ds, now);
        assert_eq!(cells[1..7], [json!(3), json!(3), json!(3), json!(3), json!(2), json!("kubernetes.io/os=linux")]);
        assert_eq!(cells[8..], [json!("kube-proxy"), json!("kube-proxy:v1.33.1"), json!("k8s-app=kube-proxy")]);
    }

    #[test]
    fn statefulset() {
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template()},
                         "status": {"readyReplicas": 1}});
        assert_eq!(
            statefulset_cells(&sts, at("2024-05-01T12:00:00Z"))[..3],
            [json!("db"), json!("1/3"), json!("<unknown>")]
        );
    }
}
