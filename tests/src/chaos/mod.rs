//! The chaos harness: a three-member cluster in network namespaces, clients
//! and watchers recording a history while a nemesis kills, pauses and
//! partitions members, and the checks that history must pass.

pub mod checks;
pub mod client;
pub mod history;
pub mod linearizability;
pub mod members;
pub mod nemesis;
pub mod netns;
pub mod resolve;
pub mod run;
pub mod watcher;
pub mod workload;
