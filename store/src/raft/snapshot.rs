//! The snapshot file: one format for Raft snapshot transfer, the etcd
//! `Maintenance.Snapshot` stream and backups.
//!
//! ```text
//! magic "CAPSNAP\x01"
//! length-delimited SnapshotMeta            (last log id, membership)
//! length-delimited SnapshotRecord …        (family, key, value)
//! length-delimited SnapshotRecord{family = END}
//! zero padding to a multiple of 512 bytes
//! sha256 of everything before it (32 bytes)
//! ```
//! The padding and trailing sha256 are what `etcdctl snapshot save` checks.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use capstan_proto::raft::{SnapshotMeta as PbSnapshotMeta, SnapshotRecord};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::mvcc::backend::{Family, ReadView, WriteOp};

pub const MAGIC: &[u8; 8] = b"CAPSNAP\x01";
const END_FAMILY: u32 = u32::MAX;
const ALIGN: u64 = 512;
const SHA_LEN: usize = 32;

/// A snapshot on disk (openraft's `SnapshotData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot file {0}: not a capstan snapshot (bad magic)")]
    BadMagic(PathBuf),
    #[error("snapshot file {0}: truncated or not padded (size {1})")]
    BadSize(PathBuf, u64),
    #[error("snapshot file {0}: checksum mismatch (corrupt)")]
    BadChecksum(PathBuf),
    #[error("snapshot file {0}: corrupt record: {1}")]
    BadRecord(PathBuf, String),
    #[error("snapshot: {0}")]
    Storage(#[from] crate::Error),
}

impl SnapshotError {
    fn io(path: &Path, source: io::Error) -> Self {
        SnapshotError::Io { path: path.to_path_buf(), source }
    }
}

/// Hashes everything written through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes every family of `view` to `path` (fsynced), with `meta` as header.
pub fn write(path: &Path, meta: &PbSnapshotMeta, view: &dyn ReadView) -> Result<u64, SnapshotError> {
    let file = File::create(path).map_err(|e| SnapshotError::io(path, e))?;
    let mut w = HashingWriter { inner: BufWriter::new(file), hasher: Sha256::new(), written: 0 };
    let mut io_result: io::Result<()> = w.write_all(MAGIC);
    if io_result.is_ok() {
        io_result = w.write_all(&meta.encode_length_delimited_to_vec());
    }
    for family in Family::ALL {
        if io_result.is_err() {
            break;
        }
        view.scan(family, &[], None, &mut |k, v| {
            let rec =
                SnapshotRecord { family: family.index() as u32, key: k.to_vec().into(), value: v.to_vec().into() };
            io_result = w.write_all(&rec.encode_length_delimited_to_vec());
            io_result.is_ok()
        })?;
    }
    io_result.map_err(|e| SnapshotError::io(path, e))?;
    let end = SnapshotRecord { family: END_FAMILY, ..Default::default() };
    w.write_all(&end.encode_length_delimited_to_vec()).map_err(|e| SnapshotError::io(path, e))?;
    let pad = (ALIGN - w.written % ALIGN) % ALIGN;
    w.write_all(&vec![0u8; pad as usize]).map_err(|e| SnapshotError::io(path, e))?;
    let digest = w.hasher.clone().finalize();
    let mut inner = w.inner.into_inner().map_err(|e| SnapshotError::io(path, e.into_error()))?;
    inner.write_all(&digest).map_err(|e| SnapshotError::io(path, e))?;
    inner.sync_all().map_err(|e| SnapshotError::io(path, e))?;
    Ok(w.written + SHA_LEN as u64)
}

/// A verified snapshot, decoded.
pub struct Decoded {
    pub meta: PbSnapshotMeta,
    pub ops: Vec<WriteOp>,
}

/// Reads and verifies a snapshot file: size, checksum, magic and every record.
pub fn read(path: &Path) -> Result<Decoded, SnapshotError> {
    let mut raw = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut raw)).map_err(|e| SnapshotError::io(path, e))?;
    decode(path, &raw)
}

