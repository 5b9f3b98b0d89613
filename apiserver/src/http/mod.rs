//! The HTTP front: authenticate, route, authorize, dispatch, and count.

mod resource;
pub mod respond;
mod review;
mod subresources;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::authz::Authorizer;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::rbac::{Attributes, Decision, UserInfo};
use crate::registry::Registry;
use crate::request::{Query, Target, route};
use crate::supervisor::{self, Supervisor};
use crate::{authn, discovery, openapi, version};
use respond::{Body, error_response, json_response, with_type};

/// Kubernetes refuses request bodies over 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// How much of an oversized body is read before the connection is dropped.
const MAX_DRAINED: usize = 64 * 1024 * 1024;

/// What every request handler shares.
pub struct Api {
    /// Set once the default namespaces and roles exist.
    pub bootstrapped: std::sync::atomic::AtomicBool,
    pub registry: Registry,
    pub authorizer: Authorizer,
    pub tokens: authn::Tokens,
    pub metrics: Metrics,
    /// The join endpoints, on a `capstan server` only.
    pub supervisor: Option<Supervisor>,
}

/// Serves one request from a connection whose client certificate (if any)
/// named `peer`.
pub async fn handle<B>(api: Arc<Api>, request: Request<B>, peer: Option<UserInfo>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    if let Some(supervisor) = api.supervisor.as_ref().filter(|_| supervisor::owns(parts.uri.path())) {
        return match read_body(body).await {
            Ok(body) => supervisor.handle(&parts.method, parts.uri.path(), &parts.headers, body).await,
            Err(e) => error_response(&e),
        };
    }
    let query = Query::parse(parts.uri.query());
    let target = route(&parts.method, parts.uri.path(), &query);
    let user = match identify(&api, &parts.headers, peer) {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    let (verb, resource) = match &target {
        Target::Resource(r) => (r.verb, r.resource.plural),
        _ => (parts.method.as_str(), ""),
    };
    let watch = verb == "watch";
    let response = match authorize(&api, &user, &parts.method, parts.uri.path(), &target) {
        Ok(()) => match dispatch(&api, &parts, &query, target, &user, body).await {
            Ok(response) => response,
            Err(e) => error_response(&e),
        },
        Err(e) => error_response(&e),
    };
    if !watch {
        api.metrics.observe(verb, resource, response.status().as_u16(), started.elapsed());
    }
    response
}

/// The user behind a request: the connection's client certificate, else a
/// bearer token (Kubernetes' order); neither is anonymous, a bad token 401.
fn identify(api: &Api, headers: &HeaderMap, peer: Option<UserInfo>) -> ApiResult<UserInfo> {
    if let Some(user) = peer {
        return Ok(authn::with_standard_groups(user));
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        return match token.and_then(|t| api.tokens.user(t)) {
            Some(user) => Ok(authn::with_standard_groups(user)),
            None => Err(ApiError::Unauthorized),
        };
    }
    Ok(authn::anonymous())
}

fn authorize(api: &Api, user: &UserInfo, method: &Method, path: &str, target: &Target) -> ApiResult<()> {
    let anonymous = user.name == authn::ANONYMOUS;
    let (attributes, described) = match target {
        Target::Resource(r) => (
            Attributes {
                verb: r.verb,
                api_group: r.resource.group,
                resource: r.resource.plural,
                subresource: &r.subresource,
                namespace: &r.namespace,
                name: &r.name,
                path,
                resource_request: true,
            },
            describe(r),
        ),
        _ => (
            Attributes {
                verb: non_resource_verb(method),
                api_group: "",
                resource: "",
                subresource: "",
                namespace: "",
                name: "",
                path,
                resource_request: false,
            },
            format!("cannot {} path \"{path}\"", non_resource_verb(method)),
        ),
    };
    match api.authorizer.authorize(user, &attributes) {
        Decision::Allow { .. } => Ok(()),
        // Kubernetes answers the anonymous with 401 for anything not public.
        Decision::Deny { .. } if anonymous => Err(ApiError::Unauthorized),
        Decision::Deny { reason } => {
            let mut message = format!("{} is forbidden: User \"{}\" {described}", forbidden_subject(target), user.name);
            if !reason.is_empty() {
                message.push_str(&format!(": {reason}"));
            }
            Err(ApiError::Forbidden { message })
        }
    }
}

fn non_resource_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    }
}

fn forbidden_subject(target: &Target) -> String {
    match target {
        Target::Resource(r) if !r.name.is_empty() => format!("{} \"{}\"", r.resource.qualified(), r.name),
        Target::Resource(r) => r.resource.qualified(),
        _ => "request".to_string(),
    }
}

/// `cannot list resource "pods" in API group "" in the namespace "default"`.
fn describe(r: &crate::request::ResourceRequest) -> String {
    let resource = if r.subresource.is_empty() {
        r.resource.plural.to_string()
    } else {
        format!("{}/{}", r.resource.plural, r.subresource)
    };
    let scope = if r.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", r.namespace)
    };
    format!("cannot {} resource \"{resource}\" in API group \"{}\" {scope}", r.verb, r.resource.group)
}

