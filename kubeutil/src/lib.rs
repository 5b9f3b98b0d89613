//! Kubernetes client plumbing that the controller-manager, the scheduler
//! and the node agent share: Event recording, Lease-based leader election
//! and resource quantities.

pub mod events;
pub mod leader;
pub mod quantity;

pub use events::{EventType, Recorder};
pub use leader::{ElectionConfig, run_when_leader};
