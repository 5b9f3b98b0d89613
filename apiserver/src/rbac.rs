//! RBAC authorization over stored `rbac.authorization.k8s.io/v1` objects, with Kubernetes' matching rules,
//! binding resolution order and decision reasons (plugin/pkg/auth/authorizer/rbac and
//! pkg/registry/rbac/validation).

pub mod bootstrap;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::selectors::{LabelSelector, aggregate_errors};

/// Members of this group are allowed everything.
const PRIVILEGED_GROUP: &str = "system:masters";

/// The authenticated identity a request is authorized for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    /// All groups, including the ones the authenticator adds such as `system:authenticated`.
    pub groups: Vec<String>,
}

/// What a request wants to do, as the request-info filter derives it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    /// "" for cluster-wide requests.
    pub namespace: &'a str,
    pub name: &'a str,
    /// The URL path, consulted for non-resource requests.
    pub path: &'a str,
    pub resource_request: bool,
}

/// The outcome of an authorization check; the reason is what SubjectAccessReview and forbidden errors show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { reason: String },
    Deny { reason: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// A PolicyRule; every list is matched literally, with `*` as the wildcard Kubernetes defines for each.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

fn strings(object: &Value, key: &str) -> Vec<String> {
    match object.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn string<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn rules_of(object: &Value) -> Vec<Rule> {
    match object.get("rules") {
        Some(Value::Array(rules)) => rules.iter().filter(|r| r.is_object()).map(Rule::from_value).collect(),
        _ => Vec::new(),
    }
}

impl Rule {
    fn from_value(rule: &Value) -> Self {
        Self {
            verbs: strings(rule, "verbs"),
            api_groups: strings(rule, "apiGroups"),
            resources: strings(rule, "resources"),
            resource_names: strings(rule, "resourceNames"),
            non_resource_urls: strings(rule, "nonResourceURLs"),
        }
    }

    /// The rule as PolicyRule JSON, leaving out empty optional lists like the Go type's omitempty tags.
    fn to_value(&self) -> Value {
        let mut rule = Map::new();
        rule.insert("verbs".to_owned(), self.verbs.clone().into());
        for (key, list) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() {
                rule.insert(key.to_owned(), list.clone().into());
            }
        }
        Value::Object(rule)
    }

    fn allows(&self, attrs: &Attributes) -> bool {
        let verb_matches = self.verbs.iter().any(|v| v == "*" || v == attrs.verb);
        if !attrs.resource_request {
            return verb_matches && self.non_resource_url_matches(attrs.path);
        }
        verb_matches
            && self.api_groups.iter().any(|g| g == "*" || g == attrs.api_group)
            && self.resource_matches(attrs.resource, attrs.subresource)
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == attrs.name))
    }

    /// `resource/subresource` must be listed, or `*`, or `*/subresource`.
    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        let combined = if subresource.is_empty() { resource.to_owned() } else { format!("{resource}/{subresource}") };
        self.resources.iter().any(|r| {
            r == "*" || *r == combined || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
    }

    /// A URL matches exactly, or by prefix when the rule ends in `*`.
    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls
            .iter()
            .any(|u| u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    /// Whether the subject names the user; a service account without a namespace takes the binding's.
    fn applies_to(&self, user: &UserInfo, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() { binding_namespace } else { &self.namespace };
                !namespace.is_empty()
                    && user
                        .name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.strip_prefix(namespace))
                        .and_then(|rest| rest.strip_prefix(':'))
                        == Some(self.name.as_str())
            }
            _ => false,
        }
    }

    fn describe(&self, binding_namespace: &str) -> String {
        if self.kind == "ServiceAccount" {
            let namespace = if self.namespace.is_empty() { binding_namespace } else { &self.namespace };
            // Kubernetes prints name/namespace, in that order.
            format!("{} {:?}", self.kind, format!("{}/{namespace}", self.name))
        } else {
            format!("{} {:?}", self.kind, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    name: String,
    /// "" for ClusterRoleBindings.
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_value(binding: &Value) -> Option<Self> {
        let name = string(binding, "/metadata/name");
        let role_kind = string(binding, "/roleRef/kind");
        let role_name = string(binding, "/roleRef/name");
        if name.is_empty() || role_kind.is_empty() || role_name.is_empty() {
            return None;
        }
        let subjects = match binding.get("subjects") {
            Some(Value::Array(subjects)) => subjects
                .iter()
                .map(|s| Subject {
                    kind: string(s, "/kind").to_owned(),
                    name: string(s, "/name").to_owned(),
                    namespace: string(s, "/namespace").to_owned(),
                })
                .filter(|s| !s.kind.is_empty() && !s.name.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        Some(Self {
            name: name.to_owned(),
            namespace: string(binding, "/metadata/namespace").to_owned(),
            role_kind: role_kind.to_owned(),
            role_name: role_name.to_owned(),
            subjects,
        })
    }

    /// The `RBAC: allowed by ...` source text for a subject of this binding.
    fn describe(&self, subject: &Subject) -> String {
        let subject = subject.describe(&self.namespace);
        if self.namespace.is_empty() {
            format!("ClusterRoleBinding {:?} of {} {:?} to {subject}", self.name, self.role_kind, self.role_name)
        } else {
            let name = format!("{}/{}", self.name, self.namespace);
            format!("RoleBinding {name:?} of {} {:?} to {subject}", self.role_kind, self.role_name)
        }
    }
}

/// A ClusterRole as read, before its aggregation rule (if any) is applied.
struct ClusterRoleSource {
    labels: Map<String, Value>,
    rules: Vec<Rule>,
    /// `aggregationRule.clusterRoleSelectors`; `None` when the role is not aggregated.
    selectors: Option<Vec<LabelSelector>>,
}

/// The RBAC objects the authorizer consults, resolved for lookups.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Effective rules by name, aggregation already applied.
    cluster_roles: BTreeMap<String, Vec<Rule>>,
    /// Rules by (namespace, name).
    roles: BTreeMap<(String, String), Vec<Rule>>,
    cluster_role_bindings: Vec<Binding>,
    /// RoleBindings by namespace.
    role_bindings: BTreeMap<String, Vec<Binding>>,
}

impl Policy {
    /// Builds the policy from objects as stored; objects without the fields RBAC needs are skipped.
    pub fn new(
        cluster_roles: Vec<Value>,
        roles: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
        role_bindings: Vec<Value>,
    ) -> Self {
        let mut sources = BTreeMap::new();
        for role in &cluster_roles {
            let name = string(role, "/metadata/name");
            if name.is_empty() {
                continue;
            }
            let labels = match role.pointer("/metadata/labels") {
                Some(Value::Object(labels)) => labels.clone(),
                _ => Map::new(),
            };
            let selectors = role.get("aggregationRule").filter(|r| r.is_object()).map(|rule| {
                match rule.get("clusterRoleSelectors") {
                    // A selector that does not convert contributes nothing, as the aggregation controller skips it.
                    Some(Value::Array(selectors)) => {
                        selectors.iter().filter_map(|s| LabelSelector::from_object(s).ok()).collect()
                    }
                    _ => Vec::new(),
                }
            });
            sources.insert(name.to_owned(), ClusterRoleSource { labels, rules: rules_of(role), selectors });
        }

        let mut policy = Self { cluster_roles: aggregate(&sources), ..Self::default() };
        for role in &roles {
            let (namespace, name) = (string(role, "/metadata/namespace"), string(role, "/metadata/name"));
            if !namespace.is_empty() && !name.is_empty() {
                policy.roles.insert((namespace.to_owned(), name.to_owned()), rules_of(role));
            }
        }
        policy.cluster_role_bindings = cluster_role_bindings
            .iter()
            .filter_map(Binding::from_value)
            .map(|b| Binding { namespace: String::new(), ..b })
            .collect();
        for binding in role_bindings.iter().filter_map(Binding::from_value) {
            if !binding.namespace.is_empty() {
                policy.role_bindings.entry(binding.namespace.clone()).or_default().push(binding);
            }
        }
        policy
    }

    /// Decides a request. `system:masters` is checked first: in Kubernetes that group is allowed by a separate
    /// authorizer placed before RBAC (which gives an empty reason), not by RBAC rules, but callers here get both
    /// from one place. A denial carries the errors met while resolving bindings, as Kubernetes reports them.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return Decision::Allow { reason: String::new() };
        }
        let mut reason = None;
        let errors = self.visit_rules(user, attrs.namespace, |binding, subject, rule| {
            if rule.allows(attrs) {
                reason = Some(format!("RBAC: allowed by {}", binding.describe(subject)));
                return false;
            }
            true
        });
        match reason {
            Some(reason) => Decision::Allow { reason },
            None if errors.is_empty() => Decision::Deny { reason: String::new() },
            None => Decision::Deny { reason: format!("RBAC: {}", aggregate_errors(&errors)) },
        }
    }

    /// The rules (PolicyRule JSON) that apply to the user in a namespace ("" for cluster-wide only), for
    /// SelfSubjectRulesReview and `kubectl auth can-i --list`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<Value> {
        let mut rules = Vec::new();
        self.visit_rules(user, namespace, |_, _, rule| {
            rules.push(rule.to_value());
            true
        });
        rules
    }

    /// Calls `visit` for every rule granted to the user, ClusterRoleBindings first, then the RoleBindings of the
    /// namespace, until it returns false; returns the errors met resolving role references.
    fn visit_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&Binding, &Subject, &Rule) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let namespaced = if namespace.is_empty() { None } else { self.role_bindings.get(namespace) };
        for binding in self.cluster_role_bindings.iter().chain(namespaced.into_iter().flatten()) {
            let Some(subject) = binding.subjects.iter().find(|s| s.applies_to(user, &binding.namespace)) else {
                continue;
            };
            match self.role_rules(binding) {
                Ok(rules) => {
                    for rule in rules {
                        if !visit(binding, subject, rule) {
                            return errors;
                        }
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        errors
    }

    /// The rules a binding's roleRef points at; a RoleBinding may reference a ClusterRole, whose rules then apply
    /// within the binding's namespace only.
    fn role_rules(&self, binding: &Binding) -> Result<&[Rule], String> {
        let name = &binding.role_name;
        match binding.role_kind.as_str() {
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io {name:?} not found")),
            "ClusterRole" => self
                .cluster_roles
                .get(name)
                .map(Vec::as_slice)
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {name:?} not found")),
            kind => Err(format!("unsupported role reference kind: {kind:?}")),
        }
    }
}

/// Applies aggregation rules the way the clusterrole-aggregation controller would, leaving every other role as is.
///
/// An aggregated role's rules are the union, in name order of the matching roles, of the rules of every other
/// ClusterRole whose labels match one of its selectors. Aggregated roles can feed each other (view into edit into
/// admin), so the union is recomputed from empty until nothing changes. The sets only grow and a chain is at most
/// as long as there are roles, so one pass per role is enough even when roles select each other in a cycle.
fn aggregate(sources: &BTreeMap<String, ClusterRoleSource>) -> BTreeMap<String, Vec<Rule>> {
    let mut effective: BTreeMap<String, Vec<Rule>> = sources
        .iter()
        .map(|(name, source)| {
            (name.clone(), if source.selectors.is_some() { Vec::new() } else { source.rules.clone() })
        })
        .collect();
    for _ in 0..=sources.len() {
        let mut changed = false;
        for (name, source) in sources {
            let Some(selectors) = &source.selectors else { continue };
            let mut rules: Vec<Rule> = Vec::new();
            for selector in selectors {
                for (other, other_source) in sources {
                    if other == name || !selector.matches(&other_source.labels) {
                        continue;
                    }
                    for rule in effective.get(other).into_iter().flatten() {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
            }
            if effective.get(name) != Some(&rules) {
                effective.insert(name.clone(), rules);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    effective
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo { name: name.to_owned(), groups: groups.iter().map(|g| (*g).to_owned()).collect() }
    }

    fn request<'a>(verb: &'a str, group: &'a str, resource: &'a str, namespace: &'a str) -> Attributes<'a> {
        Attributes { verb, api_group: group, resource, namespace, resource_request: true, ..Attributes::default() }
    }

    fn url<'a>(verb: &'a str, path: &'a str) -> Attributes<'a> {
        Attributes { verb, path, ..Attributes::default() }
    }

    fn role_binding(namespace: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects
        })
    }

    /// The default policy plus extra namespaced objects.
    fn policy(roles: Vec<Value>, role_bindings: Vec<Value>) -> Policy {
        let (mut cluster_roles, mut cluster_role_bindings) = (Vec::new(), Vec::new());
        for object in bootstrap::default_objects() {
            match object.get("kind").and_then(Value::as_str) {
                Some("ClusterRole") => cluster_roles.push(object),
                Some("ClusterRoleBinding") => cluster_role_bindings.push(object),
                _ => {}
            }
        }
        Policy::new(cluster_roles, roles, cluster_role_bindings, role_bindings)
    }

    fn alice_bound_to(cluster_role: &str) -> Policy {
        let subjects = json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]);
        policy(
            vec![],
            vec![role_binding("dev", &format!("{cluster_role}-alice"), "ClusterRole", cluster_role, subjects)],
        )
    }

    fn alice() -> UserInfo {
        user("alice", &["system:authenticated"])
    }

    #[test]
    fn masters_are_always_allowed() {
        let empty = Policy::new(vec![], vec![], vec![], vec![]);
        let root = user("root", &["system:masters", "system:authenticated"]);
        assert_eq!(
            empty.authorize(&root, &request("delete", "", "nodes", "")),
            Decision::Allow { reason: String::new() }
        );
        assert!(!empty.authorize(&alice(), &request("get", "", "pods", "dev")).is_allowed());
    }

    #[test]
    fn view_reads_but_cannot_write_or_read_secrets() {
        let policy = alice_bound_to("view");
        let get = policy.authorize(&alice(), &request("get", "", "pods", "dev"));
        assert_eq!(
            get,
            Decision::Allow {
                reason: "RBAC: allowed by RoleBinding \"view-alice/dev\" of ClusterRole \"view\" to User \"alice\""
                    .to_owned()
            }
        );
        assert!(policy.authorize(&alice(), &request("list", "apps", "deployments", "dev")).is_allowed());
        assert_eq!(
            policy.authorize(&alice(), &request("create", "", "pods", "dev")),
            Decision::Deny { reason: String::new() }
        );
        assert!(!policy.authorize(&alice(), &request("get", "", "secrets", "dev")).is_allowed());
    }

    #[test]
    fn edit_creates_pods_but_not_roles_and_admin_does_both() {
        let edit = alice_bound_to("edit");
        assert!(edit.authorize(&alice(), &request("create", "", "pods", "dev")).is_allowed());
        assert!(edit.authorize(&alice(), &request("get", "", "secrets", "dev")).is_allowed());
        assert!(edit.authorize(&alice(), &request("update", "coordination.k8s.io", "leases", "dev")).is_allowed());
        assert!(
            !edit.authorize(&alice(), &request("create", "rbac.authorization.k8s.io", "roles", "dev")).is_allowed()
        );
        let admin = alice_bound_to("admin");
        assert!(
            admin.authorize(&alice(), &request("create", "rbac.authorization.k8s.io", "roles", "dev")).is_allowed()
        );
        assert!(admin.authorize(&alice(), &request("delete", "batch", "jobs", "dev")).is_allowed());
    }

    #[test]
    fn role_binding_to_cluster_role_is_confined_to_its_namespace() {
        let policy = alice_bound_to("admin");
        assert!(policy.authorize(&alice(), &request("get", "", "pods", "dev")).is_allowed());
        assert!(!policy.authorize(&alice(), &request("get", "", "pods", "prod")).is_allowed());
        assert!(!policy.authorize(&alice(), &request("list", "", "pods", "")).is_allowed());
        assert!(!policy.authorize(&alice(), &request("get", "", "nodes", "")).is_allowed());
    }

    #[test]
    fn resource_names_restrict_named_requests() {
        let role = json!({
            "kind": "Role",
            "metadata": {"name": "one-config", "namespace": "dev"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cm1"], "verbs": ["get"]}]
        });
        let binding = role_binding("dev", "b", "Role", "one-config", json!([{"kind": "User", "name": "alice"}]));
        let policy = policy(vec![role], vec![binding]);
        let get = |name| Attributes { name, ..request("get", "", "configmaps", "dev") };
        assert!(policy.authorize(&alice(), &get("cm1")).is_allowed());
        assert!(!policy.authorize(&alice(), &get("cm2")).is_allowed());
        assert!(!policy.authorize(&alice(), &get("")).is_allowed());
    }

    #[test]
    fn subresources_match_only_when_listed() {
        let view = alice_bound_to("view");
        let sub = |verb, subresource| Attributes { subresource, name: "p", ..request(verb, "", "pods", "dev") };
        assert!(view.authorize(&alice(), &sub("get", "log")).is_allowed());
        assert!(view.authorize(&alice(), &sub("get", "status")).is_allowed());
        assert!(!view.authorize(&alice(), &sub("create", "exec")).is_allowed());
        assert!(alice_bound_to("edit").authorize(&alice(), &sub("create", "exec")).is_allowed());

        let role = json!({
            "metadata": {"name": "scaler", "namespace": "dev"},
            "rules": [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]}]
        });
        let binding = role_binding("dev", "b", "Role", "scaler", json!([{"kind": "User", "name": "alice"}]));
        let scaler = policy(vec![role], vec![binding]);
        let scale = Attributes { subresource: "scale", ..request("update", "apps", "deployments", "dev") };
        assert!(scaler.authorize(&alice(), &scale).is_allowed());
        assert!(!scaler.authorize(&alice(), &request("update", "apps", "deployments", "dev")).is_allowed());
        assert!(!scaler.authorize(&alice(), &Attributes { subresource: "status", ..scale }).is_allowed());
    }

    #[test]
    fn non_resource_urls() {
        let policy = policy(vec![], vec![]);
        let anonymous = user("system:anonymous", &["system:unauthenticated"]);
        assert_eq!(
            policy.authorize(&anonymous, &url("get", "/healthz")),
            Decision::Allow {
                reason: "RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \
                         \"system:public-info-viewer\" to Group \"system:unauthenticated\""
                    .to_owned()
            }
        );
        assert!(policy.authorize(&anonymous, &url("get", "/version")).is_allowed());
        assert!(!policy.authorize(&anonymous, &url("post", "/healthz")).is_allowed());
        assert!(!policy.authorize(&anonymous, &url("get", "/api")).is_allowed());
        assert!(policy.authorize(&alice(), &url("get", "/apis/apps/v1")).is_allowed());
        assert!(!policy.authorize(&alice(), &url("get", "/metrics")).is_allowed());
        // A resource rule never grants a non-resource URL.
        assert!(!alice_bound_to("admin").authorize(&alice(), &url("get", "/logs")).is_allowed());
    }

    #[test]
    fn aggregated_roles_collect_rules() {
        let policy = policy(vec![], vec![]);
        let count = |role: &str| policy.cluster_roles.get(role).map_or(0, Vec::len);
        assert!(count("view") > 0);
        assert!(count("edit") > count("view"));
        assert!(count("admin") > count("edit"));
        let edit_rules = alice_bound_to("edit").rules_for(&alice(), "dev");
        assert!(
            edit_rules
                .iter()
                .any(|r| r["resources"] == json!(["serviceaccounts"]) && r["verbs"] == json!(["impersonate"]))
        );
        let admin_rules = alice_bound_to("admin").rules_for(&alice(), "dev");
        assert!(admin_rules.iter().any(|r| r["resources"].as_array().is_some_and(|a| a.contains(&json!("roles")))));
        assert!(alice_bound_to("admin").rules_for(&alice(), "prod").len() < admin_rules.len());
    }

    #[test]
    fn aggregation_follows_labels_of_custom_roles() {
        let crd_viewer = json!({
            "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]
        });
        let mut cluster_roles: Vec<Value> =
            bootstrap::default_objects().into_iter().filter(|o| o["kind"] == "ClusterRole").collect();
        cluster_roles.push(crd_viewer);
        let binding = role_binding("dev", "b", "ClusterRole", "admin", json!([{"kind": "User", "name": "alice"}]));
        let policy = Policy::new(cluster_roles, vec![], vec![], vec![binding]);
        assert!(policy.authorize(&alice(), &request("get", "example.com", "widgets", "dev")).is_allowed());
        assert!(!policy.authorize(&alice(), &request("delete", "example.com", "widgets", "dev")).is_allowed());
    }

    #[test]
    fn aggregation_tolerates_cycles_and_replaces_stored_rules() {
        let aggregated = |name: &str, label: &str, selects: &str| {
            json!({
                "metadata": {"name": name, "labels": {label: "true"}},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {selects: "true"}}]},
                "rules": [{"apiGroups": ["stale"], "resources": ["stale"], "verbs": ["*"]}]
            })
        };
        let leaf = json!({
            "metadata": {"name": "leaf", "labels": {"to-a": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
        });
        let policy = Policy::new(
            vec![aggregated("a", "to-b", "to-a"), aggregated("b", "to-a", "to-b"), leaf],
            vec![],
            vec![],
            vec![],
        );
        let only_leaf = Some(vec![Rule {
            verbs: vec!["get".to_owned()],
            api_groups: vec![String::new()],
            resources: vec!["configmaps".to_owned()],
            resource_names: vec![],
            non_resource_urls: vec![],
        }]);
        assert_eq!(policy.cluster_roles.get("a").cloned(), only_leaf);
        assert_eq!(policy.cluster_roles.get("b").cloned(), only_leaf);
    }

    #[test]
    fn service_account_subjects() {
        let subjects = json!([{"kind": "ServiceAccount", "name": "builder"}]);
        let policy = policy(vec![], vec![role_binding("dev", "builders", "ClusterRole", "edit", subjects)]);
        let builder = user("system:serviceaccount:dev:builder", &["system:serviceaccounts", "system:authenticated"]);
        assert_eq!(
            policy.authorize(&builder, &request("create", "apps", "deployments", "dev")),
            Decision::Allow {
                reason: "RBAC: allowed by RoleBinding \"builders/dev\" of ClusterRole \"edit\" to ServiceAccount \
                         \"builder/dev\""
                    .to_owned()
            }
        );
        let elsewhere = user("system:serviceaccount:other:builder", &["system:authenticated"]);
        assert!(!policy.authorize(&elsewhere, &request("create", "apps", "deployments", "dev")).is_allowed());
        let prefix = user("system:serviceaccount:dev:builder2", &["system:authenticated"]);
        assert!(!policy.authorize(&prefix, &request("create", "apps", "deployments", "dev")).is_allowed());

        // Without a namespace a ClusterRoleBinding subject matches no service account.
        let crb = json!({
            "metadata": {"name": "sa"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "builder"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}
            ]
        });
        let policy = Policy::new(bootstrap::default_objects(), vec![], vec![crb], vec![]);
        assert!(!policy.authorize(&builder, &request("get", "", "pods", "dev")).is_allowed());
        let ci = user("system:serviceaccount:tools:ci", &[]);
        assert!(policy.authorize(&ci, &request("get", "", "pods", "anywhere")).is_allowed());
    }

    #[test]
    fn missing_roles_are_reported_in_denials() {
        let alice_subject = json!([{"kind": "User", "name": "alice"}]);
        let policy = policy(
            vec![],
            vec![
                role_binding("dev", "a", "ClusterRole", "missing", alice_subject.clone()),
                role_binding("dev", "b", "Role", "gone", alice_subject.clone()),
                role_binding("dev", "c", "Role", "gone", alice_subject),
            ],
        );
        assert_eq!(
            policy.authorize(&alice(), &request("get", "", "pods", "dev")),
            Decision::Deny {
                reason: "RBAC: [clusterrole.rbac.authorization.k8s.io \"missing\" not found, \
                         role.rbac.authorization.k8s.io \"gone\" not found]"
                    .to_owned()
            }
        );
    }

    #[test]
    fn malformed_objects_are_skipped() {
        let policy = Policy::new(
            vec![
                json!("nope"),
                json!({"rules": []}),
                json!({
                    "metadata": {"name": "r"},
                    "rules": [1, {"verbs": ["get"], "apiGroups": [""], "resources": ["pods", 7]}]
                }),
            ],
            vec![json!({"metadata": {"name": "no-namespace"}})],
            vec![
                json!(null),
                json!({"metadata": {"name": "x"}}),
                json!({
                    "metadata": {"name": "ok"},
                    "roleRef": {"kind": "ClusterRole", "name": "r"},
                    "subjects": [{"kind": "User"}, {"kind": "User", "name": "alice"}]
                }),
            ],
            vec![json!({"metadata": {"name": "cluster-wide"}, "roleRef": {"kind": "ClusterRole", "name": "r"}})],
        );
        assert!(policy.authorize(&alice(), &request("get", "", "pods", "dev")).is_allowed());
        assert_eq!(
            policy.rules_for(&alice(), ""),
            vec![json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})]
        );
    }

    #[test]
    fn system_components() {
        let policy = policy(vec![], vec![]);
        let scheduler = user("system:kube-scheduler", &["system:authenticated"]);
        let bind = Attributes { subresource: "binding", name: "p", ..request("create", "", "pods", "dev") };
        assert!(policy.authorize(&scheduler, &bind).is_allowed());
        let lease = |verb, name| Attributes { name, ..request(verb, "coordination.k8s.io", "leases", "kube-system") };
        assert!(policy.authorize(&scheduler, &lease("update", "kube-scheduler")).is_allowed());
        assert!(!policy.authorize(&scheduler, &lease("update", "kube-controller-manager")).is_allowed());
        assert!(!policy.authorize(&scheduler, &request("create", "", "pods", "dev")).is_allowed());

        let manager = user("system:kube-controller-manager", &["system:authenticated"]);
        assert!(policy.authorize(&manager, &request("watch", "apps", "replicasets", "")).is_allowed());
        assert!(policy.authorize(&manager, &request("delete", "", "pods", "dev")).is_allowed());
        assert!(policy.authorize(&manager, &request("create", "apps", "replicasets", "dev")).is_allowed());
        let grant = request("create", "rbac.authorization.k8s.io", "clusterrolebindings", "");
        assert!(!policy.authorize(&manager, &grant).is_allowed());

        let node = user("system:node:n1", &["system:nodes", "system:authenticated"]);
        assert!(
            policy
                .authorize(&node, &Attributes { subresource: "status", ..request("patch", "", "nodes", "") })
                .is_allowed()
        );
        assert!(!policy.authorize(&node, &request("delete", "", "nodes", "")).is_allowed());

        let someone = user("bob", &["system:authenticated"]);
        let review = request("create", "authorization.k8s.io", "selfsubjectaccessreviews", "");
        assert!(policy.authorize(&someone, &review).is_allowed());
        assert!(!policy.authorize(&someone, &request("list", "", "pods", "")).is_allowed());
    }

    #[test]
    fn rules_for_lists_cluster_and_namespace_rules() {
        let policy = alice_bound_to("view");
        let cluster_wide = policy.rules_for(&alice(), "");
        assert!(
            cluster_wide.iter().any(|r| r["nonResourceURLs"].as_array().is_some_and(|u| u.contains(&json!("/api"))))
        );
        assert!(
            !cluster_wide
                .iter()
                .any(|r| r.get("resources").is_some_and(|r| r.as_array().is_some_and(|a| a.contains(&json!("pods")))))
        );
        let in_dev = policy.rules_for(&alice(), "dev");
        assert!(in_dev.len() > cluster_wide.len());
    }
}
