//! What the runtime is asked to create for a pod: the sandbox config and
//! each container's config (command, env, resources, labels), as the
//! kubelet builds them.

use std::collections::HashMap;

use capstan_proto::cri::{
    ContainerConfig, ContainerMetadata, KeyValue, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata,
};
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cri::image_spec;
use crate::labels;
use crate::pod_util::{PodId, host_network};
use capstan_kubeutil::quantity;

/// Where the runtime writes container logs for a pod.
pub fn log_directory(pod: &PodId) -> String {
    format!("/var/log/pods/{}_{}_{}", pod.namespace, pod.name, pod.uid)
}

fn namespace_options(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let host = |flag: Option<bool>| if flag.unwrap_or(false) { NamespaceMode::Node } else { NamespaceMode::Pod };
    let pid = if spec.and_then(|s| s.host_pid).unwrap_or(false) {
        NamespaceMode::Node
    } else if spec.and_then(|s| s.share_process_namespace).unwrap_or(false) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: host(spec.and_then(|s| s.host_network)) as i32,
        pid: pid as i32,
        ipc: host(spec.and_then(|s| s.host_ipc)) as i32,
        target_id: String::new(),
    }
}

/// The sandbox for `pod`; `attempt` counts sandboxes made for it before.
pub fn sandbox_config(pod: &Pod, node: &str, attempt: u32) -> PodSandboxConfig {
    let id = PodId::of(pod);
    let spec = pod.spec.as_ref();
    let mut sandbox_labels: HashMap<String, String> =
        pod.metadata.labels.clone().unwrap_or_default().into_iter().collect();
    sandbox_labels.extend(labels::pod_labels(node, &id.namespace, &id.name, &id.uid));
    // A host-network sandbox shares the host's UTS namespace: it must not set a hostname.
    let hostname = if host_network(pod) {
        String::new()
    } else {
        spec.and_then(|s| s.hostname.clone()).unwrap_or_else(|| id.name.clone())
    };
    let privileged = spec.is_some_and(|s| {
        s.containers.iter().any(|c| c.security_context.as_ref().and_then(|sc| sc.privileged).unwrap_or(false))
    });
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: id.name.clone(),
            uid: id.uid.clone(),
            namespace: id.namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(&id),
        dns_config: None,
        labels: sandbox_labels,
        annotations: pod.metadata.annotations.clone().unwrap_or_default().into_iter().collect(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                privileged,
                ..Default::default()
            }),
            sysctls: HashMap::new(),
        }),
    }
}

/// The pod-level facts env vars may refer to (`fieldRef`).
#[derive(Clone, Debug, Default)]
pub struct EnvContext {
    pub node_name: String,
    pub pod_ip: String,
    pub host_ip: String,
}

/// The container config for attempt `restart_count` of `container`.
/// An error is the message of a CreateContainerConfigError.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    node: &str,
    restart_count: i32,
    env: &EnvContext,
    memory_capacity: i64,
) -> Result<ContainerConfig, String> {
    let id = PodId::of(pod);
    let envs = container_env(pod, container, env)?;
    let vars: HashMap<&str, &str> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all =
        |list: &Option<Vec<String>>| -> Vec<String> { list.iter().flatten().map(|s| expand(s, &vars)).collect() };
    let mut container_labels = labels::pod_labels(node, &id.namespace, &id.name, &id.uid);
    container_labels.insert(labels::CONTAINER_NAME.to_string(), container.name.clone());
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    let annotations = HashMap::from([
        (labels::CONTAINER_HASH.to_string(), container_hash(container)),
        (labels::RESTART_COUNT.to_string(), restart_count.to_string()),
        (labels::GRACE_PERIOD.to_string(), grace.to_string()),
    ]);
    let attempt = u32::try_from(restart_count).unwrap_or(0);
    let security = container.security_context.as_ref();
    let pod_security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let run_as_user = security.and_then(|s| s.run_as_user).or(pod_security.and_then(|s| s.run_as_user));
    let run_as_group = security.and_then(|s| s.run_as_group).or(pod_security.and_then(|s| s.run_as_group));
    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata { name: container.name.clone(), attempt }),
        image: Some(image_spec(container.image.as_deref().unwrap_or_default())),
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: envs.iter().map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() }).collect(),
        labels: container_labels,
        annotations,
        log_path: format!("{}/{attempt}.log", container.name),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources(pod, container, memory_capacity)),
            security_context: Some(LinuxContainerSecurityContext {
                privileged: security.and_then(|s| s.privileged).unwrap_or(false),
                namespace_options: Some(namespace_options(pod)),
                run_as_user: run_as_user.map(|value| capstan_proto::cri::Int64Value { value }),
                readonly_rootfs: security.and_then(|s| s.read_only_root_filesystem).unwrap_or(false),
                run_as_group: run_as_group.map(|value| capstan_proto::cri::Int64Value { value }),
            }),
        }),
    })
}

