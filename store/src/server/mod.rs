//! Running a member: configuration, bootstrap, and the servers.

pub mod bootstrap;
pub mod config;
pub mod member;
pub mod run;

pub use config::{ClusterState, Config};
pub use run::{RunningMember, StartError, start};
