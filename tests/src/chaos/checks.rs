//! The checks besides linearizability, all against `History.reference`, the
//! order of every write as one fresh watch from revision 1 saw it once the
//! faults stopped: nothing acknowledged is lost, reads name real writes, the
//! final contents match the writes, and every watcher saw exactly the writes
//! of its range, in order, once.
//!
//! Each check returns its violations as lines for a human; [`check_history`]
//! runs them all with the linearizability checks into one [`Report`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use super::history::{Event, History, Input, Operation, Output, WatchLog};
use super::linearizability::{self, Verdict, describe};
use super::resolve::resolve_unknowns;

/// Everything found wrong with a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub ops: usize,
    /// Operations whose outcome is unknown.
    pub unknown: usize,
    pub linearizable: Verdict,
    /// Acknowledged writes missing from the reference.
    pub lost: usize,
    /// Events a watcher should have received and did not.
    pub watch_gaps: usize,
    /// Events a watcher received twice, out of revision order, or that are
    /// not writes of its range.
    pub watch_disorder: usize,
    /// A line for each violation of any check but linearizability, including
    /// those counted above.
    pub violations: Vec<String>,
}

impl Report {
    /// Whether the history passed every check. A linearizability timeout
    /// fails: the history was not shown to be linearizable.
    pub fn ok(&self) -> bool {
        self.linearizable == Verdict::Linearizable && self.violations.is_empty()
    }
}

/// The summary, e.g. `ops=2000 unknown=13 linearizable=yes lost=0 watch_gaps=0 watch_disorder=0 violations=0`;
/// a key that failed or ran out of budget is named (`linearizable=no(key=k/1)`).
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match &self.linearizable {
            Verdict::Linearizable => "yes".to_string(),
            Verdict::NotLinearizable { key, .. } => format!("no(key={key})"),
            Verdict::Timeout { key } => format!("timeout(key={key})"),
        };
        write!(
            f,
            "ops={} unknown={} linearizable={verdict} lost={} watch_gaps={} watch_disorder={} violations={}",
            self.ops,
            self.unknown,
            self.lost,
            self.watch_gaps,
            self.watch_disorder,
            self.violations.len()
        )
    }
}

/// Runs every check on `h`, giving the linearizability search `budget`.
/// Unknown outcomes the reference settles are settled first (see `resolve`).
pub fn check_history(h: &History, budget: Duration) -> Report {
    let resolved = resolve_unknowns(h);
    let lost = lost_writes(&h.operations, &h.reference);
    let (mut gaps, mut disorder) = (Vec::new(), Vec::new());
    for log in &h.watches {
        let w = check_watch(log, &h.reference);
        gaps.extend(w.gaps);
        disorder.extend(w.disorder);
    }
    let mut report = Report {
        ops: h.operations.len(),
        unknown: h.operations.iter().filter(|op| op.output == Output::Unknown).count(),
        linearizable: linearizability::check(&resolved.operations, budget),
        lost: lost.len(),
        watch_gaps: gaps.len(),
        watch_disorder: disorder.len(),
        violations: Vec::new(),
    };
    let v = &mut report.violations;
    v.extend(check_reference(&h.reference));
    v.extend(resolved.violations);
    v.extend(linearizability::check_revision_order(&resolved.operations).err());
    v.extend(duplicate_write_revisions(&h.operations));
    v.extend(lost);
    v.extend(unwritten_reads(&h.operations, &h.reference));
    v.extend(check_final_state(h));
    v.extend(gaps);
    v.extend(disorder);
    report
}

/// The reference is one watch's stream: revisions never go down, and a
/// key changes at most once per revision.
pub fn check_reference(reference: &[Event]) -> Vec<String> {
    let mut out: Vec<String> = reference
        .windows(2)
        .filter(|w| w[1].revision < w[0].revision)
        .map(|w| format!("reference: revision {} follows {}", w[1].revision, w[0].revision))
        .collect();
    let mut seen = HashSet::new();
    for e in reference {
        if !seen.insert((e.revision, &e.key)) {
            out.push(format!("reference: key {} changes twice at revision {}", e.key, e.revision));
        }
    }
    out
}

