//! One run's result: a line for people on stdout, and a JSON line for `compare`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::procstat::PidUsage;
use crate::stats::LatencySummary;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub label: String,
    pub workload: String,
    pub clients: usize,
    pub conns: usize,
    pub duration_secs: u64,
    /// Operations that succeeded in the measured window (events delivered, for watch-fanout).
    pub ops: u64,
    pub errors: u64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The largest peak resident size of the server processes.
    pub peak_rss_bytes: u64,
    pub rss_by_pid: BTreeMap<u32, PidUsage>,
    /// CPU time of all server processes together in the measured window.
    pub cpu_secs: f64,
    /// watch-fanout: watchers × puts in the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_expected: Option<u64>,
    /// watch-fanout and k8s-mix: events the watchers received in the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_delivered: Option<u64>,
}

/// What a run is, apart from its figures.
pub struct RunSetup<'a> {
    pub label: &'a str,
    pub workload: &'a str,
    pub clients: usize,
    pub conns: usize,
    pub duration_secs: u64,
}

impl RunReport {
    pub fn new(
        setup: &RunSetup<'_>,
        ops: u64,
        errors: u64,
        latency: LatencySummary,
        usage: BTreeMap<u32, PidUsage>,
    ) -> RunReport {
        RunReport {
            label: setup.label.to_string(),
            workload: setup.workload.to_string(),
            clients: setup.clients,
            conns: setup.conns,
            duration_secs: setup.duration_secs,
            ops,
            errors,
            ops_per_sec: ops as f64 / setup.duration_secs as f64,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            p999_ms: latency.p999_ms,
            max_ms: latency.max_ms,
            peak_rss_bytes: usage.values().map(PidUsage::peak_bytes).max().unwrap_or(0),
            cpu_secs: usage.values().map(|u| u.cpu_secs).sum(),
            rss_by_pid: usage,
            events_expected: None,
            events_delivered: None,
        }
    }

    /// The run as a few lines of text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{} {} clients={} conns={}: {:.0} ops/s ({} ops, {} errors in {} s) \
             p50={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
            self.label,
            self.workload,
            self.clients,
            self.conns,
            self.ops_per_sec,
            self.ops,
            self.errors,
            self.duration_secs,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
        );
        if let Some(delivered) = self.events_delivered {
            text += &format!(" events={delivered}");
            if let Some(expected) = self.events_expected {
                text += &format!("/{expected}");
            }
        }
        if !self.rss_by_pid.is_empty() {
            text += &format!(" peak_rss={:.1}MB cpu={:.2}s", megabytes(self.peak_rss_bytes), self.cpu_secs);
            for (pid, usage) in &self.rss_by_pid {
                text += &format!(
                    "\n  pid {pid}: rss max {:.1}MB, hwm {:.1}MB, cpu {:.2}s",
                    megabytes(usage.max_rss_bytes),
                    megabytes(usage.hwm_bytes),
                    usage.cpu_secs
                );
            }
        }
        text
    }

    pub fn append_jsonl(&self, path: &Path) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .with_context(|| format!("appending to {}", path.display()))
    }
}

/// Every report in a JSON-lines file, in order.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<RunReport>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

pub fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_a_json_line_round_trip() {
        let setup = RunSetup { label: "etcd", workload: "put", clients: 8, conns: 4, duration_secs: 2 };
        let usage = BTreeMap::from([
            (10, PidUsage { max_rss_bytes: 50, hwm_bytes: 60, cpu_secs: 1.5 }),
            (11, PidUsage { max_rss_bytes: 80, hwm_bytes: 70, cpu_secs: 0.5 }),
        ]);
        let report = RunReport::new(&setup, 100, 1, LatencySummary::default(), usage);
        assert_eq!(report.ops_per_sec, 50.0);
        assert_eq!(report.peak_rss_bytes, 80);
        assert_eq!(report.cpu_secs, 2.0);

        let line = serde_json::to_string(&report).expect("a report serializes");
        assert!(!line.contains("events_expected"), "absent figures stay out of the line: {line}");
        let back: RunReport = serde_json::from_str(&line).expect("a report line parses");
        assert_eq!(back.rss_by_pid, report.rss_by_pid);
        assert_eq!(back.workload, "put");
    }
}
