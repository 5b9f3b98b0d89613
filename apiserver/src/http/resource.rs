//! Requests for resources: options from the query, then the registry.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};

use super::respond::{Body, Format, IncludeObject, add_warnings, list_object, object_response, table_object};
use super::watch::{self, WatchRequest};
use super::{Api, decode_body, review, subresources, success_status};
use crate::error::{ApiError, ApiResult};
use crate::patch::PatchType;
use crate::rbac::UserInfo;
use crate::registry::{DeleteOptions, Deleted, ListOptions, WriteOptions, WriteOutcome};
use crate::request::{Query, ResourceRequest};
use crate::resources::{self, Resource};
use crate::schema::FieldValidation;
use crate::selectors::{FieldSelector, LabelSelector};

pub async fn serve(
    api: &Arc<Api>,
    parts: &http::request::Parts,
    query: &Query,
    request: ResourceRequest,
    user: &UserInfo,
    body: Bytes,
) -> ApiResult<Response<Body>> {
    let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = Format::from_accept(accept);
    let resource = request.resource;
    let registry = &api.registry;
    let (ns, name, sub) = (request.namespace.as_str(), request.name.as_str(), request.subresource.as_str());
    if !resource.stored {
        return review::serve(api, &request, user, &parts.headers, &body);
    }
    if resource.namespaced && ns.is_empty() && !matches!(request.verb, "list" | "watch") {
        return Err(ApiError::bad_request("the namespace of the object is required"));
    }
    match (request.verb, sub) {
        ("get", "" | "status") => {
            let object = registry.get(resource, ns, name).await?;
            Ok(single(resource, &object, format, query)?)
        }
        ("list", _) => {
            let options = list_options(resource, query)?;
            let listed = registry.list(resource, ns, &options).await?;
            let token = listed.continue_token.as_deref();
            Ok(if format == Format::Table {
                let include = IncludeObject::parse(query.get("includeObject"))?;
                let table = table_object(resource, &listed.items, include, Some(listed.resource_version), token);
                object_response(StatusCode::OK, &table, Format::Json)
            } else {
                object_response(
                    StatusCode::OK,
                    &list_object(resource, &listed.items, listed.resource_version, token),
                    format,
                )
            })
        }
        ("watch", _) => {
            let request = WatchRequest {
                namespace: ns.to_string(),
                options: list_options(resource, query)?,
                bookmarks: query.flag("allowWatchBookmarks"),
                send_initial_events: query.flag("sendInitialEvents"),
                timeout: query.int("timeoutSeconds")?.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64)),
                format,
                include: IncludeObject::parse(query.get("includeObject"))?,
                _guard: api.metrics.watch_started(),
            };
            watch::serve(registry, resource, request).await
        }
        ("create", "") => {
            let object = decode_body(&parts.headers, &body)?;
            check_type(resource, &object)?;
            let outcome = registry.create(resource, ns, object, &write_options(query, &parts.headers)?).await?;
            Ok(written(resource, outcome, StatusCode::CREATED, format, query))
        }
        ("create", "binding") => subresources::bind(registry, resource, ns, name, &parts.headers, &body, query).await,
        ("create", "eviction") => subresources::evict(registry, resource, ns, name, &parts.headers, &body).await,
        ("update", "" | "status") => {
            let object = decode_body(&parts.headers, &body)?;
            check_type(resource, &object)?;
            let outcome =
                registry.update(resource, ns, name, sub, object, &write_options(query, &parts.headers)?).await?;
            let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(written(resource, outcome, status, format, query))
        }
        ("update", "finalize") => subresources::finalize(registry, resource, name, &parts.headers, &body, query).await,
        ("get" | "update" | "patch", "scale") => {
            subresources::scale(registry, resource, ns, name, request.verb, &parts.headers, &body, query).await
        }
        ("patch", "" | "status") => {
            let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let patch_type = PatchType::from_content_type(content_type)?;
            if patch_type == PatchType::Apply && query.get("fieldManager").is_none() {
                return Err(ApiError::bad_request("PATCH requests with apply must set a field manager (fieldManager)"));
            }
            let options = write_options(query, &parts.headers)?;
            let outcome = registry.patch(resource, ns, name, sub, patch_type, &body, &options).await?;
            let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(written(resource, outcome, status, format, query))
        }
        ("delete", "") => {
            let options = delete_options(&parts.headers, &body, query)?;
            match registry.delete(resource, ns, name, &options).await? {
                Deleted::Pending(object) => Ok(object_response(StatusCode::OK, &object, format.without_table())),
                Deleted::Now(object) => {
                    Ok(object_response(StatusCode::OK, &deleted_status(resource, &object), Format::Json))
                }
            }
        }
        ("deletecollection", "") => {
            let options = delete_options(&parts.headers, &body, query)?;
            let listed = registry.list(resource, ns, &list_options(resource, query)?).await?;
            let mut gone = Vec::new();
            for object in &listed.items {
                let item_ns = crate::object::namespace(object);
                match registry.delete(resource, item_ns, crate::object::name(object), &options).await {
                    Ok(Deleted::Now(o) | Deleted::Pending(o)) => gone.push(Arc::new(o)),
                    Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(object_response(
                StatusCode::OK,
                &list_object(resource, &gone, listed.resource_version, None),
                format.without_table(),
            ))
        }
        _ => Err(ApiError::MethodNotSupported),
    }
}

