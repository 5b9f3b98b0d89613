//! rbac.authorization.k8s.io/v1 role bindings and cluster role bindings (roles themselves use the default table).

use std::time::SystemTime;

use serde_json::Value;

use super::{AGE, Column, NAME, age, list_of, name, str_of, text, wide};

pub(super) static BINDING_COLUMNS: [Column; 6] = [
    NAME,
    text("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
    AGE,
    wide("Users", "Users in the binding"),
    wide("Groups", "Groups in the binding"),
    wide("ServiceAccounts", "ServiceAccounts in the binding"),
];

pub(super) fn binding_cells(binding: &Value, now: SystemTime) -> Vec<Value> {
    let role_ref = &binding["roleRef"];
    let subjects = list_of(&binding["subjects"]);
    let of_kind = |kind: &str| {
        let names = subjects.iter().filter(|s| s["kind"] == kind);
        let names: Vec<String> = if kind == "ServiceAccount" {
            names.map(|s| format!("{}/{}", str_of(&s["namespace"]), str_of(&s["name"]))).collect()
        } else {
            names.map(|s| str_of(&s["name"]).to_string()).collect()
        };
        Value::from(names.join(", "))
    };
    vec![
        name(binding),
        format!("{}/{}", str_of(&role_ref["kind"]), str_of(&role_ref["name"])).into(),
        age(binding, now),
        of_kind("User"),
        of_kind("Group"),
        of_kind("ServiceAccount"),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    #[test]
    fn role_binding() {
        let binding = json!({
            "metadata": {"name": "read-pods", "namespace": "shop", "creationTimestamp": "2024-05-01T09:30:00Z"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [
                {"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}
            ]
        });
        assert_eq!(
            binding_cells(&binding, at("2024-05-01T12:00:00Z")),
            [
                json!("read-pods"),
                json!("Role/pod-reader"),
                json!("150m"),
                json!("jane, bob"),
                json!("devs"),
                json!("tools/ci")
            ]
        );
        let empty = binding_cells(&json!({}), at("2024-05-01T12:00:00Z"));
        assert_eq!(empty[1..], [json!("/"), json!("<unknown>"), json!(""), json!(""), json!("")]);
    }
}
