//! Linearizability of a history against a sequential model of one etcd key,
//! searched the way Porcupine does: Wing & Gong's depth-first search over the
//! orders the operations' real-time overlaps allow, with Lowe's memoization of
//! every (set of linearized operations, model state) already explored.
//!
//! Linearizability is compositional, so each key is checked on its own: the
//! search is exponential in the number of overlapping operations, and
//! splitting by key keeps that number small.
//!
//! An operation with an unknown outcome returns at +infinity: it may take
//! effect at any point after its call, or never (linearized after everything
//! else, which changes nothing anyone saw). Such operations overlap
//! everything after them, so the search treats them apart from Porcupine's
//! scheme to keep them from multiplying its work; see [`Search`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::history::{Input, Operation, Output};

/// The outcome of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order of `key`'s operations fits the model. `explanation` shows the
    /// longest linearizable prefix the search found and the operation that
    /// could not follow it.
    NotLinearizable {
        key: String,
        explanation: String,
    },
    /// The search on `key` ran out of budget before deciding; the history is
    /// neither accepted nor rejected.
    Timeout {
        key: String,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::NotLinearizable { key, explanation } => write!(f, "not linearizable on key {key}: {explanation}"),
            Verdict::Timeout { key } => write!(f, "linearizability check timed out on key {key}"),
        }
    }
}

/// Checks that the operations are linearizable, key by key, within `budget`
/// of wall time for all keys together. Keys are checked in parallel.
pub fn check(ops: &[Operation], budget: Duration) -> Verdict {
    let deadline = Instant::now().checked_add(budget);
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    // A read with an unknown outcome neither changes the state nor says anything about it.
    for op in ops.iter().filter(|op| !(op.input == Input::Get && op.output == Output::Unknown)) {
        by_key.entry(&op.key).or_default().push(op);
    }
    let keys: Vec<(&str, Vec<&Operation>)> = by_key.into_iter().collect();
    let outcomes = parallel_map(&keys, |(_, ops)| check_key(ops, deadline));
    let mut timed_out = None;
    for ((key, _), outcome) in keys.iter().zip(outcomes) {
        match outcome {
            Outcome::Linearizable => {}
            Outcome::Stuck(explanation) => return Verdict::NotLinearizable { key: key.to_string(), explanation },
            Outcome::Timeout => timed_out = timed_out.or(Some(key)),
        }
    }
    timed_out.map_or(Verdict::Linearizable, |key| Verdict::Timeout { key: key.to_string() })
}

/// Checks that revisions respect real time: if A returned before B was
/// called, B cannot have seen an older revision than A did. Operations
/// without a response are left out. Sorting by return and sweeping by call
/// keeps this O(n log n).
pub fn check_revision_order(ops: &[Operation]) -> Result<(), String> {
    let answered: Vec<(u64, u64, i64, &Operation)> =
        ops.iter().filter_map(|op| Some((op.call, op.ret?, op.output.revision()?, op))).collect();
    let mut by_ret = answered.clone();
    by_ret.sort_by_key(|&(_, ret, ..)| ret);
    let mut by_call = answered;
    by_call.sort_by_key(|&(call, ..)| call);

    let mut returned = by_ret.iter().peekable();
    // The highest revision among the operations that returned before the current call.
    let mut newest: Option<(i64, &Operation)> = None;
    let mut violations = 0;
    let mut first = None;
    for &(call, _, revision, op) in &by_call {
        while let Some(&(_, _, r, before)) = returned.next_if(|&&(_, ret, ..)| ret < call) {
            if newest.is_none_or(|(n, _)| r > n) {
                newest = Some((r, before));
            }
        }
        if let Some((n, before)) = newest
            && revision < n
        {
            violations += 1;
            first.get_or_insert((before, op));
        }
    }
    match first {
        None => Ok(()),
        Some((before, after)) => {
            let first = format!("[{}] returned before [{}] was called", describe(before), describe(after));
            Err(format!("{violations} operation(s) saw a revision older than one already returned, first: {first}"))
        }
    }
}

/// One line naming an operation: client, call and return time, input, output.
pub fn describe(op: &Operation) -> String {
    let ret = op.ret.map_or_else(|| "?".to_string(), seconds);
    format!("client {} {}..{} key {} {:?} -> {:?}", op.client, seconds(op.call), ret, op.key, op.input, op.output)
}

fn seconds(nanos: u64) -> String {
    format!("{}.{:06}s", nanos / 1_000_000_000, nanos % 1_000_000_000 / 1000)
}

/// Runs `f` on every item on as many threads as there are cores, keeping the order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { return out };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// A key's state in the model: absent (`value: None`, `lease: 0`), or an
/// interned value and the lease it is attached to (0 for none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct State {
    value: Option<u32>,
    lease: i64,
}

/// An operation as the model sees it: its input with what its output claims,
/// `None` where the outcome is unknown and so not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    Get {
        value: Option<u32>,
    },
    Put {
        value: u32,
        lease: i64,
    },
    Delete {
        deleted: Option<i64>,
    },
    Cas {
        expected: Option<u32>,
        value: u32,
        succeeded: Option<bool>,
    },
    Revoke {
        lease: i64,
    },
    /// An output that does not answer its input: never legal.
    Mismatch,
}

