//! In-memory backend: copy-on-write maps, so a read view is an `Arc` clone.
//! Used by unit tests of the MVCC rules.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use super::backend::{Backend, Family, ReadView, WriteOp};
use crate::error::Result;

type Maps = [BTreeMap<Vec<u8>, Vec<u8>>; 3];

#[derive(Default)]
pub struct MemoryBackend {
    // A std lock: held only for map operations, never across an await.
    maps: RwLock<Arc<Maps>>,
}

struct MemoryView(Arc<Maps>);

impl ReadView for MemoryView {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0[family.index()].get(key).cloned())
    }

    fn scan(
        &self,
        family: Family,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        for (k, v) in self.0[family.index()].range::<[u8], _>((Bound::Included(from), upper)) {
            if !visit(k, v) {
                break;
            }
        }
        Ok(())
    }
}

impl MemoryBackend {
    fn snapshot(&self) -> Arc<Maps> {
        self.maps.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Backend for MemoryBackend {
    fn read_view(&self) -> Box<dyn ReadView + '_> {
        Box::new(MemoryView(self.snapshot()))
    }

    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snapshot()[family.index()].get(key).cloned())
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let mut guard = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let maps = Arc::make_mut(&mut guard);
        for op in ops {
            match op {
                WriteOp::Put(f, k, v) => {
                    maps[f.index()].insert(k, v);
                }
                WriteOp::Delete(f, k) => {
                    maps[f.index()].remove(&k);
                }
                WriteOp::Clear(f) => maps[f.index()].clear(),
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn size(&self) -> u64 {
        self.snapshot().iter().flat_map(|m| m.iter()).map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }

    fn defragment(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::backend::conformance::run(&super::MemoryBackend::default());
    }
}
