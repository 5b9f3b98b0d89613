//! A store cluster with TLS on its client and peer URLs: certificates made
//! by `capstan certs create`, client certificates required on both, and
//! etcdctl given `--cacert/--cert/--key`. Every process started is killed
//! when the cluster is dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::etcdctl::{self, Output};
use crate::store_cluster::MemberSpec;
use crate::{capstan_bin, failure, free_port, wait_for};

/// The client certificate `TlsCluster` makes for etcdctl.
pub const ADMIN: &str = "admin";

/// Runs `capstan certs create --dir <dir> <args…>`, which must succeed.
pub fn create_certs(dir: &Path, args: &[String]) -> String {
    let out = Command::new(capstan_bin())
        .args(["certs", "create", "--dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run capstan certs create: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "capstan certs create {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The etcdctl flags for a client certificate `name` in `dir`, trusting the CA of `ca_dir`.
pub fn etcdctl_tls(ca_dir: &Path, cert: Option<(&Path, &str)>) -> Vec<String> {
    let mut flags = vec![format!("--cacert={}", ca_dir.join("ca.crt").display())];
    if let Some((dir, name)) = cert {
        flags.push(format!("--cert={}", dir.join(format!("{name}.crt")).display()));
        flags.push(format!("--key={}", dir.join(format!("{name}.key")).display()));
    }
    flags
}

pub struct TlsCluster {
    pub dir: tempfile::TempDir,
    /// ca.crt, one certificate per member (m1…) and `admin`'s.
    pub certs: PathBuf,
    pub members: Vec<MemberSpec>,
    procs: Vec<Option<Child>>,
    token: String,
}

impl TlsCluster {
    /// Makes the certificates, starts `n` members and waits for a leader.
    pub fn start(n: usize) -> TlsCluster {
        failure::remember_panics();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let members: Vec<MemberSpec> = (0..n).map(|i| MemberSpec::new(dir.path(), format!("m{}", i + 1))).collect();
        let certs = dir.path().join("certs");
        let mut args: Vec<String> = members.iter().map(|m| format!("--member={}={}", m.name, m.host)).collect();
        args.push(format!("--client={ADMIN}"));
        create_certs(&certs, &args);
        let mut c = TlsCluster {
            procs: (0..n).map(|_| None).collect(),
            dir,
            certs,
            members,
            token: format!("tls-{}", free_port()),
        };
        for i in 0..n {
            let child = c.spawn(i, "new", &c.certs.clone());
            c.procs[i] = Some(child);
        }
        c.wait_leader();
        c
    }

    pub fn client_url(&self, i: usize) -> String {
        format!("https://{}:{}", self.members[i].host, self.members[i].client_port)
    }

    pub fn peer_url(&self, i: usize) -> String {
        format!("https://{}:{}", self.members[i].host, self.members[i].peer_port)
    }

    /// Every member's https:// client URL, comma-separated.
    pub fn endpoints(&self) -> String {
        (0..self.members.len()).map(|i| self.client_url(i)).collect::<Vec<_>>().join(",")
    }

    fn initial_cluster(&self) -> String {
        (0..self.members.len())
            .map(|i| format!("{}={}", self.members[i].name, self.peer_url(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[i].name))
    }

    /// A member's log so far, without terminal colours.
    pub fn log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        strip_ansi(&text)
    }

    /// Starts member `i`, its certificate (`<name>.crt`) taken from `cert_dir`;
    /// the CA it trusts is always the cluster's.
    fn spawn(&self, i: usize, state: &str, cert_dir: &Path) -> Child {
        let m = &self.members[i];
        let log = File::create(self.log_path(i)).unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        let cert = cert_dir.join(format!("{}.crt", m.name));
        let key = cert_dir.join(format!("{}.key", m.name));
        let ca = self.certs.join("ca.crt");
        Command::new(capstan_bin())
            .arg("store")
            .arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", m.data_dir.display()))
            .arg(format!("--listen-client-urls={}", self.client_url(i)))
            .arg(format!("--listen-peer-urls={}", self.peer_url(i)))
            .arg(format!("--initial-cluster={}", self.initial_cluster()))
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg(format!("--initial-cluster-state={state}"))
            .arg(format!("--cert-file={}", cert.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--trusted-ca-file={}", ca.display()))
            .arg("--client-cert-auth")
            .arg(format!("--peer-cert-file={}", cert.display()))
            .arg(format!("--peer-key-file={}", key.display()))
            .arg(format!("--peer-trusted-ca-file={}", ca.display()))
            .arg("--peer-client-cert-auth")
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", capstan_bin().display()))
    }

    /// etcdctl as `admin` against `endpoints`.
    pub fn etcdctl(&self, endpoints: &str, args: &[&str]) -> Output {
        let mut all = etcdctl_tls(&self.certs, Some((&self.certs, ADMIN)));
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        etcdctl::run(endpoints, &all, None)
    }

    /// The index of the member that reports itself leader.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).filter(|i| self.procs[*i].is_some()).find(|i| {
            let out = self.etcdctl(&self.client_url(*i), &["endpoint", "status", "-w", "json"]);
            out.ok
                && serde_json::from_str::<serde_json::Value>(&out.stdout).ok().is_some_and(|v| {
                    let s = &v[0]["Status"];
                    s["leader"].as_u64().is_some_and(|l| Some(l) == s["header"]["member_id"].as_u64())
                })
        })
    }

    pub fn wait_leader(&self) -> usize {
        wait_for(Duration::from_secs(30), "a leader to be elected over TLS", || self.leader())
    }

    /// Adds a member spec (not started) and returns its index.
    pub fn add_spec(&mut self) -> usize {
        let i = self.members.len();
        self.members.push(MemberSpec::new(self.dir.path(), format!("m{}", i + 1)));
        self.procs.push(None);
        i
    }

    /// Starts an added member with `--initial-cluster-state existing`, its
    /// own certificate taken from `cert_dir`.
    pub fn start_joining(&mut self, i: usize, cert_dir: &Path) {
        let child = self.spawn(i, "existing", cert_dir);
        self.procs[i] = Some(child);
    }

    /// Waits for member `i` to exit on its own; its exit status.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
        let proc = self.procs[i].as_mut().unwrap_or_else(|| panic!("member {i} was not started"));
        let status = wait_for(timeout, "the member to exit", || proc.try_wait().ok().flatten());
        self.procs[i] = None;
        status
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().flatten() {
            let _ = p.kill();
            let _ = p.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.members.len() {
                let log = self.log(i);
                let lines: Vec<&str> = log.lines().filter(|l| !l.trim_start().starts_with("at ")).collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!("--- log of {} (last lines)\n{tail}", self.members[i].name);
            }
            failure::repeat();
        }
    }
}

/// Removes the colour codes the log formatter writes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence ends with its first letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
