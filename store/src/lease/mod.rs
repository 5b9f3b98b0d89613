//! Leases: granted and revoked through Raft (the lease table lives in the
//! MVCC store); expiry decided by the leader's clock (`clock.rs`) and applied
//! as a replicated revoke.

pub mod clock;

/// etcd's largest allowed TTL.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// etcd's minimum TTL: 1.5 election timeouts, rounded up to whole seconds.
pub fn min_ttl(election_timeout_ms: u64) -> i64 {
    (election_timeout_ms * 3).div_ceil(2000) as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn min_ttl_matches_etcd_defaults() {
        assert_eq!(super::min_ttl(1000), 2);
        assert_eq!(super::min_ttl(3000), 5);
    }
}
