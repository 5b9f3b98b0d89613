//! The pod's status from what runs (the kubelet's `generateAPIPodStatus`):
//! phase, conditions, container statuses, IPs. Pure; times are whole
//! seconds, as they are written on the wire, so an unchanged pod computes
//! an identical status and is not written again.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::pod_util::{RestartPolicy, host_network, restart_policy};
use crate::snapshot::{ContainerInfo, PodSnapshot, State};

/// Why a container is not running, when the agent knows better than the
/// runtime (CrashLoopBackOff, ErrImagePull, CreateContainerConfigError …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Everything the status is computed from.
pub struct StatusInput<'a> {
    pub pod: &'a Pod,
    pub snapshot: &'a PodSnapshot,
    pub node_ip: &'a str,
    /// By container name.
    pub waiting: &'a HashMap<String, Waiting>,
    /// By container id: (started, ready) from the probes.
    pub health: &'a HashMap<String, (bool, bool)>,
    pub now: Time,
}

/// Kubelet-owned condition types; others (PodScheduled, DisruptionTarget…) are kept.
const OWNED: [&str; 4] = ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"];

pub fn pod_status(input: &StatusInput) -> PodStatus {
    let pod = input.pod;
    let previous = pod.status.clone().unwrap_or_default();
    let spec_containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let statuses: Vec<ContainerStatus> = spec_containers.iter().map(|c| container_status(input, c)).collect();
    let phase = phase(restart_policy(pod), &statuses);

    let sandbox = input.snapshot.ready_sandbox();
    let pod_ip = if host_network(pod) {
        Some(input.node_ip.to_string())
    } else {
        sandbox.map(|s| s.ip.clone()).filter(|ip| !ip.is_empty()).or_else(|| previous.pod_ip.clone())
    }
    .filter(|ip| !ip.is_empty());

    let terminal = phase == "Succeeded" || phase == "Failed";
    let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    let ready_condition = |type_: &str| -> PodCondition {
        if terminal {
            condition(type_, false, Some("PodCompleted"), None)
        } else if unready.is_empty() {
            condition(type_, true, None, None)
        } else {
            let message = format!("containers with unready status: [{}]", unready.join(" "));
            condition(type_, false, Some("ContainersNotReady"), Some(message))
        }
    };
    let fresh = vec![
        condition("PodReadyToStartContainers", sandbox.is_some(), None, None),
        condition("Initialized", true, None, None),
        ready_condition("ContainersReady"),
        ready_condition("Ready"),
    ];
    let old_conditions = previous.conditions.clone().unwrap_or_default();
    let mut conditions: Vec<PodCondition> =
        old_conditions.iter().filter(|c| !OWNED.contains(&c.type_.as_str())).cloned().collect();
    // A pod on a node is scheduled, also one created with spec.nodeName.
    if !conditions.iter().any(|c| c.type_ == "PodScheduled") {
        let mut scheduled = condition("PodScheduled", true, None, None);
        scheduled.last_transition_time = Some(input.now.clone());
        conditions.insert(0, scheduled);
    }
    for mut c in fresh {
        let kept = old_conditions.iter().find(|o| o.type_ == c.type_ && o.status == c.status);
        c.last_transition_time =
            Some(kept.and_then(|o| o.last_transition_time.clone()).unwrap_or_else(|| input.now.clone()));
        conditions.push(c);
    }

    let mut status = previous.clone();
    status.phase = Some(phase.to_string());
    status.conditions = Some(conditions);
    status.container_statuses = Some(statuses);
    status.host_ip = Some(input.node_ip.to_string()).filter(|ip| !ip.is_empty());
    status.host_ips = status.host_ip.clone().map(|ip| vec![HostIP { ip }]);
    status.pod_ips = pod_ip.clone().map(|ip| vec![PodIP { ip }]);
    status.pod_ip = pod_ip;
    status.start_time = previous.start_time.or_else(|| Some(input.now.clone()));
    status.message = None;
    status.reason = None;
    status
}

