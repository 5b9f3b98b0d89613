//! The cluster test harness: real `capstan store` processes on 127.0.0.1
//! with ports picked from the OS, the real `etcdctl` as client, and waits on
//! conditions with a reason and a timeout (never bare sleeps).
//!
//! The `capstan` binary is found beside the test executable's target dir
//! (`cargo build -p capstan` first), or at `$CAPSTAN_BIN`.

pub mod chaos;
pub mod components;
pub mod cp_chaos;
pub mod ctl;
pub mod etcdctl;
pub mod failure;
pub mod kube_cluster;
pub mod store_cluster;
pub mod tls_cluster;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of the `capstan` binary under test.
pub fn capstan_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CAPSTAN_BIN") {
        return PathBuf::from(p);
    }
    // A test executable is target/<profile>/deps/<test>, a binary such as
    // `chaos` is target/<profile>/chaos; capstan is target/<profile>/capstan.
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") { dir.parent().map(PathBuf::from).unwrap_or_default() } else { dir }.join("capstan")
}

/// A free TCP port on 127.0.0.1 for a server the test starts.
///
/// Ports come from a range below the kernel's ephemeral range (32768 and
/// up), so no client connection can take one between this check and the
/// server's bind; each test process walks its own slice of the range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 12) as u16 * 1000;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `cond` until it returns Some, or panics with `reason` after `timeout`.
pub fn wait_for<T>(timeout: Duration, reason: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {reason}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when a program is on PATH; prints why a test is skipped when not.
pub fn have(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("SKIPPED: {program} is not installed (the README test command installs it)");
    }
    found
}
