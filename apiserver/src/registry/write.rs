//! Create, update and patch: decode and check, default, let the strategy
//! and admission have their say, validate, then one conditional store write.
//! Updates retry on a lost race unless the client named a resourceVersion.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{MAX_ATTEMPTS, Registry, encode_for_store, parse_resource_version, store_error};
use crate::error::{ApiError, ApiResult, Cause};
use crate::patch::{self, PatchType};
use crate::resources::Resource;
use crate::schema::{self, FieldValidation, Kind};
use crate::storage::Written;
use crate::{admission, defaults, object, strategic, strategy, validation};

/// Query options of a write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub validation: FieldValidation,
}

/// The written object (with its resourceVersion) and what to warn about.
pub struct WriteOutcome {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

impl Registry {
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<WriteOutcome> {
        self.create_as(resource, namespace, body, opts, "Update").await
    }

    /// A create recorded in managedFields as `operation` (Update or Apply).
    async fn create_as(
        &self,
        resource: &'static Resource,
        namespace: &str,
        body: Value,
        opts: &WriteOptions,
        operation: &str,
    ) -> ApiResult<WriteOutcome> {
        let checked = schema::check(Kind::of(resource), body, opts.validation)?;
        let mut object = checked.object;
        set_namespace(resource, namespace, &mut object)?;
        defaults::apply_defaults(resource.group, resource.plural, &mut object);
        strategy::prepare_for_create(resource, &mut object);
        admission::admit_create(self, resource, &mut object).await?;
        record_manager(&mut object, &opts.field_manager, operation, resource);
        check_valid(resource, &object, None)?;
        let generate = object::name(&object).is_empty() && !object::meta_str(&object, "generateName").is_empty();
        let allocates = resource.plural == "services" && !opts.dry_run;
        if allocates {
            self.allocate_service(&mut object).await?;
        }
        let stored = self.store_new(resource, namespace, object, opts, generate).await;
        match stored {
            Ok(object) => Ok(WriteOutcome { object, warnings: checked.warnings, created: true }),
            Err((error, unstored)) => {
                if allocates {
                    self.release_service(&unstored).await;
                }
                Err(error)
            }
        }
    }

    /// Writes a new object under its name (or a generated one); on failure,
    /// the error and the object that was not stored.
    async fn store_new(
        &self,
        resource: &'static Resource,
        namespace: &str,
        mut object: Value,
        opts: &WriteOptions,
        generate: bool,
    ) -> Result<Value, (ApiError, Value)> {
        for _ in 0..MAX_ATTEMPTS {
            if generate {
                let name = object::generated_name(object::meta_str(&object, "generateName"));
                object::metadata_mut(&mut object).insert("name".into(), json!(name));
            }
            let name = object::name(&object).to_string();
            if opts.dry_run {
                return Ok(object);
            }
            let key = resource.key(namespace, &name);
            let bytes = match encode_for_store(&object) {
                Ok(bytes) => bytes,
                Err(e) => return Err((e, object)),
            };
            match self.store.put_if(&key, bytes, 0).await.map_err(store_error) {
                Ok(Written::Done(revision)) => {
                    object::set_resource_version(&mut object, revision);
                    return Ok(object);
                }
                Ok(Written::Stale) if generate => continue,
                Ok(Written::Stale) => {
                    return Err((ApiError::AlreadyExists { kind: resource.qualified(), name }, object));
                }
                Err(e) => return Err((e, object)),
            }
        }
        Err((ApiError::Internal("could not find a free generated name".into()), object))
    }

