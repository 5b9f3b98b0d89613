//! What to do to bring a pod's runtime state to its spec (the kubelet's
//! `computePodActions`), and which dead containers and sandboxes to
//! collect. Pure functions over a [`PodSnapshot`].

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Pod;

use crate::pod_util::{RestartPolicy, restart_policy, should_restart};
use crate::runtime_spec::container_hash;
use crate::snapshot::{PodSnapshot, State};

/// Why a running container is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    SpecChanged,
    LivenessFailed,
    StartupFailed,
    NotInSpec,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    pub id: String,
    pub name: String,
    pub reason: KillReason,
}

/// One sync's worth of changes, applied in field order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodActions {
    /// Stop every running container and every ready sandbox of the pod.
    pub kill_pod: bool,
    /// Make a new sandbox with this attempt number.
    pub create_sandbox: Option<u32>,
    /// Containers stopped for a reason; a restart follows on a later sync.
    pub kill: Vec<Kill>,
    /// Containers created but never started (an agent stopped half way): removed.
    pub remove: Vec<String>,
    /// Spec containers to start, subject to backoff, in spec order.
    pub start: Vec<String>,
}

/// The changes for `pod` given what runs and which running containers
/// failed a liveness or startup probe (by container id).
pub fn compute_actions(pod: &Pod, snapshot: &PodSnapshot, unhealthy: &HashMap<String, KillReason>) -> PodActions {
    let policy = restart_policy(pod);
    let spec = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let mut actions = PodActions::default();
    let wants_start = |name: &str| match snapshot.latest(name) {
        None => true,
        Some(c) if c.state == State::Exited => should_restart(policy, Some(c.exit_code)),
        Some(_) => false,
    };

    if snapshot.ready_sandbox().is_none() {
        let any_running = snapshot.containers.iter().any(|c| c.state == State::Running);
        let to_start: Vec<String> = spec
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| restartable_after_sandbox_loss(snapshot, policy, n))
            .collect();
        if to_start.is_empty() && !snapshot.sandboxes.is_empty() {
            // Done for good (Never, or OnFailure with every container succeeded).
            actions.kill_pod = any_running;
            return actions;
        }
        actions.kill_pod = any_running || snapshot.sandboxes.iter().any(|s| s.ready);
        actions.create_sandbox = Some(snapshot.sandboxes.first().map(|s| s.attempt + 1).unwrap_or(0));
        actions.start = to_start;
        return actions;
    }

    let mut keep = 0;
    for container in spec {
        let Some(latest) = snapshot.latest(&container.name) else {
            actions.start.push(container.name.clone());
            continue;
        };
        match latest.state {
            State::Running => {
                let reason = if latest.hash != container_hash(container) {
                    Some(KillReason::SpecChanged)
                } else {
                    unhealthy.get(&latest.id).copied()
                };
                match reason {
                    Some(reason) => {
                        actions.kill.push(Kill { id: latest.id.clone(), name: container.name.clone(), reason })
                    }
                    None => keep += 1,
                }
            }
            State::Exited => {
                if wants_start(&container.name) {
                    actions.start.push(container.name.clone());
                }
            }
            State::Created | State::Unknown => actions.remove.push(latest.id.clone()),
        }
    }
    let names: HashSet<&str> = spec.iter().map(|c| c.name.as_str()).collect();
    for c in &snapshot.containers {
        if c.state == State::Running && !names.contains(c.name.as_str()) {
            actions.kill.push(Kill { id: c.id.clone(), name: c.name.clone(), reason: KillReason::NotInSpec });
        }
    }
    let restarts_follow = actions.kill.iter().any(|k| {
        k.reason == KillReason::SpecChanged || (k.reason != KillReason::NotInSpec && policy != RestartPolicy::Never)
    });
    if keep == 0 && actions.start.is_empty() && actions.remove.is_empty() && !restarts_follow {
        actions.kill_pod = true;
    }
    actions
}

