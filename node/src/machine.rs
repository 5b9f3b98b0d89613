//! What the Node reports about the machine: CPUs, memory, kernel, OS image,
//! ids and the node's IP, read from /proc and /etc.

use std::net::IpAddr;

use crate::Error;

/// Facts about this machine, read once at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub memory_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub ip: Option<IpAddr>,
}

impl Machine {
    /// Reads the machine; `node_ip` overrides the detected address.
    pub fn read(node_ip: Option<IpAddr>) -> Result<Machine, Error> {
        let meminfo = read("/proc/meminfo")?;
        Ok(Machine {
            cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            memory_bytes: mem_total_bytes(&meminfo).unwrap_or(0),
            kernel_version: read("/proc/sys/kernel/osrelease")?.trim().to_string(),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|text| pretty_name(&text))
                .unwrap_or_else(|| "Linux".to_string()),
            machine_id: std::fs::read_to_string("/etc/machine-id").unwrap_or_default().trim().to_string(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_string(),
            ip: node_ip.or_else(default_route_ip),
        })
    }
}

fn read(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Machine { path: path.to_string(), source })
}

/// `MemTotal:  24684220 kB` in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"` from os-release.
fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_string())
}

/// The source address of the default route: connecting a UDP socket sends
/// nothing but makes the kernel pick it.
fn default_route_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:1").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Kubernetes' name for the machine architecture (GOARCH).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_os_release() {
        assert_eq!(mem_total_bytes("MemTotal:       1024 kB\nMemFree: 1 kB\n"), Some(1024 * 1024));
        assert_eq!(mem_total_bytes("nothing"), None);
        assert_eq!(
            pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn kubernetes_arch_names() {
        assert!(!go_arch().is_empty());
        assert_ne!(go_arch(), "x86_64");
    }
}
