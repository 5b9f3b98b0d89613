//! Lease expiry as the leader keeps it: a deadline per lease, set at grant or
//! keep-alive, reset for every lease when a member becomes leader (a new
//! leader extends remaining TTLs, as etcd's does). Pure: time comes in as an
//! argument.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct LeaseClock {
    deadlines: HashMap<i64, Instant>,
}

impl LeaseClock {
    /// Forgets every deadline: used when leadership is gained or lost.
    pub fn reset(&mut self) {
        self.deadlines.clear();
    }

    /// Restarts a lease's TTL from `now`.
    pub fn refresh(&mut self, id: i64, ttl: i64, now: Instant) {
        self.deadlines.insert(id, now + Duration::from_secs(ttl.max(0) as u64));
    }

    /// Whole seconds left, truncated as etcd reports them; a lease the clock
    /// does not track yet has its full TTL.
    pub fn remaining(&self, id: i64, ttl: i64, now: Instant) -> i64 {
        match self.deadlines.get(&id) {
            Some(deadline) => deadline.saturating_duration_since(now).as_secs() as i64,
            None => ttl,
        }
    }

    /// Brings the clock in line with the live leases (id, ttl): new leases
    /// start now, revoked ones are dropped. Returns the expired ones.
    pub fn expired(&mut self, live: &[(i64, i64)], now: Instant) -> Vec<i64> {
        let ids: std::collections::HashSet<i64> = live.iter().map(|(id, _)| *id).collect();
        self.deadlines.retain(|id, _| ids.contains(id));
        for (id, ttl) in live {
            self.deadlines.entry(*id).or_insert_with(|| now + Duration::from_secs((*ttl).max(0) as u64));
        }
        let mut out: Vec<i64> = self.deadlines.iter().filter(|(_, d)| **d <= now).map(|(id, _)| *id).collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_expire_after_their_ttl_unless_refreshed() {
        let t0 = Instant::now();
        let mut c = LeaseClock::default();
        assert!(c.expired(&[(1, 5), (2, 10)], t0).is_empty());
        assert_eq!(c.remaining(1, 5, t0 + Duration::from_millis(1500)), 3, "truncated seconds");
        c.refresh(1, 5, t0 + Duration::from_secs(4));
        assert_eq!(c.expired(&[(1, 5), (2, 10)], t0 + Duration::from_secs(6)), Vec::<i64>::new());
        assert_eq!(c.expired(&[(1, 5), (2, 10)], t0 + Duration::from_secs(9)), vec![1], "refreshed at 4 for 5 s");
        assert_eq!(c.expired(&[(2, 10)], t0 + Duration::from_secs(10)), vec![2], "revoked leases are forgotten");
    }

    #[test]
    fn a_new_leader_restarts_every_ttl() {
        let t0 = Instant::now();
        let mut c = LeaseClock::default();
        c.expired(&[(1, 5)], t0);
        c.reset();
        assert!(c.expired(&[(1, 5)], t0 + Duration::from_secs(6)).is_empty());
        assert_eq!(c.remaining(1, 5, t0 + Duration::from_secs(6)), 5);
    }
}
