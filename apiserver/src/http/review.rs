//! SelfSubjectAccessReview (`kubectl auth can-i`): the authorizer's answer
//! for the requesting user, computed and returned, never stored.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};

use super::respond::{Body, json_response};
use super::{Api, decode_body};
use crate::error::{ApiError, ApiResult};
use crate::rbac::{Attributes, Decision, UserInfo};
use crate::request::ResourceRequest;
use crate::schema::{self, FieldValidation, Kind};

pub fn serve(
    api: &Api,
    request: &ResourceRequest,
    user: &UserInfo,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response<Body>> {
    if request.verb != "create" || request.resource.plural != "selfsubjectaccessreviews" {
        return Err(ApiError::MethodNotSupported);
    }
    let review = decode_body(headers, body)?;
    let mut review = schema::check(Kind::of(request.resource), review, FieldValidation::Strict)?.object;
    let spec = &review["spec"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let decision = if let Some(attrs) = spec.get("resourceAttributes").filter(|a| a.is_object()) {
        let (verb, group, resource) = (text(&attrs["verb"]), text(&attrs["group"]), text(&attrs["resource"]));
        let (subresource, namespace, name) =
            (text(&attrs["subresource"]), text(&attrs["namespace"]), text(&attrs["name"]));
        api.authorizer.authorize(
            user,
            &Attributes {
                verb: &verb,
                api_group: &group,
                resource: &resource,
                subresource: &subresource,
                namespace: &namespace,
                name: &name,
                path: "",
                resource_request: true,
            },
        )
    } else if let Some(attrs) = spec.get("nonResourceAttributes").filter(|a| a.is_object()) {
        let (verb, path) = (text(&attrs["verb"]), text(&attrs["path"]));
        api.authorizer.authorize(
            user,
            &Attributes {
                verb: &verb,
                api_group: "",
                resource: "",
                subresource: "",
                namespace: "",
                name: "",
                path: &path,
                resource_request: false,
            },
        )
    } else {
        return Err(ApiError::Invalid {
            kind_name: "SelfSubjectAccessReview".into(),
            group: "authorization.k8s.io".into(),
            kind: "SelfSubjectAccessReview".into(),
            name: String::new(),
            causes: vec![crate::error::Cause {
                reason: "FieldValueRequired".into(),
                field: "spec.resourceAttributes".into(),
                message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified"
                    .into(),
            }],
        });
    };
    review["status"] = match decision {
        Decision::Allow { reason } => json!({"allowed": true, "reason": reason}),
        Decision::Deny { reason } => json!({"allowed": false, "reason": reason}),
    };
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(StatusCode::CREATED, &review))
}