/// The event an acknowledged write must have produced: a put, a CAS that
/// succeeded, or a delete that deleted something.
pub fn acknowledged_write(op: &Operation) -> Option<Event> {
    let (revision, value) = match (&op.input, &op.output) {
        (Input::Put { value, .. }, Output::Put { revision })
        | (Input::Cas { value, .. }, Output::Cas { succeeded: true, revision }) => (*revision, Some(value.clone())),
        (Input::Delete, Output::Delete { deleted, revision }) if *deleted > 0 => (*revision, None),
        _ => return None,
    };
    Some(Event { revision, key: op.key.clone(), value })
}

fn identity(e: &Event) -> (i64, &str, Option<&str>) {
    (e.revision, &e.key, e.value.as_deref())
}

/// Acknowledged writes whose event is not in the reference: lost, or
/// acknowledged with a revision they were not applied at.
pub fn lost_writes(ops: &[Operation], reference: &[Event]) -> Vec<String> {
    let written: HashSet<_> = reference.iter().map(identity).collect();
    ops.iter()
        .filter(|op| acknowledged_write(op).is_some_and(|e| !written.contains(&identity(&e))))
        .map(|op| format!("lost: acknowledged write not in the reference: {}", describe(op)))
        .collect()
}

/// Two different successful writes never share a revision: each is one
/// request, and every request that changes something gets a revision of its own.
pub fn duplicate_write_revisions(ops: &[Operation]) -> Vec<String> {
    let mut by_revision: HashMap<i64, &Operation> = HashMap::new();
    let mut out = Vec::new();
    for op in ops {
        if let Some(e) = acknowledged_write(op)
            && let Some(other) = by_revision.insert(e.revision, op)
        {
            out.push(format!(
                "two writes acknowledged at revision {}: {} and {}",
                e.revision,
                describe(other),
                describe(op)
            ));
        }
    }
    out
}

/// A read that returned a value must name a write of that value to that
/// key at its `mod_revision`.
pub fn unwritten_reads(ops: &[Operation], reference: &[Event]) -> Vec<String> {
    let written: HashSet<_> = reference.iter().map(identity).collect();
    ops.iter()
        .filter(|op| match &op.output {
            Output::Get { value: Some(v), mod_revision, .. } => !written.contains(&(*mod_revision, &op.key, Some(v))),
            _ => false,
        })
        .map(|op| format!("read of a value no write put there at that revision: {}", describe(op)))
        .collect()
}

/// Replaying the reference gives the final contents, read at a revision no
/// older than the last write.
pub fn check_final_state(h: &History) -> Vec<String> {
    let mut replayed = BTreeMap::new();
    for e in &h.reference {
        match &e.value {
            Some(v) => replayed.insert(e.key.as_str(), v.as_str()),
            None => replayed.remove(e.key.as_str()),
        };
    }
    let replayed: BTreeSet<(&str, &str)> = replayed.into_iter().collect();
    let read: BTreeSet<(&str, &str)> = h.final_state.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out: Vec<String> = replayed
        .difference(&read)
        .map(|(k, v)| format!("final state: the writes leave {k} = {v:?}, the final read does not have it"))
        .chain(
            read.difference(&replayed)
                .map(|(k, v)| format!("final state: read {k} = {v:?}, the writes do not leave it")),
        )
        .collect();
    if let Some(last) = h.reference.last()
        && last.revision > h.final_revision
    {
        out.push(format!(
            "final state read at revision {} before the last write at {}",
            h.final_revision, last.revision
        ));
    }
    out
}

/// One watcher's violations, in the two classes [`Report`] counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCheck {
    pub gaps: Vec<String>,
    pub disorder: Vec<String>,
}

