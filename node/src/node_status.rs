//! The Node object and its status, computed from the machine and the
//! runtime's health: plain data in, plain data out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::machine::{Machine, go_arch};

/// The version the agent reports as `kubeletVersion`: the API it follows.
pub const KUBELET_VERSION: &str = "v1.33.0";
/// The kubelet's default `--max-pods`.
pub const MAX_PODS: u32 = 110;
/// The kubelet's port, reported in `status.daemonEndpoints`.
pub const KUBELET_PORT: i32 = 10250;

/// The Node as first registered: labels and a full status.
pub fn new_node(name: &str, machine: &Machine, runtime_version: &str, runtime_health: &Health, now: Time) -> Node {
    let arch = go_arch().to_string();
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch.clone()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch),
    ]);
    Node {
        metadata: ObjectMeta { name: Some(name.to_string()), labels: Some(labels), ..Default::default() },
        spec: None,
        status: Some(node_status(name, machine, runtime_version, runtime_health, None, now)),
    }
}

/// Whether the runtime can run pods; the reason is the Ready condition's message.
#[derive(Clone, Debug, PartialEq)]
pub enum Health {
    Ready,
    NotReady(String),
}

/// The Node's status now. Conditions keep their `lastTransitionTime` from
/// `previous` while their status is unchanged.
pub fn node_status(
    name: &str,
    machine: &Machine,
    runtime_version: &str,
    runtime_health: &Health,
    previous: Option<&NodeStatus>,
    now: Time,
) -> NodeStatus {
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(machine.cpus.to_string())),
        ("memory".to_string(), Quantity(format!("{}Ki", machine.memory_bytes / 1024))),
        ("pods".to_string(), Quantity(MAX_PODS.to_string())),
    ]);
    let mut addresses = Vec::new();
    if let Some(ip) = machine.ip {
        addresses.push(NodeAddress { type_: "InternalIP".to_string(), address: ip.to_string() });
    }
    addresses.push(NodeAddress { type_: "Hostname".to_string(), address: name.to_string() });
    let (ready, ready_reason, ready_message) = match runtime_health {
        Health::Ready => ("True", "KubeletReady", "kubelet is posting ready status".to_string()),
        Health::NotReady(why) => ("False", "KubeletNotReady", why.clone()),
    };
    let fresh = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available".to_string(),
        ),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure".to_string()),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available".to_string()),
        ("Ready", ready, ready_reason, ready_message),
    ];
    let old = previous.and_then(|s| s.conditions.as_ref());
    let conditions = fresh
        .into_iter()
        .map(|(type_, status, reason, message)| {
            let kept = old
                .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == status))
                .and_then(|c| c.last_transition_time.clone());
            NodeCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: Some(reason.to_string()),
                message: Some(message),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(kept.unwrap_or_else(|| now.clone())),
            }
        })
        .collect();
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        addresses: Some(addresses),
        conditions: Some(conditions),
        daemon_endpoints: Some(NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: KUBELET_PORT }) }),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().to_string(),
            boot_id: machine.boot_id.clone(),
            container_runtime_version: format!("containerd://{runtime_version}"),
            kernel_version: machine.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.to_string(),
            machine_id: machine.machine_id.clone(),
            operating_system: "linux".to_string(),
            os_image: machine.os_image.clone(),
            system_uuid: machine.machine_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn machine() -> Machine {
        Machine { cpus: 4, memory_bytes: 8 << 30, ip: "10.0.0.5".parse().ok(), ..Default::default() }
    }

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn condition<'a>(status: &'a NodeStatus, type_: &str) -> &'a NodeCondition {
        status.conditions.iter().flatten().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_}"))
    }

    #[test]
    fn registration_carries_labels_capacity_and_ready() {
        let node = new_node("n1", &machine(), "1.6.20~ds1", &Health::Ready, at(100));
        let labels = node.metadata.labels.unwrap_or_default();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["beta.kubernetes.io/arch"], go_arch());
        let status = node.status.unwrap_or_default();
        let capacity = status.capacity.clone().unwrap_or_default();
        assert_eq!(capacity["cpu"].0, "4");
        assert_eq!(capacity["memory"].0, "8388608Ki");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(status.allocatable, status.capacity);
        let info = status.node_info.clone().unwrap_or_default();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20~ds1");
        let ready = condition(&status, "Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
        assert_eq!(ready.message.as_deref(), Some("kubelet is posting ready status"));
        assert_eq!(condition(&status, "PIDPressure").status, "False");
        let addresses = status.addresses.unwrap_or_default();
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "10.0.0.5");
        assert_eq!(addresses[1].type_, "Hostname");
        assert_eq!(status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port), Some(10250));
    }

    #[test]
    fn heartbeat_moves_but_transition_stays_until_status_changes() {
        let first = node_status("n1", &machine(), "v", &Health::Ready, None, at(100));
        let second = node_status("n1", &machine(), "v", &Health::Ready, Some(&first), at(110));
        let ready = condition(&second, "Ready");
        assert_eq!(ready.last_heartbeat_time, Some(at(110)));
        assert_eq!(ready.last_transition_time, Some(at(100)));

        let down = Health::NotReady("container runtime is down".to_string());
        let third = node_status("n1", &machine(), "v", &down, Some(&second), at(120));
        let ready = condition(&third, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.message.as_deref(), Some("container runtime is down"));
        assert_eq!(ready.last_transition_time, Some(at(120)));
        assert_eq!(condition(&third, "MemoryPressure").last_transition_time, Some(at(100)));
    }
}
