//! `etcd-bench compare`: pairs capstan's and etcd's results by workload and
//! client count, prints the ratios, then the targets.

use std::collections::BTreeMap;

use crate::args::CompareArgs;
use crate::report::{self, RunReport, megabytes};
use crate::targets::{self, Figures, Metric, Pair};

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let capstan = report::read_jsonl(&args.capstan)?;
    let etcd = report::read_jsonl(&args.etcd)?;
    let pairs = pair_up(&capstan, &etcd);
    for pair in &pairs {
        println!("{}", ratio_line(pair));
    }
    let verdicts = targets::evaluate(&pairs);
    for verdict in &verdicts {
        println!("{verdict}");
    }
    let met = verdicts.iter().filter(|v| v.met).count();
    println!("targets: {met} of {} met", verdicts.len());
    Ok(())
}

/// Pairs in the order capstan's results first show them; a workload run more
/// than once (results appended by a rerun) counts with its last result.
fn pair_up(capstan: &[RunReport], etcd: &[RunReport]) -> Vec<Pair> {
    let last_by_key = |reports: &[RunReport]| -> BTreeMap<(String, usize), Figures> {
        reports.iter().map(|r| ((r.workload.clone(), r.clients), figures(r))).collect()
    };
    let (capstan_last, etcd_last) = (last_by_key(capstan), last_by_key(etcd));
    let mut pairs: Vec<Pair> = Vec::new();
    for report in capstan {
        let key = (report.workload.clone(), report.clients);
        if pairs.iter().any(|p| p.workload == key.0 && p.clients == key.1) {
            continue;
        }
        if let (Some(&capstan), Some(&etcd)) = (capstan_last.get(&key), etcd_last.get(&key)) {
            pairs.push(Pair { workload: key.0, clients: key.1, capstan, etcd });
        }
    }
    pairs
}

fn figures(report: &RunReport) -> Figures {
    Figures {
        ops_per_sec: report.ops_per_sec,
        p99_ms: report.p99_ms,
        peak_rss_bytes: report.peak_rss_bytes,
        cpu_secs: report.cpu_secs,
    }
}

fn ratio_line(pair: &Pair) -> String {
    let ratio = |metric| pair.ratio(metric).map_or("n/a".to_string(), |r| format!("{r:.2}"));
    let (c, e) = (&pair.capstan, &pair.etcd);
    format!(
        "{} capstan={:.0} etcd={:.0} ratio={} p99: capstan={:.2} etcd={:.2} ratio={} \
         rss: capstan={:.1} etcd={:.1} ratio={} cpu: ratio={}",
        pair.key(),
        c.ops_per_sec,
        e.ops_per_sec,
        ratio(Metric::Throughput),
        c.p99_ms,
        e.p99_ms,
        ratio(Metric::P99),
        megabytes(c.peak_rss_bytes),
        megabytes(e.peak_rss_bytes),
        ratio(Metric::PeakRss),
        ratio(Metric::Cpu),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(workload: &str, clients: usize, ops_per_sec: f64) -> RunReport {
        let line = format!(
            r#"{{"label":"x","workload":"{workload}","clients":{clients},"conns":1,"duration_secs":10,
            "ops":1,"errors":0,"ops_per_sec":{ops_per_sec},"p50_ms":1.0,"p99_ms":2.0,"p999_ms":3.0,
            "max_ms":4.0,"peak_rss_bytes":1000000,"rss_by_pid":{{}},"cpu_secs":1.0}}"#
        );
        serde_json::from_str(&line).expect("test report parses")
    }

    #[test]
    fn pairs_match_workload_and_clients_and_the_last_rerun_counts() {
        let capstan = [report("put", 1, 10.0), report("put", 1000, 20.0), report("put", 1, 30.0)];
        let etcd = [report("put", 1, 5.0), report("txn-cas", 64, 5.0)];
        let pairs = pair_up(&capstan, &etcd);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].key(), "put/1");
        assert_eq!(pairs[0].capstan.ops_per_sec, 30.0);
        assert_eq!(
            ratio_line(&pairs[0]),
            "put/1 capstan=30 etcd=5 ratio=6.00 p99: capstan=2.00 etcd=2.00 ratio=1.00 \
             rss: capstan=1.0 etcd=1.0 ratio=1.00 cpu: ratio=1.00"
        );
    }
}
