//! Pods: READY, the computed STATUS and RESTARTS, exactly as printers.go `printPod` derives them.

use std::time::SystemTime;

use serde_json::Value;

use super::{AGE, Column, NAME, age, human_between, int_of, list_of, name, str_of, text, timestamp, wide};

pub(super) static COLUMNS: [Column; 9] = [
    NAME,
    text("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    text("Status", "The aggregate status of the containers in this pod."),
    text(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod \
         has restarted.",
    ),
    AGE,
    wide("IP", "IP address allocated to the pod. Routable at least within the cluster."),
    wide("Node", "NodeName indicates in which node this pod is scheduled."),
    wide("Nominated Node", "The node the scheduler nominated for this pod while it preempts others."),
    wide("Readiness Gates", "Readiness gates whose pod conditions are true, out of all of them."),
];

pub(super) fn cells(pod: &Value, now: SystemTime) -> Vec<Value> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let conditions = list_of(&status["conditions"]);
    let phase = str_of(&status["phase"]);
    let mut reason = match str_of(&status["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions.iter().any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated") {
        reason = "SchedulingGated".into();
    }

    let init_specs = list_of(&spec["initContainers"]);
    // Sidecars (init containers that restart always) keep running next to the app containers and count with them.
    let sidecar = |container: &str| {
        init_specs
            .iter()
            .rev()
            .find(|c| str_of(&c["name"]) == container)
            .is_some_and(|c| c["restartPolicy"] == "Always")
    };
    let total =
        list_of(&spec["containers"]).len() + init_specs.iter().filter(|c| c["restartPolicy"] == "Always").count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;

    let mut initializing = false;
    for (i, container) in list_of(&status["initContainerStatuses"]).iter().enumerate() {
        let finished = timestamp(&container["lastState"]["terminated"]["finishedAt"]);
        restarts += int_of(&container["restartCount"]);
        last_restart = last_restart.max(finished);
        let is_sidecar = sidecar(str_of(&container["name"]));
        if is_sidecar {
            sidecar_restarts += int_of(&container["restartCount"]);
            last_sidecar_restart = last_sidecar_restart.max(finished);
        }
        let terminated = &container["state"]["terminated"];
        let waiting = str_of(&container["state"]["waiting"]["reason"]);
        if terminated.is_object() && int_of(&terminated["exitCode"]) == 0 {
            continue;
        }
        if is_sidecar && container["started"] == true {
            if container["ready"] == true {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            match (str_of(&terminated["reason"]), int_of(&terminated["signal"])) {
                ("", 0) => format!("Init:ExitCode:{}", int_of(&terminated["exitCode"])),
                ("", signal) => format!("Init:Signal:{signal}"),
                (r, _) => format!("Init:{r}"),
            }
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions.iter().find(|c| c["type"] == "Initialized").is_some_and(|c| c["status"] == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for container in list_of(&status["containerStatuses"]).iter().rev() {
            restarts += int_of(&container["restartCount"]);
            last_restart = last_restart.max(timestamp(&container["lastState"]["terminated"]["finishedAt"]));
            let state = &container["state"];
            let terminated = &state["terminated"];
            let waiting = str_of(&state["waiting"]["reason"]);
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if terminated.is_object() {
                reason = match (str_of(&terminated["reason"]), int_of(&terminated["signal"])) {
                    ("", 0) => format!("ExitCode:{}", int_of(&terminated["exitCode"])),
                    ("", signal) => format!("Signal:{signal}"),
                    (r, _) => r.to_string(),
                };
            } else if container["ready"] == true && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while others still run is not done yet.
        if reason == "Completed" && has_running {
            let pod_ready = conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }

    if !pod["metadata"]["deletionTimestamp"].is_null() {
        if str_of(&status["reason"]) == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }

    let restarts = match last_restart {
        Some(last) if restarts != 0 => format!("{restarts} ({} ago)", human_between(last, now)),
        _ => restarts.to_string(),
    };
    vec![
        name(pod),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.into(),
        age(pod, now),
        none_if_empty(pod_ip(status)),
        none_if_empty(str_of(&spec["nodeName"])),
        none_if_empty(str_of(&status["nominatedNodeName"])),
        readiness_gates(list_of(&spec["readinessGates"]), conditions).into(),
    ]
}

/// The first pod IP; v1 objects written by old kubelets may only carry the singular `podIP`.
fn pod_ip(status: &Value) -> &str {
    match str_of(&status["podIPs"][0]["ip"]) {
        "" => str_of(&status["podIP"]),
        ip => ip,
    }
}

/// "<none>" stands in for an unset wide cell.
fn none_if_empty(s: &str) -> Value {
    if s.is_empty() { "<none>" } else { s }.into()
}

/// "true/total" over the readiness gates, "<none>" without any.
fn readiness_gates(gates: &[Value], conditions: &[Value]) -> String {
    if gates.is_empty() {
        return "<none>".into();
    }
    let passed = gates
        .iter()
        .filter(|gate| {
            conditions.iter().find(|c| c["type"] == gate["conditionType"]).is_some_and(|c| c["status"] == "True")
        })
        .count();
    format!("{passed}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    const NOW: &str = "2024-05-01T12:00:00Z";

    fn row(pod: &Value) -> Vec<Value> {
        cells(pod, at(NOW))
    }

    #[test]
    fn running_pod_with_restarts() {
        let pod = json!({
            "metadata": {"name": "web-7d4b9c-x2x", "creationTimestamp": "2024-04-29T09:00:00Z"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx:1.27"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.1.7",
                "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "web", "ready": true, "restartCount": 2, "started": true,
                    "state": {"running": {"startedAt": "2024-05-01T11:55:00Z"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                 "finishedAt": "2024-05-01T11:55:00Z"}}
                }]
            }
        });
        assert_eq!(
            row(&pod),
            [
                json!("web-7d4b9c-x2x"),
                json!("1/1"),
                json!("Running"),
                json!("2 (5m ago)"),
                json!("2d3h"),
                json!("10.244.1.7"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pending_pod_creating_its_container() {
        let pod = json!({
            "metadata": {"name": "api-0", "creationTimestamp": "2024-05-01T11:59:30Z"},
            "spec": {"nodeName": "node-2", "containers": [{"name": "api"}, {"name": "proxy"}],
                     "readinessGates": [{"conditionType": "example.com/lb-ready"}]},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "example.com/lb-ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "api", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "ContainerCreating"}}},
                    {"name": "proxy", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "ContainerCreating"}}}
                ]
            }
        });
        let cells = row(&pod);
        assert_eq!(cells[1..5], [json!("0/2"), json!("ContainerCreating"), json!("0"), json!("30s")]);
        assert_eq!(cells[5..], [json!("<none>"), json!("node-2"), json!("<none>"), json!("0/1")]);
    }

    #[test]
    fn crash_looping_and_init_states() {
        let crash = json!({"status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:58:00Z"}}
        }]}, "spec": {"containers": [{"name": "app"}]}});
        assert_eq!(row(&crash)[1..4], [json!("0/1"), json!("CrashLoopBackOff"), json!("5 (2m ago)")]);

        let init = json!({
            "spec": {"initContainers": [{"name": "migrate"}, {"name": "seed"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "migrate", "restartCount": 0, "state": {"running": {}}},
                {"name": "seed", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
            ], "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}
        });
        assert_eq!(row(&init)[1..4], [json!("0/1"), json!("Init:0/2"), json!("0")]);

        let failed_init = json!({
            "spec": {"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "migrate", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        assert_eq!(row(&failed_init)[2..4], [json!("Init:CrashLoopBackOff"), json!("3")]);

        let init_exit = json!({
            "spec": {"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Failed", "initContainerStatuses": [
                {"name": "migrate", "state": {"terminated": {"exitCode": 2}}}
            ]}
        });
        assert_eq!(row(&init_exit)[2], json!("Init:ExitCode:2"));
    }

    #[test]
    fn sidecar_counts_as_a_container() {
        let pod = json!({
            "spec": {"initContainers": [{"name": "mesh", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "mesh", "started": true, "ready": true, "restartCount": 1,
                                           "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]
            }
        });
        assert_eq!(row(&pod)[1..4], [json!("2/2"), json!("Running"), json!("1")]);
    }

    #[test]
    fn terminating_pod() {
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2024-05-01T09:00:00Z",
                         "deletionTimestamp": "2024-05-01T12:00:30Z"},
            "spec": {"containers": [{"name": "web"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        });
        assert_eq!(row(&pod)[1..5], [json!("1/1"), json!("Terminating"), json!("0"), json!("3h")]);

        let lost = json!({"metadata": {"deletionTimestamp": "2024-05-01T12:00:00Z"},
                          "status": {"phase": "Running", "reason": "NodeLost"}});
        assert_eq!(row(&lost)[2], json!("Unknown"));
    }

    #[test]
    fn completed_pod() {
        let pod = json!({
            "metadata": {"name": "backup-28573", "creationTimestamp": "2024-05-01T02:00:00Z",
                         "deletionTimestamp": "2024-05-01T12:00:00Z"},
            "spec": {"containers": [{"name": "backup"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "backup", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2024-05-01T02:03:00Z"}}
            }]}
        });
        assert_eq!(row(&pod)[1..5], [json!("0/1"), json!("Completed"), json!("0"), json!("10h")]);

        let still_running = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}},
                {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]}
        });
        assert_eq!(row(&still_running)[1..3], [json!("1/2"), json!("NotReady")]);
    }

    #[test]
    fn scheduling_gated_pod() {
        let pod = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
        ]}, "spec": {"containers": [{"name": "app"}]}});
        assert_eq!(row(&pod)[2], json!("SchedulingGated"));
    }
}
