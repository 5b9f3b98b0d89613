//! What the server owns in an object, per resource: metadata it sets, the
//! status/spec split, `generation`. Kubernetes' RESTCreateStrategy and
//! RESTUpdateStrategy, as plain functions over JSON.

use serde_json::{Map, Value, json};

use crate::object;
use crate::resources::Resource;

/// Metadata fields only the server writes; an update keeps the old values.
const SERVER_METADATA: &[&str] =
    &["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink"];

/// Resources whose spec changes bump `metadata.generation`.
fn tracks_generation(resource: &Resource) -> bool {
    resource.has_status() && !matches!(resource.plural, "namespaces" | "nodes")
}

/// Fills what the server sets on a new object.
pub fn prepare_for_create(resource: &Resource, object: &mut Value) {
    let meta = object::metadata_mut(object);
    meta.insert("uid".into(), json!(object::new_uid()));
    meta.insert("creationTimestamp".into(), json!(object::now()));
    for field in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"] {
        meta.remove(field);
    }
    if tracks_generation(resource) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    let Some(map) = object.as_object_mut() else { return };
    match resource.plural {
        // A new pod is pending until a node agent says otherwise.
        "pods" => {
            map.insert("status".into(), json!({"phase": "Pending", "qosClass": qos_class(map.get("spec"))}));
        }
        "namespaces" => {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        // The node agent registers a node with its status.
        "nodes" => {}
        _ if resource.has_status() => {
            map.remove("status");
        }
        _ => {}
    }
}

/// Carries the server's fields from `old` into an update of the main
/// resource, where status is not the client's to change.
pub fn prepare_for_update(resource: &Resource, new: &mut Value, old: &Value) {
    keep_server_metadata(new, old);
    if resource.has_status()
        && let Some(map) = new.as_object_mut()
    {
        match old.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    bump_generation(resource, new, old);
}

/// An update through `/status`: only status changes; the rest is `old`.
pub fn prepare_for_status_update(new: &mut Value, old: &Value) {
    let status = new.get("status").cloned();
    let resource_version = object::meta_str(new, "resourceVersion").to_string();
    *new = old.clone();
    if let Some(map) = new.as_object_mut() {
        match status {
            Some(status) => map.insert("status".into(), status),
            None => map.remove("status"),
        };
    }
    if !resource_version.is_empty() {
        object::metadata_mut(new).insert("resourceVersion".into(), json!(resource_version));
    }
}

fn keep_server_metadata(new: &mut Value, old: &Value) {
    let old_meta = object::metadata(old).cloned().unwrap_or_default();
    let meta = object::metadata_mut(new);
    for field in SERVER_METADATA {
        match old_meta.get(*field) {
            Some(value) => meta.insert((*field).to_string(), value.clone()),
            None => meta.remove(*field),
        };
    }
}

fn bump_generation(resource: &Resource, new: &mut Value, old: &Value) {
    if !tracks_generation(resource) {
        return;
    }
    let spec_changed = new.get("spec") != old.get("spec");
    let generation = object::metadata(old).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(1);
    let next = if spec_changed { generation + 1 } else { generation };
    object::metadata_mut(new).insert("generation".into(), json!(next));
}

/// Kubernetes' QoS class from the containers' requests and limits.
fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Map<String, Value>> = ["containers", "initContainers"]
        .iter()
        .filter_map(|list| spec.and_then(|s| s.get(*list)).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let mut any_set = false;
    let mut all_guaranteed = true;
    for container in &containers {
        let resources = container.get("resources");
        let requests = resources.and_then(|r| r.get("requests")).and_then(Value::as_object);
        let limits = resources.and_then(|r| r.get("limits")).and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any_set = true;
        }
        for name in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(name));
            let request = requests.and_then(|r| r.get(name)).or(limit);
            if limit.is_none() || request != limit {
                all_guaranteed = false;
            }
        }
    }
    match (any_set, all_guaranteed && !containers.is_empty()) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    fn find(group: &str, plural: &str) -> &'static Resource {
        resources::find(group, "v1", plural).expect("resource")
    }

    #[test]
    fn create_sets_server_fields_and_clears_status() {
        let deploy = find("apps", "deployments");
        let mut object = json!({"metadata": {"name": "w", "uid": "mine", "resourceVersion": "7"},
            "spec": {"replicas": 1}, "status": {"replicas": 9}});
        prepare_for_create(deploy, &mut object);
        assert_ne!(object["metadata"]["uid"], "mine");
        assert_eq!(object["metadata"]["generation"], 1);
        assert!(object["metadata"].get("resourceVersion").is_none());
        assert!(object.get("status").is_none());

        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        prepare_for_create(find("", "pods"), &mut pod);
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "Guaranteed"}));
    }

    #[test]
    fn spec_changes_bump_generation_and_status_is_kept() {
        let deploy = find("apps", "deployments");
        let old = json!({"metadata": {"name": "w", "uid": "u1", "generation": 3}, "spec": {"replicas": 1},
            "status": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "w", "uid": "forged"}, "spec": {"replicas": 2},
            "status": {"replicas": 5}});
        prepare_for_update(deploy, &mut new, &old);
        assert_eq!(new["metadata"]["uid"], "u1");
        assert_eq!(new["metadata"]["generation"], 4);
        assert_eq!(new["status"], json!({"replicas": 1}));

        let mut same = json!({"metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        prepare_for_update(deploy, &mut same, &old);
        assert_eq!(same["metadata"]["generation"], 3);
    }

    #[test]
    fn status_updates_change_only_status() {
        let old = json!({"metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "w", "resourceVersion": "5"}, "spec": {"replicas": 9},
            "status": {"readyReplicas": 1}});
        prepare_for_status_update(&mut new, &old);
        assert_eq!(new["spec"]["replicas"], 1);
        assert_eq!(new["metadata"]["labels"]["a"], "b");
        assert_eq!(new["metadata"]["resourceVersion"], "5");
        assert_eq!(new["status"]["readyReplicas"], 1);
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(Some(&json!({"containers": [{"name": "c"}]}))), "BestEffort");
        let burstable = json!({"containers": [{"resources": {"requests": {"cpu": "100m"}}}]});
        assert_eq!(qos_class(Some(&burstable)), "Burstable");
    }
}
