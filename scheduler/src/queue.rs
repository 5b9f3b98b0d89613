//! The scheduling queue (kube-scheduler's `PriorityQueue`, reduced to one
//! attempt at a time): pods wait as active, backing off after a failed
//! attempt (1 s doubling to 10 s), or unschedulable until something that
//! could help changes in the cluster, and at most `UNSCHEDULABLE_RETRY`.
//! Time is passed in, so the queue is plain data.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use crate::pod_state;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An unschedulable pod is tried again at least this often.
pub const UNSCHEDULABLE_RETRY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Active,
    /// Waiting out its backoff, then active.
    Backoff,
    /// No node fitted; waits for a cluster change.
    Unschedulable {
        since: Instant,
    },
    /// Popped and being scheduled. `changed` notes that the pod or the
    /// cluster changed meanwhile, so a "does not fit" verdict may be stale.
    InFlight {
        changed: bool,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    pod: Arc<Pod>,
    state: State,
    attempts: u32,
    last_attempt: Option<Instant>,
    /// Arrival order, to keep equal priorities first come, first served.
    order: u64,
}

impl Entry {
    fn backoff_until(&self) -> Option<Instant> {
        self.last_attempt.map(|at| at + backoff(self.attempts))
    }

    fn backoff_over(&self, now: Instant) -> bool {
        self.backoff_until().is_none_or(|until| until <= now)
    }

    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }
}

/// How an attempt ended, for pods that stay queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No node fits.
    Unschedulable,
    /// Something failed along the way (binding, the apiserver).
    Error,
}

/// The backoff after `attempts` attempts: 1 s, 2 s, 4 s, 8 s, then 10 s.
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[derive(Debug, Default)]
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    next_order: u64,
}

impl SchedulingQueue {
    /// Keeps only the pods `keep` accepts (after a relist of the pods).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|key, _| keep(key));
    }

    /// A pod that needs scheduling was added or updated.
    pub fn add_or_update(&mut self, pod: Arc<Pod>, now: Instant) {
        let key = pod_state::key(&pod);
        match self.entries.get_mut(&key) {
            Some(entry) => {
                let changed = scheduling_inputs_changed(&entry.pod, &pod);
                entry.pod = pod;
                match entry.state {
                    State::Unschedulable { .. } if changed => {
                        entry.state = if entry.backoff_over(now) { State::Active } else { State::Backoff };
                    }
                    State::InFlight { changed: before } => entry.state = State::InFlight { changed: before || changed },
                    _ => {}
                }
            }
            None => {
                let order = self.next_order;
                self.next_order += 1;
                self.entries.insert(key, Entry { pod, state: State::Active, attempts: 0, last_attempt: None, order });
            }
        }
    }

    /// The pod no longer needs scheduling (bound, deleted, finished).
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// The next pod to try: the highest priority among the active, oldest
    /// first. It stays queued, in flight, until `done` or `remove`.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<Pod>> {
        self.promote(now);
        let key = self
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Active)
            .min_by_key(|(_, e)| (std::cmp::Reverse(e.priority()), e.order))
            .map(|(key, _)| key.clone())?;
        let entry = self.entries.get_mut(&key)?;
        entry.state = State::InFlight { changed: false };
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last_attempt = Some(now);
        Some(entry.pod.clone())
    }

    /// The attempt for `key` failed; the pod waits for its retry.
    pub fn done(&mut self, key: &str, outcome: Outcome, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        let State::InFlight { changed } = entry.state else { return };
        entry.state = match outcome {
            Outcome::Unschedulable if !changed => State::Unschedulable { since: now },
            // Something changed while we looked: the verdict may be stale.
            Outcome::Unschedulable | Outcome::Error => State::Backoff,
        };
    }

    /// Something that could make unschedulable pods fit happened (a node
    /// added or changed, a pod gone): they all get another try.
    pub fn move_all_unschedulable(&mut self, now: Instant) {
        for entry in self.entries.values_mut() {
            match entry.state {
                State::Unschedulable { .. } => {
                    entry.state = if entry.backoff_over(now) { State::Active } else { State::Backoff };
                }
                State::InFlight { .. } => entry.state = State::InFlight { changed: true },
                _ => {}
            }
        }
    }

    /// When `pop` may next return a pod: now if one is active, else when the
    /// first backoff or unschedulable wait ends; `None` when nothing waits.
    pub fn next_ready(&self, now: Instant) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|entry| match entry.state {
                State::Active => Some(now),
                State::Backoff => Some(entry.backoff_until().unwrap_or(now)),
                State::Unschedulable { since } => Some(since + UNSCHEDULABLE_RETRY),
                State::InFlight { .. } => None,
            })
            .min()
    }

    /// Backoffs that ran out become active, and so do pods unschedulable
    /// for longer than the retry period.
    fn promote(&mut self, now: Instant) {
        for entry in self.entries.values_mut() {
            let ready = match entry.state {
                State::Backoff => entry.backoff_over(now),
                State::Unschedulable { since } => since + UNSCHEDULABLE_RETRY <= now,
                State::Active | State::InFlight { .. } => false,
            };
            if ready {
                entry.state = State::Active;
            }
        }
    }
}

