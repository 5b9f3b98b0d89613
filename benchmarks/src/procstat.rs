//! Memory and CPU of the server processes, read from /proc while a run goes on.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Linux's USER_HZ, the unit of utime and stime in /proc/PID/stat. It is 100 on
/// every Linux target; reading it properly needs sysconf(_SC_CLK_TCK) through
/// FFI, which the workspace's `unsafe_code = "forbid"` rules out.
const TICKS_PER_SEC: f64 = 100.0;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What one server process used during a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PidUsage {
    /// Largest VmRSS seen by sampling every 100 ms.
    pub max_rss_bytes: u64,
    /// VmHWM at the end: the peak resident size over the process's life.
    pub hwm_bytes: u64,
    /// utime + stime spent in the measured window.
    pub cpu_secs: f64,
}

impl PidUsage {
    /// The peak resident size, whichever reading caught it.
    pub fn peak_bytes(&self) -> u64 {
        self.max_rss_bytes.max(self.hwm_bytes)
    }
}

/// CPU ticks (utime + stime) of each sampled pid at one moment; `None` where unreadable.
pub struct CpuReading(Vec<Option<u64>>);

/// Samples the resident size of some processes until finished.
pub struct Sampler {
    pids: Vec<u32>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<u64>>,
}

impl Sampler {
    pub fn start(pids: Vec<u32>) -> Sampler {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(sample_rss(pids.clone(), stopped));
        Sampler { pids, stop, task }
    }

    pub fn read_cpu(&self) -> CpuReading {
        CpuReading(self.pids.iter().map(|&pid| read_cpu_ticks(pid)).collect())
    }

    /// Stops sampling; CPU time is what was spent between the two readings.
    pub async fn finish(self, from: &CpuReading, to: &CpuReading) -> BTreeMap<u32, PidUsage> {
        // The receiver only goes away if the task ended, and then there is nothing to stop.
        let _ = self.stop.send(());
        let max_rss = self.task.await.unwrap_or_else(|e| {
            eprintln!("warning: RSS sampling failed: {e}");
            Vec::new()
        });
        let mut usage = BTreeMap::new();
        for (i, &pid) in self.pids.iter().enumerate() {
            let ticks = match (from.0.get(i).copied().flatten(), to.0.get(i).copied().flatten()) {
                (Some(from), Some(to)) => to.saturating_sub(from),
                _ => {
                    eprintln!("warning: no CPU time for pid {pid} (gone, or not readable)");
                    0
                }
            };
            let hwm_bytes = read_status_bytes(pid, "VmHWM").unwrap_or_else(|| {
                eprintln!("warning: no VmHWM for pid {pid}");
                0
            });
            let max_rss_bytes = max_rss.get(i).copied().unwrap_or(0);
            usage.insert(pid, PidUsage { max_rss_bytes, hwm_bytes, cpu_secs: ticks as f64 / TICKS_PER_SEC });
        }
        usage
    }
}

async fn sample_rss(pids: Vec<u32>, mut stopped: oneshot::Receiver<()>) -> Vec<u64> {
    let mut max_rss = vec![0; pids.len()];
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = &mut stopped => return max_rss,
            _ = ticks.tick() => {
                for (max, &pid) in max_rss.iter_mut().zip(&pids) {
                    *max = (*max).max(read_status_bytes(pid, "VmRSS").unwrap_or(0));
                }
            }
        }
    }
}

fn read_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_bytes(&status, field)
}

fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// A `Field:   1234 kB` line of /proc/PID/status, in bytes.
fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// utime + stime (fields 14 and 15) of /proc/PID/stat. Field 2, the command
/// name, is in parentheses and may hold spaces, so fields are counted from
/// the last `)`: the field after it is field 3.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_in_bytes() {
        let status = "Name:\tetcd\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status_bytes(status, "VmRSS"), Some(100 * 1024 * 1024));
        assert_eq!(parse_status_bytes(status, "VmHWM"), Some(200 * 1024 * 1024));
        assert_eq!(parse_status_bytes(status, "VmSwap"), None);
    }

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 12 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(175));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(read_status_bytes(pid, "VmRSS").is_some_and(|rss| rss > 0));
        assert!(read_cpu_ticks(pid).is_some());
    }
}
