//! Server-side printing: the columns `kubectl get` shows for each
//! resource (Kubernetes' pkg/printers/internalversion), with `priority: 1`
//! for the `-o wide` ones, and the preformatted cells of one object.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: u8,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    let format = if matches!(name.as_bytes(), b"Name") { "name" } else { "" };
    Column { name, kind, format, description: "", priority }
}

const NAME: Column = col("Name", "string", 0);
const AGE: Column = col("Age", "string", 0);

static PODS: &[Column] = &[
    NAME,
    col("Ready", "string", 0),
    col("Status", "string", 0),
    col("Restarts", "string", 0),
    AGE,
    col("IP", "string", 1),
    col("Node", "string", 1),
    col("Nominated Node", "string", 1),
    col("Readiness Gates", "string", 1),
];
static NODES: &[Column] = &[
    NAME,
    col("Status", "string", 0),
    col("Roles", "string", 0),
    AGE,
    col("Version", "string", 0),
    col("Internal-IP", "string", 1),
    col("External-IP", "string", 1),
    col("OS-Image", "string", 1),
    col("Kernel-Version", "string", 1),
    col("Container-Runtime", "string", 1),
];
static NAMESPACES: &[Column] = &[NAME, col("Status", "string", 0), AGE];
static SERVICES: &[Column] = &[
    NAME,
    col("Type", "string", 0),
    col("Cluster-IP", "string", 0),
    col("External-IP", "string", 0),
    col("Port(s)", "string", 0),
    AGE,
    col("Selector", "string", 1),
];
static ENDPOINTS: &[Column] = &[NAME, col("Endpoints", "string", 0), AGE];
static CONFIGMAPS: &[Column] = &[NAME, col("Data", "string", 0), AGE];
static SECRETS: &[Column] = &[NAME, col("Type", "string", 0), col("Data", "string", 0), AGE];
static SERVICE_ACCOUNTS: &[Column] = &[NAME, col("Secrets", "string", 0), AGE];
static EVENTS: &[Column] = &[
    col("Last Seen", "string", 0),
    col("Type", "string", 0),
    col("Reason", "string", 0),
    col("Object", "string", 0),
    col("Subobject", "string", 1),
    col("Source", "string", 1),
    col("Message", "string", 0),
    col("First Seen", "string", 1),
    col("Count", "string", 1),
    col("Name", "string", 1),
];
static DEPLOYMENTS: &[Column] = &[
    NAME,
    col("Ready", "string", 0),
    col("Up-to-date", "string", 0),
    col("Available", "string", 0),
    AGE,
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
];
static REPLICASETS: &[Column] = &[
    NAME,
    col("Desired", "integer", 0),
    col("Current", "integer", 0),
    col("Ready", "integer", 0),
    AGE,
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
];
static DAEMONSETS: &[Column] = &[
    NAME,
    col("Desired", "integer", 0),
    col("Current", "integer", 0),
    col("Ready", "integer", 0),
    col("Up-to-date", "integer", 0),
    col("Available", "integer", 0),
    col("Node Selector", "string", 0),
    AGE,
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
];
static STATEFULSETS: &[Column] =
    &[NAME, col("Ready", "string", 0), AGE, col("Containers", "string", 1), col("Images", "string", 1)];
static JOBS: &[Column] = &[
    NAME,
    col("Status", "string", 0),
    col("Completions", "string", 0),
    col("Duration", "string", 0),
    AGE,
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
];
static CRONJOBS: &[Column] = &[
    NAME,
    col("Schedule", "string", 0),
    col("Timezone", "string", 0),
    col("Suspend", "boolean", 0),
    col("Active", "integer", 0),
    col("Last Schedule", "string", 0),
    AGE,
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
];
static LEASES: &[Column] = &[NAME, col("Holder", "string", 0), AGE];
static ENDPOINT_SLICES: &[Column] =
    &[NAME, col("AddressType", "string", 0), col("Ports", "string", 0), col("Endpoints", "string", 0), AGE];
static ROLES: &[Column] = &[NAME, col("Created At", "date", 0)];
static BINDINGS: &[Column] = &[
    NAME,
    col("Role", "string", 0),
    AGE,
    col("Users", "string", 1),
    col("Groups", "string", 1),
    col("ServiceAccounts", "string", 1),
];