impl Step {
    /// The state after this step from `s`, or `None` if its output is impossible from `s`.
    fn apply(self, s: State) -> Option<State> {
        match self {
            Step::Get { value } => (s.value == value).then_some(s),
            Step::Put { value, lease } => Some(State { value: Some(value), lease }),
            Step::Delete { deleted } => match deleted {
                Some(d) if d != i64::from(s.value.is_some()) => None,
                _ => Some(State::default()),
            },
            Step::Cas { expected, value, succeeded } => {
                let matches = s.value == expected;
                match succeeded {
                    Some(claimed) if claimed != matches => None,
                    _ if matches => Some(State { value: Some(value), lease: 0 }),
                    _ => Some(s),
                }
            }
            Step::Revoke { lease } => {
                Some(if s.value.is_some() && lease != 0 && s.lease == lease { State::default() } else { s })
            }
            Step::Mismatch => None,
        }
    }
}

/// Turns a key's operations into steps over a small state, cheap to hash and
/// compare. Only what some operation checks is told apart, so that the memo
/// merges states that behave the same in every step:
/// - values a read returned or a CAS expected get their own ids, and all
///   others one shared id;
/// - leases some operation revokes are kept, and all others become 0.
struct Interner<'a> {
    ids: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
    revoked: HashSet<i64>,
}

/// The id of every value no operation compares against.
const UNREAD: u32 = 0;

impl<'a> Interner<'a> {
    fn new(ops: &[&'a Operation]) -> Interner<'a> {
        let mut interner = Interner { ids: HashMap::new(), names: vec![""], revoked: HashSet::new() };
        for op in ops {
            let compared = match (&op.input, &op.output) {
                (Input::Cas { expected, .. }, _) => expected.as_deref(),
                (_, Output::Get { value, .. }) => value.as_deref(),
                (Input::Revoke { lease }, _) => {
                    interner.revoked.insert(*lease);
                    None
                }
                _ => None,
            };
            if let Some(v) = compared {
                interner.ids.entry(v).or_insert_with(|| {
                    interner.names.push(v);
                    interner.names.len() as u32 - 1
                });
            }
        }
        interner
    }

    fn value(&self, value: &str) -> u32 {
        self.ids.get(value).copied().unwrap_or(UNREAD)
    }

    fn lease(&self, lease: i64) -> i64 {
        if self.revoked.contains(&lease) { lease } else { 0 }
    }

    fn step(&self, op: &Operation) -> Step {
        match (&op.input, &op.output) {
            (Input::Get, Output::Get { value, .. }) => Step::Get { value: value.as_deref().map(|v| self.value(v)) },
            (Input::Put { value, lease }, Output::Put { .. } | Output::Unknown) => {
                Step::Put { value: self.value(value), lease: self.lease(*lease) }
            }
            (Input::Delete, Output::Delete { deleted, .. }) => Step::Delete { deleted: Some(*deleted) },
            (Input::Delete, Output::Unknown) => Step::Delete { deleted: None },
            (Input::Cas { expected, value }, output) => {
                let succeeded = match output {
                    Output::Cas { succeeded, .. } => Some(*succeeded),
                    Output::Unknown => None,
                    _ => return Step::Mismatch,
                };
                Step::Cas { expected: expected.as_deref().map(|v| self.value(v)), value: self.value(value), succeeded }
            }
            (Input::Revoke { lease }, Output::Revoke { .. } | Output::Unknown) => Step::Revoke { lease: *lease },
            _ => Step::Mismatch,
        }
    }

    fn show(&self, s: State) -> String {
        let lease = if s.lease == 0 { String::new() } else { format!(" with lease {}", s.lease) };
        match s.value {
            None => "absent".to_string(),
            Some(UNREAD) => format!("holding a value no operation reads{lease}"),
            Some(v) => format!("holding {:?}{lease}", self.names[v as usize]),
        }
    }
}

/// A set of operations, as bits.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(n: usize) -> Bitset {
        Bitset(vec![0; n.div_ceil(64)])
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    fn is_subset(&self, other: &Bitset) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }
}

/// The calls and returns of a key's answered operations in time order, as a
/// doubly linked list from which a linearized operation is lifted, and put
/// back when the search backtracks. Operation `i` calls at node `2i` and
/// returns at node `2i + 1`; the head and tail sentinels follow them.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Entries {
    fn new(ops: &[&Operation]) -> Entries {
        // A call sorts before a return at the same time: such operations overlap.
        let time = |node: usize| {
            let op = ops[node / 2];
            (if node.is_multiple_of(2) { op.call } else { op.ret.unwrap_or(u64::MAX) }, node % 2, node)
        };
        let mut order: Vec<usize> = (0..2 * ops.len()).collect();
        order.sort_by_key(|&node| time(node));
        let (head, tail) = (2 * ops.len(), 2 * ops.len() + 1);
        let mut list = Entries { next: vec![tail; tail + 1], prev: vec![head; tail + 1] };
        let mut last = head;
        for node in order.into_iter().chain([tail]) {
            list.next[last] = node;
            list.prev[node] = last;
            last = node;
        }
        list
    }

    fn first(&self) -> usize {
        self.next[self.next.len() - 2]
    }

    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    /// Undoes `unlink(x)`; valid when undone in the reverse order.
    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        self.prev[n] = x;
    }

    fn lift(&mut self, op: usize) {
        self.unlink(2 * op);
        self.unlink(2 * op + 1);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(2 * op + 1);
        self.relink(2 * op);
    }
}