impl Format {
    fn without_table(self) -> Format {
        if self == Format::Table { Format::Json } else { self }
    }
}

/// One object, or a one-row Table of it.
fn single(resource: &Resource, object: &Value, format: Format, query: &Query) -> ApiResult<Response<Body>> {
    if format == Format::Table {
        let include = IncludeObject::parse(query.get("includeObject"))?;
        let table = table_object(resource, &[Arc::new(object.clone())], include, None, None);
        return Ok(object_response(StatusCode::OK, &table, Format::Json));
    }
    Ok(object_response(StatusCode::OK, object, format))
}

fn written(
    resource: &Resource,
    outcome: WriteOutcome,
    status: StatusCode,
    format: Format,
    query: &Query,
) -> Response<Body> {
    let mut response = match single(resource, &outcome.object, format, query) {
        Ok(mut response) => {
            *response.status_mut() = status;
            response
        }
        Err(e) => super::respond::error_response(&e),
    };
    add_warnings(&mut response, &outcome.warnings);
    response
}

/// A body's apiVersion and kind, when given, must be the endpoint's.
fn check_type(resource: &Resource, object: &Value) -> ApiResult<()> {
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
        && api_version != resource.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    if let Some(kind) = object.get("kind").and_then(Value::as_str)
        && kind != resource.kind
    {
        let (group, _) = resources::split_api_version(object["apiVersion"].as_str().unwrap_or(""));
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}{}) does not match the expected kind ({})",
            if group.is_empty() { String::new() } else { format!(".{group}") },
            resource.kind
        )));
    }
    Ok(())
}

/// Options of a write. Without `fieldManager`, the manager is the client's
/// User-Agent up to its first `/`, as Kubernetes names it.
pub fn write_options(query: &Query, headers: &http::HeaderMap) -> ApiResult<WriteOptions> {
    let dry_run = match query.get("dryRun") {
        None => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_manager: match query.get("fieldManager") {
            Some(manager) => manager.to_string(),
            None => user_agent_manager(headers),
        },
        validation: FieldValidation::parse(query.get("fieldValidation"))?,
        force: query.flag("force"),
    })
}

fn user_agent_manager(headers: &http::HeaderMap) -> String {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = agent.split('/').next().unwrap_or("");
    name.chars().take(128).collect()
}

fn list_options(resource: &Resource, query: &Query) -> ApiResult<ListOptions> {
    let labels = query
        .get("labelSelector")
        .map(LabelSelector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .filter(|selector| !selector.is_empty());
    let fields = match query.get("fieldSelector") {
        None => None,
        Some(text) => {
            let selector = FieldSelector::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
            selector
                .check_supported(resource.group, resource.plural)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            Some(selector)
        }
    };
    let resource_version_match = query.get("resourceVersionMatch").unwrap_or("").to_string();
    if !resource_version_match.is_empty() && query.get("resourceVersion").is_none() {
        return Err(ApiError::bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided"));
    }
    Ok(ListOptions {
        labels,
        fields,
        limit: query.int("limit")?,
        continue_token: query.get("continue").map(str::to_string),
        resource_version: query.get("resourceVersion").unwrap_or("").to_string(),
        resource_version_match,
    })
}

/// DeleteOptions from the body (kubectl sends one) and the query.
fn delete_options(headers: &http::HeaderMap, body: &Bytes, query: &Query) -> ApiResult<DeleteOptions> {
    let mut options = if body.is_empty() {
        DeleteOptions::default()
    } else {
        DeleteOptions::from_body(&decode_body(headers, body)?)?
    };
    if let Some(grace) = query.int("gracePeriodSeconds")? {
        options.grace_period_seconds = Some(grace);
    }
    if let Some(policy) = query.get("propagationPolicy") {
        options.propagation_policy =
            DeleteOptions::from_body(&json!({"propagationPolicy": policy}))?.propagation_policy;
    }
    if query.get("dryRun") == Some("All") {
        options.dry_run = true;
    }
    Ok(options)
}

fn deleted_status(resource: &Resource, object: &Value) -> Value {
    let mut details = json!({"name": crate::object::name(object), "kind": resource.plural,
        "uid": crate::object::meta_str(object, "uid")});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    success_status(200, details)
}
