//! The revision history of one key, in etcd's model: a list of generations,
//! each running from a create to a delete (tombstone). Pure data, no I/O.

use std::collections::HashSet;

use super::revision::Revision;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generation {
    /// Revision of the put that created this incarnation.
    pub created: Revision,
    /// Number of puts in this generation (the key's `version`).
    pub version: i64,
    /// Every change in this generation; a closed generation ends with its tombstone.
    pub revs: Vec<Revision>,
}

impl Generation {
    fn record(&mut self, rev: Revision) {
        if self.revs.is_empty() {
            self.created = rev;
        }
        self.revs.push(rev);
        self.version += 1;
    }
}

/// What a read at some revision finds for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyHistory {
    /// The last generation is the live one; when it is empty the key is deleted.
    generations: Vec<Generation>,
}

impl KeyHistory {
    pub fn put(&mut self, rev: Revision) {
        match self.generations.last_mut() {
            Some(g) => g.record(rev),
            None => {
                let mut g = Generation::default();
                g.record(rev);
                self.generations.push(g);
            }
        }
    }

    /// Records a delete at `rev`; the key is absent from `rev` on.
    pub fn tombstone(&mut self, rev: Revision) {
        self.put(rev);
        self.generations.push(Generation::default());
    }

    /// The live state of the key: the latest put, when it exists.
    pub fn latest(&self) -> Option<Found> {
        let g = self.generations.last()?;
        let modified = *g.revs.last()?;
        Some(Found { modified, created: g.created, version: g.version })
    }

    /// The key as a read at revision `at` sees it (None: absent or deleted).
    pub fn get(&self, at: i64) -> Option<Found> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let Some(first) = g.revs.first() else { continue };
            if first.main > at {
                continue;
            }
            // A closed generation whose tombstone is at or before `at`: deleted.
            if i != last && g.revs.last().is_some_and(|t| t.main <= at) {
                return None;
            }
            let n = g.revs.iter().rposition(|r| r.main <= at)?;
            let newer = (g.revs.len() - 1 - n) as i64;
            return Some(Found { modified: g.revs[n], created: g.created, version: g.version - newer });
        }
        None
    }

    /// Drops history older than `at`, keeping each generation's latest
    /// revision at or before `at` (but no tombstone). The revisions still
    /// needed are added to `keep`. Returns false when nothing is left.
    pub fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        if self.generations.is_empty() {
            return false;
        }
        // The first generation that is live at `at` or created after it.
        let mut gen_idx = 0;
        while gen_idx < self.generations.len() - 1 {
            let tomb = self.generations[gen_idx].revs.last().map_or(i64::MAX, |r| r.main);
            if tomb > at {
                break;
            }
            gen_idx += 1;
        }
        let last_gen = self.generations.len() - 1;
        let g = &mut self.generations[gen_idx];
        if !g.revs.is_empty() {
            if let Some(idx) = g.revs.iter().rposition(|r| r.main <= at) {
                keep.insert(g.revs[idx]);
                g.revs.drain(..idx);
            }
            // Only the tombstone is left of a closed generation: drop it too.
            if g.revs.len() == 1 && gen_idx != last_gen {
                keep.remove(&g.revs[0]);
                gen_idx += 1;
            }
        }
        self.generations.drain(..gen_idx);
        !(self.generations.is_empty() || (self.generations.len() == 1 && self.generations[0].revs.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    #[test]
    fn versions_count_puts_and_reset_after_delete() {
        let mut h = KeyHistory::default();
        h.put(r(2));
        h.put(r(4));
        h.tombstone(r(6));
        h.put(r(8));
        assert_eq!(h.get(1), None);
        assert_eq!(h.get(3), Some(Found { modified: r(2), created: r(2), version: 1 }));
        assert_eq!(h.get(5), Some(Found { modified: r(4), created: r(2), version: 2 }));
        assert_eq!(h.get(6), None, "deleted at 6");
        assert_eq!(h.get(7), None);
        assert_eq!(h.get(8), Some(Found { modified: r(8), created: r(8), version: 1 }));
        assert_eq!(h.latest(), h.get(100));
    }

    #[test]
    fn deleted_key_has_no_latest() {
        let mut h = KeyHistory::default();
        h.put(r(2));
        h.tombstone(r(3));
        assert_eq!(h.latest(), None);
        assert_eq!(h.get(2).map(|f| f.version), Some(1));
    }

    #[test]
    fn compaction_keeps_latest_at_or_before() {
        let mut h = KeyHistory::default();
        h.put(r(2));
        h.put(r(4));
        h.put(r(6));
        let mut keep = HashSet::new();
        assert!(h.compact(5, &mut keep));
        assert_eq!(keep, HashSet::from([r(4)]));
        assert_eq!(h.get(5).map(|f| f.modified), Some(r(4)));
        assert_eq!(h.get(6).map(|f| (f.modified, f.version)), Some((r(6), 3)));
    }

    #[test]
    fn compaction_drops_tombstoned_generations() {
        let mut h = KeyHistory::default();
        h.put(r(2));
        h.tombstone(r(3));
        let mut keep = HashSet::new();
        assert!(!h.compact(3, &mut keep), "nothing left of a deleted key");
        assert!(keep.is_empty());

        let mut h = KeyHistory::default();
        h.put(r(2));
        h.tombstone(r(3));
        h.put(r(5));
        let mut keep = HashSet::new();
        assert!(h.compact(4, &mut keep));
        assert!(keep.is_empty());
        assert_eq!(h.get(5).map(|f| f.version), Some(1));
    }

    #[test]
    fn compaction_before_a_tombstone_keeps_the_generation() {
        let mut h = KeyHistory::default();
        h.put(r(2));
        h.put(r(3));
        h.tombstone(r(7));
        let mut keep = HashSet::new();
        assert!(h.compact(5, &mut keep));
        assert_eq!(keep, HashSet::from([r(3)]));
        assert_eq!(h.get(5).map(|f| f.modified), Some(r(3)));
        assert_eq!(h.get(7), None);
    }
}
