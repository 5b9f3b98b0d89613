//! Validation with Kubernetes' field paths and messages, so kubectl prints
//! `The Deployment "web" is invalid: spec.selector: Required value` as it
//! would against Kubernetes. Covers names and metadata for every kind, and
//! the rules of pods, workloads, jobs, services, config data and namespaces.

use serde_json::Value;

use crate::selectors::LabelSelector;

#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

fn required(field: &str) -> FieldError {
    FieldError { reason: "FieldValueRequired", field: field.to_string(), message: "Required value".to_string() }
}

fn invalid(field: &str, value: &Value, why: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.to_string(),
        message: format!("Invalid value: {value}: {why}"),
    }
}

fn unsupported(field: &str, value: &str, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    FieldError {
        reason: "FieldValueNotSupported",
        field: field.to_string(),
        message: format!("Unsupported value: \"{value}\": supported values: {}", list.join(", ")),
    }
}

fn immutable(field: &str, value: &Value) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.to_string(),
        message: format!("Invalid value: {value}: field is immutable"),
    }
}

const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// The name rule of a resource's metadata.name.
pub fn validate_name(group: &str, resource: &str, name: &str, field: &str) -> Vec<FieldError> {
    let value = Value::String(name.to_string());
    match (group, resource) {
        ("", "namespaces" | "services") => {
            if is_dns_label(name) {
                Vec::new()
            } else {
                vec![invalid(field, &value, LABEL_MESSAGE)]
            }
        }
        // RBAC names are path segments: anything but '/', '%', '.' and '..'.
        ("rbac.authorization.k8s.io", _) => {
            if name == "." || name == ".." {
                vec![invalid(field, &value, &format!("may not be '{name}'"))]
            } else if let Some(c) = name.chars().find(|c| matches!(c, '/' | '%')) {
                vec![invalid(field, &value, &format!("may not contain '{c}'"))]
            } else {
                Vec::new()
            }
        }
        _ => {
            if is_dns_subdomain(name) {
                Vec::new()
            } else {
                vec![invalid(field, &value, SUBDOMAIN_MESSAGE)]
            }
        }
    }
}

/// Kubernetes' ValidateXxx (old = None) or ValidateXxxUpdate.
pub fn validate(group: &str, resource: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = metadata(group, resource, object);
    let spec = &object["spec"];
    match (group, resource) {
        ("", "pods") => pod_spec(spec, "spec", &mut errors),
        ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets") => workload(spec, &mut errors),
        ("batch", "jobs") => job(spec, "spec", &mut errors),
        ("batch", "cronjobs") => {
            match spec["schedule"].as_str() {
                None | Some("") => errors.push(required("spec.schedule")),
                Some(schedule) if !valid_schedule(schedule) => {
                    errors.push(invalid("spec.schedule", &spec["schedule"], "unparseable cron expression"));
                }
                Some(_) => {}
            }
            job(&spec["jobTemplate"]["spec"], "spec.jobTemplate.spec", &mut errors);
        }
        ("", "services") => service(spec, &mut errors),
        ("", "configmaps" | "secrets") => config_keys(object, &mut errors),
        _ => {}
    }
    if let Some(old) = old {
        updates(group, resource, object, old, &mut errors);
    }
    errors
}

