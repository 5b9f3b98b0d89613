//! Cluster IPs and node ports for Services. Each taken address is a key in
//! the store, claimed with a create-if-absent transaction, so replicas
//! never hand out the same one.

use std::net::Ipv4Addr;

use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};

use super::{Registry, store_error};
use crate::error::{ApiError, ApiResult, Cause};
use crate::object;
use crate::storage::Written;

/// Kubernetes' default service range, 10.96.0.0/12.
const SERVICE_NETWORK: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_NETWORK_SIZE: u32 = 1 << 20;
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;
const IP_KEYS: &str = "/registry/ipallocations/";
const PORT_KEYS: &str = "/registry/nodeportallocations/";
const ATTEMPTS: usize = 64;

fn invalid(field: &str, message: String, name: &str) -> ApiError {
    ApiError::Invalid {
        kind_name: "Service".into(),
        group: String::new(),
        kind: "Service".into(),
        name: name.to_string(),
        causes: vec![Cause { reason: "FieldValueInvalid".into(), field: field.into(), message }],
    }
}

impl Registry {
    /// Gives a new Service its cluster IP and node ports, honouring the
    /// ones it asks for. What is claimed before a failure is released.
    pub(super) async fn allocate_service(&self, service: &mut Value) -> ApiResult<()> {
        let owner = format!("{}/{}", object::namespace(service), object::name(service));
        let name = object::name(service).to_string();
        let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
        if kind == "ExternalName" {
            return Ok(());
        }
        let mut claimed = Vec::new();
        let result = self.claim_all(service, &kind, &owner, &name, &mut claimed).await;
        if result.is_err() {
            for key in claimed {
                let _ = self.release_key(&key).await;
            }
        }
        result
    }

    async fn claim_all(
        &self,
        service: &mut Value,
        kind: &str,
        owner: &str,
        name: &str,
        claimed: &mut Vec<String>,
    ) -> ApiResult<()> {
        self.claim_cluster_ip(service, owner, name, claimed).await?;
        if !matches!(kind, "NodePort" | "LoadBalancer") {
            return Ok(());
        }
        self.claim_node_ports(service, &[], owner, name, claimed).await
    }

    /// The cluster IP the Service asks for, or a free one; none for a
    /// headless Service (`clusterIP: None`).
    async fn claim_cluster_ip(
        &self,
        service: &mut Value,
        owner: &str,
        name: &str,
        claimed: &mut Vec<String>,
    ) -> ApiResult<()> {
        let requested = service["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
        if requested == "None" {
            service["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(());
        }
        let ip = match requested.as_str() {
            "" => self.claim_free_ip(owner).await?,
            wanted => {
                let ip: Ipv4Addr = wanted.parse().map_err(|_| {
                    invalid(
                        "spec.clusterIPs[0]",
                        format!("Invalid value: \"{wanted}\": must be a valid IP address"),
                        name,
                    )
                })?;
                let offset = u32::from(ip).wrapping_sub(SERVICE_NETWORK);
                if offset >= SERVICE_NETWORK_SIZE {
                    return Err(invalid(
                        "spec.clusterIPs[0]",
                        format!(
                            "Invalid value: \"{wanted}\": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"
                        ),
                        name,
                    ));
                }
                if !self.claim(&format!("{IP_KEYS}{ip}"), owner).await? {
                    return Err(invalid(
                        "spec.clusterIPs[0]",
                        format!(
                            "Invalid value: \"{wanted}\": failed to allocate IP {wanted}: provided IP is already allocated"
                        ),
                        name,
                    ));
                }
                ip
            }
        };
        claimed.push(format!("{IP_KEYS}{ip}"));
        service["spec"]["clusterIP"] = json!(ip.to_string());
        service["spec"]["clusterIPs"] = json!([ip.to_string()]);
        Ok(())
    }

    /// Addresses for an updated Service: a cluster IP when it had none (its
    /// type changed from ExternalName), and a node port for each port without
    /// one (added, or the type changed to NodePort); a newly requested one is
    /// claimed. Returns the keys claimed, to give back if the write does not land.
    pub(super) async fn claim_new_addresses(&self, old: &Value, new: &mut Value) -> ApiResult<Vec<String>> {
        let owner = format!("{}/{}", object::namespace(new), object::name(new));
        let name = object::name(new).to_string();
        let mut claimed = Vec::new();
        let mut result = Ok(());
        // Validation lets a cluster IP change only when there was none.
        let ip = &new["spec"]["clusterIP"];
        let unset = ip.as_str().is_none_or(str::is_empty);
        if new["spec"]["type"] != "ExternalName" && (unset || *ip != old["spec"]["clusterIP"]) {
            result = self.claim_cluster_ip(new, &owner, &name, &mut claimed).await;
        }
        if result.is_ok() && has_node_ports(new) {
            result = self.claim_node_ports(new, &node_ports(old), &owner, &name, &mut claimed).await;
        }
        if result.is_err() {
            self.release_keys(&claimed).await;
        }
        result.map(|()| claimed)
    }

    async fn claim_node_ports(
        &self,
        service: &mut Value,
        held: &[i64],
        owner: &str,
        name: &str,
        claimed: &mut Vec<String>,
    ) -> ApiResult<()> {
        let count = service["spec"]["ports"].as_array().map_or(0, Vec::len);
        for i in 0..count {
            let port = match service["spec"]["ports"][i]["nodePort"].as_i64() {
                Some(kept) if held.contains(&kept) => continue,
                Some(wanted) if wanted != 0 => {
                    if !self.claim(&format!("{PORT_KEYS}{wanted}"), owner).await? {
                        return Err(invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            format!("Invalid value: {wanted}: provided port is already allocated"),
                            name,
                        ));
                    }
                    wanted
                }
                _ => self.claim_free_port(owner).await?,
            };
            claimed.push(format!("{PORT_KEYS}{port}"));
            service["spec"]["ports"][i]["nodePort"] = json!(port);
        }
        Ok(())
    }

    /// Gives back the cluster IP and node ports an updated Service no longer uses.
    pub(super) async fn release_dropped_addresses(&self, old: &Value, new: &Value) {
        let kept = address_keys(new);
        let dropped: Vec<String> = address_keys(old).into_iter().filter(|key| !kept.contains(key)).collect();
        self.release_keys(&dropped).await;
    }

    async fn claim_free_ip(&self, owner: &str) -> ApiResult<Ipv4Addr> {
        for _ in 0..ATTEMPTS {
            // .0 is the network; .1 is the kubernetes Service's by convention.
            let offset = rand::rng().random_range(2..SERVICE_NETWORK_SIZE - 1);
            let ip = Ipv4Addr::from(SERVICE_NETWORK + offset);
            if self.claim(&format!("{IP_KEYS}{ip}"), owner).await? {
                return Ok(ip);
            }
        }
        Err(ApiError::Internal("no free cluster IP found in 10.96.0.0/12".into()))
    }

    async fn claim_free_port(&self, owner: &str) -> ApiResult<i64> {
        for _ in 0..ATTEMPTS {
            let port = rand::rng().random_range(NODE_PORTS);
            if self.claim(&format!("{PORT_KEYS}{port}"), owner).await? {
                return Ok(port);
            }
        }
        Err(ApiError::Internal("no free node port found in 30000-32767".into()))
    }

    /// True when the key was free and is now ours.
    async fn claim(&self, key: &str, owner: &str) -> ApiResult<bool> {
        let written = self.store.put_if(key, Bytes::from(owner.to_string()), 0).await.map_err(store_error)?;
        Ok(matches!(written, Written::Done(_)))
    }

    async fn release_key(&self, key: &str) -> ApiResult<()> {
        if let Some(stored) = self.store.get(key).await.map_err(store_error)? {
            self.store.delete_if(key, stored.mod_revision).await.map_err(store_error)?;
        }
        Ok(())
    }

    /// Frees what a deleted Service held.
    pub(super) async fn release_service(&self, service: &Value) {
        self.release_keys(&address_keys(service)).await;
    }

    pub(super) async fn release_keys(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.release_key(key).await {
                tracing::warn!(%key, error = %e, "could not release a service address; it stays taken");
            }
        }
    }
}

