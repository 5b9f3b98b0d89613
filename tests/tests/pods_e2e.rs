//! Pods run, end to end: `capstan server` (store, apiserver, and the
//! controller-manager and scheduler in-process), `capstan agent` on the
//! machine's real containerd, and the real kubectl. Each test names its own
//! node, so tests sharing the one containerd never touch each other's pods.

use std::time::Duration;

use capstan_tests::components::{Component, containerd_containers};
use capstan_tests::kube_cluster::Apiserver;
use capstan_tests::{have, wait_for};

/// A cluster of one node on this machine.
struct Cluster {
    _dir: tempfile::TempDir,
    server: Apiserver,
    agent: Component,
    node: String,
}

impl Cluster {
    fn start(test: &str) -> Option<Cluster> {
        Cluster::start_with(test, &[])
    }

    fn start_with(test: &str, server_flags: &[&str]) -> Option<Cluster> {
        if !have("kubectl") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Apiserver::server_with(&dir.path().join("cp"), server_flags);
        let node = format!("{test}-{}", std::process::id());
        let agent = Component::agent(&server, &node);
        let cluster = Cluster { _dir: dir, server, agent, node };
        cluster.wait("the node to be Ready", Duration::from_secs(60), |c| {
            let ready = c.jsonpath(&["get", "node", &c.node], "{.status.conditions[?(@.type==\"Ready\")].status}");
            (ready == "True").then_some(())
        });
        Some(cluster)
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.server.kubectl_ok(args)
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let out = self.server.kubectl(&[args, &["-o", &format!("jsonpath={path}")]].concat());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn apply(&self, manifest: &str) {
        self.server.kubectl_apply(&["apply", "-f", "-"], manifest);
    }

    /// Waits for `cond`, showing the agent's and server's logs on timeout.
    fn wait<T>(&self, reason: &str, timeout: Duration, mut cond: impl FnMut(&Cluster) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {reason}\npods:\n{}\nagent log:\n{}\nserver log:\n{}",
                    self.kubectl(&["get", "pods", "-o", "wide"]),
                    self.agent.log_tail(),
                    self.server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Names of the pods matching `selector` that are Running and not being deleted.
    fn running_pods(&self, selector: &str) -> Vec<String> {
        let path = "{range .items[*]}{.metadata.name} {.status.phase} {.metadata.deletionTimestamp}{\"\\n\"}{end}";
        self.jsonpath(&["get", "pods", "-l", selector], path)
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() == 2 && fields[1] == "Running").then(|| fields[0].to_string())
            })
            .collect()
    }

    fn all_pods(&self, selector: &str) -> Vec<String> {
        let names = self.jsonpath(&["get", "pods", "-l", selector], "{.items[*].metadata.name}");
        names.split_whitespace().map(str::to_string).collect()
    }

    fn wait_running(&self, selector: &str, count: usize) -> Vec<String> {
        let reason = format!("{count} running pods with {selector} and no others");
        self.wait(&reason, Duration::from_secs(120), |c| {
            let running = c.running_pods(selector);
            (running.len() == count && c.all_pods(selector).len() == count).then_some(running)
        })
    }

    fn pod_uid(&self, pod: &str) -> String {
        self.jsonpath(&["get", "pod", pod], "{.metadata.uid}")
    }

    /// containerd's app containers (not sandboxes) of one pod.
    fn containers_of(&self, uid: &str) -> Vec<String> {
        containerd_containers(&[("io.kubernetes.pod.uid", uid), ("io.cri-containerd.kind", "container")])
    }
}

