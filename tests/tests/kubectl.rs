//! The real kubectl (1.33, picked by the machine's dispatcher from
//! /version) against `capstan server`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use capstan_tests::kube_cluster::Apiserver;
use capstan_tests::{have, wait_for};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
";

fn start() -> Option<(tempfile::TempDir, Apiserver)> {
    if !have("kubectl") {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server(&dir.path().join("cp"));
    Some((dir, server))
}

#[test]
fn explain_describes_kinds_and_their_fields() {
    let Some((_dir, cp)) = start() else { return };
    let pod = cp.kubectl_ok(&["explain", "pods"]);
    assert!(pod.contains("KIND:       Pod") && pod.contains("Pod is a collection of containers"), "{pod}");
    assert!(pod.contains("spec\t<PodSpec>"), "{pod}");
    let ports = cp.kubectl_ok(&["explain", "deployment.spec.template.spec.containers.ports"]);
    assert!(ports.contains("GROUP:      apps") && ports.contains("FIELD: ports <[]ContainerPort>"), "{ports}");
    assert!(ports.contains("containerPort\t<integer> -required-"), "{ports}");
    let recursive = cp.kubectl_ok(&["explain", "cronjobs.spec", "--recursive"]);
    assert!(recursive.contains("jobTemplate\t<JobTemplateSpec> -required-"), "{recursive}");
    let unknown = cp.kubectl_err(&["explain", "pods.spec.bogus"]);
    assert!(unknown.contains("field \"bogus\" does not exist"), "{unknown}");

    // The schemas carry no merge keys, and do not change how a client-side
    // apply patches lists: by name, so a container added by someone else stays.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: two}\nspec:\n  selector: {matchLabels: {app: two}}\n  template:\n    metadata: {labels: {app: two}}\n    spec:\n      containers: [{name: a, image: a:1}, {name: b, image: b:1}]\n";
    cp.kubectl_apply(&["apply", "-f", "-"], deployment);
    let sidecar = r#"{"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "c:1"}]}}}}"#;
    cp.kubectl_ok(&["patch", "deploy", "two", "-p", sidecar]);
    cp.kubectl_apply(&["apply", "-f", "-"], &deployment.replace("a:1", "a:2"));
    let images = cp.kubectl_ok(&["get", "deploy", "two", "-o", "jsonpath={.spec.template.spec.containers[*].image}"]);
    let mut images: Vec<&str> = images.split_whitespace().collect();
    images.sort();
    assert_eq!(images, vec!["a:2", "b:1", "c:1"]);
}

#[test]
fn discovery_version_and_every_resource_lists() {
    let Some((_dir, cp)) = start() else { return };
    let version = cp.kubectl_ok(&["version"]);
    assert!(version.contains("Server Version: v1.33"), "{version}");
    let resources = cp.kubectl_ok(&["api-resources"]);
    for line in ["deployments                 deploy", "pods                        po"] {
        let name = line.split_whitespace().next().unwrap_or_default();
        assert!(resources.lines().any(|l| l.starts_with(name)), "{name} missing:\n{resources}");
    }
    let namespaces = cp.kubectl_ok(&["get", "ns"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(namespaces.contains(ns), "{ns} missing:\n{namespaces}");
    }
    for resource in [
        "pods",
        "nodes",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
        "deployments",
        "replicasets",
        "daemonsets",
        "statefulsets",
        "jobs",
        "cronjobs",
        "leases",
        "endpointslices",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ] {
        cp.kubectl_ok(&["get", resource, "-A"]);
        cp.kubectl_ok(&["get", resource, "-A", "-o", "wide"]);
        cp.kubectl_ok(&["get", resource, "-A", "-o", "json"]);
    }
    let sa = cp.kubectl_ok(&["get", "sa", "default", "-n", "kube-system", "-o", "yaml"]);
    assert!(sa.contains("name: default"), "{sa}");
    let roles = cp.kubectl_ok(&["get", "clusterroles"]);
    assert!(roles.contains("cluster-admin") && roles.contains("view"), "{roles}");
}

#[test]
fn apply_twice_server_side_apply_and_tables() {
    let Some((_dir, cp)) = start() else { return };
    assert!(cp.kubectl_apply(&["apply", "-f", "-"], DEPLOYMENT).contains("deployment.apps/web created"));
    let updated = DEPLOYMENT.replace("nginx:1.25", "nginx:1.26");
    assert!(cp.kubectl_apply(&["apply", "-f", "-"], &updated).contains("deployment.apps/web configured"));
    let image = cp.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"]);
    assert_eq!(image, "nginx:1.26");
    let generation = cp.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.generation}"]);
    assert_eq!(generation, "2");
    // The same manifest again changes nothing.
    assert!(cp.kubectl_apply(&["apply", "-f", "-"], &updated).contains("unchanged"));

    let table = cp.kubectl_ok(&["get", "deploy"]);
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] {
        assert!(header.contains(column), "{column} missing: {table}");
    }
    let wide = cp.kubectl_ok(&["get", "deploy", "-o", "wide"]);
    assert!(wide.contains("CONTAINERS") && wide.contains("nginx:1.26") && wide.contains("app=web"), "{wide}");

    let ssa = DEPLOYMENT.replace("name: web", "name: api").replace("replicas: 2", "replicas: 1");
    assert!(cp.kubectl_apply(&["apply", "--server-side", "-f", "-"], &ssa).contains("serverside-applied"));
    let managed = cp.kubectl_ok(&["get", "deploy", "api", "-o", "yaml", "--show-managed-fields"]);
    assert!(managed.contains("manager: kubectl") && managed.contains("operation: Apply"), "{managed}");
    let ssa2 = ssa.replace("replicas: 1", "replicas: 4");
    cp.kubectl_apply(&["apply", "--server-side", "-f", "-"], &ssa2);
    assert_eq!(cp.kubectl_ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"]), "4");

    let sorted = cp.kubectl_ok(&["get", "deploy", "--sort-by=.metadata.name", "-o", "name"]);
    assert_eq!(sorted.lines().collect::<Vec<_>>(), vec!["deployment.apps/api", "deployment.apps/web"]);
}

/// A ConfigMap `owned` with these data entries and labels, as YAML.
fn owned_configmap(data: &[(&str, &str)], labels: &[(&str, &str)]) -> String {
    let mut yaml = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n");
    if !labels.is_empty() {
        yaml.push_str("  labels:\n");
        for (key, value) in labels {
            yaml.push_str(&format!("    {key}: \"{value}\"\n"));
        }
    }
    yaml.push_str("data:\n");
    for (key, value) in data {
        yaml.push_str(&format!("  {key}: \"{value}\"\n"));
    }
    yaml
}

#[test]
fn server_side_apply_conflicts_force_and_removes_dropped_fields() {
    let Some((_dir, cp)) = start() else { return };
    let apply = |manager: &str, manifest: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "--field-manager", manager, "-f", "-"];
        args.extend_from_slice(extra);
        cp.kubectl_with_input(&args, Some(manifest))
    };
    let data = || cp.kubectl_ok(&["get", "cm", "owned", "-o", "jsonpath={.data}"]);
    let first = apply("team-a", &owned_configmap(&[("a", "1"), ("b", "2")], &[("tier", "x")]), &[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));

    // Changing a field another manager set is refused, and nothing changes.
    let refused = apply("team-b", &owned_configmap(&[("a", "9")], &[]), &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a conflicting apply succeeded");
    assert!(
        stderr.contains("Apply failed with 1 conflict: conflict with \"team-a\": .data.a")
            && stderr.contains("--force-conflicts"),
        "{stderr}"
    );
    assert_eq!(data(), r#"{"a":"1","b":"2"}"#);

    // Forced, team-b takes `a` over; the same value for `b` is shared.
    let forced = apply("team-b", &owned_configmap(&[("a", "9"), ("b", "2")], &[]), &["--force-conflicts"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(data(), r#"{"a":"9","b":"2"}"#);

    // team-a drops `b` and its label: the label goes, `b` stays with team-b.
    let dropped = apply("team-a", &owned_configmap(&[("c", "3")], &[]), &[]);
    assert!(dropped.status.success(), "{}", String::from_utf8_lossy(&dropped.stderr));
    assert_eq!(data(), r#"{"a":"9","b":"2","c":"3"}"#);
    assert_eq!(cp.kubectl_ok(&["get", "cm", "owned", "-o", "jsonpath={.metadata.labels}"]), "");
    let managed = cp.kubectl_ok(&["get", "cm", "owned", "-o", "yaml", "--show-managed-fields"]);
    assert!(managed.contains("manager: team-a") && managed.contains("manager: team-b"), "{managed}");

    // An update takes the fields it changes: team-a's next apply of `c`
    // conflicts with kubectl patch's manager.
    cp.kubectl_ok(&["patch", "cm", "owned", "--type=merge", "-p", r#"{"data":{"c":"4"}}"#]);
    let refused = apply("team-a", &owned_configmap(&[("c", "3")], &[]), &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("conflict with \"kubectl-patch\" using v1: .data.c"), "{stderr}");

    // A client-side applied object moves to server-side apply without
    // conflicts: kubectl hands its fields over.
    let web = DEPLOYMENT.replace("name: web", "name: handed");
    cp.kubectl_apply(&["apply", "-f", "-"], &web);
    let changed = web.replace("replicas: 2", "replicas: 3");
    cp.kubectl_apply(&["apply", "--server-side", "-f", "-"], &changed);
    assert_eq!(cp.kubectl_ok(&["get", "deploy", "handed", "-o", "jsonpath={.spec.replicas}"]), "3");
}

#[test]
fn create_replace_delete_and_kubernetes_error_messages() {
    let Some((_dir, cp)) = start() else { return };
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {a: \"1\"}\n";
    assert!(cp.kubectl_apply(&["create", "-f", "-"], cm).contains("configmap/demo created"));
    let again = cp.kubectl_with_input(&["create", "-f", "-"], Some(cm));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("Error from server (AlreadyExists)") && stderr.contains("configmaps \"demo\" already exists"),
        "{stderr}"
    );

    let stale = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo, resourceVersion: \"1\"}\ndata: {a: \"2\"}\n";
    let out = cp.kubectl_with_input(&["replace", "-f", "-"], Some(stale));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error from server (Conflict)") && stderr.contains("the object has been modified"),
        "{stderr}"
    );
    let fresh = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {a: \"3\"}\n";
    assert!(cp.kubectl_apply(&["replace", "-f", "-"], fresh).contains("configmap/demo replaced"));

    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: BadName}\n";
    let out = cp.kubectl_with_input(&["create", "-f", "-"], Some(bad));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The ConfigMap \"BadName\" is invalid: metadata.name: Invalid value: \"BadName\""),
        "{stderr}"
    );
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndatta: {a: \"1\"}\n";
    let out = cp.kubectl_with_input(&["create", "-f", "-"], Some(unknown));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("strict decoding error: unknown field \"datta\""), "{stderr}");

    let missing = cp.kubectl_err(&["get", "pod", "nope"]);
    assert!(missing.contains("Error from server (NotFound): pods \"nope\" not found"), "{missing}");
    let in_missing_ns = cp.kubectl_with_input(&["create", "-n", "nowhere", "-f", "-"], Some(fresh));
    assert!(String::from_utf8_lossy(&in_missing_ns.stderr).contains("namespaces \"nowhere\" not found"));
    let unknown_type = cp.kubectl_err(&["get", "widgets"]);
    assert!(unknown_type.contains("the server doesn't have a resource type \"widgets\""), "{unknown_type}");

    let dry = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\n";
    assert!(
        cp.kubectl_apply(&["create", "--dry-run=server", "-f", "-"], dry)
            .contains("configmap/dry created (server dry run)")
    );
    cp.kubectl_err(&["get", "configmap", "dry"]);

    assert!(
        cp.kubectl_ok(&["delete", "configmap", "demo", "--cascade=background"]).contains("configmap \"demo\" deleted")
    );
    cp.kubectl_err(&["get", "configmap", "demo"]);
    let immortal = cp.kubectl_err(&["delete", "namespace", "kube-system"]);
    assert!(immortal.contains("this namespace may not be deleted"), "{immortal}");
}

#[test]
fn deleting_a_namespace_deletes_what_is_in_it_then_the_namespace() {
    let Some((_dir, cp)) = start() else { return };
    cp.kubectl_ok(&["create", "namespace", "doomed"]);
    cp.kubectl_ok(&["create", "configmap", "settings", "-n", "doomed", "--from-literal=a=b"]);
    cp.kubectl_apply(&["apply", "-n", "doomed", "-f", "-"], DEPLOYMENT);
    wait_for(Duration::from_secs(30), "the deployment's pods", || {
        let pods = cp.kubectl_ok(&["get", "pods", "-n", "doomed", "-o", "name"]);
        (pods.lines().count() == 2).then_some(())
    });
    // kubectl waits for the namespace to be gone, as on Kubernetes.
    let deleted = cp.kubectl_ok(&["delete", "namespace", "doomed", "--timeout=60s"]);
    assert!(deleted.contains("namespace \"doomed\" deleted"), "{deleted}");
    let gone = cp.kubectl_err(&["get", "namespace", "doomed"]);
    assert!(gone.contains("not found"), "{gone}");
    assert_eq!(cp.kubectl_ok(&["get", "configmaps,deployments,pods", "-n", "doomed", "-o", "name"]).trim(), "");
}

#[test]
fn scale_label_annotate_and_every_patch_type() {
    let Some((_dir, cp)) = start() else { return };
    cp.kubectl_apply(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(cp.kubectl_ok(&["scale", "deploy", "web", "--replicas=3"]).contains("scaled"));
    assert_eq!(cp.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "3");
    cp.kubectl_ok(&["label", "deploy", "web", "tier=frontend"]);
    cp.kubectl_ok(&["annotate", "deploy", "web", "owner=team-a"]);
    let labelled = cp.kubectl_ok(&["get", "deploy", "-l", "tier=frontend", "-o", "name"]);
    assert_eq!(labelled.trim(), "deployment.apps/web");
    assert_eq!(cp.kubectl_ok(&["get", "deploy", "-l", "tier!=frontend", "-o", "name"]).trim(), "");

    cp.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let names = cp.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}"]);
    assert_eq!(names, "nginx sidecar", "a strategic patch merges containers by name");
    cp.kubectl_ok(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"tier":null}}}"#]);
    assert_eq!(cp.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier}"]), "");
    cp.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/1/image","value":"busybox:1.36"}]"#,
    ]);
    let images = cp.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"]);
    assert_eq!(images, "nginx:1.25 busybox:1.36");
    let bad = cp.kubectl_err(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"spec":{"replicas":"many"}}"#]);
    assert!(bad.contains("cannot be handled as a Deployment"), "{bad}");
}

