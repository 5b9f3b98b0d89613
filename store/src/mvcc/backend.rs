//! The narrow seam between the MVCC store and its storage engine: a few
//! column families of ordered bytes, atomic write batches and consistent read
//! views. Implementations: RocksDB (`rocks.rs`) and in-memory (`memory.rs`).

use crate::error::Result;

/// The column families of the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Revision (16 bytes) → `RevisionRecord`.
    Revisions,
    /// Lease id (8 bytes) → `LeaseRecord`.
    Leases,
    /// Fixed keys → state records (`AppliedState`, identity).
    Meta,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Revisions, Family::Leases, Family::Meta];

    pub fn name(self) -> &'static str {
        match self {
            Family::Revisions => "rev",
            Family::Leases => "lease",
            Family::Meta => "meta",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: u32) -> Option<Family> {
        Family::ALL.get(i as usize).copied()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    Put(Family, Vec<u8>, Vec<u8>),
    Delete(Family, Vec<u8>),
    /// Removes every key of the family.
    Clear(Family),
}

/// A consistent point-in-time view.
pub trait ReadView {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Visits keys in `[from, to)` (`to` None: to the end) in order until `visit` returns false.
    fn scan(
        &self,
        family: Family,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()>;
}

pub trait Backend: Send + Sync + 'static {
    fn read_view(&self) -> Box<dyn ReadView + '_>;
    /// Latest committed value, outside any view.
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies all ops atomically. Not synced: see `sync`.
    fn write(&self, ops: Vec<WriteOp>) -> Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;
    /// Bytes on disk.
    fn size(&self) -> u64;
    /// Reclaims space left by deletes.
    fn defragment(&self) -> Result<()>;
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One suite, run against every backend.
    use super::*;

    pub fn run(b: &dyn Backend) {
        b.write(vec![
            WriteOp::Put(Family::Revisions, vec![1], b"one".to_vec()),
            WriteOp::Put(Family::Revisions, vec![3], b"three".to_vec()),
            WriteOp::Put(Family::Revisions, vec![2], b"two".to_vec()),
            WriteOp::Put(Family::Leases, vec![2], b"lease".to_vec()),
        ])
        .expect("write");
        assert_eq!(b.get(Family::Revisions, &[2]).expect("get"), Some(b"two".to_vec()));
        assert_eq!(b.get(Family::Meta, &[2]).expect("get"), None, "families are separate");

        let view = b.read_view();
        b.write(vec![WriteOp::Delete(Family::Revisions, vec![1]), WriteOp::Put(Family::Revisions, vec![4], vec![])])
            .expect("write");
        let mut seen = vec![];
        view.scan(Family::Revisions, &[], None, &mut |k, _| {
            seen.push(k.to_vec());
            true
        })
        .expect("scan");
        assert_eq!(seen, vec![vec![1], vec![2], vec![3]], "a view does not see later writes");
        drop(view);

        let mut seen = vec![];
        b.read_view()
            .scan(Family::Revisions, &[2], Some(&[4]), &mut |k, _| {
                seen.push(k.to_vec());
                true
            })
            .expect("scan");
        assert_eq!(seen, vec![vec![2], vec![3]], "[from, to) bounds");

        let mut n = 0;
        b.read_view()
            .scan(Family::Revisions, &[], None, &mut |_, _| {
                n += 1;
                n < 2
            })
            .expect("scan");
        assert_eq!(n, 2, "scan stops when told");

        b.write(vec![WriteOp::Clear(Family::Revisions)]).expect("clear");
        assert_eq!(b.get(Family::Revisions, &[2]).expect("get"), None);
        assert_eq!(b.get(Family::Leases, &[2]).expect("get"), Some(b"lease".to_vec()));
        b.sync().expect("sync");
        b.defragment().expect("defrag");
    }
}
