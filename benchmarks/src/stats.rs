//! Latency percentiles over the samples every client collected (microseconds).

use std::time::Duration;

/// Latency figures of one run, in milliseconds (all zero when nothing was measured).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn from_micros(mut samples: Vec<u32>) -> Self {
        samples.sort_unstable();
        let ms = |per_mille| percentile(&samples, per_mille).map_or(0.0, |us| f64::from(us) / 1000.0);
        LatencySummary { p50_ms: ms(500), p99_ms: ms(990), p999_ms: ms(999), max_ms: ms(1000) }
    }
}

/// The nearest-rank percentile of `sorted`: the smallest sample that at least
/// `per_mille`/1000 of the samples are at or below. Integer arithmetic, so that
/// p99.9 of 1000 samples is the 999th and not (by rounding) the 1000th.
pub fn percentile(sorted: &[u32], per_mille: u64) -> Option<u32> {
    let n = sorted.len() as u64;
    let rank = (n * per_mille).div_ceil(1000).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// A latency as a sample: whole microseconds, saturating (at over an hour).
pub fn micros(latency: Duration) -> u32 {
    u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand() {
        let sorted: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&sorted, 500), Some(500));
        assert_eq!(percentile(&sorted, 990), Some(990));
        assert_eq!(percentile(&sorted, 999), Some(999));
        assert_eq!(percentile(&sorted, 1000), Some(1000));
        assert_eq!(percentile(&sorted, 0), Some(1));
    }

    #[test]
    fn percentiles_of_few_samples_round_up_to_a_sample() {
        assert_eq!(percentile(&[7], 500), Some(7));
        assert_eq!(percentile(&[10, 20, 30], 500), Some(20));
        assert_eq!(percentile(&[10, 20, 30], 990), Some(30));
        assert_eq!(percentile(&[], 500), None);
    }

    #[test]
    fn summary_sorts_and_converts_to_milliseconds() {
        let mut samples: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        samples.reverse();
        let summary = LatencySummary::from_micros(samples);
        assert_eq!(summary, LatencySummary { p50_ms: 500.0, p99_ms: 990.0, p999_ms: 999.0, max_ms: 1000.0 });
        assert_eq!(LatencySummary::from_micros(Vec::new()), LatencySummary::default());
    }
}
