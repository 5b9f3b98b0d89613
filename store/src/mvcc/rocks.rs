//! RocksDB backend for the state machine: one column family per `Family`.
//! Writes go to the WAL without fsync; the Raft log is the durable record,
//! and `sync` is called before anything relies on these writes alone
//! (snapshot builds, before the log behind them is purged).

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions,
};

use super::backend::{Backend, Family, ReadView, WriteOp};
use crate::error::{Error, Result};
use crate::rocks_tuning;

pub struct RocksBackend {
    db: DB,
}

/// Upper bound for clearing a family: longer than any key we store.
const CLEAR_END: [u8; 64] = [0xff; 64];

impl RocksBackend {
    pub fn open(path: &Path) -> Result<Self> {
        let cache = rocks_tuning::block_cache();
        let cfs = Family::ALL
            .iter()
            .map(|f| ColumnFamilyDescriptor::new(f.name(), rocks_tuning::cf_options(&cache, DBCompressionType::Lz4)));
        let db = DB::open_cf_descriptors(&rocks_tuning::db_options(), path, cfs)?;
        Ok(RocksBackend { db })
    }

    fn cf(&self, family: Family) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(family.name())
            .ok_or_else(|| Error::Storage(format!("column family {} missing", family.name())))
    }
}

struct RocksView<'a> {
    backend: &'a RocksBackend,
    snapshot: rocksdb::Snapshot<'a>,
}

impl ReadView for RocksView<'_> {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snapshot.get_cf(self.backend.cf(family)?, key)?)
    }

    fn scan(
        &self,
        family: Family,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut ro = ReadOptions::default();
        if let Some(to) = to {
            ro.set_iterate_upper_bound(to.to_vec());
        }
        let iter =
            self.snapshot.iterator_cf_opt(self.backend.cf(family)?, ro, IteratorMode::From(from, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }
}

impl Backend for RocksBackend {
    fn read_view(&self) -> Box<dyn ReadView + '_> {
        Box::new(RocksView { backend: self, snapshot: self.db.snapshot() })
    }

    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(family)?, key)?)
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                WriteOp::Put(f, k, v) => batch.put_cf(self.cf(f)?, k, v),
                WriteOp::Delete(f, k) => batch.delete_cf(self.cf(f)?, k),
                WriteOp::Clear(f) => batch.delete_range_cf(self.cf(f)?, [].as_slice(), CLEAR_END.as_slice()),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        fail::fail_point!("beforeApplyCommit", |_| Err(Error::Storage("failpoint beforeApplyCommit".into())));
        Ok(self.db.write_opt(batch, &wo)?)
    }

    fn sync(&self) -> Result<()> {
        Ok(self.db.flush_wal(true)?)
    }

    fn size(&self) -> u64 {
        let mut total = 0;
        for f in Family::ALL {
            if let Ok(cf) = self.cf(f) {
                for prop in ["rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"] {
                    total += self.db.property_int_value_cf(cf, prop).ok().flatten().unwrap_or(0);
                }
            }
        }
        total
    }

    fn defragment(&self) -> Result<()> {
        for f in Family::ALL {
            self.db.compact_range_cf(self.cf(f)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = super::RocksBackend::open(dir.path()).expect("open");
        super::super::backend::conformance::run(&b);
    }
}
