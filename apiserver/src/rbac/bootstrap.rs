//! Kubernetes' default ClusterRoles and ClusterRoleBindings (plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
//!
//! Rules are trimmed to the resources this apiserver serves (and their subresources); verbs, rule layout, names,
//! labels and annotations are as Kubernetes writes them, so tools that inspect or reconcile them see the usual
//! objects.

use serde_json::{Map, Value, json};

const CORE: &str = "";
const APPS: &str = "apps";
const BATCH: &str = "batch";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const EVENT_WRITE: &[&str] = &["create", "patch", "update"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn named_rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"apiGroups": groups, "resourceNames": names, "resources": resources, "verbs": verbs})
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

/// Metadata with the label and annotation Kubernetes puts on every bootstrap object; the annotation tells the
/// reconciler it may bring the object back in line on upgrade.
fn metadata(name: &str, aggregate_to: Option<&str>) -> Value {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/bootstrapping".to_owned(), json!("rbac-defaults"));
    if let Some(target) = aggregate_to {
        labels.insert(aggregate_label(target), json!("true"));
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    })
}

fn aggregate_label(target: &str) -> String {
    format!("rbac.authorization.k8s.io/aggregate-to-{target}")
}

/// A ClusterRole; `aggregate_to` labels it so that the named aggregated role picks its rules up.
fn cluster_role(name: &str, aggregate_to: Option<&str>, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, aggregate_to),
        "rules": rules
    })
}

/// A ClusterRole whose rules are gathered from the roles labelled `aggregate-to-<name>`.
fn aggregated_cluster_role(name: &str, aggregate_to: Option<&str>) -> Value {
    let mut selector = Map::new();
    selector.insert(aggregate_label(name), json!("true"));
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, aggregate_to),
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": selector}]},
        "rules": []
    })
}

/// A ClusterRoleBinding named after the ClusterRole it grants, as all default bindings are.
fn cluster_role_binding(name: &str, subjects: &[(&str, &str)]) -> Value {
    let subjects: Vec<Value> =
        subjects.iter().map(|(kind, subject)| json!({"apiGroup": RBAC, "kind": kind, "name": subject})).collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, None),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
        "subjects": subjects
    })
}

