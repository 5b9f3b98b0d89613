//! Kubernetes' strategic merge patch over JSON. Maps merge; lists follow the
//! strategy Kubernetes' Go types declare for them (`patchStrategy:"merge"`
//! with a `patchMergeKey`, sets of primitives, `retainKeys`), everything
//! else is replaced. Directives: `$patch` (replace, merge, delete),
//! `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`,
//! `$retainKeys`.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmpError {
    #[error("invalid patch: unknown $patch directive {0:?}: expected replace, merge or delete")]
    UnknownDirective(String),
    #[error("invalid patch: element of the list {field} has no merge key {key}: {element}")]
    MissingMergeKey { field: String, key: String, element: String },
    #[error("invalid patch: {field}: {message}")]
    WrongType { field: String, message: String },
}

/// The types a patch walks through; they decide each list's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A kind (or a nested type) whose lists have known strategies.
    Type(Ty),
    /// Unknown: maps merge, lists are replaced.
    Untyped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Root,
    ObjectMeta,
    PodSpec,
    PodStatus,
    Container,
    Volume,
    PodTemplate,
    WorkloadSpec,
    DeploymentStrategy,
    CronJobSpec,
    JobTemplate,
    ServiceSpec,
    NodeStatus,
    WithConditions,
    ServiceAccount,
}

/// How one field's value merges.
#[derive(Debug, Clone, Copy)]
enum Field {
    Nested(Ty),
    /// Elements matched by a key and merged; the element type.
    MergeList(&'static str, Schema),
    /// A set of primitives.
    PrimitiveSet,
    Plain,
}

pub fn schema_for(group: &str, kind: &str) -> Schema {
    match (group, kind) {
        ("", "Pod" | "Node" | "Service" | "ServiceAccount" | "Namespace" | "ConfigMap" | "Secret" | "Endpoints")
        | ("", "Event")
        | ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet")
        | ("batch", "Job" | "CronJob")
        | ("coordination.k8s.io", _)
        | ("discovery.k8s.io", _)
        | ("rbac.authorization.k8s.io", _)
        | ("autoscaling", "Scale") => Schema::Type(Ty::Root),
        _ => Schema::Untyped,
    }
}

/// The strategy of `field` inside a value of type `ty` (of a kind, for
/// the root's `spec` and `status`).
fn field(ty: Ty, kind_spec: Ty, kind_status: Ty, name: &str) -> Field {
    use Field::{MergeList, Nested, Plain, PrimitiveSet};
    let typed = |t| Schema::Type(t);
    match (ty, name) {
        (Ty::Root, "metadata") => Nested(Ty::ObjectMeta),
        (Ty::Root, "spec") => Nested(kind_spec),
        (Ty::Root, "status") => Nested(kind_status),
        (Ty::Root, "secrets") if kind_spec == Ty::ServiceAccount => MergeList("name", Schema::Untyped),
        (Ty::Root, "imagePullSecrets") => MergeList("name", Schema::Untyped),
        (Ty::ObjectMeta, "finalizers") => PrimitiveSet,
        (Ty::ObjectMeta, "ownerReferences") => MergeList("uid", Schema::Untyped),
        (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            MergeList("name", typed(Ty::Container))
        }
        (Ty::PodSpec, "volumes") => MergeList("name", typed(Ty::Volume)),
        (Ty::PodSpec, "imagePullSecrets") => MergeList("name", Schema::Untyped),
        (Ty::PodSpec, "hostAliases") => MergeList("ip", Schema::Untyped),
        (Ty::Container, "ports") => MergeList("containerPort", Schema::Untyped),
        (Ty::Container, "env") => MergeList("name", Schema::Untyped),
        (Ty::Container, "volumeMounts") => MergeList("mountPath", Schema::Untyped),
        (Ty::Container, "volumeDevices") => MergeList("devicePath", Schema::Untyped),
        (Ty::PodStatus | Ty::NodeStatus | Ty::WithConditions, "conditions") => MergeList("type", Schema::Untyped),
        (Ty::PodStatus, "podIPs") => MergeList("ip", Schema::Untyped),
        (Ty::NodeStatus, "addresses") => MergeList("type", Schema::Untyped),
        (Ty::WorkloadSpec | Ty::JobTemplate, "template") => Nested(Ty::PodTemplate),
        (Ty::WorkloadSpec, "strategy") => Nested(Ty::DeploymentStrategy),
        (Ty::PodTemplate, "metadata") | (Ty::JobTemplate, "metadata") => Nested(Ty::ObjectMeta),
        (Ty::PodTemplate, "spec") => Nested(Ty::PodSpec),
        (Ty::CronJobSpec, "jobTemplate") => Nested(Ty::JobTemplate),
        (Ty::JobTemplate, "spec") => Nested(Ty::WorkloadSpec),
        (Ty::ServiceSpec, "ports") => MergeList("port", Schema::Untyped),
        _ => Plain,
    }
}

/// The types of `spec` and `status` for a kind, read from its `kind` field.
fn kind_types(object: &Value) -> (Ty, Ty) {
    kind_types_named(object["kind"].as_str().unwrap_or(""))
}

fn kind_types_named(kind: &str) -> (Ty, Ty) {
    match kind {
        "Pod" => (Ty::PodSpec, Ty::PodStatus),
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" => (Ty::WorkloadSpec, Ty::WithConditions),
        "CronJob" => (Ty::CronJobSpec, Ty::WithConditions),
        "Service" => (Ty::ServiceSpec, Ty::WithConditions),
        "Node" => (Ty::Root, Ty::NodeStatus),
        "ServiceAccount" => (Ty::ServiceAccount, Ty::WithConditions),
        _ => (Ty::Root, Ty::WithConditions),
    }
}

/// How field ownership (managedFields) tells the parts of a value apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A map or struct: each field is owned on its own; the fields' schema.
    Map(Schema),
    /// A list whose elements are told apart by a key; the elements' schema.
    Keyed(&'static str, Schema),
    /// A set of primitives: each value is owned on its own.
    Set,
    /// Owned whole: scalars, empty maps, lists replaced as a whole.
    Atomic,
}

/// The field shapes of one kind, by the same declarations the strategic
/// merge follows.
pub struct KindShapes(Walker);

impl KindShapes {
    pub fn of(kind: &str) -> Self {
        let (spec, status) = kind_types_named(kind);
        KindShapes(Walker { spec, status })
    }

