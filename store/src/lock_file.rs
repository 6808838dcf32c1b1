//! The lock file: the store's shared, non-durable state, mapped by every process that has the
//! store open. It holds the robust write mutex, the group-commit mutex, the live positions
//! (journal tail, LSNs, live index, heap end), the allocator's free lists, and counters.
//! None of it needs to survive a reboot: the first opener rebuilds it from the data file and
//! the journal, or loads the part that a walk of the index would give from the snapshot a clean
//! close left in the data file (SPEC.md, "Locking" and "Recovery", §7.2).
//!
//! Two byte-range locks (open-file-description locks, dropped by the kernel when a process dies)
//! elect that first opener: byte 0 serialises opening and closing, byte 1 is held shared by
//! every process that has the store open.

use crate::error::{CorruptKind, Error, Result};
use crate::format::CLASSES;
use crate::reuse::{ReuseMap, REUSE_SUMMARY, REUSE_WORDS};
use crate::write::LockHeld;
use std::cell::UnsafeCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub const LOCK_FILE_MAGIC: u64 = u64::from_le_bytes(*b"APCDBshm");
/// 2: the early checkpoint's claim, the live maximum size, the snapshot fields (`snapshot_armed`,
/// `rebuilt_at_open`). 3: the access table, the eviction clock hand and `expunges`. 4: the
/// checkpoint that flushes without the write lock (its mutex, the frozen state, the journal
/// half's epoch, a second dirty bitmap, the pending ring). 5: the flush's progress and the
/// pacing counters. 6: resuming after a process crash (boot id, the files' identities,
/// `resumable`, the holder's stage and its undo area). 7: a pending ring four times as long.
/// 8: the flush's pace line, which writers estimate its progress from, the last flush's
/// length, and `pace_overruns`. 9: the reuse map (free space by address, `reuse.rs`) and its
/// cursor. 10: the journal syncs asked for and done (`sync_asked`, `sync_done`) and the last
/// one's duration, which a paced flush yields to and sizes its pieces by.
pub const LOCK_FILE_VERSION: u64 = 10;
/// Pages of the live index whose changes are tracked between checkpoints (one bit each).
pub const DIRTY_WORDS: usize = 8192;
/// Blocks freed and not yet reusable: a ring, oldest first, waiting until a checkpoint that no
/// longer references them is durable. A freeze comes at a quarter of
/// it at the latest; a cycle of the largest journal chosen by default (`MAX_AUTO_JOURNAL_SIZE`,
/// 128 MiB) holds at most 3/4 of a half's 262,144 records, so that the journal, not the ring, ends
/// a cycle of single-key overwrites (SPEC.md §3). 8 MiB of the lock file, touched only as used.
pub const PENDING_CAP: usize = 1 << 20;

/// Buckets of the access table: a key's bucket is the low bits of its index slot's tag, so the
/// eviction hand finds it from the slot alone, without reading the entry.
pub const ACCESS_BUCKETS: usize = 1 << 16;
/// An access word: the reference bit (set by reads and writes, cleared by the eviction hand),
/// 31 bits of hits, 32 bits of last access time in Unix seconds.
const ACCESS_REF: u64 = 1 << 63;
const ACCESS_HITS_SHIFT: u32 = 32;
const ACCESS_HITS_MAX: u64 = (1 << 31) - 1;

/// The access-table bucket of a key hash.
#[inline]
pub fn access_bucket(hash: u64) -> usize {
    crate::format::slot_tag(hash) as usize & (ACCESS_BUCKETS - 1)
}

/// A process-shared robust mutex living in the lock file.
#[repr(C, align(64))]
pub struct RobustMutex(UnsafeCell<libc::pthread_mutex_t>);

pub enum Locked {
    /// Acquired normally.
    Clean,
    /// The previous holder died holding it: the caller must repair shared state, then call
    /// `consistent` before unlocking.
    OwnerDied,
}

impl RobustMutex {
    /// Initialises the mutex in place. Only the elected first opener calls this, while no other
    /// process has the lock file mapped.
    fn init(&self) -> std::io::Result<()> {
        // SAFETY: attr is a local we initialise before use and destroy after; the mutex memory is
        // ours exclusively during initialisation (see the election above).
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            let rc = libc::pthread_mutex_init(self.0.get(), &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
        }
        Ok(())
    }

    pub fn lock(&self, path: &Path) -> Result<Locked> {
        // SAFETY: the mutex was initialised by the first opener and lives in a mapping that
        // outlives this call.
        let rc = unsafe { libc::pthread_mutex_lock(self.0.get()) };
        match rc {
            0 => Ok(Locked::Clean),
            libc::EOWNERDEAD => Ok(Locked::OwnerDied),
            libc::ENOTRECOVERABLE => Err(Error::corrupt(path, CorruptKind::LockUnrecoverable)),
            e => Err(Error::io(
                path,
                "pthread_mutex_lock",
                std::io::Error::from_raw_os_error(e),
            )),
        }
    }

    /// `lock`, spinning a little before sleeping: the write lock's holder keeps it for well
    /// under a microsecond per put, while a sleep in the kernel costs the waiter a context switch
    /// and its waker a `futex` wake (glibc's robust mutexes never spin by themselves). Each try
    /// is a `pthread_mutex_trylock`, so a holder that died is reported as by `lock`; once
    /// `LOCK_SPIN` has passed (a holder that lost its core, a long change), it sleeps in `lock`.
    /// Counts the contended acquisitions and the sleeps in `waits`.
    pub fn lock_spinning(&self, path: &Path, waits: &LockWaits) -> Result<Locked> {
        // SAFETY: as in `lock`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.0.get()) };
        // Uncontended, nearly always: taken with nothing else to judge.
        if rc == 0 {
            return Ok(Locked::Clean);
        }
        if let Some(got) = Self::tried(rc, path)? {
            return Ok(got);
        }
        waits.contended.fetch_add(1, Ordering::Relaxed);
        let start = std::time::Instant::now();
        let mut pauses = 1;
        loop {
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            if let Some(got) = self.try_lock(path)? {
                return Ok(got);
            }
            if start.elapsed() >= LOCK_SPIN {
                break;
            }
            // Backing off: fewer tries steal the mutex's cache line from the holder's unlock.
            pauses = (pauses * 2).min(64);
        }
        waits.slept.fetch_add(1, Ordering::Relaxed);
        self.lock(path)
    }

