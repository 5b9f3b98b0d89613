//! The targets capstan's store is held to against etcd, evaluated over
//! results paired by workload and client count. Plain data in, verdicts out.

use std::fmt;

/// The figures of one system in one run that the targets look at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    pub ops_per_sec: f64,
    pub p99_ms: f64,
    pub peak_rss_bytes: u64,
    pub cpu_secs: f64,
}

/// The same workload, with the same number of clients, run on both systems.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub workload: String,
    pub clients: usize,
    pub capstan: Figures,
    pub etcd: Figures,
}

impl Pair {
    pub fn key(&self) -> String {
        format!("{}/{}", self.workload, self.clients)
    }

    /// capstan ÷ etcd of one figure; `None` when etcd's is zero (nothing to compare with).
    pub fn ratio(&self, metric: Metric) -> Option<f64> {
        let (capstan, etcd) = (metric.of(&self.capstan), metric.of(&self.etcd));
        (etcd > 0.0).then(|| capstan / etcd)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Throughput,
    P99,
    PeakRss,
    Cpu,
}

impl Metric {
    fn of(self, figures: &Figures) -> f64 {
        match self {
            Metric::Throughput => figures.ops_per_sec,
            Metric::P99 => figures.p99_ms,
            Metric::PeakRss => figures.peak_rss_bytes as f64,
            Metric::Cpu => figures.cpu_secs,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::P99 => "p99 latency",
            Metric::PeakRss => "peak RSS",
            Metric::Cpu => "CPU time",
        }
    }
}

/// The bound a capstan ÷ etcd ratio must respect.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

impl Bound {
    fn holds(self, ratio: f64) -> bool {
        match self {
            Bound::AtLeast(min) => ratio >= min,
            Bound::AtMost(max) => ratio <= max,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::AtLeast(min) => write!(f, ">= {min:.2}"),
            Bound::AtMost(max) => write!(f, "<= {max:.2}"),
        }
    }
}

/// One target: a bound on a ratio, for the pairs it selects (`None` selects any).
struct Target {
    workload: Option<&'static str>,
    clients: Option<usize>,
    metric: Metric,
    bound: Bound,
}

const TARGETS: [Target; 6] = [
    Target { workload: Some("put"), clients: Some(1000), metric: Metric::Throughput, bound: Bound::AtLeast(2.0) },
    Target { workload: Some("put"), clients: Some(1000), metric: Metric::P99, bound: Bound::AtMost(1.0) },
    Target { workload: Some("put"), clients: Some(1), metric: Metric::Throughput, bound: Bound::AtLeast(1.0) },
    Target {
        workload: Some("range-linearizable"),
        clients: Some(1000),
        metric: Metric::Throughput,
        bound: Bound::AtLeast(2.0),
    },
    Target { workload: Some("watch-fanout"), clients: None, metric: Metric::P99, bound: Bound::AtMost(1.0) },
    Target { workload: None, clients: None, metric: Metric::PeakRss, bound: Bound::AtMost(0.5) },
];

impl Target {
    fn selects(&self, pair: &Pair) -> bool {
        self.workload.is_none_or(|w| w == pair.workload) && self.clients.is_none_or(|c| c == pair.clients)
    }

    /// How the target is named when no pair matches it.
    fn scope(&self) -> String {
        match (self.workload, self.clients) {
            (Some(w), Some(c)) => format!("{w}/{c}"),
            (Some(w), None) => w.to_string(),
            (None, _) => "every workload".to_string(),
        }
    }
}

/// The outcome of one target on one pair; a target with no pair to judge is missed.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub description: String,
    pub ratio: Option<f64>,
    pub bound: Bound,
    pub met: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = self.ratio.map_or("n/a".to_string(), |r| format!("{r:.2}"));
        let outcome = if self.met { "PASS" } else { "MISS" };
        write!(f, "target {}: {ratio} (need {}) {outcome}", self.description, self.bound)
    }
}

