//! Server-side `meta.k8s.io/v1` Table printing: the columns and preformatted cells `kubectl get` shows.
//!
//! Columns and cell formatting follow kube-apiserver 1.33 (`pkg/printers/internalversion/printers.go`), which always
//! prints the wide (`priority: 1`) columns too and lets the client hide them. Objects are read as their v1 JSON; a
//! field that apiserver defaulting always fills is read with that default so an undefaulted object prints the same.

mod apps;
mod batch;
mod coordination;
mod core;
mod discovery;
mod pod;
mod rbac;

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// One column of a Table, as `meta.k8s.io/v1` `TableColumnDefinition` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    /// The OpenAPI type Kubernetes declares: "string", "integer", "boolean" or "date".
    pub kind: &'static str,
    /// "name" marks the column holding the object's name; empty otherwise.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for the default view, 1 for columns only `-o wide` shows.
    pub priority: u8,
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some \
resources may allow a client to request the generation of an appropriate name automatically. Name is primarily \
intended for creation idempotence and configuration definition. Cannot be updated. More info: \
https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. \
It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It \
is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The object-name column every printer starts with.
const NAME: Column = Column { name: "Name", kind: "string", format: "name", description: NAME_DOC, priority: 0 };
/// The AGE column computed from `metadata.creationTimestamp`.
const AGE: Column = Column { name: "Age", kind: "string", format: "", description: CREATED_DOC, priority: 0 };

/// A string column in the default view.
const fn text(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "string", format: "", description, priority: 0 }
}

/// An integer column in the default view.
const fn integer(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "integer", format: "", description, priority: 0 }
}

/// A string column only `-o wide` shows.
const fn wide(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "string", format: "", description, priority: 1 }
}

const CONTAINERS: Column = wide("Containers", "Names of each container in the template.");
const IMAGES: Column = wide("Images", "Images referenced by each container in the template.");

/// Kubernetes' `DefaultTableConvertor`, used for every resource without a printer (roles, clusterroles, CRDs ...).
static DEFAULT_COLUMNS: [Column; 2] =
    [NAME, Column { name: "Created At", kind: "date", format: "", description: CREATED_DOC, priority: 0 }];

type CellsFn = fn(&Value, SystemTime) -> Vec<Value>;

/// The printer registered for a resource, if Kubernetes has one.
fn printer(group: &str, resource: &str) -> Option<(&'static [Column], CellsFn)> {
    Some(match (group, resource) {
        ("", "pods") => (&pod::COLUMNS, pod::cells),
        ("", "nodes") => (&core::NODE_COLUMNS, core::node_cells),
        ("", "namespaces") => (&core::NAMESPACE_COLUMNS, core::namespace_cells),
        ("", "services") => (&core::SERVICE_COLUMNS, core::service_cells),
        ("", "endpoints") => (&core::ENDPOINTS_COLUMNS, core::endpoints_cells),
        ("", "configmaps") => (&core::CONFIGMAP_COLUMNS, core::configmap_cells),
        ("", "secrets") => (&core::SECRET_COLUMNS, core::secret_cells),
        ("", "serviceaccounts") => (&core::SERVICEACCOUNT_COLUMNS, core::serviceaccount_cells),
        ("", "events") => (&core::EVENT_COLUMNS, core::event_cells),
        ("apps", "replicasets") => (&apps::REPLICASET_COLUMNS, apps::replicaset_cells),
        ("apps", "deployments") => (&apps::DEPLOYMENT_COLUMNS, apps::deployment_cells),
        ("apps", "daemonsets") => (&apps::DAEMONSET_COLUMNS, apps::daemonset_cells),
        ("apps", "statefulsets") => (&apps::STATEFULSET_COLUMNS, apps::statefulset_cells),
        ("batch", "jobs") => (&batch::JOB_COLUMNS, batch::job_cells),
        ("batch", "cronjobs") => (&batch::CRONJOB_COLUMNS, batch::cronjob_cells),
        ("coordination.k8s.io", "leases") => (&coordination::LEASE_COLUMNS, coordination::lease_cells),
        ("discovery.k8s.io", "endpointslices") => (&discovery::ENDPOINTSLICE_COLUMNS, discovery::endpointslice_cells),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            (&rbac::BINDING_COLUMNS, rbac::binding_cells)
        }
        _ => return None,
    })
}