fn condition(type_: &str, status: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

/// Whole seconds of a CRI nanosecond timestamp.
pub fn time_of(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    Timestamp::from_second(ns / 1_000_000_000).ok().map(Time)
}

fn terminated(c: &ContainerInfo) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: c.exit_code,
            reason: Some(c.reason.clone()).filter(|r| !r.is_empty()),
            message: Some(c.message.clone()).filter(|m| !m.is_empty()),
            started_at: time_of(c.started_at),
            finished_at: time_of(c.finished_at),
            container_id: Some(format!("containerd://{}", c.id)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: message.map(str::to_string).filter(|m| !m.is_empty()),
        }),
        ..Default::default()
    }
}

fn container_status(input: &StatusInput, spec: &Container) -> ContainerStatus {
    let image = spec.image.clone().unwrap_or_default();
    let agent_waiting = input.waiting.get(&spec.name);
    let Some(latest) = input.snapshot.latest(&spec.name) else {
        let state = match agent_waiting {
            Some(w) => waiting(&w.reason, Some(&w.message)),
            None => waiting("ContainerCreating", None),
        };
        return ContainerStatus {
            name: spec.name.clone(),
            image,
            state: Some(state),
            ready: false,
            started: Some(false),
            restart_count: 0,
            ..Default::default()
        };
    };
    let previous = input.snapshot.previous(&spec.name);
    let (started, ready) = input.health.get(&latest.id).copied().unwrap_or((true, false));
    let (state, last_state, running) = match (latest.state, agent_waiting) {
        (State::Running, _) => {
            let running = ContainerState {
                running: Some(ContainerStateRunning { started_at: time_of(latest.started_at) }),
                ..Default::default()
            };
            (running, previous.map(terminated), true)
        }
        (State::Exited, Some(w)) => (waiting(&w.reason, Some(&w.message)), Some(terminated(latest)), false),
        (State::Exited, None) => (terminated(latest), previous.map(terminated), false),
        (State::Created | State::Unknown, w) => {
            let reason = w.map(|w| w.reason.as_str()).unwrap_or("ContainerCreating");
            (waiting(reason, w.map(|w| w.message.as_str())), previous.map(terminated), false)
        }
    };
    ContainerStatus {
        name: spec.name.clone(),
        image,
        image_id: latest.image_ref.clone(),
        container_id: Some(format!("containerd://{}", latest.id)),
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ready: running && ready,
        started: Some(running && started),
        restart_count: latest.restart_count,
        ..Default::default()
    }
}

