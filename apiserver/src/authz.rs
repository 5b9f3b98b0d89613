//! RBAC over the watch caches: the policy is rebuilt only when a Role,
//! ClusterRole or binding changed, so authorizing costs a lookup.

use std::sync::{Arc, Mutex};

use crate::rbac::{Attributes, Decision, Policy, UserInfo};
use crate::registry::Registry;
use crate::resources;
use crate::watch_cache::WatchCache;

const RBAC: &str = "rbac.authorization.k8s.io";

pub struct Authorizer {
    caches: [Arc<WatchCache>; 4],
    built: Mutex<Option<([i64; 4], Arc<Policy>)>>,
}

impl Authorizer {
    pub fn new(registry: &Registry) -> Option<Authorizer> {
        let cache = |plural| resources::find(RBAC, "v1", plural).and_then(|r| registry.cache(r).ok().cloned());
        Some(Authorizer {
            caches: [cache("clusterroles")?, cache("roles")?, cache("clusterrolebindings")?, cache("rolebindings")?],
            built: Mutex::new(None),
        })
    }

    pub fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Decision {
        self.policy().authorize(user, attributes)
    }

    /// The rules that apply to the user in a namespace.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<serde_json::Value> {
        self.policy().rules_for(user, namespace)
    }

    fn policy(&self) -> Arc<Policy> {
        let revisions = self.caches.each_ref().map(|c| c.revision());
        let mut built = self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((seen, policy)) = built.as_ref()
            && *seen == revisions
        {
            return policy.clone();
        }
        let objects = self.caches.each_ref().map(|c| {
            c.snapshot(&c.resource().key_prefix(None)).objects.iter().map(|o| (**o).clone()).collect::<Vec<_>>()
        });
        let [cluster_roles, roles, cluster_role_bindings, role_bindings] = objects;
        let policy = Arc::new(Policy::new(cluster_roles, roles, cluster_role_bindings, role_bindings));
        *built = Some((revisions, policy.clone()));
        policy
    }
}
