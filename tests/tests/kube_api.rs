//! The `kube` crate (the client controllers are built on) against
//! `capstan server`: CRUD, pagination, selectors, watches (including
//! recovery from 410 Gone), every patch type, finalizers and graceful
//! deletion.

use std::time::Duration;

use capstan_tests::kube_cluster::Apiserver;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": name}})).expect("cm")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

#[test]
fn crud_pagination_and_selectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Apiserver::server(&dir.path().join("cp"));
    runtime().block_on(async {
        let cms: Api<ConfigMap> = Api::namespaced(cp.client().await, "default");
        for i in 0..5 {
            let tier = if i % 2 == 0 { "even" } else { "odd" };
            cms.create(&PostParams::default(), &config_map(&format!("cm-{i}"), json!({"tier": tier})))
                .await
                .expect("create");
        }
        let got = cms.get("cm-3").await.expect("get");
        assert_eq!(got.data.as_ref().and_then(|d| d.get("k")).map(String::as_str), Some("cm-3"));
        assert!(got.metadata.uid.is_some() && got.metadata.creation_timestamp.is_some());

        let mut names = Vec::new();
        let mut params = ListParams::default().limit(2);
        loop {
            let page = cms.list(&params).await.expect("page");
            assert!(page.items.len() <= 2);
            names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        assert_eq!(names, vec!["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

        let odd = cms.list(&ListParams::default().labels("tier=odd")).await.expect("labels");
        assert_eq!(odd.items.len(), 2);
        let one = cms.list(&ListParams::default().fields("metadata.name=cm-4")).await.expect("fields");
        assert_eq!(one.items.len(), 1);
        let bad = cms.list(&ListParams::default().fields("data.k=x")).await.expect_err("unsupported field");
        assert!(bad.to_string().contains("field label not supported"), "{bad}");

        let mut stale = got.clone();
        stale.data = Some([("k".to_string(), "new".to_string())].into());
        cms.replace("cm-3", &PostParams::default(), &stale).await.expect("replace");
        let conflict = cms.replace("cm-3", &PostParams::default(), &stale).await.expect_err("stale");
        assert!(matches!(conflict, kube::Error::Api(ref e) if e.code == 409), "{conflict}");

        cms.delete("cm-0", &DeleteParams::default()).await.expect("delete");
        let gone = cms.get("cm-0").await.expect_err("gone");
        assert!(matches!(gone, kube::Error::Api(ref e) if e.code == 404));
    });
}

#[test]
fn every_patch_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Apiserver::server(&dir.path().join("cp"));
    runtime().block_on(async {
        let deployments: Api<Deployment> = Api::namespaced(cp.client().await, "default");
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}]}]}}}
        }))
        .expect("deployment");
        deployments.create(&PostParams::default(), &deployment).await.expect("create");

        let strategic = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}});
        let patched = deployments.patch("web", &PatchParams::default(), &Patch::Strategic(&strategic)).await.expect("smp");
        let env = &patched.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod spec").containers[0].env;
        assert_eq!(env.as_ref().map(Vec::len), Some(2), "env merged by name");

        let merge = json!({"spec": {"replicas": 3}});
        let patched = deployments.patch("web", &PatchParams::default(), &Patch::Merge(&merge)).await.expect("merge");
        assert_eq!(patched.spec.as_ref().and_then(|s| s.replicas), Some(3));
        assert_eq!(patched.metadata.generation, Some(3));

        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"}
        ]))
        .expect("ops");
        let patched = deployments.patch("web", &PatchParams::default(), &Patch::<()>::Json(ops)).await.expect("json");
        let image = patched.spec.and_then(|s| s.template.spec).map(|s| s.containers[0].image.clone());
        assert_eq!(image, Some(Some("nginx:1.27".to_string())));

        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let ssa = PatchParams::apply("tester");
        let created = deployments.patch("api", &ssa, &Patch::Apply(&applied)).await.expect("apply creates");
        let managers: Vec<_> = created.metadata.managed_fields.unwrap_or_default().into_iter().map(|m| m.manager).collect();
        assert!(managers.contains(&Some("tester".to_string())), "{managers:?}");

        let status = json!({"status": {"replicas": 2, "readyReplicas": 2}});
        let with_status = deployments.patch_status("api", &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
        assert_eq!(with_status.status.and_then(|s| s.ready_replicas), Some(2));
        let spec_via_status = json!({"spec": {"replicas": 9}});
        let ignored = deployments.patch_status("api", &PatchParams::default(), &Patch::Merge(&spec_via_status)).await.expect("status");
        assert_eq!(ignored.spec.and_then(|s| s.replicas), Some(2), "spec cannot change through /status");
    });
}