/// Whether an update could change where the pod fits; status updates
/// (our own PodScheduled condition among them) cannot.
fn scheduling_inputs_changed(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, priority: Option<i32>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(PodSpec { priority, ..Default::default() }),
            ..Default::default()
        })
    }

    fn name(pod: Option<Arc<Pod>>) -> Option<String> {
        pod.and_then(|p| p.metadata.name.clone())
    }

    #[test]
    fn backoff_doubles_from_one_to_ten_seconds() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn first_come_first_served_within_a_priority() {
        let now = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), now);
        q.add_or_update(pod("b", Some(10)), now);
        q.add_or_update(pod("c", None), now);
        assert_eq!(name(q.pop(now)), Some("b".into()));
        assert_eq!(name(q.pop(now)), Some("a".into()));
        assert_eq!(name(q.pop(now)), Some("c".into()));
        assert_eq!(q.pop(now), None, "all in flight");
        assert_eq!(q.next_ready(now), None);
    }

    #[test]
    fn errors_back_off_then_retry() {
        let start = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), start);
        assert!(q.pop(start).is_some());
        q.done("default/a", Outcome::Error, start);
        assert_eq!(q.pop(start), None);
        assert_eq!(q.next_ready(start), Some(start + Duration::from_secs(1)));
        let later = start + Duration::from_secs(1);
        assert!(q.pop(later).is_some());
        q.done("default/a", Outcome::Error, later);
        assert_eq!(q.next_ready(later), Some(later + Duration::from_secs(2)), "the second backoff is longer");
    }

    #[test]
    fn unschedulable_pods_wait_for_a_cluster_change() {
        let start = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), start);
        assert!(q.pop(start).is_some());
        q.done("default/a", Outcome::Unschedulable, start);
        let later = start + Duration::from_secs(5);
        assert_eq!(q.pop(later), None, "its backoff is over, but nothing changed");
        assert_eq!(q.next_ready(later), Some(start + UNSCHEDULABLE_RETRY));
        q.move_all_unschedulable(later);
        assert!(q.pop(later).is_some(), "a node was added");
    }

    #[test]
    fn a_moved_pod_still_serves_its_backoff() {
        let start = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), start);
        assert!(q.pop(start).is_some());
        q.done("default/a", Outcome::Unschedulable, start);
        q.move_all_unschedulable(start);
        assert_eq!(q.pop(start), None);
        assert!(q.pop(start + INITIAL_BACKOFF).is_some());
    }

    #[test]
    fn unschedulable_pods_are_retried_periodically() {
        let start = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), start);
        assert!(q.pop(start).is_some());
        q.done("default/a", Outcome::Unschedulable, start);
        assert!(q.pop(start + UNSCHEDULABLE_RETRY).is_some());
    }

    #[test]
    fn a_change_during_the_attempt_means_backoff_not_unschedulable() {
        let start = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), start);
        assert!(q.pop(start).is_some());
        q.move_all_unschedulable(start);
        q.done("default/a", Outcome::Unschedulable, start);
        assert!(q.pop(start + INITIAL_BACKOFF).is_some());
    }

    #[test]
    fn only_spec_or_label_updates_wake_an_unschedulable_pod() {
        let start = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), start);
        assert!(q.pop(start).is_some());
        q.done("default/a", Outcome::Unschedulable, start);
        let later = start + Duration::from_secs(2);
        let mut status_only = (*pod("a", None)).clone();
        status_only.status = Some(PodStatus { message: Some("x".into()), ..Default::default() });
        q.add_or_update(Arc::new(status_only), later);
        assert_eq!(q.pop(later), None);
        let mut relabelled = (*pod("a", None)).clone();
        relabelled.metadata.labels = Some([("k".to_string(), "v".to_string())].into());
        q.add_or_update(Arc::new(relabelled), later);
        assert!(q.pop(later).is_some());
    }

    #[test]
    fn removed_pods_are_gone() {
        let now = Instant::now();
        let mut q = SchedulingQueue::default();
        q.add_or_update(pod("a", None), now);
        q.add_or_update(pod("b", None), now);
        q.add_or_update(pod("c", None), now);
        assert_eq!(q.next_ready(now), Some(now));
        q.remove("default/a");
        q.retain(|key| key != "default/b");
        assert_eq!(name(q.pop(now)), Some("c".into()));
        assert_eq!(q.pop(now), None);
    }
}