    /// The shape of `value`, found at `name` inside a value of `schema`.
    pub fn shape(&self, schema: Schema, name: &str, value: &Value) -> Shape {
        match (self.0.field(schema, name), value) {
            (Field::MergeList(key, element), Value::Array(_)) => Shape::Keyed(key, element),
            (Field::PrimitiveSet, Value::Array(_)) => Shape::Set,
            (Field::Nested(ty), Value::Object(map)) if !map.is_empty() => Shape::Map(Schema::Type(ty)),
            (_, Value::Object(map)) if !map.is_empty() => Shape::Map(Schema::Untyped),
            _ => Shape::Atomic,
        }
    }
}

/// Applies `patch` to `original`.
pub fn apply(original: &Value, patch: &Value, schema: &Schema) -> Result<Value, SmpError> {
    let kind = if original["kind"].is_string() { original } else { patch };
    let (spec, status) = kind_types(kind);
    let walker = Walker { spec, status };
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) => {
            Ok(walker.merge_map(o, p, *schema, "")?.map(Value::Object).unwrap_or(Value::Object(Map::new())))
        }
        _ => Ok(strip(patch)),
    }
}

struct Walker {
    spec: Ty,
    status: Ty,
}

impl Walker {
    fn field(&self, schema: Schema, name: &str) -> Field {
        match schema {
            Schema::Type(ty) => field(ty, self.spec, self.status, name),
            Schema::Untyped => Field::Plain,
        }
    }

    fn child(&self, schema: Schema, name: &str) -> Schema {
        match self.field(schema, name) {
            Field::Nested(ty) => Schema::Type(ty),
            _ => Schema::Untyped,
        }
    }

