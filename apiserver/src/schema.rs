//! Checking an object against its Kubernetes type: wrong types are errors,
//! unknown fields are dropped (and, with `fieldValidation=Strict`, refused).
//! The typed round trip through k8s-openapi is the schema: a field the type
//! does not have does not come back out.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;

/// `fieldValidation`: what to do with unknown or duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(value: Option<&str>) -> ApiResult<FieldValidation> {
        match value {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The object as its type knows it, and warnings for what was dropped.
pub struct Checked {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// What a body is checked as: a stored resource's kind, or a request kind
/// such as Scale or Eviction.
#[derive(Debug, Clone, Copy)]
pub struct Kind<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

impl Kind<'_> {
    pub fn of(resource: &Resource) -> Kind<'static> {
        Kind { group: resource.group, version: resource.version, kind: resource.kind }
    }

    fn api_version(&self) -> String {
        crate::resources::api_version(self.group, self.version)
    }
}

/// Round-trips `object` through the kind's type.
pub fn check(resource: Kind<'_>, object: Value, mode: FieldValidation) -> ApiResult<Checked> {
    let typed = roundtrip(resource.group, resource.kind, &object).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = resource.kind,
            version = resource.version
        ))
    })?;
    let mut unknown = Vec::new();
    unknown_fields(&object, &typed, "", &mut unknown);
    // Kubernetes never reports these two as unknown: they are read before decoding.
    unknown.retain(|f| f != "apiVersion" && f != "kind");
    if mode == FieldValidation::Strict && !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = resource.kind,
            version = resource.version
        )));
    }
    let warnings = match mode {
        FieldValidation::Warn => unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect(),
        _ => Vec::new(),
    };
    let mut object = typed;
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(resource.api_version()));
        map.insert("kind".into(), Value::String(resource.kind.to_string()));
    }
    Ok(Checked { object, warnings })
}

/// Something done with the k8s-openapi type of a kind.
pub trait TypedKind {
    type Output;
    fn with<T: DeserializeOwned + Serialize + JsonSchema>(self) -> Self::Output;
}

/// Runs `action` with the type of `kind` in `group`; None for a kind
/// without one.
pub fn with_type<A: TypedKind>(group: &str, kind: &str, action: A) -> Option<A::Output> {
    use k8s_openapi::api::{apps, authorization, autoscaling, batch, coordination, core, discovery, policy, rbac};
    Some(match (group, kind) {
        ("", "Namespace") => action.with::<core::v1::Namespace>(),
        ("", "Pod") => action.with::<core::v1::Pod>(),
        ("", "Node") => action.with::<core::v1::Node>(),
        ("", "Service") => action.with::<core::v1::Service>(),
        ("", "Endpoints") => action.with::<core::v1::Endpoints>(),
        ("", "ConfigMap") => action.with::<core::v1::ConfigMap>(),
        ("", "Secret") => action.with::<core::v1::Secret>(),
        ("", "ServiceAccount") => action.with::<core::v1::ServiceAccount>(),
        ("", "Event") => action.with::<core::v1::Event>(),
        ("", "Binding") => action.with::<core::v1::Binding>(),
        ("apps", "Deployment") => action.with::<apps::v1::Deployment>(),
        ("apps", "ReplicaSet") => action.with::<apps::v1::ReplicaSet>(),
        ("apps", "DaemonSet") => action.with::<apps::v1::DaemonSet>(),
        ("apps", "StatefulSet") => action.with::<apps::v1::StatefulSet>(),
        ("batch", "Job") => action.with::<batch::v1::Job>(),
        ("batch", "CronJob") => action.with::<batch::v1::CronJob>(),
        ("coordination.k8s.io", "Lease") => action.with::<coordination::v1::Lease>(),
        ("discovery.k8s.io", "EndpointSlice") => action.with::<discovery::v1::EndpointSlice>(),
        ("rbac.authorization.k8s.io", "ClusterRole") => action.with::<rbac::v1::ClusterRole>(),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => action.with::<rbac::v1::ClusterRoleBinding>(),
        ("rbac.authorization.k8s.io", "Role") => action.with::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "RoleBinding") => action.with::<rbac::v1::RoleBinding>(),
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            action.with::<authorization::v1::SelfSubjectAccessReview>()
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => {
            action.with::<authorization::v1::SelfSubjectRulesReview>()
        }
        ("autoscaling", "Scale") => action.with::<autoscaling::v1::Scale>(),
        ("policy", "Eviction") => action.with::<policy::v1::Eviction>(),
        _ => return None,
    })
}

