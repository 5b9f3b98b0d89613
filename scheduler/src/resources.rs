//! The resources a pod asks for and a node offers, the way kube-scheduler
//! adds them up (`resourcehelper.PodRequests`): app containers and sidecars
//! summed, regular init containers as a maximum, pod overhead on top.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use capstan_kubeutil::quantity;

/// Scoring counts a container without a cpu request as asking for this much
/// (kube-scheduler's `DefaultMilliCPURequest`), so best-effort pods spread.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Likewise for memory (`DefaultMemoryRequest`, 200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
}

impl Resources {
    /// cpu, memory and ephemeral-storage out of a resource list; quantities
    /// that do not parse count as zero (the apiserver validates them).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let get = |name: &str| list.and_then(|list| list.get(name));
        Resources {
            milli_cpu: get("cpu").and_then(quantity::milli_value).unwrap_or(0),
            memory: get("memory").and_then(quantity::value).unwrap_or(0),
            ephemeral_storage: get("ephemeral-storage").and_then(quantity::value).unwrap_or(0),
        }
    }

    pub fn add(&mut self, other: Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(other.ephemeral_storage);
    }

    pub fn plus(mut self, other: Resources) -> Resources {
        self.add(other);
        self
    }

    fn max(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
        }
    }
}

/// Whether missing container requests count as zero (the fit filter) or as
/// kube-scheduler's non-zero defaults (least-allocated scoring).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Zero,
    NonZeroDefaults,
}

/// What a pod needs on a node: its effective requests.
pub fn pod_requests(pod: &Pod, missing: Missing) -> Resources {
    let Some(spec) = &pod.spec else { return Resources::default() };
    let mut requests = Resources::default();
    for container in &spec.containers {
        requests.add(container_requests(container, missing));
    }
    // Sidecars (restartable init containers) keep running beside the app
    // containers; a regular init container runs alone beside the sidecars
    // started before it.
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for container in spec.init_containers.iter().flatten() {
        let own = container_requests(container, missing);
        let while_running = if container.restart_policy.as_deref() == Some("Always") {
            requests.add(own);
            sidecars.add(own);
            sidecars
        } else {
            own.plus(sidecars)
        };
        init_peak = init_peak.max(while_running);
    }
    requests.max(init_peak).plus(Resources::from_list(spec.overhead.as_ref()))
}

/// One container's requests. A request left out while its limit is set
/// counts as the limit: Kubernetes' API defaulting stores exactly that.
fn container_requests(container: &Container, missing: Missing) -> Resources {
    let resources = container.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let quantity = |name: &str| requests.and_then(|r| r.get(name)).or_else(|| limits.and_then(|l| l.get(name)));
    let non_zero = missing == Missing::NonZeroDefaults;
    Resources {
        milli_cpu: match quantity("cpu") {
            Some(q) => quantity::milli_value(q).unwrap_or(0),
            None if non_zero => DEFAULT_MILLI_CPU_REQUEST,
            None => 0,
        },
        memory: match quantity("memory") {
            Some(q) => quantity::value(q).unwrap_or(0),
            None if non_zero => DEFAULT_MEMORY_REQUEST,
            None => 0,
        },
        ephemeral_storage: quantity("ephemeral-storage").and_then(quantity::value).unwrap_or(0),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    pub(crate) fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
    }

    pub(crate) fn container(requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements { requests: Some(list(requests)), ..Default::default() }),
            ..Default::default()
        }
    }

    /// A pod of one container requesting `requests`.
    pub(crate) fn requesting(requests: &[(&str, &str)]) -> Pod {
        Pod {
            spec: Some(PodSpec { containers: vec![container(requests)], ..Default::default() }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec { containers, init_containers: Some(init), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn containers_add_up() {
        let p = pod(vec![container(&[("cpu", "100m"), ("memory", "1Gi")]), container(&[("cpu", "1")])], vec![]);
        let r = pod_requests(&p, Missing::Zero);
        assert_eq!(r, Resources { milli_cpu: 1100, memory: 1 << 30, ephemeral_storage: 0 });
    }

    #[test]
    fn the_largest_init_container_counts_when_it_exceeds_the_app() {
        let p = pod(vec![container(&[("cpu", "500m")])], vec![container(&[("cpu", "2")]), container(&[("cpu", "1")])]);
        assert_eq!(pod_requests(&p, Missing::Zero).milli_cpu, 2000);
        let small_init = pod(vec![container(&[("cpu", "500m")])], vec![container(&[("cpu", "200m")])]);
        assert_eq!(pod_requests(&small_init, Missing::Zero).milli_cpu, 500);
    }

    #[test]
    fn sidecars_add_to_the_app_and_to_later_init_containers() {
        let mut sidecar = container(&[("cpu", "300m")]);
        sidecar.restart_policy = Some("Always".into());
        let p = pod(vec![container(&[("cpu", "500m")])], vec![sidecar, container(&[("cpu", "1")])]);
        // App phase: 500m + 300m; the init container after the sidecar: 1000m + 300m.
        assert_eq!(pod_requests(&p, Missing::Zero).milli_cpu, 1300);
    }

    #[test]
    fn overhead_is_added() {
        let mut p = pod(vec![container(&[("memory", "100Mi")])], vec![]);
        if let Some(spec) = p.spec.as_mut() {
            spec.overhead = Some(list(&[("memory", "10Mi")]));
        }
        assert_eq!(pod_requests(&p, Missing::Zero).memory, 110 << 20);
    }

    #[test]
    fn missing_requests_take_the_limit_or_the_scoring_defaults() {
        let limited = Container {
            name: "c".into(),
            resources: Some(ResourceRequirements { limits: Some(list(&[("cpu", "2")])), ..Default::default() }),
            ..Default::default()
        };
        let p = pod(vec![limited, Container::default()], vec![]);
        assert_eq!(pod_requests(&p, Missing::Zero), Resources { milli_cpu: 2000, memory: 0, ephemeral_storage: 0 });
        assert_eq!(
            pod_requests(&p, Missing::NonZeroDefaults),
            Resources { milli_cpu: 2100, memory: 2 * DEFAULT_MEMORY_REQUEST, ephemeral_storage: 0 }
        );
    }
}
