//! Admission: what Kubernetes' NamespaceLifecycle and ServiceAccount
//! plugins decide, before an object is validated and stored.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::registry::Registry;
use crate::resources::{self, Resource};

/// Namespaces that exist from the start and can never be deleted.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];
/// Every namespace the server creates at start.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn admit_create(registry: &Registry, resource: &Resource, object: &mut Value) -> ApiResult<()> {
    if resource.namespaced {
        namespace_lifecycle(registry, object::namespace(object)).await?;
    }
    if resource.plural == "pods" {
        default_service_account(object);
    }
    Ok(())
}

pub fn admit_delete(resource: &Resource, name: &str) -> ApiResult<()> {
    if resource.plural == "namespaces" && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::Forbidden {
            message: format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        });
    }
    Ok(())
}

/// No object is created in a namespace that is missing or going away. The
/// cache answers first; a miss is checked against the store, since the
/// namespace may have been created a moment ago through another replica.
async fn namespace_lifecycle(registry: &Registry, namespace: &str) -> ApiResult<()> {
    let namespaces = resources::find("", "v1", "namespaces").ok_or(ApiError::NoSuchResource)?;
    let key = namespaces.key("", namespace);
    let cached = registry.cache(namespaces)?.get(&key).map(|ns| (*ns).clone());
    let found = match cached {
        Some(ns) => Some(ns),
        None => match registry.get(namespaces, "", namespace).await {
            Ok(ns) => Some(ns),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        },
    };
    match found {
        None => Err(ApiError::not_found("namespaces", namespace)),
        Some(ns) if object::is_deleting(&ns) || ns["status"]["phase"] == "Terminating" => Err(ApiError::Forbidden {
            message: format!("unable to create new content in namespace {namespace} because it is being terminated"),
        }),
        Some(_) => Ok(()),
    }
}

/// Pods run as the namespace's `default` service account unless told.
fn default_service_account(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| spec.get("serviceAccount").and_then(Value::as_str).filter(|n| !n.is_empty()))
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_default_service_account() {
        let mut pod = json!({"spec": {"containers": []}});
        default_service_account(&mut pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        let mut named = json!({"spec": {"serviceAccountName": "builder"}});
        default_service_account(&mut named);
        assert_eq!(named["spec"]["serviceAccount"], "builder");
    }

    #[test]
    fn system_namespaces_are_immortal() {
        let ns = resources::find("", "v1", "namespaces").expect("namespaces");
        assert!(admit_delete(ns, "kube-system").is_err());
        assert!(admit_delete(ns, "team-a").is_ok());
    }
}
