//! Field ownership, kept in `metadata.managedFields` as server-side apply
//! defines it: which manager set which fields, a conflict when an applier
//! would change a field another manager set, and removal of the fields an
//! applier stops setting.
//!
//! Ownership is a set of paths. A path ends at a value owned whole (a
//! scalar, an empty map, a list replaced whole), at one value of a set, or
//! at an element of a keyed list (the element itself; its fields are paths
//! of their own).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause};
use crate::object;
use crate::resources::Resource;
use crate::strategic::{self, KindShapes, Schema, Shape};

/// One step into an object, as FieldsV1 spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// `f:<name>`: a field of a map.
    Field(String),
    /// `k:<json>`: the element of a keyed list with this key.
    Key(String),
    /// `v:<json>`: a value of a set.
    Value(String),
}

type Path = Vec<Step>;
type FieldSet = BTreeSet<Path>;

/// Metadata fields a client sets; the rest of metadata is the server's.
const OWNED_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: &'static str,
    api_version: String,
    subresource: String,
    time: String,
    fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// How Kubernetes names a manager in a conflict message.
    fn describe(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            text.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            text.push_str(&format!(" using {}", self.api_version));
        }
        text
    }
}

/// Which part of an object a write may change: the main resource leaves
/// `status` alone, the `status` subresource changes only `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Main,
    Status,
}

/// Field ownership for writes to one resource (or its subresource).
pub struct Ownership {
    shapes: KindShapes,
    root: Schema,
    part: Part,
    api_version: String,
    subresource: String,
}

impl Ownership {
    pub fn new(resource: &Resource, subresource: &str) -> Self {
        Ownership {
            shapes: KindShapes::of(resource.kind),
            root: strategic::schema_for(resource.group, resource.kind),
            part: if subresource == "status" { Part::Status } else { Part::Main },
            api_version: resource.api_version(),
            subresource: subresource.to_string(),
        }
    }

    /// Records an update by `manager` that turned `old` (None for a create)
    /// into `new`: the manager takes the fields it added or changed, and
    /// every other manager loses them. Entries the client sent are the
    /// starting point when they differ from the stored ones.
    pub fn record_update(&self, manager: &str, old: Option<&Value>, new: &mut Value) {
        let mut entries = match old {
            Some(old) if !sent_entries(new, old) => decode(old),
            _ => decode(new),
        };
        let nothing = Value::Null;
        let old = old.unwrap_or(&nothing);
        let before = self.fields(old);
        let after = self.fields(new);
        let changed: FieldSet =
            after.iter().filter(|p| !before.contains(*p) || leaf_changed(p, old, new)).cloned().collect();
        let removed: FieldSet = before.difference(&after).cloned().collect();
        for entry in entries.iter_mut().filter(|e| !e.is(manager, "Update", &self.subresource)) {
            entry.fields.retain(|p| !changed.contains(p) && !removed.contains(p));
        }
        if !manager.is_empty() {
            let entry = self.entry_of(&mut entries, manager, "Update");
            entry.fields.extend(changed);
            entry.fields.retain(|p| !removed.contains(p));
        }
        write(new, entries);
    }