/// Where the search looks for the next operation to linearize.
#[derive(Clone, Copy)]
enum Scan {
    /// At a node of the answered operations' entries: calls before the first
    /// return are candidates.
    Entry(usize),
    /// Past the first return, answered operation `blocked`'s: the unknown
    /// operations from `from` on that were called by then are candidates.
    Unknown { from: usize, blocked: usize },
}

enum Outcome {
    Linearizable,
    /// Why not, for a human.
    Stuck(String),
    Timeout,
}

/// How often the search looks at the clock.
const CLOCK_EVERY: u64 = 4096;

/// Configurations explored, per (hash of the answered operations linearized,
/// state): each set of answered operations, with the sets of unknown ones
/// linearized with it.
type Memo = HashMap<(u64, State), Vec<(Bitset, Vec<Bitset>)>>;

/// Wing & Gong's search over one key's operations, with the memo.
///
/// Answered operations are tried first; unknown ones only once no answered
/// one fits, as they matter only where something answered needs their effect.
/// Three rules keep unknown operations, which stay candidates forever, from
/// multiplying the search, each by skipping what another branch covers:
/// - The memo holds, for each (answered operations linearized, state), the
///   sets of unknown operations linearized with them so far. A configuration
///   whose unknown set contains one of those is skipped: any way to finish it
///   also finishes the smaller one, with the extra unknown operations last
///   (they never fail). Porcupine's exact-match memo would explore every
///   subset of them separately.
/// - Unknown operations with the same step are interchangeable, so they are
///   linearized in call order.
/// - An unknown operation right after another is skipped if it leaves the
///   same state with or without the other, which was then pointless.
struct Search<'a> {
    /// The answered operations, then the unknown ones in call order.
    ops: Vec<&'a Operation>,
    steps: Vec<Step>,
    answered: usize,
    /// For an unknown operation, the previous one with the same step.
    twin: Vec<Option<usize>>,
    entries: Entries,
    /// The answered and the unknown operations linearized, apart for the memo.
    linearized: (Bitset, Bitset),
    /// A Zobrist hash of `linearized.0`, kept up to date so that the memo
    /// does not rehash the whole set at every step.
    hash: u64,
    explored: Memo,
    /// Each operation linearized, with the state before it and where the scan
    /// resumes if it leads nowhere.
    stack: Vec<(usize, State, Scan)>,
    state: State,
    /// Answered operations not linearized yet.
    left: usize,
}