/// Columns for a resource (plural, e.g. "pods") in an API group ("" for core, "apps", "batch", ...).
pub fn columns(group: &str, resource: &str) -> &'static [Column] {
    printer(group, resource).map_or(&DEFAULT_COLUMNS, |(columns, _)| columns)
}

/// The cells of one row, in column order, as JSON values (strings, integers).
pub fn cells(group: &str, resource: &str, object: &Value, now: SystemTime) -> Vec<Value> {
    match printer(group, resource) {
        Some((_, cells)) => cells(object, now),
        None => vec![name(object), created_at(&object["metadata"]["creationTimestamp"]).into()],
    }
}

/// Kubernetes' short human duration ("5s", "3m", "2d3h", "4y" ... exactly as apimachinery's duration.HumanDuration)
/// for AGE cells.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    let days = hours / 24;
    if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            d => format!("{}y{d}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

/// The time between two instants as apimachinery prints it, tolerating up to two seconds of clock skew backwards.
fn human_between(from: SystemTime, to: SystemTime) -> String {
    match to.duration_since(from) {
        Ok(d) => human_duration(d),
        Err(e) if e.duration() >= Duration::from_secs(2) => "<invalid>".into(),
        Err(_) => "0s".into(),
    }
}

/// Parses a Kubernetes timestamp (`metav1.Time` or `MicroTime`); `None` when absent, as Go's zero time.
fn timestamp(v: &Value) -> Option<SystemTime> {
    let s = v.as_str()?;
    if let Ok(t) = humantime::parse_rfc3339(s) {
        return Some(t);
    }
    // Kubernetes itself always writes UTC, but a hand-written object may carry another offset.
    let (base, offset) = s.split_at_checked(s.len().checked_sub(6)?)?;
    let (sign, hhmm) = offset.split_at_checked(1)?;
    let (hh, mm) = hhmm.split_once(':')?;
    let shift = Duration::from_secs(hh.parse::<u64>().ok()? * 3600 + mm.parse::<u64>().ok()? * 60);
    let local = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    match sign {
        "+" => local.checked_sub(shift),
        "-" => local.checked_add(shift),
        _ => None,
    }
}

/// Time since a timestamp, "<unknown>" when it is missing (printers.go `translateTimestampSince`).
fn since(v: &Value, now: SystemTime) -> String {
    timestamp(v).map_or_else(|| "<unknown>".into(), |t| human_between(t, now))
}

/// The AGE cell.
fn age(object: &Value, now: SystemTime) -> Value {
    since(&object["metadata"]["creationTimestamp"], now).into()
}

/// The "Created At" cell: RFC 3339 in UTC to the second, Go's zero time when missing.
fn created_at(v: &Value) -> String {
    timestamp(v).map_or_else(|| "0001-01-01T00:00:00Z".into(), |t| humantime::format_rfc3339_seconds(t).to_string())
}

/// The NAME cell.
fn name(object: &Value) -> Value {
    str_of(&object["metadata"]["name"]).into()
}

/// A string field, empty when absent as in the Go structs.
fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// An integer field, zero when absent.
fn int_of(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// A list field, empty when absent.
fn list_of(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Entries of a list or map field, as Go's `len()`.
fn len_of(v: &Value) -> i64 {
    let n = match v {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// "<none>" stands in for an empty cell.
fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// The CONTAINERS and IMAGES cells of a pod template.
fn containers_and_images(template: &Value) -> [Value; 2] {
    let containers = list_of(&template["spec"]["containers"]);
    let join = |field: &str| containers.iter().map(|c| str_of(&c[field])).collect::<Vec<_>>().join(",");
    [join("name").into(), join("image").into()]
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by commas, "<none>" when empty.
fn format_labels(map: &Value) -> String {
    let mut pairs: Vec<String> =
        map.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", str_of(v))).collect();
    pairs.sort();
    or_none(pairs.join(","))
}

/// `LabelSelectorAsSelector(...).String()`: requirements sorted by key, set values sorted; `None` for a selector
/// Kubernetes rejects.
fn selector_string(selector: &Value) -> Option<String> {
    let mut requirements: Vec<(&str, String)> = Vec::new();
    for (key, value) in selector["matchLabels"].as_object().into_iter().flatten() {
        requirements.push((key, format!("{key}={}", str_of(value))));
    }
    for expr in list_of(&selector["matchExpressions"]) {
        let key = str_of(&expr["key"]);
        let mut values: Vec<&str> = list_of(&expr["values"]).iter().map(str_of).collect();
        values.sort_unstable();
        let requirement = match (str_of(&expr["operator"]), values.is_empty()) {
            ("In", false) => format!("{key} in ({})", values.join(",")),
            ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
            ("Exists", true) => key.to_string(),
            ("DoesNotExist", true) => format!("!{key}"),
            _ => return None,
        };
        requirements.push((key, requirement));
    }
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    Some(requirements.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
}

/// `metav1.FormatLabelSelector`: "<none>" when empty, "<error>" when invalid.
fn format_selector(selector: &Value) -> String {
    selector_string(selector).map_or_else(|| "<error>".into(), or_none)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).expect("test timestamp")
    }

    #[test]
    fn human_duration_thresholds() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (599, "9m59s"),
            (600, "10m"),
            (90 * 60, "90m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600 + 59 * 60, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (3 * 86400, "3d"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (7 * 86400 + 23 * 3600, "7d23h"),
            (8 * 86400 + 5 * 3600, "8d"),
            (400 * 86400, "400d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (4 * 365 * 86400, "4y"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (8 * 365 * 86400 + 100 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
        assert_eq!(human_duration(Duration::from_millis(59_999)), "59s");
    }

    #[test]
    fn clock_skew_and_missing_timestamps() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(since(&json!("2024-05-01T12:00:01Z"), now), "0s");
        assert_eq!(since(&json!("2024-05-01T12:00:02Z"), now), "<invalid>");
        assert_eq!(since(&json!("2024-05-01T11:55:00.123456Z"), now), "4m59s");
        assert_eq!(since(&json!("2024-05-01T13:00:00+02:00"), now), "60m");
        assert_eq!(since(&Value::Null, now), "<unknown>");
    }

    #[test]
    fn default_table_for_unknown_resources() {
        let role = json!({"metadata": {"name": "pod-reader", "creationTimestamp": "2024-04-30T08:15:30Z"}});
        let now = at("2024-05-01T12:00:00Z");
        for (group, resource) in [("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles")]
        {
            let names: Vec<_> = columns(group, resource).iter().map(|c| (c.name, c.kind, c.format)).collect();
            assert_eq!(names, [("Name", "string", "name"), ("Created At", "date", "")]);
            assert_eq!(cells(group, resource, &role, now), [json!("pod-reader"), json!("2024-04-30T08:15:30Z")]);
        }
        assert_eq!(cells("example.com", "widgets", &json!({}), now), [json!(""), json!("0001-01-01T00:00:00Z")]);
    }

    #[test]
    fn every_printer_fills_every_column_even_for_an_empty_object() {
        let now = at("2024-05-01T12:00:00Z");
        let resources = [
            ("", "pods"),
            ("", "nodes"),
            ("", "namespaces"),
            ("", "services"),
            ("", "endpoints"),
            ("", "configmaps"),
            ("", "secrets"),
            ("", "serviceaccounts"),
            ("", "events"),
            ("apps", "replicasets"),
            ("apps", "deployments"),
            ("apps", "daemonsets"),
            ("apps", "statefulsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("coordination.k8s.io", "leases"),
            ("discovery.k8s.io", "endpointslices"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ];
        for (group, resource) in resources {
            assert!(printer(group, resource).is_some(), "{group}/{resource}");
            let columns = columns(group, resource);
            assert_eq!(columns.iter().filter(|c| c.format == "name").count(), 1, "{resource}");
            assert_eq!(cells(group, resource, &json!({}), now).len(), columns.len(), "{resource}");
        }
    }

    #[test]
    fn label_selectors() {
        assert_eq!(format_labels(&json!({"tier": "web", "app": "shop"})), "app=shop,tier=web");
        assert_eq!(format_labels(&Value::Null), "<none>");
        let selector = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "cache"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "zone", "operator": "Exists"}
            ]
        });
        assert_eq!(format_selector(&selector), "app=web,!canary,env notin (dev),tier in (cache,frontend),zone");
        assert_eq!(format_selector(&json!({})), "<none>");
        assert_eq!(format_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]})), "<error>");
    }
}
