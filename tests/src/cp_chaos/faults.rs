//! The faults, and how long the leadership they disturb takes to move.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use super::clients::Clients;
use super::cluster::{ControlPlane, LEASE_DURATION};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    KillStoreLeader,
    KillControllerManagerLeader,
    KillSchedulerLeader,
    KillServer,
    PauseServer,
}

pub const ROTATION: [Fault; 5] = [
    Fault::KillStoreLeader,
    Fault::KillControllerManagerLeader,
    Fault::KillSchedulerLeader,
    Fault::KillServer,
    Fault::PauseServer,
];

/// A dead store leader is noticed after one to two election timeouts (1 s
/// each, randomized) and a new one elected in a vote round: within 4 s;
/// 2 s more for polling three members with etcdctl on a loaded machine.
pub const STORE_MOVE_BOUND: Duration = Duration::from_secs(6);
/// client-go's rules: the holder renews every retry period (1 s) and a
/// candidate polls every retry period plus up to 20% jitter; the lease
/// expires a lease duration after the candidate first *sees* the holder's
/// last renewal. When the holder's server also led the store, reads stall
/// until a new store leader is elected (up to 4 s, as above), so that
/// sighting can come only then: 4 s + the lease duration + one jittered
/// poll (1.2 s) + the write. Two more seconds for a loaded machine.
pub const LEASE_MOVE_BOUND: Duration = Duration::from_secs(4 + LEASE_DURATION.as_secs() + 2 + 2);

pub struct Injected {
    pub fault: Fault,
    pub server: String,
    /// How long the leadership took to move, for the leader kills.
    pub moved_in: Option<Duration>,
    pub bound: Option<Duration>,
}

pub async fn inject(plane: &mut ControlPlane, clients: &Clients, fault: Fault, round: usize) -> Result<Injected> {
    let (target, moved_in, bound) = match fault {
        Fault::KillStoreLeader => {
            let leader = plane.store_leader().context("no store leader before the fault")?;
            plane.kill(leader);
            let started = Instant::now();
            wait(Duration::from_secs(30), || plane.store_leader().filter(|l| *l != leader)).await?;
            (leader, Some(started.elapsed()), Some(STORE_MOVE_BOUND))
        }
        Fault::KillControllerManagerLeader | Fault::KillSchedulerLeader => {
            let lease = if fault == Fault::KillSchedulerLeader { "kube-scheduler" } else { "kube-controller-manager" };
            let holder = holder_identity(clients, lease).await?;
            let server = plane.holder(&holder).with_context(|| format!("no server logged leadership as {holder}"))?;
            plane.kill(server);
            let started = Instant::now();
            let deadline = started + Duration::from_secs(60);
            loop {
                let now = holder_identity(clients, lease).await.unwrap_or_default();
                if !now.is_empty() && now != holder {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "the {lease} lease did not move in 60 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (server, Some(started.elapsed()), Some(LEASE_MOVE_BOUND))
        }
        Fault::KillServer => {
            let server = round % plane.servers.len();
            plane.kill(server);
            tokio::time::sleep(Duration::from_secs(2)).await;
            (server, None, None)
        }
        Fault::PauseServer => {
            let server = (round + 1) % plane.servers.len();
            plane.signal(server, "-STOP")?;
            tokio::time::sleep(Duration::from_secs(8)).await;
            plane.signal(server, "-CONT")?;
            (server, None, None)
        }
    };
    let name = plane.servers[target].spec.name.clone();
    plane.restart(target);
    Ok(Injected { fault, server: name, moved_in, bound })
}

async fn holder_identity(clients: &Clients, lease: &str) -> Result<String> {
    let lease =
        clients.call(|client| async move { Api::<Lease>::namespaced(client, "kube-system").get(lease).await }).await?;
    Ok(lease.spec.and_then(|s| s.holder_identity).unwrap_or_default())
}

async fn wait<T>(timeout: Duration, mut found: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = found() {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
