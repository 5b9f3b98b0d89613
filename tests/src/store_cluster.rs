//! A cluster of `capstan store` processes (or one etcd member, for
//! differential tests) on 127.0.0.1. Every process started is killed when
//! the cluster is dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{capstan_bin, etcdctl, failure, free_port, wait_for};

pub struct MemberSpec {
    pub name: String,
    /// The address the member listens on (127.0.0.1, or a network namespace's).
    pub host: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
}

impl MemberSpec {
    /// A member named `name` with OS-picked ports and its data under `dir`.
    pub fn new(dir: &Path, name: String) -> MemberSpec {
        MemberSpec::at(dir, name, "127.0.0.1", free_port(), free_port())
    }

    /// A member listening on `host` with the given ports.
    pub fn at(dir: &Path, name: String, host: &str, client_port: u16, peer_port: u16) -> MemberSpec {
        MemberSpec { host: host.to_string(), client_port, peer_port, data_dir: dir.join(&name), name }
    }

    pub fn client_url(&self) -> String {
        format!("http://{}:{}", self.host, self.client_port)
    }
    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", self.host, self.peer_port)
    }
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    /// The etcd flags that place this member; capstan and etcd share them.
    pub fn flags(&self, initial_cluster: &str, token: &str) -> Vec<String> {
        vec![
            format!("--name={}", self.name),
            format!("--data-dir={}", self.data_dir.display()),
            format!("--listen-client-urls={}", self.client_url()),
            format!("--advertise-client-urls={}", self.client_url()),
            format!("--listen-peer-urls={}", self.peer_url()),
            format!("--initial-advertise-peer-urls={}", self.peer_url()),
            format!("--initial-cluster={initial_cluster}"),
            format!("--initial-cluster-token={token}"),
        ]
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<MemberSpec>,
    procs: Vec<Option<Child>>,
    /// Extra flags for every member (e.g. a small --snapshot-count).
    pub extra_args: Vec<String>,
    pub token: String,
}

impl Cluster {
    /// Starts `n` members and waits until they have a leader.
    pub fn start(n: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_some(n, n, extra_args)
    }

    /// A cluster of `n` members of which only the first `started` run
    /// (the others can be started later with `restart`).
    pub fn start_some(n: usize, started: usize, extra_args: &[&str]) -> Cluster {
        let mut c = Cluster::prepare(n, extra_args);
        for i in 0..started {
            c.restart(i);
        }
        c.wait_leader();
        c
    }