pub fn columns(group: &str, resource: &str) -> &'static [Column] {
    match (group, resource) {
        ("", "pods") => PODS,
        ("", "nodes") => NODES,
        ("", "namespaces") => NAMESPACES,
        ("", "services") => SERVICES,
        ("", "endpoints") => ENDPOINTS,
        ("", "configmaps") => CONFIGMAPS,
        ("", "secrets") => SECRETS,
        ("", "serviceaccounts") => SERVICE_ACCOUNTS,
        ("", "events") => EVENTS,
        ("apps", "deployments") => DEPLOYMENTS,
        ("apps", "replicasets") => REPLICASETS,
        ("apps", "daemonsets") => DAEMONSETS,
        ("apps", "statefulsets") => STATEFULSETS,
        ("batch", "jobs") => JOBS,
        ("batch", "cronjobs") => CRONJOBS,
        ("coordination.k8s.io", "leases") => LEASES,
        ("discovery.k8s.io", "endpointslices") => ENDPOINT_SLICES,
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => BINDINGS,
        _ => ROLES,
    }
}

/// The cells of one row, in column order.
pub fn cells(group: &str, resource: &str, o: &Value, now: SystemTime) -> Vec<Value> {
    let name = json!(o["metadata"]["name"].as_str().unwrap_or(""));
    let age = json!(age_of(&o["metadata"]["creationTimestamp"], now));
    let spec = &o["spec"];
    let status = &o["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    match (group, resource) {
        ("", "pods") => pod(o, now),
        ("", "nodes") => {
            let addresses = |kind: &str| {
                let found = status["addresses"].as_array().into_iter().flatten().find(|a| a["type"] == kind);
                none_if_empty(found.and_then(|a| a["address"].as_str()).unwrap_or(""))
            };
            let info = &status["nodeInfo"];
            vec![
                name,
                json!(node_status(o)),
                json!(node_roles(o)),
                age,
                json!(info["kubeletVersion"].as_str().unwrap_or("")),
                json!(addresses("InternalIP")),
                json!(addresses("ExternalIP")),
                json!(none_if_empty(info["osImage"].as_str().unwrap_or(""))),
                json!(none_if_empty(info["kernelVersion"].as_str().unwrap_or(""))),
                json!(none_if_empty(info["containerRuntimeVersion"].as_str().unwrap_or(""))),
            ]
        }
        ("", "namespaces") => vec![name, json!(status["phase"].as_str().unwrap_or("")), age],
        ("", "services") => {
            let kind = spec["type"].as_str().unwrap_or("ClusterIP");
            let external = match kind {
                "ExternalName" => spec["externalName"].as_str().unwrap_or("<none>").to_string(),
                "LoadBalancer" => {
                    let ingress: Vec<&str> = status["loadBalancer"]["ingress"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                        .collect();
                    if ingress.is_empty() { "<pending>".to_string() } else { ingress.join(",") }
                }
                _ => none_if_empty(&strings(&spec["externalIPs"]).join(",")),
            };
            vec![
                name,
                json!(kind),
                json!(none_if_empty(spec["clusterIP"].as_str().unwrap_or(""))),
                json!(external),
                json!(service_ports(spec)),
                age,
                json!(map_selector(&spec["selector"])),
            ]
        }
        ("", "endpoints") => vec![name, json!(endpoints(o)), age],
        ("", "configmaps") => vec![name, json!(count(&o["data"]) + count(&o["binaryData"])), age],
        ("", "secrets") => vec![name, json!(o["type"].as_str().unwrap_or("")), json!(count(&o["data"])), age],
        ("", "serviceaccounts") => vec![name, json!(o["secrets"].as_array().map_or(0, Vec::len)), age],
        ("", "events") => {
            let involved = &o["involvedObject"];
            let object = format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or("").to_lowercase(),
                involved["name"].as_str().unwrap_or("")
            );
            let last = if o["lastTimestamp"].is_string() { &o["lastTimestamp"] } else { &o["eventTime"] };
            let first = if o["firstTimestamp"].is_string() { &o["firstTimestamp"] } else { &o["eventTime"] };
            let source = o["source"]["component"].as_str().or(o["reportingComponent"].as_str()).unwrap_or("");
            vec![
                json!(age_of(last, now)),
                json!(o["type"].as_str().unwrap_or("")),
                json!(o["reason"].as_str().unwrap_or("")),
                json!(object),
                json!(involved["fieldPath"].as_str().unwrap_or("")),
                json!(source),
                json!(o["message"].as_str().unwrap_or("").trim()),
                json!(age_of(first, now)),
                json!(int(&o["count"]).max(1)),
                name,
            ]
        }
        ("apps", "deployments") => {
            let (containers, images) = containers(&spec["template"]["spec"]);
            vec![
                name,
                json!(format!("{}/{}", int(&status["readyReplicas"]), int(&spec["replicas"]))),
                json!(int(&status["updatedReplicas"])),
                json!(int(&status["availableReplicas"])),
                age,
                json!(containers),
                json!(images),
                json!(label_selector(&spec["selector"])),
            ]
        }
        ("apps", "replicasets") => {
            let (containers, images) = containers(&spec["template"]["spec"]);
            vec![
                name,
                json!(int(&spec["replicas"])),
                json!(int(&status["replicas"])),
                json!(int(&status["readyReplicas"])),
                age,
                json!(containers),
                json!(images),
                json!(label_selector(&spec["selector"])),
            ]
        }
        ("apps", "daemonsets") => {
            let (containers, images) = containers(&spec["template"]["spec"]);
            vec![
                name,
                json!(int(&status["desiredNumberScheduled"])),
                json!(int(&status["currentNumberScheduled"])),
                json!(int(&status["numberReady"])),
                json!(int(&status["updatedNumberScheduled"])),
                json!(int(&status["numberAvailable"])),
                json!(map_selector(&spec["template"]["spec"]["nodeSelector"])),
                age,
                json!(containers),
                json!(images),
                json!(label_selector(&spec["selector"])),
            ]
        }
        ("apps", "statefulsets") => {
            let (containers, images) = containers(&spec["template"]["spec"]);
            let ready = format!("{}/{}", int(&status["readyReplicas"]), int(&spec["replicas"]));
            vec![name, json!(ready), age, json!(containers), json!(images)]
        }
        ("batch", "jobs") => {
            let (containers, images) = containers(&spec["template"]["spec"]);
            let completions = match spec["completions"].as_i64() {
                Some(c) => format!("{}/{c}", int(&status["succeeded"])),
                None => format!("{}/1 of {}", int(&status["succeeded"]), int(&spec["parallelism"]).max(1)),
            };
            let duration = match (status["startTime"].as_str(), status["completionTime"].as_str()) {
                (Some(start), Some(end)) => between(start, end).map(human_duration).unwrap_or_default(),
                (Some(_), None) => age_of(&status["startTime"], now),
                _ => String::new(),
            };
            vec![
                name,
                json!(job_status(o)),
                json!(completions),
                json!(duration),
                age,
                json!(containers),
                json!(images),
                json!(label_selector(&spec["selector"])),
            ]
        }
        ("batch", "cronjobs") => {
            let (containers, images) = containers(&spec["jobTemplate"]["spec"]["template"]["spec"]);
            let last = match status["lastScheduleTime"].as_str() {
                Some(_) => age_of(&status["lastScheduleTime"], now),
                None => "<none>".to_string(),
            };
            vec![
                name,
                json!(spec["schedule"].as_str().unwrap_or("")),
                json!(none_if_empty(spec["timeZone"].as_str().unwrap_or(""))),
                json!(spec["suspend"].as_bool().unwrap_or(false)),
                json!(status["active"].as_array().map_or(0, Vec::len)),
                json!(last),
                age,
                json!(containers),
                json!(images),
                json!(label_selector(&spec["jobTemplate"]["spec"]["selector"])),
            ]
        }
        ("coordination.k8s.io", "leases") => {
            vec![name, json!(spec["holderIdentity"].as_str().unwrap_or("")), age]
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = o["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_i64().map(|n| n.to_string()))
                .collect();
            let addresses: Vec<&str> = o["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().into_iter().flatten().filter_map(Value::as_str))
                .collect();
            vec![
                name,
                json!(o["addressType"].as_str().unwrap_or("")),
                json!(if ports.is_empty() { "<unset>".to_string() } else { ports.join(",") }),
                json!(abbreviated(&addresses)),
                age,
            ]
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            let subjects = |kind: &str| {
                let names: Vec<String> = o["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["kind"] == kind)
                    .map(|s| match (kind, s["namespace"].as_str()) {
                        ("ServiceAccount", Some(ns)) => format!("{ns}/{}", s["name"].as_str().unwrap_or("")),
                        _ => s["name"].as_str().unwrap_or("").to_string(),
                    })
                    .collect();
                names.join(", ")
            };
            let role = format!(
                "{}/{}",
                o["roleRef"]["kind"].as_str().unwrap_or(""),
                o["roleRef"]["name"].as_str().unwrap_or("")
            );
            vec![
                name,
                json!(role),
                age,
                json!(subjects("User")),
                json!(subjects("Group")),
                json!(subjects("ServiceAccount")),
            ]
        }
        _ => vec![name, o["metadata"]["creationTimestamp"].clone()],
    }
}

fn pod(o: &Value, now: SystemTime) -> Vec<Value> {
    let status = &o["status"];
    let containers = status["containerStatuses"].as_array().cloned().unwrap_or_default();
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = containers.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = containers.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
    let last_restart = containers
        .iter()
        .filter_map(|c| c["lastState"]["terminated"]["finishedAt"].as_str())
        .filter_map(|t| humantime::parse_rfc3339_weak(t).ok())
        .max();
    let restarts = match last_restart {
        Some(at) if restarts > 0 => {
            format!("{restarts} ({} ago)", human_duration(now.duration_since(at).unwrap_or_default()))
        }
        _ => restarts.to_string(),
    };
    let gates = o["spec"]["readinessGates"].as_array().map_or(0, Vec::len);
    let gates = if gates == 0 {
        "<none>".to_string()
    } else {
        let true_gates = o["spec"]["readinessGates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| {
                let kind = &g["conditionType"];
                status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| &c["type"] == kind && c["status"] == "True")
            })
            .count();
        format!("{true_gates}/{gates}")
    };
    vec![
        json!(o["metadata"]["name"].as_str().unwrap_or("")),
        json!(format!("{ready}/{total}")),
        json!(pod_status(o)),
        json!(restarts),
        json!(age_of(&o["metadata"]["creationTimestamp"], now)),
        json!(none_if_empty(status["podIP"].as_str().unwrap_or(""))),
        json!(none_if_empty(o["spec"]["nodeName"].as_str().unwrap_or(""))),
        json!(none_if_empty(status["nominatedNodeName"].as_str().unwrap_or(""))),
        json!(gates),
    ]
}

/// kubectl's STATUS: the phase or reason, refined by init and container
/// states, "Terminating" while being deleted.
fn pod_status(o: &Value) -> String {
    let status = &o["status"];
    let mut reason = status["reason"].as_str().or(status["phase"].as_str()).unwrap_or("").to_string();
    let init = status["initContainerStatuses"].as_array().cloned().unwrap_or_default();
    let init_total = o["spec"]["initContainers"].as_array().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in init.iter().enumerate() {
        let state = &c["state"];
        if state["terminated"]["exitCode"] == 0 && state["terminated"].is_object() {
            continue;
        }
        initializing = true;
        reason = if let Some(r) = state["terminated"]["reason"].as_str() {
            format!("Init:{r}")
        } else if state["terminated"].is_object() {
            format!("Init:ExitCode:{}", state["terminated"]["exitCode"])
        } else if let Some(r) = state["waiting"]["reason"].as_str().filter(|r| *r != "PodInitializing") {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        break;
    }
    if !initializing {
        let mut running = false;
        for c in status["containerStatuses"].as_array().into_iter().flatten().rev() {
            let state = &c["state"];
            if let Some(r) = state["waiting"]["reason"].as_str() {
                reason = r.to_string();
            } else if let Some(r) = state["terminated"]["reason"].as_str() {
                reason = r.to_string();
            } else if state["terminated"].is_object() {
                reason = match state["terminated"]["signal"].as_i64() {
                    Some(signal) if signal != 0 => format!("Signal:{signal}"),
                    _ => format!("ExitCode:{}", state["terminated"]["exitCode"]),
                };
            } else if c["ready"] == true && state["running"].is_object() {
                running = true;
            }
        }
        if reason == "Completed" && running {
            reason = "Running".to_string();
        }
    }
    if o["metadata"]["deletionTimestamp"].is_string() {
        reason = if status["reason"] == "NodeLost" { "Unknown".into() } else { "Terminating".into() };
    }
    reason
}

fn node_status(o: &Value) -> String {
    let ready = o["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
    let mut status = match ready.and_then(|c| c["status"].as_str()) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if o["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(o: &Value) -> String {
    let mut roles: Vec<String> = o["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_string()),
            _ if k == "kubernetes.io/role" => v.as_str().map(str::to_string),
            _ => None,
        })
        .collect();
    roles.sort();
    if roles.is_empty() { "<none>".into() } else { roles.join(",") }
}

fn job_status(o: &Value) -> &'static str {
    let conditions = o["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let has = |kind: &str| conditions.iter().any(|c| c["type"] == kind && c["status"] == "True");
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn containers(pod_spec: &Value) -> (String, String) {
    let list = pod_spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = list.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = list.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

fn service_ports(spec: &Value) -> String {
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node_port) if node_port > 0 => format!("{}:{node_port}/{protocol}", p["port"]),
                _ => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    none_if_empty(&ports.join(","))
}

fn endpoints(o: &Value) -> String {
    let mut items = Vec::new();
    for subset in o["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> =
            subset["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_i64()).collect();
        for address in subset["addresses"].as_array().into_iter().flatten().filter_map(|a| a["ip"].as_str()) {
            if ports.is_empty() {
                items.push(address.to_string());
            }
            for port in &ports {
                items.push(format!("{address}:{port}"));
            }
        }
    }
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    abbreviated(&refs)
}

/// Kubernetes prints at most three items, then "+ N more...".
fn abbreviated(items: &[&str]) -> String {
    match items.len() {
        0 => "<none>".to_string(),
        n if n > 3 => format!("{} + {} more...", items[..3].join(","), n - 3),
        _ => items.join(","),
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn count(value: &Value) -> usize {
    value.as_object().map_or(0, |m| m.len())
}

fn none_if_empty(text: &str) -> String {
    if text.is_empty() { "<none>".to_string() } else { text.to_string() }
}

fn map_selector(selector: &Value) -> String {
    let mut parts: Vec<String> =
        selector.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    parts.sort();
    none_if_empty(&parts.join(","))
}

fn label_selector(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for expr in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or("");
        let values = strings(&expr["values"]).join(",");
        parts.push(match expr["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.sort();
    none_if_empty(&parts.join(","))
}

fn between(start: &str, end: &str) -> Option<Duration> {
    let start = humantime::parse_rfc3339_weak(start).ok()?;
    let end = humantime::parse_rfc3339_weak(end).ok()?;
    end.duration_since(start).ok()
}

fn age_of(timestamp: &Value, now: SystemTime) -> String {
    match timestamp.as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok()) {
        Some(at) => human_duration(now.duration_since(at).unwrap_or_default()),
        None => "<unknown>".to_string(),
    }
}

/// apimachinery's duration.HumanDuration: two significant units at most.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{days}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).expect("time")
    }

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (59, "59s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (5400, "90m"),
            (3 * 3600 + 60, "3h1m"),
            (47 * 3600, "47h"),
            (3 * 86400, "3d"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400, "3y"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(Duration::from_secs(seconds)), text, "{seconds}s");
        }
    }

    #[test]
    fn pods_show_ready_status_and_restarts() {
        let now = at("2026-01-01T01:00:00Z");
        let pod = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:55:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [{"ready": true, "restartCount": 2,
                "state": {"running": {}}, "lastState": {"terminated": {"finishedAt": "2026-01-01T00:58:00Z"}}}]}});
        assert_eq!(
            cells("", "pods", &pod, now),
            vec![
                json!("web"),
                json!("1/1"),
                json!("Running"),
                json!("2 (2m ago)"),
                json!("5m"),
                json!("10.0.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        let creating = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cells("", "pods", &creating, now)[2], "ContainerCreating");
        let mut deleting = pod.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T01:00:00Z");
        assert_eq!(cells("", "pods", &deleting, now)[2], "Terminating");
    }

    #[test]
    fn nodes_services_and_deployments() {
        let now = at("2026-01-01T00:00:00Z");
        let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0"}}});
        let row = cells("", "nodes", &node, now);
        assert_eq!(
            (row[1].clone(), row[2].clone(), row[4].clone()),
            (json!("Ready,SchedulingDisabled"), json!("control-plane"), json!("v1.33.0"))
        );
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.9",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "selector": {"app": "web"}}});
        let row = cells("", "services", &svc, now);
        assert_eq!(row[4], "80:30080/TCP");
        assert_eq!(row[6], "app=web");
        let deploy = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let row = cells("apps", "deployments", &deploy, now);
        assert_eq!(row[1], "2/3");
        assert_eq!(
            (row[5].clone(), row[6].clone(), row[7].clone()),
            (json!("nginx"), json!("nginx:1.26"), json!("app=web"))
        );
        assert_eq!(columns("apps", "deployments").len(), row.len());
    }

    #[test]
    fn every_row_fits_its_columns() {
        let now = SystemTime::now();
        for r in crate::resources::RESOURCES {
            let row = cells(r.group, r.plural, &json!({"metadata": {"name": "x"}}), now);
            assert_eq!(row.len(), columns(r.group, r.plural).len(), "{}", r.plural);
        }
    }
}