fn cluster_roles() -> Vec<Value> {
    vec![
        cluster_role("cluster-admin", None, vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])]),
        aggregated_cluster_role("admin", None),
        aggregated_cluster_role("edit", Some("admin")),
        aggregated_cluster_role("view", Some("edit")),
        cluster_role(
            "system:aggregate-to-admin",
            Some("admin"),
            vec![rule(READ_WRITE, &[RBAC], &["rolebindings", "roles"])],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            Some("edit"),
            vec![
                rule(
                    READ,
                    &[CORE],
                    &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
                ),
                rule(&["impersonate"], &[CORE], &["serviceaccounts"]),
                rule(WRITE, &[CORE], &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
                rule(&["create"], &[CORE], &["pods/eviction"]),
                rule(
                    WRITE,
                    &[CORE],
                    &["configmaps", "events", "secrets", "serviceaccounts", "services", "services/proxy"],
                ),
                rule(&["create"], &[CORE], &["serviceaccounts/token"]),
                rule(
                    WRITE,
                    &[APPS],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                ),
                rule(WRITE, &[BATCH], &["cronjobs", "jobs"]),
                rule(READ_WRITE, &[COORDINATION], &["leases"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            Some("view"),
            vec![
                rule(
                    READ,
                    &[CORE],
                    &["configmaps", "endpoints", "pods", "serviceaccounts", "services", "services/status"],
                ),
                rule(READ, &[CORE], &["bindings", "events", "namespaces/status", "pods/log", "pods/status"]),
                rule(READ, &[CORE], &["namespaces"]),
                rule(READ, &[DISCOVERY], &["endpointslices"]),
                rule(
                    READ,
                    &[APPS],
                    &[
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                ),
                rule(READ, &[BATCH], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            None,
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
            None,
            vec![rule(&["create"], &[AUTHORIZATION], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"])],
        ),
        cluster_role(
            "system:public-info-viewer",
            None,
            vec![url_rule(&["get"], &["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
        cluster_role(
            "system:node",
            None,
            vec![
                rule(READ, &[CORE], &["services"]),
                rule(&["create", "get", "list", "watch"], &[CORE], &["nodes"]),
                rule(&["patch", "update"], &[CORE], &["nodes/status"]),
                rule(&["patch", "update"], &[CORE], &["nodes"]),
                rule(EVENT_WRITE, &[CORE], &["events"]),
                rule(READ, &[CORE], &["pods"]),
                rule(&["create", "delete"], &[CORE], &["pods"]),
                rule(&["patch", "update"], &[CORE], &["pods/status"]),
                rule(&["create"], &[CORE], &["pods/eviction"]),
                rule(READ, &[CORE], &["configmaps", "secrets"]),
                rule(&["get"], &[CORE], &["endpoints"]),
                rule(&["create", "delete", "get", "patch", "update"], &[COORDINATION], &["leases"]),
                rule(&["create"], &[CORE], &["serviceaccounts/token"]),
            ],
        ),
        cluster_role(
            "system:kube-scheduler",
            None,
            vec![
                rule(EVENT_WRITE, &[CORE, EVENTS], &["events"]),
                rule(&["create"], &[COORDINATION], &["leases"]),
                named_rule(&["get", "update"], &[COORDINATION], &["leases"], &["kube-scheduler"]),
                rule(READ, &[CORE], &["nodes"]),
                rule(&["delete", "get", "list", "watch"], &[CORE], &["pods"]),
                rule(&["create"], &[CORE], &["bindings", "pods/binding"]),
                rule(&["patch", "update"], &[CORE], &["pods/status"]),
                rule(READ, &[CORE], &["services"]),
                rule(READ, &[APPS], &["replicasets"]),
                rule(READ, &[APPS], &["statefulsets"]),
                rule(READ, &[CORE], &["namespaces"]),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            None,
            vec![
                rule(EVENT_WRITE, &[CORE, EVENTS], &["events"]),
                rule(&["create"], &[COORDINATION], &["leases"]),
                named_rule(&["get", "update"], &[COORDINATION], &["leases"], &["kube-controller-manager"]),
                rule(&["create"], &[CORE], &["secrets", "serviceaccounts"]),
                rule(&["delete"], &[CORE], &["secrets"]),
                rule(&["get"], &[CORE], &["configmaps", "namespaces", "secrets", "serviceaccounts"]),
                rule(&["update"], &[CORE], &["secrets", "serviceaccounts"]),
                // The controllers watch everything they manage through shared informers.
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["create"], &[CORE], &["serviceaccounts/token"]),
                // capstan's controllers act as the controller-manager itself (Kubernetes'
                // --use-service-account-credentials=false), so its role carries their rules:
                // the replicaset, deployment and namespace controllers', and the garbage collector's.
                rule(READ_WRITE, &[CORE], &["pods"]),
                rule(READ_WRITE, &[APPS], &["deployments", "replicasets"]),
                rule(&["patch", "update"], &[APPS], &["deployments/status", "replicasets/status"]),
                rule(&["delete", "deletecollection", "get", "list", "patch", "update", "watch"], &["*"], &["*"]),
                rule(&["update"], &[CORE], &["namespaces/finalize", "namespaces/status"]),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            None,
            vec![
                rule(&["list", "watch"], &[CORE], &["endpoints", "services"]),
                rule(READ, &[CORE], &["nodes"]),
                rule(EVENT_WRITE, &[CORE, EVENTS], &["events"]),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
    ]
}

fn cluster_role_bindings() -> Vec<Value> {
    vec![
        cluster_role_binding("cluster-admin", &[("Group", "system:masters")]),
        cluster_role_binding("system:discovery", &[("Group", "system:authenticated")]),
        cluster_role_binding("system:basic-user", &[("Group", "system:authenticated")]),
        cluster_role_binding(
            "system:public-info-viewer",
            &[("Group", "system:authenticated"), ("Group", "system:unauthenticated")],
        ),
        cluster_role_binding("system:kube-scheduler", &[("User", "system:kube-scheduler")]),
        cluster_role_binding("system:kube-controller-manager", &[("User", "system:kube-controller-manager")]),
        // Kubernetes leaves this binding without subjects and authorizes kubelets with the Node authorizer, which
        // also limits each node to its own objects; binding the group is the simpler stand-in.
        cluster_role_binding("system:node", &[("Group", "system:nodes")]),
        cluster_role_binding("system:node-proxier", &[("User", "system:kube-proxy")]),
    ]
}

/// The default ClusterRoles followed by the default ClusterRoleBindings, ready to be stored at first start.
pub fn default_objects() -> Vec<Value> {
    let mut objects = cluster_roles();
    objects.extend(cluster_role_bindings());
    objects
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_object_is_marked_as_a_bootstrap_default() {
        for object in default_objects() {
            assert_eq!(object["apiVersion"], "rbac.authorization.k8s.io/v1");
            assert_eq!(object["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults", "{object}");
            assert_eq!(
                object["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true",
                "{object}"
            );
        }
    }

    #[test]
    fn names_are_unique_and_bindings_reference_existing_roles() {
        let objects = default_objects();
        let names = |kind: &str| -> Vec<String> {
            objects
                .iter()
                .filter(|o| o["kind"] == kind)
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        };
        let roles = names("ClusterRole");
        let bindings = names("ClusterRoleBinding");
        assert_eq!(roles.iter().collect::<BTreeSet<_>>().len(), roles.len());
        assert_eq!(bindings.iter().collect::<BTreeSet<_>>().len(), bindings.len());
        for binding in objects.iter().filter(|o| o["kind"] == "ClusterRoleBinding") {
            let role = binding["roleRef"]["name"].as_str().unwrap_or_default();
            assert!(roles.iter().any(|r| r == role), "{role} is not a default ClusterRole");
        }
        for expected in ["cluster-admin", "admin", "edit", "view", "system:discovery", "system:public-info-viewer"] {
            assert!(roles.iter().any(|r| r == expected), "{expected} missing");
        }
    }

    #[test]
    fn aggregation_labels_chain_view_into_edit_into_admin() {
        let objects = default_objects();
        let role = |name: &str| objects.iter().find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == name);
        let label = |name: &str, target: &str| {
            role(name).map(|r| r["metadata"]["labels"][aggregate_label(target)].clone()).unwrap_or_default()
        };
        assert_eq!(label("view", "edit"), "true");
        assert_eq!(label("edit", "admin"), "true");
        assert_eq!(label("system:aggregate-to-view", "view"), "true");
        let selector = role("admin").map(|r| r["aggregationRule"]["clusterRoleSelectors"][0].clone());
        assert_eq!(selector, Some(json!({"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}})));
    }
}