impl<'a> Search<'a> {
    fn new(ops: &[&'a Operation], interner: &Interner) -> Search<'a> {
        let (answered, mut unknown): (Vec<&Operation>, Vec<&Operation>) =
            ops.iter().partition(|op| op.output != Output::Unknown);
        unknown.sort_by_key(|op| op.call);
        let entries = Entries::new(&answered);
        let (n, u) = (answered.len(), unknown.len());
        let ops: Vec<&Operation> = answered.into_iter().chain(unknown).collect();
        let steps: Vec<Step> = ops.iter().map(|op| interner.step(op)).collect();
        let mut last = HashMap::new();
        let twin = (0..ops.len()).map(|j| if j < n { None } else { last.insert(steps[j], j) }).collect();
        let linearized = (Bitset::new(n), Bitset::new(u));
        Search {
            ops,
            steps,
            answered: n,
            twin,
            entries,
            linearized,
            hash: 0,
            explored: HashMap::new(),
            stack: Vec::new(),
            state: State::default(),
            left: n,
        }
    }

    fn is_linearized(&self, op: usize) -> bool {
        if op < self.answered { self.linearized.0.get(op) } else { self.linearized.1.get(op - self.answered) }
    }

    fn mark(&mut self, op: usize, on: bool) {
        let (bits, i) = if op < self.answered {
            self.hash ^= zobrist(op);
            (&mut self.linearized.0, op)
        } else {
            (&mut self.linearized.1, op - self.answered)
        };
        if on { bits.set(i) } else { bits.clear(i) }
    }

    /// Linearizes `op` next if its output fits the state and that leads
    /// somewhere not covered yet; `resume` is where the scan goes on if not,
    /// or once this choice is undone.
    fn advance(&mut self, op: usize, resume: Scan) -> bool {
        let Some(after) = self.steps[op].apply(self.state) else { return false };
        self.mark(op, true);
        let same_hash = self.explored.entry((self.hash, after)).or_default();
        let i = same_hash.iter().position(|(answered, _)| *answered == self.linearized.0).unwrap_or_else(|| {
            same_hash.push((self.linearized.0.clone(), Vec::new()));
            same_hash.len() - 1
        });
        let seen = &mut same_hash[i].1;
        if seen.iter().any(|u| u.is_subset(&self.linearized.1)) {
            self.mark(op, false);
            return false;
        }
        seen.retain(|u| !self.linearized.1.is_subset(u));
        seen.push(self.linearized.1.clone());
        self.stack.push((op, self.state, resume));
        self.state = after;
        if op < self.answered {
            self.entries.lift(op);
            self.left -= 1;
        }
        true
    }

    /// Undoes the last choice, giving where the scan resumes, or `None` when
    /// there is none left to undo.
    fn undo(&mut self) -> Option<Scan> {
        let (op, before, resume) = self.stack.pop()?;
        if op < self.answered {
            self.entries.unlift(op);
            self.left += 1;
        }
        self.mark(op, false);
        self.state = before;
        Some(resume)
    }

    /// The next unknown candidate from `from` on, while answered operation `blocked` is the first to return.
    fn next_unknown(&self, from: usize, blocked: usize) -> Option<usize> {
        let by = self.ops[blocked].ret.unwrap_or(u64::MAX);
        let pointless = |j: usize| match self.stack.last() {
            Some(&(last, before, _)) if last >= self.answered => {
                self.steps[j].apply(before) == self.steps[j].apply(self.state)
            }
            _ => false,
        };
        (from..self.ops.len())
            .take_while(|&j| self.ops[j].call <= by)
            .find(|&j| !self.is_linearized(j) && self.twin[j].is_none_or(|t| self.is_linearized(t)) && !pointless(j))
    }
}

/// A fixed pseudo-random key per operation (splitmix64's finalizer).
fn zobrist(op: usize) -> u64 {
    let mut z = (op as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn check_key(ops: &[&Operation], deadline: Option<Instant>) -> Outcome {
    let interner = Interner::new(ops);
    let mut search = Search::new(ops, &interner);
    // The longest linearization reached, its end state, and the answered operation that could not follow it.
    let mut deepest: Option<(Vec<usize>, State, usize)> = None;
    let mut scan = Scan::Entry(search.entries.first());
    let mut iterations = 0u64;
    // Once every answered operation is linearized, the unknown ones left can follow in any order.
    while search.left > 0 {
        if iterations.is_multiple_of(CLOCK_EVERY) && deadline.is_some_and(|d| Instant::now() >= d) {
            return Outcome::Timeout;
        }
        iterations += 1;
        let (op, resume) = match scan {
            Scan::Entry(node) if node.is_multiple_of(2) => (node / 2, Scan::Entry(search.entries.next[node])),
            // A return (never the tail while answered operations are left).
            Scan::Entry(node) => {
                scan = Scan::Unknown { from: search.answered, blocked: node / 2 };
                continue;
            }
            Scan::Unknown { from, blocked } => match search.next_unknown(from, blocked) {
                Some(op) => (op, Scan::Unknown { from: op + 1, blocked }),
                None => {
                    // `blocked` had to come next and cannot: undo the last choice.
                    if deepest.as_ref().is_none_or(|(prefix, ..)| search.stack.len() > prefix.len()) {
                        deepest = Some((search.stack.iter().map(|&(op, ..)| op).collect(), search.state, blocked));
                    }
                    match search.undo() {
                        Some(resume) => scan = resume,
                        None => {
                            let (prefix, state, stuck) = deepest.unwrap_or_else(|| (Vec::new(), search.state, blocked));
                            let prefix: Vec<&Operation> = prefix.iter().map(|&op| search.ops[op]).collect();
                            return Outcome::Stuck(explain(ops.len(), &interner, &prefix, state, search.ops[stuck]));
                        }
                    }
                    continue;
                }
            },
        };
        scan = if search.advance(op, resume) { Scan::Entry(search.entries.first()) } else { resume };
    }
    Outcome::Linearizable
}

/// How many operations of the longest linearization the explanation shows.
const SHOWN: usize = 5;

fn explain(total: usize, interner: &Interner, prefix: &[&Operation], state: State, stuck: &Operation) -> String {
    let mut lines = vec![format!("the longest linearization found orders {} of {total} operations", prefix.len())];
    if !prefix.is_empty() {
        lines.push(format!("the last {} of them:", prefix.len().min(SHOWN)));
        lines.extend(prefix[prefix.len().saturating_sub(SHOWN)..].iter().map(|op| format!("  {}", describe(op))));
    }
    lines.push(format!("leaving the key {}; this cannot follow:", interner.show(state)));
    lines.push(format!("  {}", describe(stuck)));
    lines.join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::history::{Event, History, WatchLog};
    use super::*;

    const BUDGET: Duration = Duration::from_secs(10);

    fn op(client: u32, call: u64, ret: Option<u64>, input: Input, output: Output) -> Operation {
        let output = if ret.is_some() { output } else { Output::Unknown };
        Operation { client, key: "k".into(), call, ret, input, output }
    }

    fn get(client: u32, call: u64, ret: u64, value: Option<&str>) -> Operation {
        let output = Output::Get { value: value.map(Into::into), mod_revision: 0, revision: 0 };
        op(client, call, Some(ret), Input::Get, output)
    }

    fn put(client: u32, call: u64, ret: Option<u64>, value: &str, lease: i64) -> Operation {
        op(client, call, ret, Input::Put { value: value.into(), lease }, Output::Put { revision: 0 })
    }

    fn delete(client: u32, call: u64, ret: Option<u64>, deleted: i64) -> Operation {
        op(client, call, ret, Input::Delete, Output::Delete { deleted, revision: 0 })
    }

    fn cas(client: u32, call: u64, ret: Option<u64>, expected: Option<&str>, value: &str, ok: bool) -> Operation {
        let input = Input::Cas { expected: expected.map(Into::into), value: value.into() };
        op(client, call, ret, input, Output::Cas { succeeded: ok, revision: 0 })
    }

    fn revoke(client: u32, call: u64, ret: u64, lease: i64) -> Operation {
        op(client, call, Some(ret), Input::Revoke { lease }, Output::Revoke { revision: 0 })
    }

    fn on(key: &str, mut op: Operation) -> Operation {
        op.key = key.into();
        op
    }

    fn assert_linearizable(ops: &[Operation]) {
        assert_eq!(check(ops, BUDGET), Verdict::Linearizable);
    }

    /// Asserts the verdict is a violation on `key`, and returns its explanation.
    fn assert_rejected(ops: &[Operation], key: &str) -> String {
        match check(ops, BUDGET) {
            Verdict::NotLinearizable { key: k, explanation } if k == key => explanation,
            v => panic!("expected a violation on {key}, got {v:?}"),
        }
    }

    #[test]
    fn overlapping_operations_take_effect_in_either_order() {
        // b takes effect before a although a was called first, and each read sees one of them.
        assert_linearizable(&[
            put(1, 0, Some(100), "a", 0),
            put(2, 10, Some(90), "b", 0),
            get(3, 20, 30, Some("b")),
            get(3, 40, 50, Some("a")),
            get(4, 10, 60, None),
            get(3, 110, 120, Some("a")),
        ]);
    }

    #[test]
    fn a_call_and_a_return_at_the_same_time_overlap() {
        assert_linearizable(&[get(1, 0, 10, Some("a")), put(2, 10, Some(20), "a", 0)]);
    }

    #[test]
    fn unknown_outcomes_may_explain_later_reads() {
        assert_linearizable(&[
            put(1, 0, None, "a", 0),
            get(2, 10, 20, None),
            get(2, 30, 40, Some("a")),
            delete(3, 50, None, 0),
            get(2, 200, 210, None),
        ]);
    }

    #[test]
    fn an_unknown_put_may_never_happen() {
        assert_linearizable(&[put(1, 0, Some(10), "a", 0), put(2, 20, None, "b", 0), get(1, 100, 110, Some("a"))]);
    }

    #[test]
    fn an_unknown_cas_succeeds_only_if_its_comparison_holds() {
        let history =
            [put(1, 0, Some(10), "a", 0), cas(2, 20, None, Some("a"), "b", true), get(1, 100, 110, Some("b"))];
        assert_linearizable(&history);
        let history =
            [put(1, 0, Some(10), "a", 0), cas(2, 20, None, Some("z"), "b", true), get(1, 100, 110, Some("b"))];
        assert_rejected(&history, "k");
    }

    #[test]
    fn revoking_a_lease_deletes_only_the_key_still_attached_to_it() {
        assert_linearizable(&[
            on("x", put(1, 0, Some(10), "a", 7)),
            on("x", revoke(1, 20, 30, 7)),
            on("x", get(1, 40, 50, None)),
            on("y", put(2, 0, Some(10), "a", 8)),
            on("y", put(2, 20, Some(30), "b", 0)),
            on("y", revoke(2, 40, 50, 8)),
            on("y", get(2, 60, 70, Some("b"))),
        ]);
        assert_rejected(&[put(1, 0, Some(10), "a", 7), revoke(1, 20, 30, 7), get(1, 40, 50, Some("a"))], "k");
    }

    #[test]
    fn in_a_cas_race_exactly_one_wins() {
        let race = |b_wins: bool, c_wins: bool| {
            [
                put(1, 0, Some(10), "a", 0),
                cas(2, 20, Some(40), Some("a"), "b", b_wins),
                cas(3, 25, Some(45), Some("a"), "c", c_wins),
            ]
        };
        let mut history = race(true, false).to_vec();
        history.push(get(1, 50, 60, Some("b")));
        assert_linearizable(&history);
        assert_linearizable(&race(false, true));
        assert_rejected(&race(true, true), "k");
        assert_rejected(&race(false, false), "k");
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        let history = [put(1, 0, Some(10), "a", 0), put(2, 20, Some(30), "b", 0), get(3, 40, 50, Some("a"))];
        let explanation = assert_rejected(&history, "k");
        assert!(
            explanation.contains("leaving the key holding a value no operation reads; this cannot follow"),
            "{explanation}"
        );
        assert!(explanation.contains("client 3 0.000000s..0.000000s key k Get"), "{explanation}");
    }

    #[test]
    fn a_read_before_its_write_was_invoked_is_rejected() {
        assert_rejected(&[get(1, 0, 10, Some("a")), put(2, 20, Some(30), "a", 0)], "k");
        assert_rejected(&[get(1, 0, 10, Some("a")), put(2, 20, None, "a", 0)], "k");
    }

    #[test]
    fn a_delete_of_an_existing_key_must_report_it() {
        assert_rejected(&[put(1, 0, Some(10), "a", 0), delete(2, 20, Some(30), 0)], "k");
        assert_linearizable(&[put(1, 0, Some(10), "a", 0), delete(2, 5, Some(30), 0)]);
    }

    #[test]
    fn a_value_is_not_resurrected_after_a_completed_delete() {
        assert_rejected(&[put(1, 0, Some(10), "a", 0), delete(2, 20, Some(30), 1), get(3, 40, 50, Some("a"))], "k");
    }

    #[test]
    fn an_output_that_does_not_answer_its_input_is_rejected() {
        assert_rejected(&[op(1, 0, Some(10), Input::Get, Output::Put { revision: 1 })], "k");
    }

    #[test]
    fn keys_are_checked_independently() {
        let ops = [
            on("a", put(1, 0, Some(10), "1", 0)),
            on("b", get(2, 0, 10, Some("1"))),
            on("a", get(2, 20, 30, Some("1"))),
            on("c", get(3, 0, 10, None)),
        ];
        assert_rejected(&ops, "b");
    }

    #[test]
    fn running_out_of_budget_is_a_timeout() {
        assert_eq!(check(&[get(1, 0, 10, None)], Duration::ZERO), Verdict::Timeout { key: "k".into() });
    }

    fn with_revision(mut op: Operation, call: u64, ret: u64, revision: i64) -> Operation {
        (op.call, op.ret) = (call, Some(ret));
        op.output = Output::Get { value: None, mod_revision: 0, revision };
        op
    }

    #[test]
    fn revisions_go_back_only_between_overlapping_operations() {
        let g = || get(1, 0, 0, None);
        assert_eq!(check_revision_order(&[with_revision(g(), 0, 30, 5), with_revision(g(), 10, 20, 4)]), Ok(()));
        assert_eq!(check_revision_order(&[with_revision(g(), 0, 10, 5), with_revision(g(), 10, 20, 4)]), Ok(()));
        let err = check_revision_order(&[
            with_revision(g(), 0, 10, 5),
            with_revision(g(), 5, 8, 3),
            with_revision(g(), 20, 30, 4),
            with_revision(g(), 40, 50, 6),
        ])
        .expect_err("revision 4 after 5 returned");
        assert!(err.starts_with("1 operation(s)"), "{err}");
    }

    /// The model written over plain values, to check the interned one against.
    type Plain = Option<(String, i64)>;

    fn plain_step(op: &Operation, s: &Plain) -> Option<Plain> {
        let value = s.as_ref().map(|(v, _)| v.as_str());
        match (&op.input, &op.output) {
            (Input::Get, Output::Get { value: read, .. }) => (value == read.as_deref()).then(|| s.clone()),
            (Input::Put { value, lease }, _) => Some(Some((value.clone(), *lease))),
            (Input::Delete, Output::Delete { deleted, .. }) if *deleted != i64::from(s.is_some()) => None,
            (Input::Delete, _) => Some(None),
            (Input::Cas { expected, value: new }, output) => {
                let matches = value == expected.as_deref();
                match output {
                    Output::Cas { succeeded, .. } if *succeeded != matches => None,
                    _ if matches => Some(Some((new.clone(), 0))),
                    _ => Some(s.clone()),
                }
            }
            (Input::Revoke { lease }, _) => Some(s.clone().filter(|(_, l)| l != lease)),
            _ => None,
        }
    }

    /// Whether some order of `ops` that respects real time fits the model,
    /// by trying every such order.
    fn brute_force(ops: &[&Operation], placed: &mut Vec<bool>, state: &Plain) -> bool {
        if placed.iter().all(|&p| p) {
            return true;
        }
        (0..ops.len()).any(|i| {
            // `i` may go next unless an unplaced operation returned before it was called.
            let free = !placed[i]
                && (0..ops.len())
                    .all(|j| placed[j] || ops[j].output == Output::Unknown || ops[j].ret >= Some(ops[i].call));
            let Some(after) = plain_step(ops[i], state).filter(|_| free) else { return false };
            placed[i] = true;
            let found = brute_force(ops, placed, &after);
            placed[i] = false;
            found
        })
    }

    /// Up to 7 operations on one key over 3 values with random intervals and
    /// outputs, about half of them linearizable.
    fn small_random_history(rng: &mut Rng) -> Vec<Operation> {
        let value = |rng: &mut Rng| ["a", "b", "c"][rng.below(3) as usize].to_string();
        (0..rng.below(7) + 1)
            .map(|i| {
                let call = rng.below(100);
                let ret = (!rng.chance(15)).then(|| call + rng.below(40));
                let (input, output) = match rng.below(5) {
                    0 => (
                        Input::Get,
                        Output::Get { value: rng.chance(70).then(|| value(rng)), mod_revision: 0, revision: 0 },
                    ),
                    1 => (Input::Put { value: value(rng), lease: rng.below(2) as i64 }, Output::Put { revision: 0 }),
                    2 => (Input::Delete, Output::Delete { deleted: rng.below(2) as i64, revision: 0 }),
                    3 => {
                        let expected = rng.chance(70).then(|| value(rng));
                        (
                            Input::Cas { expected, value: value(rng) },
                            Output::Cas { succeeded: rng.chance(50), revision: 0 },
                        )
                    }
                    _ => (Input::Revoke { lease: 1 }, Output::Revoke { revision: 0 }),
                };
                op(i as u32, call, ret, input, output)
            })
            .collect()
    }

    #[test]
    fn agrees_with_trying_every_order_on_small_histories() {
        let mut rng = Rng(7);
        let mut accepted = 0;
        for _ in 0..3_000 {
            let ops = small_random_history(&mut rng);
            // A read with an unknown outcome checks and changes nothing.
            let known_reads = ops.iter().filter(|op| !(op.input == Input::Get && op.output == Output::Unknown));
            let known_reads: Vec<&Operation> = known_reads.collect();
            let expected = brute_force(&known_reads, &mut vec![false; known_reads.len()], &None);
            assert_eq!(check(&ops, BUDGET) == Verdict::Linearizable, expected, "{ops:#?}");
            accepted += usize::from(expected);
        }
        assert!((500..2_500).contains(&accepted), "{accepted} of 3000 accepted");
    }

    /// A small deterministic generator (splitmix64), so failures replay.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
            items.get(self.below(items.len().max(1) as u64) as usize)
        }
    }

    /// One key of the simulated store.
    #[derive(Default)]
    struct Key {
        value: Option<String>,
        lease: i64,
        mod_revision: i64,
        /// Leases granted for this key and not revoked.
        leases: Vec<i64>,
        written: Vec<String>,
    }

    /// The simulated store: the model with etcd's revisions.
    struct Store {
        keys: Vec<Key>,
        revision: i64,
        reference: Vec<Event>,
    }

    impl Store {
        fn write(&mut self, k: usize, value: Option<String>, lease: i64) {
            self.revision += 1;
            self.reference.push(Event { revision: self.revision, key: format!("k{k}"), value: value.clone() });
            let mod_revision = if value.is_some() { self.revision } else { 0 };
            let key = &mut self.keys[k];
            key.written.extend(value.clone());
            (key.value, key.lease, key.mod_revision) = (value, lease, mod_revision);
        }

        fn apply(&mut self, k: usize, input: &Input) -> Output {
            let key = &self.keys[k];
            match input {
                Input::Get => {
                    Output::Get { value: key.value.clone(), mod_revision: key.mod_revision, revision: self.revision }
                }
                Input::Put { value, lease } => {
                    self.write(k, Some(value.clone()), *lease);
                    Output::Put { revision: self.revision }
                }
                Input::Delete => {
                    let deleted = i64::from(key.value.is_some());
                    if deleted > 0 {
                        self.write(k, None, 0);
                    }
                    Output::Delete { deleted, revision: self.revision }
                }
                Input::Cas { expected, value } => {
                    let succeeded = key.value == *expected;
                    if succeeded {
                        self.write(k, Some(value.clone()), 0);
                    }
                    Output::Cas { succeeded, revision: self.revision }
                }
                Input::Revoke { lease } => {
                    if key.value.is_some() && key.lease == *lease {
                        self.write(k, None, 0);
                    }
                    Output::Revoke { revision: self.revision }
                }
            }
        }
    }

    /// A history of `count` operations on 4 keys by 8 clients, made by
    /// running the model at increasing linearization points and giving each
    /// operation a random interval around its point. Of the unknown outcomes,
    /// half took effect. Watcher 0 saw everything, watcher 1 a middle part.
    pub(crate) fn random_history(seed: u64, count: usize, unknown_percent: u64) -> History {
        const KEYS: u64 = 4;
        const CLIENTS: u64 = 8;
        // How far a call or return may be from the linearization point, as
        // multiples of the points' spacing: about six operations overlap.
        const SPACING: u64 = 1_000;
        const SPREAD: u64 = 3 * SPACING;
        let mut rng = Rng(seed);
        let mut store = Store { keys: (0..KEYS).map(|_| Key::default()).collect(), revision: 1, reference: Vec::new() };
        let mut free_at = vec![0; CLIENTS as usize];
        let mut operations = Vec::new();
        for i in 0..count {
            let point = (i as u64 + 1) * SPACING;
            let client = loop {
                let c = rng.below(CLIENTS) as usize;
                if free_at[c] < point {
                    break c;
                }
            };
            let call = point.saturating_sub(rng.below(SPREAD)).max(free_at[client] + 1);
            let k = rng.below(KEYS) as usize;
            let (value, lease) = (format!("v{i}"), (k as i64 + 1) * 1_000_000 + i as i64);
            let key = &mut store.keys[k];
            let input = match rng.below(100) {
                0..40 => Input::Get,
                40..65 if rng.chance(30) => {
                    key.leases.push(lease);
                    Input::Put { value, lease }
                }
                40..65 => Input::Put { value, lease: 0 },
                65..75 => Input::Delete,
                75..90 => {
                    let expected = match rng.below(4) {
                        0 | 1 => key.value.clone(),
                        2 => None,
                        _ => rng.pick(&key.written).cloned(),
                    };
                    Input::Cas { expected, value }
                }
                _ if key.leases.is_empty() => Input::Get,
                _ => Input::Revoke { lease: key.leases.swap_remove(rng.below(key.leases.len() as u64) as usize) },
            };
            let unknown = rng.chance(unknown_percent);
            let output = if !unknown || rng.chance(50) { store.apply(k, &input) } else { Output::Unknown };
            let (ret, output) =
                if unknown { (None, Output::Unknown) } else { (Some(point + rng.below(SPREAD)), output) };
            free_at[client] = ret.unwrap_or(point);
            operations.push(Operation { client: client as u32, key: format!("k{k}"), call, ret, input, output });
        }
        let reference = store.reference;
        let (mid, end) = (reference.len() / 3, reference.len() * 3 / 4);
        let watches = vec![
            WatchLog { watcher: 0, start_revision: 1, events: reference.clone(), ..Default::default() },
            WatchLog {
                watcher: 1,
                start_revision: reference[mid].revision,
                events: reference[mid..end].to_vec(),
                ..Default::default()
            },
        ];
        let final_state =
            (0..KEYS as usize).filter_map(|k| Some((format!("k{k}"), store.keys[k].value.clone()?))).collect();
        History { seed, operations, watches, reference, final_state, final_revision: store.revision }
    }

    fn timed_check(ops: &[Operation]) -> Verdict {
        let start = Instant::now();
        let verdict = check(ops, BUDGET);
        eprintln!("checked {} operations in {:?}", ops.len(), start.elapsed());
        verdict
    }

    fn random() -> History {
        random_history(42, 2_000, 10)
    }

    #[test]
    fn a_random_history_of_the_model_is_accepted() {
        let h = random();
        assert!(h.operations.iter().filter(|op| op.output == Output::Unknown).count() > 20);
        assert_eq!(timed_check(&h.operations), Verdict::Linearizable);
        assert_eq!(check_revision_order(&h.operations), Ok(()));
    }

    /// Makes the known read at `i` return `value`, and asserts the history is rejected on its key.
    fn assert_rejected_when_read_returns(mut h: History, i: usize, value: &str) {
        let Output::Get { value: v, .. } = &mut h.operations[i].output else { panic!("not a read") };
        *v = Some(value.to_string());
        match timed_check(&h.operations) {
            Verdict::NotLinearizable { key, .. } => assert_eq!(key, h.operations[i].key),
            v => panic!("expected a violation, got {v:?}"),
        }
    }

    /// The acknowledged value a write put, if it put one.
    fn put_value(op: &Operation) -> Option<&str> {
        match (&op.input, &op.output) {
            (Input::Put { value, .. }, Output::Put { .. })
            | (Input::Cas { value, .. }, Output::Cas { succeeded: true, .. }) => Some(value),
            _ => None,
        }
    }

    fn changed(op: &Operation) -> bool {
        put_value(op).is_some() || matches!(op.output, Output::Delete { deleted: 1, .. })
    }

    #[test]
    fn a_random_history_with_a_stale_read_is_rejected() {
        let h = random();
        let ops = &h.operations;
        // A read after a write W that completed after a write P completed: P's value is gone.
        let (read, value) = (ops.len() / 2..ops.len())
            .filter(|&g| matches!(ops[g].output, Output::Get { .. }))
            .find_map(|g| {
                let done_before = |op: &Operation, t: u64| op.key == ops[g].key && op.ret.is_some_and(|r| r < t);
                let w = ops.iter().rfind(|w| changed(w) && done_before(w, ops[g].call))?;
                let p = ops.iter().rev().filter(|p| done_before(p, w.call)).find_map(put_value)?;
                Some((g, p.to_string()))
            })
            .expect("a read with an overwritten value before it");
        assert_rejected_when_read_returns(h, read, &value);
    }

    #[test]
    fn a_random_history_with_a_read_from_the_future_is_rejected() {
        let h = random();
        let ops = &h.operations;
        let (read, value) = (ops.len() / 2..ops.len())
            .filter(|&g| matches!(ops[g].output, Output::Get { .. }))
            .find_map(|g| {
                let later = ops.iter().find(|p| p.key == ops[g].key && ops[g].ret.is_some_and(|r| p.call > r))?;
                match &later.input {
                    Input::Put { value, .. } | Input::Cas { value, .. } => Some((g, value.clone())),
                    _ => None,
                }
            })
            .expect("a read with a write called after it");
        assert_rejected_when_read_returns(h, read, &value);
    }
}
