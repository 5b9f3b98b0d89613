//! Runs `capstan ctl` or the real `etcdctl` with the same arguments and
//! captures what each printed and its exit code, for side-by-side tests.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use crate::capstan_bin;

/// Which client runs the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// `capstan ctl`
    Ctl,
    /// The real `etcdctl` (v3 API).
    Etcdctl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code (None if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout, panicking with everything the client said if it failed.
    pub fn expect_ok(self, what: &str) -> String {
        assert_eq!(self.code, Some(0), "{what} failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }
}

impl Client {
    /// The command line up to the global flags: `capstan ctl --endpoints=… …`.
    pub fn command(self, endpoints: &str) -> Command {
        let mut cmd = match self {
            Client::Ctl => {
                let mut cmd = Command::new(capstan_bin());
                cmd.arg("ctl");
                cmd
            }
            Client::Etcdctl => {
                let mut cmd = Command::new("etcdctl");
                cmd.env("ETCDCTL_API", "3");
                cmd
            }
        };
        cmd.arg(format!("--endpoints={endpoints}")).arg("--command-timeout=15s");
        cmd
    }

    /// Runs one command to its end, with optional stdin.
    pub fn run(self, endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(endpoints)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {self:?}: {e}"));
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{self:?} did not finish: {e}"));
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts a command that runs until stopped (watch), stdout piped.
    pub fn spawn(self, endpoints: &str, args: &[&str]) -> Child {
        self.command(endpoints)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {self:?}: {e}"))
    }
}
