//! Kubernetes client plumbing that the controller-manager, the scheduler
//! and the node agent share: Event recording and Lease-based leader election.

pub mod events;
pub mod leader;

pub use events::{EventType, Recorder};
pub use leader::{ElectionConfig, run_when_leader};