    /// Server-side apply of `applied` by `manager`, where `merged` is the
    /// live object (None for a create) with `applied` merged in. Refuses
    /// to change a field another manager set unless `force`, which takes
    /// it over. Removes from `merged` the fields this manager applied last
    /// time and no longer does, when no other manager has them. Returns
    /// the entries to record once the object is final.
    pub fn apply(
        &self,
        manager: &str,
        applied: &Value,
        live: Option<&Value>,
        merged: &mut Value,
        force: bool,
    ) -> Result<ManagedFields, ApiError> {
        let mut entries = live.map(decode).unwrap_or_default();
        let nothing = Value::Null;
        let live = live.unwrap_or(&nothing);
        let wanted = self.fields(applied);
        let mut conflicts: Vec<(usize, Path)> = Vec::new();
        for path in wanted.iter().filter(|p| leaf_changed(p, live, merged)) {
            for (index, entry) in entries.iter().enumerate() {
                if !entry.is(manager, "Apply", &self.subresource) && entry.fields.contains(path) {
                    conflicts.push((index, path.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let handed_over = self.last_applied_fields(manager, live);
            let refused: Vec<(usize, Path)> =
                conflicts.iter().filter(|(_, path)| !handed_over.contains(path)).cloned().collect();
            if !refused.is_empty() {
                return Err(conflict_error(&entries, &refused));
            }
        }
        for (index, path) in &conflicts {
            entries[*index].fields.remove(path);
        }
        let previous = entries.iter().find(|e| e.is(manager, "Apply", &self.subresource)).map(|e| e.fields.clone());
        for path in previous.unwrap_or_default().difference(&wanted) {
            let others_have_it = entries
                .iter()
                .filter(|e| !e.is(manager, "Apply", &self.subresource))
                .any(|e| e.fields.iter().any(|owned| owned.starts_with(path)));
            if !others_have_it {
                remove_at(merged, path);
            }
        }
        self.entry_of(&mut entries, manager, "Apply").fields = wanted;
        if manager == KUBECTL && live["metadata"]["annotations"].get(LAST_APPLIED).is_some() {
            keep_last_applied_in_step(applied, merged);
        }
        Ok(ManagedFields(entries))
    }

    /// The fields kubectl's client-side apply last set, which kubectl's
    /// server-side apply may take over without a conflict: that is how
    /// Kubernetes lets `kubectl apply --server-side` follow a client-side
    /// `kubectl apply`. Other managers get nothing here.
    fn last_applied_fields(&self, manager: &str, live: &Value) -> FieldSet {
        let text = live["metadata"]["annotations"][LAST_APPLIED].as_str();
        match (manager, text.and_then(|t| serde_json::from_str::<Value>(t).ok())) {
            (KUBECTL, Some(last_applied)) => self.fields(&last_applied),
            _ => FieldSet::new(),
        }
    }

    /// The manager's entry, stamped now; a new one when it has none.
    fn entry_of<'a>(&self, entries: &'a mut Vec<Entry>, manager: &str, operation: &'static str) -> &'a mut Entry {
        let index = match entries.iter().position(|e| e.is(manager, operation, &self.subresource)) {
            Some(index) => index,
            None => {
                entries.push(Entry {
                    manager: manager.to_string(),
                    operation,
                    api_version: String::new(),
                    subresource: self.subresource.clone(),
                    time: String::new(),
                    fields: FieldSet::new(),
                });
                entries.len() - 1
            }
        };
        let entry = &mut entries[index];
        entry.api_version = self.api_version.clone();
        entry.time = object::now();
        entry
    }

    /// The fields `object` sets in the part this write may change.
    fn fields(&self, object: &Value) -> FieldSet {
        let mut set = FieldSet::new();
        let Some(map) = object.as_object() else { return set };
        let mut path = Path::new();
        for (name, value) in map {
            let owned = match name.as_str() {
                "apiVersion" | "kind" => false,
                "status" => self.part == Part::Status,
                _ => self.part == Part::Main,
            };
            if !owned {
                continue;
            }
            let shape = self.shapes.shape(self.root, name, value);
            path.push(Step::Field(name.clone()));
            if name == "metadata" {
                self.collect_metadata(value, shape, &mut path, &mut set);
            } else {
                self.collect(value, shape, &mut path, &mut set);
            }
            path.pop();
        }
        set
    }

    fn collect_metadata(&self, metadata: &Value, shape: Shape, path: &mut Path, set: &mut FieldSet) {
        let (Shape::Map(schema), Some(map)) = (shape, metadata.as_object()) else { return };
        for name in OWNED_METADATA {
            if let Some(value) = map.get(*name) {
                path.push(Step::Field(name.to_string()));
                self.collect(value, self.shapes.shape(schema, name, value), path, set);
                path.pop();
            }
        }
    }

    fn collect(&self, value: &Value, shape: Shape, path: &mut Path, set: &mut FieldSet) {
        match (shape, value) {
            (Shape::Map(schema), Value::Object(map)) => {
                for (name, child) in map {
                    path.push(Step::Field(name.clone()));
                    self.collect(child, self.shapes.shape(schema, name, child), path, set);
                    path.pop();
                }
            }
            (Shape::Keyed(key, schema), Value::Array(items)) if items.iter().all(|i| i.get(key).is_some()) => {
                for item in items {
                    path.push(Step::Key(list_map_key(key, item).to_string()));
                    set.insert(path.clone());
                    self.collect(item, Shape::Map(schema), path, set);
                    path.pop();
                }
            }
            (Shape::Set, Value::Array(items)) => {
                for item in items {
                    path.push(Step::Value(item.to_string()));
                    set.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                set.insert(path.clone());
            }
        }
    }
}

/// The manager `kubectl apply --server-side` uses.
const KUBECTL: &str = "kubectl";
/// Where kubectl's client-side apply keeps the configuration it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// kubectl's server-side apply rewrites client-side apply's annotation, so
/// a later client-side apply starts from what was applied last.
fn keep_last_applied_in_step(applied: &Value, merged: &mut Value) {
    let mut config = applied.clone();
    if let Some(annotations) = config["metadata"].get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            object::metadata_mut(&mut config).remove("annotations");
        }
    }
    let meta = object::metadata_mut(merged);
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.insert(LAST_APPLIED.into(), json!(config.to_string()));
    }
}

/// Entries computed by an apply, written once the object is final.
pub struct ManagedFields(Vec<Entry>);

impl ManagedFields {
    pub fn write_to(self, object: &mut Value) {
        write(object, self.0);
    }
}

/// The client sent entries of its own (kubectl does, to hand client-side
/// apply's fields over to server-side apply).
fn sent_entries(new: &Value, old: &Value) -> bool {
    let sent = &new["metadata"]["managedFields"];
    sent.as_array().is_some_and(|e| !e.is_empty()) && *sent != old["metadata"]["managedFields"]
}

/// A value the path ends at changed (element and set markers only appear
/// or go; the values inside them are paths of their own).
fn leaf_changed(path: &[Step], old: &Value, new: &Value) -> bool {
    matches!(path.last(), Some(Step::Field(_))) && value_at(old, path) != value_at(new, path)
}

fn value_at<'a>(mut value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    for step in path {
        value = match step {
            Step::Field(name) => value.get(name)?,
            Step::Key(key) => {
                let key: Map<String, Value> = serde_json::from_str(key).ok()?;
                value.as_array()?.iter().find(|item| matches_key(item, &key))?
            }
            Step::Value(text) => {
                let wanted: Value = serde_json::from_str(text).ok()?;
                value.as_array()?.iter().find(|item| **item == wanted)?
            }
        };
    }
    Some(value)
}

