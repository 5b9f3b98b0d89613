//! Create, update and patch: decode and check, default, let the strategy
//! and admission have their say, validate, then one conditional store write.
//! Updates retry on a lost race unless the client named a resourceVersion.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{MAX_ATTEMPTS, Registry, encode_for_store, parse_resource_version, store_error};
use crate::error::{ApiError, ApiResult, Cause};
use crate::managed_fields::Ownership;
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
    /// A server-side apply takes over fields other managers set.
    pub force: bool,
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
        let checked = schema::check(Kind::of(resource), body, opts.validation)?;
        self.create_as(resource, namespace, checked, opts, Operation::Update).await
    }

    /// A create recorded in managedFields as an update or an apply.
    async fn create_as(
        &self,
        resource: &'static Resource,
        namespace: &str,
        checked: schema::Checked,
        opts: &WriteOptions,
        operation: Operation,
    ) -> ApiResult<WriteOutcome> {
        let mut object = checked.object;
        set_namespace(resource, namespace, &mut object)?;
        let sent = object.clone();
        defaults::apply_defaults(resource.group, resource.plural, &mut object);
        strategy::prepare_for_create(resource, &mut object);
        admission::admit_create(self, resource, &mut object).await?;
        let ownership = Ownership::new(resource, "");
        match operation {
            Operation::Update => ownership.record_update(&opts.field_manager, None, &mut object),
            Operation::Apply => {
                let mut applied = object.clone();
                ownership.apply(&opts.field_manager, &sent, None, &mut applied, opts.force)?.write_to(&mut object);
            }
        }
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
        let ownership = Ownership::new(resource, subresource);
        let mut outcome = self
            .update_with(resource, namespace, name, precondition, opts, |current| {
                let mut next = prepare(resource, subresource, incoming.clone(), current);
                ownership.record_update(&opts.field_manager, Some(current), &mut next);
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
        if opts.force {
            return Err(ApiError::Invalid {
                kind_name: "PatchOptions.meta.k8s.io".into(),
                group: "meta.k8s.io".into(),
                kind: "PatchOptions".into(),
                name: String::new(),
                causes: vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    field: "force".into(),
                    message: "Forbidden: may not be specified for non-apply patch".into(),
                }],
            });
        }
        let ownership = Ownership::new(resource, subresource);
        self.update_with(resource, namespace, name, None, opts, |current| {
            let patched = patch::apply(patch_type, resource.group, resource.kind, current, body)?;
            // A patch that names a resourceVersion makes it a precondition.
            if object::meta_str(&patched, "resourceVersion") != object::meta_str(current, "resourceVersion") {
                return Err(ApiError::conflict(&resource.qualified(), name));
            }
            let checked = schema::check(Kind::of(resource), patched, opts.validation)?;
            let mut next = prepare(resource, subresource, checked.object, current);
            ownership.record_update(&opts.field_manager, Some(current), &mut next);
            Ok(next)
        })
        .await
    }

    /// Server-side apply: creates the object when missing, otherwise merges
    /// the applied configuration in, as the field ownership allows.
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
            return self.create_as(resource, namespace, applied, opts, Operation::Apply).await;
        }
        let schema = strategic::schema_for(resource.group, resource.kind);
        let ownership = Ownership::new(resource, subresource);
        self.update_with(resource, namespace, name, None, opts, |current| {
            let mut merged = strategic::apply(current, &applied.object, &schema)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let managed =
                ownership.apply(&opts.field_manager, &applied.object, Some(current), &mut merged, opts.force)?;
            let mut next = prepare(resource, subresource, merged, current);
            managed.write_to(&mut next);
            object::metadata_mut(&mut next)
                .insert("resourceVersion".into(), json!(object::meta_str(current, "resourceVersion")));
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
            let service = resource.plural == "services";
            let claimed =
                if service && !deleting { self.claim_new_addresses(&current, &mut next).await? } else { Vec::new() };
            let written = if deleting {
                self.store.delete_if(&key, revision).await
            } else {
                self.store.put_if(&key, encode_for_store(&next)?, revision).await
            };
            // On a store error the write may still have landed: what was
            // claimed stays claimed rather than risk handing it out twice.
            match written.map_err(store_error)? {
                Written::Done(revision) => {
                    match (service, deleting) {
                        (true, true) => self.release_service(&next).await,
                        (true, false) => self.release_dropped_addresses(&current, &next).await,
                        _ => {}
                    }
                    object::set_resource_version(&mut next, revision);
                    return Ok(WriteOutcome { object: next, warnings: Vec::new(), created: false });
                }
                Written::Stale => {
                    self.release_keys(&claimed).await;
                    if precondition.is_some() {
                        return Err(ApiError::conflict(&resource.qualified(), name));
                    }
                }
            }
        }
        Err(ApiError::conflict(&resource.qualified(), name))
    }
}

/// A write that changes nothing but manager timestamps is not written.
fn same_but_managers(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(Value::Array(entries)) = object::metadata_mut(&mut v).get_mut("managedFields") {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
        v
    };
    strip(a) == strip(b)
}

/// How a create is recorded in managedFields.
enum Operation {
    Update,
    Apply,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

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