/// Every target, judged on every pair it selects (in the order of `pairs`).
pub fn evaluate(pairs: &[Pair]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for target in &TARGETS {
        let judge = |scope: String, ratio: Option<f64>| Verdict {
            description: format!("{scope} {} (capstan/etcd)", target.metric.name()),
            ratio,
            bound: target.bound,
            met: ratio.is_some_and(|r| target.bound.holds(r)),
        };
        let selected: Vec<&Pair> = pairs.iter().filter(|pair| target.selects(pair)).collect();
        if selected.is_empty() {
            verdicts.push(judge(target.scope(), None));
        }
        for pair in selected {
            verdicts.push(judge(pair.key(), pair.ratio(target.metric)));
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(ops_per_sec: f64, p99_ms: f64, peak_rss_bytes: u64) -> Figures {
        Figures { ops_per_sec, p99_ms, peak_rss_bytes, cpu_secs: 1.0 }
    }

    fn pair(workload: &str, clients: usize, capstan: Figures, etcd: Figures) -> Pair {
        Pair { workload: workload.to_string(), clients, capstan, etcd }
    }

    fn verdict<'a>(verdicts: &'a [Verdict], description: &str) -> &'a Verdict {
        verdicts
            .iter()
            .find(|v| v.description == description)
            .unwrap_or_else(|| panic!("no verdict {description:?} in {verdicts:#?}"))
    }

    #[test]
    fn twice_the_throughput_with_a_lower_p99_passes() {
        let pairs = [pair("put", 1000, figures(8000.0, 40.0, 100), figures(4000.0, 50.0, 400))];
        let verdicts = evaluate(&pairs);
        let throughput = verdict(&verdicts, "put/1000 throughput (capstan/etcd)");
        assert_eq!(throughput.ratio, Some(2.0));
        assert!(throughput.met);
        assert!(verdict(&verdicts, "put/1000 p99 latency (capstan/etcd)").met);
        let rss = verdict(&verdicts, "put/1000 peak RSS (capstan/etcd)");
        assert_eq!(rss.ratio, Some(0.25));
        assert!(rss.met);
        assert_eq!(rss.to_string(), "target put/1000 peak RSS (capstan/etcd): 0.25 (need <= 0.50) PASS");
    }

    #[test]
    fn a_ratio_beyond_its_bound_misses() {
        let pairs = [pair("put", 1000, figures(6000.0, 60.0, 300), figures(4000.0, 50.0, 400))];
        let verdicts = evaluate(&pairs);
        let throughput = verdict(&verdicts, "put/1000 throughput (capstan/etcd)");
        assert_eq!(throughput.ratio, Some(1.5));
        assert!(!throughput.met);
        assert!(!verdict(&verdicts, "put/1000 p99 latency (capstan/etcd)").met);
        assert!(!verdict(&verdicts, "put/1000 peak RSS (capstan/etcd)").met);
    }

    #[test]
    fn a_target_without_results_misses() {
        let verdicts = evaluate(&[]);
        let watch = verdict(&verdicts, "watch-fanout p99 latency (capstan/etcd)");
        assert_eq!(watch.ratio, None);
        assert!(!watch.met);
        assert!(!verdict(&verdicts, "every workload peak RSS (capstan/etcd)").met);
        assert_eq!(verdicts.len(), TARGETS.len());
    }

    #[test]
    fn peak_rss_is_judged_on_every_pair_and_others_only_on_their_own() {
        let good = figures(100.0, 1.0, 100);
        let etcd = figures(100.0, 1.0, 1000);
        let pairs = [pair("txn-cas", 64, good, etcd), pair("watch-fanout", 1000, good, etcd)];
        let verdicts = evaluate(&pairs);
        assert!(verdict(&verdicts, "txn-cas/64 peak RSS (capstan/etcd)").met);
        assert!(verdict(&verdicts, "watch-fanout/1000 peak RSS (capstan/etcd)").met);
        assert!(verdict(&verdicts, "watch-fanout/1000 p99 latency (capstan/etcd)").met);
        // The four put and range targets have no pair here.
        assert_eq!(verdicts.iter().filter(|v| v.ratio.is_none()).count(), 4);
    }
}