    pub fn consistent(&self) {
        // SAFETY: called only by the holder after EOWNERDEAD, as POSIX requires.
        unsafe { libc::pthread_mutex_consistent(self.0.get()) };
    }

    /// Like `lock`, but None at once when another thread or process holds it.
    pub fn try_lock(&self, path: &Path) -> Result<Option<Locked>> {
        // SAFETY: as in `lock`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.0.get()) };
        Self::tried(rc, path)
    }

    /// What `pthread_mutex_trylock`'s `rc` means (None: someone else holds the mutex).
    fn tried(rc: libc::c_int, path: &Path) -> Result<Option<Locked>> {
        match rc {
            0 => Ok(Some(Locked::Clean)),
            libc::EBUSY => Ok(None),
            libc::EOWNERDEAD => Ok(Some(Locked::OwnerDied)),
            libc::ENOTRECOVERABLE => Err(Error::corrupt(path, CorruptKind::LockUnrecoverable)),
            e => Err(Error::io(
                path,
                "pthread_mutex_trylock",
                std::io::Error::from_raw_os_error(e),
            )),
        }
    }

    pub fn unlock(&self) {
        // SAFETY: called only by the holder.
        unsafe { libc::pthread_mutex_unlock(self.0.get()) };
    }
}

/// How long `RobustMutex::lock_spinning` spins before it sleeps: longer than most holds of the
/// write lock (a put's commit takes 0.2 to 1 µs, several more when it takes a write fault on a
/// page a flush protected), and about what a sleep and its wake-up cost the two processes. With
/// 4 µs, a third of the contended acquisitions of two busy writers still slept; with 10 µs, 2-5 %
/// (`a_contended_write_lock_is_mostly_won_by_spinning`). A holder that lost its core wastes at most
/// this much of a waiter's time before it sleeps.
pub const LOCK_SPIN: std::time::Duration = std::time::Duration::from_micros(10);

/// A handle's acquisitions of the write lock that found it held, and those of them that slept
/// in the kernel after spinning (`RobustMutex::lock_spinning`).
#[derive(Default)]
pub struct LockWaits {
    pub contended: AtomicU64,
    pub slept: AtomicU64,
}

