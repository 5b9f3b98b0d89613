//! The cluster's other processes for end-to-end tests: `capstan
//! controller-manager`, `capstan scheduler` and `capstan agent` against an
//! [`Apiserver`], and the real containerd through `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::capstan_bin;
use crate::kube_cluster::Apiserver;

/// The containerd socket that ops/deploy/containerd-setup.sh prepares.
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// One running component process; killed when dropped.
pub struct Component {
    child: Option<Child>,
    log: PathBuf,
}

impl Component {
    /// `capstan controller-manager` with the server's controller-manager identity.
    pub fn controller_manager(server: &Apiserver, name: &str) -> Component {
        let kubeconfig = server.data_dir.join("controller-manager.kubeconfig");
        Component::spawn(&server.data_dir, name, &["controller-manager", "--kubeconfig", &path(&kubeconfig)])
    }

    /// `capstan scheduler` with the server's scheduler identity.
    pub fn scheduler(server: &Apiserver, name: &str) -> Component {
        let kubeconfig = server.data_dir.join("scheduler.kubeconfig");
        Component::spawn(&server.data_dir, name, &["scheduler", "--kubeconfig", &path(&kubeconfig)])
    }

    /// `capstan agent` for node `node` on the machine's containerd. Fails
    /// the test at once when containerd is not prepared: these tests must
    /// run, not skip, where the test command has set it up.
    pub fn agent(server: &Apiserver, node: &str) -> Component {
        assert!(
            Path::new(CONTAINERD_SOCKET).exists(),
            "no containerd at {CONTAINERD_SOCKET}: run ops/deploy/containerd-setup.sh (as root) first"
        );
        let kubeconfig = server.data_dir.join("kubelet.kubeconfig");
        let endpoint = format!("unix://{CONTAINERD_SOCKET}");
        let args = ["agent", "--kubeconfig", &path(&kubeconfig), "--node-name", node];
        let args: Vec<&str> = args.into_iter().chain(["--container-runtime-endpoint", &endpoint]).collect();
        Component::spawn(&server.data_dir, &format!("agent-{node}"), &args)
    }

    /// `capstan agent` joining with the token through `server_url`, its
    /// credentials and API load balancer state in `dir`.
    pub fn joined_agent(dir: &Path, server_url: &str, token: &str, node: &str) -> Component {
        assert!(
            Path::new(CONTAINERD_SOCKET).exists(),
            "no containerd at {CONTAINERD_SOCKET}: run ops/deploy/containerd-setup.sh (as root) first"
        );
        std::fs::create_dir_all(dir).expect("agent dir");
        let endpoint = format!("unix://{CONTAINERD_SOCKET}");
        let args = ["agent", "--server", server_url, "--token", token, "--node-name", node, "--data-dir", &path(dir)];
        let args: Vec<&str> = args.into_iter().chain(["--container-runtime-endpoint", &endpoint]).collect();
        Component::spawn(dir, &format!("agent-{node}"), &args)
    }

    fn spawn(dir: &Path, name: &str, args: &[&str]) -> Component {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(capstan_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", capstan_bin().display()));
        Component { child: Some(child), log }
    }

    /// Stops the process the hard way: no lease release, no cleanup.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log();
        text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill();
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// containerd's containers (CRI's namespace) carrying every one of
/// `labels`, as `ctr -n k8s.io containers ls` lists them.
pub fn containerd_containers(labels: &[(&str, &str)]) -> Vec<String> {
    let filter: Vec<String> = labels.iter().map(|(key, value)| format!("labels.\"{key}\"==\"{value}\"")).collect();
    let out = Command::new("ctr")
        .args(["-n", "k8s.io", "containers", "ls", "-q", &filter.join(",")])
        .output()
        .expect("running ctr");
    assert!(out.status.success(), "ctr containers ls: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}
