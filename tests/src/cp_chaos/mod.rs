//! The control-plane chaos run: three `capstan server`s and two agents on
//! the machine's containerd, Deployments and ConfigMaps under a steady
//! client, and the leaders (store, controller-manager, scheduler), a random
//! server and a paused server as faults. See `src/bin/cp_chaos.rs`.

pub mod checks;
pub mod clients;
pub mod cluster;
pub mod faults;
pub mod observers;
pub mod workload;
