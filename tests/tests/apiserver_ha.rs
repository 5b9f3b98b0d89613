//! Two apiserver replicas over one three-member store: a write through one
//! is seen by a watch on the other, and losing a replica loses nothing.
//! Replicas and servers reach a store that serves clients over TLS.

use std::time::Duration;

use capstan_tests::kube_cluster::Apiserver;
use capstan_tests::store_cluster::Cluster;
use capstan_tests::tls_cluster::{ADMIN, TlsCluster};
use capstan_tests::{capstan_bin, have};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::json;

#[test]
fn replicas_share_one_store() {
    let store = Cluster::start(3, &[]);
    store.wait_leader();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Apiserver::replica(&dir.path().join("a"), &store.endpoints(), &dir.path().join("pki"));
    let b = Apiserver::replica(&dir.path().join("b"), &store.endpoints(), &dir.path().join("pki"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let via_a: Api<ConfigMap> = Api::namespaced(a.client().await, "default");
        let via_b: Api<ConfigMap> = Api::namespaced(b.client().await, "default");
        let listed = via_b.list(&Default::default()).await.expect("list via b");
        let rv = listed.metadata.resource_version.expect("list rv");
        let mut events = via_b.watch(&WatchParams::default(), &rv).await.expect("watch via b").boxed();

        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "shared"}, "data": {"k": "v"}})).expect("cm");
        via_a.create(&PostParams::default(), &cm).await.expect("create via a");
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(seen)))) => assert_eq!(seen.metadata.name.as_deref(), Some("shared")),
            other => panic!("b's watch did not see a's write: {other:?}"),
        }

        a.kill();
        let cm2: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "after"}})).expect("cm");
        via_b.create(&PostParams::default(), &cm2).await.expect("b keeps serving");
        let names: Vec<_> = via_b
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        assert_eq!(names, vec!["after", "shared"]);
    });
}

#[test]
fn replica_over_a_store_that_requires_client_certificates() {
    let store = TlsCluster::start(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = &store.certs;
    let (ca, cert, key) =
        (certs.join("ca.crt"), certs.join(format!("{ADMIN}.crt")), certs.join(format!("{ADMIN}.key")));

    // https:// without the CA to check the store's certificate against: refused at start.
    let refused = std::process::Command::new(capstan_bin())
        .args(["apiserver", "--store-endpoints", &store.endpoints(), "--secure-port", "0", "--data-dir"])
        .arg(dir.path().join("no-ca"))
        .output()
        .expect("run capstan apiserver");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("--store-cafile"), "{said}");

    let tls = [
        "--store-cafile",
        ca.to_str().expect("path"),
        "--store-certfile",
        cert.to_str().expect("path"),
        "--store-keyfile",
        key.to_str().expect("path"),
    ];
    if !have("kubectl") {
        return;
    }
    let api = Apiserver::replica_with(&dir.path().join("a"), &store.endpoints(), &dir.path().join("pki"), &tls);
    api.kubectl_ok(&["create", "configmap", "over-tls", "--from-literal=k=v"]);
    let value = api.kubectl_ok(&["get", "configmap", "over-tls", "-o", "jsonpath={.data.k}"]);
    assert_eq!(value, "v");
    let keys = store.etcdctl(&store.endpoints(), &["get", "--prefix", "--keys-only", "/registry/configmaps/default/"]);
    assert!(keys.expect_ok("get keys").contains("/registry/configmaps/default/over-tls"));
}

#[test]
fn server_with_its_store_over_tls() {
    if !have("kubectl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::server_with_store_scheme(dir.path(), "https", &[]);
    server.kubectl_ok(&["create", "configmap", "kept", "--from-literal=k=v"]);
    let value = server.kubectl_ok(&["get", "configmap", "kept", "-o", "jsonpath={.data.k}"]);
    assert_eq!(value, "v");
    let tls = dir.path().join("store/client-tls");
    assert!(tls.join("member.crt").exists() && tls.join("member.key").exists(), "the store's client certificate");
}
