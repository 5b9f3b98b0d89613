//! An agent that joins a three-server control plane with the token, runs
//! pods on the machine's containerd, and carries on through another server
//! when its own dies.

use std::time::Duration;

use capstan_tests::components::Component;
use capstan_tests::etcdctl;
use capstan_tests::have;
use capstan_tests::kube_cluster::{Apiserver, ServerSpec};

fn wait_voters(endpoint: &str, n: usize) {
    capstan_tests::wait_for(Duration::from_secs(60), &format!("{n} voters"), || {
        let out = etcdctl::run(endpoint, &["member", "list"], None);
        (out.ok && out.stdout.lines().filter(|l| l.contains(", started, ") && l.ends_with(", false")).count() == n)
            .then_some(())
    });
}

#[test]
fn an_agent_joins_with_the_token_and_fails_over_when_its_server_dies() {
    if !have("etcdctl") || !have("kubectl") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let specs: Vec<ServerSpec> = ["s1", "s2", "s3"].iter().map(|n| ServerSpec::new(root.path(), n)).collect();
    let mut servers = vec![Apiserver::member(&specs[0], &["--cluster-init"])];
    let token = std::fs::read_to_string(specs[0].dir.join("token")).expect("token").trim().to_string();
    for spec in &specs[1..] {
        servers.push(Apiserver::member(spec, &["--server", &specs[0].url(), "--token", &token]));
    }
    wait_voters(&specs[0].store_endpoint(), 3);
    let node = format!("ha-agent-{}", std::process::id());
    let agent = Component::joined_agent(&root.path().join("agent"), &servers[1].url(), &token, &node);
    let (observed, others) = servers.split_at_mut(1);
    let observer = &observed[0];
    let jsonpath = |args: &[&str], path: &str| {
        let out = observer.kubectl(&[args, &["-o", &format!("jsonpath={path}")]].concat());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let wait = |reason: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {reason}\nagent log:\n{}",
                agent.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait("the node to be Ready", &|| {
        jsonpath(&["get", "node", &node], "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
    });
    let running = |n: usize| {
        let phases = jsonpath(&["get", "pods", "-l", "app=ha"], "{.items[*].status.phase}");
        phases.split_whitespace().filter(|p| *p == "Running").count() == n
    };
    observer.kubectl_apply(&["apply", "-f", "-"], DEPLOYMENT);
    wait("one Running pod", &|| running(1));

    // The agent's own server dies: it carries on through another.
    let killed_at = jsonpath(&["-n", "kube-node-lease", "get", "lease", &node], "{.spec.renewTime}");
    others[0].kill();
    let renewed =
        |after: &str| jsonpath(&["-n", "kube-node-lease", "get", "lease", &node], "{.spec.renewTime}").as_str() > after;
    wait("the node lease to be renewed after the failover", &|| renewed(&killed_at));
    observer.kubectl_ok(&["scale", "deployment", "ha", "--replicas=2"]);
    wait("two Running pods", &|| running(2));

    observer.kubectl_ok(&["delete", "deployment", "ha"]);
    wait("the pods to go", &|| jsonpath(&["get", "pods", "-l", "app=ha"], "{.items[*].metadata.name}").is_empty());
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: ha}
spec:
  replicas: 1
  selector: {matchLabels: {app: ha}}
  template:
    metadata: {labels: {app: ha}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: capstan.local/busybox:1, command: [sleep, '3600']}
";