#[test]
fn watches_and_recovery_from_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Apiserver::server_with(&dir.path().join("cp"), &["--default-watch-cache-size", "20"]);
    runtime().block_on(async {
        let cms: Api<ConfigMap> = Api::namespaced(cp.client().await, "default");
        let first = cms.create(&PostParams::default(), &config_map("first", json!({}))).await.expect("create");
        let start_rv = first.metadata.resource_version.clone().expect("rv");

        let mut raw = cms.watch(&WatchParams::default(), &start_rv).await.expect("watch").boxed();
        cms.create(&PostParams::default(), &config_map("second", json!({}))).await.expect("create");
        match tokio::time::timeout(Duration::from_secs(10), raw.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(cm)))) => assert_eq!(cm.metadata.name.as_deref(), Some("second")),
            other => panic!("expected ADDED second, got {other:?}"),
        }

        // Churn past the cache window, then watch from the first version.
        for i in 0..40 {
            cms.create(&PostParams::default(), &config_map(&format!("churn-{i}"), json!({"churn": "yes"})))
                .await
                .expect("churn");
        }
        let mut old = cms.watch(&WatchParams::default(), &start_rv).await.expect("watch").boxed();
        match tokio::time::timeout(Duration::from_secs(10), old.try_next()).await {
            Ok(Ok(Some(WatchEvent::Error(e)))) => assert_eq!(e.code, 410, "{e:?}"),
            other => panic!("expected a 410 ERROR event, got {other:?}"),
        }

        // A watcher whose watch keeps ending re-watches from its last
        // version; after churn that is gone, and it must re-list to go on.
        let config = watcher::Config::default().labels("quiet=yes").timeout(1);
        let mut events = watcher(cms.clone(), config).boxed();
        let mut inits = 0;
        let mut churned = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let event = tokio::time::timeout_at(deadline, events.try_next()).await;
            match event {
                Ok(Ok(Some(watcher::Event::InitDone))) => {
                    inits += 1;
                    if !churned {
                        churned = true;
                        for i in 0..40 {
                            let name = format!("noise-{i}");
                            cms.create(&PostParams::default(), &config_map(&name, json!({}))).await.expect("noise");
                        }
                    } else {
                        let quiet = config_map("quiet", json!({"quiet": "yes"}));
                        cms.create(&PostParams::default(), &quiet).await.expect("quiet");
                    }
                }
                Ok(Ok(Some(watcher::Event::Apply(cm)))) if cm.metadata.name.as_deref() == Some("quiet") => break,
                Ok(Ok(Some(_))) => {}
                Ok(Err(_)) => {}
                Ok(Ok(None)) => panic!("the watcher stream ended"),
                Err(_) => panic!("timed out: {inits} initial lists"),
            }
        }
        assert!(inits >= 2, "the watcher re-listed after 410 ({inits} initial lists)");
    });
}

