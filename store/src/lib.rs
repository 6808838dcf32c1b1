//! apcdb: a persistent, crash-safe, multi-process key-value store whose primary data is a
//! file-backed shared memory map.
//!
//! ```no_run
//! use apcdb::{Store, Options, Durability};
//! use std::time::Duration;
//! # fn main() -> Result<(), apcdb::Error> {
//! let store = Store::open("/tmp/example.db", Options::default().durability(Durability::Sync))?;
//! store.put(b"key", b"value")?;
//! store.put_with_ttl(b"session", b"x", Duration::from_secs(60))?;
//! assert_eq!(store.get(b"key")?, Some(b"value".to_vec()));
//! store.batch(|b| { b.put(b"a", b"1"); b.delete(b"b"); })?;
//! # Ok(()) }
//! ```
//!
//! The contract (file layout, journal format, recovery, locking, guarantees) is SPEC.md at the
//! repository root; the byte layouts themselves are defined once, in [`format`](mod@format).
//!
//! Beyond point reads and writes: [`Store::get_with`] reads a value where it lies in the map,
//! without copying it; [`Store::scan`] streams over a prefix holding one chunk at a time;
//! [`Store::backup_to`] copies a store that other processes keep writing. Each has an example
//! under `store/examples/`.
//!
//! **Linux only.** The engine relies on open-file-description locks (`F_OFD_SETLK`), robust
//! process-shared mutexes, `fallocate` and `MADV_RANDOM`; other targets fail to compile.

#![warn(missing_docs)]
#![warn(missing_debug_implementations)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "apcdb supports Linux only: it needs open-file-description locks (F_OFD_SETLK), robust \
     process-shared pthread mutexes, fallocate and MADV_RANDOM"
);

// The modules, in the order of the data path:
//
// - Opening: `store` (the handle: `Store::open`, election, then recovery), `files` (safe file
//   opening), `lock_file` (the lock file: shared state, robust mutexes, the election bytes),
//   `map` (the data file's mapping), `sigbus` (a file shrunk under a mapping becomes an error),
//   `upgrade` (a store of an older format converted by its first opener).
// - Reading: `store` (lookups under the readers' sequence number), `scan` (streaming scans, one
//   validated chunk at a time), `index` (probing the hash index, reading entries).
// - Writing: `write` (the put path top to bottom: lock, the write transaction, commit, release,
//   durability wait; its module doc names the file of each step), then the stages it calls in
//   that order: `journal` (the redo journal), `alloc` (blocks and free lists), `apply` (a
//   journaled transaction into the live index; index rebuild), and `evict` (room made in a full
//   store by journaled deletes in CLOCK order, when `WhenFull::Evict`).
// - After: `checkpoint` (the map made durable, the journal reusable), `recover` (the live state
//   rebuilt from the newest superblock and the journal, at first open or after a dead holder),
//   `resize` (the maximum size changed while open: live in the lock file, durable by checkpoint).
// - Around: `format` (byte layouts), `io` (the one seam every byte and flush to disk passes
//   through), `error`, `options`, `exclusive` (keeping every other process out while files are
//   replaced), `verify` (offline check and salvage, for tools), `readonly` (a handle that only
//   reads: the checkpoint plus the journal replayed in memory), `backup` (a consistent copy of a
//   live store, and the rewriting compaction built on it), `compact` (compaction in place while
//   other processes use the store: the tail's entries moved down, its disk blocks released),
//   `entry_lock` (per-key generator locks for `apc_entry`), `pid` (the process id, cached
//   across calls, reset in a forked child).
mod alloc;
mod apply;
mod backup;
mod checkpoint;
mod compact;
mod entry_lock;
mod error;
mod evict;
mod exclusive;
mod files;
pub mod format;
mod index;
mod io;
mod journal;
mod lock_file;
mod map;
mod options;
mod periodic;
mod pid;
mod prefault;
mod readonly;
mod recover;
mod resize;
mod resume;
mod reuse;
mod scan;
mod sigbus;
mod store;
mod upgrade;
pub mod verify;
mod write;

pub use backup::{BackupReport, RewriteReport};
pub use compact::CompactReport;
pub use entry_lock::{EntryGuard, ENTRY_LOCK_BASE, ENTRY_LOCK_BUCKETS};
pub use error::{CorruptKind, Error, Result};
pub use exclusive::Exclusive;
pub use files::Paths;
pub use format::{Superblock, SuperblockError, UncheckedSuperblock};
pub use io::{FileKind, MappedRange, RealIo, StorageIo, SyncKind};
pub use options::{Durability, Options, WhenFull};
pub use readonly::ReadOnlyView;
pub use scan::{Scan, ScanWith};
pub use store::{Batch, EntryMeta, Scanned, Store, Visit};