/// A stable digest of the container's spec: a changed spec (a new image)
/// means the running container must be replaced. FNV-1a over the JSON.
pub fn container_hash(container: &Container) -> String {
    let json = serde_json::to_vec(container).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in json {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

const MIN_SHARES: i64 = 2;
const SHARES_PER_CPU: i64 = 1024;
const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1000;

/// cgroup v1 resources as the kubelet derives them: shares from the CPU
/// request (or the limit when only that is set), a CFS quota from the CPU
/// limit, the memory limit, and an OOM score by QoS class.
pub fn resources(pod: &Pod, container: &Container, memory_capacity: i64) -> LinuxContainerResources {
    let res = container.resources.as_ref();
    let get =
        |map: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         name: &str| map.and_then(|m| m.get(name)).cloned();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let cpu_request = get(requests, "cpu").and_then(|q| quantity::milli_value(&q));
    let cpu_limit = get(limits, "cpu").and_then(|q| quantity::milli_value(&q));
    let memory_request = get(requests, "memory").and_then(|q| quantity::value(&q));
    let memory_limit = get(limits, "memory").and_then(|q| quantity::value(&q));
    let shares_from = cpu_request.filter(|m| *m > 0).or(cpu_limit).unwrap_or(0);
    let cpu_shares = (shares_from * SHARES_PER_CPU / 1000).max(MIN_SHARES);
    let (cpu_period, cpu_quota) = match cpu_limit {
        Some(milli) if milli > 0 => (QUOTA_PERIOD, (milli * QUOTA_PERIOD / 1000).max(MIN_QUOTA)),
        _ => (0, 0),
    };
    LinuxContainerResources {
        cpu_period,
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: memory_limit.unwrap_or(0),
        oom_score_adj: oom_score_adj(pod, memory_request, memory_capacity),
    }
}

/// The kubelet's OOM score: -997 Guaranteed, 1000 BestEffort, and for
/// Burstable 1000 minus the share of memory requested, kept in [2, 999].
fn oom_score_adj(pod: &Pod, memory_request: Option<i64>, memory_capacity: i64) -> i64 {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => -997,
        Some("BestEffort") | None => 1000,
        _ => {
            let request = memory_request.unwrap_or(0);
            let share = if memory_capacity > 0 { 1000 * request / memory_capacity } else { 0 };
            (1000 - share).clamp(2, 999)
        }
    }
}

/// The container's environment: `value`s and the `fieldRef`s a kubelet
/// resolves locally, with `$(VAR)` references to earlier variables expanded.
pub fn container_env(pod: &Pod, container: &Container, ctx: &EnvContext) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(source)) => {
                let Some(field) = &source.field_ref else {
                    return Err(format!(
                        "env var {:?}: only value and valueFrom.fieldRef are supported on this node",
                        var.name
                    ));
                };
                field_value(pod, &field.field_path, ctx)
                    .ok_or_else(|| format!("env var {:?}: unsupported fieldPath {:?}", var.name, field.field_path))?
            }
            (Some(value), None) => {
                let vars: HashMap<&str, &str> = out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(value, &vars)
            }
            (None, None) => String::new(),
        };
        out.retain(|(k, _)| k != &var.name);
        out.push((var.name.clone(), value));
    }
    Ok(out)
}

