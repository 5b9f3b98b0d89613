//! What a request asks for, read from its method, path and query alone:
//! Kubernetes' RequestInfo. Authorization and dispatch both use it.

use std::collections::HashMap;

use http::Method;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, Resource};

/// A request for a resource (as opposed to discovery, health, …).
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub resource: &'static Resource,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`: RBAC's verbs.
    pub verb: &'static str,
    /// Empty for cluster-scoped resources and all-namespace lists.
    pub namespace: String,
    pub name: String,
    pub subresource: String,
}

#[derive(Debug, Clone)]
pub enum Target {
    Resource(ResourceRequest),
    /// `/api`, `/apis`: group lists (legacy or aggregated).
    RootDiscovery {
        legacy: bool,
    },
    /// `/apis/<group>`.
    GroupDiscovery {
        group: String,
    },
    /// `/api/v1`, `/apis/<group>/<version>`.
    VersionDiscovery {
        group: String,
        version: String,
    },
    OpenApiV3Root,
    OpenApiV3 {
        group: String,
        version: String,
    },
    OpenApiV2,
    Version,
    Health {
        check: String,
    },
    Metrics,
    NotFound,
}

/// The query parameters, decoded; repeated keys keep the last value.
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(key), percent_decode(value));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(text) => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {text:?} is not an integer"))),
        }
    }
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// Reads the target of a request from its method, path and `watch` flag.
pub fn route(method: &Method, path: &str, query: &Query) -> Target {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Target::Version,
        ["healthz" | "livez" | "readyz", rest @ ..] => Target::Health { check: rest.join("/") },
        ["metrics"] => Target::Metrics,
        ["openapi", "v3"] => Target::OpenApiV3Root,
        ["openapi", "v3", "api", version] => Target::OpenApiV3 { group: String::new(), version: version.to_string() },
        ["openapi", "v3", "apis", group, version] => {
            Target::OpenApiV3 { group: group.to_string(), version: version.to_string() }
        }
        ["openapi", "v2"] => Target::OpenApiV2,
        ["api"] => Target::RootDiscovery { legacy: true },
        ["apis"] => Target::RootDiscovery { legacy: false },
        ["api", version] => Target::VersionDiscovery { group: String::new(), version: version.to_string() },
        ["apis", group] => Target::GroupDiscovery { group: group.to_string() },
        ["apis", group, version] => Target::VersionDiscovery { group: group.to_string(), version: version.to_string() },
        ["api", version, rest @ ..] => resource_target(method, "", version, rest, query),
        ["apis", group, version, rest @ ..] => resource_target(method, group, version, rest, query),
        _ => Target::NotFound,
    }
}

fn resource_target(method: &Method, group: &str, version: &str, rest: &[&str], query: &Query) -> Target {
    // namespaces/<ns>/<resource>/… unless <resource> is a subresource of the
    // namespace itself (status, finalize).
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !matches!(*resource, "status" | "finalize") => {
            (ns.to_string(), [&[*resource][..], tail].concat())
        }
        other => (String::new(), other.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, "", ""),
        [plural, name] => (*plural, *name, ""),
        [plural, name, sub] => (*plural, *name, *sub),
        _ => return Target::NotFound,
    };
    let Some(resource) = resources::find(group, version, plural) else { return Target::NotFound };
    if !namespace.is_empty() && !resource.namespaced {
        return Target::NotFound;
    }
    if !subresource.is_empty() && resource.subresource(subresource).is_none() {
        return Target::NotFound;
    }
    let collection = name.is_empty();
    let verb = match *method {
        Method::GET | Method::HEAD if collection && query.flag("watch") => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => return Target::NotFound,
    };
    Target::Resource(ResourceRequest {
        resource,
        verb,
        namespace,
        name: name.to_string(),
        subresource: subresource.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, path: &str, query: &str) -> ResourceRequest {
        match route(&method, path, &Query::parse(Some(query))) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths_are_read_like_kubernetes() {
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods", "limit=500");
        assert_eq!((r.resource.plural, r.verb, r.namespace.as_str(), r.name.as_str()), ("pods", "list", "default", ""));
        let r = resource(Method::GET, "/api/v1/pods", "watch=true");
        assert_eq!((r.verb, r.namespace.as_str()), ("watch", ""));
        let r = resource(Method::PATCH, "/apis/apps/v1/namespaces/default/deployments/web/scale", "");
        assert_eq!(
            (r.resource.kind, r.verb, r.name.as_str(), r.subresource.as_str()),
            ("Deployment", "patch", "web", "scale")
        );
        let r = resource(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!((r.resource.plural, r.verb, r.name.as_str()), ("namespaces", "get", "kube-system"));
        let r = resource(Method::PUT, "/api/v1/namespaces/ns1/finalize", "");
        assert_eq!((r.resource.plural, r.name.as_str(), r.subresource.as_str()), ("namespaces", "ns1", "finalize"));
        let r = resource(Method::DELETE, "/api/v1/namespaces/default/configmaps", "");
        assert_eq!(r.verb, "deletecollection");
    }

    #[test]
    fn unknown_paths_are_not_found() {
        let q = Query::default();
        assert!(matches!(route(&Method::GET, "/api/v1/widgets", &q), Target::NotFound));
        assert!(matches!(route(&Method::GET, "/api/v1/namespaces/default/nodes", &q), Target::NotFound));
        assert!(matches!(route(&Method::GET, "/api/v1/namespaces/default/pods/p/bogus", &q), Target::NotFound));
        assert!(matches!(route(&Method::GET, "/apis/apps/v1", &q), Target::VersionDiscovery { .. }));
        assert!(matches!(route(&Method::GET, "/readyz/ping", &q), Target::Health { .. }));
    }

    #[test]
    fn queries_are_decoded() {
        let q = Query::parse(Some("fieldSelector=metadata.name%3Dweb&labelSelector=app+in+(a%2Cb)&limit=5&x=%zz"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=web"));
        assert_eq!(q.get("labelSelector"), Some("app in (a,b)"));
        assert_eq!(q.int("limit").ok().flatten(), Some(5));
        assert_eq!(q.get("x"), Some("%zz"));
        assert!(q.int("x").is_err());
    }
}