/// The allocation keys of a Service's cluster IPs and node ports.
fn address_keys(service: &Value) -> Vec<String> {
    let ips = service["spec"]["clusterIPs"].as_array().into_iter().flatten().filter_map(Value::as_str);
    let mut keys: Vec<String> = ips.filter(|ip| *ip != "None").map(|ip| format!("{IP_KEYS}{ip}")).collect();
    keys.extend(node_ports(service).into_iter().map(|port| format!("{PORT_KEYS}{port}")));
    keys
}

fn has_node_ports(service: &Value) -> bool {
    matches!(service["spec"]["type"].as_str(), Some("NodePort" | "LoadBalancer"))
}

fn node_ports(service: &Value) -> Vec<i64> {
    let ports = service["spec"]["ports"].as_array().into_iter().flatten();
    ports.filter_map(|port| port["nodePort"].as_i64()).filter(|port| *port != 0).collect()
}

/// An update keeps the addresses the Service was given. A type without
/// node ports drops them, and an ExternalName Service its cluster IP too,
/// as Kubernetes does.
pub fn keep_service_addresses(new: &mut Value, old: &Value) {
    for field in ["clusterIP", "clusterIPs"] {
        if new["spec"]["type"] == "ExternalName" {
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove(field);
            }
        } else if new["spec"][field].is_null() || new["spec"][field] == "" {
            new["spec"][field] = old["spec"][field].clone();
        }
    }
    let keeps_node_ports = has_node_ports(new);
    let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
    for port in new["spec"]["ports"].as_array_mut().into_iter().flatten() {
        if !keeps_node_ports {
            if let Some(port) = port.as_object_mut() {
                port.remove("nodePort");
            }
            continue;
        }
        if port["nodePort"].as_i64().unwrap_or(0) == 0
            && let Some(previous) = old_ports.iter().find(|p| p["port"] == port["port"] && p["nodePort"].is_i64())
        {
            port["nodePort"] = previous["nodePort"].clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_keep_cluster_ips_and_node_ports() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.3.4", "clusterIPs": ["10.96.3.4"],
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        keep_service_addresses(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.3.4");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert!(new["spec"]["ports"][1].get("nodePort").is_none());
        assert_eq!(node_ports(&new), vec![30080]);

        let mut cluster_ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}]}});
        keep_service_addresses(&mut cluster_ip, &old);
        assert!(cluster_ip["spec"]["ports"][0].get("nodePort").is_none(), "ClusterIP has no node ports");

        let mut external = json!({"spec": {"type": "ExternalName", "clusterIP": "10.96.3.4",
            "ports": [{"port": 80, "nodePort": 30080}]}});
        keep_service_addresses(&mut external, &old);
        assert_eq!(address_keys(&external), Vec::<String>::new(), "ExternalName holds no addresses");
        assert_eq!(address_keys(&old), vec![format!("{IP_KEYS}10.96.3.4"), format!("{PORT_KEYS}30080")]);
    }

    #[test]
    fn the_service_network_is_10_96_0_0_12() {
        assert_eq!(Ipv4Addr::from(SERVICE_NETWORK).to_string(), "10.96.0.0");
        assert_eq!(Ipv4Addr::from(SERVICE_NETWORK + SERVICE_NETWORK_SIZE - 1).to_string(), "10.111.255.255");
    }
}
