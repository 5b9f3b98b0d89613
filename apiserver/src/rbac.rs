//! RBAC: whether a user may do something, from the Roles, ClusterRoles and
//! their bindings (Kubernetes' rbac authorizer). Members of
//! `system:masters` are allowed everything before RBAC is consulted, as
//! Kubernetes' privileged-group authorizer does.

pub mod bootstrap;

use serde_json::Value;

use crate::selectors::LabelSelector;

pub const MASTERS: &str = "system:masters";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// What is being asked: a resource request or a non-resource path.
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    /// Empty for cluster-scoped requests.
    pub namespace: &'a str,
    pub name: &'a str,
    pub path: &'a str,
    pub resource_request: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { reason: String },
    Deny { reason: String },
}

/// One binding's grant: the rules of its role, where they apply, and who
/// the binding names.
struct Grant {
    /// Empty: cluster-wide (a ClusterRoleBinding).
    namespace: String,
    subjects: Vec<Value>,
    rules: Vec<Value>,
    describe: String,
}

/// The RBAC objects at one moment, indexed for authorizing.
pub struct Policy {
    grants: Vec<Grant>,
}

impl Policy {
    pub fn new(
        cluster_roles: Vec<Value>,
        roles: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
        role_bindings: Vec<Value>,
    ) -> Policy {
        let cluster_rules = |name: &str| -> Option<Vec<Value>> {
            let role = cluster_roles.iter().find(|r| r["metadata"]["name"] == name)?;
            Some(aggregated_rules(role, &cluster_roles))
        };
        let mut grants = Vec::new();
        for binding in cluster_role_bindings.iter().chain(&role_bindings) {
            let namespace = binding["metadata"]["namespace"].as_str().unwrap_or("").to_string();
            let role_ref = &binding["roleRef"];
            let role_name = role_ref["name"].as_str().unwrap_or("");
            let rules = match role_ref["kind"].as_str() {
                Some("ClusterRole") => cluster_rules(role_name),
                Some("Role") if !namespace.is_empty() => roles
                    .iter()
                    .find(|r| r["metadata"]["name"] == role_name && r["metadata"]["namespace"] == namespace.as_str())
                    .map(rules_of),
                _ => None,
            };
            let Some(rules) = rules else { continue };
            let kind = if namespace.is_empty() { "ClusterRoleBinding" } else { "RoleBinding" };
            let describe = format!(
                "{kind} \"{}\" of {} \"{role_name}\"",
                binding["metadata"]["name"].as_str().unwrap_or(""),
                role_ref["kind"].as_str().unwrap_or("")
            );
            let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
            grants.push(Grant { namespace, subjects, rules, describe });
        }
        Policy { grants }
    }

    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes<'_>) -> Decision {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Decision::Allow { reason: format!("{MASTERS} may do anything") };
        }
        for grant in &self.grants {
            // A RoleBinding grants only inside its namespace.
            if !grant.namespace.is_empty() && (attrs.namespace != grant.namespace || !attrs.resource_request) {
                continue;
            }
            let Some(subject) = grant.subjects.iter().find(|s| names_user(s, user)) else { continue };
            if grant.rules.iter().any(|rule| allows(rule, attrs)) {
                return Decision::Allow {
                    reason: format!(
                        "RBAC: allowed by {} to {} \"{}\"",
                        grant.describe,
                        subject["kind"].as_str().unwrap_or(""),
                        subject["name"].as_str().unwrap_or("")
                    ),
                };
            }
        }
        Decision::Deny { reason: String::new() }
    }
}

fn rules_of(role: &Value) -> Vec<Value> {
    role["rules"].as_array().cloned().unwrap_or_default()
}

/// A ClusterRole's rules, plus, with an aggregationRule, the rules of every
/// ClusterRole its selectors match.
fn aggregated_rules(role: &Value, all: &[Value]) -> Vec<Value> {
    let mut rules = rules_of(role);
    let selectors = role["aggregationRule"]["clusterRoleSelectors"].as_array().cloned().unwrap_or_default();
    for selector in selectors {
        let Ok(selector) = LabelSelector::from_object(&selector) else { continue };
        for other in all {
            let labels = other["metadata"]["labels"].as_object().cloned().unwrap_or_default();
            if other["metadata"]["name"] != role["metadata"]["name"] && selector.matches(&labels) {
                rules.extend(rules_of(other));
            }
        }
    }
    rules
}

