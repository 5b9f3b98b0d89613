//! The nemesis: one fault every few seconds, held for a while, then undone.
//! At most one member is faulty at a time, so a majority stays up and the
//! clients keep making progress; every fault is logged with its time.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::members::{ChaosCluster, State, leader};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL the leader (or a random member), restart it later.
    Kill,
    /// SIGSTOP a member for longer than the election timeout.
    Pause,
    /// Blackhole routes (the leader isolated, or one link between two members
    /// cut), or a member's outgoing traffic throttled.
    Partition,
    /// A member down long enough to need a snapshot, killed again while it installs it.
    Snapshot,
}

impl FromStr for FaultKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<FaultKind> {
        Ok(match s {
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "partition" => FaultKind::Partition,
            "snapshot" => FaultKind::Snapshot,
            other => bail!("unknown fault {other:?} (kill, pause, partition, snapshot)"),
        })
    }
}

/// How many faults of each kind were injected.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub kills: u32,
    pub pauses: u32,
    pub partitions: u32,
    pub snapshots: u32,
}

pub struct Nemesis {
    pub faults: Vec<FaultKind>,
    pub rng: StdRng,
    pub start: Instant,
    pub counts: Counts,
}

impl Nemesis {
    pub fn new(faults: Vec<FaultKind>, seed: u64, start: Instant) -> Nemesis {
        Nemesis { faults, rng: StdRng::seed_from_u64(seed ^ 0x6e656d65), start, counts: Counts::default() }
    }

    fn log(&self, what: &str) {
        eprintln!("[{:7.2}s] nemesis: {what}", self.start.elapsed().as_secs_f64());
    }

    async fn pause_for(&mut self, low_ms: u64, high_ms: u64) {
        let ms = self.rng.random_range(low_ms..=high_ms);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Injects faults until `until`, then undoes them all.
    pub async fn run(&mut self, cluster: &mut ChaosCluster, until: Instant) -> Result<()> {
        let urls: Vec<String> = (0..cluster.size()).map(|i| cluster.client_url(i)).collect();
        while Instant::now() < until {
            self.pause_for(1000, 3000).await;
            if Instant::now() >= until {
                break;
            }
            let Some(&kind) = self.faults.choose(&mut self.rng) else { break };
            let leader = leader(&urls).await;
            let target = match leader {
                Some(l) if self.rng.random_bool(0.6) => l,
                _ => self.rng.random_range(0..cluster.size()),
            };
            let role = if Some(target) == leader { "leader" } else { "member" };
            match kind {
                FaultKind::Kill => {
                    self.counts.kills += 1;
                    self.log(&format!("SIGKILL {role} {}", cluster.members[target].name));
                    cluster.kill(target);
                    self.pause_for(500, 3000).await;
                }
                FaultKind::Pause => {
                    self.counts.pauses += 1;
                    self.log(&format!("SIGSTOP {role} {}", cluster.members[target].name));
                    cluster.pause(target);
                    self.pause_for(2000, 4000).await;
                }
                FaultKind::Partition => {
                    self.counts.partitions += 1;
                    let variant = self.rng.random_range(0..10);
                    if variant < 6 {
                        self.log(&format!("isolate {role} {}", cluster.members[target].name));
                        cluster.net.isolate(target)?;
                    } else if variant < 8 {
                        self.log(&format!("throttle what {role} {} sends", cluster.members[target].name));
                        cluster.net.slow_down(target)?;
                    } else {
                        let other = (target + self.rng.random_range(1..cluster.size())) % cluster.size();
                        let names = (&cluster.members[target].name, &cluster.members[other].name);
                        self.log(&format!("cut the link {} <-> {}", names.0, names.1));
                        cluster.net.cut(target, other)?;
                    }
                    self.pause_for(2000, 4000).await;
                }
                FaultKind::Snapshot => {
                    // Far enough behind that the leader purged the entries it
                    // needs: it gets a snapshot, and dies while installing it.
                    self.counts.snapshots += 1;
                    let follower = (0..cluster.size()).find(|i| Some(*i) != leader).unwrap_or(target);
                    let name = cluster.members[follower].name.clone();
                    self.log(&format!("SIGKILL {name}, restart it far behind, kill it again while it catches up"));
                    cluster.kill(follower);
                    self.pause_for(4000, 6000).await;
                    cluster.restart(follower)?;
                    self.pause_for(50, 600).await;
                    cluster.kill(follower);
                    self.pause_for(500, 1500).await;
                }
            }
            self.heal(cluster)?;
        }
        self.heal(cluster)
    }

    fn heal(&mut self, cluster: &mut ChaosCluster) -> Result<()> {
        let dead: Vec<usize> = (0..cluster.size()).filter(|i| cluster.state(*i) == State::Dead).collect();
        if cluster.net.is_faulty() || !dead.is_empty() || (0..cluster.size()).any(|i| cluster.state(i) == State::Paused)
        {
            self.log("heal: network restored, members resumed and restarted");
        }
        cluster.heal_all()
    }
}
