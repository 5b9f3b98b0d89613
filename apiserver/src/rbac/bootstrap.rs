//! Kubernetes' default ClusterRoles and ClusterRoleBindings (its
//! bootstrap policy), trimmed to the resources this server has.

use serde_json::{Value, json};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

fn meta(name: &str, extra_labels: Value) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let (Some(map), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
        map.extend(extra.clone());
    }
    json!({"name": name, "labels": labels, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, labels),
        "rules": rules})
}

/// A ClusterRole made of every ClusterRole labelled `label=true`.
fn aggregate(name: &str, label: &str, labels: Value) -> Value {
    let mut role = cluster_role(name, labels, Vec::new());
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    role
}

fn binding(name: &str, role: &str, kind: &str, subject: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(name, json!({})),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}]})
}

pub fn default_objects() -> Vec<Value> {
    let workloads = [
        "deployments",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "daemonsets",
        "statefulsets",
        "statefulsets/scale",
    ];
    let core_read = [
        "pods",
        "pods/log",
        "pods/status",
        "services",
        "services/status",
        "endpoints",
        "configmaps",
        "serviceaccounts",
        "events",
        "persistentvolumeclaims",
        "replicationcontrollers",
    ];
    let view = vec![
        rule(READ, &[""], &core_read),
        rule(READ, &[""], &["namespaces", "namespaces/status"]),
        rule(READ, &["apps"], &workloads),
        rule(READ, &["batch"], &["jobs", "jobs/status", "cronjobs", "cronjobs/status"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(READ, &["coordination.k8s.io"], &["leases"]),
    ];
    let edit = vec![
        rule(
            WRITE,
            &[""],
            &["pods", "pods/eviction", "services", "endpoints", "configmaps", "secrets", "serviceaccounts", "events"],
        ),
        rule(READ, &[""], &["secrets"]),
        rule(WRITE, &["apps"], &workloads),
        rule(WRITE, &["batch"], &["jobs", "cronjobs"]),
        rule(WRITE, &["discovery.k8s.io"], &["endpointslices"]),
        rule(WRITE, &["coordination.k8s.io"], &["leases"]),
    ];
    let admin = vec![
        rule(ALL, &["rbac.authorization.k8s.io"], &["roles", "rolebindings"]),
        rule(&["create"], &["authorization.k8s.io"], &["localsubjectaccessreviews"]),
    ];
    let aggregate_label = |to: &str| json!({format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"});
    vec![
        cluster_role("cluster-admin", json!({}), vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])]),
        aggregate("admin", "rbac.authorization.k8s.io/aggregate-to-admin", json!({})),
        aggregate("edit", "rbac.authorization.k8s.io/aggregate-to-edit", aggregate_label("admin")),
        aggregate("view", "rbac.authorization.k8s.io/aggregate-to-view", aggregate_label("edit")),
        cluster_role("system:aggregate-to-admin", aggregate_label("admin"), admin),
        cluster_role("system:aggregate-to-edit", aggregate_label("edit"), edit),
        cluster_role("system:aggregate-to-view", aggregate_label("view"), view),
        cluster_role(
            "system:discovery",
            json!({}),
            vec![url_rule(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            vec![rule(
                &["create"],
                &["authorization.k8s.io"],
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            json!({}),
            vec![url_rule(&["get"], &["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
        cluster_role(
            "system:kube-scheduler",
            json!({}),
            vec![
                rule(&["create", "patch", "update"], &["", "events.k8s.io"], &["events"]),
                rule(&["create"], &["coordination.k8s.io"], &["leases"]),
                rule(&["get", "update"], &["coordination.k8s.io"], &["leases"]),
                rule(READ, &[""], &["nodes", "namespaces", "services", "persistentvolumeclaims", "persistentvolumes"]),
                rule(&["delete", "get", "list", "watch"], &[""], &["pods"]),
                rule(&["create"], &[""], &["bindings", "pods/binding"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(READ, &["apps"], &["replicasets", "statefulsets"]),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            json!({}),
            vec![
                rule(&["*"], &["", "apps", "batch", "discovery.k8s.io", "coordination.k8s.io"], &["*"]),
                rule(&["create"], &["authorization.k8s.io"], &["selfsubjectaccessreviews"]),
            ],
        ),
        // Kubernetes authorizes nodes with its Node authorizer; a binding of the
        // nodes group stands in for it.
        cluster_role(
            "system:node",
            json!({}),
            vec![
                rule(READ, &[""], &["pods", "services", "endpoints", "nodes", "configmaps", "secrets"]),
                rule(
                    &["create", "get", "list", "watch", "update", "patch", "delete"],
                    &[""],
                    &["nodes", "nodes/status"],
                ),
                rule(&["update", "patch"], &[""], &["pods/status"]),
                rule(&["create", "delete"], &[""], &["pods"]),
                rule(&["create", "patch", "update"], &["", "events.k8s.io"], &["events"]),
                rule(&["create", "delete", "get", "patch", "update"], &["coordination.k8s.io"], &["leases"]),
            ],
        ),
        binding("cluster-admin", "cluster-admin", "Group", "system:masters"),
        binding("system:discovery", "system:discovery", "Group", "system:authenticated"),
        binding("system:basic-user", "system:basic-user", "Group", "system:authenticated"),
        binding("system:public-info-viewer", "system:public-info-viewer", "Group", "system:authenticated"),
        binding(
            "system:public-info-viewer-unauthenticated",
            "system:public-info-viewer",
            "Group",
            "system:unauthenticated",
        ),
        binding("system:kube-scheduler", "system:kube-scheduler", "User", "system:kube-scheduler"),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            "User",
            "system:kube-controller-manager",
        ),
        binding("system:node", "system:node", "Group", "system:nodes"),
    ]
}