#[test]
fn get_watch_prints_events_and_wait_for_condition() {
    let Some((_dir, cp)) = start() else { return };
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .arg("--cache-dir")
        .arg(cp.data_dir.join("kubectl-cache"))
        .args(["get", "configmaps", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    wait_for(Duration::from_secs(30), "kubectl get -w to print an ADDED row", || {
        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\n";
        let _ = cp.kubectl_with_input(&["apply", "-f", "-"], Some(manifest));
        seen.extend(lines_rx.try_iter());
        seen.iter().any(|l| l.contains("ADDED") && l.contains("watched")).then_some(())
    });
    let _ = watch.kill();
    let _ = watch.wait();

    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec:\n  containers: [{name: c, image: busybox}]\n";
    cp.kubectl_apply(&["apply", "-f", "-"], pod);
    let defaulted = cp.kubectl_ok(&[
        "get",
        "pod",
        "p1",
        "-o",
        "jsonpath={.spec.restartPolicy} {.spec.serviceAccountName} {.status.phase}",
    ]);
    assert_eq!(defaulted, "Always default Pending");
    let table = cp.kubectl_ok(&["get", "pods"]);
    assert!(table.contains("READY") && table.contains("STATUS") && table.contains("RESTARTS"), "{table}");
    let waiter = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .arg("--cache-dir")
        .arg(cp.data_dir.join("kubectl-cache"))
        .args(["wait", "--for=condition=Ready", "pod/p1", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait");
    std::thread::sleep(Duration::from_millis(500));
    cp.kubectl_ok(&[
        "patch",
        "pod",
        "p1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    let out = waiter.wait_with_output().expect("wait output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pod/p1 condition met"));
}

#[test]
fn services_get_cluster_ips_and_node_ports() {
    let Some((_dir, cp)) = start() else { return };
    let service = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80}}]\n{extra}"
        )
    };
    cp.kubectl_apply(&["apply", "-f", "-"], &service("web", ""));
    let ip = cp.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10.") && ip != "10.96.0.1", "{ip}");
    let octets: Vec<u32> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    assert!(octets.len() == 4 && (96..=111).contains(&octets[1]), "{ip} is not in 10.96.0.0/12");

    cp.kubectl_apply(&["apply", "-f", "-"], &service("open", "  type: NodePort\n"));
    let port: i64 =
        cp.kubectl_ok(&["get", "svc", "open", "-o", "jsonpath={.spec.ports[0].nodePort}"]).parse().expect("port");
    assert!((30000..=32767).contains(&port), "{port}");
    let table = cp.kubectl_ok(&["get", "svc", "open"]);
    assert!(table.contains(&format!("80:{port}/TCP")), "{table}");

    let taken = service("copy", &format!("  clusterIP: {ip}\n"));
    let out = cp.kubectl_with_input(&["apply", "-f", "-"], Some(&taken));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("provided IP is already allocated"), "{stderr}");
    cp.kubectl_ok(&["delete", "svc", "web"]);
    cp.kubectl_apply(&["apply", "-f", "-"], &taken);
    assert_eq!(
        cp.kubectl_ok(&["get", "svc", "copy", "-o", "jsonpath={.spec.clusterIP}"]),
        ip,
        "a deleted Service frees its IP"
    );
    let relabel = cp.kubectl_ok(&["label", "svc", "copy", "tier=front"]);
    assert!(relabel.contains("labeled"));
    assert_eq!(cp.kubectl_ok(&["get", "svc", "copy", "-o", "jsonpath={.spec.clusterIP}"]), ip, "updates keep the IP");

    // Updates: an added port gets a node port, a type without node ports
    // gives them back, and a type with them hands them out again.
    let node_ports = |name: &str| cp.kubectl_ok(&["get", "svc", name, "-o", "jsonpath={.spec.ports[*].nodePort}"]);
    let add_port = r#"[{"op": "add", "path": "/spec/ports/-", "value": {"name": "tls", "port": 443}}]"#;
    let name_first = r#"[{"op": "add", "path": "/spec/ports/0/name", "value": "web"}]"#;
    cp.kubectl_ok(&["patch", "svc", "open", "--type=json", "-p", name_first]);
    cp.kubectl_ok(&["patch", "svc", "open", "--type=json", "-p", add_port]);
    let ports: Vec<i64> = node_ports("open").split_whitespace().filter_map(|p| p.parse().ok()).collect();
    assert!(ports.len() == 2 && ports[0] == port && (30000..=32767).contains(&ports[1]), "{ports:?}");
    cp.kubectl_ok(&["patch", "svc", "open", "-p", r#"{"spec": {"type": "ClusterIP"}}"#]);
    assert_eq!(node_ports("open"), "", "ClusterIP Services have no node ports");
    let reuse = service(
        "reuse",
        &format!(
            "  type: NodePort
  ports: [{{port: 80, nodePort: {port}}}]
"
        ),
    )
    .replace(
        "  ports: [{port: 80}]
",
        "",
    );
    cp.kubectl_apply(&["apply", "-f", "-"], &reuse);
    assert_eq!(node_ports("reuse"), port.to_string(), "the node port was given back");
    cp.kubectl_ok(&["patch", "svc", "copy", "-p", r#"{"spec": {"type": "NodePort"}}"#]);
    let given: i64 = node_ports("copy").parse().expect("a node port");
    assert!((30000..=32767).contains(&given) && given != port, "{given}");

    // To ExternalName and back: the cluster IP is given up, then a fresh one handed out.
    let to_name = r#"{"spec": {"type": "ExternalName", "externalName": "db.example.com"}}"#;
    cp.kubectl_ok(&["patch", "svc", "copy", "-p", to_name]);
    let addresses = "jsonpath={.spec.clusterIP}|{.spec.ports[*].nodePort}";
    assert_eq!(cp.kubectl_ok(&["get", "svc", "copy", "-o", addresses]), "|");
    cp.kubectl_apply(&["apply", "-f", "-"], &service("again", &format!("  clusterIP: {ip}\n")));
    cp.kubectl_ok(&["patch", "svc", "copy", "-p", r#"{"spec": {"type": "ClusterIP", "externalName": null}}"#]);
    let fresh = cp.kubectl_ok(&["get", "svc", "copy", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(fresh.starts_with("10.") && fresh != ip, "{fresh}");
}

#[test]
fn generators_send_protobuf_bodies() {
    let Some((_dir, cp)) = start() else { return };
    assert!(cp.kubectl_ok(&["create", "namespace", "team"]).contains("namespace/team created"));
    cp.kubectl_ok(&["create", "configmap", "settings", "-n", "team", "--from-literal=mode=fast"]);
    cp.kubectl_ok(&["create", "secret", "generic", "token", "-n", "team", "--from-literal=key=s3cret"]);
    cp.kubectl_ok(&["create", "deployment", "web", "-n", "team", "--image=nginx:1.27", "--replicas=2", "--port=80"]);
    cp.kubectl_ok(&["create", "serviceaccount", "bot", "-n", "team"]);
    cp.kubectl_ok(&["create", "role", "reader", "-n", "team", "--verb=get", "--resource=pods"]);
    cp.kubectl_ok(&["create", "rolebinding", "bot-reads", "-n", "team", "--role=reader", "--serviceaccount=team:bot"]);
    assert_eq!(cp.kubectl_ok(&["get", "cm", "settings", "-n", "team", "-o", "jsonpath={.data.mode}"]), "fast");
    assert_eq!(
        cp.kubectl_ok(&["get", "secret", "token", "-n", "team", "-o", "jsonpath={.type} {.data.key}"]),
        "Opaque czNjcmV0"
    );
    let deploy = cp.kubectl_ok(&["get", "deploy", "web", "-n", "team",
        "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"]);
    assert_eq!(deploy, "2 nginx:1.27 80");
    let binding = cp.kubectl_ok(&[
        "get",
        "rolebinding",
        "bot-reads",
        "-n",
        "team",
        "-o",
        "jsonpath={.roleRef.name} {.subjects[0].name}",
    ]);
    assert_eq!(binding, "reader bot");

    cp.kubectl_ok(&["create", "service", "clusterip", "web", "-n", "team", "--tcp=80:8080"]);
    let service = cp.kubectl_ok(&[
        "get",
        "svc",
        "web",
        "-n",
        "team",
        "-o",
        "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.selector.app}",
    ]);
    assert_eq!(service, "ClusterIP 80 8080 web");
    cp.kubectl_ok(&["create", "service", "nodeport", "open", "-n", "team", "--tcp=443:8443", "--node-port=30443"]);
    let node_port = cp.kubectl_ok(&["get", "svc", "open", "-n", "team", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    assert_eq!(node_port, "30443");
    cp.kubectl_ok(&["create", "service", "loadbalancer", "lb", "-n", "team", "--tcp=80"]);
    let lb =
        cp.kubectl_ok(&["get", "svc", "lb", "-n", "team", "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort}"]);
    assert!(lb.starts_with("LoadBalancer 3"), "{lb}");
    cp.kubectl_ok(&["create", "service", "externalname", "db", "-n", "team", "--external-name=db.example.com"]);
    let db = cp.kubectl_ok(&["get", "svc", "db", "-n", "team", "-o", "jsonpath={.spec.type} {.spec.externalName}"]);
    assert_eq!(db, "ExternalName db.example.com");
    cp.kubectl_ok(&["create", "job", "once", "-n", "team", "--image=busybox", "--", "echo", "hi"]);
    let job = cp.kubectl_ok(&["get", "job", "once", "-n", "team",
        "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].command} {.spec.template.spec.restartPolicy}"]);
    assert_eq!(job, r#"busybox ["echo","hi"] Never"#);
    cp.kubectl_ok(&[
        "create",
        "cronjob",
        "tick",
        "-n",
        "team",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    let cron = cp.kubectl_ok(&[
        "get",
        "cronjob",
        "tick",
        "-n",
        "team",
        "-o",
        "jsonpath={.spec.schedule} {.spec.jobTemplate.spec.template.spec.containers[0].command}",
    ]);
    assert_eq!(cron, r#"*/5 * * * * ["date"]"#);
    cp.kubectl_ok(&["create", "job", "now", "-n", "team", "--from=cronjob/tick"]);
    let from = cp.kubectl_ok(&[
        "get",
        "job",
        "now",
        "-n",
        "team",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].command}",
    ]);
    assert_eq!(from, r#"["date"]"#);
}

#[test]
fn auth_can_i_tokens_and_rbac() {
    if !have("kubectl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "viewer-token,viewer,u1\n").expect("token file");
    let cp = Apiserver::server_with(&dir.path().join("cp"), &["--token-auth-file", &tokens.display().to_string()]);
    assert_eq!(cp.kubectl_ok(&["auth", "can-i", "create", "deployments"]).trim(), "yes");

    let as_viewer = |args: &[&str]| cp.kubectl_with_token("viewer-token", args);
    let no = as_viewer(&["auth", "can-i", "get", "pods"]);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    let forbidden = as_viewer(&["get", "pods"]);
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        stderr.contains("Forbidden") && stderr.contains("User \"viewer\" cannot list resource \"pods\""),
        "{stderr}"
    );

    let binding = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer-view, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: viewer}]
";
    cp.kubectl_apply(&["apply", "-f", "-"], binding);
    wait_for(Duration::from_secs(10), "the rolebinding to take effect", || {
        let yes = as_viewer(&["auth", "can-i", "list", "pods", "-n", "default"]);
        (String::from_utf8_lossy(&yes.stdout).trim() == "yes").then_some(())
    });
    let listed = as_viewer(&["auth", "can-i", "--list", "-n", "default"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.lines().any(|l| l.starts_with("pods ") && l.contains("[get list watch]")), "{listed}");
    let create = as_viewer(&["auth", "can-i", "create", "pods", "-n", "default"]);
    assert_eq!(String::from_utf8_lossy(&create.stdout).trim(), "no");
    let other_ns = as_viewer(&["auth", "can-i", "list", "pods", "-n", "kube-system"]);
    assert_eq!(String::from_utf8_lossy(&other_ns.stdout).trim(), "no");

    let bad_token = cp.kubectl_with_token("wrong", &["get", "pods"]);
    assert!(String::from_utf8_lossy(&bad_token.stderr).contains("Unauthorized"));
}
