//! Running a member: configuration, bootstrap, and the servers.

pub mod bootstrap;
mod coalesce;
pub mod config;
pub(crate) mod forward;
pub mod member;
pub mod run;
mod shards;
pub mod tls;

pub use config::{ClusterState, Config, TlsFiles};
pub use run::{RunningMember, StartError, start};