// Handles and results may be shared with and sent to other threads: checked at compile time so
// that a field added later cannot silently take that away.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
    send_sync::<Scan<'static>>();
    send_sync::<Options>();
    send_sync::<Error>();
    send_sync::<Exclusive>();
    send_sync::<Entry>();
    send_sync::<Stats>();
    send_sync::<BackupReport>();
    send_sync::<CompactReport>();
    send_sync::<RewriteReport>();
    send_sync::<Batch>();
    send_sync::<Paths>();
};

/// Largest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 65_535;

/// One stored value with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// Unix time in milliseconds after which the entry reads as absent; 0 = never.
    pub expires_at_ms: u64,
    /// Unix time in milliseconds when this version was written.
    pub modified_at_ms: u64,
    /// The journal sequence number of the write that produced this version; grows with every write.
    pub version: u64,
}

/// What an [`Store::update`] callback decides to do with the key.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Leave the key as it is.
    Keep,
    /// Store this value; `expires_at_ms` as in [`Entry`] (0 = never).
    Put {
        /// The new value.
        value: Vec<u8>,
        /// Unix milliseconds after which it reads as absent; 0 = never.
        expires_at_ms: u64,
    },
    /// Remove the key.
    Delete,
}

/// Counters describing a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries in the index, including expired ones not yet reclaimed (reads and scans hide
    /// those; they are reclaimed when space runs short).
    pub entries: u64,
    /// Bytes of blocks holding live entries.
    pub used_bytes: u64,
    /// Current size of the data file.
    pub file_size: u64,
    /// The most the data file may grow to: the store's limit, which any process may change
    /// ([`Store::set_max_size`]), or less if this handle reserved less address space at open.
    pub max_size: u64,
    /// Size of the journal file.
    pub journal_size: u64,
    /// Bytes of the journal written since the last checkpoint.
    pub journal_used: u64,
    /// Records written to the journal since the last checkpoint. Each counts for at least 256
    /// bytes of the journal (SPEC.md §3): the journal is full when `journal_used`, or 256 times
    /// this, reaches `journal_size`.
    pub journal_records: u64,
    /// Lookups that found a live entry, by every process (this handle's not yet published
    /// counts included).
    pub hits: u64,
    /// Lookups that found nothing (or an expired entry).
    pub misses: u64,
    /// Entries written (puts applied, including replacements).
    pub inserts: u64,
    /// Entries removed by deletes and by reclaiming expired entries.
    pub deletes: u64,
    /// Checkpoints taken since the lock file's shared state was built.
    pub checkpoints: u64,
    /// Epoch of the last durable checkpoint (superblock sequence number).
    pub checkpoint_epoch: u64,
    /// Reset-on-restart generation recorded in the store.
    pub generation: u64,
    /// Slots in the live index.
    pub index_slots: u64,
    /// Slots holding deletion markers (reclaimed when the index is rebuilt).
    pub index_tombstones: u64,
    /// Journal records replayed by the most recent recovery in this store's shared state.
    pub recovered_records: u64,
    /// Number of full recoveries run: at a first open that could not resume the state a crashed
    /// process left, and after a process died holding the lock anywhere but in a commit's
    /// bounded stages (SPEC.md §7.5: those are repaired without a recovery).
    pub recoveries: u64,
    /// Whether the first process to open the store (since every process last closed it) rebuilt
    /// the free lists and counters by walking the index, instead of loading the snapshot a clean
    /// close leaves (SPEC.md §7.2): true after a crash or with a damaged or outdated snapshot.
    pub rebuilt_at_open: bool,
    /// Entries evicted to make room for writes (`WhenFull::Evict`), since the lock file's
    /// shared state was built.
    pub expunges: u64,
    /// Writes that waited a little for a checkpoint's flush to catch up (pacing, SPEC.md §5),
    /// since the lock file's shared state was built.
    pub paced_writes: u64,
    /// Writes that found their journal half full while a checkpoint's flush was still running,
    /// and waited for the rest of it (back-pressure, SPEC.md §4), since the lock file's shared
    /// state was built.
    pub full_half_waits: u64,
    /// Paced writes that waited as long as their bound allows without the flush catching up,
    /// and went on (SPEC.md §5), since the lock file's shared state was built: each is a flush
    /// slower than the pace expected.
    pub pace_overruns: u64,
    /// Checkpoint flushes run by this handle's own writes, in this process, before they took
    /// the write lock (such a write takes as long as the flush: SPEC.md §5, "Who flushes"):
    /// none while the handle has its background thread (`Options::background_checkpoints`).
    pub flushes_by_writes: u64,
    /// This handle's acquisitions of the write lock (its writes, checkpoints, closing) that
    /// found it held by another thread or process, since it was opened (SPEC.md §6.2).
    pub write_lock_contended: u64,
    /// Of those, the ones that went on waiting asleep in the kernel after spinning for 10 µs: a
    /// holder that kept the lock longer (a long change, or one that lost its core).
    pub write_lock_slept: u64,
    /// The longest one write of this handle waited in pacing (SPEC.md §5, "Pacing"), in
    /// nanoseconds, since it was opened.
    pub pace_wait_max_ns: u64,
}