async fn dispatch<B>(
    api: &Arc<Api>,
    parts: &http::request::Parts,
    query: &Query,
    target: Target,
    user: &UserInfo,
    body: B,
) -> ApiResult<Response<Body>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match target {
        Target::Resource(request) => {
            let body = read_body(body).await?;
            resource::serve(api, parts, query, request, user, body).await
        }
        Target::RootDiscovery { legacy } => Ok(match discovery::aggregated_version(accept) {
            Some(v) => with_type(
                StatusCode::OK,
                &discovery::aggregated_content_type(v),
                serde_json::to_vec(&discovery::aggregated(legacy, v)).unwrap_or_default(),
            ),
            None if legacy => json_response(StatusCode::OK, &discovery::legacy_versions()),
            None => json_response(StatusCode::OK, &discovery::legacy_groups()),
        }),
        Target::GroupDiscovery { group } => {
            discovery::legacy_group(&group).map(|d| json_response(StatusCode::OK, &d)).ok_or(ApiError::NoSuchResource)
        }
        Target::VersionDiscovery { group, version } => discovery::resource_list(&group, &version)
            .map(|d| json_response(StatusCode::OK, &d))
            .ok_or(ApiError::NoSuchResource),
        Target::OpenApiV3Root => Ok(json_response(StatusCode::OK, &openapi::root())),
        Target::OpenApiV3 { group, version } => openapi::group_version(&group, &version)
            .map(|d| with_type(StatusCode::OK, "application/json", d))
            .ok_or(ApiError::NoSuchResource),
        Target::OpenApiV2 | Target::NotFound => Err(ApiError::NoSuchResource),
        Target::Version => Ok(json_response(StatusCode::OK, &version::document())),
        Target::Health { check } => health(api, &parts.uri, &check).await,
        Target::Metrics => Ok(with_type(StatusCode::OK, "text/plain; version=0.0.4", api.metrics.encode())),
    }
}

/// `/healthz`, `/livez`, `/readyz` (and `/readyz/<check>`): ready means the
/// store answers and every watch cache has caught up with it.
async fn health(api: &Api, uri: &http::Uri, check: &str) -> ApiResult<Response<Body>> {
    let ready = uri.path().starts_with("/readyz");
    let bootstrapped = api.bootstrapped.load(std::sync::atomic::Ordering::Acquire);
    let store_ok =
        if ready || check == "etcd" { bootstrapped && api.registry.wait_ready().await.is_ok() } else { true };
    let verbose = Query::parse(uri.query()).flag("verbose") || uri.query().is_some_and(|q| q.contains("verbose"));
    let status = if store_ok { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    let text = match (store_ok, verbose) {
        (true, false) => "ok".to_string(),
        (false, false) => "[-]etcd failed: reason withheld\nhealthz check failed".to_string(),
        (ok, true) => format!(
            "[+]ping ok\n[{}]etcd {}\n{} check {}\n",
            if ok { "+" } else { "-" },
            if ok { "ok" } else { "failed" },
            uri.path().trim_start_matches('/'),
            if ok { "passed" } else { "failed" }
        ),
    };
    Ok(with_type(status, "text/plain; charset=utf-8", text))
}

/// Reads a request body, refusing more than 3 MiB. The rest of an
/// oversized body is read and dropped (up to a bound), so that the client,
/// still sending, gets the 413 rather than a reset connection.
async fn read_body<B>(body: B) -> ApiResult<Bytes>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {}", e.into())))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen > MAX_DRAINED {
            break;
        }
        if seen <= MAX_BODY {
            collected.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::TooLarge { limit: MAX_BODY });
    }
    Ok(collected.freeze())
}

/// A JSON or YAML request body as a JSON value, by Content-Type.
pub fn decode_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let value: Value = match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))?,
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body)?,
        _ => {
            return Err(ApiError::UnsupportedMediaType { accepted: "application/json, application/yaml".to_string() });
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be an object, not {}",
            match value {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )));
    }
    Ok(value)
}

/// `{"kind":"Status","status":"Success",…}` for completed deletions and
/// evictions.
pub fn success_status(code: u16, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details, "code": code})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_or_yaml_objects() {
        let mut headers = HeaderMap::new();
        assert!(decode_body(&headers, &Bytes::from_static(br#"{"a":1}"#)).is_ok());
        assert!(matches!(decode_body(&headers, &Bytes::from_static(b"{nope")), Err(ApiError::BadRequest(_))));
        assert!(matches!(decode_body(&headers, &Bytes::from_static(b"[1]")), Err(ApiError::BadRequest(_))));
        headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/yaml"));
        let value =
            decode_body(&headers, &Bytes::from_static(b"kind: ConfigMap\nmetadata:\n  name: a\n")).expect("yaml");
        assert_eq!(value["metadata"]["name"], "a");
        headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/csv"));
        assert!(matches!(
            decode_body(&headers, &Bytes::from_static(b"a,b")),
            Err(ApiError::UnsupportedMediaType { .. })
        ));
    }
}
