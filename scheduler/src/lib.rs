//! The scheduler: watches nodes and pods, and binds each pending pod that
//! names this scheduler to the best node that fits it (filters, then
//! scores), or explains with a FailedScheduling event why none does.

mod decide;
mod filters;
mod node_info;
mod quantity;
mod scheduler;
mod scores;

pub use scheduler::run;

/// What stops the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("watching {what}: {source}")]
    Watch { what: &'static str, source: kube::runtime::watcher::Error },
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, Node, NodeStatus, Pod, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub fn node(name: &str, cpu: &str, memory: &str) -> Node {
        let allocatable = [("cpu", cpu), ("memory", memory), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        Node {
            metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
            status: Some(NodeStatus { allocatable: Some(allocatable), ..NodeStatus::default() }),
            ..Node::default()
        }
    }

    pub fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
        let requests = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter(|(_, v)| *v != "0")
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        Pod {
            metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements { requests: Some(requests), ..Default::default() }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }
}
