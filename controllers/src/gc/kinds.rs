//! The kinds the garbage collector watches, as owners and as dependents.
//! Add a line here to collect another kind.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::core::ApiResource;

/// One watched kind.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

fn namespaced<K: Resource<DynamicType = ()>>() -> Kind {
    Kind { resource: ApiResource::erase::<K>(&()), namespaced: true }
}

pub fn watched() -> Vec<Kind> {
    vec![
        namespaced::<Deployment>(),
        namespaced::<ReplicaSet>(),
        namespaced::<Pod>(),
        namespaced::<DaemonSet>(),
        namespaced::<StatefulSet>(),
        namespaced::<Job>(),
        namespaced::<CronJob>(),
    ]
}

/// The watched kind an owner reference names, by apiVersion and kind.
pub fn find<'a>(kinds: &'a [Kind], api_version: &str, kind: &str) -> Option<(usize, &'a Kind)> {
    kinds.iter().enumerate().find(|(_, k)| k.resource.api_version == api_version && k.resource.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_resolve_by_api_version_and_kind() {
        let kinds = watched();
        let (_, deployment) = find(&kinds, "apps/v1", "Deployment").expect("deployments are watched");
        assert_eq!(deployment.resource.plural, "deployments");
        assert_eq!(find(&kinds, "v1", "Pod").map(|(_, k)| k.resource.plural.as_str()), Some("pods"));
        assert!(find(&kinds, "extensions/v1beta1", "Deployment").is_none());
    }
}
