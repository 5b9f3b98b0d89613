//! Kubernetes' defaulting (pkg/apis/*/v1/defaults.go) for the served kinds:
//! what a stored object holds when the client left a field out.

use serde_json::{Map, Value, json};

use crate::object::ensure_object;

pub fn apply_defaults(group: &str, resource: &str, object: &mut Value) {
    match (group, resource) {
        ("", "pods") => {
            pod_spec(&mut object["spec"]);
            requests_from_limits(&mut object["spec"]);
        }
        ("", "services") => service_spec(&mut object["spec"]),
        ("", "namespaces") => {
            let spec = ensure_object(&mut object["spec"]);
            spec.entry("finalizers").or_insert_with(|| json!(["kubernetes"]));
        }
        ("", "secrets") => set(ensure_object(object), "type", json!("Opaque")),
        ("apps", "deployments") => {
            let spec = ensure_object(&mut object["spec"]);
            set(spec, "replicas", json!(1));
            set(spec, "revisionHistoryLimit", json!(10));
            set(spec, "progressDeadlineSeconds", json!(600));
            let strategy = ensure_object(spec.entry("strategy").or_insert_with(|| json!({})));
            set(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = ensure_object(strategy.entry("rollingUpdate").or_insert_with(|| json!({})));
                set(rolling, "maxUnavailable", json!("25%"));
                set(rolling, "maxSurge", json!("25%"));
            }
            template(&mut object["spec"]);
        }
        ("apps", "replicasets") => {
            set(ensure_object(&mut object["spec"]), "replicas", json!(1));
            template(&mut object["spec"]);
        }
        ("apps", "daemonsets") => {
            let spec = ensure_object(&mut object["spec"]);
            set(spec, "revisionHistoryLimit", json!(10));
            let strategy = ensure_object(spec.entry("updateStrategy").or_insert_with(|| json!({})));
            set(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = ensure_object(strategy.entry("rollingUpdate").or_insert_with(|| json!({})));
                set(rolling, "maxUnavailable", json!(1));
                set(rolling, "maxSurge", json!(0));
            }
            template(&mut object["spec"]);
        }
        ("apps", "statefulsets") => {
            let spec = ensure_object(&mut object["spec"]);
            set(spec, "replicas", json!(1));
            set(spec, "podManagementPolicy", json!("OrderedReady"));
            set(spec, "revisionHistoryLimit", json!(10));
            set(spec, "persistentVolumeClaimRetentionPolicy", json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
            let strategy = ensure_object(spec.entry("updateStrategy").or_insert_with(|| json!({})));
            set(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                set(ensure_object(strategy.entry("rollingUpdate").or_insert_with(|| json!({}))), "partition", json!(0));
            }
            template(&mut object["spec"]);
        }
        ("batch", "jobs") => job_spec(&mut object["spec"]),
        ("batch", "cronjobs") => {
            let spec = ensure_object(&mut object["spec"]);
            set(spec, "concurrencyPolicy", json!("Allow"));
            set(spec, "suspend", json!(false));
            set(spec, "successfulJobsHistoryLimit", json!(3));
            set(spec, "failedJobsHistoryLimit", json!(1));
            job_spec(&mut object["spec"]["jobTemplate"]["spec"]);
        }
        ("discovery.k8s.io", "endpointslices") => {
            for port in list_mut(object, "ports") {
                set(ensure_object(port), "protocol", json!("TCP"));
            }
        }
        _ => {}
    }
}

/// Sets a field the client left out; as in Go, an empty string is unset.
fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(|v| v.is_null() || v == "") {
        map.insert(key.to_string(), value);
    }
}

fn list_mut<'a>(value: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    value.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten()
}

fn template(spec: &mut Value) {
    if spec.get("template").is_some_and(Value::is_object) {
        pod_spec(&mut spec["template"]["spec"]);
    }
}

fn job_spec(spec: &mut Value) {
    let map = ensure_object(spec);
    if map.get("completions").is_none_or(Value::is_null) && map.get("parallelism").is_none_or(Value::is_null) {
        map.insert("completions".into(), json!(1));
        map.insert("parallelism".into(), json!(1));
    }
    set(map, "parallelism", json!(1));
    set(map, "backoffLimit", json!(6));
    set(map, "completionMode", json!("NonIndexed"));
    set(map, "suspend", json!(false));
    set(map, "podReplacementPolicy", json!("TerminatingOrFailed"));
    template(spec);
}