/// The lock file's contents, as mapped: the state every process of the store shares. All fields
/// are atomics or process-shared mutexes, so concurrent access from any process is defined.
#[repr(C)]
pub struct LockState {
    pub magic: AtomicU64,
    pub version: AtomicU64,
    pub write_mutex: RobustMutex,
    pub sync_mutex: RobustMutex,
    /// Held by whoever flushes a frozen checkpoint (SPEC.md §5): one at a time, and a flusher
    /// that dies leaves it to the next one. Taken after the write lock when both are needed,
    /// never the other way round (the flusher does not take the write lock).
    pub ckpt_mutex: RobustMutex,
    /// Readers' validation counter: odd while the live index may not be trusted (recovery,
    /// reuse of freed blocks, index rebuild). Readers retry when it changed under them.
    pub seq: AtomicU64,
    /// Offset of the live index copy (it moves only in an index rebuild or a compaction, with
    /// `seq` odd), and
    /// the copies' size in slots.
    pub live_index: AtomicU64,
    pub index_slots: AtomicU64,
    /// The two checkpoint copies: the durable one and the next checkpoint's target.
    pub index: [AtomicU64; 2],
    /// Which of `index` (0/1) the last durable checkpoint names.
    pub durable_copy: AtomicU64,
    heap_end: AtomicU64,
    /// The data file's length as last grown (processes refresh their own view when it is larger).
    pub file_size: AtomicU64,
    /// The live limit on the data file's length (SPEC.md §9): set from the superblock by
    /// recovery, changed only under the write lock by a resize, which makes it durable in a
    /// checkpoint before anyone may grow past the old value. Each process may grow only as far
    /// as this and its own address-space reservation both allow.
    pub max_size: AtomicU64,
    /// Set while the live state must be rebuilt (a lock holder died; a recovery failed).
    pub needs_recovery: AtomicU64,
    /// The epoch of the records being written, which picks their journal half: `epoch` when no
    /// checkpoint is in flight, `epoch + 1` from a freeze until that checkpoint completes.
    pub journal_epoch: AtomicU64,
    /// What the frozen checkpoint describes (set by the freeze, before `journal_epoch`): its last
    /// LSN, heap end, generation, maximum size and file length.
    pub frozen_lsn: AtomicU64,
    pub frozen_heap_end: AtomicU64,
    pub frozen_generation: AtomicU64,
    pub frozen_max_size: AtomicU64,
    pub frozen_file_size: AtomicU64,
    /// The highest epoch whose superblock a flusher made durable.
    pub flushed_epoch: AtomicU64,
    pub next_lsn: AtomicU64,
    /// Where the next record goes inside the half of `journal_epoch`.
    pub journal_pos: AtomicU64,
    /// Highest LSN whose journal record is completely written (page cache).
    pub written_lsn: AtomicU64,
    /// Highest LSN known to be on disk.
    pub durable_lsn: AtomicU64,
    pub ckpt_lsn: AtomicU64,
    pub epoch: AtomicU64,
    pub generation: AtomicU64,
    pub last_sync_ms: AtomicU64,
    /// Group commit's queue, as two counters: a writer adds one to `sync_asked` before it takes
    /// `sync_mutex` and one to `sync_done` once it let go. A paced flush runs each write-back
    /// piece holding `sync_mutex`, and before the next lets the writers that asked meanwhile
    /// have their turn (SPEC.md §5): so no piece runs beside a journal `fdatasync`, and each
    /// waits behind at most one piece. A writer killed in between leaves the difference one too
    /// high; the flush notices (no sync finishes for `SYNC_YIELD_MAX`) and stops counting it.
    pub sync_asked: AtomicU64,
    pub sync_done: AtomicU64,
    /// How long the last journal `fdatasync` took, in nanoseconds: a paced flush's pieces may
    /// take about as long (on a slow disk a sync waits behind one piece as long as itself, and
    /// the flush still keeps up).
    pub last_sync_ns: AtomicU64,
    pub entries: AtomicU64,
    pub used_bytes: AtomicU64,
    /// Slots in use, entries and tombstones together (decides when the index is rebuilt).
    pub used_slots: AtomicU64,
    pub tombstones: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub inserts: AtomicU64,
    pub deletes: AtomicU64,
    pub checkpoints: AtomicU64,
    pub recoveries: AtomicU64,
    pub recovered_records: AtomicU64,
    pub created_ms: AtomicU64,
    /// 1 while the data file holds a closing snapshot that this shared state was restored from:
    /// the next write-lock holder erases it durably before anything is written (SPEC.md §7.2).
    pub snapshot_armed: AtomicU64,
    /// 1 when the first opener rebuilt the live state by walking the index (no usable snapshot).
    pub rebuilt_at_open: AtomicU64,
    /// The boot this state was built in (`/proc/sys/kernel/random/boot_id`, 16 bytes), and the
    /// (st_dev, st_ino) of the data file and journal it describes: a first opener may resume
    /// the state only in the same boot, on the same files (SPEC.md §7.5).
    pub boot_id: [AtomicU64; 2],
    pub data_ident: [AtomicU64; 2],
    pub journal_ident: [AtomicU64; 2],
    /// 1 while a first opener may resume this state instead of rebuilding it: set once a first
    /// opener built it, cleared by the last closer (before its final checkpoint) and by a
    /// handle whose flush failed.
    pub resumable: AtomicU64,
    /// What the write-lock holder is doing (`STAGE_*`): read by the next holder when this one
    /// died, to repair only what it could have left half made.
    pub txn_stage: AtomicU64,
    /// crc32c of the superblock copy of `epoch`, and of the one a flusher wrote for
    /// `flushed_epoch`: a data file whose newest superblock is neither is not this state's.
    pub sb_crc: AtomicU64,
    pub flushed_sb_crc: AtomicU64,
    /// Where the last put's entry starts in the data file (+ 1; 0: none) and its checksum, and
    /// where the last record starts in the journal (+ 1) and its LSN: files put back from an
    /// older copy (same inodes) do not hold them.
    pub last_entry: [AtomicU64; 2],
    pub last_record: [AtomicU64; 2],
    /// The pending ring, as ever-growing counters (position `n` is `pending[n % PENDING_CAP]`):
    /// `[head, free_to)` may join the free lists (a durable checkpoint no longer references
    /// them), `[free_to, frozen)` wait for the checkpoint in flight, `[frozen, tail)` for the next.
    pending_head: AtomicU64,
    pending_free_to: AtomicU64,
    pending_frozen: AtomicU64,
    pending_tail: AtomicU64,
    /// Set when more blocks were freed than `pending` holds: the next checkpoint rebuilds the
    /// free lists from the index instead.
    pending_overflow: AtomicU64,
    free_heads: [AtomicU64; CLASSES],
    /// Pages of the live index changed since the last freeze...
    pub dirty: [AtomicU64; DIRTY_WORDS],
    /// ...and in the cycle before it: together, what the next target copy lacks.
    pub dirty_prev: [AtomicU64; DIRTY_WORDS],
    /// Pages the frozen checkpoint's target copy still lacks (set by the freeze, cleared as
    /// writers copy them: before changing one, and a few more per commit), their number, and
    /// the word where the next slice starts looking.
    pub to_copy: [AtomicU64; DIRTY_WORDS],
    pub copy_left: AtomicU64,
    pub copy_cursor: AtomicU64,
    pending: [AtomicU64; PENDING_CAP],
    /// Reusable free space by address (`reuse.rs`; placed after `dirty`, which a read-only
    /// handle reads up to): where the next-fit search starts (a unit number), how many units
    /// are free, and the map's two levels.
    reuse_cursor: AtomicU64,
    reuse_free: AtomicU64,
    /// Bytes allocated since the state was built; that count when the current checkpoint cycle
    /// began, the epoch of that cycle, and the bytes the previous cycle allocated: what sizes
    /// the slack (`alloc.rs`).
    pub alloc_bytes: AtomicU64,
    pub cycle_start: AtomicU64,
    pub cycle_epoch: AtomicU64,
    pub last_cycle: AtomicU64,
    /// The epoch + 1 in which the free lists were found to hold nothing the reuse map covers:
    /// commits skip looking again until the next checkpoint (only an open from a snapshot
    /// fills them with such blocks, and that is before any commit).
    pub lists_drained: AtomicU64,
    reuse_summary: [AtomicU64; REUSE_SUMMARY],
    reuse: [AtomicU64; REUSE_WORDS],
    /// Entries removed to make room (`WhenFull::Evict`), since the shared state was built.
    pub expunges: AtomicU64,
    /// Where the eviction hand stands in the live index (a slot number; reduced modulo the
    /// index's size when used, so an index rebuild needs no reset).
    pub clock_hand: AtomicU64,
    /// Per bucket of keys: reference bit, hits, last access (see `ACCESS_REF`). Not durable:
    /// rebuilt as zeros with the rest of the shared state.
    access: [AtomicU64; ACCESS_BUCKETS],
    /// How far the frozen checkpoint's heap flush has got: bytes of the file flushed so far and
    /// in all (0 and 0 from the freeze until the flusher starts). Writers pace themselves
    /// against it (SPEC.md §5), so that they reach the end of their journal half no sooner than
    /// the flush ends.
    pub flush_done: AtomicU64,
    pub flush_total: AtomicU64,
    /// Writes that waited a little for the flush to catch up (pacing), since the shared state
    /// was built.
    pub paced: AtomicU64,
    /// Writes that found the journal half full with the checkpoint's flush still running, and
    /// waited for it (the back-pressure that pacing keeps rare).
    pub full_half_waits: AtomicU64,
    /// The pace line of the non-durable flush in progress (SPEC.md §5): from `line_at`
    /// (`CLOCK_MONOTONIC` ns, the same clock in every process; 0: no line, or being replaced)
    /// the runway writers may use is `line_from` millionths plus `line_rate` millionths per
    /// millisecond, up to `write::PACE_GOAL`. The flusher draws it again from the runway used
    /// before its copy and each slice, so writers' allowance grows smoothly, not a slice at a
    /// time.
    pub line_at: AtomicU64,
    pub line_from: AtomicU64,
    pub line_rate: AtomicU64,
    /// How long a non-durable flush is expected to take, from its copy (ns; 0: none timed yet):
    /// the last one's length if it was slower, else half way to it (`write::next_expect_ns`).
    pub flush_last_ns: AtomicU64,
    /// Paced writes that waited their whole limit without the flush catching up, since the
    /// shared state was built.
    pub pace_overruns: AtomicU64,
    /// How to take back the transaction being applied (`STAGE_APPLY`).
    pub undo: Undo,
}

