//! Lists: from the watch cache for `resourceVersion=0`, otherwise from the
//! store at one revision, page by page, with opaque continue tokens.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Registry, decode_stored, parse_resource_version, store_error};
use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::StoreError;

const TOKEN_VERSION: &str = "meta.k8s.io/v1";
/// Keys read per store round trip while filling a selective page.
const SCAN_PAGE: i64 = 500;

/// What a list asks for.
#[derive(Default)]
pub struct ListOptions {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
    pub limit: Option<i64>,
    pub continue_token: Option<String>,
    pub resource_version: String,
    pub resource_version_match: String,
}

pub struct ListResult {
    pub items: Vec<Arc<Value>>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
}

impl ListOptions {
    /// Whether an object passes the selectors.
    pub fn matches(&self, resource: &Resource, object: &Value) -> bool {
        let labels = crate::object::labels(object);
        self.labels.as_ref().is_none_or(|s| s.matches(&labels))
            && self.fields.as_ref().is_none_or(|s| s.matches(resource.group, resource.plural, object))
    }
}

impl Registry {
    pub async fn list(&self, resource: &Resource, namespace: &str, opts: &ListOptions) -> ApiResult<ListResult> {
        let named = opts.fields.as_ref().and_then(|f| f.exact("metadata.name"));
        let prefix = match named {
            // One name (kubectl wait, rollout status): read that key's range
            // only; the selector still filters out longer names sharing it.
            Some(name) if !namespace.is_empty() || !resource.namespaced => resource.key(namespace, name),
            _ => resource.key_prefix((!namespace.is_empty()).then_some(namespace)),
        };
        if opts.continue_token.is_none() && opts.resource_version == "0" {
            // "Any" semantics: the cache is recent enough; limit does not apply.
            let snapshot = self.cache(resource)?.snapshot(&prefix);
            let items = snapshot.objects.into_iter().filter(|o| opts.matches(resource, o)).collect();
            return Ok(ListResult { items, resource_version: snapshot.revision, continue_token: None });
        }
        let (start, revision) = match &opts.continue_token {
            Some(token) => {
                if !opts.resource_version.is_empty() {
                    return Err(ApiError::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let (start, revision) = decode_token(token)?;
                (format!("{prefix}{start}"), revision)
            }
            None => {
                let exact = opts.limit.is_some() || opts.resource_version_match == "Exact";
                let revision = match parse_resource_version(&opts.resource_version)? {
                    Some(rv) if exact => rv,
                    _ => 0,
                };
                (prefix.clone(), revision)
            }
        };
        self.list_from_store(resource, &prefix, start, revision, opts).await
    }

    async fn list_from_store(
        &self,
        resource: &Resource,
        prefix: &str,
        mut start: String,
        mut revision: i64,
        opts: &ListOptions,
    ) -> ApiResult<ListResult> {
        let limit = opts.limit.filter(|l| *l > 0);
        let selective = opts.labels.is_some() || opts.fields.is_some();
        let mut items = Vec::new();
        loop {
            // One past the limit tells whether a continue token is needed.
            let want = match limit {
                None => 0,
                Some(l) if selective => (l + 1 - items.len() as i64).max(SCAN_PAGE),
                Some(l) => l + 1 - items.len() as i64,
            };
            let page = self.store.list(prefix, &start, want, revision).await.map_err(|e| match e {
                StoreError::Compacted(_) if opts.continue_token.is_some() => ApiError::Expired(EXPIRED_TOKEN.into()),
                StoreError::Compacted(_) => {
                    ApiError::Expired(format!("too old resource version: {}", opts.resource_version))
                }
                other => store_error(other),
            })?;
            revision = page.revision;
            let mut last_key = None;
            for (key, stored) in page.items {
                if let Some(limit) = limit
                    && items.len() as i64 == limit
                {
                    // One more match exists beyond the page: resume at it.
                    let token = encode_token(&key[prefix.len()..], revision);
                    return Ok(ListResult { items, resource_version: revision, continue_token: Some(token) });
                }
                let object = decode_stored(&stored.value, stored.mod_revision)?;
                if opts.matches(resource, &object) {
                    items.push(Arc::new(object));
                }
                last_key = Some(key);
            }
            match last_key {
                Some(key) if page.more => start = format!("{key}\0"),
                _ => return Ok(ListResult { items, resource_version: revision, continue_token: None }),
            }
        }
    }
}

const EXPIRED_TOKEN: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to retrieve \
the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that \
were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// A token names where the next page starts (relative to the prefix, so it
/// cannot reach another resource) and the revision of the first page.
fn encode_token(start: &str, revision: i64) -> String {
    STANDARD.encode(json!({"v": TOKEN_VERSION, "rv": revision, "start": start}).to_string())
}

fn decode_token(token: &str) -> ApiResult<(String, i64)> {
    let invalid = || ApiError::bad_request("continue key is not valid: the token cannot be decoded");
    let bytes = STANDARD.decode(token).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if value["v"] != TOKEN_VERSION {
        return Err(invalid());
    }
    let start = value["start"].as_str().ok_or_else(invalid)?;
    let revision = value["rv"].as_i64().filter(|rv| *rv > 0).ok_or_else(invalid)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(invalid());
    }
    Ok((start.to_string(), revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let token = encode_token("default/web-2", 42);
        assert_eq!(decode_token(&token).ok(), Some(("default/web-2".to_string(), 42)));
        assert!(decode_token("not base64!").is_err());
        let escape = STANDARD.encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/"}"#);
        assert!(decode_token(&escape).is_err());
        let zero = STANDARD.encode(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#);
        assert!(decode_token(&zero).is_err());
    }
}
