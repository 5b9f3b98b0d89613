//! coordination.k8s.io/v1 leases.

use std::time::SystemTime;

use serde_json::Value;

use super::{AGE, Column, NAME, age, name, str_of, text};

pub(super) static LEASE_COLUMNS: [Column; 3] =
    [NAME, text("Holder", "holderIdentity contains the identity of the holder of a current lease."), AGE];

pub(super) fn lease_cells(lease: &Value, now: SystemTime) -> Vec<Value> {
    vec![name(lease), str_of(&lease["spec"]["holderIdentity"]).into(), age(lease, now)]
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    #[test]
    fn lease() {
        let lease = json!({
            "metadata": {"name": "kube-scheduler", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"holderIdentity": "cp-1_4b1e6a0e", "leaseDurationSeconds": 15}
        });
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(lease_cells(&lease, now), [json!("kube-scheduler"), json!("cp-1_4b1e6a0e"), json!("60m")]);
        assert_eq!(lease_cells(&json!({}), now)[1], json!(""));
    }
}
