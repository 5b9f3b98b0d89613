//! The cluster under test: three `capstan store` processes, each in its own
//! network namespace, and the process faults (SIGKILL, SIGSTOP/SIGCONT,
//! restart) the nemesis applies to them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use capstan_proto::etcdserverpb::StatusRequest;
use capstan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use tonic::transport::Channel;

use super::netns::Network;
use crate::store_cluster::MemberSpec;

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;

/// Flags that make faults bite: a small snapshot count, so that a member down
/// for a few seconds falls behind the purged log and catches up by snapshot.
const STORE_FLAGS: &[&str] = &["--snapshot-count=500", "--snapshot-catchup-entries=100"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Dead,
}

pub struct ChaosCluster {
    pub net: Network,
    pub members: Vec<MemberSpec>,
    procs: Vec<Option<Child>>,
    paused: Vec<bool>,
    /// Members that exited without being killed: always a bug.
    pub crashes: Vec<String>,
    dir: PathBuf,
    token: String,
}

impl ChaosCluster {
    /// Creates the network and starts every member.
    pub fn start(n: usize, dir: &Path) -> Result<ChaosCluster> {
        let net = Network::create(n)?;
        let members = (0..n)
            .map(|i| MemberSpec::at(dir, format!("m{}", i + 1), &net.address(i), CLIENT_PORT, PEER_PORT))
            .collect();
        let mut c = ChaosCluster {
            net,
            members,
            procs: (0..n).map(|_| None).collect(),
            paused: vec![false; n],
            crashes: Vec::new(),
            dir: dir.to_path_buf(),
            token: format!("chaos-{}", std::process::id()),
        };
        for i in 0..n {
            c.spawn(i)?;
        }
        Ok(c)
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    pub fn client_url(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.members[i].name))
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let initial: Vec<String> = self.members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect();
        let log = File::options().create(true).append(true).open(self.log_path(i))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.net.namespace(i)])
            .arg(crate::capstan_bin())
            .arg("store")
            .args(self.members[i].flags(&initial.join(","), &self.token))
            .args(STORE_FLAGS)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", crate::capstan_bin().display()))?;
        self.procs[i] = Some(child);
        self.paused[i] = false;
        Ok(())
    }

    pub fn state(&mut self, i: usize) -> State {
        let exited = match self.procs[i].as_mut() {
            None => return State::Dead,
            Some(p) => p.try_wait().ok().flatten(),
        };
        if let Some(status) = exited {
            self.procs[i] = None;
            let name = &self.members[i].name;
            self.crashes.push(format!("{name} exited by itself ({status}); its log ends:\n{}", self.log_tail(i, 30)));
            State::Dead
        } else if self.paused[i] {
            State::Paused
        } else {
            State::Running
        }
    }

    /// The members that exited on their own so far.
    pub fn take_crashes(&mut self) -> Vec<String> {
        for i in 0..self.size() {
            self.state(i);
        }
        std::mem::take(&mut self.crashes)
    }

    /// SIGKILL, no warning.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        self.paused[i] = false;
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.state(i) == State::Dead { self.spawn(i) } else { Ok(()) }
    }

    /// SIGSTOP: the member keeps its sockets but answers nothing.
    pub fn pause(&mut self, i: usize) {
        if self.state(i) == State::Running {
            self.signal(i, "-STOP");
            self.paused[i] = true;
        }
    }

    pub fn resume(&mut self, i: usize) {
        if self.state(i) == State::Paused {
            self.signal(i, "-CONT");
            self.paused[i] = false;
        }
    }

    fn signal(&self, i: usize, sig: &str) {
        if let Some(p) = &self.procs[i] {
            let _ = Command::new("kill").args([sig, &p.id().to_string()]).status();
        }
    }

    /// Undoes every fault: network healed, paused members resumed, dead ones restarted.
    pub fn heal_all(&mut self) -> Result<()> {
        self.net.heal()?;
        for i in 0..self.size() {
            self.resume(i);
            self.restart(i)?;
        }
        Ok(())
    }

    /// How many snapshots members installed from their leader, by their logs.
    pub fn snapshot_installs(&self) -> usize {
        (0..self.size())
            .map(|i| {
                std::fs::read_to_string(self.log_path(i)).unwrap_or_default().matches("installed snapshot").count()
            })
            .sum()
    }

    /// The last lines of a member's log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ChaosCluster {
    fn drop(&mut self) {
        for i in 0..self.size() {
            self.resume(i);
            self.kill(i);
        }
    }
}

/// A channel to a member that gives up quickly when the member is down.
pub fn channel(url: &str) -> Result<Channel> {
    Ok(Channel::from_shared(url.to_string())?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Which member (index) the member at `url` believes leads, with its member id.
pub async fn status(url: &str) -> Option<(u64, u64)> {
    let mut m = MaintenanceClient::new(channel(url).ok()?);
    let mut req = tonic::Request::new(StatusRequest {});
    req.set_timeout(Duration::from_millis(800));
    let s = m.status(req).await.ok()?.into_inner();
    Some((s.header?.member_id, s.leader))
}

/// The first member that reports itself leader (an isolated old leader may
/// still believe it leads until its lease runs out).
pub async fn leader(urls: &[String]) -> Option<usize> {
    for (i, url) in urls.iter().enumerate() {
        if let Some((me, leader)) = status(url).await
            && me == leader
        {
            return Some(i);
        }
    }
    None
}