pub fn decode(path: &Path, raw: &[u8]) -> Result<Decoded, SnapshotError> {
    let size = raw.len() as u64;
    if size < (MAGIC.len() + SHA_LEN) as u64 || !(size - SHA_LEN as u64).is_multiple_of(ALIGN) {
        return Err(SnapshotError::BadSize(path.to_path_buf(), size));
    }
    let (body, digest) = raw.split_at(raw.len() - SHA_LEN);
    if Sha256::digest(body).as_slice() != digest {
        return Err(SnapshotError::BadChecksum(path.to_path_buf()));
    }
    let Some(mut rest) = body.strip_prefix(MAGIC.as_slice()) else {
        return Err(SnapshotError::BadMagic(path.to_path_buf()));
    };
    let bad = |e: prost::DecodeError| SnapshotError::BadRecord(path.to_path_buf(), e.to_string());
    let meta = PbSnapshotMeta::decode_length_delimited(&mut rest).map_err(bad)?;
    let mut ops = Family::ALL.map(WriteOp::Clear).to_vec();
    loop {
        let rec = SnapshotRecord::decode_length_delimited(&mut rest).map_err(bad)?;
        if rec.family == END_FAMILY {
            break;
        }
        let family = Family::from_index(rec.family)
            .ok_or_else(|| SnapshotError::BadRecord(path.to_path_buf(), format!("unknown family {}", rec.family)))?;
        ops.push(WriteOp::Put(family, rec.key.to_vec(), rec.value.to_vec()));
    }
    if rest.iter().any(|b| *b != 0) {
        return Err(SnapshotError::BadRecord(path.to_path_buf(), "data after the end record".into()));
    }
    Ok(Decoded { meta, ops })
}

/// Reads only the header of a snapshot file (no verification).
pub fn read_meta(path: &Path) -> Result<PbSnapshotMeta, SnapshotError> {
    let mut f = File::open(path).map_err(|e| SnapshotError::io(path, e))?;
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head).map_err(|e| SnapshotError::io(path, e))?;
    let Some(mut rest) = head[..n].strip_prefix(MAGIC.as_slice()) else {
        return Err(SnapshotError::BadMagic(path.to_path_buf()));
    };
    PbSnapshotMeta::decode_length_delimited(&mut rest)
        .map_err(|e| SnapshotError::BadRecord(path.to_path_buf(), e.to_string()))
}

/// The directory holding this member's snapshots: the current one is the
/// file named after the highest log id; temporary files end in `.tmp`.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        // Leftovers of an interrupted build or transfer are never valid.
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path)?;
            }
        }
        Ok(SnapshotDir { dir })
    }

    pub fn temp_path(&self) -> PathBuf {
        self.dir.join(format!("incoming-{:016x}.tmp", rand::random::<u64>()))
    }

    pub fn final_path(&self, term: u64, index: u64) -> PathBuf {
        self.dir.join(format!("snap-{term:016x}-{index:016x}.snap"))
    }

    /// The newest snapshot file, if any.
    pub fn current(&self) -> io::Result<Option<PathBuf>> {
        let mut newest: Option<PathBuf> = None;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "snap") && newest.as_ref().is_none_or(|n| path > *n) {
                newest = Some(path);
            }
        }
        Ok(newest)
    }

    /// Moves a finished file into place and removes older snapshots.
    pub fn promote(&self, tmp: &Path, term: u64, index: u64) -> io::Result<PathBuf> {
        let target = self.final_path(term, index);
        fs::rename(tmp, &target)?;
        File::open(&self.dir)?.sync_all()?;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "snap") && path < target {
                fs::remove_file(&path)?;
            }
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::backend::Backend;
    use crate::mvcc::memory::MemoryBackend;

    fn sample() -> (tempfile::TempDir, PathBuf) {
        let backend = MemoryBackend::default();
        backend
            .write(vec![
                WriteOp::Put(Family::Revisions, vec![1; 16], b"kv".to_vec()),
                WriteOp::Put(Family::Meta, b"applied".to_vec(), b"state".to_vec()),
            ])
            .expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.snap");
        let meta = PbSnapshotMeta::default();
        let size = write(&path, &meta, backend.read_view().as_ref()).expect("write snapshot");
        assert_eq!(size % 512, 32, "etcdctl's size rule");
        (dir, path)
    }

    #[test]
    fn round_trip() {
        let (_dir, path) = sample();
        let decoded = read(&path).expect("read");
        assert!(decoded.ops.contains(&WriteOp::Put(Family::Revisions, vec![1; 16], b"kv".to_vec())));
        assert_eq!(decoded.ops.len(), 3 + 2, "clears, then the records");
    }

    #[test]
    fn corruption_and_truncation_are_rejected() {
        let (_dir, path) = sample();
        let mut raw = fs::read(&path).expect("read");
        raw[12] ^= 0xff;
        assert!(matches!(decode(&path, &raw), Err(SnapshotError::BadChecksum(_))));
        let raw = fs::read(&path).expect("read");
        assert!(matches!(decode(&path, &raw[..raw.len() - 100]), Err(SnapshotError::BadSize(..))));
    }
}
