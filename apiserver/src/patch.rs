//! The four patch types kubectl sends, told apart by Content-Type.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::strategic;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 (`kubectl patch --type=json`, `rollout undo`).
    Json,
    /// RFC 7386 (`label`, `annotate`, `scale`).
    Merge,
    /// Kubernetes' strategic merge patch (`apply`, `patch`, `cordon`, …).
    Strategic,
    /// Server-side apply (`apply --server-side`).
    Apply,
}

const ACCEPTED: &str = "application/json-patch+json, application/merge-patch+json, \
application/strategic-merge-patch+json, application/apply-patch+yaml";

impl PatchType {
    pub fn from_content_type(content_type: &str) -> ApiResult<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            _ => Err(ApiError::UnsupportedMediaType { accepted: ACCEPTED.to_string() }),
        }
    }
}

/// Applies a JSON, merge or strategic patch to `current` (server-side
/// apply is the registry's: it also creates and records ownership).
pub fn apply(patch_type: PatchType, group: &str, kind: &str, current: &Value, body: &[u8]) -> ApiResult<Value> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is not a list of operations: {e}")))?;
            let mut result = current.clone();
            json_patch::patch(&mut result, &ops).map_err(|e| ApiError::Invalid {
                kind_name: kind.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                name: crate::object::name(current).to_string(),
                causes: vec![crate::error::Cause {
                    reason: "FieldValueInvalid".into(),
                    field: String::new(),
                    message: format!("the JSON patch could not be applied: {e}"),
                }],
            })?;
            Ok(result)
        }
        PatchType::Merge => {
            let patch = patch_document(body)?;
            let mut result = current.clone();
            json_patch::merge(&mut result, &patch);
            Ok(result)
        }
        PatchType::Strategic => {
            let patch = patch_document(body)?;
            let schema = strategic::schema_for(group, kind);
            strategic::apply(current, &patch, &schema).map_err(|e| ApiError::bad_request(e.to_string()))
        }
        PatchType::Apply => Err(ApiError::Internal("server-side apply is handled by the registry".into())),
    }
}

/// A merge or strategic patch must be a JSON object.
fn patch_document(body: &[u8]) -> ApiResult<Value> {
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("the patch must be a JSON object"));
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_pick_the_patch_type() {
        assert_eq!(PatchType::from_content_type("application/merge-patch+json").ok(), Some(PatchType::Merge));
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8").ok(),
            Some(PatchType::Strategic)
        );
        assert_eq!(PatchType::from_content_type("application/apply-patch+yaml").ok(), Some(PatchType::Apply));
        assert!(matches!(PatchType::from_content_type("text/plain"), Err(ApiError::UnsupportedMediaType { .. })));
    }

    #[test]
    fn json_and_merge_patches() {
        let current = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let merged =
            apply(PatchType::Merge, "", "ConfigMap", &current, br#"{"metadata":{"labels":{"x":null,"y":"2"}}}"#)
                .expect("merge");
        assert_eq!(merged["metadata"]["labels"], json!({"y": "2"}));
        let patched =
            apply(PatchType::Json, "", "ConfigMap", &current, br#"[{"op":"replace","path":"/data/k","value":"w"}]"#)
                .expect("json patch");
        assert_eq!(patched["data"]["k"], "w");
        let failed = apply(PatchType::Json, "", "ConfigMap", &current, br#"[{"op":"remove","path":"/nope"}]"#);
        assert!(matches!(failed, Err(ApiError::Invalid { .. })));
        assert!(matches!(apply(PatchType::Merge, "", "ConfigMap", &current, b"[1]"), Err(ApiError::BadRequest(_))));
    }
}
