//! Building responses: JSON or YAML by Accept, Status errors, lists and
//! Tables.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::Resource;
use crate::table;

pub type Body = BoxBody<Bytes, Infallible>;

/// How the client wants objects: as they are, or as kubectl's Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Table,
}

impl Format {
    pub fn from_accept(accept: &str) -> Format {
        let first_acceptable = accept.split(',').map(str::trim).find(|part| {
            part.contains("as=Table")
                || part.starts_with("application/json")
                || part.starts_with("application/yaml")
                || part.starts_with("*/*")
        });
        match first_acceptable {
            Some(part) if part.contains("as=Table") => Format::Table,
            Some(part) if part.starts_with("application/yaml") => Format::Yaml,
            _ => Format::Json,
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_type(status, "application/json", body)
}

pub fn with_type(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// An object in the requested format (Table is handled by the caller).
pub fn object_response(status: StatusCode, value: &Value, format: Format) -> Response<Body> {
    if format == Format::Yaml {
        return match serde_yaml_ng::to_string(value) {
            Ok(text) => with_type(status, "application/yaml", text),
            Err(e) => error_response(&ApiError::Internal(e.to_string())),
        };
    }
    json_response(status, value)
}

pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status_code(), &error.to_status());
    if matches!(error, ApiError::Unauthorized) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Kubernetes' `Warning: 299 - "..."` headers.
pub fn add_warnings(response: &mut Response<Body>, warnings: &[String]) {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "'"));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
}

/// `<Kind>List` with the list's resourceVersion and continue token.
pub fn list_object(resource: &Resource, items: &[Arc<Value>], revision: i64, continue_token: Option<&str>) -> Value {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": items.iter().map(|o| (**o).clone()).collect::<Vec<_>>(),
    })
}

/// `includeObject`: what each Table row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Result<IncludeObject, ApiError> {
        match value {
            None | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }
}

/// A `meta.k8s.io/v1 Table` of objects, with kubectl's columns.
pub fn table_object(
    resource: &Resource,
    objects: &[Arc<Value>],
    include: IncludeObject,
    revision: Option<i64>,
    continue_token: Option<&str>,
) -> Value {
    let now = SystemTime::now();
    let columns: Vec<Value> = table::columns(resource.group, resource.plural)
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": c.format, "description": c.description,
                "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({"cells": table::cells(resource.group, resource.plural, object, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = (**object).clone(),
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(revision) = revision {
        metadata["resourceVersion"] = json!(revision.to_string());
    }
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(Format::from_accept(kubectl_get), Format::Table);
        assert_eq!(Format::from_accept("application/vnd.kubernetes.protobuf,application/json"), Format::Json);
        assert_eq!(Format::from_accept("application/yaml"), Format::Yaml);
        assert_eq!(Format::from_accept(""), Format::Json);
    }

    #[test]
    fn tables_carry_partial_metadata() {
        let cm = crate::resources::find("", "v1", "configmaps").expect("configmaps");
        let object = Arc::new(json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}}));
        let table = table_object(cm, &[object], IncludeObject::Metadata, Some(7), None);
        assert_eq!(table["metadata"]["resourceVersion"], "7");
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["rows"][0]["object"]["metadata"]["labels"]["x"], "y");
        assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    }
}