    /// PUT of the object or of its `status`.
    pub async fn update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<WriteOutcome> {
        let checked = schema::check(Kind::of(resource), body, opts.validation)?;
        let mut incoming = checked.object;
        set_namespace(resource, namespace, &mut incoming)?;
        match object::name(&incoming) {
            "" => {
                object::metadata_mut(&mut incoming).insert("name".into(), json!(name));
            }
            sent if sent != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({sent}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        let precondition = parse_resource_version(object::meta_str(&incoming, "resourceVersion"))?;
        let mut outcome = self
            .update_with(resource, namespace, name, precondition, opts, |current| {
                let mut next = prepare(resource, subresource, incoming.clone(), current);
                record_manager(&mut next, &opts.field_manager, "Update", resource);
                Ok(next)
            })
            .await?;
        outcome.warnings.extend(checked.warnings);
        Ok(outcome)
    }

    /// PATCH of the object or of its `status`, with any patch type.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        patch_type: PatchType,
        body: &Bytes,
        opts: &WriteOptions,
    ) -> ApiResult<WriteOutcome> {
        if patch_type == PatchType::Apply {
            return self.server_side_apply(resource, namespace, name, subresource, body, opts).await;
        }
        self.update_with(resource, namespace, name, None, opts, |current| {
            let patched = patch::apply(patch_type, resource.group, resource.kind, current, body)?;
            // A patch that names a resourceVersion makes it a precondition.
            if object::meta_str(&patched, "resourceVersion") != object::meta_str(current, "resourceVersion") {
                return Err(ApiError::conflict(&resource.qualified(), name));
            }
            let checked = schema::check(Kind::of(resource), patched, opts.validation)?;
            let mut next = prepare(resource, subresource, checked.object, current);
            record_manager(&mut next, &opts.field_manager, "Update", resource);
            Ok(next)
        })
        .await
    }

    /// Server-side apply: creates the object when missing, otherwise merges
    /// the applied configuration in, and records the manager's fields.
    async fn server_side_apply(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: &Bytes,
        opts: &WriteOptions,
    ) -> ApiResult<WriteOutcome> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::bad_request("PATCH requests with apply must set a field manager (fieldManager)"));
        }
        let applied: Value =
            serde_yaml_ng::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let applied = schema::check(Kind::of(resource), applied, opts.validation)?;
        if object::name(&applied.object) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                object::name(&applied.object)
            )));
        }
        let key = resource.key(namespace, name);
        let exists = self.store.get(&key).await.map_err(store_error)?.is_some();
        if !exists && subresource.is_empty() {
            return self.create_as(resource, namespace, applied.object, opts, "Apply").await;
        }
        let schema = strategic::schema_for(resource.group, resource.kind);
        self.update_with(resource, namespace, name, None, opts, |current| {
            let merged = strategic::apply(current, &applied.object, &schema)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let mut next = prepare(resource, subresource, merged, current);
            object::metadata_mut(&mut next)
                .insert("resourceVersion".into(), json!(object::meta_str(current, "resourceVersion")));
            record_manager(&mut next, &opts.field_manager, "Apply", resource);
            Ok(next)
        })
        .await
    }

    /// Reads, changes and conditionally writes one object until the write
    /// lands on the version it was computed from.
    pub async fn update_with(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        precondition: Option<i64>,
        opts: &WriteOptions,
        change: impl Fn(&Value) -> ApiResult<Value>,
    ) -> ApiResult<WriteOutcome> {
        let key = resource.key(namespace, name);
        for _ in 0..MAX_ATTEMPTS {
            let (current, revision) = self.get_versioned(resource, namespace, name).await?;
            if precondition.is_some_and(|rv| rv != revision) {
                return Err(ApiError::conflict(&resource.qualified(), name));
            }
            let mut next = change(&current)?;
            object::set_resource_version(&mut next, revision);
            if same_but_managers(&next, &current) {
                return Ok(WriteOutcome { object: current, warnings: Vec::new(), created: false });
            }
            check_valid(resource, &next, Some(&current))?;
            if opts.dry_run {
                return Ok(WriteOutcome { object: next, warnings: Vec::new(), created: false });
            }
            // The last finalizer gone from an object being deleted: it goes.
            let deleting = object::is_done_deleting(&next);
            let written = if deleting {
                self.store.delete_if(&key, revision).await
            } else {
                self.store.put_if(&key, encode_for_store(&next)?, revision).await
            };
            match written.map_err(store_error)? {
                Written::Done(revision) => {
                    if deleting && resource.plural == "services" {
                        self.release_service(&next).await;
                    }
                    object::set_resource_version(&mut next, revision);
                    return Ok(WriteOutcome { object: next, warnings: Vec::new(), created: false });
                }
                Written::Stale if precondition.is_some() => {
                    return Err(ApiError::conflict(&resource.qualified(), name));
                }
                Written::Stale => continue,
            }
        }
        Err(ApiError::conflict(&resource.qualified(), name))
    }
}

/// A write that changes nothing but manager timestamps is not written.
fn same_but_managers(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        object::metadata_mut(&mut v).remove("managedFields");
        v
    };
    strip(a) == strip(b)
}

