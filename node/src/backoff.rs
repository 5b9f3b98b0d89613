//! The kubelet's restart and image-pull backoff (client-go
//! `flowcontrol.Backoff`): 10 s after the first failure, doubling up to
//! 300 s; a container that ran well for twice the maximum starts over.
//! Times are nanoseconds since the epoch, as the CRI reports them.

use std::collections::HashMap;
use std::time::Duration;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug)]
struct Entry {
    backoff: Duration,
    last_update_ns: i64,
}

/// Backoff per key (`<pod uid>/<container>` or `<pod uid>/image/<image>`).
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, entries: HashMap::new() }
    }

    /// While in backoff after the failure at `event_ns`: the current delay.
    pub fn in_backoff_since(&self, key: &str, event_ns: i64, now_ns: i64) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(event_ns, entry.last_update_ns) {
            return None;
        }
        let since = Duration::from_nanos(now_ns.saturating_sub(event_ns).max(0).unsigned_abs());
        (since < entry.backoff).then_some(entry.backoff)
    }

    /// Records a retry at `now_ns` after the failure at `event_ns`: the
    /// next failure waits twice as long.
    pub fn next(&mut self, key: &str, event_ns: i64, now_ns: i64) {
        let backoff = match self.entries.get(key) {
            Some(entry) if !self.expired(event_ns, entry.last_update_ns) => (entry.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(key.to_string(), Entry { backoff, last_update_ns: now_ns });
    }

    /// Forgets keys that start with `prefix` (a pod that is gone).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }

    fn expired(&self, event_ns: i64, last_update_ns: i64) -> bool {
        let stable = i64::try_from((self.max * 2).as_nanos()).unwrap_or(i64::MAX);
        event_ns.saturating_sub(last_update_ns) > stable
    }
}

/// The wall clock in nanoseconds since the epoch, the CRI's unit.
pub fn now_ns() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// Go's `time.Duration` text for whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 { format!("{secs}s") } else { format!("{}m{}s", secs / 60, secs % 60) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn doubles_from_ten_seconds_to_five_minutes() {
        let mut b = Backoff::default();
        // First crash at t=0: no backoff yet, restart at once.
        assert_eq!(b.in_backoff_since("c", 0, S), None);
        b.next("c", 0, S);
        // Second crash at t=5: wait 10 s from the crash.
        assert_eq!(b.in_backoff_since("c", 5 * S, 6 * S), Some(INITIAL));
        assert_eq!(b.in_backoff_since("c", 5 * S, 15 * S), None);
        b.next("c", 5 * S, 15 * S);
        assert_eq!(b.in_backoff_since("c", 16 * S, 20 * S), Some(Duration::from_secs(20)));
        let mut t = 16 * S;
        for _ in 0..10 {
            b.next("c", t, t);
            t += S;
        }
        assert_eq!(b.in_backoff_since("c", t, t), Some(MAX));
    }

    #[test]
    fn a_long_healthy_run_resets() {
        let mut b = Backoff::default();
        b.next("c", 0, 0);
        b.next("c", S, S);
        assert_eq!(b.in_backoff_since("c", 2 * S, 2 * S), Some(Duration::from_secs(20)));
        // It crashes again after running for more than 10 minutes.
        let late = 700 * S;
        assert_eq!(b.in_backoff_since("c", late, late), None);
        b.next("c", late, late);
        assert_eq!(b.in_backoff_since("c", late + S, late + S), Some(INITIAL));
    }

    #[test]
    fn forget_and_format() {
        let mut b = Backoff::default();
        b.next("u1/c", 0, 0);
        b.next("u2/c", 0, 0);
        b.forget_prefix("u1/");
        assert_eq!(b.in_backoff_since("u1/c", 0, 0), None);
        assert!(b.in_backoff_since("u2/c", 0, 0).is_some());
        assert_eq!(go_duration(Duration::from_secs(20)), "20s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(MAX), "5m0s");
    }
}