fn pod_spec(spec: &mut Value) {
    let map = ensure_object(spec);
    set(map, "restartPolicy", json!("Always"));
    set(map, "dnsPolicy", json!("ClusterFirst"));
    set(map, "terminationGracePeriodSeconds", json!(30));
    set(map, "schedulerName", json!("default-scheduler"));
    set(map, "securityContext", json!({}));
    set(map, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        for container in list_mut(spec, list) {
            container_defaults(container);
        }
    }
    for volume in list_mut(spec, "volumes") {
        for source in ["secret", "configMap"] {
            if let Some(source) = volume.get_mut(source).and_then(Value::as_object_mut) {
                set(source, "defaultMode", json!(420));
            }
        }
    }
}

fn container_defaults(container: &mut Value) {
    let image = container["image"].as_str().unwrap_or("").to_string();
    let map = ensure_object(container);
    set(map, "terminationMessagePath", json!("/dev/termination-log"));
    set(map, "terminationMessagePolicy", json!("File"));
    set(map, "imagePullPolicy", json!(if image_is_latest(&image) { "Always" } else { "IfNotPresent" }));
    set(map, "resources", json!({}));
    for port in list_mut(container, "ports") {
        set(ensure_object(port), "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe).and_then(Value::as_object_mut) {
            set(probe, "timeoutSeconds", json!(1));
            set(probe, "periodSeconds", json!(10));
            set(probe, "successThreshold", json!(1));
            set(probe, "failureThreshold", json!(3));
            if let Some(http) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
                set(http, "scheme", json!("HTTP"));
                set(http, "path", json!("/"));
            }
        }
    }
}

/// A pod's container that limits a resource without requesting it
/// requests its limit (Kubernetes defaults Pods so; templates keep theirs).
fn requests_from_limits(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        for container in list_mut(spec, list) {
            let Some(limits) = container["resources"]["limits"].as_object().cloned() else { continue };
            let resources = ensure_object(&mut container["resources"]);
            let requests = ensure_object(resources.entry("requests").or_insert_with(|| json!({})));
            for (name, quantity) in limits {
                requests.entry(name).or_insert(quantity);
            }
        }
    }
}

/// An image without a tag, or tagged `latest`, is pulled every time.
fn image_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn service_spec(spec: &mut Value) {
    let map = ensure_object(spec);
    set(map, "type", json!("ClusterIP"));
    set(map, "sessionAffinity", json!("None"));
    set(map, "internalTrafficPolicy", json!("Cluster"));
    if matches!(map["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        set(map, "externalTrafficPolicy", json!("Cluster"));
    }
    if map["type"] != "ExternalName" {
        set(map, "ipFamilyPolicy", json!("SingleStack"));
        set(map, "ipFamilies", json!(["IPv4"]));
    }
    for port in list_mut(spec, "ports") {
        let number = port["port"].clone();
        let map = ensure_object(port);
        set(map, "protocol", json!("TCP"));
        set(map, "targetPort", number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_kubernetes_defaults() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "registry:5000/app:1.2"}]}});
        apply_defaults("", "pods", &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn pods_request_what_they_limit_unless_they_say_otherwise() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m"}}}]}});
        apply_defaults("", "pods", &mut pod);
        assert_eq!(pod["spec"]["containers"][0]["resources"]["requests"], json!({"cpu": "100m", "memory": "1Gi"}));
    }

    #[test]
    fn deployments_get_a_rolling_update_strategy() {
        let mut deploy = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        apply_defaults("apps", "deployments", &mut deploy);
        assert_eq!(deploy["spec"]["replicas"], 1);
        assert_eq!(
            deploy["spec"]["strategy"],
            json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(deploy["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply_defaults("apps", "deployments", &mut recreate);
        assert!(recreate["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn services_jobs_and_namespaces() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply_defaults("", "services", &mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        let mut job = json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}});
        apply_defaults("batch", "jobs", &mut job);
        assert_eq!((job["spec"]["completions"].clone(), job["spec"]["backoffLimit"].clone()), (json!(1), json!(6)));
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        let mut cron = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}}});
        apply_defaults("batch", "cronjobs", &mut cron);
        assert_eq!(cron["spec"]["jobTemplate"]["spec"]["backoffLimit"], 6);
        let mut ns = json!({"metadata": {"name": "a"}});
        apply_defaults("", "namespaces", &mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    }
}
