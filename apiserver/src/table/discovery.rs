//! discovery.k8s.io/v1 endpoint slices.

use std::time::SystemTime;

use serde_json::Value;

use super::{AGE, Column, NAME, age, list_of, name, str_of, text};

pub(super) static ENDPOINTSLICE_COLUMNS: [Column; 5] = [
    NAME,
    text("AddressType", "addressType specifies the type of address carried by this EndpointSlice."),
    text("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
    text("Endpoints", "endpoints is a list of unique endpoints in this slice."),
    AGE,
];

pub(super) fn endpointslice_cells(slice: &Value, now: SystemTime) -> Vec<Value> {
    let ports: Vec<String> = list_of(&slice["ports"])
        .iter()
        .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
            (Some(port), _) => port.to_string(),
            (None, Some(port_name)) => port_name.to_string(),
            (None, None) => "*".into(),
        })
        .collect();
    let addresses: Vec<String> =
        list_of(&slice["endpoints"]).iter().flat_map(|e| list_of(&e["addresses"])).map(|a| str_of(a).into()).collect();
    vec![
        name(slice),
        str_of(&slice["addressType"]).into(),
        first_three(ports).into(),
        first_three(addresses).into(),
        age(slice, now),
    ]
}

/// Up to three entries then "+ N more...", "<unset>" for none (printers.go `listWithMoreString`).
fn first_three(mut list: Vec<String>) -> String {
    const MAX: usize = 3;
    let count = list.len();
    list.truncate(MAX);
    match count {
        0 => "<unset>".into(),
        _ if count > MAX => format!("{} + {} more...", list.join(","), count - MAX),
        _ => list.join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoint_slice() {
        let slice = json!({
            "metadata": {"name": "kube-dns-7xk2p", "creationTimestamp": "2024-04-28T12:00:00Z"},
            "addressType": "IPv4",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "metrics", "port": 9153},
                      {"name": "dyn"}, {}],
            "endpoints": [{"addresses": ["10.1.0.20"]}, {"addresses": ["10.1.0.21", "10.1.0.22"]},
                          {"addresses": ["10.1.0.23"]}]
        });
        assert_eq!(
            endpointslice_cells(&slice, at("2024-05-01T12:00:00Z")),
            [
                json!("kube-dns-7xk2p"),
                json!("IPv4"),
                json!("53,9153,dyn + 1 more..."),
                json!("10.1.0.20,10.1.0.21,10.1.0.22 + 1 more..."),
                json!("3d")
            ]
        );
        let empty = endpointslice_cells(&json!({"addressType": "IPv6"}), at("2024-05-01T12:00:00Z"));
        assert_eq!(empty[2..4], [json!("<unset>"), json!("<unset>")]);
        assert_eq!(first_three(vec!["*".into(); 3]), "*,*,*");
    }
}
