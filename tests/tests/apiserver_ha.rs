//! Two apiserver replicas over one three-member store: a write through one
//! is seen by a watch on the other, and losing a replica loses nothing.

use std::time::Duration;

use capstan_tests::kube_cluster::Apiserver;
use capstan_tests::store_cluster::Cluster;
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
