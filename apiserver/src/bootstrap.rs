//! What exists from the first start: the system namespaces with their
//! `default` service accounts, and the default RBAC roles and bindings.
//! Every replica runs it; creating what exists is a no-op.

use serde_json::{Value, json};

use crate::admission::SYSTEM_NAMESPACES;
use crate::error::{ApiError, ApiResult};
use crate::registry::{Registry, WriteOptions};
use crate::resources::{self, split_api_version};
use crate::schema::FieldValidation;

pub async fn ensure_defaults(registry: &Registry) -> ApiResult<()> {
    let mut objects: Vec<Value> = Vec::new();
    for namespace in SYSTEM_NAMESPACES {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
    }
    for namespace in SYSTEM_NAMESPACES {
        objects.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace}}));
    }
    objects.extend(crate::rbac::bootstrap::default_objects());
    let options =
        WriteOptions { dry_run: false, field_manager: "capstan-apiserver".into(), validation: FieldValidation::Strict };
    for object in objects {
        let (group, _) = split_api_version(object["apiVersion"].as_str().unwrap_or(""));
        let kind = object["kind"].as_str().unwrap_or("");
        let resource = resources::by_kind(group, kind)
            .ok_or_else(|| ApiError::Internal(format!("no resource serves the default {group}/{kind}")))?;
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        match registry.create(resource, &namespace, object, &options).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
