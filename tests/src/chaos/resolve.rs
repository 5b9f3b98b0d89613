//! Unknown outcomes, settled by the event log where that is sound.
//!
//! An operation whose answer never came is open until the end of the history,
//! which makes the linearizability search branch over every later moment.
//! The reference event log holds every write from revision 1, so most of them
//! can be decided:
//! - a put or compare-and-swap writes a value no other write uses: if the log
//!   has it at revision r, the operation happened at r; if not, it never took
//!   effect and is dropped;
//! - a delete or revoke that matches no delete event on its key the
//!   acknowledged operations leave unexplained had no effect and is dropped.
//!
//! An operation that happened at revision r was applied before any other
//! operation that answered with revision r or later returned, which bounds
//! its return time. What stays ambiguous keeps its open end.

use std::collections::{HashMap, HashSet};

use super::history::{Event, History, Input, Operation, Output};

/// The history with unknown outcomes settled, and any write that the event
/// log places before the moment it was sent (impossible, so a violation).
pub struct Resolved {
    pub operations: Vec<Operation>,
    pub violations: Vec<String>,
}

pub fn resolve_unknowns(history: &History) -> Resolved {
    let known: Vec<&Operation> = history.operations.iter().filter(|op| op.ret.is_some()).collect();
    let bounds = ReturnBounds::new(&known);
    let writes: HashMap<(&str, &str), i64> = history
        .reference
        .iter()
        .filter_map(|e| e.value.as_deref().map(|v| ((e.key.as_str(), v), e.revision)))
        .collect();
    let unexplained = unexplained_deletes(&history.reference, &known);

    let mut resolved = Vec::with_capacity(history.operations.len());
    let mut violations = Vec::new();
    for op in &history.operations {
        if op.ret.is_some() {
            resolved.push(op.clone());
            continue;
        }
        match &op.input {
            Input::Put { value, .. } | Input::Cas { value, .. } => {
                let Some(&revision) = writes.get(&(op.key.as_str(), value.as_str())) else { continue };
                let output = match op.input {
                    Input::Put { .. } => Output::Put { revision },
                    _ => Output::Cas { succeeded: true, revision },
                };
                let ret = bounds.applied_by(revision);
                if ret <= op.call {
                    violations.push(format!(
                        "client {} wrote {value:?} to {} at {} ns, but revision {revision} holding it was seen by an \
                         operation that returned at {ret} ns",
                        op.client, op.key, op.call
                    ));
                    continue;
                }
                resolved.push(Operation { ret: Some(ret), output, ..op.clone() });
            }
            Input::Delete | Input::Revoke { .. } => {
                let after = bounds.observed_before(op.call);
                let explains = unexplained.get(op.key.as_str()).is_some_and(|revs| revs.iter().any(|r| *r > after));
                if explains {
                    resolved.push(op.clone());
                }
            }
            Input::Get => {}
        }
    }
    Resolved { operations: resolved, violations }
}

/// Delete events per key that no acknowledged delete or revoke accounts for.
fn unexplained_deletes<'a>(reference: &'a [Event], known: &[&Operation]) -> HashMap<&'a str, Vec<i64>> {
    let explained: HashSet<(&str, i64)> = known
        .iter()
        .filter_map(|op| match op.output {
            Output::Delete { deleted, revision } if deleted > 0 => Some((op.key.as_str(), revision)),
            Output::Revoke { revision } => Some((op.key.as_str(), revision)),
            _ => None,
        })
        .collect();
    let mut out: HashMap<&str, Vec<i64>> = HashMap::new();
    for e in reference.iter().filter(|e| e.value.is_none()) {
        if !explained.contains(&(e.key.as_str(), e.revision)) {
            out.entry(e.key.as_str()).or_default().push(e.revision);
        }
    }
    out
}

/// Answers about time and revision from the operations that completed.
struct ReturnBounds {
    /// (revision, return time), sorted by revision, with each entry's time
    /// replaced by the earliest return among entries at that revision or later.
    by_revision: Vec<(i64, u64)>,
    /// (return time, revision), sorted by time, with each entry's revision
    /// replaced by the highest revision returned by then.
    by_time: Vec<(u64, i64)>,
    /// Later than every return: when the final read happened.
    end: u64,
}

