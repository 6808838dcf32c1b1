//! The public handle, read top to bottom: opening, the lock-free read path, then the public
//! operations.
//!
//! Open: `Store::open` → `Inner::open` (option checks, the election of SPEC.md §6.1 on both
//! files) → `Inner::open_elected` (the lock file's state reset or checked, the superblock read,
//! the journal and the data file's mapping) → for the first opener, the lock and
//! `WriteTxn::open_state` (`recover.rs`: the closing snapshot when it is valid, else `recover`,
//! which ends with a checkpoint when it replayed anything). The last closer checkpoints and
//! writes that snapshot (`Drop for Inner`).
//!
//! Reads take no lock: `Inner::read` validates them with the readers' sequence number. Writes
//! (`Store::put` and the others) end in `Store::write` or `Store::update`, which run the write
//! path of `write.rs`; `Store::checkpoint` takes the lock and runs `WriteTxn::checkpoint`
//! (`checkpoint.rs`).

use crate::entry_lock::{EntryGuard, EntryLocks};
use crate::error::{CorruptKind, Error, Result};
use crate::files::{self, Paths};
use crate::format::*;
use crate::index;
use crate::journal::{Journal, Op};
use crate::lock_file::{self, LockFile, INIT_BYTE, PRESENCE_BYTE};
use crate::map::Map;
use crate::{Durability, Entry, Options, Stats, Update, MAX_KEY_LEN};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An entry's metadata, which [`Store::scan_prefix_with`] shows before the value is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMeta {
    /// Length of the stored value in bytes.
    pub value_len: u64,
    /// As in [`Entry`]: Unix milliseconds after which the entry reads as absent; 0 = never.
    pub expires_at_ms: u64,
    /// As in [`Entry`]: Unix milliseconds when this version was written.
    pub modified_at_ms: u64,
    /// As in [`Entry`]: the journal sequence number of the write.
    pub version: u64,
}

/// What a [`Store::scan_prefix_with`] caller wants from one entry.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Nothing: the entry is not returned.
    Skip,
    /// The key and the metadata, without the value.
    Meta,
    /// The key, the metadata and a copy of the value.
    Value,
}

/// One entry returned by [`Store::scan_prefix_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// The entry's key.
    pub key: Vec<u8>,
    /// Its metadata.
    pub meta: EntryMeta,
    /// The value, when [`Visit::Value`] asked for it.
    pub value: Option<Vec<u8>>,
}

/// Times (2 ms apart) an opener looks again when the lock file and the data file disagree on
/// whether others have the store open (see `Store::open`).
const PRESENCE_RETRIES: u32 = 100;

/// A handle on one store. `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Store {
    inner: Arc<Inner>,
    entry_locks: EntryLocks,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The engine behind the handle (for the unit tests of its stages, and the modules that
    /// build on the read path: backup).
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// What one open handle uses, and its read view: lookups and scans under the readers' sequence
/// number. Nothing reached through it alone can change the store: the writing stages are methods
/// of the [`WriteTxn`](crate::write::WriteTxn) that [`lock`](Inner::lock) returns.
pub(crate) struct Inner {
    pub map: Map,
    pub lock_file: LockFile,
    pub journal: Journal,
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    poisoned: AtomicBool,
    /// What the first failure that poisoned the handle said, for the `Poisoned` error: the
    /// failure itself may have been seen by no caller (the checkpoint thread's flush).
    poison_cause: std::sync::Mutex<String>,
    recovered_at_open: bool,
    /// This handle's open was the first and kept the shared state a crashed process left
    /// (SPEC.md §7.5) instead of rebuilding it.
    resumed_at_open: bool,
    /// The process that opened the handle: a forked child must not run the closing protocol on
    /// lock-file descriptions it shares with its parent.
    pid: u32,
    /// Set once open completed; a half-opened handle must not run the closing checkpoint.
    opened: bool,
    /// An anonymous store (unlinked files): never flushed (see `Options::ephemeral`).
    pub(crate) ephemeral: bool,
    /// The journal was created (zeroed) by this open and holds no record yet, so the first
    /// recovery need not read it (16 to 128 MiB by default); cleared by that recovery.
    pub(crate) journal_is_new: AtomicBool,
    /// The epoch + 1 in which the disk refused to grow the heap up to its free-pool floor
    /// (`alloc.rs`, `below_floor`): this handle's writes stop asking until the next checkpoint,
    /// rather than trying `fallocate` on every put of a full disk.
    pub(crate) floor_refused: AtomicU64,
    /// The handle's checkpoint thread in this process, if it wants one
    /// (`Options::background_checkpoints`): writers wake it instead of flushing a frozen
    /// checkpoint themselves.
    pub(crate) checkpointer: crate::checkpoint::Checkpointer,
    /// The journal flusher of `Durability::Periodic` (none for other modes, read-only and
    /// anonymous stores).
    pub(crate) periodic: crate::periodic::Periodic,
    /// Checkpoint flushes this handle's writes ran themselves, before taking the write lock
    /// (`Stats::flushes_by_writes`).
    pub(crate) flushes_by_writes: AtomicU64,
    /// The longest this handle's writes waited in pacing (ns; `Inner::pace`).
    pub(crate) pace_wait_max: AtomicU64,
    /// This handle's paced writes that found the end of the runway near, and so could wait
    /// longer than `write::PACE_WAIT` (`Inner::pace`).
    pub(crate) pace_long_waits: AtomicU64,
    /// The reuse-map unit up to which that thread has made the free runs after the cursor
    /// writable; where the cursor stood then, where it wakes the thread again, and the epoch
    /// then (`prefault.rs`).
    pub(crate) prefaulted_to: AtomicU64,
    pub(crate) prefault_span: [AtomicU64; 3],
    /// Whether this handle's writes are most of the store's, for that thread; what it did.
    pub(crate) prefault_share: crate::prefault::Share,
    /// This handle's write-lock acquisitions that found it held, and that then slept.
    pub(crate) write_lock_waits: crate::lock_file::LockWaits,
    /// What a write that does not fit does (`Options::when_full`).
    pub(crate) when_full: crate::WhenFull,
    /// Hits and misses counted here and added to the shared counters in batches: one shared
    /// atomic bumped by every read of every process would bounce its cache line between cores.
    /// Per-thread stripes, so that two threads reading do not bounce one cache line either.
    reads: [ReadCounter; READ_STRIPES],
    /// Set for a read-only handle (`Options::read_only`, `readonly.rs`): its view, and the
    /// reason `lock` refuses.
    pub(crate) ro: Option<Box<crate::readonly::ReadOnly>>,
    /// Where this handle's expiry sweep goes on in the live index (a slot number, reduced modulo
    /// the index's size when used): each commit of a store past half its maximum size visits a
    /// few slots from here (`WriteTxn::expire_some`). Per handle, started at a slot of its own,
    /// so that processes sweep different parts and none needs shared state.
    pub(crate) expiry_cursor: AtomicU64,
    /// `pthread_self()` of the thread of this process holding the write lock through this
    /// handle (0: none), to refuse re-entry instead of deadlocking (`Inner::lock`). Only that
    /// thread sets it and clears it, and a thread compares it only with its own id, so no order
    /// is needed: a word in the handle, where a thread-local list cost a TLS lookup and a
    /// borrow on every lock and unlock.
    pub(crate) write_holder: std::sync::atomic::AtomicUsize,
    /// The process of `write_holder`: a child forked while another thread of its parent held
    /// the lock keeps that thread's id here, and a thread of its own may get the same id.
    pub(crate) write_holder_pid: std::sync::atomic::AtomicU32,
}

/// Optimistic attempts a read makes before it takes the write lock instead.
const READ_RETRIES: u32 = 3;

/// Reads counted locally before they are added to the shared counters.
const COUNTER_BATCH: u64 = 256;
const READ_STRIPES: usize = 16;

/// Hits and misses counted by the one thread that owns this stripe, on a cache line of its own.
#[derive(Default)]
#[repr(align(128))]
struct ReadCounter {
    /// `pthread_self()` of the thread that claimed the stripe (0: free). Only the owner writes
    /// the counts, so it adds with a plain load and store (no locked instruction); a thread
    /// whose stripe another owns counts straight into the lock file's counters instead. A
    /// thread that exits keeps its stripe: the next thread given the same id takes it over.
    owner: std::sync::atomic::AtomicUsize,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec for the call's duration. (Read directly: every
    // write reads the clock, and `SystemTime`'s conversions cost a third of the read again.)
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } == 0 && ts.tv_sec >= 0 {
        return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The wall clock in whole seconds from the coarse clock: a hit's last-access time is kept in
/// seconds, and the coarse clock (one tick behind at most) costs a fraction of the precise one,
/// which was a tenth of a small fetch.
#[inline]
fn coarse_now_s() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc == 0 {
        ts.tv_sec.max(0) as u32
    } else {
        (now_ms() / 1000) as u32
    }
}

fn ttl_to_expiry(ttl: Duration) -> u64 {
    now_ms()
        .saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64)
        .max(1)
}

/// A group of changes applied all or nothing by [`Store::batch`].
#[derive(Default, Debug)]
pub struct Batch {
    ops: Vec<Op<'static>>,
}

impl Batch {
    /// Adds a put that never expires.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.put_with_expiry(key, value, 0);
    }
    /// Adds a put that expires `ttl` from now.
    pub fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) {
        self.put_with_expiry(key, value, ttl_to_expiry(ttl));
    }
    /// Adds a put that expires at `expires_at_ms` (Unix milliseconds, 0 = never).
    pub fn put_with_expiry(&mut self, key: &[u8], value: &[u8], expires_at_ms: u64) {
        self.ops.push(Op::Put {
            key: key.to_vec().into(),
            value: value.to_vec().into(),
            expires_ms: expires_at_ms,
            modified_ms: now_ms(),
        });
    }
    /// Adds a delete (of nothing, if the key is absent when the batch is applied).
    pub fn delete(&mut self, key: &[u8]) {
        self.ops.push(Op::Delete {
            key: key.to_vec().into(),
        });
    }
    /// Changes added so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Whether no change was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Open and close.