/// The holder may be anywhere in a change: a holder that dies here leaves the state to a full
/// recovery (SPEC.md §7).
pub const STAGE_UNKNOWN: u64 = 0;
/// Nothing half made but blocks out of every free list (lost space, never a block used twice):
/// a holder that dies here leaves the state usable as it is.
pub const STAGE_NONE: u64 = 1;
/// Applying the record that `undo` describes: a holder that dies here is rolled back with
/// `undo`, and the record is applied again from the journal.
pub const STAGE_APPLY: u64 = 2;
/// Index slots and blocks one transaction's undo area holds; a larger one sets `overflow`.
pub const UNDO_CAP: usize = 256;

/// The state before the transaction being applied, and every live index slot it changed (in
/// order, with the value before), written by the holder before each change.
#[repr(C)]
pub struct Undo {
    pub lsn: AtomicU64,
    /// Where the record starts in its journal half, and its length.
    pub pos: AtomicU64,
    pub len: AtomicU64,
    pub entries: AtomicU64,
    pub used_bytes: AtomicU64,
    pub used_slots: AtomicU64,
    pub tombstones: AtomicU64,
    pub inserts: AtomicU64,
    pub deletes: AtomicU64,
    pub generation: AtomicU64,
    pub pending_tail: AtomicU64,
    pub pending_overflow: AtomicU64,
    /// 1 when the transaction changed more slots or planned more blocks than the area holds.
    pub overflow: AtomicU64,
    /// The blocks planned for its puts, as slot values (offset and class).
    pub blocks_len: AtomicU64,
    pub blocks: [AtomicU64; UNDO_CAP],
    /// (position, value before) of each slot changed, in order.
    pub slots_len: AtomicU64,
    pub slots: [AtomicU64; 2 * UNDO_CAP],
}

/// The access table: written by lock-free readers (never the data file) and by writers.
impl LockState {
    /// A read found a live entry in `bucket` at `now_s`: reference it, count the hit.
    #[inline]
    pub fn touch(&self, bucket: usize, now_s: u32) {
        let w = &self.access[bucket];
        // A load and a plain store, not a locked compare-and-swap: this runs on every hit, and
        // a hit lost to another reader of the same bucket in the same instant (or one counted
        // for a version written in that instant) is an acceptable error for a statistic and the
        // eviction order (SPEC.md §6.7).
        let old = w.load(Ordering::Relaxed);
        let hits = ((old >> ACCESS_HITS_SHIFT) & ACCESS_HITS_MAX) + 1;
        // Readers pass a coarse clock that may be a tick behind a writer's: never go back.
        let at = (old & 0xffff_ffff).max(now_s as u64);
        let new = ACCESS_REF | (hits.min(ACCESS_HITS_MAX) << ACCESS_HITS_SHIFT) | at;
        if new != old {
            w.store(new, Ordering::Relaxed);
        }
    }

    /// Starts loading `bucket`'s word into the cache: a read calls this as soon as it has the
    /// key's hash, so the miss on this table overlaps the index's and the entry's instead of
    /// following them when the hit is counted.
    #[inline]
    pub fn prefetch_access(&self, bucket: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE, the intrinsic's only requirement, is part of every x86_64 CPU; a prefetch
        // only hints the cache and never faults, and the address is inside the mapping anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                self.access[bucket].as_ptr() as *const i8,
            )
        };
    }

    /// A new version was written in `bucket` at `now_s`: referenced, no hits yet.
    pub fn written(&self, bucket: usize, now_s: u32) {
        self.access[bucket].store(ACCESS_REF | now_s as u64, Ordering::Relaxed);
    }

    /// Hits and last access (Unix seconds, 0 = never) of `bucket`.
    pub fn access(&self, bucket: usize) -> (u64, u64) {
        let w = self.access[bucket].load(Ordering::Relaxed);
        ((w >> ACCESS_HITS_SHIFT) & ACCESS_HITS_MAX, w & 0xffff_ffff)
    }

    /// Whether `bucket` was referenced since the eviction hand last passed it.
    pub fn is_referenced(&self, bucket: usize) -> bool {
        self.access[bucket].load(Ordering::Relaxed) & ACCESS_REF != 0
    }

    /// The eviction hand passes `bucket`: clears its reference bit and says whether it was set.
    pub fn clear_ref(&self, bucket: usize) -> bool {
        let w = &self.access[bucket];
        // Reading first: a bucket the hand passes twice without reads is not written again.
        w.load(Ordering::Relaxed) & ACCESS_REF != 0
            && w.fetch_and(!ACCESS_REF, Ordering::Relaxed) & ACCESS_REF != 0
    }
}

/// The allocator's part of the state (heap end, free lists, blocks waiting for a checkpoint):
/// anyone may read it, only the write-lock holder may change it.
impl LockState {
    /// Where the never-allocated part of the heap starts.
    pub fn heap_end(&self) -> u64 {
        self.heap_end.load(Ordering::Relaxed)
    }