/// The next version of an object from what the client sent.
fn prepare(resource: &Resource, subresource: &str, mut next: Value, current: &Value) -> Value {
    if subresource == "status" {
        strategy::prepare_for_status_update(&mut next, current);
    } else {
        defaults::apply_defaults(resource.group, resource.plural, &mut next);
        strategy::prepare_for_update(resource, &mut next, current);
        if resource.plural == "services" {
            super::allocate::keep_service_addresses(&mut next, current);
        }
    }
    next
}

/// Namespaced objects take the URL's namespace; cluster objects have none.
fn set_namespace(resource: &Resource, namespace: &str, object: &mut Value) -> ApiResult<()> {
    let meta = object::metadata_mut(object);
    if !resource.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(namespace));
            Ok(())
        }
        Some(sent) if sent == namespace => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// 422 with Kubernetes' causes when validation finds anything.
fn check_valid(resource: &Resource, object: &Value, old: Option<&Value>) -> ApiResult<()> {
    let errors = validation::validate(resource.group, resource.plural, object, old);
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::Invalid {
        kind_name: resource.kind.to_string(),
        group: resource.group.to_string(),
        kind: resource.kind.to_string(),
        name: object::name(object).to_string(),
        causes: errors
            .into_iter()
            .map(|e| Cause { reason: e.reason.to_string(), field: e.field, message: e.message })
            .collect(),
    })
}

/// Keeps one `managedFields` entry per manager and operation, stamped with
/// the time of its last write.
fn record_manager(object: &mut Value, manager: &str, operation: &str, resource: &Resource) {
    if manager.is_empty() {
        return;
    }
    let fields = fields_v1(object);
    let entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": resource.api_version(),
        "time": object::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let meta = object::metadata_mut(object);
    let mut entries: Vec<Value> = meta.get("managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    entries.retain(|e| !(e["manager"] == manager && e["operation"] == operation));
    entries.push(entry);
    meta.insert("managedFields".into(), Value::Array(entries));
}

/// The set of fields an object sets, in FieldsV1 form (`f:<name>` keys;
/// lists are owned whole).
fn fields_v1(object: &Value) -> Value {
    fn walk(value: &Value, top: bool) -> Value {
        match value {
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (key, child) in map {
                    let server_owned = top && matches!(key.as_str(), "status" | "apiVersion" | "kind");
                    if server_owned || (top && key == "metadata") {
                        continue;
                    }
                    out.insert(format!("f:{key}"), walk(child, false));
                }
                Value::Object(out)
            }
            _ => json!({}),
        }
    }
    let mut fields = walk(object, true);
    let meta = object::metadata(object);
    let mut meta_fields = serde_json::Map::new();
    for part in ["labels", "annotations"] {
        if let Some(map) = meta.and_then(|m| m.get(part)).and_then(Value::as_object) {
            let keys = map.keys().map(|k| (format!("f:{k}"), json!({}))).collect();
            meta_fields.insert(format!("f:{part}"), Value::Object(keys));
        }
    }
    if !meta_fields.is_empty()
        && let Some(map) = fields.as_object_mut()
    {
        map.insert("f:metadata".into(), Value::Object(meta_fields));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn managers_are_recorded_once_each() {
        let cm = resources::find("", "v1", "configmaps").expect("configmaps");
        let mut object = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        record_manager(&mut object, "kubectl", "Apply", cm);
        record_manager(&mut object, "kubectl", "Apply", cm);
        record_manager(&mut object, "other", "Update", cm);
        let entries = object["metadata"]["managedFields"].as_array().expect("entries");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["fieldsV1"], json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}));
    }

    #[test]
    fn namespaces_come_from_the_url() {
        let cm = resources::find("", "v1", "configmaps").expect("configmaps");
        let mut object = json!({"metadata": {"name": "a"}});
        set_namespace(cm, "default", &mut object).expect("set");
        assert_eq!(object["metadata"]["namespace"], "default");
        let mut other = json!({"metadata": {"name": "a", "namespace": "x"}});
        assert!(set_namespace(cm, "default", &mut other).is_err());
        let ns = resources::find("", "v1", "namespaces").expect("namespaces");
        let mut cluster = json!({"metadata": {"name": "a", "namespace": "x"}});
        set_namespace(ns, "", &mut cluster).expect("cluster");
        assert!(cluster["metadata"].get("namespace").is_none());
    }
}
