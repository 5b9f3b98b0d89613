//! Runs the real `etcdctl` (v3 API) and captures what it prints.

use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout, panicking with everything etcdctl said if it failed.
    pub fn expect_ok(self, what: &str) -> String {
        assert!(self.ok, "etcdctl {what} failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("etcdctl output is not JSON ({e}): {}", self.stdout))
    }
}

/// `etcdctl --endpoints=<endpoints> <args…>` with optional stdin.
pub fn run(endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    run_cmd(Command::new("etcdctl"), endpoints, args, stdin)
}

/// Like `run`, but stopped after `secs` seconds (for commands that never end, like watch).
pub fn run_for(secs: u32, endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg(secs.to_string()).arg("etcdctl");
    run_cmd(cmd, endpoints, args, stdin)
}

fn run_cmd(mut cmd: Command, endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=15s")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run etcdctl: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("etcdctl did not finish: {e}"));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