    /// The specs of an `n`-member cluster, none started (to fill their data
    /// dirs first, e.g. by a restore; `restart` starts them).
    pub fn prepare(n: usize, extra_args: &[&str]) -> Cluster {
        failure::remember_panics();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let members = (0..n).map(|i| MemberSpec::new(dir.path(), format!("m{}", i + 1))).collect();
        Cluster {
            dir,
            members,
            procs: (0..n).map(|_| None).collect(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            token: format!("test-{}", free_port()),
        }
    }

    pub fn initial_cluster(&self) -> String {
        self.members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect::<Vec<_>>().join(",")
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[i].name))
    }

    fn spawn(&self, i: usize, state: &str) -> Child {
        let m = &self.members[i];
        let log =
            File::options().create(true).append(true).open(self.log_path(i)).unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        Command::new(capstan_bin())
            .arg("store")
            .args(m.flags(&self.initial_cluster(), &self.token))
            .arg(format!("--initial-cluster-state={state}"))
            .args(&self.extra_args)
            .env("RUST_LOG", "info,openraft=info")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", capstan_bin().display()))
    }

    /// All client endpoints, comma-separated (etcdctl --endpoints).
    pub fn endpoints(&self) -> String {
        self.members.iter().map(|m| m.endpoint()).collect::<Vec<_>>().join(",")
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.procs.get(i).is_some_and(|p| p.is_some())
    }

    /// The index of the member that reports itself leader.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).filter(|i| self.is_running(*i)).find(|i| {
            let out = etcdctl::run(&self.members[*i].endpoint(), &["endpoint", "status", "-w", "json"], None);
            out.ok
                && serde_json::from_str::<serde_json::Value>(&out.stdout).ok().is_some_and(|v| {
                    let s = &v[0]["Status"];
                    s["leader"].as_u64().is_some_and(|l| Some(l) == s["header"]["member_id"].as_u64())
                })
        })
    }

    pub fn wait_leader(&self) -> usize {
        wait_for(Duration::from_secs(30), "a leader to be elected", || self.leader())
    }

    /// The process id of a running member (to pause it with SIGSTOP).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs[i].as_ref().map(Child::id)
    }

    /// SIGTERM, as systemd stops a member, and waits for it to exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            let _ = Command::new("kill").args(["-TERM", &p.id().to_string()]).status();
            let exited = wait_for_exit(&mut p, Duration::from_secs(20));
            assert!(exited, "member {} did not stop within 20 s of SIGTERM", self.members[i].name);
        }
    }

    /// SIGKILL, no warning.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// Starts a member that is not running (killed, or never started) from its data dir.
    pub fn restart(&mut self, i: usize) {
        assert!(!self.is_running(i), "member {i} is still running");
        let child = self.spawn(i, "new");
        self.procs[i] = Some(child);
    }

    /// Adds a member spec (not started) and returns its index.
    pub fn add_spec(&mut self) -> usize {
        let i = self.members.len();
        self.members.push(MemberSpec::new(self.dir.path(), format!("m{}", i + 1)));
        self.procs.push(None);
        i
    }

    /// Starts an added member with `--initial-cluster-state existing`.
    pub fn start_joining(&mut self, i: usize) {
        let child = self.spawn(i, "existing");
        self.procs[i] = Some(child);
    }

    /// Runs a start that is expected to fail and returns what it printed.
    pub fn start_expecting_failure(&self, data_dir: &Path, name: &str, token: &str) -> String {
        let m = &self.members[0];
        let out = Command::new(capstan_bin())
            .arg("store")
            .arg(format!("--name={name}"))
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{}", free_port()))
            .arg(format!("--listen-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-cluster={}", self.initial_cluster()))
            .arg(format!("--initial-cluster-token={token}"))
            .output()
            .unwrap_or_else(|e| panic!("cannot start capstan: {e}"));
        assert!(!out.status.success(), "capstan started on a data dir it should have refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The last lines of a member's log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        // Backtrace frames say little; the error above them says what happened.
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("at ") || t.split_once(':').is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit())))
            })
            .collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

fn wait_for_exit(p: &mut Child, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if p.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = p.kill();
    let _ = p.wait();
    false
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        // A failing test shows what every member logged.
        if std::thread::panicking() {
            for i in 0..self.members.len() {
                eprintln!("--- log of {} (last lines)\n{}", self.members[i].name, self.log_tail(i));
            }
            failure::repeat();
        }
    }
}

/// A real etcd cluster (Debian's etcd-server), the reference for differential tests.
pub struct EtcdCluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<MemberSpec>,
    procs: Vec<Child>,
}

impl EtcdCluster {
    pub fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let members: Vec<MemberSpec> = (0..n).map(|i| MemberSpec::new(dir.path(), format!("m{}", i + 1))).collect();
        let initial = members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect::<Vec<_>>().join(",");
        let procs = members
            .iter()
            .map(|m| {
                let log =
                    File::create(dir.path().join(format!("{}.log", m.name))).unwrap_or_else(|e| panic!("log: {e}"));
                Command::new("etcd")
                    .args(m.flags(&initial, "etcd-reference"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::from(log))
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start etcd: {e}"))
            })
            .collect();
        let c = EtcdCluster { dir, members, procs };
        let eps = c.endpoints();
        wait_for(Duration::from_secs(30), "etcd to be healthy", || {
            etcdctl::run(&eps, &["endpoint", "health"], None).ok.then_some(())
        });
        c
    }

    pub fn endpoints(&self) -> String {
        self.members.iter().map(|m| m.endpoint()).collect::<Vec<_>>().join(",")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}
