//! Expectations (pkg/controller/controller_utils.go): after creating or
//! deleting pods, a ReplicaSet is not managed again until the pod cache has
//! seen those writes, so informer lag never creates or deletes twice.
//!
//! Created pods are tracked by name (known once the create returns) and
//! deleted pods by uid, and both are checked against the cache itself, so a
//! missed watch event or a relist cannot wedge a ReplicaSet; a record older
//! than five minutes is given up on, as Kubernetes does.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long unobserved writes hold a ReplicaSet back.
const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expected {
    /// Creates issued whose pod name is not known yet.
    unnamed_creates: usize,
    /// Created pods the cache has not shown yet.
    created: HashSet<String>,
    /// Pods (uids) deleted that the cache still shows as active.
    deleted: HashSet<String>,
    since: Instant,
}

/// Expectations of every ReplicaSet, by `namespace/name`.
///
/// A std mutex: sections are short and never cross an `.await`.
#[derive(Debug, Default)]
pub struct Expectations {
    by_key: Mutex<HashMap<String, Expected>>,
}

impl Expectations {
    /// Replaces `key`'s record before `creates` creations or the deletion of `deletes`.
    pub fn expect(&self, key: &str, creates: usize, deletes: impl IntoIterator<Item = String>, now: Instant) {
        let expected = Expected {
            unnamed_creates: creates,
            created: HashSet::new(),
            deleted: deletes.into_iter().collect(),
            since: now,
        };
        self.with(|m| m.insert(key.to_string(), expected));
    }

    /// A create returned the pod `name`.
    pub fn created(&self, key: &str, name: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(key) {
                e.unnamed_creates = e.unnamed_creates.saturating_sub(1);
                e.created.insert(name.to_string());
            }
        });
    }

    /// A create failed or was skipped: nothing will appear.
    pub fn create_failed(&self, key: &str) {
        self.with(|m| m.get_mut(key).map(|e| e.unnamed_creates = e.unnamed_creates.saturating_sub(1)));
    }

    /// A delete failed: the pod stays.
    pub fn delete_failed(&self, key: &str, uid: &str) {
        self.with(|m| m.get_mut(key).map(|e| e.deleted.remove(uid)));
    }

    /// The watch delivered an event about pod `name` of `key`.
    pub fn observed(&self, key: &str, name: &str) {
        self.with(|m| m.get_mut(key).map(|e| e.created.remove(name)));
    }

    /// The ReplicaSet is gone.
    pub fn forget(&self, key: &str) {
        self.with(|m| m.remove(key));
    }

    /// Whether `key` may be managed: every write is visible in the cache
    /// (`cached(name)`: a pod of that name is cached; `active(uid)`: that pod
    /// is cached and not being deleted), or the record expired.
    pub fn satisfied(
        &self,
        key: &str,
        now: Instant,
        cached: impl Fn(&str) -> bool,
        active: impl Fn(&str) -> bool,
    ) -> bool {
        self.with(|m| {
            let Some(e) = m.get_mut(key) else { return true };
            e.created.retain(|name| !cached(name));
            e.deleted.retain(|uid| active(uid));
            let fulfilled = e.unnamed_creates == 0 && e.created.is_empty() && e.deleted.is_empty();
            if fulfilled || now.saturating_duration_since(e.since) > TTL {
                m.remove(key);
                return true;
            }
            false
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Expected>) -> T) -> T {
        // A poisoned lock only means another reconcile panicked mid-update;
        // the map itself is still consistent.
        let mut guard = self.by_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTHING: fn(&str) -> bool = |_| false;

    #[test]
    fn creations_hold_until_the_cache_shows_them() {
        let e = Expectations::default();
        let now = Instant::now();
        assert!(e.satisfied("ns/rs", now, NOTHING, NOTHING), "no record: free to manage");
        e.expect("ns/rs", 2, [], now);
        assert!(!e.satisfied("ns/rs", now, NOTHING, NOTHING));
        e.created("ns/rs", "rs-a");
        e.create_failed("ns/rs");
        assert!(!e.satisfied("ns/rs", now, NOTHING, NOTHING), "rs-a not seen yet");
        assert!(e.satisfied("ns/rs", now, |n| n == "rs-a", NOTHING));
    }

    #[test]
    fn a_watch_event_counts_even_if_the_pod_is_gone_again() {
        let e = Expectations::default();
        let now = Instant::now();
        e.expect("ns/rs", 1, [], now);
        e.created("ns/rs", "rs-a");
        e.observed("ns/rs", "rs-a");
        assert!(e.satisfied("ns/rs", now, NOTHING, NOTHING));
    }

    #[test]
    fn deletions_hold_while_the_pod_is_cached_as_active() {
        let e = Expectations::default();
        let now = Instant::now();
        e.expect("ns/rs", 0, ["u1".to_string(), "u2".to_string()], now);
        assert!(!e.satisfied("ns/rs", now, NOTHING, |_| true));
        e.delete_failed("ns/rs", "u2");
        assert!(!e.satisfied("ns/rs", now, NOTHING, |uid| uid == "u1"));
        assert!(e.satisfied("ns/rs", now, NOTHING, |_| false));
    }

    #[test]
    fn records_expire() {
        let e = Expectations::default();
        let now = Instant::now();
        e.expect("ns/rs", 3, [], now);
        assert!(!e.satisfied("ns/rs", now + Duration::from_secs(60), NOTHING, NOTHING));
        assert!(e.satisfied("ns/rs", now + TTL + Duration::from_secs(1), NOTHING, NOTHING));
    }
}
