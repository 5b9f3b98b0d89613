//! Small readers and writers of object metadata on JSON objects.

use std::time::SystemTime;

use rand::Rng;
use serde_json::{Map, Value, json};

/// Characters Kubernetes uses for generated name suffixes: no vowels, no
/// look-alike digits, so no words and no confusion.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const SUFFIX_LEN: usize = 5;

pub fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata").and_then(Value::as_object)
}

/// The metadata map, created when missing or not an object.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let meta = ensure_object(object).entry("metadata").or_insert_with(|| json!({}));
    ensure_object(meta)
}

/// The value as a map, replacing it with `{}` when it is not one.
pub fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("replaced by an object above"),
    }
}

pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    metadata(object).and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("")
}

pub fn name(object: &Value) -> &str {
    meta_str(object, "name")
}

pub fn namespace(object: &Value) -> &str {
    meta_str(object, "namespace")
}

pub fn labels(object: &Value) -> Map<String, Value> {
    metadata(object).and_then(|m| m.get("labels")).and_then(Value::as_object).cloned().unwrap_or_default()
}

pub fn finalizers(object: &Value) -> Vec<String> {
    metadata(object)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Finalizers keep an object being deleted; a namespace also has its own
/// (`spec.finalizers`), removed through `/finalize`.
pub fn is_held(object: &Value) -> bool {
    !finalizers(object).is_empty() || object["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
}

/// An object being deleted that nothing holds any more and whose grace
/// period is over: an update leaving it so removes it (Kubernetes' rule; a
/// pod in its grace period stays until its node agent deletes it).
pub fn is_done_deleting(object: &Value) -> bool {
    let grace = metadata(object).and_then(|m| m.get("deletionGracePeriodSeconds")).and_then(Value::as_i64);
    is_deleting(object) && !is_held(object) && grace.unwrap_or(0) == 0
}

pub fn is_deleting(object: &Value) -> bool {
    metadata(object).and_then(|m| m.get("deletionTimestamp")).is_some_and(|t| !t.is_null())
}

/// Sets `metadata.resourceVersion`, which the store keeps outside the object.
pub fn set_resource_version(object: &mut Value, revision: i64) {
    metadata_mut(object).insert("resourceVersion".into(), Value::String(revision.to_string()));
}

/// RFC 3339 at second precision, as Kubernetes writes timestamps.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

pub fn now() -> String {
    timestamp(SystemTime::now())
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `generateName` plus five random characters.
pub fn generated_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String =
        (0..SUFFIX_LEN).map(|_| char::from(SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())])).collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_have_the_kubernetes_suffix() {
        let name = generated_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name[4..].bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
    }

    #[test]
    fn metadata_is_created_on_demand() {
        let mut object = json!({"kind": "ConfigMap", "metadata": 3});
        set_resource_version(&mut object, 42);
        assert_eq!(object["metadata"]["resourceVersion"], "42");
        assert_eq!(name(&object), "");
        assert!(!is_deleting(&object));
    }

    #[test]
    fn only_unheld_deletions_past_their_grace_are_done() {
        let at = "2026-01-01T00:00:00Z";
        let graceful = json!({"metadata": {"deletionTimestamp": at, "deletionGracePeriodSeconds": 30}});
        assert!(!is_done_deleting(&graceful));
        let over = json!({"metadata": {"deletionTimestamp": at, "deletionGracePeriodSeconds": 0}});
        assert!(is_done_deleting(&over));
        let held = json!({"metadata": {"deletionTimestamp": at, "finalizers": ["x/y"]}});
        assert!(!is_done_deleting(&held));
        assert!(!is_done_deleting(&json!({"metadata": {}})));
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(at), "2023-11-14T22:13:20Z");
    }
}