    /// The merged map, or None when the patch says `$patch: delete`.
    fn merge_map(
        &self,
        original: &Map<String, Value>,
        patch: &Map<String, Value>,
        schema: Schema,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, SmpError> {
        match patch.get("$patch").map(|d| d.as_str().unwrap_or("")) {
            None | Some("merge") => {}
            Some("replace") => return Ok(Some(strip_map(patch))),
            Some("delete") => return Ok(None),
            Some(other) => return Err(SmpError::UnknownDirective(other.to_string())),
        }
        let mut result = original.clone();
        let mut orders = Vec::new();
        let mut removals = Vec::new();
        for (key, value) in patch {
            if let Some(list) = key.strip_prefix("$setElementOrder/") {
                orders.push((list.to_string(), value));
                continue;
            }
            if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
                removals.push((list.to_string(), value));
                continue;
            }
            if key == "$patch" || key == "$retainKeys" {
                continue;
            }
            let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if value.is_null() {
                result.remove(key);
                continue;
            }
            let merged = match (original.get(key), value) {
                (current, Value::Object(p)) => {
                    let empty = Map::new();
                    let current = current.and_then(Value::as_object).unwrap_or(&empty);
                    self.merge_map(current, p, self.child(schema, key), &here)?.map(Value::Object)
                }
                (current, Value::Array(p)) => {
                    let empty = Vec::new();
                    let current = current.and_then(Value::as_array).unwrap_or(&empty);
                    Some(Value::Array(self.merge_list(current, p, self.field(schema, key), &here)?))
                }
                (_, other) => Some(other.clone()),
            };
            match merged {
                Some(value) => result.insert(key.clone(), value),
                None => result.remove(key),
            };
        }
        for (list, values) in removals {
            let gone: Vec<&Value> = values.as_array().map(|v| v.iter().collect()).unwrap_or_default();
            if let Some(Value::Array(items)) = result.get_mut(&list) {
                items.retain(|item| !gone.contains(&item));
            }
        }
        for (list, order) in orders {
            let key = match self.field(schema, &list) {
                Field::MergeList(key, _) => Some(key),
                _ => None,
            };
            if let (Some(Value::Array(items)), Some(order)) = (result.get_mut(&list), order.as_array()) {
                reorder(items, order, key);
            }
        }
        if let Some(retained) = patch.get("$retainKeys").and_then(Value::as_array) {
            let keep: Vec<&str> = retained.iter().filter_map(Value::as_str).collect();
            result.retain(|k, _| keep.contains(&k.as_str()));
        }
        Ok(Some(result))
    }

    fn merge_list(
        &self,
        original: &[Value],
        patch: &[Value],
        field: Field,
        path: &str,
    ) -> Result<Vec<Value>, SmpError> {
        match field {
            Field::PrimitiveSet => {
                let mut result = original.to_vec();
                for item in patch {
                    if !result.contains(item) {
                        result.push(item.clone());
                    }
                }
                Ok(result)
            }
            Field::MergeList(key, element) => {
                if patch.iter().any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace")) {
                    return Ok(patch.iter().filter(|p| p.get("$patch").is_none()).map(strip).collect());
                }
                let mut result = original.to_vec();
                for item in patch {
                    let Some(item_map) = item.as_object() else {
                        return Err(SmpError::WrongType {
                            field: path.to_string(),
                            message: format!("expected an object in a list merged by {key}, got {item}"),
                        });
                    };
                    let id = item_map.get(key).ok_or_else(|| SmpError::MissingMergeKey {
                        field: path.to_string(),
                        key: key.to_string(),
                        element: item.to_string(),
                    })?;
                    let position = result.iter().position(|o| o.get(key) == Some(id));
                    if item_map.get("$patch").and_then(Value::as_str) == Some("delete") {
                        result.retain(|o| o.get(key) != Some(id));
                        continue;
                    }
                    let current = position.and_then(|i| result[i].as_object()).cloned().unwrap_or_default();
                    let merged = self.merge_map(&current, item_map, element, path)?;
                    match (position, merged) {
                        (Some(i), Some(m)) => result[i] = Value::Object(m),
                        (Some(i), None) => {
                            result.remove(i);
                        }
                        (None, Some(m)) => result.push(Value::Object(m)),
                        (None, None) => {}
                    }
                }
                Ok(result)
            }
            Field::Nested(_) | Field::Plain => Ok(patch.iter().map(strip).collect()),
        }
    }
}

