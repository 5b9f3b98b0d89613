//! The processes: three servers that joined through the first, two agents
//! that joined with the token, and the means to kill, restart and pause
//! them. Every process is killed when the cluster is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::components::Component;
use crate::etcdctl;
use crate::kube_cluster::{Apiserver, ServerSpec};

/// Leader election of the servers' controller-manager and scheduler:
/// short, so that a run sees many moves.
pub const LEASE_DURATION: Duration = Duration::from_secs(4);
const ELECTION_FLAGS: [&str; 6] =
    ["--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "1s"];

pub struct Server {
    pub spec: ServerSpec,
    pub process: Option<Apiserver>,
}

pub struct ControlPlane {
    pub dir: PathBuf,
    pub servers: Vec<Server>,
    pub agents: Vec<Component>,
    pub nodes: Vec<String>,
    pub token: String,
}

impl ControlPlane {
    pub fn start(dir: &Path) -> Result<ControlPlane> {
        let specs: Vec<ServerSpec> = ["s1", "s2", "s3"].iter().map(|n| ServerSpec::new(dir, n)).collect();
        let first = Apiserver::member(&specs[0], &[&["--cluster-init"][..], &ELECTION_FLAGS].concat());
        let token = std::fs::read_to_string(specs[0].dir.join("token")).context("the first server's token")?;
        let token = token.trim().to_string();
        let mut processes = vec![first];
        for spec in &specs[1..] {
            let join = ["--server", &specs[0].url(), "--token", &token];
            processes.push(Apiserver::member(spec, &[&join[..], &ELECTION_FLAGS].concat()));
        }
        let servers = specs.into_iter().zip(processes).map(|(spec, p)| Server { spec, process: Some(p) }).collect();
        let mut plane = ControlPlane { dir: dir.to_path_buf(), servers, agents: Vec::new(), nodes: Vec::new(), token };
        for i in 1..=2 {
            let node = format!("cp-chaos-{}-{i}", std::process::id());
            let url = plane.servers[i].spec.url();
            plane.agents.push(Component::joined_agent(&dir.join(format!("agent-{i}")), &url, &plane.token, &node));
            plane.nodes.push(node);
        }
        Ok(plane)
    }

    /// Server flags for a restart: its data dir remembers the rest.
    pub fn restart(&mut self, i: usize) {
        let server = &mut self.servers[i];
        if server.process.is_none() {
            server.process = Some(Apiserver::member(&server.spec, &ELECTION_FLAGS));
        }
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.servers[i].process.take() {
            process.kill();
        }
    }

    /// SIGSTOP or SIGCONT.
    pub fn signal(&self, i: usize, signal: &str) -> Result<()> {
        let pid = self.servers[i].process.as_ref().and_then(Apiserver::pid).context("the server is not running")?;
        let status = Command::new("kill").args([signal, &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    pub fn kubeconfig(&self, i: usize) -> PathBuf {
        self.servers[i].spec.dir.join("admin.kubeconfig")
    }

    /// The server whose store member leads, asked of every running member.
    pub fn store_leader(&self) -> Option<usize> {
        (0..self.servers.len()).filter(|i| self.servers[*i].process.is_some()).find(|i| {
            let out =
                etcdctl::run(&self.servers[*i].spec.store_endpoint(), &["endpoint", "status", "-w", "json"], None);
            out.ok
                && serde_json::from_str::<serde_json::Value>(&out.stdout).ok().is_some_and(|v| {
                    let s = &v[0]["Status"];
                    s["leader"].as_u64().is_some_and(|l| Some(l) == s["header"]["member_id"].as_u64())
                })
        })
    }

    /// The server whose process holds `identity` (it logged "became leader" with it).
    pub fn holder(&self, identity: &str) -> Option<usize> {
        (0..self.servers.len()).find(|i| {
            let log = std::fs::read_to_string(self.servers[*i].spec.dir.join("capstan.log")).unwrap_or_default();
            log.lines().any(|l| l.contains("became leader") && l.contains(identity))
        })
    }

    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for server in &self.servers {
            if let Some(p) = &server.process {
                out.push_str(&format!("--- {}\n{}\n", server.spec.name, p.log_tail()));
            }
        }
        for agent in &self.agents {
            out.push_str(&format!("--- agent\n{}\n", agent.log_tail()));
        }
        out
    }
}