/// Whether a container is started in a new sandbox after the old one died:
/// never-run containers always, others by policy (their last exit code;
/// one still marked running was lost with the sandbox, a failure).
fn restartable_after_sandbox_loss(snapshot: &PodSnapshot, policy: RestartPolicy, name: &str) -> bool {
    match snapshot.latest(name) {
        None => true,
        Some(c) if c.state == State::Exited => should_restart(policy, Some(c.exit_code)),
        Some(_) => should_restart(policy, Some(1)),
    }
}

/// Dead containers to remove: per name the newest container and the newest
/// exited one before it are kept (for `lastState` and `logs --previous`).
pub fn dead_containers(snapshot: &PodSnapshot) -> Vec<String> {
    // Per name: (newest seen, an exited one kept).
    let mut seen: HashMap<&str, (bool, bool)> = HashMap::new();
    let mut remove = Vec::new();
    for c in &snapshot.containers {
        let (newest_seen, exited_kept) = seen.entry(c.name.as_str()).or_default();
        if !*newest_seen {
            *newest_seen = true;
            *exited_kept = c.state == State::Exited;
        } else if c.state == State::Exited {
            if *exited_kept {
                remove.push(c.id.clone());
            }
            *exited_kept = true;
        }
    }
    remove
}

/// Old sandboxes to remove: not the newest, not ready, and holding none of
/// the containers that are kept.
pub fn dead_sandboxes(snapshot: &PodSnapshot, removed_containers: &[String]) -> Vec<String> {
    let holding: HashSet<&str> = snapshot
        .containers
        .iter()
        .filter(|c| !removed_containers.contains(&c.id))
        .map(|c| c.sandbox_id.as_str())
        .collect();
    snapshot
        .sandboxes
        .iter()
        .skip(1)
        .filter(|s| !s.ready && !holding.contains(s.id.as_str()))
        .map(|s| s.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ContainerInfo, SandboxInfo};
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn spec_container(name: &str) -> Container {
        Container { name: name.into(), image: Some("img".into()), ..Default::default() }
    }

    fn pod(policy: &str, names: &[&str]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: names.iter().map(|n| spec_container(n)).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sandbox(id: &str, attempt: u32, ready: bool, created_at: i64) -> SandboxInfo {
        SandboxInfo { id: id.into(), attempt, ready, created_at, ip: "10.88.0.2".into() }
    }

    fn container(id: &str, name: &str, state: State, exit_code: i32, created_at: i64) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            name: name.into(),
            sandbox_id: "s1".into(),
            restart_count: 0,
            hash: container_hash(&spec_container(name)),
            state,
            created_at,
            started_at: created_at,
            finished_at: if state == State::Exited { created_at + 1 } else { 0 },
            exit_code,
            reason: String::new(),
            message: String::new(),
            image: "img".into(),
            image_ref: "sha256:1".into(),
        }
    }

    fn snapshot(sandboxes: Vec<SandboxInfo>, containers: Vec<ContainerInfo>) -> PodSnapshot {
        let mut s = PodSnapshot { sandboxes, containers };
        s.sort();
        s
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_and_all_containers() {
        let actions = compute_actions(&pod("Always", &["a", "b"]), &PodSnapshot::default(), &HashMap::new());
        assert_eq!(actions.create_sandbox, Some(0));
        assert_eq!(actions.start, vec!["a".to_string(), "b".to_string()]);
        assert!(!actions.kill_pod);
    }

    #[test]
    fn running_containers_are_kept() {
        let snap = snapshot(vec![sandbox("s1", 0, true, 1)], vec![container("c1", "a", State::Running, 0, 2)]);
        assert_eq!(compute_actions(&pod("Always", &["a"]), &snap, &HashMap::new()), PodActions::default());
    }

    #[test]
    fn exited_containers_restart_by_policy() {
        let failed = snapshot(vec![sandbox("s1", 0, true, 1)], vec![container("c1", "a", State::Exited, 1, 2)]);
        let succeeded = snapshot(vec![sandbox("s1", 0, true, 1)], vec![container("c1", "a", State::Exited, 0, 2)]);
        let none = HashMap::new();
        assert_eq!(compute_actions(&pod("Always", &["a"]), &succeeded, &none).start, vec!["a"]);
        assert_eq!(compute_actions(&pod("OnFailure", &["a"]), &failed, &none).start, vec!["a"]);
        let done = compute_actions(&pod("OnFailure", &["a"]), &succeeded, &none);
        assert!(done.start.is_empty());
        assert!(done.kill_pod, "a finished pod's sandbox is stopped");
        let never = compute_actions(&pod("Never", &["a"]), &failed, &none);
        assert!(never.start.is_empty() && never.kill_pod);
    }

    #[test]
    fn a_finished_pod_gets_no_new_sandbox() {
        let snap = snapshot(vec![sandbox("s1", 0, false, 1)], vec![container("c1", "a", State::Exited, 0, 2)]);
        let actions = compute_actions(&pod("Never", &["a"]), &snap, &HashMap::new());
        assert_eq!(actions, PodActions::default());
    }

    #[test]
    fn a_lost_sandbox_is_replaced_with_the_next_attempt() {
        let snap = snapshot(vec![sandbox("s1", 0, false, 1)], vec![container("c1", "a", State::Exited, 137, 2)]);
        let actions = compute_actions(&pod("Always", &["a"]), &snap, &HashMap::new());
        assert_eq!(actions.create_sandbox, Some(1));
        assert_eq!(actions.start, vec!["a"]);
    }

    #[test]
    fn failed_liveness_kills_without_stopping_the_pod() {
        let snap = snapshot(vec![sandbox("s1", 0, true, 1)], vec![container("c1", "a", State::Running, 0, 2)]);
        let unhealthy = HashMap::from([("c1".to_string(), KillReason::LivenessFailed)]);
        let actions = compute_actions(&pod("Always", &["a"]), &snap, &unhealthy);
        assert_eq!(actions.kill, vec![Kill { id: "c1".into(), name: "a".into(), reason: KillReason::LivenessFailed }]);
        assert!(!actions.kill_pod);
        let actions = compute_actions(&pod("Never", &["a"]), &snap, &unhealthy);
        assert!(actions.kill_pod, "nothing will run again under Never");
    }

    #[test]
    fn a_changed_spec_replaces_the_container() {
        let mut c = container("c1", "a", State::Running, 0, 2);
        c.hash = "old".into();
        let snap = snapshot(vec![sandbox("s1", 0, true, 1)], vec![c]);
        let actions = compute_actions(&pod("Always", &["a"]), &snap, &HashMap::new());
        assert_eq!(actions.kill[0].reason, KillReason::SpecChanged);
    }

    #[test]
    fn half_created_containers_are_removed() {
        let snap = snapshot(vec![sandbox("s1", 0, true, 1)], vec![container("c1", "a", State::Created, 0, 2)]);
        let actions = compute_actions(&pod("Always", &["a"]), &snap, &HashMap::new());
        assert_eq!(actions.remove, vec!["c1"]);
    }

    #[test]
    fn only_the_last_dead_container_is_kept() {
        let snap = snapshot(
            vec![sandbox("s2", 1, true, 10), sandbox("s1", 0, false, 1), sandbox("s0", 0, false, 0)],
            vec![
                container("c4", "a", State::Running, 0, 5),
                container("c3", "a", State::Exited, 1, 4),
                container("c2", "a", State::Exited, 1, 3),
                container("c1", "a", State::Exited, 1, 2),
                container("b1", "b", State::Exited, 0, 2),
            ],
        );
        let removed = dead_containers(&snap);
        assert_eq!(removed, vec!["c2".to_string(), "c1".to_string()]);
        // s1 still holds c3 and b1 (their sandbox_id is s1); s0 holds nothing.
        assert_eq!(dead_sandboxes(&snap, &removed), vec!["s0".to_string()]);
    }
}
