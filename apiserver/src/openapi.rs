//! A minimal OpenAPI v3: for each kind, a PATCH operation that lists the
//! `fieldValidation` parameter. kubectl then leaves validation to the server
//! (`fieldValidation=Strict`) instead of refusing to create or apply. No
//! schemas are published, so `kubectl explain` is not supported.

use serde_json::{Map, Value, json};

use crate::resources;

/// Changes whenever the documents change, so kubectl's HTTP cache refreshes.
const HASH: &str = concat!("capstan-", env!("CARGO_PKG_VERSION"), "-1");

fn group_path(group: &str) -> String {
    if group.is_empty() { "api/v1".to_string() } else { format!("apis/{group}/v1") }
}

/// `/openapi/v3`.
pub fn root() -> Value {
    let mut paths = Map::new();
    for group in resources::groups() {
        let path = group_path(group);
        paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={HASH}")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !resources::groups().contains(&group) {
        return None;
    }
    let mut paths = Map::new();
    for r in resources::in_group(group).filter(|r| r.verbs.contains(&"patch")) {
        let scope = if r.namespaced { "namespaces/{namespace}/" } else { "" };
        let path = format!("/{}/{scope}{}/{{name}}", group_path(group), r.plural);
        paths.insert(
            path,
            json!({"patch": {
                "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
                ],
                "responses": {"200": {"description": "OK"}},
            }}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::version::GIT_VERSION},
        "paths": paths,
        "components": {},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_advertises_server_side_validation() {
        let root = root();
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().is_some_and(|u| u.contains("?hash=")));
        let core = group_version("", "v1").expect("core");
        let cm = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(cm["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
        assert_eq!(cm["parameters"][0]["name"], "fieldValidation");
        assert!(core["paths"]["/api/v1/nodes/{name}"].is_object());
        assert!(group_version("apps", "v2").is_none());
    }
}