impl Drop for Cluster {
    /// Stops this cluster's pods through the agent, so that no container
    /// outlives the test, pass or fail.
    fn drop(&mut self) {
        let _ = self.server.kubectl(&["delete", "deployments,pods", "--all", "--grace-period=1", "--wait=false"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline && !self.all_pods("").is_empty() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn deployment(name: &str, replicas: u32, message: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: capstan.local/busybox:1
        command: [sh, -c, 'echo {message}; trap \"exit 0\" TERM; while true; do sleep 1; done']
        resources: {{requests: {{cpu: 10m, memory: 8Mi}}}}
"
    )
}

fn bare_pod(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n{spec}")
}

#[test]
fn a_deployment_runs_heals_scales_rolls_back_and_goes() {
    let Some(c) = Cluster::start("deploy") else { return };
    c.apply(&deployment("hello", 3, "v1"));
    let pods = c.wait_running("app=hello", 3);
    for pod in &pods {
        let uid = c.pod_uid(pod);
        c.wait("one container per pod in containerd", Duration::from_secs(30), |c| {
            (c.containers_of(&uid).len() == 1).then_some(())
        });
        assert_eq!(c.jsonpath(&["get", "pod", pod], "{.spec.nodeName}"), c.node);
        assert!(!c.jsonpath(&["get", "pod", pod], "{.status.podIP}").is_empty(), "{pod} has no IP");
    }

    // A deleted pod is replaced, and its container goes.
    let victim = &pods[0];
    let victim_uid = c.pod_uid(victim);
    c.kubectl(&["delete", "pod", victim, "--wait=true", "--timeout=60s"]);
    let healed = c.wait_running("app=hello", 3);
    assert!(!healed.contains(victim), "{victim} came back: {healed:?}");
    c.wait("the deleted pod's container to go", Duration::from_secs(30), |c| {
        c.containers_of(&victim_uid).is_empty().then_some(())
    });

    c.kubectl(&["scale", "deployment/hello", "--replicas=5"]);
    c.wait_running("app=hello", 5);
    c.kubectl(&["scale", "deployment/hello", "--replicas=1"]);
    c.wait_running("app=hello", 1);

    // A rolling update to a new command replaces every pod; undo goes back.
    c.kubectl(&["scale", "deployment/hello", "--replicas=3"]);
    c.wait_running("app=hello", 3);
    let patch = r#"[{"op":"replace","path":"/spec/template/spec/containers/0/command/2","value":"echo v2; trap \"exit 0\" TERM; while true; do sleep 1; done"}]"#;
    c.kubectl(&["patch", "deployment/hello", "--type=json", "-p", patch]);
    c.kubectl(&["rollout", "status", "deployment/hello", "--timeout=120s"]);
    let commands = |c: &Cluster| {
        c.jsonpath(
            &["get", "pods", "-l", "app=hello"],
            "{range .items[*]}{.spec.containers[0].command[2]}{\"\\n\"}{end}",
        )
    };
    let rolled = c.wait_running("app=hello", 3);
    assert_eq!(rolled.len(), 3);
    assert!(commands(&c).lines().all(|l| l.starts_with("echo v2")), "{}", commands(&c));
    let replica_sets = c.jsonpath(&["get", "rs", "-l", "app=hello"], "{.items[*].metadata.name}");
    assert_eq!(replica_sets.split_whitespace().count(), 2, "{replica_sets}");

    c.kubectl(&["rollout", "undo", "deployment/hello"]);
    c.kubectl(&["rollout", "status", "deployment/hello", "--timeout=120s"]);
    c.wait("every pod back on the first command", Duration::from_secs(60), |c| {
        let commands = commands(c);
        (c.running_pods("app=hello").len() == 3 && commands.lines().all(|l| l.starts_with("echo v1"))).then_some(())
    });
    let revision =
        c.jsonpath(&["get", "deployment", "hello"], "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}");
    assert_eq!(revision, "3");

    // Deleting the Deployment removes its ReplicaSets, pods and containers.
    let uids: Vec<String> = c.all_pods("app=hello").iter().map(|p| c.pod_uid(p)).collect();
    c.kubectl(&["delete", "deployment", "hello"]);
    c.wait("the pods and ReplicaSets to go", Duration::from_secs(60), |c| {
        let rs = c.jsonpath(&["get", "rs", "-l", "app=hello"], "{.items[*].metadata.name}");
        (c.all_pods("app=hello").is_empty() && rs.is_empty()).then_some(())
    });
    c.wait("their containers to go", Duration::from_secs(30), |c| {
        uids.iter().all(|uid| c.containers_of(uid).is_empty()).then_some(())
    });
}

#[test]
fn a_failing_container_backs_off_and_probes_restart_and_unready_pods() {
    let Some(c) = Cluster::start("probes") else { return };
    c.apply(&bare_pod("crash", "  containers:\n  - name: main\n    image: capstan.local/busybox:1\n    command: [sh, -c, 'echo failing; exit 1']\n"));
    // Liveness: healthy for a few seconds, then the probe fails and the
    // container is restarted. Readiness never passes.
    let probed = "  containers:
  - name: main
    image: capstan.local/busybox:1
    command: [sh, -c, 'touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 600']
    livenessProbe: {exec: {command: [test, -f, /tmp/healthy]}, periodSeconds: 1, failureThreshold: 2}
  - name: side
    image: capstan.local/busybox:1
    command: [sh, -c, 'sleep 600']
    readinessProbe: {exec: {command: ['false']}, periodSeconds: 1}
";
    c.apply(&bare_pod("probed", probed));

    let restarts = |c: &Cluster, pod: &str| {
        c.jsonpath(&["get", "pod", pod], "{.status.containerStatuses[?(@.name==\"main\")].restartCount}")
            .parse::<u32>()
            .unwrap_or(0)
    };
    c.wait("CrashLoopBackOff with two restarts", Duration::from_secs(90), |c| {
        let reason = c.jsonpath(&["get", "pod", "crash"], "{.status.containerStatuses[0].state.waiting.reason}");
        (reason == "CrashLoopBackOff" && restarts(c, "crash") >= 2).then_some(())
    });
    let table = c.kubectl(&["get", "pod", "crash"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");

    c.wait("the liveness probe to restart the container", Duration::from_secs(60), |c| {
        (restarts(c, "probed") >= 1).then_some(())
    });
    let ready = c.jsonpath(&["get", "pod", "probed"], "{.status.conditions[?(@.type==\"Ready\")].status}");
    assert_eq!(ready, "False");
    let side_ready = c.jsonpath(&["get", "pod", "probed"], "{.status.containerStatuses[?(@.name==\"side\")].ready}");
    assert_eq!(side_ready, "false");

    let described = c.kubectl(&["describe", "pod", "probed"]);
    for expected in ["Scheduled", "Pulled", "Created", "Started", "Unhealthy", "Liveness probe failed", "Killing"] {
        assert!(described.contains(expected), "describe lacks {expected}:\n{described}");
    }
    let described = c.kubectl(&["describe", "pod", "crash"]);
    assert!(described.contains("BackOff"), "describe lacks BackOff:\n{described}");
}

#[test]
fn pods_that_fit_nowhere_wait_and_cordoned_nodes_take_no_new_pods() {
    let Some(c) = Cluster::start("sched") else { return };
    let huge = "  containers:\n  - name: main\n    image: capstan.local/busybox:1\n    command: [sleep, '600']\n    resources: {requests: {memory: 100Ti}}\n";
    c.apply(&bare_pod("huge", huge));
    c.wait("a FailedScheduling event naming the memory", Duration::from_secs(30), |c| {
        let events = c.jsonpath(
            &["get", "events", "--field-selector", "involvedObject.name=huge,reason=FailedScheduling"],
            "{.items[*].message}",
        );
        events.contains("Insufficient memory").then_some(())
    });
    assert_eq!(c.jsonpath(&["get", "pod", "huge"], "{.status.phase}"), "Pending");
    assert_eq!(c.jsonpath(&["get", "pod", "huge"], "{.spec.nodeName}"), "");

    c.kubectl(&["cordon", &c.node]);
    let small = "  containers:\n  - name: main\n    image: capstan.local/busybox:1\n    command: [sleep, '600']\n";
    c.apply(&bare_pod("small", small));
    c.wait("the cordoned node's reason in FailedScheduling", Duration::from_secs(30), |c| {
        let events = c.jsonpath(
            &["get", "events", "--field-selector", "involvedObject.name=small,reason=FailedScheduling"],
            "{.items[*].message}",
        );
        events.contains("unschedulable").then_some(())
    });
    assert_eq!(c.jsonpath(&["get", "pod", "small"], "{.spec.nodeName}"), "");
    c.kubectl(&["uncordon", &c.node]);
    c.wait("the pod to run once the node is uncordoned", Duration::from_secs(60), |c| {
        (c.jsonpath(&["get", "pod", "small"], "{.status.phase}") == "Running").then_some(())
    });
}

#[test]
fn a_restarted_agent_adopts_its_pods_without_duplicates() {
    let Some(mut c) = Cluster::start("restart") else { return };
    c.apply(&deployment("keep", 2, "kept"));
    let pods = c.wait_running("app=keep", 2);
    let uids: Vec<String> = pods.iter().map(|p| c.pod_uid(p)).collect();
    let before: Vec<Vec<String>> = uids.iter().map(|uid| c.containers_of(uid)).collect();

    c.agent.kill();
    c.agent = Component::agent(&c.server, &c.node);
    // Long enough for several sync rounds of the new agent.
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(c.wait_running("app=keep", 2), pods);
    for (uid, containers) in uids.iter().zip(&before) {
        assert_eq!(&c.containers_of(uid), containers, "pod {uid}'s containers changed");
    }
    for pod in &pods {
        let restarts = c.jsonpath(&["get", "pod", pod], "{.status.containerStatuses[0].restartCount}");
        assert_eq!(restarts, "0", "{pod}");
        let ready = c.jsonpath(&["get", "pod", pod], "{.status.conditions[?(@.type==\"Ready\")].status}");
        assert_eq!(ready, "True", "{pod}");
    }
    c.kubectl(&["delete", "deployment", "keep"]);
    c.wait("the pods to go", Duration::from_secs(60), |c| c.all_pods("app=keep").is_empty().then_some(()));
}

#[test]
fn standby_controller_manager_and_scheduler_take_over_from_killed_leaders() {
    let Some(c) = Cluster::start_with("failover", &["--disable-controller-manager", "--disable-scheduler"]) else {
        return;
    };
    let mut managers =
        [Component::controller_manager(&c.server, "cm1"), Component::controller_manager(&c.server, "cm2")];
    let mut schedulers = [Component::scheduler(&c.server, "sched1"), Component::scheduler(&c.server, "sched2")];
    c.apply(&deployment("first", 1, "first"));
    c.wait_running("app=first", 1);

    let leader = |components: &[Component]| components.iter().position(|p| p.log().contains("became leader"));
    let cm = wait_for(Duration::from_secs(30), "a leading controller-manager", || leader(&managers));
    let sched = wait_for(Duration::from_secs(30), "a leading scheduler", || leader(&schedulers));
    managers[cm].kill();
    schedulers[sched].kill();

    c.apply(&deployment("second", 2, "second"));
    c.wait_running("app=second", 2);
    assert!(managers[1 - cm].log().contains("became leader"), "{}", managers[1 - cm].log_tail());
    assert!(schedulers[1 - sched].log().contains("became leader"), "{}", schedulers[1 - sched].log_tail());
    c.kubectl(&["delete", "deployment", "first", "second"]);
    c.wait("the pods to go", Duration::from_secs(60), |c| {
        (c.all_pods("app=first").is_empty() && c.all_pods("app=second").is_empty()).then_some(())
    });
}

#[test]
fn an_image_that_cannot_be_pulled_backs_off() {
    let Some(c) = Cluster::start("pull") else { return };
    let spec = "  containers:\n  - name: main\n    image: capstan.local/missing:1\n    command: [sleep, '600']\n";
    c.apply(&bare_pod("unpullable", spec));
    c.wait("ErrImagePull, then ImagePullBackOff", Duration::from_secs(90), |c| {
        let reason = c.jsonpath(&["get", "pod", "unpullable"], "{.status.containerStatuses[0].state.waiting.reason}");
        (reason == "ImagePullBackOff").then_some(())
    });
    assert_eq!(c.jsonpath(&["get", "pod", "unpullable"], "{.status.phase}"), "Pending");
    let described = c.kubectl(&["describe", "pod", "unpullable"]);
    assert!(described.contains("ErrImagePull"), "describe lacks ErrImagePull:\n{described}");
}