#[test]
fn finalizers_and_graceful_deletion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Apiserver::server(&dir.path().join("cp"));
    runtime().block_on(async {
        let client = cp.client().await;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let mut held = config_map("held", json!({}));
        held.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
        cms.create(&PostParams::default(), &held).await.expect("create");
        let deleting = cms.delete("held", &DeleteParams::default()).await.expect("delete");
        let marked = deleting.left().expect("still there");
        assert!(marked.metadata.deletion_timestamp.is_some());
        assert!(cms.get("held").await.expect("still readable").metadata.deletion_timestamp.is_some());
        let release = json!({"metadata": {"finalizers": null}});
        cms.patch("held", &PatchParams::default(), &Patch::Merge(&release)).await.expect("release");
        assert!(cms.get_opt("held").await.expect("get").is_none(), "gone once the last finalizer is removed");

        let pods: Api<Pod> = Api::namespaced(client, "default");
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "bound"},
            "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "c", "image": "busybox"}]}}))
        .expect("pod");
        pods.create(&PostParams::default(), &pod).await.expect("create pod");
        let graceful = pods.delete("bound", &DeleteParams::default()).await.expect("delete").left().expect("graceful");
        assert_eq!(graceful.metadata.deletion_grace_period_seconds, Some(30));
        let now = pods.delete("bound", &DeleteParams::default().grace_period(0)).await.expect("force");
        assert!(now.is_right(), "grace 0 deletes");
        assert!(pods.get_opt("bound").await.expect("get").is_none());

        let unbound: Pod = serde_json::from_value(json!({"metadata": {"name": "loose"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
        .expect("pod");
        pods.create(&PostParams::default(), &unbound).await.expect("create");
        assert!(pods.delete("loose", &DeleteParams::default()).await.expect("delete").is_right());

        // Binding puts a pod on a node once; eviction deletes it.
        pods.create(&PostParams::default(), &unbound).await.expect("create again");
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "loose"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "node-2"}});
        let bind = |body: serde_json::Value| {
            http::Request::post("/api/v1/namespaces/default/pods/loose/binding")
                .header("content-type", "application/json")
                .body(body.to_string().into_bytes())
                .expect("request")
        };
        cp.client().await.request_text(bind(binding.clone())).await.expect("bound");
        let bound = pods.get("loose").await.expect("get");
        assert_eq!(bound.spec.and_then(|s| s.node_name).as_deref(), Some("node-2"));
        match cp.client().await.request_text(bind(binding)).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
            other => panic!("a second binding must conflict: {other:?}"),
        }
        pods.evict("loose", &Default::default()).await.expect("evicted");
        let evicted = pods.get("loose").await.expect("graceful eviction of a bound pod");
        assert!(evicted.metadata.deletion_timestamp.is_some());
    });
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Apiserver::server(&dir.path().join("cp"));
    runtime().block_on(async {
        let client = cp.client().await;
        let send = |method: &str, path: &str, content_type: &str, body: Vec<u8>| {
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", content_type)
                .body(body)
                .expect("request");
            let client = client.clone();
            async move {
                match client.request_text(request).await {
                    Ok(text) => (200, text),
                    Err(kube::Error::Api(status)) => (status.code, status.message),
                    Err(other) => panic!("{other}"),
                }
            }
        };
        let cms = "/api/v1/namespaces/default/configmaps";
        let (code, message) = send("POST", cms, "application/json", b"{\"metadata\": ".to_vec()).await;
        assert_eq!(code, 400, "{message}");
        assert!(message.contains("not valid JSON"), "{message}");
        let (code, message) = send("POST", cms, "application/yaml", b"metadata: [unclosed".to_vec()).await;
        assert_eq!(code, 400, "{message}");
        let (code, _) = send("POST", cms, "text/csv", b"a,b".to_vec()).await;
        assert_eq!(code, 415);
        let big = json!({"metadata": {"name": "big"}, "data": {"blob": "x".repeat(4 * 1024 * 1024)}});
        let (code, message) = send("POST", cms, "application/json", big.to_string().into_bytes()).await;
        assert_eq!(code, 413, "{message}");
        let wrong_type = json!({"metadata": {"name": "typed"}, "data": {"k": 3}});
        let (code, message) = send("POST", cms, "application/json", wrong_type.to_string().into_bytes()).await;
        assert_eq!(code, 400, "{message}");
        let (code, message) = send("GET", "/api/v1/widgets", "application/json", Vec::new()).await;
        assert_eq!(code, 404, "{message}");
        let bad_name = json!({"metadata": {"name": "Bad_Name"}});
        let (code, message) = send("POST", cms, "application/json", bad_name.to_string().into_bytes()).await;
        assert_eq!(code, 422, "{message}");
        let (code, _) = send("PATCH", &format!("{cms}/nothing"), "text/plain", b"{}".to_vec()).await;
        assert_eq!(code, 415);

        let listed: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        assert!(listed.list(&ListParams::default()).await.expect("list").items.is_empty(), "nothing was written");

        // Anyone without credentials may read the version, and nothing else.
        let mut config = kube::Config::new(cp.url().parse().expect("url"));
        config.accept_invalid_certs = true;
        let anonymous = kube::Client::try_from(config).expect("anonymous client");
        let get = |path: &str| http::Request::get(path.to_string()).body(Vec::new()).expect("request");
        let version = anonymous.request_text(get("/version")).await.expect("version is public");
        assert!(version.contains("\"minor\": \"33\"") || version.contains("\"minor\":\"33\""), "{version}");
        match anonymous.request_text(get("/api/v1/namespaces")).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
            other => panic!("expected 401, got {other:?}"),
        }
    });
}
