//! The newest log entries, in memory: every entry appended but not yet on
//! disk, and a bounded number of recent ones that are. Replication and apply
//! read what they need from here without waiting for the fsync or decoding.
//!
//! Invariant: every index below the tail's first entry is on disk (or
//! purged), and the tail's entries are contiguous.

use std::collections::BTreeMap;

use crate::raft::{Entry, LogId};

/// How many entries already on disk stay cached for readers.
const KEEP_WRITTEN: usize = 4096;

#[derive(Default)]
pub(super) struct LogTail {
    entries: BTreeMap<u64, Entry>,
    /// Every cached entry at or below this index is on disk.
    written_upto: Option<u64>,
}

impl LogTail {
    /// Caches newly appended entries; they replace any cached entry at the same index.
    pub fn push(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for e in entries {
            self.entries.insert(e.log_id.index, e);
        }
    }

    /// The writer finished an fsync that covered every entry up to `last`.
    /// Ignored unless `last` is still cached as written: when it was
    /// truncated away meanwhile, entries appended since at its index or
    /// below are not on disk yet (and a purged one changes nothing).
    pub fn mark_written(&mut self, last: &LogId) {
        if self.entries.get(&last.index).is_none_or(|e| e.log_id != *last) {
            return;
        }
        let written = self.written_upto.map_or(last.index, |w| w.max(last.index));
        self.written_upto = Some(written);
        while self.entries.len() > KEEP_WRITTEN {
            match self.entries.first_key_value() {
                Some((&first, _)) if first <= written => {
                    self.entries.remove(&first);
                }
                _ => break,
            }
        }
    }

    /// Drops entries after `index` (None: all).
    pub fn truncate_after(&mut self, index: Option<u64>) {
        let from = index.map_or(0, |i| i + 1);
        self.entries.split_off(&from);
        // Entries appended later at these indexes are not on disk yet.
        self.written_upto = match (self.written_upto, index) {
            (Some(w), Some(i)) => Some(w.min(i)),
            _ => None,
        };
    }

    /// Drops entries up to and including `index`.
    pub fn purge_upto(&mut self, index: u64) {
        self.entries = self.entries.split_off(&(index + 1));
    }

    /// The first cached index, below which everything is read from disk.
    pub fn first_index(&self) -> Option<u64> {
        self.entries.first_key_value().map(|(&i, _)| i)
    }

    /// Clones of the cached entries in `[start, end)`.
    pub fn range(&self, start: u64, end: u64) -> Vec<Entry> {
        if start >= end {
            return Vec::new();
        }
        self.entries.range(start..end).map(|(_, e)| e.clone()).collect()
    }

    pub fn last(&self) -> Option<&Entry> {
        self.entries.last_key_value().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::vote::leader_id_std::CommittedLeaderId::new(term), index)
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry { log_id: log_id(term, index), payload: EntryPayload::Blank }
    }

    fn indexes(tail: &LogTail) -> Vec<u64> {
        tail.range(0, u64::MAX).iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn unwritten_entries_are_never_dropped() {
        let mut tail = LogTail::default();
        tail.push((1..=(KEEP_WRITTEN as u64 + 100)).map(|i| entry(1, i)));
        tail.mark_written(&log_id(1, 50));
        // Only written entries go, and only down to the limit.
        assert_eq!(tail.first_index(), Some(51));
        tail.mark_written(&log_id(1, KEEP_WRITTEN as u64 + 100));
        assert_eq!(indexes(&tail).len(), KEEP_WRITTEN);
        assert_eq!(tail.last().map(|e| e.log_id.index), Some(KEEP_WRITTEN as u64 + 100));
    }

    #[test]
    fn truncation_forgets_what_was_written_past_it() {
        let mut tail = LogTail::default();
        tail.push((1..=10).map(|i| entry(1, i)));
        tail.mark_written(&log_id(1, 10));
        tail.truncate_after(Some(5));
        assert_eq!(indexes(&tail), vec![1, 2, 3, 4, 5]);
        tail.push((6..=7).map(|i| entry(2, i)));
        // 6 and 7 of term 2 are not on disk, even though index 10 once was.
        tail.push((8..=(KEEP_WRITTEN as u64 + 20)).map(|i| entry(2, i)));
        // A write of the old entries finishing late changes nothing.
        tail.mark_written(&log_id(1, 7));
        tail.mark_written(&log_id(1, 5));
        assert_eq!(tail.first_index(), Some(6), "nothing past 5 counts as written");
        assert_eq!(tail.range(6, 8).iter().map(|e| e.log_id.leader_id.term).collect::<Vec<_>>(), vec![2, 2]);
    }

    #[test]
    fn a_late_write_past_the_truncated_end_marks_nothing() {
        let mut tail = LogTail::default();
        tail.push((1..=10).map(|i| entry(1, i)));
        tail.truncate_after(Some(5));
        // The write of 1..=10 finishes after the truncation: index 10 is gone.
        tail.mark_written(&log_id(1, 10));
        tail.push((6..=(KEEP_WRITTEN as u64 + 20)).map(|i| entry(2, i)));
        tail.mark_written(&log_id(1, 5));
        // Only 1..=5 may leave; 6 onwards (term 2) are not on disk.
        assert_eq!(tail.first_index(), Some(6));
    }

    #[test]
    fn purge_and_range() {
        let mut tail = LogTail::default();
        tail.push((1..=10).map(|i| entry(1, i)));
        tail.purge_upto(4);
        assert_eq!(tail.first_index(), Some(5));
        assert_eq!(tail.range(3, 7).iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![5, 6]);
        assert!(tail.range(7, 7).is_empty());
        tail.truncate_after(None);
        assert_eq!(tail.first_index(), None);
    }
}