fn matches_key(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(name, value)| match item.get(name) {
        Some(found) => found == value,
        None => key_default(name).as_ref() == Some(value),
    })
}

/// What tells an element of a keyed list apart in a field set. Ports are
/// keyed by number and protocol, as Kubernetes' schema lists them (strategic
/// merge patch uses the number alone); an unset protocol is TCP.
fn list_map_key(key: &str, item: &Value) -> Value {
    let mut fields = json!({ key: item[key] });
    if matches!(key, "port" | "containerPort") {
        fields[PROTOCOL] = item.get(PROTOCOL).cloned().unwrap_or(json!("TCP"));
    }
    fields
}

const PROTOCOL: &str = "protocol";

/// The value a key field has when the element leaves it out.
fn key_default(name: &str) -> Option<Value> {
    (name == PROTOCOL).then(|| json!("TCP"))
}

/// Removes what `path` leads to. Maps and lists it leaves empty go too,
/// as Kubernetes' types omit empty ones.
fn remove_at(value: &mut Value, path: &[Step]) {
    let Some((first, rest)) = path.split_first() else { return };
    match first {
        Step::Field(name) => {
            let Some(map) = value.as_object_mut() else { return };
            if rest.is_empty() {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                remove_at(child, rest);
                if is_empty_container(child) {
                    map.remove(name);
                }
            }
        }
        Step::Key(key) => {
            let (Ok(key), Some(items)) = (serde_json::from_str::<Map<String, Value>>(key), value.as_array_mut()) else {
                return;
            };
            if rest.is_empty() {
                items.retain(|item| !matches_key(item, &key));
            } else if let Some(element) = items.iter_mut().find(|item| matches_key(item, &key)) {
                remove_at(element, rest);
            }
        }
        Step::Value(text) => {
            if let (Ok(gone), Some(items), true) =
                (serde_json::from_str::<Value>(text), value.as_array_mut(), rest.is_empty())
            {
                items.retain(|item| *item != gone);
            }
        }
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// 409 with one cause per field, worded as Kubernetes words it.
fn conflict_error(entries: &[Entry], conflicts: &[(usize, Path)]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|(index, path)| Cause {
            reason: "FieldManagerConflict".into(),
            field: path_text(path),
            message: format!("conflict with {}", entries[*index].describe()),
        })
        .collect();
    let message = match conflicts {
        [(index, path)] => {
            format!("Apply failed with 1 conflict: conflict with {}: {}", entries[*index].describe(), path_text(path))
        }
        _ => {
            let mut managers: Vec<usize> = conflicts.iter().map(|(index, _)| *index).collect();
            managers.sort_by_key(|index| entries[*index].describe());
            managers.dedup();
            let mut lines = Vec::new();
            for manager in managers {
                lines.push(format!("conflicts with {}:", entries[manager].describe()));
                for (_, path) in conflicts.iter().filter(|(index, _)| *index == manager) {
                    lines.push(format!("- {}", path_text(path)));
                }
            }
            format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
        }
    };
    ApiError::ApplyConflict { message, causes }
}

/// `.spec.containers[name="app"].image`, as Kubernetes prints paths.
fn path_text(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Field(name) => format!(".{name}"),
            Step::Key(key) => {
                let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = key.iter().map(|(name, value)| format!("{name}={value}")).collect();
                format!("[{}]", parts.join(","))
            }
            Step::Value(text) => format!("[={text}]"),
        })
        .collect()
}