impl Store {
    /// Opens the store at `path` (plus `path.journal` and `path.lock`, see [`Paths`]), creating
    /// it if missing and allowed, and recovering it if this is the first process to open it.
    ///
    /// # Errors
    ///
    /// - [`Error::Permission`]: a file or its directory is not safe to use (another owner, group
    ///   or world access, a symlink, a second hard link), or a file was replaced while other
    ///   processes have the store open.
    /// - [`Error::Incompatible`]: options out of range, a maximum size beyond the format's limit
    ///   or the address space, a lock file written by another version.
    /// - [`Error::Corrupt`]: no valid superblock, one whose fields are out of range, a durable
    ///   index failing its checksum, a journal of the wrong length.
    /// - [`Error::Full`]: no disk space to create or recover the store.
    /// - [`Error::Io`]: a system call failed (a missing file with `create(false)`, say).
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Store> {
        let inner = Arc::new(Inner::open(&Paths::new(path.as_ref()), &opts)?);
        Ok(Store::start(inner))
    }

    /// A store in unlinked temporary files: not durable, shared with children forked after this
    /// call (the behaviour of APCu's anonymous shared memory).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); in practice [`Error::Io`] or [`Error::Full`] when the temporary
    /// directory cannot hold the files.
    pub fn open_anonymous(opts: Options) -> Result<Store> {
        let dir = std::env::temp_dir();
        let name = format!("apcdb-anon-{}-{}", crate::pid::current(), now_ms());
        let paths = Paths::new(dir.join(name));
        let mut opts = opts.durability(Durability::None).create(true);
        opts.ephemeral = true;
        // Made here, empty and 0600, so that opening them below finds them existing and skips
        // the directory fsync that makes a durable store's new files survive a power cut.
        let made = [&paths.lock, &paths.data, &paths.journal].map(|p| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(p)
                .map_err(|e| Error::io(p, "create", e))
        });
        let inner = match made.into_iter().find_map(|r| r.err()) {
            Some(e) => Err(e),
            None => Inner::open(&paths, &opts),
        };
        for p in [&paths.data, &paths.journal, &paths.lock] {
            let _ = std::fs::remove_file(p);
        }
        Ok(Store::start(Arc::new(inner?)))
    }

    fn start(inner: Arc<Inner>) -> Store {
        inner.periodic.start(Arc::downgrade(&inner));
        // The checkpoint thread is started later, by the first write that needs it
        // (`Checkpointer::own_thread`).
        inner.checkpointer.attach(Arc::downgrade(&inner));
        let entry_locks = EntryLocks::new(inner.lock_file.raw_fd(), &inner.lock_file.path);
        Store { inner, entry_locks }
    }

    /// Stops this handle's threads in this process (the checkpoint thread, the periodic
    /// flusher) and starts none again; the handle stays usable, its writes then flush
    /// checkpoints themselves and, in `Periodic` mode, the journal only when they find the
    /// interval passed. For a program about to unload the code those threads run (PHP's module
    /// shutdown unloads the extension). Dropping the handle does the same.
    pub fn stop_threads(&self) {
        self.inner.checkpointer.stop();
        self.inner.periodic.stop();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

impl Inner {
    fn open(paths: &Paths, opts: &Options) -> Result<Inner> {
        if opts.read_only {
            return Inner::open_read_only(paths, opts);
        }
        if !(MIN_JOURNAL_SIZE..=MAX_JOURNAL_SIZE).contains(&opts.journal_size_for_new()) {
            return Err(Error::Incompatible {
                path: paths.data.clone(),
                detail: format!(
                    "journal_size {} bytes is outside 64 KiB ..= 1 GiB",
                    opts.journal_size_for_new()
                ),
            });
        }
        if opts.max_size < opts.initial_size || opts.initial_size < 64 << 10 {
            return Err(Error::Incompatible {
                path: paths.data.clone(),
                detail: "options need 64 KiB <= initial_size <= max_size".into(),
            });
        }
        if !opts.create {
            // The store must exist; its lock file is not durable state and is made when missing.
            std::fs::symlink_metadata(&paths.data)
                .map_err(|e| Error::io(&paths.data, "open", e))?;
        }
        if std::fs::symlink_metadata(&paths.data).map_or(true, |m| m.len() == 0) {
            // About to create the store: a maximum size that no later open could map must be
            // refused before any file exists (SPEC.md §9).
            check_creatable_size(&paths.data, opts.max_size)?;
        }
        let io = &*opts.io;
        let (lock_fd, _) = files::open_checked(io, &paths.lock, true)?;
        // Election (SPEC.md §6.1): byte 0 serialises opens and closes; whoever can take byte 1
        // exclusively is alone, and must (re)build the shared state. The same two bytes are
        // taken on the data file too, which every process keeps open (and mapped) for as long as
        // it uses the store: a lock file deleted or replaced under running processes cannot
        // hide them from a new opener. Always the lock file first, then the data file.
        lock_file::range_lock(&lock_fd, &paths.lock, INIT_BYTE, Some(true), true)?;
        let (data_file, _) = files::open_checked(io, &paths.data, opts.create)?;
        lock_file::range_lock(&data_file, &paths.data, INIT_BYTE, Some(true), true)?;
        // A process forking (to run a program) while one of its handles closes keeps a copy of
        // that handle's descriptors, and so its locks, until its `exec`: the two files can
        // disagree for that moment. A file really replaced keeps disagreeing: retry briefly,
        // then refuse.
        let mut tries = 0;
        let (first, alone) = loop {
            let first =
                lock_file::range_lock(&lock_fd, &paths.lock, PRESENCE_BYTE, Some(true), false)?;
            let alone =
                lock_file::range_lock(&data_file, &paths.data, PRESENCE_BYTE, Some(true), false)?;
            if first == alone || tries == PRESENCE_RETRIES {
                break (first, alone);
            }
            if first {
                lock_file::range_lock(&lock_fd, &paths.lock, PRESENCE_BYTE, None, false)?;
            }
            if alone {
                lock_file::range_lock(&data_file, &paths.data, PRESENCE_BYTE, None, false)?;
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        if first != alone {
            // Dropping both descriptors releases every byte taken above.
            return Err(Error::Permission {
                path: if first { &paths.lock } else { &paths.data }.clone(),
                detail: format!(
                    "it was deleted or replaced while processes still have the store open (they \
                     use the {} file that was there before); close every process using the store, \
                     then open it again",
                    if first { "lock" } else { "data" }
                ),
            });
        }
        let opened = LockFile::map(paths.lock.clone(), lock_fd, first, io)
            .and_then(|lock_file| Inner::open_elected(paths, opts, lock_file, data_file, first));
        match opened {
            Ok(inner) => {
                let r = inner.lock_file.range_lock(PRESENCE_BYTE, Some(false), true);
                let d = inner.data_lock(PRESENCE_BYTE, Some(false));
                inner.data_lock(INIT_BYTE, None)?;
                inner.lock_file.range_lock(INIT_BYTE, None, true)?;
                r.and(d).map(|_| inner)
            }
            // Dropping the descriptors releases the bytes of both files.
            Err(e) => Err(e),
        }
    }

    /// Takes or releases one of the election bytes on the data file (see `open`).
    fn data_lock(&self, byte: i64, mode: Option<bool>) -> Result<bool> {
        lock_file::range_lock(self.map.file(), &self.path, byte, mode, true)
    }

    /// A data file deleted or replaced while the store is open: whatever this handle writes
    /// would go to a file no later opener sees, so it refuses (SPEC.md §1.1).
    pub(crate) fn check_data_file_identity(&self) -> Result<()> {
        if self.ephemeral || files::same_file(&self.path, self.map.file())? {
            return Ok(());
        }
        let e = Error::Permission {
            path: self.path.clone(),
            detail: "the data file was deleted or replaced while this process had the store open; \
                     its writes would be lost, so it refuses them: close every process using the \
                     store, then open it again"
                .into(),
        };
        self.poison(&e);
        Err(e)
    }

    fn open_elected(
        paths: &Paths,
        opts: &Options,
        lock_file: LockFile,
        data_file: std::fs::File,
        first: bool,
    ) -> Result<Inner> {
        let io = &*opts.io;
        let is_new = files::file_len(&paths.data, &data_file)? == 0;
        // After a process crash in this boot, the shared state it left may be kept (SPEC.md
        // §7.5); the journal is checked below, before anything relies on the state.
        let mut resume = first
            && !is_new
            && !opts.ephemeral
            && crate::resume::may_resume(&lock_file, &data_file);
        if first && !resume {
            lock_file.initialise()?;
        } else if !first {
            lock_file.check_initialised()?;
        }
        if is_new && !first {
            return Err(Error::corrupt(&paths.data, CorruptKind::EmptyDataFile));
        }
        let sb = if is_new {
            create_data_file(&paths.data, &data_file, opts)?
        } else {
            // Validated before any of its fields sizes a mapping or a loop (a later opener
            // trusts it too).
            let len = files::file_len(&paths.data, &data_file)?;
            let read = read_superblock(&paths.data, len, |at, b| {
                use std::os::unix::fs::FileExt;
                data_file
                    .read_exact_at(b, at)
                    .map_err(|e| Error::io(&paths.data, "read", e))
            });
            match read {
                // An older format is converted by the first opener, which is alone (SPEC.md §2.1).
                Err(Error::Corrupt {
                    kind: CorruptKind::NoValidSuperblock { .. },
                    ..
                }) if first => match crate::upgrade::convert(paths, &data_file, opts)? {
                    Some(sb) => sb,
                    None => read?,
                },
                r => r?,
            }
        };
        // Only now, so that an open refused for its superblocks leaves the files as they were.
        let (journal_file, _) = files::open_checked(io, &paths.journal, true)?;
        let journal = Journal::new(
            journal_file,
            paths.journal.clone(),
            sb.journal_size,
            opts.io.clone(),
        );
        let jlen = files::file_len(&paths.journal, journal.file())?;
        if resume {
            resume = crate::resume::describes(lock_file.state(), journal.file(), &data_file, &sb);
            if !resume {
                lock_file.initialise()?;
            }
        }
        if jlen != sb.journal_size {
            if jlen != 0 || !first {
                return Err(Error::corrupt(
                    &paths.journal,
                    CorruptKind::JournalSize {
                        len: jlen,
                        expected: sb.journal_size,
                    },
                ));
            }
            // The journal file is missing (e.g. only PATH was copied after a clean close): start
            // an empty one. Writes after the last checkpoint that only it held are gone.
            // (An anonymous store's journal is always new and empty: it needs no zeros.)
            journal.format(opts.ephemeral)?;
        } else if is_new {
            journal.format(false)?;
        }
        if is_new && !opts.ephemeral {
            files::sync_parent_dir(io, &paths.data)?;
        }
        // Relaxed modes copy records into a mapping of the journal (no system call per write);
        // `Sync` keeps `pwrite`, because `fdatasync` of mapped dirty pages costs twice as much.
        let journal = match opts.durability {
            Durability::Sync => journal,
            _ => journal.mapped()?,
        };
        let map = map_data_file(paths, data_file, &sb, opts)?;
        let mut inner = Inner {
            map,
            lock_file,
            journal,
            path: paths.data.clone(),
            durability: opts.durability,
            poisoned: AtomicBool::new(false),
            poison_cause: Default::default(),
            recovered_at_open: false,
            resumed_at_open: false,
            pid: crate::pid::current(),
            opened: false,
            ephemeral: opts.ephemeral,
            journal_is_new: AtomicBool::new(is_new),
            floor_refused: AtomicU64::new(0),
            checkpointer: crate::checkpoint::Checkpointer::new(
                opts.background_checkpoints && !opts.read_only,
            ),
            periodic: crate::periodic::Periodic::new(match opts.durability {
                Durability::Periodic(every) if !opts.ephemeral => Some(every),
                _ => None,
            }),
            flushes_by_writes: AtomicU64::new(0),
            pace_wait_max: AtomicU64::new(0),
            pace_long_waits: AtomicU64::new(0),
            prefaulted_to: AtomicU64::new(0),
            prefault_span: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            prefault_share: Default::default(),
            write_lock_waits: Default::default(),
            when_full: opts.when_full,
            reads: Default::default(),
            ro: None,
            expiry_cursor: expiry_start(),
            write_holder: Default::default(),
            write_holder_pid: Default::default(),
        };
        let mut resumed = false;
        if first && resume {
            // Like a later opener: taking the lock repairs a holder that died (a full recovery
            // only where its stage says so, which counts in `recoveries`).
            let h = inner.lock_file.state();
            let recoveries = h.recoveries.load(Relaxed);
            // A snapshot the last closer left stays armed: an open that only reads keeps it.
            let taken = inner.lock_keeping_snapshot().map(|txn| {
                let kept = h.recoveries.load(Relaxed) == recoveries;
                if kept {
                    h.rebuilt_at_open.store(0, Relaxed);
                    h.recovered_records.store(0, Relaxed);
                } else {
                    h.rebuilt_at_open.store(1, Relaxed);
                }
                drop(txn);
                (kept, h.recovered_records.load(Relaxed) > 0)
            });
            match taken {
                Ok((kept, replayed)) => {
                    resumed = true;
                    inner.resumed_at_open = kept;
                    inner.recovered_at_open = replayed;
                }
                // Whatever stops it (a mutex left unrecoverable, a failed recovery), this
                // process is still alone: build the state afresh as any first opener.
                Err(_) => inner.lock_file.initialise()?,
            }
        }
        if first && !resumed {
            let txn = inner.lock()?;
            let replayed = txn.open_state()?;
            if !inner.ephemeral {
                crate::resume::mark_resumable(
                    inner.lock_file.state(),
                    inner.map.file(),
                    inner.journal.file(),
                );
            }
            drop(txn);
            inner.recovered_at_open = replayed > 0;
        }
        // The limit (SPEC.md §9): raised to what the options give, never lowered by them.
        if opts.max_size_given && opts.max_size > inner.max_size() {
            let txn = inner.lock()?;
            if opts.max_size > inner.max_size() {
                txn.set_max_size(opts.max_size)?;
            }
        }
        if let Some(g) = opts.reset_generation {
            // Only a newer generation clears: an older server never wipes a newer one's data.
            let txn = inner.lock()?;
            let lsn = if g > inner.lock_file.state().generation.load(Relaxed) {
                Some(txn.commit(&[Op::Reset { generation: g }])?)
            } else {
                None
            };
            drop(txn);
            if let Some(lsn) = lsn {
                inner.after_commit(lsn)?;
            }
        }
        inner.opened = true;
        Ok(inner)
    }
}

impl Inner {
    /// A read-only handle (SPEC.md §6.8): the data file and journal opened `O_RDONLY`, the data
    /// file mapped `PROT_READ`, a private in-memory state instead of the lock file, no election
    /// byte, no recovery; then the first view (`readonly.rs`).
    fn open_read_only(paths: &Paths, opts: &Options) -> Result<Inner> {
        let data_file = files::open_read_only(&paths.data)?;
        let len = files::file_len(&paths.data, &data_file)?;
        if len == 0 {
            return Err(Error::corrupt(&paths.data, CorruptKind::EmptyDataFile));
        }
        // Validated before it sizes the mapping.
        let sb = read_superblock(&paths.data, len, |at, b| {
            use std::os::unix::fs::FileExt;
            data_file
                .read_exact_at(b, at)
                .map_err(|e| Error::io(&paths.data, "read", e))
        })?;
        // A missing journal (only the data file copied) shows the checkpoint alone, as the next
        // read-write open would; its stand-in is never read.
        let (journal_file, journal_missing) = match files::open_read_only(&paths.journal) {
            Ok(f) => (f, false),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let null = std::fs::File::open("/dev/null")
                    .map_err(|e| Error::io("/dev/null", "open", e))?;
                (null, true)
            }
            Err(e) => return Err(e),
        };
        if !journal_missing {
            let jlen = files::file_len(&paths.journal, &journal_file)?;
            if jlen != sb.journal_size {
                let kind = CorruptKind::JournalSize {
                    len: jlen,
                    expected: sb.journal_size,
                };
                return Err(Error::corrupt(&paths.journal, kind));
            }
        }
        let journal = Journal::new(
            journal_file,
            paths.journal.clone(),
            sb.journal_size,
            opts.io.clone(),
        );
        let inner = Inner {
            map: map_data_file(paths, data_file, &sb, opts)?,
            lock_file: LockFile::private(paths.lock.clone())?,
            journal,
            path: paths.data.clone(),
            durability: Durability::None,
            poisoned: AtomicBool::new(false),
            poison_cause: Default::default(),
            recovered_at_open: false,
            resumed_at_open: false,
            pid: crate::pid::current(),
            opened: true,
            ephemeral: false,
            journal_is_new: AtomicBool::new(false),
            floor_refused: AtomicU64::new(0),
            checkpointer: crate::checkpoint::Checkpointer::new(false),
            periodic: crate::periodic::Periodic::new(None),
            flushes_by_writes: AtomicU64::new(0),
            pace_wait_max: AtomicU64::new(0),
            pace_long_waits: AtomicU64::new(0),
            prefaulted_to: AtomicU64::new(0),
            prefault_span: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            prefault_share: Default::default(),
            write_lock_waits: Default::default(),
            when_full: opts.when_full,
            reads: Default::default(),
            ro: Some(Box::new(crate::readonly::ReadOnly::new(journal_missing))),
            expiry_cursor: expiry_start(),
            write_holder: Default::default(),
            write_holder_pid: Default::default(),
        };
        if let Some(ro) = &inner.ro {
            ro.refresh(&inner)?;
        }
        Ok(inner)
    }
}

/// A starting slot for a handle's expiry sweep that differs between processes and handles.
fn expiry_start() -> AtomicU64 {
    static HANDLES: AtomicU64 = AtomicU64::new(0);
    let n = (crate::pid::current() as u64) << 32 | HANDLES.fetch_add(1, Relaxed);
    // A multiplicative hash spreads consecutive pids over the index.
    AtomicU64::new(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20)
}

/// Refuses a maximum size beyond the format's offset limit, or one this process cannot reserve
/// address space for (the store could never be opened).
fn check_creatable_size(path: &Path, max_size: u64) -> Result<()> {
    if max_size > MAX_STORE_SIZE {
        return Err(Error::Incompatible {
            path: path.to_path_buf(),
            detail: format!(
                "maximum size {max_size} bytes exceeds the format's limit of {MAX_STORE_SIZE} bytes (4 TiB)"
            ),
        });
    }
    if !can_reserve(max_size) {
        return Err(Error::Incompatible {
            path: path.to_path_buf(),
            detail: format!(
                "cannot reserve {max_size} bytes of address space for the maximum size (lower it)"
            ),
        });
    }
    Ok(())
}

/// Whether `len` bytes of address space can be reserved now (what mapping the data file needs).
fn can_reserve(len: u64) -> bool {
    let Ok(len) = usize::try_from(len.max(1)) else {
        return false;
    };
    // SAFETY: a fresh anonymous inaccessible mapping that aliases nothing; unmapped right away.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        libc::munmap(p, len);
    }
    true
}

/// Maps the data file. The reservation is generous (four times the larger of the recorded and
/// the asked maximum size, at least 64 GiB, at most the format's 4 TiB), so that a limit raised
/// later by any process can be used here without remapping (SPEC.md §9); failing that, exactly
/// that larger size. If even the recorded size cannot be had here (a smaller `ulimit -v` than its
/// creator's, say), the store still opens, reserving what the options ask and at least the
/// file's length; this process then grows the file only that far (the limit stays as it is for
/// the others).
fn map_data_file(
    paths: &Paths,
    data_file: std::fs::File,
    sb: &Superblock,
    opts: &Options,
) -> Result<Map> {
    let spare = data_file
        .try_clone()
        .map_err(|e| Error::io(&paths.data, "dup", e))?;
    let map = |file, reserved| {
        Map::new(
            paths.data.clone(),
            file,
            reserved,
            crate::io::FileKind::Data,
            opts.io.clone(),
        )
    };
    let want = sb.max_size.max(opts.max_size).min(MAX_STORE_SIZE);
    let generous = want.saturating_mul(4).clamp(64 << 30, MAX_STORE_SIZE);
    if generous > want && can_reserve(generous) {
        // (`can_reserve` first: a failed file mapping would cost the descriptor.)
        return map(data_file, generous);
    }
    let recorded = map(data_file, want);
    let fallback = opts.max_size.min(sb.max_size);
    match recorded {
        Err(Error::Io { .. }) if fallback < sb.max_size => map(spare, fallback),
        r => r,
    }
}

/// Lays out a new data file: two empty superblock slots, then the three index copies, and writes
/// the first superblock (epoch 1) durably.
fn create_data_file(path: &Path, file: &std::fs::File, opts: &Options) -> Result<Superblock> {
    use crate::io::{FileKind::Data, SyncKind};
    let io = &*opts.io;
    let slots = opts.index_slots;
    let copy = index_block_len(slots);
    let initial = opts
        .initial_size
        .max(HEAP_START + 3 * copy)
        .next_multiple_of(PAGE);
    files::allocate(io, Data, path, file, initial)?;
    let sb = Superblock {
        epoch: 1,
        ckpt_lsn: 0,
        file_size: initial,
        max_size: opts.max_size.max(initial),
        heap_end: HEAP_START + 3 * copy,
        index: [HEAP_START, HEAP_START + copy],
        live: HEAP_START + 2 * copy,
        index_slots: slots,
        durable_copy: 0,
        generation: opts.reset_generation.unwrap_or(0),
        journal_size: opts.journal_size_for_new().next_multiple_of(PAGE),
        created_ms: now_ms(),
        index_crc: crc32c::crc32c(&vec![0u8; index_len(slots) as usize]) as u64,
    };
    crate::io::write_all_at(io, Data, file, SUPERBLOCK_OFFSETS[1], &sb.encode())
        .map_err(|e| Error::io(path, "write", e))?;
    if !opts.ephemeral {
        io.sync_file(Data, file, SyncKind::All)
            .map_err(|e| Error::io(path, "fsync", e))?;
    }
    Ok(sb)
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.pid != crate::pid::current() || !self.opened || self.ephemeral || self.ro.is_some()
        {
            return;
        }
        let h = self.lock_file.state();
        for r in &self.reads {
            h.hits.fetch_add(r.hits.swap(0, Relaxed), Relaxed);
            h.misses.fetch_add(r.misses.swap(0, Relaxed), Relaxed);
        }
        // The last process to close checkpoints, so the next open has nothing to replay. Last
        // means alone on both files (the election bytes of §6.1).
        if self
            .lock_file
            .range_lock(INIT_BYTE, Some(true), true)
            .is_ok()
        {
            if self.data_lock(INIT_BYTE, Some(true)).is_ok() {
                if let (Ok(true), Ok(true)) = (
                    self.lock_file.range_lock(PRESENCE_BYTE, Some(true), false),
                    lock_file::range_lock(
                        self.map.file(),
                        &self.path,
                        PRESENCE_BYTE,
                        Some(true),
                        false,
                    ),
                ) {
                    if let Ok(txn) = self.lock() {
                        // A closer that dies from here on leaves a state half way to the
                        // snapshot: the next first opener must not resume it.
                        let resumable = h.resumable.swap(0, SeqCst);
                        // Leaves what the next opener would rebuild (SPEC.md §7.2), for an
                        // open after a reboot.
                        let saved = txn.checkpoint().and_then(|()| txn.save_snapshot());
                        if let Ok(saved) = saved {
                            // In this boot the next first opener resumes this very state
                            // instead (SPEC.md §7.5): nothing to verify, zero or rebuild. Armed
                            // before it is resumable, so that the first write after that open
                            // erases the snapshot, as after an open that loaded it.
                            if saved {
                                h.snapshot_armed.store(1, SeqCst);
                            }
                            if resumable == 1 && !self.poisoned.load(SeqCst) {
                                h.resumable.store(1, SeqCst);
                            }
                        }
                        drop(txn);
                    }
                }
                let _ = self.data_lock(INIT_BYTE, None);
            }
            let _ = self.lock_file.range_lock(INIT_BYTE, None, true);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The handle's health checks, and the read path. (Writing is in `write.rs`.)

impl Inner {
    /// Fails once any of the three mappings was hit by a SIGBUS (a file shrunk from outside,
    /// SPEC.md §6.5): from then on this handle only returns that error.
    #[inline]
    pub(crate) fn check_mappings(&self) -> Result<()> {
        if self.map.broken() {
            return Err(self.map.truncated_error());
        }
        if self.lock_file.broken() {
            return Err(crate::map::truncated_error(&self.lock_file.path));
        }
        if self.journal.broken() {
            return Err(crate::map::truncated_error(&self.journal.path));
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn check_poison(&self) -> Result<()> {
        self.check_mappings()?;
        if self.poisoned.load(Relaxed) {
            let cause = self.poison_cause.lock().unwrap_or_else(|p| p.into_inner());
            return Err(Error::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    /// Refuses every later write of this handle; `cause` is the failure, kept for the error
    /// those writes get (the first cause only: later ones follow from it).
    pub(crate) fn poison(&self, cause: &Error) {
        {
            let mut kept = self.poison_cause.lock().unwrap_or_else(|p| p.into_inner());
            if kept.is_empty() {
                *kept = cause.to_string();
            }
        }
        self.poisoned.store(true, Relaxed);
        // A failed flush may have dropped pages of the page cache: the next first opener must
        // not trust what this state says is in it (SPEC.md §7.5, §8.3).
        self.lock_file.state().resumable.store(0, SeqCst);
    }

    /// The largest journal record a transaction may write: a quarter of the journal.
    pub(crate) fn record_limit(&self) -> usize {
        (self.journal.size / 4) as usize
    }

    // -----------------------------------------------------------------------------------------
    // Reads: no lock. The sequence number is odd while the index is reorganised or freed blocks
    // are handed out again; a read that saw it change retries.

    pub(crate) fn read<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        if let Some(ro) = &self.ro {
            return ro.read(self, f);
        }
        let h = self.lock_file.state();
        let mut invalidated = 0;
        for attempt in 0u32.. {
            let seq = h.seq.load(Acquire);
            if seq % 2 == 1 {
                self.wait_for_writer(attempt)?;
                continue;
            }
            if invalidated == READ_RETRIES {
                // A long read (a scan) keeps being overtaken by reorganisations: read under the
                // write lock instead, where nothing moves, so it cannot starve.
                let guard = self.lock()?;
                let r = f();
                drop(guard);
                return r;
            }
            let r = f();
            std::sync::atomic::fence(Acquire);
            if h.seq.load(Relaxed) == seq {
                if self.lock_file.broken() {
                    // `seq` itself may have read as zeros from a repaired page.
                    return Err(crate::map::truncated_error(&self.lock_file.path));
                }
                return r;
            }
            invalidated += 1;
        }
        unreachable!()
    }

    /// A reorganisation is under way. Spin briefly, then queue on the write lock: if the
    /// reorganiser died, taking the lock runs recovery.
    fn wait_for_writer(&self, attempt: u32) -> Result<()> {
        if attempt < 64 {
            std::hint::spin_loop();
        } else if attempt < 1000 {
            std::thread::yield_now();
        } else {
            drop(self.lock()?);
        }
        Ok(())
    }

    /// A read-only handle's current view (its overlay), consulted by reads before the index.
    fn ro_view(&self) -> Option<Arc<crate::readonly::View>> {
        self.ro.as_ref().map(|ro| ro.current())
    }

    /// The live entry of `key`, without touching the hit/miss counters.
    fn lookup_uncounted(&self, key: &[u8]) -> Result<Option<Entry>> {
        let hash = hash_key(key);
        let h = self.lock_file.state();
        let found = self.read(|| {
            if let Some(decided) = self.ro_view().and_then(|v| v.lookup(key)) {
                return Ok(decided);
            }
            let idx = h.live_index.load(Acquire);
            let p = index::probe(&self.map, idx, h.index_slots.load(Acquire), key, hash)?;
            p.found
                .map(|(_, slot)| index::value_at(&self.map, slot, key))
                .transpose()
        })?;
        Ok(found.filter(index::is_live))
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Entry>> {
        // The one-pass read of `lookup_with`, copying the value out.
        self.lookup_with(key, |v, m| Entry {
            value: v.to_vec(),
            expires_at_ms: m.expires_at_ms,
            modified_at_ms: m.modified_at_ms,
            version: m.version,
        })
    }

    /// Counts a hit or a miss on this thread's stripe, adding the stripe to the shared counter
    /// once it holds a batch.
    #[inline]
    fn count_read(&self, hit: bool) {
        let h = self.lock_file.state();
        // The thread's id without a thread-local lookup (in a shared library such as the PHP
        // extension, each one is a call to `__tls_get_addr`).
        // SAFETY: pthread_self has no preconditions and cannot fail.
        let me = unsafe { libc::pthread_self() } as usize;
        // Thread ids are addresses a stack size apart: mix them before taking the top bits.
        let at = (me as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
        let stripe = &self.reads[at as usize % READ_STRIPES];
        let (local, shared) = if hit {
            (&stripe.hits, &h.hits)
        } else {
            (&stripe.misses, &h.misses)
        };
        let owner = stripe.owner.load(Relaxed);
        let mine = owner == me
            || (owner == 0
                && stripe
                    .owner
                    .compare_exchange(0, me, Relaxed, Relaxed)
                    .is_ok());
        if !mine {
            shared.fetch_add(1, Relaxed);
            return;
        }
        let n = local.load(Relaxed) + 1;
        if n >= COUNTER_BATCH {
            shared.fetch_add(n, Relaxed);
            local.store(0, Relaxed);
        } else {
            local.store(n, Relaxed);
        }
    }

    /// As [`lookup`](Self::lookup), but the value goes into `buf` (its old contents dropped)
    /// instead of a new `Vec`: a reader that keeps one buffer allocates nothing per read. The
    /// bytes are checked against the entry checksum like every other read; a read overtaken by a
    /// writer retries and overwrites `buf` again.
    fn lookup_into(&self, key: &[u8], buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        self.lookup_with(key, |v, meta| {
            buf.clear();
            buf.extend_from_slice(v);
            *meta
        })
    }

    /// The live entry of `key` handed to `f` as the value's bytes in the mapping and the
    /// metadata, without copying the value. The checksum is verified in place before `f` runs;
    /// the sequence number is checked after `f` returned, so a result computed while a writer
    /// reused the block is dropped and `f` runs again on the new state.
    fn lookup_with<R>(
        &self,
        key: &[u8],
        mut f: impl FnMut(&[u8], &EntryMeta) -> R,
    ) -> Result<Option<R>> {
        let hash = hash_key(key);
        let h = self.lock_file.state();
        h.prefetch_access(crate::lock_file::access_bucket(hash));
        // The result goes here rather than through `read`'s return value: what passes through
        // the retry loop is then only `Result<()>`'s tag, not the (large) error type wrapped
        // around the caller's result, moved through each layer.
        let mut out = None;
        self.read(|| {
            out = None;
            // A read-only handle: the journal's writes, replayed in memory, come first.
            if let Some(decided) = self.ro_view().and_then(|v| v.lookup(key)) {
                out = decided.filter(index::is_live).map(|e| {
                    let meta = EntryMeta {
                        value_len: e.value.len() as u64,
                        expires_at_ms: e.expires_at_ms,
                        modified_at_ms: e.modified_at_ms,
                        version: e.version,
                    };
                    f(&e.value, &meta)
                });
                return Ok(());
            }
            // The probe and the read in one pass: a slot whose tag matches is checked in its
            // block in place (header, key, then the checksum of the matching entry), so the
            // header is decoded and the key compared once, not once by a probe and again by the
            // read. All of it under one SIGBUS guard (a view of the mapping), not one per word.
            let idx = h.live_index.load(Acquire);
            let slots = h.index_slots.load(Acquire);
            self.map.with_view(|m| {
                let mask = slots.wrapping_sub(1);
                let mut i = hash & mask;
                for _ in 0..slots {
                    let slot = m.load_u64(slot_at(idx, i))?;
                    i = (i + 1) & mask;
                    if slot == SLOT_EMPTY {
                        return Ok(());
                    }
                    if slot == SLOT_TOMBSTONE || slot_tag(slot) != slot_tag(hash) {
                        continue;
                    }
                    let off = slot_offset(slot);
                    let block = class_size(slot_class(slot));
                    let b = m.bytes(off, block as usize)?;
                    let eh = EntryHeader::decode(&b[..ENTRY_HEADER]);
                    if eh.total_len() > block {
                        let kind = CorruptKind::EntryTooLong {
                            at: off,
                            claims: eh.total_len(),
                            block,
                        };
                        return Err(Error::corrupt(&self.path, kind));
                    }
                    let value_at = ENTRY_HEADER + key.len();
                    if eh.key_len as usize != key.len() || &b[ENTRY_HEADER..value_at] != key {
                        // Another key with the same tag: probe on.
                        continue;
                    }
                    let meta = EntryMeta {
                        value_len: eh.val_len as u64,
                        expires_at_ms: eh.expires_ms,
                        modified_at_ms: eh.modified_ms,
                        version: eh.version,
                    };
                    if meta.expires_at_ms != 0 && meta.expires_at_ms <= now_ms() {
                        return Ok(());
                    }
                    let end = value_at + eh.val_len as usize;
                    // The checksum proves the bytes belong together, so the key just compared
                    // is this entry's (a block reused meanwhile fails it or moves `seq`).
                    let crc = crate::format::crc32c(&b[entry_at::CHECKSUMMED..end]);
                    if crc != eh.crc {
                        let kind = CorruptKind::EntryChecksum { at: off };
                        return Err(Error::corrupt(&self.path, kind));
                    }
                    out = Some(f(&b[value_at..end], &meta));
                    return Ok(());
                }
                Ok(())
            })?
        })?;
        let found = out;
        self.count_read(found.is_some());
        if found.is_some() {
            self.touch(hash);
        }
        Ok(found)
    }

    /// A hit on the key of `hash`: referenced for the eviction hand, counted in its bucket's
    /// hits and access time (lock file only: a read never writes the data file).
    #[inline]
    fn touch(&self, hash: u64) {
        let now_s = coarse_now_s();
        self.lock_file
            .state()
            .touch(crate::lock_file::access_bucket(hash), now_s);
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The public operations.

impl Store {
    /// The store's data file (the path it was opened with).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stores `value` under `key`, never expiring. Durable as the handle's
    /// [`Durability`] says when this returns.
    ///
    /// # Errors
    ///
    /// - [`Error::KeyTooLarge`], [`Error::ValueTooLarge`]: checked before anything is written.
    /// - [`Error::Full`]: the store is at its maximum size or the disk is full; nothing changed.
    /// - [`Error::Poisoned`]: an earlier flush of this handle failed; open a new handle.
    /// - [`Error::Reentrant`] from inside an [`update`](Self::update) callback;
    ///   [`Error::ForkedLockHolder`] in a child forked while the parent held the write lock.
    /// - [`Error::Io`] (a failed journal write or flush, after which the handle is poisoned),
    ///   [`Error::Corrupt`] (damage found in the index or the files, or a file truncated under
    ///   the open store), [`Error::Permission`] (the data file was replaced while open).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_with_expiry(key, value, 0)
    }

    /// Stores `value` under `key`, expiring `ttl` from now.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn put_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        self.put_with_expiry(key, value, ttl_to_expiry(ttl))
    }

    /// Stores `value` under `key`, expiring at `expires_at_ms` (Unix milliseconds, 0 = never).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn put_with_expiry(&self, key: &[u8], value: &[u8], expires_at_ms: u64) -> Result<()> {
        self.put_at(key, value, expires_at_ms, now_ms())
    }

    /// As [`put_with_expiry`](Self::put_with_expiry), dated `modified_at_ms` (Unix milliseconds)
    /// instead of by a clock read here: the entry's [`Entry::modified_at_ms`] and its last
    /// access in the access table. For a caller that has just read the clock (to compute the
    /// expiry: one read instead of two) or that dates its writes its own way (the PHP
    /// extension's `apc.use_request_time`: every write of a request carries the request's
    /// start). The time is recorded as given; expiry goes by `expires_at_ms` alone, and nothing
    /// orders entries by their modification time.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn put_at(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
        modified_at_ms: u64,
    ) -> Result<()> {
        self.check_sizes(key, value)?;
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
            expires_ms: expires_at_ms,
            modified_ms: modified_at_ms,
        };
        self.write(&[op])
    }

    fn check_sizes(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        let max = self.max_value_len().saturating_sub(key.len());
        if value.len() > max {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        Ok(())
    }

    /// Commits `ops` as one transaction (for the crate's own writers of whole records: backup).
    pub(crate) fn write_ops(&self, ops: &[Op]) -> Result<()> {
        self.write(ops)
    }

    fn write(&self, ops: &[Op]) -> Result<()> {
        self.inner.flush_before_write()?;
        let lsn = {
            let txn = self.inner.lock()?;
            txn.commit(ops)?
        };
        self.inner.after_commit(lsn)
    }

    /// The value of `key`, if present and not expired.
    ///
    /// # Errors
    ///
    /// As [`get_entry`](Self::get_entry).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_entry(key)?.map(|e| e.value))
    }

    /// The entry of `key` with its metadata, if present and not expired. Reads take no lock
    /// unless writers keep reorganising the index under them.
    ///
    /// # Errors
    ///
    /// - [`Error::KeyTooLarge`].
    /// - [`Error::Corrupt`]: the entry or the index is damaged (an entry failing its checksum is
    ///   never returned), or the data file was truncated under the open store.
    /// - [`Error::Reentrant`] when a read that has to fall back to the write lock runs inside an
    ///   [`update`](Self::update) callback; [`Error::Io`] or others from recovery, when this
    ///   read finds that a process died holding the lock and repairs the store first.
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        check_key(key)?;
        self.inner.lookup(key)
    }

    /// As [`get_entry`](Self::get_entry), but the value is written into `buf` (replacing what it
    /// held) and only the metadata is returned: a caller that reuses one buffer reads without
    /// allocating. On a miss `buf` holds no meaningful bytes. The value is checked against the
    /// entry's checksum before this returns, as with every read.
    ///
    /// # Errors
    ///
    /// As [`get_entry`](Self::get_entry); after an error `buf`'s contents are unspecified.
    pub fn get_into(&self, key: &[u8], buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        check_key(key)?;
        self.inner.lookup_into(key, buf)
    }

    /// Runs `f` on the value of `key` where it lies in the shared mapping, without allocating
    /// or copying it, and returns what `f` returned; `None` if the key is absent or expired.
    /// The bytes `f` sees have passed the entry's checksum, like every read.
    ///
    /// Reads take no lock, so a writer in another process may reorganise the store while `f`
    /// runs (a block is handed out again only inside a reorganisation, SPEC.md §6.3). The
    /// readers' sequence number is checked after `f` returned: if it moved, `f`'s result is
    /// dropped and `f` runs again. So `f` **may run more than once** (and once, in a rare
    /// race, on bytes that are being rewritten, whose result is then discarded): it should only
    /// compute from the slice, with no effect that depends on how often it ran, and must not
    /// call back into this store. A read overtaken three times runs `f` under the write lock,
    /// where nothing moves: keep `f` short. A panic in `f` propagates; if it unwinds through that
    /// locked read, the next writer repairs the store first (SPEC.md §6.2), which costs time.
    ///
    /// ```no_run
    /// # fn main() -> apcdb::Result<()> {
    /// let store = apcdb::Store::open("/tmp/example.db", apcdb::Options::default())?;
    /// let len = store.get_with(b"key", |v| v.len())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_entry`](Self::get_entry).
    pub fn get_with<R>(&self, key: &[u8], mut f: impl FnMut(&[u8]) -> R) -> Result<Option<R>> {
        check_key(key)?;
        self.inner.lookup_with(key, |v, _| f(v))
    }

    /// As [`get_entry`](Self::get_entry), but not counted in the hit/miss statistics: for
    /// readers that revisit what a scan found (iterators, tools) rather than serve a lookup.
    ///
    /// # Errors
    ///
    /// As [`get_entry`](Self::get_entry): a key longer than [`MAX_KEY_LEN`], a corrupt entry, or
    /// a poisoned handle.
    pub fn peek_entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        check_key(key)?;
        self.inner.lookup_uncounted(key)
    }

    /// Whether `key` is present and not expired.
    ///
    /// # Errors
    ///
    /// As [`get_entry`](Self::get_entry).
    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get_entry(key)?.is_some())
    }

    /// Inserts only if the key is absent or expired; returns whether it inserted.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn add(&self, key: &[u8], value: &[u8]) -> Result<bool> {
        self.add_with_expiry(key, value, 0)
    }

    /// As [`add`](Self::add), expiring at `expires_at_ms` (Unix milliseconds, 0 = never).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn add_with_expiry(&self, key: &[u8], value: &[u8], expires_at_ms: u64) -> Result<bool> {
        self.add_dated(key, value, expires_at_ms, None)
    }

    /// As [`add_with_expiry`](Self::add_with_expiry), dated `modified_at_ms` as
    /// [`put_at`](Self::put_at) is.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn add_at(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
        modified_at_ms: u64,
    ) -> Result<bool> {
        self.add_dated(key, value, expires_at_ms, Some(modified_at_ms))
    }

    /// `add`, dated `modified` or (None) by the clock when it writes.
    fn add_dated(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
        modified: Option<u64>,
    ) -> Result<bool> {
        self.check_sizes(key, value)?;
        self.update_dated(key, modified, |cur| match cur {
            Some(_) => (Update::Keep, false),
            None => (
                Update::Put {
                    value: value.to_vec(),
                    expires_at_ms,
                },
                true,
            ),
        })
    }

    /// Removes the key; returns whether a live entry was there.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put) (but never [`Error::ValueTooLarge`] or [`Error::Full`]).
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.update(key, |cur| match cur {
            Some(_) => (Update::Delete, true),
            None => (Update::Keep, false),
        })
    }

    /// Applies every change `f` adds to the batch, all or nothing, also across a crash.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put); [`Error::ValueTooLarge`] also when the whole batch does not fit
    /// one journal record. Nothing of the batch is applied then.
    pub fn batch(&self, f: impl FnOnce(&mut Batch)) -> Result<()> {
        let mut b = Batch::default();
        f(&mut b);
        for op in &b.ops {
            match op {
                Op::Put { key, value, .. } => self.check_sizes(key, value)?,
                Op::Delete { key } => check_key(key)?,
                _ => {}
            }
        }
        if b.ops.is_empty() {
            return Ok(());
        }
        self.write(&b.ops)
    }

    /// Atomic read-modify-write across processes: `f` sees the current live entry (None if
    /// absent or expired) while the write lock is held, and decides. Returns what `f` returned.
    /// `f` must not call this store (that returns [`Error::Reentrant`]).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put), for the change `f` decided; `f`'s own result is lost then.
    pub fn update<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&Entry>) -> (Update, R),
    ) -> Result<R> {
        self.update_dated(key, None, f)
    }

    /// `update`, a put it decides dated `modified` or (None) by the clock under the lock.
    fn update_dated<R>(
        &self,
        key: &[u8],
        modified: Option<u64>,
        f: impl FnOnce(Option<&Entry>) -> (Update, R),
    ) -> Result<R> {
        check_key(key)?;
        self.inner.flush_before_write()?;
        let (lsn, r) = {
            let txn = self.inner.lock()?;
            let cur = txn.current(key)?;
            let (update, r) = f(cur.as_ref());
            let op = match update {
                Update::Keep => return Ok(r),
                Update::Delete if cur.is_none() => return Ok(r),
                Update::Delete => Op::Delete { key: key.into() },
                Update::Put {
                    value,
                    expires_at_ms,
                } => {
                    self.check_sizes(key, &value)?;
                    Op::Put {
                        key: key.into(),
                        value: Cow::Owned(value),
                        expires_ms: expires_at_ms,
                        modified_ms: modified.unwrap_or_else(now_ms),
                    }
                }
            };
            (txn.commit(&[op])?, r)
        };
        self.inner.after_commit(lsn)?;
        Ok(r)
    }

    /// Sets the key to `new` (None deletes) only if its current value equals `expected`
    /// (None = absent). Keeps the entry's expiry time. Returns whether it swapped.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        self.update(key, |cur| {
            if cur.map(|e| e.value.as_slice()) != expected {
                return (Update::Keep, false);
            }
            match new {
                Some(v) => (
                    Update::Put {
                        value: v.to_vec(),
                        expires_at_ms: cur.map_or(0, |e| e.expires_at_ms),
                    },
                    true,
                ),
                None => (Update::Delete, true),
            }
        })
    }

    /// Every live entry whose key starts with `prefix`, in no particular order: a convenience
    /// that collects [`scan`](Self::scan).
    ///
    /// # Errors
    ///
    /// As [`scan`](Self::scan); nothing is returned then.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Entry)>> {
        self.scan(prefix).collect()
    }

    /// An iterator over every live entry whose key starts with `prefix` (`b""`: all of them),
    /// with its value, in no particular order. It holds one chunk of entries at a time (about
    /// 256, or 1 MiB of keys and values), however large the store, and reads the next chunk
    /// when that one is used up.
    ///
    /// Consistency: each chunk is read without a lock under the readers' sequence number (SPEC.md
    /// §6.3), so every entry returned is whole and was live at some moment during the scan, and
    /// every value passed its checksum. Writers carry on between chunks: an entry written, changed
    /// or deleted during the scan may or may not appear (in its old or its new version), but an
    /// entry that is there, unchanged, for the whole scan is returned exactly once, also when the
    /// index is rebuilt meanwhile (the walk follows the keys' hash, not slot positions; SPEC.md
    /// §6.3). The one exception: after a writer died, recovery may give the index back its
    /// smaller durable size, and an entry can then come a second time.
    ///
    /// ```no_run
    /// # fn main() -> apcdb::Result<()> {
    /// let store = apcdb::Store::open("/tmp/example.db", apcdb::Options::default())?;
    /// let mut bytes = 0;
    /// for item in store.scan(b"session:") {
    ///     let (_key, entry) = item?;
    ///     bytes += entry.value.len();
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// The first error ends the iteration (it is returned as the last item): a corrupt index or
    /// entry ([`Error::Corrupt`]), or the errors of a read that falls back to the write lock, as
    /// for [`get_entry`](Self::get_entry).
    pub fn scan(&self, prefix: &[u8]) -> crate::scan::Scan<'_> {
        crate::scan::Scan::new(&self.inner, prefix)
    }

    /// As [`scan`](Self::scan), but `select` decides from each entry's key and metadata what to
    /// copy out: nothing ([`Visit::Skip`]), the key and metadata ([`Visit::Meta`]), or also the
    /// value ([`Visit::Value`]). Values that are not selected are never read.
    ///
    /// A chunk overtaken by a writer is read again, so `select` may see an entry more than once:
    /// it must be a plain choice, with no effect that depends on how often it ran, and must not
    /// call back into this store.
    pub fn scan_with<F: FnMut(&[u8], &EntryMeta) -> Visit>(
        &self,
        prefix: &[u8],
        select: F,
    ) -> crate::scan::ScanWith<'_, F> {
        crate::scan::ScanWith::new(&self.inner, prefix, select)
    }

    /// Every live entry whose key starts with `prefix`, in no particular order, with what
    /// `select` asks for: a convenience that collects [`scan_with`](Self::scan_with), whose
    /// rules apply. A caller that filters (a key search, a listing without values) uses memory
    /// for what it keeps only.
    ///
    /// A selected value is checked against the entry's checksum; metadata alone is not (the
    /// checksum covers the value, which is not read), but a torn read is still caught by the
    /// sequence number.
    ///
    /// # Errors
    ///
    /// A corrupt index or entry ([`Error::Corrupt`]), or the errors of a read falling back to
    /// the write lock (as for [`get_entry`](Self::get_entry)); nothing is returned then.
    pub fn scan_prefix_with(
        &self,
        prefix: &[u8],
        select: impl FnMut(&[u8], &EntryMeta) -> Visit,
    ) -> Result<Vec<Scanned>> {
        self.scan_with(prefix, select).collect()
    }

    /// Removes every entry, as one journaled change.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put) (but never the size errors).
    pub fn clear(&self) -> Result<()> {
        self.write(&[Op::Clear])
    }

    /// Makes every acknowledged write durable now (one `fdatasync` of the journal).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the flush fails (the handle is poisoned from then on: the kernel may
    /// have dropped the unflushed pages), [`Error::Poisoned`] when an earlier one did.
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// Writes the live state into the data file durably and empties the journal.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a flush fails (the handle is poisoned), [`Error::Poisoned`],
    /// [`Error::Permission`] when the data file was replaced while open, [`Error::Corrupt`] when
    /// the state would give a superblock the next open refuses (nothing is written then),
    /// [`Error::Reentrant`] from inside an [`update`](Self::update) callback.
    pub fn checkpoint(&self) -> Result<()> {
        let txn = self.inner.lock()?;
        txn.checkpoint()?;
        drop(txn);
        Ok(())
    }

    /// Waits until no other caller, in any process, holds `key`'s generator lock, and takes it:
    /// callers that compute a missing value (PHP's `apc_entry`) hold it while they compute, so
    /// that one computes and the others then read its result. It locks nothing else: reads and
    /// writes of every key, this one included, go on. Dropping the guard releases it; so does the
    /// death of the process. Keys sharing one of 65536 hash buckets wait for each other
    /// (SPEC.md §6.6).
    ///
    /// `Ok(None)`: not taken; the caller computes without it. That is the answer when this thread
    /// already holds `key`'s lock (a nested call), and when it holds another key's lock and this
    /// one is busy: a holder never waits, since the process it would wait for may be waiting for
    /// it. Locks are per process: two handles of one process on the same store share them.
    pub fn lock_entry(&self, key: &[u8]) -> Result<Option<EntryGuard<'_>>> {
        if self.inner.ro.is_some() {
            return Err(Error::ReadOnly {
                path: self.inner.path.clone(),
            });
        }
        self.entry_locks.lock(key)
    }

    /// Releases every generator lock this process holds, for a caller whose guards were skipped
    /// (PHP's request shutdown after a bailout); the guards become no-ops.
    pub fn release_entry_locks(&self) {
        self.entry_locks.release_all()
    }

    /// Changes the store's maximum size (SPEC.md §9). Every process that has the store open
    /// can grow the file up to the new size at once, without reopening; the change is durable
    /// (in a checkpoint) when this returns, and a crash during it leaves the old or the new size.
    ///
    /// Raising is allowed up to the format's 4 TiB and this handle's address-space reservation
    /// (four times the largest size known at open, at least 64 GiB). Lowering is allowed down to
    /// the data file's current length (which can exceed the data by one growth step); files
    /// never shrink. A process whose own reservation is smaller than a raised limit gets
    /// [`Error::Incompatible`] when the file would grow past it, and must reopen.
    ///
    /// # Errors
    ///
    /// [`Error::Incompatible`] (nothing changed) for a size past 4 TiB or this handle's
    /// reservation, or below the file's length; as [`checkpoint`](Self::checkpoint) otherwise.
    pub fn set_max_size(&self, bytes: u64) -> Result<()> {
        let txn = self.inner.lock()?;
        txn.set_max_size(bytes)?;
        drop(txn);
        Ok(())
    }

    /// How often `key` was read (hits) and when last (Unix seconds; 0: not since the shared
    /// state was built), from the lock file's access table. Keys sharing one of its 65536
    /// buckets share these numbers; a write of the key resets them (SPEC.md §6.7).
    pub fn access(&self, key: &[u8]) -> (u64, u64) {
        let b = crate::lock_file::access_bucket(hash_key(key));
        self.inner.lock_file.state().access(b)
    }

    /// The store's counters, as this process sees them now.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for counters that need a check to read.
    pub fn stats(&self) -> Result<Stats> {
        let h = self.inner.lock_file.state();
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let mut s = Stats {
            entries: l(&h.entries),
            used_bytes: l(&h.used_bytes),
            file_size: self.inner.map.len(),
            max_size: self.inner.max_size().min(self.inner.map.reserved()),
            journal_size: self.inner.journal.size,
            journal_used: l(&h.journal_pos),
            journal_records: self.inner.cycle_records(),
            hits: l(&h.hits) + self.inner.reads.iter().map(|r| l(&r.hits)).sum::<u64>(),
            misses: l(&h.misses) + self.inner.reads.iter().map(|r| l(&r.misses)).sum::<u64>(),
            inserts: l(&h.inserts),
            deletes: l(&h.deletes),
            checkpoints: l(&h.checkpoints),
            checkpoint_epoch: l(&h.epoch),
            generation: l(&h.generation),
            index_slots: l(&h.index_slots),
            index_tombstones: l(&h.tombstones),
            recovered_records: l(&h.recovered_records),
            recoveries: l(&h.recoveries),
            rebuilt_at_open: l(&h.rebuilt_at_open) != 0,
            expunges: l(&h.expunges),
            paced_writes: l(&h.paced),
            full_half_waits: l(&h.full_half_waits),
            pace_overruns: l(&h.pace_overruns),
            flushes_by_writes: l(&self.inner.flushes_by_writes),
            write_lock_contended: l(&self.inner.write_lock_waits.contended),
            write_lock_slept: l(&self.inner.write_lock_waits.slept),
            pace_wait_max_ns: l(&self.inner.pace_wait_max),
        };
        if let Some(ro) = &self.inner.ro {
            // No shared counters: the usage is counted from the view (SPEC.md §6.8).
            (s.entries, s.used_bytes, s.index_tombstones) = ro.usage(&self.inner)?;
            // Nor a shared LSN: the records after the checkpoint are those the view replayed.
            s.journal_records = ro.info().journal_records;
            // The counters of the processes using the store, when it is in use and its lock file
            // readable: hits and misses are theirs (plus this handle's own).
            if let Some(c) = crate::readonly::shared_counters(&self.inner) {
                s.hits += c[0];
                s.misses += c[1];
                (s.inserts, s.deletes, s.checkpoints, s.recoveries) = (c[2], c[3], c[4], c[5]);
                (s.recovered_records, s.rebuilt_at_open) = (c[6], c[7] != 0);
            }
        }
        Ok(s)
    }

    /// True once a flush of this handle failed: it refuses every write with
    /// [`Error::Poisoned`] for the rest of its life, and only a new handle (opened after this one
    /// is dropped) recovers the store from its journal.
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.inner.check_poison().is_err()
    }

    /// For a handle opened with [`Options::read_only`]: what its view holds (the checkpoint it
    /// starts from, the journal records replayed in memory, whether the store is in use or
    /// would need recovery). `None` for a read-write handle.
    pub fn read_only_view(&self) -> Option<crate::ReadOnlyView> {
        self.inner.ro.as_ref().map(|ro| ro.info())
    }

    /// True if opening this handle ran recovery that replayed journal records.
    pub fn recovered_at_open(&self) -> bool {
        self.inner.recovered_at_open
    }

    /// True if this handle was the first to open the store after every process that had it open
    /// died (same boot, same files), and kept the shared state they left instead of rebuilding it
    /// (SPEC.md §7.5): nothing was replayed, at most the record a dying writer was applying.
    pub fn resumed_at_open(&self) -> bool {
        self.inner.resumed_at_open
    }

    /// Largest value accepted by this store with an empty key, in bytes: a quarter of the
    /// journal less framing (the key's length counts against it too).
    pub fn max_value_len(&self) -> usize {
        self.inner.record_limit() - PUT_RECORD_OVERHEAD
    }
}