/// Orders a merged list by `$setElementOrder`: the listed elements in that
/// order, then the others (present only on the server) as they were.
fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| match key {
        Some(key) => v.get(key).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    };
    let mut ordered = Vec::with_capacity(items.len());
    for wanted in order {
        let wanted = id(wanted);
        if let Some(i) = items.iter().position(|item| id(item) == wanted) {
            ordered.push(items.remove(i));
        }
    }
    ordered.append(items);
    *items = ordered;
}

/// A patch value with every directive removed, for values the original
/// does not have.
fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(strip_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

fn strip_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter().filter(|(k, v)| !k.starts_with('$') && !v.is_null()).map(|(k, v)| (k.clone(), strip(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["a"]},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "busybox"}]}}}})
    }

    fn patch(original: &Value, patch: Value) -> Value {
        apply(original, &patch, &schema_for("apps", "Deployment")).expect("patched")
    }

    #[test]
    fn kubectl_apply_with_set_element_order() {
        let patched = patch(
            &deployment(),
            json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
            "containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}}),
        );
        let containers = &patched["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "sidecar");
        assert_eq!(containers[1]["image"], "nginx:1.26");
        assert_eq!(containers[1]["ports"][0]["containerPort"], 80, "unpatched fields stay");
    }

    #[test]
    fn merge_lists_add_merge_and_delete_by_key() {
        let patched = patch(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}]},
            {"name": "extra", "image": "x"}]}}}}),
        );
        let containers = &patched["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(3));
        assert_eq!(containers[0]["env"], json!([{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]));
        let replaced = patch(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "only", "image": "y"}]}}}}),
        );
        assert_eq!(replaced["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "y"}]));
    }

    #[test]
    fn primitive_sets_and_deletions() {
        let patched = patch(&deployment(), json!({"metadata": {"finalizers": ["b", "a"]}}));
        assert_eq!(patched["metadata"]["finalizers"], json!(["a", "b"]));
        let removed = patch(&patched, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}));
        assert_eq!(removed["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn retain_keys_and_nulls() {
        let patched = patch(
            &deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
            "rollingUpdate": null}}}),
        );
        assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
        let node = json!({"kind": "Node", "spec": {"unschedulable": true, "taints": [{"key": "a"}]}});
        let uncordoned = apply(&node, &json!({"spec": {"unschedulable": null}}), &schema_for("", "Node")).expect("ok");
        assert_eq!(uncordoned["spec"], json!({"taints": [{"key": "a"}]}));
        let tainted = apply(&node, &json!({"spec": {"taints": [{"key": "b"}]}}), &schema_for("", "Node")).expect("ok");
        assert_eq!(tainted["spec"]["taints"], json!([{"key": "b"}]), "taints are replaced");
    }

    #[test]
    fn unknown_kinds_merge_maps_and_replace_lists() {
        let original = json!({"spec": {"items": [1, 2], "a": {"b": 1}}});
        let patched = apply(&original, &json!({"spec": {"items": [3], "a": {"c": 2}}}), &schema_for("x.io", "Widget"))
            .expect("ok");
        assert_eq!(patched, json!({"spec": {"items": [3], "a": {"b": 1, "c": 2}}}));
    }

    #[test]
    fn bad_patches_are_errors() {
        let missing_key = apply(
            &deployment(),
            &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            &schema_for("apps", "Deployment"),
        );
        assert!(matches!(missing_key, Err(SmpError::MissingMergeKey { .. })));
        let bad_directive =
            apply(&deployment(), &json!({"spec": {"$patch": "explode"}}), &schema_for("apps", "Deployment"));
        assert!(matches!(bad_directive, Err(SmpError::UnknownDirective(_))));
        let deleted = patch(&deployment(), json!({"spec": {"strategy": {"$patch": "delete"}}}));
        assert!(deleted["spec"].get("strategy").is_none());
    }

    #[test]
    fn pod_status_conditions_merge_by_type() {
        let pod = json!({"kind": "Pod", "status": {"conditions": [{"type": "Ready", "status": "False"},
            {"type": "Initialized", "status": "True"}]}});
        let patched = apply(
            &pod,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            &schema_for("", "Pod"),
        )
        .expect("ok");
        assert_eq!(patched["status"]["conditions"][0], json!({"type": "Ready", "status": "True"}));
        assert_eq!(patched["status"]["conditions"].as_array().map(Vec::len), Some(2));
    }
}
