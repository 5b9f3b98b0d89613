//! Control planes for apiserver tests: `capstan server` (embedded store and
//! apiserver), or `capstan apiserver` replicas over a store cluster; the
//! real kubectl and the `kube` crate as clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::{capstan_bin, free_port};

/// One running `capstan server` or `capstan apiserver` process.
pub struct Apiserver {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Apiserver {
    /// A control-plane member: embedded single-member store plus apiserver.
    pub fn server(dir: &Path) -> Apiserver {
        Apiserver::server_with(dir, &[])
    }

    /// A control-plane member serving the API only: for tests that run the
    /// controllers or the scheduler themselves, in-process.
    pub fn api_only(dir: &Path) -> Apiserver {
        Apiserver::server_with(dir, &["--disable-controller-manager", "--disable-scheduler"])
    }

    /// `capstan server` with extra flags.
    pub fn server_with(dir: &Path, extra: &[&str]) -> Apiserver {
        Apiserver::server_with_store_scheme(dir, "http", extra)
    }

    /// `capstan server` whose store serves clients over `scheme` (http or https).
    pub fn server_with_store_scheme(dir: &Path, scheme: &str, extra: &[&str]) -> Apiserver {
        let port = free_port();
        let (client, peer) = (free_port(), free_port());
        let args = vec![
            "server".to_string(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--secure-port".into(),
            port.to_string(),
            "--listen-client-urls".into(),
            format!("{scheme}://127.0.0.1:{client}"),
            "--listen-peer-urls".into(),
            format!("http://127.0.0.1:{peer}"),
        ];
        let args = args.into_iter().chain(extra.iter().map(|a| a.to_string())).collect();
        Apiserver::spawn(dir, port, args)
    }

    /// A stateless replica over `store_endpoints`, sharing `pki_dir`.
    pub fn replica(dir: &Path, store_endpoints: &str, pki_dir: &Path) -> Apiserver {
        Apiserver::replica_with(dir, store_endpoints, pki_dir, &[])
    }

    /// A replica with extra flags (e.g. the store's TLS).
    pub fn replica_with(dir: &Path, store_endpoints: &str, pki_dir: &Path, extra: &[&str]) -> Apiserver {
        let port = free_port();
        let mut args = vec![
            "apiserver".to_string(),
            "--store-endpoints".into(),
            store_endpoints.to_string(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--pki-dir".into(),
            pki_dir.display().to_string(),
            "--secure-port".into(),
            port.to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        Apiserver::spawn(dir, port, args)
    }

    /// One server of a multi-server cluster, placed by `spec`.
    pub fn member(spec: &ServerSpec, extra: &[&str]) -> Apiserver {
        Apiserver::spawn(&spec.dir, spec.port, spec.args(extra))
    }

    fn spawn(dir: &Path, port: u16, args: Vec<String>) -> Apiserver {
        std::fs::create_dir_all(dir).expect("data dir");
        let log = dir.join("capstan.log");
        // Appended to: a restarted server's log follows its previous run's.
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let child = Command::new(capstan_bin())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", capstan_bin().display()));
        let server = Apiserver { child: Some(child), port, data_dir: dir.to_path_buf(), log };
        server.wait_ready();
        server
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the apiserver did not become ready: {}\nlog:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs kubectl with this server's admin kubeconfig and a private cache.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.data_dir.join("kubectl-cache"))
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl as the holder of a bearer token (no client certificate).
    pub fn kubectl_with_token(&self, token: &str, args: &[&str]) -> Output {
        let tag: String = token.chars().filter(char::is_ascii_alphanumeric).collect();
        let kubeconfig = self.data_dir.join(format!("token-{tag}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
             certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  \
             context: {{cluster: c, user: u}}\ncurrent-context: x\n",
            self.url(),
            self.pki_dir().join("ca.crt").display()
        );
        std::fs::write(&kubeconfig, text).expect("token kubeconfig");
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(self.data_dir.join("kubectl-cache"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs")
    }

    /// kubectl that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        succeeded(args, self.kubectl(args))
    }

    /// kubectl that must fail; its stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {} succeeded: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// kubectl fed a manifest on stdin (`-f -`), which must succeed.
    pub fn kubectl_apply(&self, args: &[&str], manifest: &str) -> String {
        succeeded(args, self.kubectl_with_input(args, Some(manifest)))
    }

    /// A `kube` client authenticated as the admin.
    pub async fn client(&self) -> kube::Client {
        self.client_as("admin.kubeconfig").await
    }

    /// A `kube` client with one of the kubeconfigs the server writes into
    /// its data directory (`scheduler.kubeconfig`, `kubelet.kubeconfig`, …).
    pub async fn client_as(&self, kubeconfig: &str) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.data_dir.join(kubeconfig)).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
        kube::Client::try_from(config).expect("client")
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The process id while it runs (to pause it with SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, as systemd stops a server, and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the server did not stop within 30 s of SIGTERM:\n{}", self.log_tail());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where one `capstan server` of a multi-server cluster lives: its own data
/// dir and ports on 127.0.0.1, its store peers over https.
pub struct ServerSpec {
    pub name: String,
    pub dir: PathBuf,
    pub port: u16,
    pub client_port: u16,
    pub peer_port: u16,
}

impl ServerSpec {
    pub fn new(root: &Path, name: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            dir: root.join(name),
            port: free_port(),
            client_port: free_port(),
            peer_port: free_port(),
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The store member's client URL (etcdctl --endpoints).
    pub fn store_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "server".to_string(),
            format!("--name={}", self.name),
            format!("--data-dir={}", self.dir.display()),
            format!("--secure-port={}", self.port),
            format!("--listen-client-urls=http://127.0.0.1:{}", self.client_port),
            format!("--listen-peer-urls=https://127.0.0.1:{}", self.peer_port),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// Runs a start that must fail (a refused join); what it printed.
    pub fn start_expecting_failure(&self, extra: &[&str]) -> String {
        let out = Command::new(capstan_bin())
            .args(self.args(extra))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("starting {}: {e}", capstan_bin().display()));
        assert!(!out.status.success(), "the server started, but should have been refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The stdout of a kubectl run that must have succeeded.
fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        self.kill();
    }
}
