//! RocksDB settings shared by the Raft log and the key-value database. The
//! memory RocksDB may hold is bounded (its defaults allow 64 MiB per memtable,
//! two per column family), so a member's footprint follows its working set.
//! The bounds are small: the Raft log is the durable record and both
//! databases are written in key order (log indexes, revisions), so a small
//! memtable costs a few more cheap flushes, not write amplification. With
//! 16 MiB memtables the two databases held ~60 MB of a member's 190 MB in a
//! put benchmark with 1,000 clients; with these, ~30 MB of 150 MB.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options};

/// One memtable; a full one is flushed to disk in the background.
const MEMTABLE_BYTES: usize = 4 << 20;
/// Every memtable of one database together.
const ALL_MEMTABLES_BYTES: usize = 8 << 20;
/// Recently read blocks, per database.
const BLOCK_CACHE_BYTES: usize = 8 << 20;
/// Write-ahead-log files the Raft log keeps for reuse (a few memtables' worth).
const RECYCLED_WAL_FILES: usize = 4;

/// Options for opening a database.
pub fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_db_write_buffer_size(ALL_MEMTABLES_BYTES);
    opts
}

/// Options for the Raft log's database, the one written with fsync.
///
/// Its write-ahead-log files are reused rather than deleted once flushed: a
/// synced write into a new file also grows the file (or turns preallocated
/// space into written blocks), so each fsync commits filesystem metadata as
/// well as the data, two I/Os where overwriting an old file needs one.
/// Recovery stops at the first record of an older generation (RocksDB's
/// default point-in-time mode), so reused files lose nothing that was synced.
/// (A fresh database has no files to reuse until its first few flushes.)
pub fn log_db_options() -> Options {
    let mut opts = db_options();
    opts.set_recycle_log_file_num(RECYCLED_WAL_FILES);
    // A file is reusable only once every column family has flushed what it
    // holds; this bound flushes the rarely written metadata, which would
    // otherwise keep every file since the start alive.
    opts.set_max_total_wal_size(2 * ALL_MEMTABLES_BYTES as u64);
    opts
}

/// A block cache to share among one database's column families.
pub fn block_cache() -> Cache {
    Cache::new_lru_cache(BLOCK_CACHE_BYTES)
}

/// Options for one column family.
pub fn cf_options(cache: &Cache, compression: DBCompressionType) -> Options {
    let mut opts = Options::default();
    opts.set_write_buffer_size(MEMTABLE_BYTES);
    opts.set_max_write_buffer_number(2);
    opts.set_compression_type(compression);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    opts.set_block_based_table_factory(&table);
    opts
}