    pub fn set_heap_end(&self, _: &LockHeld, end: u64) {
        self.heap_end.store(end, Ordering::Relaxed);
    }

    /// The first free block of `class` (0: none).
    pub fn free_head(&self, class: u8) -> u64 {
        self.free_heads[class as usize].load(Ordering::Relaxed)
    }

    pub fn set_free_head(&self, _: &LockHeld, class: u8, off: u64) {
        self.free_heads[class as usize].store(off, Ordering::Relaxed);
    }

    /// The reuse map, to change under the write lock.
    pub fn reuse(&self, _: &LockHeld) -> ReuseMap<'_> {
        self.reuse_view()
    }

    /// The reuse map, to read without the lock (a hint: it may change meanwhile).
    pub fn reuse_view(&self) -> ReuseMap<'_> {
        ReuseMap {
            words: &self.reuse,
            summary: &self.reuse_summary,
            cursor: &self.reuse_cursor,
            free: &self.reuse_free,
        }
    }

    /// Blocks freed and not yet back in a free list.
    pub fn pending_count(&self) -> u64 {
        self.pending_tail.load(Ordering::Relaxed) - self.pending_head.load(Ordering::Relaxed)
    }

    /// The `i`-th block in the ring, oldest first (`i < pending_count()`).
    pub fn pending(&self, i: u64) -> u64 {
        let head = self.pending_head.load(Ordering::Relaxed);
        self.pending[((head + i) % PENDING_CAP as u64) as usize].load(Ordering::Relaxed)
    }

    /// Blocks freed since the last freeze (they wait for the checkpoint after the one in flight).
    pub fn pending_since_freeze(&self) -> u64 {
        self.pending_tail.load(Ordering::Relaxed) - self.pending_frozen.load(Ordering::Relaxed)
    }

    /// Whether more blocks were freed than the list holds (see `pending_overflow`).
    pub fn pending_overflowed(&self) -> bool {
        self.pending_overflow.load(Ordering::Relaxed) != 0
    }

    /// Adds a freed block to the ring, or notes that it overflowed.
    pub fn add_pending(&self, _: &LockHeld, slot: u64) {
        let tail = self.pending_tail.load(Ordering::Relaxed);
        if (tail - self.pending_head.load(Ordering::Relaxed)) < PENDING_CAP as u64 {
            self.pending[tail as usize % PENDING_CAP].store(slot, Ordering::Relaxed);
            self.pending_tail.store(tail + 1, Ordering::Relaxed);
        } else {
            self.pending_overflow.store(1, Ordering::Relaxed);
        }
    }

    /// The oldest block that may join a free list, taken out of the ring.
    pub fn take_reclaimable(&self, _: &LockHeld) -> Option<u64> {
        let head = self.pending_head.load(Ordering::Relaxed);
        if head >= self.pending_free_to.load(Ordering::Relaxed) {
            return None;
        }
        let slot = self.pending[head as usize % PENDING_CAP].load(Ordering::Relaxed);
        self.pending_head.store(head + 1, Ordering::Relaxed);
        Some(slot)
    }

    /// At a freeze: the blocks freed so far wait for the checkpoint being frozen.
    pub fn freeze_pending(&self, _: &LockHeld) {
        let tail = self.pending_tail.load(Ordering::Relaxed);
        self.pending_frozen.store(tail, Ordering::Relaxed);
    }

    /// When the frozen checkpoint is durable: the blocks it froze may be reused.
    pub fn release_frozen_pending(&self, _: &LockHeld) {
        let frozen = self.pending_frozen.load(Ordering::Relaxed);
        self.pending_free_to.store(frozen, Ordering::Relaxed);
    }

    /// Where the ring ends now, and whether it overflowed: what `truncate_pending` goes back to.
    pub fn pending_mark(&self) -> (u64, u64) {
        (
            self.pending_tail.load(Ordering::Relaxed),
            self.pending_overflow.load(Ordering::Relaxed),
        )
    }

    /// Forgets the blocks added since `pending_mark` gave `(tail, overflow)` (a transaction
    /// rolled back: they are referenced again).
    pub fn truncate_pending(&self, _: &LockHeld, tail: u64, overflow: u64) {
        let now = self.pending_tail.load(Ordering::Relaxed);
        let floor = self.pending_head.load(Ordering::Relaxed);
        self.pending_tail
            .store(tail.clamp(floor, now), Ordering::Relaxed);
        self.pending_overflow.store(overflow, Ordering::Relaxed);
    }

    /// Keeps only the blocks `keep` accepts, in order, all of them waiting for the checkpoint
    /// after the next freeze (waiting longer is always safe); `overflowed` as for `reset_pending`.
    pub fn retain_pending(
        &self,
        held: &LockHeld,
        mut keep: impl FnMut(u64) -> bool,
        overflowed: bool,
    ) {
        let (head, tail) = (
            self.pending_head.load(Ordering::Relaxed),
            self.pending_tail.load(Ordering::Relaxed),
        );
        let mut kept = Vec::new();
        for n in head..tail {
            let slot = self.pending[n as usize % PENDING_CAP].load(Ordering::Relaxed);
            if keep(slot) {
                kept.push(slot);
            }
        }
        self.reset_pending(held, overflowed);
        for (i, slot) in kept.iter().enumerate() {
            self.pending[i].store(*slot, Ordering::Relaxed);
        }
        self.pending_tail
            .store(kept.len() as u64, Ordering::Relaxed);
    }

    /// Notes that blocks wait that the ring does not name (the next completion rebuilds).
    pub fn mark_pending_overflowed(&self, _: &LockHeld) {
        self.pending_overflow.store(1, Ordering::Relaxed);
    }

    /// Empties the ring; `overflowed` says whether blocks are waiting that it does not name.
    pub fn reset_pending(&self, _: &LockHeld, overflowed: bool) {
        for c in [
            &self.pending_head,
            &self.pending_free_to,
            &self.pending_frozen,
            &self.pending_tail,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.pending_overflow
            .store(overflowed as u64, Ordering::Relaxed);
    }
}