fn metadata(group: &str, resource: &str, object: &Value) -> Vec<FieldError> {
    let meta = &object["metadata"];
    let mut errors = Vec::new();
    match meta["name"].as_str() {
        Some(name) if !name.is_empty() => errors.extend(validate_name(group, resource, name, "metadata.name")),
        _ if meta["generateName"].as_str().is_some_and(|g| !g.is_empty()) => {}
        _ => errors.push(FieldError {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        }),
    }
    for part in ["labels", "annotations"] {
        for (key, value) in meta[part].as_object().into_iter().flatten() {
            let field = format!("metadata.{part}");
            if !valid_qualified_name(key) {
                errors.push(invalid(&field, &Value::String(key.clone()), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
            }
            if part == "labels" && !valid_label_value(value.as_str().unwrap_or("")) {
                errors.push(invalid(&field, value, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
        }
    }
    errors
}

fn valid_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= 63 && is_name_part(value))
}

fn is_name_part(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `[prefix/]name`: a DNS subdomain prefix and a name part of at most 63.
fn valid_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns_subdomain) && name.len() <= 63 && is_name_part(name)
}

fn pod_spec(spec: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errors.push(required(&format!("{path}.containers")));
    }
    let mut names: Vec<&str> = Vec::new();
    let volumes: Vec<&str> =
        spec["volumes"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    for list in ["initContainers", "containers"] {
        for (i, container) in spec[list].as_array().into_iter().flatten().enumerate() {
            let here = format!("{path}.{list}[{i}]");
            match container["name"].as_str() {
                None | Some("") => errors.push(required(&format!("{here}.name"))),
                Some(name) if names.contains(&name) => errors.push(FieldError {
                    reason: "FieldValueDuplicate",
                    field: format!("{here}.name"),
                    message: format!("Duplicate value: \"{name}\""),
                }),
                Some(name) if !is_dns_label(name) => {
                    errors.push(invalid(&format!("{here}.name"), &container["name"], LABEL_MESSAGE));
                }
                Some(name) => names.push(name),
            }
            if container["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
                errors.push(required(&format!("{here}.image")));
            }
            for (j, port) in container["ports"].as_array().into_iter().flatten().enumerate() {
                let number = port["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&number) {
                    errors.push(invalid(
                        &format!("{here}.ports[{j}].containerPort"),
                        &port["containerPort"],
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if let Some(protocol) = port["protocol"].as_str()
                    && !matches!(protocol, "TCP" | "UDP" | "SCTP")
                {
                    errors.push(unsupported(&format!("{here}.ports[{j}].protocol"), protocol, &["SCTP", "TCP", "UDP"]));
                }
            }
            for (j, mount) in container["volumeMounts"].as_array().into_iter().flatten().enumerate() {
                let name = mount["name"].as_str().unwrap_or("");
                if !volumes.contains(&name) {
                    errors.push(FieldError {
                        reason: "FieldValueNotFound",
                        field: format!("{here}.volumeMounts[{j}].name"),
                        message: format!("Not found: \"{name}\""),
                    });
                }
            }
        }
    }
    if let Some(policy) = spec["restartPolicy"].as_str()
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        errors.push(unsupported(&format!("{path}.restartPolicy"), policy, &["Always", "Never", "OnFailure"]));
    }
    if let Some(policy) = spec["dnsPolicy"].as_str()
        && !matches!(policy, "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None")
    {
        errors.push(unsupported(
            &format!("{path}.dnsPolicy"),
            policy,
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        ));
    }
}

fn workload(spec: &Value, errors: &mut Vec<FieldError>) {
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        errors.push(invalid("spec.replicas", &spec["replicas"], "must be greater than or equal to 0"));
    }
    let selector = &spec["selector"];
    if !selector.is_object() || selector.as_object().is_some_and(|s| s.is_empty()) {
        errors.push(required("spec.selector"));
    } else {
        let labels = spec["template"]["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        match LabelSelector::from_object(selector) {
            Ok(parsed) if !parsed.matches(&labels) => errors.push(invalid(
                "spec.template.metadata.labels",
                &Value::Object(labels),
                "`selector` does not match template `labels`",
            )),
            Ok(_) => {}
            Err(e) => errors.push(invalid("spec.selector", selector, &e.to_string())),
        }
    }
    pod_spec(&spec["template"]["spec"], "spec.template.spec", errors);
    if let Some(policy) = spec["template"]["spec"]["restartPolicy"].as_str()
        && policy != "Always"
    {
        errors.push(unsupported("spec.template.spec.restartPolicy", policy, &["Always"]));
    }
}

fn job(spec: &Value, path: &str, errors: &mut Vec<FieldError>) {
    for field in ["parallelism", "completions", "backoffLimit"] {
        if spec[field].as_i64().is_some_and(|v| v < 0) {
            errors.push(invalid(&format!("{path}.{field}"), &spec[field], "must be greater than or equal to 0"));
        }
    }
    let template = &spec["template"]["spec"];
    pod_spec(template, &format!("{path}.template.spec"), errors);
    match template["restartPolicy"].as_str() {
        Some("OnFailure" | "Never") => {}
        Some(other) => {
            errors.push(unsupported(&format!("{path}.template.spec.restartPolicy"), other, &["OnFailure", "Never"]))
        }
        None => errors.push(required(&format!("{path}.template.spec.restartPolicy"))),
    }
}

/// Five fields, or one of the `@` shorthands.
fn valid_schedule(schedule: &str) -> bool {
    let schedule = schedule.trim();
    let schedule = schedule.strip_prefix("TZ=").map_or(schedule, |rest| rest.split_once(' ').map_or("", |(_, s)| s));
    if schedule.starts_with('@') {
        return matches!(
            schedule,
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly"
        );
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    fields.len() == 5
        && fields
            .iter()
            .all(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?')))
}

fn service(spec: &Value, errors: &mut Vec<FieldError>) {
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !matches!(kind, "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName") {
        errors.push(unsupported("spec.type", kind, &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]));
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && kind != "ExternalName" && spec["clusterIP"] != "None" {
        errors.push(required("spec.ports"));
    }
    let mut names = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let here = format!("spec.ports[{i}]");
        if !(1..=65535).contains(&port["port"].as_i64().unwrap_or(0)) {
            errors.push(invalid(&format!("{here}.port"), &port["port"], "must be between 1 and 65535, inclusive"));
        }
        let name = port["name"].as_str().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errors.push(required(&format!("{here}.name")));
        } else if !name.is_empty() && names.contains(&name) {
            errors.push(FieldError {
                reason: "FieldValueDuplicate",
                field: format!("{here}.name"),
                message: format!("Duplicate value: \"{name}\""),
            });
        }
        names.push(name);
        if let Some(node_port) = port["nodePort"].as_i64()
            && !(30000..=32767).contains(&node_port)
        {
            errors.push(invalid(
                &format!("{here}.nodePort"),
                &port["nodePort"],
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ));
        }
    }
}

fn config_keys(object: &Value, errors: &mut Vec<FieldError>) {
    let mut total = 0usize;
    for part in ["data", "binaryData", "stringData"] {
        for (key, value) in object[part].as_object().into_iter().flatten() {
            total += key.len() + value.as_str().map_or(0, str::len);
            let valid = !key.is_empty()
                && key.len() <= 253
                && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                errors.push(invalid(&format!("{part}[{key}]"), &Value::String(key.clone()),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
            }
        }
    }
    if total > 1024 * 1024 {
        errors.push(FieldError {
            reason: "FieldValueTooLong",
            field: "data".into(),
            message: "Too long: must have at most 1048576 bytes".into(),
        });
    }
}

fn updates(group: &str, resource: &str, new: &Value, old: &Value, errors: &mut Vec<FieldError>) {
    if matches!((group, resource), ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets"))
        && new["spec"]["selector"] != old["spec"]["selector"]
    {
        errors.push(immutable("spec.selector", &new["spec"]["selector"]));
    }
    if (group, resource) == ("", "services") {
        // A Service that becomes ExternalName gives its cluster IP up.
        let old_ip = old["spec"]["clusterIP"].as_str().unwrap_or("");
        if !old_ip.is_empty()
            && new["spec"]["type"] != "ExternalName"
            && new["spec"]["clusterIP"] != old["spec"]["clusterIP"]
        {
            errors.push(FieldError {
                reason: "FieldValueInvalid",
                field: "spec.clusterIPs[0]".into(),
                message: format!("Invalid value: {}: may not change once set", new["spec"]["clusterIP"]),
            });
        }
    }
    if (group, resource) == ("", "pods") {
        // Only images, activeDeadlineSeconds and added tolerations may change.
        let mut a = new["spec"].clone();
        let mut b = old["spec"].clone();
        for spec in [&mut a, &mut b] {
            for list in ["containers", "initContainers"] {
                for container in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                    if let Some(map) = container.as_object_mut() {
                        map.remove("image");
                    }
                }
            }
            if let Some(map) = spec.as_object_mut() {
                for field in ["activeDeadlineSeconds", "tolerations", "nodeName", "terminationGracePeriodSeconds"] {
                    map.remove(field);
                }
            }
        }
        if a != b {
            errors.push(FieldError {
                reason: "FieldValueForbidden",
                field: "spec".into(),
                message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
            });
        }
        let old_node = old["spec"]["nodeName"].as_str().unwrap_or("");
        if !old_node.is_empty() && new["spec"]["nodeName"] != old["spec"]["nodeName"] {
            errors.push(immutable("spec.nodeName", &new["spec"]["nodeName"]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect()
    }

    #[test]
    fn names_follow_the_resource_rule() {
        let errors = validate("", "configmaps", &json!({"metadata": {"name": "BadName"}}), None);
        assert_eq!(messages(&errors), vec![format!("metadata.name: Invalid value: \"BadName\": {SUBDOMAIN_MESSAGE}")]);
        assert!(validate("", "configmaps", &json!({"metadata": {"name": "a.b-c"}}), None).is_empty());
        assert_eq!(validate("", "namespaces", &json!({"metadata": {"name": "a.b"}}), None).len(), 1);
        assert!(
            validate("rbac.authorization.k8s.io", "clusterroles", &json!({"metadata": {"name": "system:view"}}), None)
                .is_empty()
        );
        let missing = validate("", "configmaps", &json!({"metadata": {}}), None);
        assert_eq!(missing[0].message, "Required value: name or generateName is required");
        assert!(validate("", "configmaps", &json!({"metadata": {"generateName": "x-"}}), None).is_empty());
        let labels = validate("", "configmaps", &json!({"metadata": {"name": "a", "labels": {"bad key!": "v"}}}), None);
        assert_eq!(labels[0].field, "metadata.labels");
    }

    #[test]
    fn pods_need_named_unique_containers_with_images() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Sometimes", "containers": [
            {"name": "a", "image": "x"}, {"name": "a"}]}});
        let errors = messages(&validate("", "pods", &pod, None));
        assert!(errors.contains(&"spec.containers[1].name: Duplicate value: \"a\"".to_string()), "{errors:?}");
        assert!(errors.contains(&"spec.containers[1].image: Required value".to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.restartPolicy: Unsupported value: \"Sometimes\"")));
        let empty = validate("", "pods", &json!({"metadata": {"name": "p"}, "spec": {}}), None);
        assert_eq!(messages(&empty), vec!["spec.containers: Required value"]);
    }

    #[test]
    fn workloads_need_a_matching_selector() {
        let deploy = json!({"metadata": {"name": "w"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let errors = validate("apps", "deployments", &deploy, None);
        assert_eq!(errors[0].field, "spec.template.metadata.labels");
        assert!(errors[0].message.ends_with("`selector` does not match template `labels`"));
        let mut changed = deploy.clone();
        changed["spec"]["selector"] = json!({"matchLabels": {"app": "b"}});
        let errors = validate("apps", "deployments", &changed, Some(&deploy));
        assert!(
            messages(&errors)
                .iter()
                .any(|m| m.starts_with("spec.selector: Invalid value") && m.ends_with("field is immutable"))
        );
    }

    #[test]
    fn pod_updates_are_limited() {
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("b");
        assert!(validate("", "pods", &image, Some(&old)).is_empty());
        let mut command = old.clone();
        command["spec"]["containers"][0]["command"] = json!(["sh"]);
        assert_eq!(validate("", "pods", &command, Some(&old))[0].reason, "FieldValueForbidden");
    }

    #[test]
    fn jobs_cronjobs_services_and_config_keys() {
        let job = json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Always",
            "containers": [{"name": "c", "image": "i"}]}}}});
        assert_eq!(validate("batch", "jobs", &job, None)[0].reason, "FieldValueNotSupported");
        let cron = json!({"metadata": {"name": "c"}, "spec": {"schedule": "every day", "jobTemplate": {"spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}});
        assert_eq!(
            messages(&validate("batch", "cronjobs", &cron, None)),
            vec!["spec.schedule: Invalid value: \"every day\": unparseable cron expression"]
        );
        assert!(valid_schedule("*/5 * * * *") && valid_schedule("@hourly"));
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}, {"port": 70000}]}});
        let errors = messages(&validate("", "services", &svc, None));
        assert!(errors.contains(&"spec.ports[0].name: Required value".to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.ports[1].port: Invalid value: 70000")));
        let cm = json!({"metadata": {"name": "c"}, "data": {"ok.key": "1", "bad key": "2"}});
        assert_eq!(validate("", "configmaps", &cm, None)[0].field, "data[bad key]");
    }
}
