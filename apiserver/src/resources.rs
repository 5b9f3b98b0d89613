//! The resources this apiserver serves: one table, read by routing,
//! discovery, OpenAPI and the registry, so they can never disagree.

/// Verbs of a stored resource with every operation.
const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Verbs of a `status`-like subresource.
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource reached as `<resource>/<name>/<subresource>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind it takes and returns, when not the parent's.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One API resource, as discovery describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Kept in the store; reviews are computed per request and never stored.
    pub stored: bool,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        api_version(self.group, self.version)
    }

    /// `pods` or `deployments.apps`, as Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The store key prefix of every object of this resource, or of those in
    /// one namespace. Objects keep the plural (with the group for non-core
    /// resources whose plural could clash) as Kubernetes' etcd layout does.
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        let base = format!("/registry/{}/", self.storage_name());
        match namespace {
            Some(ns) if self.namespaced => format!("{base}{ns}/"),
            _ => base,
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("/registry/{}/{namespace}/{name}", self.storage_name())
        } else {
            format!("/registry/{}/{name}", self.storage_name())
        }
    }

    /// Kubernetes stores a few resources under other names (`minions` for
    /// nodes, `services/specs`); plain plurals are readable and unambiguous here.
    fn storage_name(&self) -> String {
        match self.group {
            "" | "apps" | "batch" => self.plural.to_string(),
            group => format!("{group}/{}", self.plural),
        }
    }
}

pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

const STATUS: Subresource = Subresource { name: "status", group: "", version: "", kind: "", verbs: SUB_VERBS };
const SCALE: Subresource =
    Subresource { name: "scale", group: "autoscaling", version: "v1", kind: "Scale", verbs: SUB_VERBS };

macro_rules! resource {
    ($group:expr, $plural:expr, $singular:expr, $kind:expr, namespaced: $ns:expr, short: $short:expr,
     categories: $cat:expr, sub: $sub:expr) => {
        Resource {
            group: $group,
            version: "v1",
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            verbs: ALL_VERBS,
            subresources: $sub,
            stored: true,
        }
    };
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Every served resource, in discovery order.
pub static RESOURCES: &[Resource] = &[
    resource!("", "namespaces", "namespace", "Namespace", namespaced: false, short: &["ns"], categories: NONE,
        sub: &[STATUS, Subresource { name: "finalize", group: "", version: "", kind: "", verbs: &["update"] }]),
    resource!("", "pods", "pod", "Pod", namespaced: true, short: &["po"], categories: ALL, sub: &[
        STATUS,
        Subresource { name: "binding", group: "", version: "v1", kind: "Binding", verbs: &["create"] },
        Subresource { name: "eviction", group: "policy", version: "v1", kind: "Eviction", verbs: &["create"] },
    ]),
    resource!("", "nodes", "node", "Node", namespaced: false, short: &["no"], categories: NONE, sub: &[STATUS]),
    resource!("", "services", "service", "Service", namespaced: true, short: &["svc"], categories: ALL,
        sub: &[STATUS]),
    resource!("", "endpoints", "endpoints", "Endpoints", namespaced: true, short: &["ep"], categories: NONE,
        sub: &[]),
    resource!("", "configmaps", "configmap", "ConfigMap", namespaced: true, short: &["cm"], categories: NONE,
        sub: &[]),
    resource!("", "secrets", "secret", "Secret", namespaced: true, short: &[], categories: NONE, sub: &[]),
    resource!("", "serviceaccounts", "serviceaccount", "ServiceAccount", namespaced: true, short: &["sa"],
        categories: NONE, sub: &[]),
    resource!("", "events", "event", "Event", namespaced: true, short: &["ev"], categories: NONE, sub: &[]),
    resource!("apps", "deployments", "deployment", "Deployment", namespaced: true, short: &["deploy"],
        categories: ALL, sub: &[STATUS, SCALE]),
    resource!("apps", "replicasets", "replicaset", "ReplicaSet", namespaced: true, short: &["rs"],
        categories: ALL, sub: &[STATUS, SCALE]),
    resource!("apps", "daemonsets", "daemonset", "DaemonSet", namespaced: true, short: &["ds"],
        categories: ALL, sub: &[STATUS]),
    resource!("apps", "statefulsets", "statefulset", "StatefulSet", namespaced: true, short: &["sts"],
        categories: ALL, sub: &[STATUS, SCALE]),
    resource!("batch", "jobs", "job", "Job", namespaced: true, short: &[], categories: ALL, sub: &[STATUS]),
    resource!("batch", "cronjobs", "cronjob", "CronJob", namespaced: true, short: &["cj"], categories: ALL,
        sub: &[STATUS]),
    resource!("coordination.k8s.io", "leases", "lease", "Lease", namespaced: true, short: &[], categories: NONE,
        sub: &[]),
    resource!("discovery.k8s.io", "endpointslices", "endpointslice", "EndpointSlice", namespaced: true,
        short: &[], categories: NONE, sub: &[]),
    resource!("rbac.authorization.k8s.io", "clusterroles", "clusterrole", "ClusterRole", namespaced: false,
        short: &[], categories: NONE, sub: &[]),
    resource!("rbac.authorization.k8s.io", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding",
        namespaced: false, short: &[], categories: NONE, sub: &[]),
    resource!("rbac.authorization.k8s.io", "roles", "role", "Role", namespaced: true, short: &[], categories: NONE,
        sub: &[]),
    resource!("rbac.authorization.k8s.io", "rolebindings", "rolebinding", "RoleBinding", namespaced: true,
        short: &[], categories: NONE, sub: &[]),
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: &["create"],
        subresources: &[],
        stored: false,
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: &["create"],
        subresources: &[],
        stored: false,
    },
];

/// The resource at `/api/v1/<plural>` or `/apis/<group>/<version>/<plural>`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind, for `apiVersion`/`kind` in request bodies.
pub fn by_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.kind == kind)
}

/// The groups in discovery order, each with its one version.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

/// The resources of one group.
pub fn in_group(group: &str) -> impl Iterator<Item = &'static Resource> + '_ {
    RESOURCES.iter().filter(move |r| r.group == group)
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_registry_layout() {
        let pods = find("", "v1", "pods").expect("pods");
        assert_eq!(pods.key("default", "web"), "/registry/pods/default/web");
        assert_eq!(pods.key_prefix(Some("kube-system")), "/registry/pods/kube-system/");
        assert_eq!(pods.key_prefix(None), "/registry/pods/");
        let nodes = find("", "v1", "nodes").expect("nodes");
        assert_eq!(nodes.key("", "n1"), "/registry/nodes/n1");
        let leases = find("coordination.k8s.io", "v1", "leases").expect("leases");
        assert_eq!(leases.key("kube-node-lease", "n1"), "/registry/coordination.k8s.io/leases/kube-node-lease/n1");
    }

    #[test]
    fn prefixes_of_one_resource_never_cover_another() {
        for a in RESOURCES {
            for b in RESOURCES {
                if a != b {
                    assert!(!b.key_prefix(None).starts_with(&a.key_prefix(None)), "{} covers {}", a.plural, b.plural);
                }
            }
        }
    }

    #[test]
    fn kinds_and_plurals_are_unique_within_a_group() {
        for r in RESOURCES {
            assert_eq!(by_kind(r.group, r.kind), Some(r));
            assert_eq!(find(r.group, r.version, r.plural), Some(r));
        }
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
