//! Kubernetes client plumbing that the controller-manager, the scheduler
//! and the node agent share: Event recording and Lease-based leader election.

pub mod events;

pub use events::{EventType, Recorder};