#[cfg(test)]
pub(crate) mod test_hooks {
    use std::cell::Cell;

    thread_local! {
        /// Set by a test: the next exclude-readers section on this thread panics once inside.
        pub static PANIC_IN_EXCLUDE_READERS: Cell<bool> = const { Cell::new(false) };
    }

    pub fn maybe_panic_in_exclude_readers() {
        if PANIC_IN_EXCLUDE_READERS.with(|p| p.replace(false)) {
            panic!("injected panic inside exclude_readers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Rewrites the newest superblock copy of a closed store, with a valid checksum.
    fn rewrite_superblock(path: &Path, change: impl FnOnce(&mut Superblock)) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let len = f.metadata().unwrap().len();
        let mut sb = read_superblock(path, len, |at, b| {
            f.read_exact_at(b, at)
                .map_err(|e| Error::io(path, "read", e))
        })
        .unwrap();
        change(&mut sb);
        f.write_all_at(&sb.encode(), SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize])
            .unwrap();
    }

    /// Keys whose hashes share the home slot and the slot tag: a read compares the key in each
    /// such block and probes on past the others (and past a tombstone) to its own, and a key of
    /// that group that is absent reads as absent.
    #[test]
    fn reads_probe_past_keys_with_the_same_home_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default()
            .index_slots(16)
            .durability(crate::Durability::None);
        let store = Store::open(dir.path().join("t.db"), opts).unwrap();
        let slots = store.stats().unwrap().index_slots;
        let group = |k: &[u8]| {
            let h = hash_key(k);
            (h & (slots - 1), slot_tag(h))
        };
        let mut seen: std::collections::HashMap<_, Vec<Vec<u8>>> = Default::default();
        let keys = (0u64..)
            .find_map(|i| {
                let k = format!("k{i}").into_bytes();
                let same = seen.entry(group(&k)).or_default();
                same.push(k);
                (same.len() == 3).then(|| same.clone())
            })
            .unwrap();
        let (a, b, absent) = (&keys[0], &keys[1], &keys[2]);
        store.put(a, b"value a").unwrap();
        store.put(b, b"value b").unwrap();
        assert_eq!(store.get(a).unwrap().as_deref(), Some(&b"value a"[..]));
        assert_eq!(store.get(b).unwrap().as_deref(), Some(&b"value b"[..]));
        assert_eq!(store.get(absent).unwrap(), None);
        assert!(store.delete(a).unwrap());
        assert_eq!(store.get(a).unwrap(), None);
        assert_eq!(store.get(b).unwrap().as_deref(), Some(&b"value b"[..]));
        assert_eq!(store.get(absent).unwrap(), None);
    }

