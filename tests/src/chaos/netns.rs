//! A private network for the chaos cluster: one network namespace per
//! member, each with a veth link into a bridge in the host namespace, so that
//! faults act on real packets. The host (where the clients run) reaches
//! every member through the bridge; a partition is a pair of blackhole routes
//! between two members' namespaces, which drops their packets both ways while
//! clients still reach both. Needs root and iproute2.

use std::process::Command;

use anyhow::{Context, Result, bail};

pub struct Network {
    /// Prefix of every name created, unique per process.
    tag: String,
    /// The first three octets of the /24 the members live in.
    subnet: String,
    members: usize,
    /// Blackholed member pairs (i < j) currently in place.
    cut: Vec<(usize, usize)>,
    /// Members whose outgoing packets are throttled.
    slow: Vec<usize>,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Network {
    /// Creates the bridge and `members` namespaces. Names carry the process
    /// id, and namespaces left by a run that died are removed first.
    pub fn create(members: usize) -> Result<Network> {
        remove_stale();
        let pid = std::process::id();
        let net = Network {
            tag: format!("cc{pid}"),
            // Distinct for concurrent runs (pids differ in their low 16 bits).
            subnet: format!("10.{}.{}", (pid >> 8) & 255, pid & 255),
            members,
            cut: Vec::new(),
            slow: Vec::new(),
        };
        net.build().with_context(|| "cannot create the chaos network namespaces (this needs root)")?;
        Ok(net)
    }

    fn build(&self) -> Result<()> {
        let bridge = self.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", self.host_address()), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..self.members {
            let ns = self.namespace(i);
            let (outer, inner) = (format!("{}v{i}", self.tag), format!("{}p{i}", self.tag));
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "master", &bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", self.address(i)), "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// The namespace member `i` runs in.
    pub fn namespace(&self, i: usize) -> String {
        format!("capchaos-{}-{i}", std::process::id())
    }

    /// Member `i`'s address inside its namespace.
    pub fn address(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    fn host_address(&self) -> String {
        format!("{}.254", self.subnet)
    }

    /// Drops every packet between members `a` and `b`, both ways.
    pub fn cut(&mut self, a: usize, b: usize) -> Result<()> {
        let pair = (a.min(b), a.max(b));
        if a == b || self.cut.contains(&pair) {
            return Ok(());
        }
        ip(&["-n", &self.namespace(a), "route", "add", "blackhole", &self.address(b)])?;
        ip(&["-n", &self.namespace(b), "route", "add", "blackhole", &self.address(a)])?;
        self.cut.push(pair);
        Ok(())
    }

    /// Cuts member `i` off from every other member (clients still reach it).
    pub fn isolate(&mut self, i: usize) -> Result<()> {
        for j in 0..self.members {
            self.cut(i, j)?;
        }
        Ok(())
    }

    /// Throttles what member `i` sends (a token bucket that queues up to
    /// half a second), so its peers hear from it late and in bursts.
    pub fn slow_down(&mut self, i: usize) -> Result<()> {
        let dev = format!("{}p{i}", self.tag);
        let tbf = ["root", "tbf", "rate", "256kbit", "burst", "16kb", "latency", "500ms"];
        let out = Command::new("ip")
            .args(["netns", "exec", &self.namespace(i), "tc", "qdisc", "add", "dev", &dev])
            .args(tbf)
            .output()?;
        if !out.status.success() {
            bail!("tc qdisc add on {dev}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        self.slow.push(i);
        Ok(())
    }

    /// Removes every cut and throttle.
    pub fn heal(&mut self) -> Result<()> {
        for i in std::mem::take(&mut self.slow) {
            let dev = format!("{}p{i}", self.tag);
            let _ = Command::new("ip")
                .args(["netns", "exec", &self.namespace(i), "tc", "qdisc", "del", "dev", &dev, "root"])
                .status();
        }
        for (a, b) in std::mem::take(&mut self.cut) {
            ip(&["-n", &self.namespace(a), "route", "del", "blackhole", &self.address(b)])?;
            ip(&["-n", &self.namespace(b), "route", "del", "blackhole", &self.address(a)])?;
        }
        Ok(())
    }

    /// True while any member pair is cut or a member throttled.
    pub fn is_faulty(&self) -> bool {
        !self.cut.is_empty() || !self.slow.is_empty()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 0..self.members {
            let _ = ip(&["netns", "del", &self.namespace(i)]);
        }
        // Deleting the namespaces removed the veth pairs with them.
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

/// Deletes namespaces and bridges of chaos runs whose process is gone.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name.strip_prefix("capchaos-").and_then(|r| r.split('-').next()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
            let _ = ip(&["link", "del", &format!("cc{pid}br")]);
        }
    }
}
