//! capstan's scheduler: places unbound pods on nodes the way kube-scheduler's
//! default profile does, without preemption.
//!
//! - [`run`] (in `scheduler`): the loop. Node and pod reflectors feed the
//!   scheduling queue; one pod at a time is filtered, scored, assumed and
//!   bound through `pods/<name>/binding`, or marked unschedulable.
//! - `queue`: active, backoff and unschedulable pods.
//! - `assume`: pods bound but not yet seen bound by the watch.
//! - `snapshot`, `node_info`, `node_view`, `resources`,
//!   `pod_state`: the cluster as the plugins see it.
//! - `plugins`: the filters (NodeUnschedulable, NodeName, TaintToleration,
//!   NodeAffinity, NodePorts, NodeResourcesFit) and scores (LeastAllocated,
//!   BalancedAllocation); `algorithm` runs them; `fit_error` words the
//!   failure; `conditions` the PodScheduled condition.
//! - `cluster`: the writes to the apiserver.

mod algorithm;
mod assume;
mod cluster;
mod conditions;
mod error;
mod fit_error;
mod node_info;
mod node_view;
mod plugins;
mod pod_state;
mod queue;
mod resources;
mod scheduler;
mod snapshot;

pub use error::Error;
pub use pod_state::DEFAULT_SCHEDULER_NAME;
pub use scheduler::run;
/// The shutdown signal [`run`] takes, re-exported for callers without a
/// direct tokio-util dependency.
pub use tokio_util::sync::CancellationToken;
