//! OpenAPI v3, as kubectl reads it:
//! - for each kind, a PATCH operation that lists the `fieldValidation`
//!   parameter, so kubectl leaves validation to the server
//!   (`fieldValidation=Strict`) instead of refusing to create or apply;
//! - the kinds' schemas under Kubernetes' names, with their descriptions
//!   (from k8s-openapi's types), for `kubectl explain`.
//!
//! The PATCH operations list no request body: kubectl then computes a
//! client-side apply's strategic merge patch from its own types, whose
//! merge keys the schemas do not carry.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::resources;
use crate::schema::{TypedKind, with_type};

/// Changes whenever the documents change, so kubectl's HTTP cache refreshes.
const HASH: &str = concat!("capstan-", env!("CARGO_PKG_VERSION"), "-2");

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

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>` as JSON,
/// built once per group.
pub fn group_version(group: &str, version: &str) -> Option<Bytes> {
    static DOCUMENTS: OnceLock<HashMap<&'static str, Bytes>> = OnceLock::new();
    if version != "v1" {
        return None;
    }
    let documents = DOCUMENTS.get_or_init(|| {
        let json = |g| Bytes::from(serde_json::to_vec(&document(g)).unwrap_or_default());
        resources::groups().into_iter().map(|g| (g, json(g))).collect()
    });
    documents.get(group).cloned()
}

fn document(group: &str) -> Value {
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
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::version::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas(group)},
    })
}

/// The group's kinds and every type they use, named as Kubernetes names
/// them (`io.k8s.api.core.v1.Pod`); a kind's schema carries its group,
/// version and kind, which is how kubectl finds it.
fn schemas(group: &str) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let kinds: Vec<_> = resources::in_group(group)
        .filter_map(|r| Some((with_type(r.group, r.kind, AddSchema(&mut generator))?, r)))
        .collect();
    let mut schemas = generator.take_definitions(true);
    for (name, r) in kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
            schema.insert("x-kubernetes-group-version-kind".into(), gvk);
        }
    }
    schemas
}

/// Adds a kind's schema (and those it refers to) to the generator; its name.
struct AddSchema<'a>(&'a mut SchemaGenerator);

impl TypedKind for AddSchema<'_> {
    type Output = String;

    fn with<T: DeserializeOwned + Serialize + JsonSchema>(self) -> String {
        self.0.subschema_for::<T>();
        T::schema_name().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(group: &str, version: &str) -> Value {
        serde_json::from_slice(&group_version(group, version).expect("a document")).expect("JSON")
    }

    #[test]
    fn every_kind_advertises_server_side_validation() {
        let root = root();
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().is_some_and(|u| u.contains("?hash=")));
        let core = parsed("", "v1");
        let cm = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(cm["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
        assert_eq!(cm["parameters"][0]["name"], "fieldValidation");
        assert!(core["paths"]["/api/v1/nodes/{name}"].is_object());
        assert!(group_version("apps", "v2").is_none());
    }

    #[test]
    fn kinds_publish_their_schemas_for_explain() {
        let apps = parsed("apps", "v1");
        let schemas = &apps["components"]["schemas"];
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deployment["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        assert!(deployment["description"].as_str().is_some_and(|d| d.contains("declarative updates")));
        // References point into the same document, with descriptions beside them.
        let spec = &deployment["properties"]["spec"];
        assert_eq!(spec["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec");
        assert!(spec["description"].is_string());
        assert!(schemas["io.k8s.api.core.v1.PodTemplateSpec"].is_object());
        assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
        // No request body: kubectl keeps computing patches from its own types.
        let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(patch.get("requestBody").is_none());
    }
}