pub const LOCK_FILE_LEN: u64 = (std::mem::size_of::<LockState>() as u64).div_ceil(4096) * 4096;

/// The mapped lock file.
pub struct LockFile {
    base: *mut LockState,
    /// None for a read-only handle's private state (`LockFile::private`), which has no file.
    file: Option<File>,
    pub path: PathBuf,
    /// Registered with the SIGBUS handler: a lock file truncated from outside breaks this
    /// mapping (checked at every lock and read) instead of killing the process.
    region: crate::sigbus::Region,
}

// SAFETY: `LockState` consists of atomics and process-shared mutexes only.
unsafe impl Send for LockFile {}
// SAFETY: as above.
unsafe impl Sync for LockFile {}

pub const INIT_BYTE: i64 = 0;
pub const PRESENCE_BYTE: i64 = 1;
/// Held shared by every backup in progress (SPEC.md §7.3), on a descriptor of its own: while
/// any is held, checkpoints hand no freed block out again.
pub const BACKUP_BYTE: i64 = 2;

impl LockFile {
    /// Maps the lock file (growing it to `LOCK_FILE_LEN` through `io` when `first` says we may).
    pub fn map(
        path: PathBuf,
        file: File,
        first: bool,
        io: &dyn crate::io::StorageIo,
    ) -> Result<LockFile> {
        let len = crate::files::file_len(&path, &file)?;
        if len < LOCK_FILE_LEN {
            if !first && written_by_other_version(&file) {
                // Processes of an older version (a shorter state) still use it.
                return Err(incompatible(&path));
            }
            if !first {
                return Err(Error::corrupt(
                    &path,
                    CorruptKind::LockFileSize {
                        len,
                        expected: LOCK_FILE_LEN,
                    },
                ));
            }
            crate::files::allocate(io, crate::io::FileKind::Lock, &path, &file, LOCK_FILE_LEN)?;
        }
        let base = crate::map::map_shared(&path, &file, LOCK_FILE_LEN)?;
        let Some(region) = crate::sigbus::Region::register(base, LOCK_FILE_LEN as usize) else {
            // SAFETY: just mapped above; nothing refers to it yet.
            unsafe { crate::map::unmap(base, LOCK_FILE_LEN) };
            return Err(crate::map::too_many_mappings(&path));
        };
        Ok(LockFile {
            base: base.cast::<LockState>(),
            file: Some(file),
            path,
            region,
        })
    }

    /// A private, zeroed state in anonymous memory, for a read-only handle (SPEC.md §6.8): it
    /// shares nothing with other processes and no file backs it, so its mutexes are never
    /// taken (a read-only handle refuses every write before locking) and the election bytes are
    /// never asked for.
    pub fn private(path: PathBuf) -> Result<LockFile> {
        // SAFETY: a new anonymous private mapping; it aliases no Rust memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LOCK_FILE_LEN as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::io(&path, "mmap", std::io::Error::last_os_error()));
        }
        let base = base as *mut u8;
        let Some(region) = crate::sigbus::Region::register(base, LOCK_FILE_LEN as usize) else {
            // SAFETY: just mapped above; nothing refers to it yet.
            unsafe { crate::map::unmap(base, LOCK_FILE_LEN) };
            return Err(crate::map::too_many_mappings(&path));
        };
        Ok(LockFile {
            base: base.cast::<LockState>(),
            file: None,
            path,
            region,
        })
    }

    /// True once a SIGBUS hit the lock file's mapping (the file was truncated from outside):
    /// the shared state read since may be zeros and must not be used.
    #[inline]
    pub fn broken(&self) -> bool {
        self.region.broken()
    }

    #[inline]
    pub fn state(&self) -> &LockState {
        // SAFETY: the mapping is LOCK_FILE_LEN >= size_of::<LockState>() bytes, page-aligned, and lives
        // as long as self; every field is valid for any bit pattern (atomics) or initialised by
        // the first opener (mutexes) before any other process maps the file.
        unsafe { &*self.base }
    }

    /// Resets the whole shared state. Only the elected first opener calls this.
    pub fn initialise(&self) -> Result<()> {
        // The ring's slots are read only between its counters, which are zeroed here: leaving
        // its 8 MiB alone spares the first opener a write fault per page.
        // Likewise the reuse map's 2 MiB of words, read only where its zeroed summary says
        // (`reuse.rs`).
        let mut skip = [
            (
                std::mem::offset_of!(LockState, pending),
                std::mem::size_of::<[AtomicU64; PENDING_CAP]>(),
            ),
            (
                std::mem::offset_of!(LockState, reuse),
                std::mem::size_of::<[AtomicU64; REUSE_WORDS]>(),
            ),
        ];
        skip.sort_unstable();
        let mut at = 0;
        for (start, len) in skip.into_iter().chain([(LOCK_FILE_LEN as usize, 0)]) {
            // SAFETY: no other process has the lock file mapped (we won the election), so
            // writing the region is exclusive; every range lies inside the LOCK_FILE_LEN-byte
            // mapping (the skipped fields are in the struct, which fits in it).
            unsafe { std::ptr::write_bytes((self.base as *mut u8).add(at), 0, start - at) };
            at = start + len;
        }
        let h = self.state();
        h.write_mutex
            .init()
            .map_err(|e| Error::io(&self.path, "pthread_mutex_init", e))?;
        h.sync_mutex
            .init()
            .map_err(|e| Error::io(&self.path, "pthread_mutex_init", e))?;
        h.ckpt_mutex
            .init()
            .map_err(|e| Error::io(&self.path, "pthread_mutex_init", e))?;
        h.version.store(LOCK_FILE_VERSION, Ordering::Relaxed);
        h.magic.store(LOCK_FILE_MAGIC, Ordering::Release);
        Ok(())
    }

    pub fn check_initialised(&self) -> Result<()> {
        let h = self.state();
        if h.magic.load(Ordering::Acquire) != LOCK_FILE_MAGIC
            || h.version.load(Ordering::Relaxed) != LOCK_FILE_VERSION
        {
            return Err(incompatible(&self.path));
        }
        Ok(())
    }

    /// The descriptor the lock file was opened with (per-key locks reopen it per process); -1
    /// for a read-only handle, which has none and takes no per-key lock.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Takes (`Some(true)` exclusive, `Some(false)` shared) or releases (`None`) one of the two
    /// election bytes. With `wait` false, returns Ok(false) when another process holds it.
    pub fn range_lock(&self, byte: i64, mode: Option<bool>, wait: bool) -> Result<bool> {
        match &self.file {
            Some(file) => range_lock(file, &self.path, byte, mode, wait),
            None => Err(Error::ReadOnly {
                path: self.path.clone(),
            }),
        }
    }

    /// Whether a backup holds its pin on `BACKUP_BYTE` (through any other open file
    /// description; the kernel drops it when the backup's process dies). An error reads as
    /// "pinned": that only keeps freed blocks out of use a little longer.
    pub fn backup_pinned(&self) -> bool {
        let Some(file) = &self.file else {
            return true; // a read-only handle never reuses blocks anyway
        };
        // SAFETY: flock is plain data; zeroed is a valid starting value (l_pid 0, as
        // F_OFD_GETLK requires).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = BACKUP_BYTE;
        fl.l_len = 1;
        // SAFETY: valid fd and a properly initialised flock struct, which the call fills in.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
        rc != 0 || fl.l_type != libc::F_UNLCK as libc::c_short
    }
}