fn decode(object: &Value) -> Vec<Entry> {
    let Some(entries) = object["metadata"]["managedFields"].as_array() else { return Vec::new() };
    entries
        .iter()
        .map(|e| {
            let text = |name: &str| e[name].as_str().unwrap_or("").to_string();
            let mut fields = FieldSet::new();
            parse_tree(&e["fieldsV1"], &mut Path::new(), &mut fields);
            Entry {
                manager: text("manager"),
                operation: if e["operation"] == "Apply" { "Apply" } else { "Update" },
                api_version: text("apiVersion"),
                subresource: text("subresource"),
                time: text("time"),
                fields,
            }
        })
        .collect()
}

fn parse_tree(tree: &Value, path: &mut Path, set: &mut FieldSet) {
    let Some(map) = tree.as_object() else { return };
    if map.is_empty() && !path.is_empty() {
        set.insert(path.clone());
    }
    for (name, child) in map {
        if name == "." {
            set.insert(path.clone());
            continue;
        }
        let step = if let Some(field) = name.strip_prefix("f:") {
            Step::Field(field.to_string())
        } else if let Some(key) = name.strip_prefix("k:") {
            Step::Key(key.to_string())
        } else if let Some(value) = name.strip_prefix("v:") {
            Step::Value(value.to_string())
        } else {
            continue;
        };
        path.push(step);
        parse_tree(child, path, set);
        path.pop();
    }
}

/// Writes the entries that own anything, in FieldsV1 form.
fn write(object: &mut Value, entries: Vec<Entry>) {
    let encoded: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut entry = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree(&e.fields),
            });
            if !e.subresource.is_empty() {
                entry["subresource"] = json!(e.subresource);
            }
            entry
        })
        .collect();
    let meta = object::metadata_mut(object);
    if encoded.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(encoded));
    }
}

