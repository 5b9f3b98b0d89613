//! Watch: the hub that apply publishes into, and the etcd Watch service
//! whose watchers catch up from history and then follow the hub.

mod hub;
pub mod service;
mod watcher;

pub use hub::WatchHub;
