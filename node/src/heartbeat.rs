//! Registration and the two heartbeats: the Node's status every 10 s
//! through `nodes/<name>/status`, and the `kube-node-lease/<name>` Lease
//! renewed every 10 s (a quarter of its 40 s duration, as the kubelet does).

use std::time::Duration;

use capstan_proto::cri::RuntimeCondition;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::cri::Runtime;
use crate::machine::Machine;
use crate::node_status::{Health, new_node, node_status};

pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// How often the status and the Lease are refreshed.
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    pub status: Duration,
    pub lease: Duration,
}

/// What the heartbeats need, shared by both loops.
pub struct Heartbeat {
    pub client: Client,
    pub runtime: Runtime,
    pub node_name: String,
    pub machine: Machine,
    pub runtime_version: String,
}

impl Heartbeat {
    /// Creates the Node, or leaves an existing one (it is ours from an
    /// earlier run) to the first status update.
    pub async fn register(&self) -> Result<Node, Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let health = self.health().await;
        let node = new_node(&self.node_name, &self.machine, &self.runtime_version, &health, now());
        match nodes.create(&PostParams::default(), &node).await {
            Ok(created) => {
                tracing::info!(node = %self.node_name, "registered the node");
                Ok(created)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => self.update_status().await,
            Err(err) => Err(err.into()),
        }
    }

    /// Recomputes the status and writes it through `nodes/<name>/status`.
    pub async fn update_status(&self) -> Result<Node, Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let current = nodes.get(&self.node_name).await?;
        let health = self.health().await;
        let status =
            node_status(&self.node_name, &self.machine, &self.runtime_version, &health, current.status.as_ref(), now());
        let patch = serde_json::json!({ "status": status });
        Ok(nodes.patch_status(&self.node_name, &PatchParams::default(), &Patch::Merge(&patch)).await?)
    }

    /// Creates or renews the node's Lease, owned by the Node.
    pub async fn renew_lease(&self, node: &Node) -> Result<(), Error> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), NODE_LEASE_NAMESPACE);
        let spec = LeaseSpec {
            holder_identity: Some(self.node_name.clone()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..Default::default()
        };
        match leases.get_opt(&self.node_name).await? {
            Some(mut lease) => {
                lease.spec = Some(spec);
                leases.replace(&self.node_name, &PostParams::default(), &lease).await?;
            }
            None => {
                let owner = OwnerReference {
                    api_version: "v1".to_string(),
                    kind: "Node".to_string(),
                    name: self.node_name.clone(),
                    uid: node.uid().unwrap_or_default(),
                    ..Default::default()
                };
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.node_name.clone()),
                        namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
                        owner_references: Some(vec![owner]),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                leases.create(&PostParams::default(), &lease).await?;
            }
        }
        Ok(())
    }

    async fn health(&self) -> Health {
        match self.runtime.conditions().await {
            Ok(conditions) => runtime_health(&conditions),
            Err(err) => Health::NotReady(format!("container runtime is down: {err}")),
        }
    }

    /// Both heartbeats until `shutdown`; failures are logged and retried
    /// at the next period.
    pub async fn run(&self, mut node: Node, periods: Periods, shutdown: CancellationToken) {
        let mut status_tick = tokio::time::interval(periods.status);
        let mut lease_tick = tokio::time::interval(periods.lease);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = status_tick.tick() => match self.update_status().await {
                    Ok(updated) => node = updated,
                    Err(err) => tracing::warn!(%err, "node status update failed"),
                },
                _ = lease_tick.tick() => {
                    if let Err(err) = self.renew_lease(&node).await {
                        tracing::warn!(%err, "node lease renewal failed");
                    }
                }
            }
        }
    }
}

/// The kubelet's reading of the CRI conditions: both RuntimeReady and
/// NetworkReady must be true.
pub fn runtime_health(conditions: &[RuntimeCondition]) -> Health {
    let mut problems = Vec::new();
    for wanted in ["RuntimeReady", "NetworkReady"] {
        match conditions.iter().find(|c| c.r#type == wanted) {
            Some(c) if c.status => {}
            Some(c) => problems.push(format!("{wanted}=false reason:{} message:{}", c.reason, c.message)),
            None => problems.push(format!("{wanted} is not reported")),
        }
    }
    if problems.is_empty() {
        Health::Ready
    } else {
        Health::NotReady(format!("container runtime not ready: {}", problems.join("; ")))
    }
}

/// Now, truncated to whole seconds as `Time` is written on the wire.
pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: bool) -> RuntimeCondition {
        RuntimeCondition {
            r#type: type_.to_string(),
            status,
            reason: if status { String::new() } else { "NetworkPluginNotReady".to_string() },
            message: if status { String::new() } else { "cni plugin not initialized".to_string() },
        }
    }

    #[test]
    fn runtime_and_network_must_both_be_ready() {
        assert_eq!(runtime_health(&[condition("RuntimeReady", true), condition("NetworkReady", true)]), Health::Ready);
        let Health::NotReady(why) =
            runtime_health(&[condition("RuntimeReady", true), condition("NetworkReady", false)])
        else {
            panic!("a runtime without network is not ready");
        };
        assert!(why.contains("NetworkReady=false reason:NetworkPluginNotReady"), "{why}");
        assert!(matches!(runtime_health(&[]), Health::NotReady(_)));
    }
}