impl ReturnBounds {
    fn new(known: &[&Operation]) -> ReturnBounds {
        let answered: Vec<(i64, u64)> = known.iter().filter_map(|op| Some((op.output.revision()?, op.ret?))).collect();
        let mut by_revision = answered.clone();
        by_revision.sort_unstable();
        let mut earliest = u64::MAX;
        for entry in by_revision.iter_mut().rev() {
            earliest = earliest.min(entry.1);
            entry.1 = earliest;
        }
        let mut by_time: Vec<(u64, i64)> = answered.iter().map(|(rev, ret)| (*ret, *rev)).collect();
        by_time.sort_unstable();
        let mut highest = 0;
        for entry in &mut by_time {
            highest = highest.max(entry.1);
            entry.1 = highest;
        }
        let end = known.iter().filter_map(|op| op.ret).max().unwrap_or_default() + 1;
        ReturnBounds { by_revision, by_time, end }
    }

    /// A time by which revision `revision` was surely applied: the earliest
    /// return of another operation that answered with it or a later one.
    /// (The operation itself is unknown, so it is not among them.)
    fn applied_by(&self, revision: i64) -> u64 {
        let i = self.by_revision.partition_point(|(rev, _)| *rev < revision);
        self.by_revision.get(i).map_or(self.end, |(_, ret)| *ret)
    }

    /// The highest revision any operation returned before `time`: whatever
    /// happens after `time` gets a higher revision.
    fn observed_before(&self, time: u64) -> i64 {
        let i = self.by_time.partition_point(|(ret, _)| *ret < time);
        if i == 0 { 0 } else { self.by_time[i - 1].1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u32, call: u64, ret: Option<u64>, input: Input, output: Output) -> Operation {
        Operation { client, key: "k/0".into(), call, ret, input, output }
    }

    fn put(value: &str) -> Input {
        Input::Put { value: value.into(), lease: 0 }
    }

    fn event(revision: i64, value: Option<&str>) -> Event {
        Event { revision, key: "k/0".into(), value: value.map(str::to_string) }
    }

    fn history(operations: Vec<Operation>, reference: Vec<Event>) -> History {
        History { operations, reference, ..Default::default() }
    }

    #[test]
    fn an_unknown_put_in_the_log_happened_before_the_first_later_revision_returned() {
        let h = history(
            vec![
                op(1, 10, None, put("a"), Output::Unknown),
                op(2, 20, Some(50), put("b"), Output::Put { revision: 3 }),
                op(3, 30, Some(40), Input::Get, Output::Get { value: Some("a".into()), mod_revision: 2, revision: 2 }),
            ],
            vec![event(2, Some("a")), event(3, Some("b"))],
        );
        let r = resolve_unknowns(&h);
        assert!(r.violations.is_empty());
        assert_eq!(r.operations[0].ret, Some(40));
        assert_eq!(r.operations[0].output, Output::Put { revision: 2 });
    }

    #[test]
    fn an_unknown_write_missing_from_the_log_is_dropped() {
        let h = history(
            vec![
                op(1, 10, None, put("a"), Output::Unknown),
                op(2, 10, None, Input::Cas { expected: None, value: "c".into() }, Output::Unknown),
                op(3, 20, Some(30), put("b"), Output::Put { revision: 2 }),
            ],
            vec![event(2, Some("b"))],
        );
        let r = resolve_unknowns(&h);
        assert_eq!(r.operations.len(), 1);
        assert_eq!(r.operations[0].client, 3);
    }

    #[test]
    fn an_unknown_delete_stays_open_only_while_a_delete_event_is_unexplained() {
        let unknown_delete = op(1, 100, None, Input::Delete, Output::Unknown);
        let acked = vec![
            op(2, 10, Some(20), put("a"), Output::Put { revision: 2 }),
            op(3, 30, Some(40), Input::Delete, Output::Delete { deleted: 1, revision: 3 }),
        ];
        let mut ops = acked.clone();
        ops.push(unknown_delete.clone());
        let explained = history(ops, vec![event(2, Some("a")), event(3, None)]);
        assert_eq!(resolve_unknowns(&explained).operations.len(), 2);

        let mut ops = acked;
        ops.push(op(4, 50, Some(60), put("b"), Output::Put { revision: 4 }));
        ops.push(unknown_delete);
        let unexplained = history(ops, vec![event(2, Some("a")), event(3, None), event(4, Some("b")), event(5, None)]);
        let r = resolve_unknowns(&unexplained);
        assert_eq!(r.operations.len(), 4);
        assert_eq!(r.operations[3].ret, None);
    }

    #[test]
    fn a_write_seen_before_it_was_sent_is_a_violation() {
        let h = history(
            vec![
                op(1, 10, Some(20), Input::Get, Output::Get { value: Some("a".into()), mod_revision: 2, revision: 2 }),
                op(2, 30, None, put("a"), Output::Unknown),
            ],
            vec![event(2, Some("a"))],
        );
        let r = resolve_unknowns(&h);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }
}
