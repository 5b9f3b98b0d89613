//! Subresources that are not the object itself: `scale` (as an
//! autoscaling/v1 Scale), pod `binding` and `eviction`, namespace
//! `finalize`.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use serde_json::{Value, json};

use super::resource::write_options;
use super::respond::{Body, Format, json_response, object_response};
use super::{decode_body, success_status};
use crate::error::{ApiError, ApiResult};
use crate::managed_fields::Ownership;
use crate::patch::{self, PatchType};
use crate::registry::{DeleteOptions, Registry};
use crate::request::Query;
use crate::resources::Resource;
use crate::schema::{self, FieldValidation, Kind};
use crate::{object, strategy};

const SCALE: Kind<'static> = Kind { group: "autoscaling", version: "v1", kind: "Scale" };

/// The Scale view of a scalable object.
fn to_scale(object: &Value) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let keep = ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"];
    let metadata: serde_json::Map<String, Value> =
        keep.iter().filter_map(|k| meta.get(*k).map(|v| ((*k).to_string(), v.clone()))).collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&object["spec"]["selector"]),
        },
    })
}

/// A label selector object as the `k=v,k in (a,b)` string Scale reports.
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    for expr in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or("");
        let values: Vec<&str> = expr["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        parts.push(match expr["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.sort();
    parts.join(",")
}

#[allow(clippy::too_many_arguments)]
pub async fn scale(
    registry: &Registry,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    verb: &str,
    headers: &HeaderMap,
    body: &Bytes,
    query: &Query,
) -> ApiResult<Response<Body>> {
    if verb == "get" {
        let object = registry.get(resource, namespace, name).await?;
        return Ok(json_response(StatusCode::OK, &to_scale(&object)));
    }
    let options = write_options(query, headers)?;
    let patch_type = match verb {
        "patch" => {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            Some(PatchType::from_content_type(content_type)?)
        }
        _ => None,
    };
    if patch_type == Some(PatchType::Apply) {
        return Err(ApiError::UnsupportedMediaType {
            accepted:
                "application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json"
                    .into(),
        });
    }
    let sent = match patch_type {
        None => Some(schema::check(SCALE, decode_body(headers, body)?, options.validation)?.object),
        Some(_) => None,
    };
    let ownership = Ownership::new(resource, "scale");
    let outcome = registry
        .update_with(resource, namespace, name, None, &options, |current| {
            let current_scale = to_scale(current);
            let wanted = match (&sent, patch_type) {
                (Some(scale), _) => scale.clone(),
                (None, Some(kind)) => patch::apply(kind, "autoscaling", "Scale", &current_scale, body)?,
                (None, None) => current_scale.clone(),
            };
            let rv = object::meta_str(&wanted, "resourceVersion");
            if !rv.is_empty() && rv != object::meta_str(current, "resourceVersion") {
                return Err(ApiError::conflict(&resource.qualified(), name));
            }
            let replicas = wanted["spec"]["replicas"].as_i64().unwrap_or(0);
            let mut next = current.clone();
            next["spec"]["replicas"] = json!(replicas);
            strategy::prepare_for_update(resource, &mut next, current);
            ownership.record_update(&options.field_manager, Some(current), &mut next);
            Ok(next)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &to_scale(&outcome.object)))
}

/// `POST pods/<name>/binding`: puts an unbound pod on a node.
pub async fn bind(
    registry: &Registry,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let binding = decode_body(headers, body)?;
    let binding =
        schema::check(Kind { group: "", version: "v1", kind: "Binding" }, binding, FieldValidation::Ignore)?.object;
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request("a Binding needs target.name, the node"));
    }
    let options = write_options(query, headers)?;
    registry
        .update_with(resource, namespace, name, None, &options, |current| {
            if object::is_deleting(current) {
                return Err(ApiError::Conflict {
                    kind: resource.qualified(),
                    name: name.to_string(),
                    reason: format!("pod {name} is being deleted, cannot be assigned to a host"),
                });
            }
            match current["spec"]["nodeName"].as_str() {
                Some(bound) if !bound.is_empty() => Err(ApiError::Conflict {
                    kind: resource.qualified(),
                    name: name.to_string(),
                    reason: format!("pod {name} is already assigned to node \"{bound}\""),
                }),
                _ => Ok(bound_to(current, &node, &binding["metadata"]["annotations"])),
            }
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &success_status(201, json!({}))))
}

/// The pod on `node`, as Kubernetes' binding leaves it: the binding's
/// annotations copied and the PodScheduled condition True.
fn bound_to(pod: &Value, node: &str, annotations: &Value) -> Value {
    let mut next = pod.clone();
    next["spec"]["nodeName"] = json!(node);
    if let Some(annotations) = annotations.as_object().filter(|a| !a.is_empty()) {
        if !next["metadata"]["annotations"].is_object() {
            next["metadata"]["annotations"] = json!({});
        }
        for (key, value) in annotations {
            next["metadata"]["annotations"][key] = value.clone();
        }
    }
    let scheduled = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": object::timestamp(std::time::SystemTime::now()),
    });
    let mut conditions: Vec<Value> = next["status"]["conditions"].as_array().cloned().unwrap_or_default();
    match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(existing) => *existing = scheduled,
        None => conditions.push(scheduled),
    }
    if !next["status"].is_object() {
        next["status"] = json!({});
    }
    next["status"]["conditions"] = json!(conditions);
    next
}

/// `POST pods/<name>/eviction`: a delete that disruption budgets may refuse
/// (there are none yet, so it is always allowed).
pub async fn evict(
    registry: &Registry,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response<Body>> {
    let eviction = decode_body(headers, body)?;
    let eviction =
        schema::check(Kind { group: "policy", version: "v1", kind: "Eviction" }, eviction, FieldValidation::Ignore)?
            .object;
    let options = match eviction.get("deleteOptions") {
        Some(options) if options.is_object() => DeleteOptions::from_body(options)?,
        _ => DeleteOptions::default(),
    };
    registry.delete(resource, namespace, name, &options).await?;
    Ok(json_response(StatusCode::CREATED, &success_status(201, json!({}))))
}

/// `PUT namespaces/<name>/finalize`: replaces `spec.finalizers`; a
/// terminating namespace with none left is deleted.
pub async fn finalize(
    registry: &Registry,
    resource: &'static Resource,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let sent = decode_body(headers, body)?;
    let finalizers = sent["spec"]["finalizers"].clone();
    let options = write_options(query, headers)?;
    let outcome = registry
        .update_with(resource, "", name, None, &options, |current| {
            let mut next = current.clone();
            next["spec"]["finalizers"] = if finalizers.is_null() { json!([]) } else { finalizers.clone() };
            Ok(next)
        })
        .await?;
    Ok(object_response(StatusCode::OK, &outcome.object, Format::Json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_views_show_replicas_and_selector() {
        let deploy = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "9", "labels": {"a": "b"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}},
            "status": {"replicas": 2}});
        let scale = to_scale(&deploy);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web,tier in (fe,be)");
        assert_eq!(scale["metadata"]["resourceVersion"], "9");
        assert!(scale["metadata"].get("labels").is_none());
    }

    #[test]
    fn binding_sets_the_node_the_annotations_and_pod_scheduled() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
        });
        let bound = bound_to(&pod, "n1", &json!({"example.com/by": "test"}));
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert_eq!(bound["metadata"]["annotations"]["example.com/by"], "test");
        let conditions = bound["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["status"], "True");
        assert!(conditions[0].get("reason").is_none());
    }
}