fn names_user(subject: &Value, user: &UserInfo) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str() {
        Some("User") => name == user.name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let namespace = subject["namespace"].as_str().unwrap_or("");
            user.name == format!("system:serviceaccount:{namespace}:{name}")
        }
        _ => false,
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn allows(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let verbs = strings(&rule["verbs"]);
    if !verbs.iter().any(|v| *v == "*" || *v == attrs.verb) {
        return false;
    }
    if !attrs.resource_request {
        return strings(&rule["nonResourceURLs"]).iter().any(|url| match url.strip_suffix('*') {
            Some(prefix) => attrs.path.starts_with(prefix),
            None => *url == attrs.path,
        });
    }
    let groups = strings(&rule["apiGroups"]);
    if !groups.iter().any(|g| *g == "*" || *g == attrs.api_group) {
        return false;
    }
    let wanted = if attrs.subresource.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resources = strings(&rule["resources"]);
    let resource_ok = resources.iter().any(|r| {
        *r == "*" || *r == wanted || (!attrs.subresource.is_empty() && *r == format!("*/{}", attrs.subresource))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(&rule["resourceNames"]);
    names.is_empty() || names.contains(&attrs.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo { name: name.into(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    fn request<'a>(verb: &'a str, group: &'a str, resource: &'a str, namespace: &'a str) -> Attributes<'a> {
        Attributes {
            verb,
            api_group: group,
            resource,
            subresource: "",
            namespace,
            name: "",
            path: "",
            resource_request: true,
        }
    }

    fn defaults() -> Policy {
        let objects = bootstrap::default_objects();
        let of = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).cloned().collect::<Vec<_>>();
        Policy::new(of("ClusterRole"), Vec::new(), of("ClusterRoleBinding"), Vec::new())
    }

    fn allowed(decision: Decision) -> bool {
        matches!(decision, Decision::Allow { .. })
    }

    #[test]
    fn masters_may_do_anything_and_strangers_nothing() {
        let policy = defaults();
        assert!(allowed(policy.authorize(&user("root", &[MASTERS]), &request("delete", "", "nodes", ""))));
        let stranger = user("eve", &["system:authenticated"]);
        assert!(!allowed(policy.authorize(&stranger, &request("list", "", "pods", "default"))));
        let healthz = Attributes { path: "/healthz", resource_request: false, ..request("get", "", "", "") };
        assert!(allowed(policy.authorize(&user("system:anonymous", &["system:unauthenticated"]), &healthz)));
        let secret_path = Attributes { path: "/metrics", resource_request: false, ..request("get", "", "", "") };
        assert!(!allowed(policy.authorize(&user("system:anonymous", &["system:unauthenticated"]), &secret_path)));
    }

    #[test]
    fn role_bindings_to_aggregated_cluster_roles_stay_in_their_namespace() {
        let objects = bootstrap::default_objects();
        let of = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).cloned().collect::<Vec<_>>();
        let binding = json!({"metadata": {"name": "b", "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "viewer"}]});
        let policy = Policy::new(of("ClusterRole"), Vec::new(), of("ClusterRoleBinding"), vec![binding]);
        let viewer = user("viewer", &["system:authenticated"]);
        assert!(allowed(policy.authorize(&viewer, &request("list", "", "pods", "team"))));
        assert!(allowed(policy.authorize(&viewer, &request("get", "apps", "deployments", "team"))));
        assert!(!allowed(policy.authorize(&viewer, &request("create", "", "pods", "team"))));
        assert!(!allowed(policy.authorize(&viewer, &request("list", "", "pods", "other"))));
        assert!(
            !allowed(policy.authorize(&viewer, &request("get", "", "secrets", "team"))),
            "view cannot read secrets"
        );
    }

    #[test]
    fn roles_resource_names_subresources_and_service_accounts() {
        let role = json!({"metadata": {"name": "r", "namespace": "ns"}, "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}]});
        let binding = json!({"metadata": {"name": "b", "namespace": "ns"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "ns"}]});
        let policy = Policy::new(Vec::new(), vec![role], Vec::new(), vec![binding]);
        let bot = user("system:serviceaccount:ns:bot", &[]);
        let named = |name| Attributes { name, ..request("get", "", "configmaps", "ns") };
        assert!(allowed(policy.authorize(&bot, &named("one"))));
        assert!(!allowed(policy.authorize(&bot, &named("two"))));
        let log = Attributes { subresource: "log", ..request("get", "", "pods", "ns") };
        assert!(allowed(policy.authorize(&bot, &log)));
        assert!(!allowed(policy.authorize(&bot, &request("get", "", "pods", "ns"))));
    }
}
