//! Several `capstan server` processes as one control plane: joining with
//! the token (and refusing a wrong one), replacing a server, leaving, and
//! static bootstrap with --initial-cluster.

use std::time::Duration;

use capstan_tests::etcdctl;
use capstan_tests::kube_cluster::{Apiserver, ServerSpec};
use capstan_tests::{have, wait_for};

/// `name:is_learner` of every started member, sorted.
fn members(endpoint: &str) -> Vec<String> {
    let out = etcdctl::run(endpoint, &["member", "list"], None).expect_ok("member list");
    let mut members: Vec<String> = out
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(", ").collect();
            (fields.len() == 6 && fields[1] == "started").then(|| format!("{}:{}", fields[2], fields[5]))
        })
        .collect();
    members.sort();
    members
}

fn wait_members(endpoint: &str, expected: &[&str]) {
    wait_for(Duration::from_secs(60), &format!("members {expected:?}"), || {
        (members(endpoint) == expected).then_some(())
    });
}

fn token(first: &ServerSpec) -> String {
    std::fs::read_to_string(first.dir.join("token")).expect("the first server writes its token").trim().to_string()
}

/// The first server and two that join through it.
fn three_servers(root: &std::path::Path) -> (Vec<ServerSpec>, Vec<Apiserver>, String) {
    let specs: Vec<ServerSpec> = ["s1", "s2", "s3"].iter().map(|n| ServerSpec::new(root, n)).collect();
    let first = Apiserver::member(&specs[0], &["--cluster-init"]);
    let token = token(&specs[0]);
    let mut servers = vec![first];
    for spec in &specs[1..] {
        servers.push(Apiserver::member(spec, &["--server", &specs[0].url(), "--token", &token]));
    }
    wait_members(&specs[0].store_endpoint(), &["s1:false", "s2:false", "s3:false"]);
    (specs, servers, token)
}

#[test]
fn servers_join_with_the_token_and_a_wrong_token_is_refused() {
    if !have("etcdctl") || !have("kubectl") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let first_spec = ServerSpec::new(root.path(), "s1");
    let first = Apiserver::member(&first_spec, &["--cluster-init"]);
    let token = token(&first_spec);
    let (hash_part, secret) = token.split_once("::server:").expect("K10<hash>::server:<secret>");
    assert!(hash_part.starts_with("K10") && hash_part.len() == 67, "{token}");

    let joiner = ServerSpec::new(root.path(), "s2");
    let other_ca = format!("K10{}::server:{secret}", "0".repeat(64));
    let err = joiner.start_expecting_failure(&["--server", &first_spec.url(), "--token", &other_ca]);
    assert!(err.contains("does not match the token"), "{err}");
    let wrong_secret = format!("{hash_part}::server:not-the-secret");
    let err = joiner.start_expecting_failure(&["--server", &first_spec.url(), "--token", &wrong_secret]);
    assert!(err.contains("refused the token"), "{err}");
    let err = joiner.start_expecting_failure(&["--server", &first_spec.url(), "--token", secret]);
    assert!(err.contains("full token"), "{err}");
    assert_eq!(members(&first_spec.store_endpoint()), ["s1:false"], "a refused join adds no member");

    let second = Apiserver::member(&joiner, &["--server", &first_spec.url(), "--token", &token]);
    let third_spec = ServerSpec::new(root.path(), "s3");
    let third = Apiserver::member(&third_spec, &["--server", &joiner.url(), "--token", &token]);
    wait_members(&first_spec.store_endpoint(), &["s1:false", "s2:false", "s3:false"]);

    // One cluster: written through one server, read through the others; one CA.
    second.kubectl_ok(&["create", "configmap", "joined", "--from-literal=k=v"]);
    for server in [&first, &third] {
        let value = server.kubectl_ok(&["get", "configmap", "joined", "-o", "jsonpath={.data.k}"]);
        assert_eq!(value, "v");
    }
    // The `kubernetes` Service's endpoints name every server.
    let mut wanted: Vec<String> = [&first_spec, &joiner, &third_spec].iter().map(|s| s.port.to_string()).collect();
    wanted.sort();
    wait_for(Duration::from_secs(30), "the kubernetes endpoints to name the three servers", || {
        let out = third.kubectl(&["get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[*].ports[*].port}"]);
        let mut ports: Vec<String> =
            String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
        ports.sort();
        (ports == wanted).then_some(())
    });
    assert_eq!(first.kubectl_ok(&["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]), "10.96.0.1");
    let ca = |s: &ServerSpec| std::fs::read(s.dir.join("pki").join("ca.crt")).expect("ca.crt");
    assert_eq!(ca(&first_spec), ca(&third_spec));
    assert_eq!(token, std::fs::read_to_string(third_spec.dir.join("token")).expect("token").trim());
}

#[test]
fn a_replaced_server_takes_its_place_and_a_leaving_one_shrinks_the_cluster() {
    if !have("etcdctl") || !have("kubectl") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let (specs, mut servers, token) = three_servers(root.path());
    servers[0].kubectl_ok(&["create", "configmap", "before", "--from-literal=k=v"]);

    // s3's machine is lost: a new s3, with an empty data dir, joins in its place.
    servers[2].kill();
    std::fs::remove_dir_all(&specs[2].dir).expect("wipe s3");
    servers[2] = Apiserver::member(&specs[2], &["--server", &specs[1].url(), "--token", &token]);
    wait_members(&specs[0].store_endpoint(), &["s1:false", "s2:false", "s3:false"]);
    let value = servers[2].kubectl_ok(&["get", "configmap", "before", "-o", "jsonpath={.data.k}"]);
    assert_eq!(value, "v");

    // s2 leaves for good.
    servers[1].stop();
    servers[1] = Apiserver::member(&specs[1], &["--leave"]);
    servers[1].stop();
    wait_members(&specs[0].store_endpoint(), &["s1:false", "s3:false"]);
    let err = specs[1].start_expecting_failure(&[]);
    assert!(err.contains("left the cluster"), "{err}");
    servers[0].kubectl_ok(&["create", "configmap", "after", "--from-literal=k=v"]);
    let value = servers[2].kubectl_ok(&["get", "configmap", "after", "-o", "jsonpath={.data.k}"]);
    assert_eq!(value, "v");
}

#[test]
fn static_bootstrap_with_an_initial_cluster_still_works() {
    if !have("etcdctl") || !have("kubectl") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let specs: Vec<ServerSpec> = ["s1", "s2", "s3"].iter().map(|n| ServerSpec::new(root.path(), n)).collect();
    let initial: Vec<String> = specs.iter().map(|s| format!("{}=https://127.0.0.1:{}", s.name, s.peer_port)).collect();
    let initial = initial.join(",");
    // Peers over https trust one CA: the servers share a pki dir.
    let pki = root.path().join("pki");
    let pki = pki.display().to_string();
    let flags = ["--initial-cluster", &initial, "--pki-dir", &pki];
    // The servers wait for a quorum before they are ready: start them together.
    let servers: Vec<Apiserver> = std::thread::scope(|scope| {
        let started: Vec<_> = specs.iter().map(|spec| scope.spawn(|| Apiserver::member(spec, &flags))).collect();
        started.into_iter().map(|h| h.join().expect("a server started")).collect()
    });
    wait_members(&specs[0].store_endpoint(), &["s1:false", "s2:false", "s3:false"]);
    servers[0].kubectl_ok(&["create", "configmap", "static", "--from-literal=k=v"]);
    let value = servers[2].kubectl_ok(&["get", "configmap", "static", "-o", "jsonpath={.data.k}"]);
    assert_eq!(value, "v");
}