/// A watcher must receive exactly the reference's events from its start
/// revision up to the highest revision it received, in revision order, each
/// once. What it would have received after that is unknown, so a watcher
/// that received nothing passes.
pub fn check_watch(log: &WatchLog, reference: &[Event]) -> WatchCheck {
    let mut out = WatchCheck::default();
    let Some(last) = log.events.iter().map(|e| e.revision).max() else { return out };
    let who = format!("watcher {} (from revision {}, {} reconnects)", log.watcher, log.start_revision, log.reconnects);
    for w in log.events.windows(2).filter(|w| w[1].revision < w[0].revision) {
        out.disorder.push(format!("{who}: revision {} after {}", w[1].revision, w[0].revision));
    }
    let mut seen = HashSet::new();
    for e in log.events.iter().filter(|e| !seen.insert((e.revision, &e.key))) {
        out.disorder.push(format!("{who}: {} at revision {} twice", e.key, e.revision));
    }
    let expected: HashSet<_> =
        reference.iter().filter(|e| (log.start_revision..=last).contains(&e.revision)).map(identity).collect();
    let received: HashSet<_> = log.events.iter().map(identity).collect();
    for e in log.events.iter().filter(|e| !expected.contains(&identity(e))) {
        out.disorder.push(format!("{who}: received {e:?}, not a write of its range"));
    }
    for e in reference.iter().filter(|e| expected.contains(&identity(e)) && !received.contains(&identity(e))) {
        out.gaps.push(format!("{who}: missed {e:?}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::linearizability::tests::random_history;
    use super::*;

    const BUDGET: Duration = Duration::from_secs(10);

    fn op(client: u32, key: &str, call: u64, ret: u64, input: Input, output: Output) -> Operation {
        Operation { client, key: key.into(), call, ret: Some(ret), input, output }
    }

    fn event(revision: i64, key: &str, value: Option<&str>) -> Event {
        Event { revision, key: key.into(), value: value.map(Into::into) }
    }

    fn watch(watcher: u32, start_revision: i64, events: &[Event]) -> WatchLog {
        WatchLog { watcher, start_revision, events: events.to_vec(), ..Default::default() }
    }

    /// Two keys, five operations, two watchers (one that stopped early), all consistent.
    fn clean() -> History {
        let put = |value: &str| Input::Put { value: value.into(), lease: 0 };
        let operations = vec![
            op(0, "k/1", 0, 10, put("a"), Output::Put { revision: 2 }),
            op(1, "k/2", 20, 30, put("b"), Output::Put { revision: 3 }),
            op(0, "k/1", 40, 50, Input::Get, Output::Get { value: Some("a".into()), mod_revision: 2, revision: 3 }),
            op(1, "k/2", 60, 70, Input::Delete, Output::Delete { deleted: 1, revision: 4 }),
            op(
                0,
                "k/1",
                80,
                90,
                Input::Cas { expected: Some("a".into()), value: "c".into() },
                Output::Cas { succeeded: true, revision: 5 },
            ),
        ];
        let reference = vec![
            event(2, "k/1", Some("a")),
            event(3, "k/2", Some("b")),
            event(4, "k/2", None),
            event(5, "k/1", Some("c")),
        ];
        History {
            seed: 1,
            operations,
            watches: vec![watch(0, 1, &reference), watch(1, 3, &reference[1..3])],
            reference,
            final_state: vec![("k/1".into(), "c".into())],
            final_revision: 5,
        }
    }

    fn assert_clean(report: &Report) {
        assert!(report.ok(), "{report}: {:#?}", report.violations);
    }

    #[test]
    fn a_clean_history_passes() {
        let report = check_history(&clean(), BUDGET);
        assert_clean(&report);
        assert_eq!(
            report.to_string(),
            "ops=5 unknown=0 linearizable=yes lost=0 watch_gaps=0 watch_disorder=0 violations=0"
        );
    }

    #[test]
    fn a_random_history_of_the_model_passes() {
        let h = random_history(9, 2_000, 3);
        let report = check_history(&h, BUDGET);
        assert_clean(&report);
        assert!(report.unknown > 20, "{report}");
    }

    #[test]
    fn a_watcher_with_no_events_passes() {
        let mut h = clean();
        h.watches.push(watch(2, 1, &[]));
        assert_clean(&check_history(&h, BUDGET));
    }

    #[test]
    fn a_watch_gap_is_counted() {
        let mut h = clean();
        h.watches[0].events.remove(1);
        let report = check_history(&h, BUDGET);
        assert_eq!((report.watch_gaps, report.watch_disorder), (1, 0), "{:#?}", report.violations);
        assert!(report.violations[0].contains("missed"), "{:#?}", report.violations);
    }

    #[test]
    fn a_duplicate_watch_event_is_counted() {
        let mut h = clean();
        let again = h.watches[0].events[1].clone();
        h.watches[0].events.insert(2, again);
        let report = check_history(&h, BUDGET);
        assert_eq!((report.watch_gaps, report.watch_disorder), (0, 1), "{:#?}", report.violations);
    }

    #[test]
    fn out_of_order_watch_events_are_counted() {
        let mut h = clean();
        h.watches[0].events.swap(1, 2);
        let report = check_history(&h, BUDGET);
        assert_eq!((report.watch_gaps, report.watch_disorder), (0, 1), "{:#?}", report.violations);
    }

    #[test]
    fn a_watch_event_outside_the_reference_is_counted() {
        let mut h = clean();
        h.watches[1].events[0].value = Some("x".into());
        let report = check_history(&h, BUDGET);
        // The wrong event, and the right one it replaced.
        assert_eq!((report.watch_gaps, report.watch_disorder), (1, 1), "{:#?}", report.violations);
        let mut h = clean();
        h.watches[1].events.insert(0, event(2, "k/1", Some("a")));
        assert_eq!(check_history(&h, BUDGET).watch_disorder, 1, "an event before the watcher's start");
    }

    #[test]
    fn a_lost_acknowledged_write_is_counted() {
        let mut h = clean();
        h.reference.retain(|e| e.revision != 4);
        h.watches.iter_mut().for_each(|w| w.events.retain(|e| e.revision != 4));
        h.final_state.push(("k/2".into(), "b".into()));
        let report = check_history(&h, BUDGET);
        assert_eq!(report.lost, 1, "{:#?}", report.violations);
        assert!(
            report.violations.iter().any(|v| v.starts_with("lost: ") && v.contains("Delete")),
            "{:#?}",
            report.violations
        );
    }

    #[test]
    fn a_write_acknowledged_at_the_wrong_revision_is_lost() {
        let mut h = clean();
        h.operations[0].output = Output::Put { revision: 5 };
        let report = check_history(&h, BUDGET);
        assert_eq!(report.lost, 1, "{:#?}", report.violations);
        assert!(report.violations.iter().any(|v| v.starts_with("two writes acknowledged at revision 5")));
    }

    #[test]
    fn a_final_state_mismatch_is_reported() {
        let mut h = clean();
        h.final_state = vec![("k/1".into(), "a".into())];
        let report = check_history(&h, BUDGET);
        assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
        assert!(!report.ok());
        let mut h = clean();
        h.final_revision = 4;
        assert_eq!(check_history(&h, BUDGET).violations.len(), 1);
    }

    #[test]
    fn a_read_must_name_a_write() {
        let mut h = clean();
        h.operations[2].output = Output::Get { value: Some("a".into()), mod_revision: 3, revision: 3 };
        let report = check_history(&h, BUDGET);
        assert_eq!(report.violations.len(), 1, "{:#?}", report.violations);
        assert!(report.violations[0].starts_with("read of a value no write put there"));
    }

    #[test]
    fn the_reference_must_be_one_ordered_stream() {
        let reference = [event(3, "k/1", Some("a")), event(2, "k/2", None), event(3, "k/1", Some("b"))];
        assert_eq!(check_reference(&reference).len(), 2);
        assert!(check_reference(&clean().reference).is_empty());
    }

    #[test]
    fn revisions_going_back_in_real_time_are_reported() {
        let mut h = clean();
        h.operations[2].output = Output::Get { value: Some("a".into()), mod_revision: 2, revision: 2 };
        let report = check_history(&h, BUDGET);
        assert_eq!(report.violations.len(), 1, "{:#?}", report.violations);
        assert!(report.violations[0].contains("saw a revision older"));
    }

    #[test]
    fn a_linearizability_violation_fails_the_report() {
        let mut h = clean();
        h.operations[2].call = 95;
        h.operations[2].ret = Some(99);
        let report = check_history(&h, BUDGET);
        assert!(matches!(&report.linearizable, Verdict::NotLinearizable { key, .. } if key == "k/1"), "{report}");
        assert!(!report.ok());
        assert!(report.to_string().contains("linearizable=no(key=k/1)"));
    }
}
