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
    if request.verb != "create" {
        return Err(ApiError::MethodNotSupported);
    }
    if request.resource.plural == "selfsubjectrulesreviews" {
        return rules_review(api, request, user, headers, body);
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
    let allowed = decision.is_allowed();
    let (Decision::Allow { reason } | Decision::Deny { reason }) = decision;
    review["status"] = json!({"allowed": allowed, "reason": reason});
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(StatusCode::CREATED, &review))
}

/// SelfSubjectRulesReview (`kubectl auth can-i --list`): the rules that
/// apply to the requester in a namespace.
fn rules_review(
    api: &Api,
    request: &ResourceRequest,
    user: &UserInfo,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response<Body>> {
    let review = decode_body(headers, body)?;
    let mut review = schema::check(Kind::of(request.resource), review, FieldValidation::Strict)?.object;
    let namespace = review["spec"]["namespace"].as_str().unwrap_or("").to_string();
    let (non_resource, resource): (Vec<Value>, Vec<Value>) =
        api.authorizer.rules_for(user, &namespace).into_iter().partition(|r| r.get("nonResourceURLs").is_some());
    review["status"] = json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false});
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(StatusCode::CREATED, &review))
}