/// The downward-API fields the kubelet fills in itself.
fn field_value(pod: &Pod, path: &str, ctx: &EnvContext) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_prefix("['")?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_else(|| ctx.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.podIP" => ctx.pod_ip.clone(),
        "status.podIPs" => ctx.pod_ip.clone(),
        "status.hostIP" => ctx.host_ip.clone(),
        "status.hostIPs" => ctx.host_ip.clone(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                meta.labels.as_ref().and_then(|l| l.get(&key)).cloned().unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                meta.annotations.as_ref().and_then(|a| a.get(&key)).cloned().unwrap_or_default()
            } else {
                return None;
            }
        }
    })
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, `$$`
/// is a literal `$`, anything else is left as written.
pub fn expand(input: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&rest[at..at + 2 + end + 1]),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn pod(host_network: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                host_network: Some(host_network),
                node_name: Some("n1".into()),
                containers: vec![container()],
                ..Default::default()
            }),
            status: None,
        }
    }

    fn container() -> Container {
        Container {
            name: "c".into(),
            image: Some("capstan.local/busybox:1".into()),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(GREETING) $$(HOME) $(MISSING)".into()]),
            env: Some(vec![
                EnvVar { name: "WHO".into(), value: Some("world".into()), value_from: None },
                EnvVar { name: "GREETING".into(), value: Some("hello $(WHO)".into()), value_from: None },
                EnvVar {
                    name: "POD".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
                        ..Default::default()
                    }),
                },
                EnvVar {
                    name: "IP".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".into(), api_version: None }),
                        ..Default::default()
                    }),
                },
            ]),
            working_dir: Some("/tmp".into()),
            ..Default::default()
        }
    }

    #[test]
    fn host_network_sandbox_has_no_hostname() {
        let config = sandbox_config(&pod(true), "n1", 0);
        assert_eq!(config.hostname, "");
        let ns = config.linux.and_then(|l| l.security_context).and_then(|s| s.namespace_options).unwrap_or_default();
        assert_eq!(ns.network, NamespaceMode::Node as i32);
        assert_eq!(ns.pid, NamespaceMode::Container as i32);

        let config = sandbox_config(&pod(false), "n1", 2);
        assert_eq!(config.hostname, "web");
        assert_eq!(config.labels[labels::POD_UID], "u1");
        assert_eq!(config.labels[labels::NODE_NAME], "n1");
        assert_eq!(config.labels["app"], "web");
        assert_eq!(config.metadata.map(|m| m.attempt), Some(2));
        assert_eq!(config.log_directory, "/var/log/pods/default_web_u1");
    }

    #[test]
    fn container_env_command_and_labels() {
        let p = pod(false);
        let ctx = EnvContext { node_name: "n1".into(), pod_ip: "10.88.0.9".into(), host_ip: "10.0.0.1".into() };
        let config = container_config(&p, &container(), "n1", 3, &ctx, 1 << 30).unwrap_or_default();
        let env: Vec<(String, String)> = config.envs.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
        assert!(env.contains(&("GREETING".into(), "hello world".into())));
        assert!(env.contains(&("POD".into(), "web".into())));
        assert!(env.contains(&("IP".into(), "10.88.0.9".into())));
        assert_eq!(config.args, vec!["echo hello world $(HOME) $(MISSING)".to_string()]);
        assert_eq!(config.working_dir, "/tmp");
        assert_eq!(config.metadata.map(|m| (m.name, m.attempt)), Some(("c".into(), 3)));
        assert_eq!(config.log_path, "c/3.log");
        assert_eq!(config.labels[labels::CONTAINER_NAME], "c");
        assert_eq!(labels::restart_count(&config.annotations), 3);
    }

    #[test]
    fn unsupported_env_sources_are_config_errors() {
        let mut c = container();
        c.env = Some(vec![EnvVar {
            name: "S".into(),
            value: None,
            value_from: Some(EnvVarSource { secret_key_ref: Some(Default::default()), ..Default::default() }),
        }]);
        let err = container_config(&pod(false), &c, "n1", 0, &EnvContext::default(), 0);
        assert!(err.is_err_and(|e| e.contains("\"S\"")));
    }

    #[test]
    fn cpu_and_memory_become_cgroup_settings() {
        let mut c = container();
        c.resources = Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("250m".into())),
                ("memory".to_string(), Quantity("256Mi".into())),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("500m".into())),
                ("memory".to_string(), Quantity("512Mi".into())),
            ])),
            ..Default::default()
        });
        let mut p = pod(false);
        p.status =
            Some(k8s_openapi::api::core::v1::PodStatus { qos_class: Some("Burstable".into()), ..Default::default() });
        let r = resources(&p, &c, 1 << 30);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_period, r.cpu_quota), (100_000, 50_000));
        assert_eq!(r.memory_limit_in_bytes, 512 << 20);
        assert_eq!(r.oom_score_adj, 750);

        let r = resources(&pod(false), &container(), 1 << 30);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes, r.oom_score_adj), (2, 0, 0, 1000));
    }

    #[test]
    fn hash_follows_the_spec() {
        let a = container();
        let mut b = container();
        assert_eq!(container_hash(&a), container_hash(&b));
        b.image = Some("capstan.local/busybox:2".into());
        assert_ne!(container_hash(&a), container_hash(&b));
    }
}
