//! Discovery documents, aggregated (apidiscovery.k8s.io v2 and v2beta1,
//! chosen by Accept and announced by Content-Type, which is what kubectl
//! reads) and legacy (APIVersions, APIGroupList, APIResourceList).

use serde_json::{Value, json};

use crate::resources::{self, Resource};

/// The aggregated format a client accepts, if any, best first.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    let wants = |v: &str| {
        accept.split(',').any(|part| {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            params.contains(&"as=APIGroupDiscoveryList") && params.contains(&format!("v={v}").as_str())
        })
    };
    if wants("v2") {
        Some("v2")
    } else if wants("v2beta1") {
        Some("v2beta1")
    } else {
        None
    }
}

pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/api` (legacy: true) or `/apis` as an APIGroupDiscoveryList.
pub fn aggregated(legacy: bool, version: &str) -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .filter(|g| g.is_empty() == legacy)
        .map(|group| {
            let resources: Vec<Value> = resources::in_group(group).map(aggregated_resource).collect();
            let mut item = json!({
                "metadata": {},
                "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
            });
            if !group.is_empty() {
                item["metadata"]["name"] = json!(group);
            }
            item
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": groups,
    })
}

fn aggregated_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let mut sub = json!({"subresource": s.name, "verbs": s.verbs});
            if !s.kind.is_empty() {
                sub["responseKind"] = json!({"group": s.group, "version": s.version, "kind": s.kind});
            } else {
                sub["responseKind"] = json!({"group": r.group, "version": r.version, "kind": r.kind});
            }
            sub
        })
        .collect();
    let mut resource = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        resource["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        resource["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        resource["subresources"] = json!(subresources);
    }
    resource
}

/// `/api` in the legacy format.
pub fn legacy_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_document(group: &str) -> Value {
    let version = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [version.clone()], "preferredVersion": version})
}

/// `/apis` in the legacy format.
pub fn legacy_groups() -> Value {
    let groups: Vec<Value> = resources::groups().into_iter().filter(|g| !g.is_empty()).map(group_document).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if the group is served.
pub fn legacy_group(group: &str) -> Option<Value> {
    if group.is_empty() || !resources::groups().contains(&group) {
        return None;
    }
    let mut document = group_document(group);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

/// `/api/v1` or `/apis/<group>/v1`: resources and subresources as entries.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !resources::groups().contains(&group) {
        return None;
    }
    let mut entries = Vec::new();
    for r in resources::in_group(group) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        entries.push(entry);
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": if s.kind.is_empty() { r.kind } else { s.kind },
                "verbs": s.verbs,
            });
            if !s.group.is_empty() {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            entries.push(sub);
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": resources::api_version(group, version),
        "resources": entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_the_format() {
        let kubectl_133 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
            application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl_133), Some("v2"));
        let kubectl_129 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl_129), Some("v2beta1"));
        assert_eq!(aggregated_version("application/json, */*"), None);
    }

    #[test]
    fn aggregated_documents_carry_what_kubectl_needs() {
        let core = aggregated(true, "v2");
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "pods"))
            .cloned()
            .expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let apps = aggregated(false, "v2");
        let deploy = apps["items"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["metadata"]["name"] == "apps"))
            .map(|g| g["versions"][0]["resources"][0].clone())
            .expect("apps");
        assert_eq!(deploy["subresources"][1]["responseKind"]["kind"], "Scale");
    }

    #[test]
    fn legacy_lists_subresources_as_entries() {
        let core = resource_list("", "v1").expect("core");
        let names: Vec<&str> =
            core["resources"].as_array().expect("list").iter().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.contains(&"pods/eviction"));
        assert!(resource_list("apps", "v2").is_none());
        assert!(legacy_group("apps").is_some());
        assert!(legacy_group("nope.example").is_none());
    }
}