/// The kubelet's `getPhase` for pods without init containers.
pub fn phase(policy: RestartPolicy, statuses: &[ContainerStatus]) -> &'static str {
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s.last_state.as_ref().is_some_and(|l| l.terminated.is_some()) {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if policy == RestartPolicy::Always {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if policy == RestartPolicy::Never {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SandboxInfo;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const S: i64 = 1_000_000_000;

    fn pod(policy: &str, host_net: bool) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some("p".into()), ..Default::default() },
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                host_network: Some(host_net),
                containers: vec![Container { name: "a".into(), image: Some("img".into()), ..Default::default() }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                qos_class: Some("BestEffort".into()),
                ..Default::default()
            }),
        }
    }

    fn info(id: &str, state: State, exit_code: i32, created: i64, restarts: i32) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            name: "a".into(),
            sandbox_id: "s".into(),
            restart_count: restarts,
            hash: String::new(),
            state,
            created_at: created,
            started_at: created + S,
            finished_at: if state == State::Exited { created + 3 * S } else { 0 },
            exit_code,
            reason: if state == State::Exited { "Error".into() } else { String::new() },
            message: String::new(),
            image: "img".into(),
            image_ref: "sha256:abc".into(),
        }
    }

    fn snap(containers: Vec<ContainerInfo>) -> PodSnapshot {
        let mut s = PodSnapshot {
            sandboxes: vec![SandboxInfo {
                id: "s".into(),
                attempt: 0,
                ready: true,
                created_at: 0,
                ip: "10.88.0.7".into(),
            }],
            containers,
        };
        s.sort();
        s
    }

    fn at(sec: i64) -> Time {
        Time(Timestamp::from_second(sec).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn compute(
        pod: &Pod,
        snapshot: &PodSnapshot,
        waiting: &HashMap<String, Waiting>,
        health: &HashMap<String, (bool, bool)>,
        now: i64,
    ) -> PodStatus {
        pod_status(&StatusInput { pod, snapshot, node_ip: "10.0.0.1", waiting, health, now: at(now) })
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions.iter().flatten().find(|c| c.type_ == t).unwrap_or_else(|| panic!("no {t}"))
    }

    #[test]
    fn a_running_ready_pod() {
        let p = pod("Always", false);
        let s = snap(vec![info("c1", State::Running, 0, 10 * S, 0)]);
        let health = HashMap::from([("c1".to_string(), (true, true))]);
        let status = compute(&p, &s, &HashMap::new(), &health, 100);
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.88.0.7"));
        assert_eq!(status.host_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"), "fields the agent does not own are kept");
        assert_eq!(cond(&status, "Ready").status, "True");
        assert_eq!(cond(&status, "PodScheduled").status, "True");
        assert_eq!(cond(&status, "PodReadyToStartContainers").status, "True");
        let c = &status.container_statuses.clone().unwrap_or_default()[0];
        assert!(c.ready);
        assert_eq!(c.started, Some(true));
        assert_eq!(c.container_id.as_deref(), Some("containerd://c1"));
        assert_eq!(c.image_id, "sha256:abc");
        let started = c.state.as_ref().and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.clone());
        assert_eq!(started, Some(at(11)));

        // Computing again later with the written status changes nothing.
        let mut written = p.clone();
        written.status = Some(status.clone());
        assert_eq!(compute(&written, &s, &HashMap::new(), &health, 200), status);
    }

    #[test]
    fn failing_readiness_keeps_ready_false() {
        let p = pod("Always", false);
        let s = snap(vec![info("c1", State::Running, 0, 10 * S, 0)]);
        let health = HashMap::from([("c1".to_string(), (true, false))]);
        let status = compute(&p, &s, &HashMap::new(), &health, 100);
        let ready = cond(&status, "Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("ContainersNotReady")));
        assert_eq!(ready.message.as_deref(), Some("containers with unready status: [a]"));
        assert_eq!(status.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn crash_loop_is_waiting_with_the_last_termination() {
        let p = pod("Always", false);
        let s = snap(vec![info("c2", State::Exited, 1, 20 * S, 2), info("c1", State::Exited, 1, 10 * S, 1)]);
        let waiting = HashMap::from([(
            "a".to_string(),
            Waiting { reason: "CrashLoopBackOff".into(), message: "back-off 20s restarting failed container=a".into() },
        )]);
        let status = compute(&p, &s, &waiting, &HashMap::new(), 100);
        let c = &status.container_statuses.clone().unwrap_or_default()[0];
        let w = c.state.as_ref().and_then(|s| s.waiting.clone()).unwrap_or_default();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = c.last_state.as_ref().and_then(|s| s.terminated.clone()).unwrap_or_default();
        assert_eq!((last.exit_code, last.container_id.as_deref()), (1, Some("containerd://c2")));
        assert_eq!(last.finished_at, Some(at(23)));
        assert_eq!(c.restart_count, 2);
        assert_eq!(status.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn phases_by_policy() {
        let terminated = |code| ContainerStatus {
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let creating = ContainerStatus { state: Some(waiting("ContainerCreating", None)), ..Default::default() };
        assert_eq!(phase(RestartPolicy::Always, &[creating]), "Pending");
        assert_eq!(phase(RestartPolicy::Never, &[terminated(0)]), "Succeeded");
        assert_eq!(phase(RestartPolicy::Never, &[terminated(1)]), "Failed");
        assert_eq!(phase(RestartPolicy::OnFailure, &[terminated(1)]), "Running");
        assert_eq!(phase(RestartPolicy::OnFailure, &[terminated(0)]), "Succeeded");
        assert_eq!(phase(RestartPolicy::Always, &[terminated(0)]), "Running");
    }

    #[test]
    fn host_network_pods_use_the_node_ip_and_new_pods_wait() {
        let p = pod("Always", true);
        let mut p = p;
        p.status = None;
        let status = compute(&p, &PodSnapshot::default(), &HashMap::new(), &HashMap::new(), 100);
        assert_eq!(cond(&status, "PodScheduled").status, "True", "a bound pod is scheduled");
        assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&status, "PodReadyToStartContainers").status, "False");
        assert_eq!(status.start_time, Some(at(100)));
        let c = &status.container_statuses.clone().unwrap_or_default()[0];
        let w = c.state.as_ref().and_then(|s| s.waiting.clone()).unwrap_or_default();
        assert_eq!(w.reason.as_deref(), Some("ContainerCreating"));
    }
}
