//! What the chaos clients did: every operation with its invocation and
//! return time and what it returned, plus every event each watcher saw.
//! The checkers read only this, so a saved history replays without a cluster.

use serde::{Deserialize, Serialize};

/// One client operation on one key of the workload's key set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client that ran it; a client runs one operation at a time.
    pub client: u32,
    pub key: String,
    /// Nanoseconds since the run started, taken just before the request was sent.
    pub call: u64,
    /// Nanoseconds since the run started, taken when the response arrived;
    /// `None` when the outcome is unknown (timeout, lost connection): the
    /// operation may or may not have taken effect, at any time after `call`.
    pub ret: Option<u64>,
    pub input: Input,
    pub output: Output,
}

/// What a client asked for. Values are unique per write, so a read names the write it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Input {
    /// A linearizable Range of the key.
    Get,
    /// Put; `lease` is 0 for none. A put without a lease detaches the key from its lease, as in etcd.
    Put { value: String, lease: i64 },
    /// DeleteRange of the key.
    Delete,
    /// Txn: if the key's value is `expected` (`None`: the key does not exist)
    /// then put `value` (no lease), else do nothing.
    Cas { expected: Option<String>, value: String },
    /// LeaseRevoke of a lease that was only ever attached to this key.
    Revoke { lease: i64 },
}

/// What came back. `Unknown` goes with `ret: None` and only with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Output {
    Unknown,
    /// `mod_revision` is 0 when the key was absent; `revision` is the response header's.
    Get {
        value: Option<String>,
        mod_revision: i64,
        revision: i64,
    },
    Put {
        revision: i64,
    },
    Delete {
        deleted: i64,
        revision: i64,
    },
    Cas {
        succeeded: bool,
        revision: i64,
    },
    Revoke {
        revision: i64,
    },
}

impl Output {
    /// The store revision the response header carried, when there is a response.
    pub fn revision(&self) -> Option<i64> {
        match self {
            Output::Unknown => None,
            Output::Get { revision, .. }
            | Output::Put { revision }
            | Output::Delete { revision, .. }
            | Output::Cas { revision, .. }
            | Output::Revoke { revision } => Some(*revision),
        }
    }
}

/// A change to a key, as a watch delivers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub revision: i64,
    pub key: String,
    /// `None` for a delete.
    pub value: Option<String>,
}

/// Everything one watcher received, across its reconnects. It watches the
/// key set's prefix from `start_revision`, and after a broken stream it
/// resumes from the last revision it saw plus one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLog {
    pub watcher: u32,
    pub start_revision: i64,
    pub events: Vec<Event>,
    pub reconnects: u32,
    /// Why each stream broke, in order.
    #[serde(default)]
    pub breaks: Vec<String>,
}

/// A whole run: the history checked and saved when a check fails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub seed: u64,
    pub operations: Vec<Operation>,
    pub watches: Vec<WatchLog>,
    /// Every event on the key set's prefix from revision 1 to the end, read
    /// after the faults stopped with one fresh watch: the order of all writes.
    pub reference: Vec<Event>,
    /// The key set's contents read at the end (key, value), at `final_revision`.
    pub final_state: Vec<(String, String)>,
    pub final_revision: i64,
}
