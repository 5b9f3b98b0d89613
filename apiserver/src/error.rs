//! The apiserver's errors and their one mapping to the wire: a
//! `meta.k8s.io/v1 Status` with Kubernetes' code, reason and message,
//! which kubectl turns into its `Error from server (Reason): …` lines.

use http::StatusCode;
use serde_json::{Value, json};

/// A field-level cause of a 422 Invalid, as Kubernetes reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: String, name: String },
    #[error("the server could not find the requested resource")]
    NoSuchResource,
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: String, name: String },
    #[error("Operation cannot be fulfilled on {kind} \"{name}\": {reason}")]
    Conflict { kind: String, name: String, reason: String },
    /// A server-side apply that would change fields other managers set.
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<Cause> },
    #[error("{kind_name} \"{name}\" is invalid: {}", summary(.causes))]
    Invalid { kind_name: String, group: String, kind: String, name: String, causes: Vec<Cause> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Forbidden { message: String },
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Expired(String),
    #[error("the body of the request was in an unknown format - accepted media types include: {accepted}")]
    UnsupportedMediaType { accepted: String },
    #[error("the server does not allow this method on the requested resource")]
    MethodNotSupported,
    #[error("the request is too large: limit is {limit} bytes")]
    TooLarge { limit: usize },
    #[error("Internal error occurred: {0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    TooManyRequests(String),
}

/// Kubernetes joins causes as `field: message, field: message`, and wraps
/// more than one in brackets.
fn summary(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| if c.field.is_empty() { c.message.clone() } else { format!("{}: {}", c.field, c.message) })
        .collect();
    match parts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

impl ApiError {
    pub fn not_found(kind: &str, name: &str) -> Self {
        ApiError::NotFound { kind: kind.to_string(), name: name.to_string() }
    }

    pub fn conflict(kind: &str, name: &str) -> Self {
        ApiError::Conflict {
            kind: kind.to_string(),
            name: name.to_string(),
            reason: "the object has been modified; please apply your changes to the latest version and try again"
                .to_string(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchResource => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Expired(_) => StatusCode::GONE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotSupported => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchResource => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Expired(_) => "Expired",
            ApiError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            ApiError::MethodNotSupported => "MethodNotAllowed",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::TooManyRequests(_) => "TooManyRequests",
        }
    }

    /// The `Status` object kubectl and client libraries read.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.status_code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound { kind, name } | ApiError::AlreadyExists { kind, name } => Some(details_for(kind, name)),
            ApiError::Conflict { kind, name, .. } => Some(details_for(kind, name)),
            ApiError::ApplyConflict { causes, .. } => Some(json!({"causes": causes_json(causes)})),
            ApiError::Invalid { group, kind, name, causes, .. } => Some(json!({
                "name": name,
                "group": group,
                "kind": kind,
                "causes": causes_json(causes),
            })),
            ApiError::Internal(message) => Some(json!({"causes": [{"message": message}]})),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

fn causes_json(causes: &[Cause]) -> Vec<Value> {
    causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect()
}

/// `kind` here is `pods` or `deployments.apps`; the details split it back.
fn details_for(qualified: &str, name: &str) -> Value {
    let (kind, group) = qualified.split_once('.').unwrap_or((qualified, ""));
    let mut details = json!({"name": name, "kind": kind});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    details
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_kubernetes() {
        let status = ApiError::not_found("pods", "nope").to_status();
        assert_eq!(status["message"], "pods \"nope\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"], json!({"name": "nope", "kind": "pods"}));
    }

    #[test]
    fn invalid_lists_its_causes() {
        let err = ApiError::Invalid {
            kind_name: "ConfigMap".into(),
            group: String::new(),
            kind: "ConfigMap".into(),
            name: "BadName".into(),
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                field: "metadata.name".into(),
                message: "Invalid value: \"BadName\": bad".into(),
            }],
        };
        assert_eq!(err.to_string(), "ConfigMap \"BadName\" is invalid: metadata.name: Invalid value: \"BadName\": bad");
        let status = err.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    }

    #[test]
    fn conflict_names_the_group() {
        let status = ApiError::conflict("deployments.apps", "web").to_status();
        assert_eq!(status["details"], json!({"name": "web", "kind": "deployments", "group": "apps"}));
        assert!(status["message"].as_str().is_some_and(|m| m.contains("the object has been modified")));
    }
}