fn incompatible(path: &Path) -> Error {
    Error::Incompatible {
        path: path.to_path_buf(),
        detail:
            "lock file state written by a different version; close every process using the store"
                .into(),
    }
}

/// Whether the file starts with the lock file's magic and another version's number.
fn written_by_other_version(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 16];
    file.read_exact_at(&mut head, 0).is_ok()
        && u64::from_le_bytes(head[..8].try_into().unwrap()) == LOCK_FILE_MAGIC
        && u64::from_le_bytes(head[8..].try_into().unwrap()) != LOCK_FILE_VERSION
}

pub fn range_lock(
    file: &File,
    path: &Path,
    byte: i64,
    mode: Option<bool>,
    wait: bool,
) -> Result<bool> {
    let l_type = match mode {
        Some(true) => libc::F_WRLCK,
        Some(false) => libc::F_RDLCK,
        None => libc::F_UNLCK,
    };
    // SAFETY: flock is plain data; zeroed is a valid starting value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    loop {
        // SAFETY: valid fd and a properly initialised flock struct.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &fl) };
        if rc == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
            _ => return Err(Error::io(path, "fcntl(F_OFD_SETLK)", e)),
        }
    }
}

/// Whether another process holds `byte` of `file` (shared or exclusive), asked without taking
/// anything (`F_OFD_GETLK`): how a read-only handle learns that the store is open elsewhere.
pub fn held_by_others(file: &File, path: &Path, byte: i64) -> Result<bool> {
    // SAFETY: flock is plain data; zeroed is a valid starting value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // SAFETY: valid fd and a properly initialised flock struct, which the call fills in.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::io(path, "fcntl(F_OFD_GETLK)", e));
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

impl Drop for LockFile {
    fn drop(&mut self) {
        self.region.unregister();
        // SAFETY: exactly what `map` mapped; no references into it outlive self.
        unsafe { crate::map::unmap(self.base.cast(), LOCK_FILE_LEN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader's coarse clock may be a tick behind the writer's precise one: a hit never moves
    /// a bucket's last access back.
    #[test]
    fn a_hit_never_moves_last_access_back() {
        // SAFETY: every field of LockState is an atomic or a mutex's plain bytes, for which all
        // zeros is a valid value; the mutexes are never locked here.
        let state: Box<LockState> = unsafe { Box::new_zeroed().assume_init() };
        state.written(7, 1_000);
        state.touch(7, 999);
        assert_eq!(state.access(7), (1, 1_000));
        state.touch(7, 1_001);
        assert_eq!(state.access(7), (2, 1_001));
    }

    /// A mutex for threads of a test to share.
    struct Shared<'a>(&'a RobustMutex);
    // SAFETY: the mutex is process-shared and made for concurrent use from any thread;
    // `UnsafeCell` only hides that from the compiler.
    unsafe impl Sync for Shared<'_> {}
    impl Shared<'_> {
        fn get(&self) -> &RobustMutex {
            self.0
        }
    }

    /// A holder killed while another process's thread waits for the mutex (spinning, then
    /// asleep in the kernel): the waiter gets it with `OwnerDied`, as a plain lock would, and
    /// after `consistent` the mutex is clean again.
    #[test]
    fn a_waiter_learns_that_the_holder_was_killed() {
        // SAFETY: a fresh shared anonymous mapping of one page (zeros: storage for `init`),
        // checked against MAP_FAILED, unmapped at the end after every user is gone; a forked
        // child shares it.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        // SAFETY: the page is aligned, large enough and outlives every use below.
        let m = Shared(unsafe { &*(page as *const RobustMutex) });
        m.get().init().unwrap();
        let path = Path::new("test");
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only locks the mutex (a compare-and-swap in user space), writes a
        // byte and sleeps until it is killed: nothing that needs another thread of the parent.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            // SAFETY: as above; `_exit` if the lock failed, so the test's own code never runs
            // twice.
            unsafe {
                if libc::pthread_mutex_lock(m.get().0.get()) != 0 {
                    libc::_exit(1);
                }
                libc::write(fds[1], b"x".as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        let mut byte = 0u8;
        // SAFETY: reads one byte into a local.
        assert_eq!(
            unsafe { libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) },
            1
        );
        let waits = LockWaits::default();
        let got = std::thread::scope(|s| {
            // The owner (this thread) repairs and unlocks.
            let waiter = s.spawn(|| {
                let got = m.get().lock_spinning(path, &waits);
                if let Ok(Locked::OwnerDied) = got {
                    m.get().consistent();
                }
                m.get().unlock();
                got
            });
            // Once it found the mutex held, long past its spin: the waiter sleeps in the kernel
            // when the holder dies (or, if it lost its core meanwhile, finds that in a try).
            while waits.contended.load(Ordering::Relaxed) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            // SAFETY: our own child; waited for so that it leaves no zombie.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
            waiter.join().unwrap()
        });
        assert!(matches!(got, Ok(Locked::OwnerDied)));
        assert_eq!(waits.contended.load(Ordering::Relaxed), 1);
        assert!(matches!(
            m.get().lock_spinning(path, &waits),
            Ok(Locked::Clean)
        ));
        m.get().unlock();
        // SAFETY: the descriptors and the page are ours, and no one uses them any more.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
            libc::munmap(page, 4096);
        }
    }

    /// The tests that pin threads to CPUs, one at a time (each would take the other's cores).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Pins the calling thread to one CPU (holder and waiter each on their own, so that
    /// they run at the same time, as on a machine with a core free; a busy machine would
    /// otherwise often run them in turn on one core, where no spin can help). Returns the
    /// previous mask.
    fn pin(cpu: usize) -> libc::cpu_set_t {
        // SAFETY: the sets are locals, valid for the calls; 0 means the calling thread.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of_val(&old), &mut old);
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
            old
        }
    }

    /// A holder that keeps the mutex for a few microseconds is waited for by spinning: the
    /// waiter does not sleep in the kernel.
    #[test]
    fn a_short_hold_is_waited_for_by_spinning() {
        // SAFETY: zeroed bytes are storage for `init`, which runs before any other use.
        let boxed: Box<RobustMutex> = unsafe { Box::new_zeroed().assume_init() };
        let m = Shared(&boxed);
        m.get().init().unwrap();
        let path = Path::new("test");
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let before = pin(0);
        // Batches of 50 waits, until one ran without other work taking the holder's or the
        // waiter's core (then the waiter sleeps whatever it does).
        let mut batches = Vec::new();
        for _ in 0..10 {
            let waits = LockWaits::default();
            for _ in 0..50 {
                assert!(matches!(m.get().lock(path).unwrap(), Locked::Clean));
                let trying = std::sync::atomic::AtomicBool::new(false);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        pin(1);
                        trying.store(true, Ordering::Release);
                        let got = m.get().lock_spinning(path, &waits).unwrap();
                        assert!(matches!(got, Locked::Clean));
                        m.get().unlock();
                    });
                    while !trying.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    let held = std::time::Instant::now();
                    while held.elapsed() < std::time::Duration::from_micros(3) {
                        std::hint::spin_loop();
                    }
                    m.get().unlock();
                });
            }
            let contended = waits.contended.load(Ordering::Relaxed);
            let slept = waits.slept.load(Ordering::Relaxed);
            batches.push((slept, contended));
            if contended >= 25 && slept * 4 <= contended {
                break;
            }
        }
        // SAFETY: restores the mask read above, for the rest of this test thread's life.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&before), &before) };
        let &(slept, contended) = batches.last().unwrap();
        assert!(
            contended >= 25 && slept * 4 <= contended,
            "(slept, found it held) of 50 waits, per batch: {batches:?}"
        );
    }

    /// Two handles of one store (two mappings of the lock file, as two processes have) putting
    /// as fast as they can, each on its own thread: most acquisitions that find the write lock
    /// held get it by spinning, without sleeping in the kernel (each sleep would cost the waiter
    /// a context switch and the holder a wake-up). Without the spin, every one of them sleeps.
    #[test]
    fn a_contended_write_lock_is_mostly_won_by_spinning() {
        use crate::{Durability, Options, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let opts = || Options::default().durability(Durability::None);
        let stores = [
            Store::open(&path, opts()).unwrap(),
            Store::open(&path, opts()).unwrap(),
        ];
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let counts = || {
            stores.iter().fold((0, 0), |(slept, contended), store| {
                let w = &store.inner().write_lock_waits;
                (
                    slept + w.slept.load(Ordering::Relaxed),
                    contended + w.contended.load(Ordering::Relaxed),
                )
            })
        };
        // Rounds of puts, until one had enough contended acquisitions to judge (on a busy
        // machine the two threads run at the same time only now and then) with at most half
        // of them sleeping. Measured: 2-5 % on a quiet machine, a third at a load of 11 on 2
        // cores (where most contention comes from a holder that lost its core); 90 % without
        // the spin.
        let mut rounds = Vec::new();
        loop {
            let (slept0, contended0) = counts();
            std::thread::scope(|s| {
                for (t, store) in stores.iter().enumerate() {
                    s.spawn(move || {
                        pin(t);
                        for i in 0..20_000u32 {
                            let k = format!("t{t}-{}", i % 500);
                            store.put(k.as_bytes(), &i.to_le_bytes()).unwrap();
                        }
                    });
                }
            });
            let (slept, contended) = counts();
            let (slept, contended) = (slept - slept0, contended - contended0);
            if contended >= 200 {
                rounds.push((slept, contended));
                if slept * 2 <= contended {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "(slept, contended) in the last of {} rounds with enough contention: {:?}",
                rounds.len(),
                &rounds[rounds.len().saturating_sub(10)..]
            );
        }
        assert_eq!(
            stores[0].get(b"t1-499").unwrap().unwrap(),
            19_999u32.to_le_bytes()
        );
        // Still one holder at a time: read-modify-writes of one counter from both handles at
        // once lose no increment.
        std::thread::scope(|s| {
            for (t, store) in stores.iter().enumerate() {
                s.spawn(move || {
                    pin(t);
                    for _ in 0..5_000 {
                        store
                            .update(b"counter", |cur| {
                                let n = cur.map_or(0, |e| {
                                    u64::from_le_bytes(e.value[..8].try_into().unwrap())
                                });
                                let value = (n + 1).to_le_bytes().to_vec();
                                let put = crate::Update::Put {
                                    value,
                                    expires_at_ms: 0,
                                };
                                (put, ())
                            })
                            .unwrap();
                    }
                });
            }
        });
        let n = stores[1].get(b"counter").unwrap().unwrap();
        assert_eq!(u64::from_le_bytes(n[..8].try_into().unwrap()), 10_000);
    }
}
