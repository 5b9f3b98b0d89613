//! What exists from the first start: the system namespaces with their
//! `default` service accounts, the default RBAC roles and bindings, and the
//! `kubernetes` Service.
//! Every replica runs it; creating what exists is a no-op.

use serde_json::{Value, json};

use crate::admission::SYSTEM_NAMESPACES;
use crate::error::{ApiError, ApiResult};
use crate::registry::{Registry, WriteOptions};
use crate::resources::{self, split_api_version};
use crate::schema::FieldValidation;

pub async fn ensure_defaults(registry: &Registry, secure_port: u16) -> ApiResult<()> {
    let mut objects: Vec<Value> = Vec::new();
    for namespace in SYSTEM_NAMESPACES {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
    }
    for namespace in SYSTEM_NAMESPACES {
        objects.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace}}));
    }
    objects.extend(crate::rbac::bootstrap::default_objects());
    objects.push(crate::kubernetes_service::service(secure_port));
    let options = WriteOptions {
        dry_run: false,
        field_manager: "capstan-apiserver".into(),
        validation: FieldValidation::Strict,
        force: false,
    };
    for object in objects {
        let (group, _) = split_api_version(object["apiVersion"].as_str().unwrap_or(""));
        let kind = object["kind"].as_str().unwrap_or("");
        let resource = resources::by_kind(group, kind)
            .ok_or_else(|| ApiError::Internal(format!("no resource serves the default {group}/{kind}")))?;
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_string();
        match registry.create(resource, &namespace, object.clone(), &options).await {
            Ok(_) => {}
            Err(ApiError::AlreadyExists { .. }) if kind == "ClusterRole" => {
                let add_rules = |current: &Value| Ok(with_missing_rules(current, &object));
                registry.update_with(resource, &namespace, &name, None, &options, add_rules).await?;
            }
            Err(ApiError::AlreadyExists { .. }) => {}
            // Another replica created it first (a Service's cluster IP is
            // then taken before its name is).
            Err(_) if registry.get(resource, &namespace, &name).await.is_ok() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A default ClusterRole from an older release gains the rules added
/// since, unless its owner turned auto-update off (Kubernetes' reconciliation
/// of `rbac.authorization.kubernetes.io/autoupdate` roles; rules are only
/// ever added).
fn with_missing_rules(current: &Value, default: &Value) -> Value {
    let annotations = &current["metadata"]["annotations"];
    if annotations["rbac.authorization.kubernetes.io/autoupdate"] == "false" {
        return current.clone();
    }
    let mut rules = current["rules"].as_array().cloned().unwrap_or_default();
    for rule in default["rules"].as_array().into_iter().flatten() {
        if !rules.contains(rule) {
            rules.push(rule.clone());
        }
    }
    let mut next = current.clone();
    next["rules"] = Value::Array(rules);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cluster_roles_gain_missing_rules_unless_auto_update_is_off() {
        let old = json!({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "resources": ["pods"]}]});
        let default =
            json!({"rules": [{"verbs": ["get"], "resources": ["pods"]}, {"verbs": ["list"], "resources": ["nodes"]}]});
        assert_eq!(with_missing_rules(&old, &default)["rules"], default["rules"]);
        let pinned = json!({"metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"}},
            "rules": []});
        assert_eq!(with_missing_rules(&pinned, &default)["rules"], json!([]));
    }
}