/// FieldsV1: nested `f:`/`k:`/`v:` keys; `.` marks a node that is owned
/// itself and also has owned children.
fn tree(set: &FieldSet) -> Value {
    fn node<'a>(root: &'a mut Map<String, Value>, path: &[Step]) -> &'a mut Map<String, Value> {
        let mut current = root;
        for step in path {
            let name = match step {
                Step::Field(name) => format!("f:{name}"),
                Step::Key(key) => format!("k:{key}"),
                Step::Value(value) => format!("v:{value}"),
            };
            let child = current.entry(name).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            current = match child {
                Value::Object(map) => map,
                _ => unreachable!("made an object above"),
            };
        }
        current
    }
    let mut root = Map::new();
    for path in set {
        node(&mut root, path);
    }
    for path in set {
        let owned = node(&mut root, path);
        if !owned.is_empty() && !owned.contains_key(".") {
            owned.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    fn configmaps() -> Ownership {
        Ownership::new(resources::find("", "v1", "configmaps").expect("configmaps"), "")
    }

    fn deployments() -> Ownership {
        Ownership::new(resources::find("apps", "v1", "deployments").expect("deployments"), "")
    }

    fn owners(object: &Value) -> Vec<(String, Value)> {
        decode(object).into_iter().map(|e| (e.manager, tree(&e.fields))).collect()
    }

    fn apply(
        ownership: &Ownership,
        manager: &str,
        applied: &Value,
        live: &Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        let mut merged = live.clone();
        for (name, value) in applied["data"].as_object().into_iter().flatten() {
            merged["data"][name] = value.clone();
        }
        let entries = ownership.apply(manager, applied, Some(live), &mut merged, force)?;
        entries.write_to(&mut merged);
        Ok(merged)
    }

    #[test]
    fn keyed_lists_own_each_element_and_its_fields() {
        let mut deploy = json!({"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a:1",
                "args": ["x", "y"]}]}}},
            "status": {"replicas": 2}});
        deployments().record_update("kubectl-create", None, &mut deploy);
        let owned = owners(&deploy);
        assert_eq!(owned.len(), 1);
        assert_eq!(
            owned[0].1,
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:name": {},
                    "f:image": {}, "f:args": {}}}}}}})
        );
        // What was written reads back the same.
        let again = decode(&deploy);
        assert_eq!(tree(&again[0].fields), owned[0].1);
    }

    #[test]
    fn ports_are_told_apart_by_number_and_protocol() {
        let services = Ownership::new(resources::find("", "v1", "services").expect("services"), "");
        let mut dns = json!({"kind": "Service", "metadata": {"name": "dns"},
            "spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}});
        services.record_update("kubectl-create", None, &mut dns);
        let ports = owners(&dns)[0].1["f:spec"]["f:ports"].clone();
        let keys: Vec<&String> = ports.as_object().expect("ports").keys().collect();
        assert_eq!(keys, vec![r#"k:{"port":53,"protocol":"TCP"}"#, r#"k:{"port":53,"protocol":"UDP"}"#]);
        let tcp: Map<String, Value> = serde_json::from_str(&keys[0]["k:".len()..]).expect("key");
        assert!(matches_key(&json!({"port": 53}), &tcp), "an unset protocol is TCP");
        assert!(!matches_key(&json!({"port": 53, "protocol": "UDP"}), &tcp));
    }

    #[test]
    fn an_update_takes_the_fields_it_changes_from_other_managers() {
        let ownership = configmaps();
        let old = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        let mut created = old.clone();
        ownership.record_update("creator", None, &mut created);
        let mut changed = created.clone();
        changed["data"]["x"] = json!("9");
        changed["data"].as_object_mut().expect("data").remove("y");
        ownership.record_update("editor", Some(&created), &mut changed);
        assert_eq!(
            owners(&changed),
            vec![("editor".to_string(), json!({"f:data": {"f:x": {}}}))],
            "the creator owned nothing left"
        );
    }

    #[test]
    fn an_apply_conflicts_on_changed_fields_of_others_and_shares_equal_ones() {
        let ownership = configmaps();
        let mut live = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        ownership.record_update("creator", None, &mut live);

        let changing = json!({"metadata": {"name": "a"}, "data": {"x": "3", "y": "4"}});
        let Err(error) = apply(&ownership, "team", &changing, &live, false) else { panic!("no conflict") };
        assert_eq!(
            error.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"creator\" using v1:\n- .data.x\n- .data.y"
        );
        let status = error.to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["details"]["causes"][0]["reason"], "FieldManagerConflict");
        assert_eq!(status["details"]["causes"][0]["field"], ".data.x");

        let same = json!({"metadata": {"name": "a"}, "data": {"x": "1"}});
        let shared = apply(&ownership, "team", &same, &live, false).expect("equal values do not conflict");
        let owned = owners(&shared);
        assert_eq!(owned.len(), 2);
        assert_eq!(owned[1], ("team".to_string(), json!({"f:data": {"f:x": {}}})));
        assert_eq!(owned[0].1, json!({"f:data": {"f:x": {}, "f:y": {}}}));
    }

    #[test]
    fn a_forced_apply_takes_the_field_over() {
        let ownership = configmaps();
        let mut live = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        ownership.record_update("creator", None, &mut live);
        let changing = json!({"metadata": {"name": "a"}, "data": {"x": "3"}});
        let forced = apply(&ownership, "team", &changing, &live, true).expect("forced");
        assert_eq!(forced["data"]["x"], "3");
        assert_eq!(
            owners(&forced),
            vec![
                ("creator".to_string(), json!({"f:data": {"f:y": {}}})),
                ("team".to_string(), json!({"f:data": {"f:x": {}}})),
            ]
        );
    }

    #[test]
    fn fields_an_applier_drops_go_unless_another_manager_has_them() {
        let ownership = configmaps();
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
        let first = json!({"metadata": {"name": "a", "labels": {"l": "1"}}, "data": {"x": "1", "y": "2"}});
        let mut live = apply(&ownership, "team", &first, &live, false).expect("first");
        live["metadata"]["labels"] = json!({"l": "1"});
        let other = json!({"metadata": {"name": "a"}, "data": {"y": "2"}});
        let live = apply(&ownership, "other", &other, &live, false).expect("shared y");
        let second = json!({"metadata": {"name": "a"}, "data": {"x": "1"}});
        let after = apply(&ownership, "team", &second, &live, false).expect("second");
        assert_eq!(after["data"], json!({"x": "1", "y": "2"}), "y stays: other applies it");
        assert!(after["metadata"].get("labels").is_none(), "the label only team had is gone, and the emptied map");
    }

    #[test]
    fn dropped_list_elements_are_removed() {
        let ownership = deployments();
        let containers = |names: &[&str]| {
            let list: Vec<Value> = names.iter().map(|n| json!({"name": n, "image": "i"})).collect();
            json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": list}}}})
        };
        let live = containers(&["a", "b"]);
        let mut merged = live.clone();
        ownership.apply("team", &live, None, &mut merged, false).expect("create").write_to(&mut merged);
        let live = merged;
        let applied = containers(&["a"]);
        let mut merged = live.clone();
        ownership.apply("team", &applied, Some(&live), &mut merged, false).expect("apply").write_to(&mut merged);
        let names: Vec<&str> = merged["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["a"]);
    }

    #[test]
    fn kubectl_may_hand_entries_over() {
        let ownership = configmaps();
        let mut live = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}});
        ownership.record_update("kubectl-client-side-apply", None, &mut live);
        let mut handed = live.clone();
        handed["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        handed["metadata"]["managedFields"][0]["operation"] = json!("Apply");
        ownership.record_update("kubectl-patch", Some(&live), &mut handed);
        let entries = decode(&handed);
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].manager.as_str(), entries[0].operation), ("kubectl", "Apply"));
    }

    #[test]
    fn kubectl_takes_over_what_its_client_side_apply_set() {
        let ownership = configmaps();
        let last = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":"1"}}"#;
        let mut live = json!({"kind": "ConfigMap", "metadata": {"name": "a",
            "annotations": {LAST_APPLIED: last}}, "data": {"x": "1", "y": "2"}});
        ownership.record_update("kubectl-client-side-apply", None, &mut live);
        let applied = json!({"metadata": {"name": "a"}, "data": {"x": "5"}});
        let taken = apply(&ownership, KUBECTL, &applied, &live, false).expect("x was client-side applied");
        assert_eq!(taken["data"]["x"], "5");
        let annotation: Value =
            serde_json::from_str(taken["metadata"]["annotations"][LAST_APPLIED].as_str().expect("annotation"))
                .expect("json");
        assert_eq!(annotation, applied, "the annotation follows the applied configuration");
        // y was never in the annotation; another manager may not take x either.
        let changing_y = json!({"metadata": {"name": "a"}, "data": {"y": "6"}});
        assert!(apply(&ownership, KUBECTL, &changing_y, &live, false).is_err());
        assert!(apply(&ownership, "other", &applied, &live, false).is_err());
    }

    #[test]
    fn paths_read_like_kubernetes() {
        let path = vec![
            Step::Field("spec".into()),
            Step::Field("containers".into()),
            Step::Key("{\"name\":\"app\"}".into()),
            Step::Field("ports".into()),
            Step::Key("{\"containerPort\":80}".into()),
        ];
        assert_eq!(path_text(&path), ".spec.containers[name=\"app\"].ports[containerPort=80]");
        assert_eq!(path_text(&[Step::Field("finalizers".into()), Step::Value("\"a\"".into())]), ".finalizers[=\"a\"]");
    }
}
