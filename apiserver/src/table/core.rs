//! Core (v1) resources other than pods.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde_json::Value;

use super::{
    AGE, Column, NAME, age, format_labels, int_of, len_of, list_of, name, or_none, since, str_of, text, timestamp, wide,
};

pub(super) static NODE_COLUMNS: [Column; 10] = [
    NAME,
    text("Status", "The status of the node"),
    text("Roles", "The roles of the node"),
    AGE,
    text("Version", "Kubelet Version reported by the node."),
    wide("Internal-IP", "List of addresses reachable to the node."),
    wide("External-IP", "List of addresses reachable to the node."),
    wide("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    wide("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API."),
];

pub(super) fn node_cells(node: &Value, now: SystemTime) -> Vec<Value> {
    let status = &node["status"];
    let info = &status["nodeInfo"];
    let mut state: Vec<&str> = Vec::new();
    if let Some(ready) = list_of(&status["conditions"]).iter().rev().find(|c| c["type"] == "Ready") {
        state.push(if ready["status"] == "True" { "Ready" } else { "NotReady" });
    } else {
        state.push("Unknown");
    }
    if node["spec"]["unschedulable"] == true {
        state.push("SchedulingDisabled");
    }
    let address = |kind: &str| {
        list_of(&status["addresses"]).iter().find(|a| a["type"] == kind).map_or("<none>", |a| str_of(&a["address"]))
    };
    let unknown = |v: &Value| match str_of(v) {
        "" => "<unknown>".to_string(),
        s => s.to_string(),
    };
    vec![
        name(node),
        state.join(",").into(),
        or_none(node_roles(&node["metadata"]["labels"]).join(",")).into(),
        age(node, now),
        str_of(&info["kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown(&info["osImage"]).into(),
        unknown(&info["kernelVersion"]).into(),
        unknown(&info["containerRuntimeVersion"]).into(),
    ]
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the older `kubernetes.io/role=<role>` label, sorted.
fn node_roles(labels: &Value) -> Vec<&str> {
    let mut roles = BTreeSet::new();
    for (key, value) in labels.as_object().into_iter().flatten() {
        match key.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => {
                roles.insert(role);
            }
            Some(_) => {}
            None if key == "kubernetes.io/role" && !str_of(value).is_empty() => {
                roles.insert(str_of(value));
            }
            None => {}
        }
    }
    roles.into_iter().collect()
}

pub(super) static NAMESPACE_COLUMNS: [Column; 3] = [NAME, text("Status", "The status of the namespace"), AGE];

pub(super) fn namespace_cells(namespace: &Value, now: SystemTime) -> Vec<Value> {
    let phase = match str_of(&namespace["status"]["phase"]) {
        "" => "Active",
        phase => phase,
    };
    vec![name(namespace), phase.into(), age(namespace, now)]
}

pub(super) static SERVICE_COLUMNS: [Column; 7] = [
    NAME,
    text("Type", "type determines how the Service is exposed."),
    text("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    text(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic.",
    ),
    text("Port(s)", "The list of ports that are exposed by this service."),
    AGE,
    wide("Selector", "Route service traffic to pods with label keys and values matching this selector."),
];

pub(super) fn service_cells(service: &Value, now: SystemTime) -> Vec<Value> {
    let spec = &service["spec"];
    let kind = match str_of(&spec["type"]) {
        "" => "ClusterIP",
        kind => kind,
    };
    // v1 objects from old clients may only carry the singular clusterIP.
    let cluster_ip = match (str_of(&spec["clusterIPs"][0]), str_of(&spec["clusterIP"])) {
        ("", "") => "<none>",
        ("", ip) | (ip, _) => ip,
    };
    let ports: Vec<String> = list_of(&spec["ports"])
        .iter()
        .map(|p| {
            let protocol = match str_of(&p["protocol"]) {
                "" => "TCP",
                protocol => protocol,
            };
            match int_of(&p["nodePort"]) {
                node_port if node_port > 0 => format!("{}:{node_port}/{protocol}", int_of(&p["port"])),
                _ => format!("{}/{protocol}", int_of(&p["port"])),
            }
        })
        .collect();
    vec![
        name(service),
        kind.into(),
        cluster_ip.into(),
        external_ip(kind, service).into(),
        or_none(ports.join(",")).into(),
        age(service, now),
        format_labels(&spec["selector"]).into(),
    ]
}

/// EXTERNAL-IP by service type; load balancers list their unique ingress points first, "<pending>" until they have one.
fn external_ip(kind: &str, service: &Value) -> String {
    let external_ips: Vec<&str> = list_of(&service["spec"]["externalIPs"]).iter().map(str_of).collect();
    match kind {
        "ClusterIP" | "NodePort" => or_none(external_ips.join(",")),
        "LoadBalancer" => {
            let ingress: BTreeSet<&str> = list_of(&service["status"]["loadBalancer"]["ingress"])
                .iter()
                .map(|i| match str_of(&i["ip"]) {
                    "" => str_of(&i["hostname"]),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            let all: Vec<&str> = ingress.into_iter().chain(external_ips).collect();
            if all.is_empty() { "<pending>".into() } else { all.join(",") }
        }
        "ExternalName" => str_of(&service["spec"]["externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

pub(super) static ENDPOINTS_COLUMNS: [Column; 3] =
    [NAME, text("Endpoints", "The set of all endpoints is the union of all subsets."), AGE];

pub(super) fn endpoints_cells(endpoints: &Value, now: SystemTime) -> Vec<Value> {
    vec![name(endpoints), format_endpoints(list_of(&endpoints["subsets"])).into(), age(endpoints, now)]
}

/// Up to three `ip:port` pairs (bare IPs for headless subsets without ports) then "+ N more...".
fn format_endpoints(subsets: &[Value]) -> String {
    const MAX: usize = 3;
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut shown = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = list_of(&subset["addresses"]);
        let ports = list_of(&subset["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            shown.extend(addresses.iter().map(|a| str_of(&a["ip"]).to_string()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            shown.extend(addresses.iter().map(|a| join_host_port(str_of(&a["ip"]), int_of(&port["port"]))));
        }
    }
    shown.truncate(MAX);
    if count > MAX { format!("{} + {} more...", shown.join(","), count - MAX) } else { shown.join(",") }
}

/// Go's `net.JoinHostPort`: IPv6 hosts are bracketed.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

pub(super) static CONFIGMAP_COLUMNS: [Column; 3] = [NAME, text("Data", "Data contains the configuration data."), AGE];

pub(super) fn configmap_cells(configmap: &Value, now: SystemTime) -> Vec<Value> {
    let entries = len_of(&configmap["data"]) + len_of(&configmap["binaryData"]);
    vec![name(configmap), entries.into(), age(configmap, now)]
}

pub(super) static SECRET_COLUMNS: [Column; 4] = [
    NAME,
    text("Type", "Used to facilitate programmatic handling of secret data."),
    text("Data", "Data contains the secret data."),
    AGE,
];

pub(super) fn secret_cells(secret: &Value, now: SystemTime) -> Vec<Value> {
    let kind = match str_of(&secret["type"]) {
        "" => "Opaque",
        kind => kind,
    };
    vec![name(secret), kind.into(), len_of(&secret["data"]).into(), age(secret, now)]
}

pub(super) static SERVICEACCOUNT_COLUMNS: [Column; 3] =
    [NAME, text("Secrets", "Secrets is a list of the secrets in the same namespace that pods may use."), AGE];

pub(super) fn serviceaccount_cells(account: &Value, now: SystemTime) -> Vec<Value> {
    vec![name(account), len_of(&account["secrets"]).into(), age(account, now)]
}

pub(super) static EVENT_COLUMNS: [Column; 10] = [
    text("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    text("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    text("Reason", "This should be a short, machine understandable string that gives the reason for the transition."),
    text("Object", "The object that this event is about."),
    wide("Subobject", "The field of the involved object this event is about, if any."),
    wide("Source", "The component reporting this event."),
    text("Message", "A human-readable description of the status of this operation."),
    wide("First Seen", "The time at which the event was first recorded."),
    wide("Count", "The number of times this event has occurred."),
    Column { priority: 1, ..NAME },
];

pub(super) fn event_cells(event: &Value, now: SystemTime) -> Vec<Value> {
    let first_seen = match timestamp(&event["firstTimestamp"]) {
        Some(_) => since(&event["firstTimestamp"], now),
        None => since(&event["eventTime"], now),
    };
    let mut last_seen = match timestamp(&event["lastTimestamp"]) {
        Some(_) => since(&event["lastTimestamp"], now),
        None => first_seen.clone(),
    };
    let series = &event["series"];
    let count = if series.is_object() {
        last_seen = since(&series["lastObservedTime"], now);
        int_of(&series["count"])
    } else {
        // Singleton events from the events.k8s.io API carry no count.
        match int_of(&event["count"]) {
            0 => 1,
            count => count,
        }
    };
    let involved = &event["involvedObject"];
    let kind = str_of(&involved["kind"]).to_lowercase();
    let object = match str_of(&involved["name"]) {
        "" => kind,
        object_name => format!("{kind}/{object_name}"),
    };
    let first_non_empty = |a: &'_ Value, b: &'_ Value| match str_of(a) {
        "" => str_of(b).to_string(),
        s => s.to_string(),
    };
    let component = first_non_empty(&event["source"]["component"], &event["reportingComponent"]);
    let instance = first_non_empty(&event["source"]["host"], &event["reportingInstance"]);
    let source = if instance.is_empty() { component } else { format!("{component}, {instance}") };
    vec![
        last_seen.into(),
        str_of(&event["type"]).into(),
        str_of(&event["reason"]).into(),
        object.into(),
        str_of(&involved["fieldPath"]).into(),
        source.into(),
        str_of(&event["message"]).trim().into(),
        first_seen.into(),
        count.into(),
        name(event),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    fn now() -> SystemTime {
        at("2024-05-01T12:00:00Z")
    }

    #[test]
    fn cordoned_control_plane_node() {
        let node = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": "2024-03-01T12:00:00Z", "labels": {
                "kubernetes.io/hostname": "cp-1",
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/etcd": "true",
                "node-role.kubernetes.io/": ""
            }},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "Hostname", "address": "cp-1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Ubuntu 24.04 LTS",
                             "kernelVersion": "6.8.0-31-generic", "containerRuntimeVersion": "containerd://2.0.5"}
            }
        });
        assert_eq!(
            node_cells(&node, now()),
            [
                json!("cp-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,etcd"),
                json!("61d"),
                json!("v1.33.1"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Ubuntu 24.04 LTS"),
                json!("6.8.0-31-generic"),
                json!("containerd://2.0.5")
            ]
        );
        let bare = node_cells(&json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}), now());
        assert_eq!(bare[1..3], [json!("NotReady"), json!("<none>")]);
        assert_eq!(bare[7], json!("<unknown>"));
        assert_eq!(
            node_cells(&json!({"metadata": {"labels": {"kubernetes.io/role": "edge"}}}), now())[1..3],
            [json!("Unknown"), json!("edge")]
        );
    }

    #[test]
    fn services() {
        let node_port = json!({
            "metadata": {"name": "shop", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.12.4", "clusterIPs": ["10.96.12.4"],
                     "selector": {"app": "shop", "tier": "web"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                               {"name": "https", "port": 443, "nodePort": 30443, "protocol": "TCP"}]}
        });
        assert_eq!(
            service_cells(&node_port, now()),
            [
                json!("shop"),
                json!("NodePort"),
                json!("10.96.12.4"),
                json!("<none>"),
                json!("80/TCP,443:30443/TCP"),
                json!("60m"),
                json!("app=shop,tier=web")
            ]
        );
        let lb = json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.9"], "externalIPs": ["198.51.100.7"],
                                 "ports": [{"port": 53, "protocol": "UDP"}]},
                        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"},
                                                                {"ip": "203.0.113.5"}]}}});
        assert_eq!(
            service_cells(&lb, now())[3..5],
            [json!("203.0.113.5,lb.example.com,198.51.100.7"), json!("53/UDP")]
        );
        let pending = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(service_cells(&pending, now())[2..5], [json!("<none>"), json!("<pending>"), json!("<none>")]);
        let external = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(service_cells(&external, now())[3], json!("db.example.com"));
        assert_eq!(service_cells(&json!({}), now())[1], json!("ClusterIP"));
    }

    #[test]
    fn endpoints() {
        let eps = json!({"metadata": {"name": "kube-dns"}, "subsets": [{
            "addresses": [{"ip": "10.1.0.20"}, {"ip": "10.1.0.21"}],
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53},
                      {"name": "metrics", "port": 9153}]
        }]});
        assert_eq!(endpoints_cells(&eps, now())[1], json!("10.1.0.20:53,10.1.0.21:53,10.1.0.20:53 + 3 more..."));
        let v6 = json!({"subsets": [
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 443}]},
            {"addresses": [{"ip": "10.0.0.1"}]}
        ]});
        assert_eq!(endpoints_cells(&v6, now())[1], json!("[fd00::1]:443,10.0.0.1"));
        assert_eq!(endpoints_cells(&json!({}), now())[1], json!("<none>"));
    }

    #[test]
    fn config_and_credentials() {
        let cm = json!({"metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(configmap_cells(&cm, now())[..2], [json!("settings"), json!(3)]);
        let secret =
            json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(secret_cells(&secret, now())[..3], [json!("tls"), json!("kubernetes.io/tls"), json!(2)]);
        assert_eq!(secret_cells(&json!({}), now())[1..3], [json!("Opaque"), json!(0)]);
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T11:59:58Z"}});
        assert_eq!(serviceaccount_cells(&sa, now()), [json!("default"), json!(0), json!("2s")]);
        assert_eq!(namespace_cells(&json!({"status": {"phase": "Terminating"}}), now())[1], json!("Terminating"));
    }

    #[test]
    fn events() {
        let event = json!({
            "metadata": {"name": "web-1.17c0a1b2c3d4e5f6"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 42
        });
        assert_eq!(
            event_cells(&event, now()),
            [
                json!("60s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-1"),
                json!("spec.containers{web}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("120m"),
                json!(42),
                json!("web-1.17c0a1b2c3d4e5f6")
            ]
        );
        let new_api = json!({
            "involvedObject": {"kind": "Node"}, "eventTime": "2024-05-01T11:50:00.123456Z",
            "reportingComponent": "scheduler", "series": {"count": 3, "lastObservedTime": "2024-05-01T11:58:00.000001Z"}
        });
        let cells = event_cells(&new_api, now());
        assert_eq!(cells[..4], [json!("119s"), json!(""), json!(""), json!("node")]);
        assert_eq!(cells[5], json!("scheduler"));
        assert_eq!(cells[7..9], [json!("9m59s"), json!(3)]);
        assert_eq!(event_cells(&json!({}), now())[..1], [json!("<unknown>")]);
        assert_eq!(event_cells(&json!({}), now())[8], json!(1));
    }
}