/// Decodes an object as its type and encodes it back.
struct RoundTrip<'a>(&'a Value);

impl TypedKind for RoundTrip<'_> {
    type Output = Result<Value, serde_json::Error>;

    fn with<T: DeserializeOwned + Serialize + JsonSchema>(self) -> Self::Output {
        let typed: T = serde_json::from_value(self.0.clone())?;
        serde_json::to_value(typed)
    }
}

fn roundtrip(group: &str, kind: &str, object: &Value) -> Result<Value, serde_json::Error> {
    with_type(group, kind, RoundTrip(object)).unwrap_or_else(|| Ok(object.clone()))
}

/// Paths (`spec.foo`, `spec.containers[0].bar`) present in `sent` but not in
/// `kept`. Nulls are "not set", never unknown.
fn unknown_fields(sent: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(sent), Value::Object(kept)) => {
            for (key, value) in sent {
                if value.is_null() {
                    continue;
                }
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match kept.get(key) {
                    Some(kept_value) => unknown_fields(value, kept_value, &here, out),
                    None if is_empty_value(value) => {}
                    None => out.push(here),
                }
            }
        }
        (Value::Array(sent), Value::Array(kept)) => {
            for (i, (s, k)) in sent.iter().zip(kept).enumerate() {
                unknown_fields(s, k, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// k8s-openapi leaves out some empty values a client may send (`{}` for a
/// struct whose fields are all optional is kept; empty strings of omitted
/// optional fields are not an unknown field).
fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use serde_json::json;

    fn configmaps() -> Kind<'static> {
        Kind::of(resources::find("", "v1", "configmaps").expect("configmaps"))
    }

    #[test]
    fn strict_mode_names_unknown_fields() {
        let deploy = Kind::of(resources::find("apps", "v1", "deployments").expect("deployments"));
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"replicas": 1, "bogus": 2, "template": {"spec": {"containers": [{"name": "c", "imagex": "y"}]}}}});
        let err = check(deploy, object.clone(), FieldValidation::Strict).err().expect("refused");
        let message = err.to_string();
        assert!(message.contains("strict decoding error: unknown field \"spec.bogus\""), "{message}");
        assert!(message.contains("unknown field \"spec.template.spec.containers[0].imagex\""), "{message}");
        let warned = check(deploy, object, FieldValidation::Warn).expect("warned");
        assert_eq!(warned.warnings.len(), 2);
        assert!(warned.object["spec"].get("bogus").is_none());
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let err = check(configmaps(), json!({"metadata": {"name": 3}}), FieldValidation::Ignore).err().expect("bad");
        assert!(matches!(err, ApiError::BadRequest(_)));
        assert!(err.to_string().starts_with("ConfigMap in version \"v1\" cannot be handled as a ConfigMap:"));
    }

    #[test]
    fn known_fields_pass_and_nulls_are_not_unknown() {
        let object = json!({"metadata": {"name": "a", "labels": {"x": "y"}, "annotations": null}, "data": {"k": "v"}});
        let checked = check(configmaps(), object, FieldValidation::Strict).expect("valid");
        assert_eq!(checked.object["data"]["k"], "v");
        assert_eq!(checked.object["kind"], "ConfigMap");
        assert_eq!(checked.object["apiVersion"], "v1");
    }
}