    /// `journal_size` outside 64 KiB ..= 1 GiB is refused with a message naming it, before any
    /// file is made; inside, it sizes a new store's journal, and an existing store keeps its own.
    #[test]
    fn journal_size_is_validated_and_applies_at_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        for bad in [0, (64 << 10) - 1, (1 << 30) + 1, u64::MAX] {
            let e = Store::open(&path, Options::default().journal_size(bad))
                .err()
                .unwrap();
            assert!(
                matches!(&e, Error::Incompatible { detail, .. } if detail.contains("journal_size")),
                "{bad}: {e}"
            );
            assert!(!path.exists(), "nothing created for {bad}");
        }
        let store = Store::open(&path, Options::default().journal_size(100_000)).unwrap();
        // Rounded up to whole pages.
        assert_eq!(store.stats().unwrap().journal_size, 100 << 10);
        drop(store);
        let store = Store::open(&path, Options::default().journal_size(1 << 30)).unwrap();
        assert_eq!(store.stats().unwrap().journal_size, 100 << 10);
        let journal = Paths::new(&path).journal;
        assert_eq!(std::fs::metadata(journal).unwrap().len(), 100 << 10);
    }

    /// Without `journal_size`, a new store's journal is a sixteenth of a given `max_size`,
    /// from 16 MiB to 128 MiB (16 MiB when neither is given); a given size wins, and an
    /// existing store keeps its own whatever the limit it is reopened with.
    #[test]
    fn the_journal_is_sized_to_the_data_unless_given() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(Options, u64); 6] = [
            (Options::default(), 16 << 20),
            (Options::default().max_size(64 << 20), 16 << 20),
            (Options::default().max_size(1 << 30), 64 << 20),
            (
                Options::default().max_size((1 << 30) + 1600),
                (64 << 20) + 4096,
            ),
            (Options::default().max_size(8 << 30), 128 << 20),
            (
                Options::default().max_size(8 << 30).journal_size(1 << 20),
                1 << 20,
            ),
        ];
        for (i, (opts, want)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.db"));
            let store = Store::open(&path, opts.durability(crate::Durability::None)).unwrap();
            assert_eq!(store.stats().unwrap().journal_size, want, "case {i}");
            drop(store);
            let journal = Paths::new(&path).journal;
            assert_eq!(std::fs::metadata(&journal).unwrap().len(), want, "case {i}");
        }
        // Reopened with a larger limit, a store keeps the journal it was created with.
        let path = dir.path().join("1.db");
        let store = Store::open(&path, Options::default().max_size(8 << 30)).unwrap();
        assert_eq!(store.stats().unwrap().journal_size, 16 << 20);
    }

    /// With a journal whose cycle holds more single-key overwrites than a quarter of the old
    /// ring (65,536 freed blocks), the journal, not the ring of freed blocks, ends the cycle.
    #[test]
    fn a_large_journal_not_the_pending_ring_ends_a_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.db");
        let store = Store::open(
            &path,
            Options::default()
                .durability(crate::Durability::None)
                .journal_size(64 << 20),
        )
        .unwrap();
        for k in 0..1000u32 {
            store.put(&k.to_le_bytes(), b"first").unwrap();
        }
        let before = store.stats().unwrap().checkpoints;
        // 1,000 + 90,000 records: under the 98,304 of three quarters of a 32 MiB half; each
        // overwrite frees a block, 90,000 in all.
        for i in 0..90_000u32 {
            store.put(&(i % 1000).to_le_bytes(), b"again").unwrap();
        }
        let s = store.stats().unwrap();
        assert_eq!(
            s.checkpoints, before,
            "no freeze before the journal's three quarters"
        );
        assert!(store.inner().lock_file.state().pending_count() >= 90_000);
        for i in 0..10_000u32 {
            store.put(&(i % 1000).to_le_bytes(), b"third").unwrap();
        }
        assert!(
            store.stats().unwrap().checkpoints > before,
            "the journal ends the cycle"
        );
    }

    /// A journal chain (at most both halves) holds at most `journal_size / REPLAY_COST_BYTES`
    /// records, however small they are, so the replay after a crash follows the journal's size
    /// (SPEC.md §3): each half holds at most half of them.
    #[test]
    fn a_journal_cycle_is_bounded_by_its_record_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = Store::open(
            &path,
            Options::default()
                .durability(crate::Durability::None)
                .journal_size(64 << 10),
        )
        .unwrap();
        let cap = (64 << 10) / crate::write::REPLAY_COST_BYTES;
        let (mut chain, mut half) = (0, 0);
        for i in 0..3000u32 {
            // 56-byte records: 585 would fit in a half's bytes (a freeze at 438).
            store.put(&(i % 50).to_le_bytes()[..1], b"").unwrap();
            let inner = store.inner();
            chain = chain.max(inner.cycle_records());
            half = half.max(inner.half_records());
            assert!(inner.lock_file.state().journal_pos.load(Relaxed) <= 32 << 10);
        }
        assert!(
            chain <= cap,
            "{chain} records to replay, at most {cap} allowed"
        );
        assert!(
            half <= cap / 2,
            "{half} records in a half, at most {} allowed",
            cap / 2
        );
        assert!(
            half > cap / 4,
            "{half}: the cap, not something else, ended the halves"
        );
        assert!(store.stats().unwrap().checkpoints >= 3000 / cap);
    }

    /// A superblock with a correct checksum and 2^29 index slots (more than
    /// the lock file tracks), backed by a big enough sparse file, used to pass validation; a
    /// checkpoint then panicked indexing the dirty-page table and readers of other handles spun.
    /// It must be refused at open, naming the field, before anything is mapped or read.
    #[test]
    fn a_checksummed_superblock_with_a_huge_index_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let s = Store::open(&path, Options::default()).unwrap();
        s.put(b"k", b"v").unwrap();
        drop(s);
        let slots = 1u64 << 29;
        let copy = index_block_len(slots);
        let zeros = vec![0u8; 1 << 20];
        let crc = (0..index_len(slots) / zeros.len() as u64)
            .fold(0, |c, _| crc32c::crc32c_append(c, &zeros));
        rewrite_superblock(&path, |sb| {
            sb.index = [HEAP_START, HEAP_START + copy];
            sb.heap_end = HEAP_START + 2 * copy;
            sb.file_size = sb.heap_end;
            sb.max_size = sb.heap_end;
            sb.index_slots = slots;
            sb.durable_copy = 0;
            sb.index_crc = crc as u64;
        });
        // Both copies all zeros (empty, and matching the checksum), in a sparse file.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(HEAP_START).unwrap();
        f.set_len(HEAP_START + 2 * copy).unwrap();
        drop(f);
        let e = Store::open(&path, Options::default())
            .expect_err("a store with 2^29 index slots must not open");
        assert!(
            e.to_string().contains("index of 536870912 slots"),
            "unclear error: {e}"
        );
    }

    /// A recorded maximum size beyond the format's 4 TiB is refused at open
    /// (a 64-bit process could map it, and offsets past 4 TiB do not fit a slot).
    #[test]
    fn a_recorded_max_size_beyond_the_format_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        drop(Store::open(&path, Options::default()).unwrap());
        rewrite_superblock(&path, |sb| sb.max_size = 5 << 40);
        let e = Store::open(&path, Options::default()).expect_err("max_size 5 TiB must be refused");
        assert!(e.to_string().contains("exceeds the format's limit"), "{e}");
    }

    /// `apcdb.size=9999999G` used to create files that no open could map.
    /// Such a size is refused before any file exists.
    #[test]
    fn an_unmappable_max_size_is_refused_before_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.db");
        for size in [9_999_999u64 << 30, (4 << 40) + 1] {
            let e =
                Store::open(&path, Options::default().max_size(size)).expect_err("must be refused");
            assert!(e.to_string().contains("exceeds the format's limit"), "{e}");
            let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(made.is_empty(), "files were created: {made:?}");
        }
        // The same options with a sane size then create the store.
        Store::open(&path, Options::default().max_size(1 << 30)).unwrap();
    }

    /// A panic inside a exclude-readers section (here: the rebuild of a full index) must neither
    /// leave readers of another handle spinning on an odd sequence number nor let the next
    /// writer trust the half-reorganised state.
    #[test]
    fn a_panic_inside_readers_out_leaves_no_reader_spinning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let opts = Options::default().durability(Durability::None);
        let a = Store::open(&path, opts.clone()).unwrap();
        let b = Arc::new(Store::open(&path, opts).unwrap());
        for i in 0..50u32 {
            a.put(format!("k{i}").as_bytes(), &i.to_le_bytes()).unwrap();
        }
        let recoveries = a.stats().unwrap().recoveries;
        test_hooks::PANIC_IN_EXCLUDE_READERS.with(|p| p.set(true));
        // Enough new keys to make the index grow.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for i in 0..1_000_000u32 {
                a.put(format!("grow{i}").as_bytes(), b"").unwrap();
            }
        }));
        assert!(panicked.is_err(), "the injected panic did not happen");

        // A reader on the other handle must answer (not spin), and correctly.
        let (tx, rx) = mpsc::channel();
        let reader = b.clone();
        std::thread::spawn(move || {
            let _ = tx.send(reader.get(b"k7").map_err(|e| e.to_string()));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a reader hangs after a panic inside exclude_readers");
        assert_eq!(got.unwrap(), Some(7u32.to_le_bytes().to_vec()));

        // The state was rebuilt before anyone used it, and both handles keep working.
        assert!(b.stats().unwrap().recoveries > recoveries);
        b.put(b"after", b"1").unwrap();
        a.put(b"k7", b"x").unwrap();
        assert_eq!(b.get(b"after").unwrap(), Some(b"1".to_vec()));
        assert_eq!(b.get(b"k7").unwrap(), Some(b"x".to_vec()));
        for i in (0..50u32).filter(|&i| i != 7) {
            assert_eq!(
                a.get(format!("k{i}").as_bytes()).unwrap(),
                Some(i.to_le_bytes().to_vec())
            );
        }
    }
}
