//! The write path, top to bottom in this file, in the order a put runs. Each step names the file
//! that holds its details:
//!
//! 1. **Checks** (`store.rs`): `Store::put` → `put_with_expiry` → `check_sizes` builds the
//!    operation; `Store::write` runs the steps below (`batch`, `delete`, `update`, `clear` and
//!    `compare_and_swap` end there too).
//! 2. **Lock** ([`Inner::lock`], here): takes the cross-process write mutex and returns the
//!    [`WriteTxn`], the only thing that can change the store. A holder that died is repaired
//!    first ([`WriteTxn::recover`], `recover.rs`).
//! 3. **Commit** ([`WriteTxn::commit`], here):
//!    1. room: when the journal half is full, wait for the checkpoint in flight and freeze the
//!       next (`checkpoint.rs`), the index grown when the keys would not fit (`ensure_index_room`,
//!       `apply.rs`);
//!    2. plan blocks: one block per Put, before anything is journaled, so a store without room
//!       refuses the write with nothing changed (`plan_with_room` here, `plan_blocks` in
//!       `apply.rs`, `alloc` in `alloc.rs`);
//!    3. journal append: the record, checksummed, at the journal's tail (`Journal::write_at`,
//!       `journal.rs`);
//!    4. apply: each entry written into its planned block, then published in the live index by
//!       one aligned 8-byte store (`apply` → `apply_put` → `publish`, `apply.rs`);
//!    5. publish the record as written (`written_lsn`), which group commit flushes up to;
//!    6. a few freed blocks join the free lists, and a checkpoint is frozen when due.
//! 4. **Release** (`Drop for WriteTxn`, here): unlocks.
//! 5. **Durability wait** ([`Inner::after_commit`], here): as the handle's `Durability` asks,
//!    one `fdatasync` of the journal shared by every writer waiting (group commit); then the
//!    background thread is woken if a checkpoint was frozen. (Without that thread, the next
//!    write flushes it before step 2: `Inner::flush_before_write`, `checkpoint.rs`.)
//!
//! The types: [`Inner`] is the handle's read view. It looks entries up and scans under the
//! readers' sequence number and has no way to change the data file or the lock file's allocator.
//! [`WriteTxn`] exists only while the write lock is held, and alone hands out the [`LockHeld`]
//! proof that the map's writing methods, the journal's append and the lock file's free lists ask
//! for: a write without the lock does not compile.

use crate::apply::Planned;
use crate::error::{Error, Result};
use crate::format::*;
use crate::index;
use crate::journal::{self, Op};
use crate::lock_file::{self, Locked};
use crate::store::{now_ms, Inner};
use crate::{Durability, Entry};
use std::cell::Cell;
use std::sync::atomic::Ordering::*;

/// Index slots a commit's expiry sweep visits, once the heap has passed half the maximum size:
/// at a half-full index about four entry headers read, so a few expired entries go per commit,
/// more than the one a put adds.
const EXPIRE_SLOTS_PER_COMMIT: u64 = 8;
/// Slots the sweep visits when an allocation finds no room, before the checkpoint that frees.
const EXPIRE_SLOTS_WHEN_SHORT: u64 = 1 << 16;

/// Proof that the cross-process write lock is held: the argument every method that changes the
/// data file, the journal or the allocator's shared state takes. Zero-sized; only a
/// [`WriteTxn`] makes one, and lends it out no longer than it lives.
pub(crate) struct LockHeld(());

impl LockHeld {
    /// For the holder of the checkpoint mutex, which writes one thing without the write lock:
    /// the superblock copy of the checkpoint it flushes (`checkpoint.rs`), which no writer
    /// touches.
    pub(crate) fn for_checkpoint() -> LockHeld {
        LockHeld(())
    }
}

#[cfg(test)]
impl LockHeld {
    /// For unit tests of the map and the index, which write a file no other handle uses.
    pub(crate) fn for_tests() -> LockHeld {
        LockHeld(())
    }
}

/// This thread's id as `Inner::write_holder` records it (never 0).
#[inline]
fn this_thread() -> usize {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as usize }
}

/// Holding the cross-process write lock: the stages that change the store (alloc, apply,
/// checkpoint, index rebuild, recovery) are its methods. It reads everything else through the
/// handle ([`Inner`], by `Deref`). Dropping it unlocks.
pub(crate) struct WriteTxn<'a> {
    inner: &'a Inner,
    held: LockHeld,
    /// The process that took the lock. A child forked while the lock is held inherits this
    /// transaction (e.g. from inside an `update` callback) but not the lock: it must neither
    /// commit through it nor unlock it.
    pid: u32,
    /// Taken while an unrelated panic was already unwinding (in a destructor): only a panic
    /// that starts while the lock is held can leave a change half made.
    unwinding_at_lock: bool,
    /// Nesting depth of `exclude_readers`.
    exclude_readers_depth: Cell<u32>,
    /// The disk refused to grow the data file (ENOSPC) while this transaction looked for room.
    pub(crate) growth_refused: Cell<bool>,
    /// Set only during recovery: free lists kept in this process instead of linked through the
    /// free blocks (`alloc.rs`, `HeldFree`), so that recovery's checkpoint does not have to flush
    /// a link written into nearly every page of the heap.
    pub(crate) held_free: std::cell::RefCell<Option<crate::alloc::HeldFree>>,
    /// Nesting depth of `commit` (eviction commits inside a commit): only the outermost one
    /// keeps the stage and the undo area (SPEC.md §7.5).
    commit_depth: Cell<u32>,
    /// Set while the outermost commit applies its record: each changed slot goes to the undo
    /// area first.
    pub(crate) undo_active: Cell<bool>,
    /// Non-zero while a compaction commits its moves: blocks come only from below this offset
    /// (`compact.rs`).
    pub(crate) alloc_below: Cell<u64>,
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.inner
    }
}

impl WriteTxn<'_> {
    /// The proof that the write lock is held, for the map's, the journal's and the lock file's
    /// writing methods.
    #[inline]
    pub(crate) fn held(&self) -> &LockHeld {
        &self.held
    }

    /// Refuses to write unless this process is the one that took the lock.
    pub(crate) fn check_owner(&self) -> Result<()> {
        if self.pid != crate::pid::current() {
            return Err(Error::ForkedLockHolder);
        }
        Ok(())
    }
}

// 2. Lock.

impl Inner {
    /// Whether this thread holds this store's write lock.
    pub(crate) fn write_lock_held_here(&self) -> bool {
        self.write_holder.load(Relaxed) == this_thread()
            && self.write_holder_pid.load(Relaxed) == crate::pid::current()
    }

    /// Takes the write lock; if its previous holder died, repairs the shared state first.
    pub(crate) fn lock(&self) -> Result<WriteTxn<'_>> {
        self.lock_with(true)
    }

    /// `lock` for a first opener that resumes the state: it writes nothing, so a snapshot that
    /// describes the store stays valid (SPEC.md §7.2), unless a repair changes the state.
    pub(crate) fn lock_keeping_snapshot(&self) -> Result<WriteTxn<'_>> {
        self.lock_with(false)
    }

    fn lock_with(&self, disarm: bool) -> Result<WriteTxn<'_>> {
        self.refuse_if_read_only()?;
        if self.write_lock_held_here() {
            return Err(Error::Reentrant);
        }
        self.check_mappings()?;
        let state = self
            .lock_file
            .state()
            .write_mutex
            .lock_spinning(&self.path, &self.write_lock_waits)?;
        self.write_holder.store(this_thread(), Relaxed);
        self.write_holder_pid.store(crate::pid::current(), Relaxed);
        let txn = WriteTxn {
            inner: self,
            held: LockHeld(()),
            pid: crate::pid::current(),
            unwinding_at_lock: std::thread::panicking(),
            exclude_readers_depth: Cell::new(0),
            growth_refused: Cell::new(false),
            held_free: Default::default(),
            commit_depth: Cell::new(0),
            undo_active: Cell::new(false),
            alloc_below: Cell::new(0),
        };
        let h = self.lock_file.state();
        // What a holder that died was doing, read before this holder says it may be anywhere.
        let dead_stage = h.txn_stage.load(Relaxed);
        txn.set_stage(lock_file::STAGE_UNKNOWN);
        // A file shrunk under us while we waited: nothing in the shared state can be trusted.
        self.check_mappings()?;
        let mut repair = None;
        if let Locked::OwnerDied = state {
            // The dead holder may have stopped anywhere. Note that the live state must be
            // repaired before marking the mutex usable again, so that if this repair fails too
            // (or this process dies in it), the next holder rebuilds it instead. Where the
            // holder's stage says it left nothing half made, or only the record it was
            // applying, the repair is bounded (SPEC.md §7.5); anywhere else it is a recovery.
            if h.needs_recovery.load(SeqCst) == 0 {
                repair = match dead_stage {
                    lock_file::STAGE_NONE => Some(false),
                    lock_file::STAGE_APPLY if h.undo.overflow.load(Relaxed) == 0 => Some(true),
                    _ => None,
                };
            }
            h.needs_recovery.store(1, SeqCst);
            h.write_mutex.consistent();
        }
        if h.snapshot_armed.load(SeqCst) != 0 && (disarm || h.needs_recovery.load(SeqCst) != 0) {
            // Nothing may change the store while a snapshot describes it (SPEC.md §7.2).
            txn.disarm_snapshot()?;
        }
        if h.needs_recovery.load(SeqCst) != 0 {
            // A bounded repair that fails for any reason leaves it to recovery.
            if repair.is_none_or(|apply| txn.repair(apply).is_err()) {
                txn.recover()?;
            }
            txn.set_stage(lock_file::STAGE_UNKNOWN);
            h.needs_recovery.store(0, SeqCst);
        }
        // Another process may have grown the file: see the new length before using it.
        if h.file_size.load(Acquire) > self.map.len() {
            self.map.refresh_len()?;
        }
        Ok(txn)
    }
}

// 3. Commit (and the reads an `update` makes under the lock before it decides).

impl WriteTxn<'_> {
    /// The current entry under the write lock (no retry needed: nothing moves while we hold it).
    pub(crate) fn current(&self, key: &[u8]) -> Result<Option<Entry>> {
        Ok(match self.probe_live(key, hash_key(key))?.found {
            Some((_, slot)) => Some(index::value_at(&self.map, slot, key)?).filter(index::is_live),
            None => None,
        })
    }

    /// Says what this holder is doing, for the next one if it dies (`lock_file::STAGE_*`). Only
    /// this thread's program order matters: the next holder reads the stage after the kernel
    /// handed it the lock of a dead process, whose stores are all visible by then. The fences
    /// keep the compiler from moving the store across the changes it describes.
    #[inline]
    pub(crate) fn set_stage(&self, stage: u64) {
        std::sync::atomic::compiler_fence(SeqCst);
        self.lock_file.state().txn_stage.store(stage, Relaxed);
        std::sync::atomic::compiler_fence(SeqCst);
    }

    /// Journals and applies one transaction under the write lock; returns its LSN.
    pub(crate) fn commit(&self, ops: &[Op]) -> Result<u64> {
        let depth = self.commit_depth.get();
        self.commit_depth.set(depth + 1);
        let r = self.commit_at(ops, depth == 0);
        self.commit_depth.set(depth);
        if depth == 0 {
            // Whatever the caller does next is not covered by the stages below.
            self.undo_active.set(false);
            self.set_stage(lock_file::STAGE_UNKNOWN);
        }
        r
    }

    /// `commit`; `outer` when it is not nested in another (an eviction's), and so keeps the
    /// stage and the undo area.
    fn commit_at(&self, ops: &[Op], outer: bool) -> Result<u64> {
        self.check_owner()?;
        self.check_poison()?;
        let h = self.lock_file.state();
        // 3.1 Room: in the journal, in the pending list, in the index.
        let len = journal::record_len(ops);
        if len > self.record_limit() {
            return Err(Error::ValueTooLarge {
                len,
                max: self.record_limit(),
            });
        }
        self.complete()?;
        let half = journal_half(self.journal.size);
        // Full in bytes, or in records (each counts for at least `REPLAY_COST_BYTES`).
        if h.journal_pos.load(Relaxed) + len as u64 > half
            || (self.half_records() + 1) * REPLAY_COST_BYTES > half
        {
            // The half is full: only now does a writer wait for the checkpoint in flight
            // (back-pressure), before the next one frees the other half.
            if self.flush_due() {
                h.full_half_waits.fetch_add(1, Relaxed);
            }
            self.settle()?;
            self.freeze()?;
        }
        let puts = ops.iter().filter(|o| matches!(o, Op::Put { .. })).count() as u64;
        if h.pending_count() as usize + ops.len() > lock_file::PENDING_CAP {
            self.make_pending_room()?;
        }
        self.index_room_making_room(ops, puts)?;
        // From here to the journal append a holder that dies leaves at most blocks out of the
        // free lists and the reuse map (each list change is one store after the block's link is
        // written; a map change leaves no unit both free and used at any store, `reuse.rs`).
        if outer {
            self.set_stage(lock_file::STAGE_NONE);
        }
        // 3.2 Plan blocks, before anything is journaled: a store without room changes nothing.
        let blocks = self.plan_with_room(ops)?;
        // 3.3 Journal append; if it fails, the blocks go back and nothing was applied.
        let lsn = h.next_lsn.load(Relaxed);
        let epoch = h.journal_epoch.load(Relaxed);
        let pos = h.journal_pos.load(Relaxed);
        let at = journal_half_base(self.journal.size, epoch) + pos;
        if outer {
            // Before the record can be whole in the journal: a holder that dies from here on is
            // rolled back to this point and the record (if whole) applied again.
            self.begin_apply(lsn, pos, len as u64, &blocks);
        }
        // Encoded where it goes (the journal's mapping, in relaxed modes): the value is copied
        // into the journal once, with no buffer between.
        let written = self.journal.write_record(self.held(), at, len, |out| {
            journal::encode_record_to(out, epoch, lsn, ops)
        });
        if let Err(e) = written {
            if outer {
                // Not written: nothing to take back, and the blocks go back to the lists.
                self.undo_active.set(false);
                self.set_stage(lock_file::STAGE_NONE);
            }
            for b in blocks.iter() {
                self.push(b.at, b.class)?;
            }
            return Err(e);
        }
        let record_len = len as u64;
        h.last_record[0].store(at + 1, Relaxed);
        h.last_record[1].store(lsn, Relaxed);
        h.journal_pos.store(pos + record_len, Relaxed);
        h.next_lsn.store(lsn + 1, Relaxed);
        // 3.4 Apply into the planned blocks and the live index.
        self.apply(lsn, ops, &blocks, true)?;
        // 3.5 Publish as written: the next group commit flushes up to here.
        h.written_lsn.store(lsn, Release);
        if outer {
            // Applied whole: what follows only moves blocks between lists and copies index pages.
            self.undo_active.set(false);
            self.set_stage(lock_file::STAGE_NONE);
        }
        // 3.6 Bounded housekeeping: a few reclaimed blocks, and a freeze when the half is three
        // quarters full (or many blocks wait) and no checkpoint is in flight. The flush runs
        // after the lock is released (`after_commit`).
        // Neither can undo the commit, so their errors are not its: a block that failed to
        // join a free list is only lost space, and a freeze that failed is retried by the commit
        // that finds the half full, under the same lock and before it changes anything.
        let _ = self.reclaim_some();
        if h.heap_end() >= self.max_size() / 2 {
            // Expired entries leave a store that may run short a few slots at a time, so that
            // a full walk for them (`drop_expired`) is rarely needed (SPEC.md §2.4). Unlinking
            // changes the index and the counters: a holder that dies inside leaves them to a full
            // recovery; one that finishes leaves nothing half made.
            self.set_stage(lock_file::STAGE_UNKNOWN);
            if self.expire_some(EXPIRE_SLOTS_PER_COMMIT).is_ok() && outer {
                self.set_stage(lock_file::STAGE_NONE);
            }
        }
        if self.copy_pending() {
            let _ = self.copy_some(crate::checkpoint::COPY_PER_COMMIT);
        }
        if !self.in_flight()
            && (self.half_fill() * 4 >= half * 3
                || h.pending_since_freeze() as usize * 4 >= lock_file::PENDING_CAP)
        {
            self.set_stage(lock_file::STAGE_UNKNOWN);
            let _ = self.freeze();
        }
        Ok(lsn)
    }

    /// The pending ring is nearly full: a checkpoint releases it, unless a backup's pin keeps
    /// its blocks waiting (SPEC.md §7.3); then checkpointing would free nothing, so the ring is
    /// dropped as overflowed and the first completion after the pin rebuilds the free lists.
    fn make_pending_room(&self) -> Result<()> {
        if self.lock_file.backup_pinned() {
            self.lock_file.state().reset_pending(self.held(), true);
            return Ok(());
        }
        self.checkpoint()
    }

    /// What a writer without room does before refusing (SPEC.md §2.4), in two steps. Bounded
    /// first (`step` 0): a longer stretch of the expiry sweep, then the checkpoint that releases
    /// what it and earlier writes freed. Only then the whole index (`step` 1): every expired
    /// entry, a checkpoint, and free space coalesced.
    fn make_room(&self, step: u32) -> Result<()> {
        if step == 0 {
            self.expire_some(EXPIRE_SLOTS_WHEN_SHORT)?;
            return self.checkpoint();
        }
        self.drop_expired()?;
        self.checkpoint()?;
        self.exclude_readers(|| self.rebuild_free_lists())
    }

    /// Room in the index for `puts` more keys. A rebuild whose copies do not fit makes room as
    /// an allocation does (`WhenFull::Refuse`; `Evict` evicts instead), so that an index full
    /// of expired keys is not refused.
    fn index_room_making_room(&self, ops: &[Op], puts: u64) -> Result<()> {
        let mut step = 0;
        loop {
            match self.index_room_evicting(ops, puts) {
                Err(e) if e.is_full() && self.when_full == crate::WhenFull::Refuse && step < 2 => {
                    self.make_room(step)?;
                    step += 1;
                }
                r => return r,
            }
        }
    }

    /// Allocates the transaction's blocks, making room when needed: expired entries go, a
    /// checkpoint frees what was deleted since the last one, and free space is coalesced.
    fn plan_with_room(&self, ops: &[Op]) -> Result<Planned> {
        self.growth_refused.set(false);
        for attempt in 0..3 {
            if let Some(blocks) = self.plan_blocks(ops)? {
                return Ok(blocks);
            }
            // Making room changes more than free lists.
            self.set_stage(lock_file::STAGE_UNKNOWN);
            if self.when_full == crate::WhenFull::Evict {
                // Evicting others instead (`evict.rs`); `None`: nothing more could go.
                match self.plan_evicting(ops)? {
                    Some(blocks) => return Ok(blocks),
                    None => break,
                }
            }
            if attempt < 2 {
                self.make_room(attempt)?;
            }
        }
        let need: usize = ops.iter().map(|o| o.encoded_len()).sum();
        if self.growth_refused.get() {
            return Err(self.full_error(&format!(
                "no room for {need} more bytes: the disk has no space to grow the file beyond {} \
                 bytes (its maximum size is {} bytes); nothing was changed",
                self.map.len(),
                self.max_size()
            )));
        }
        Err(self.full_error(&format!(
            "no room for {need} more bytes within the maximum size of {} bytes",
            self.max_size()
        )))
    }

    /// Visits the next `budget` slots of the live index from this handle's expiry cursor and
    /// unlinks the expired entries among them, as `drop_expired` does for all. Returns how many.
    pub(crate) fn expire_some(&self, budget: u64) -> Result<u64> {
        let h = self.lock_file.state();
        let (live, slots, now) = (
            h.live_index.load(Relaxed),
            h.index_slots.load(Relaxed),
            now_ms(),
        );
        let start = self.expiry_cursor.load(Relaxed);
        let visit = budget.min(slots);
        let mut dropped = 0;
        for k in 0..visit {
            // A power of two: the mask is the modulo.
            let at = slot_at(live, start.wrapping_add(k) & (slots - 1));
            let s = self.map.load_u64(at)?;
            if slot_is_entry(s) {
                let eh = index::header_at(&self.map, s)?;
                if eh.expires_ms != 0 && eh.expires_ms <= now {
                    self.unlink(at, s)?;
                    dropped += 1;
                }
            }
        }
        self.expiry_cursor
            .store(start.wrapping_add(visit) & (slots - 1), Relaxed);
        Ok(dropped)
    }

    /// Unlinks expired entries (not journaled: an expired entry reads as absent either way).
    fn drop_expired(&self) -> Result<()> {
        let h = self.lock_file.state();
        let (live, slots, now) = (
            h.live_index.load(Relaxed),
            h.index_slots.load(Relaxed),
            now_ms(),
        );
        for i in 0..slots {
            let s = self.map.load_u64(slot_at(live, i))?;
            if slot_is_entry(s) {
                let eh = index::header_at(&self.map, s)?;
                if eh.expires_ms != 0 && eh.expires_ms <= now {
                    self.unlink(slot_at(live, i), s)?;
                }
            }
        }
        Ok(())
    }
}

// 4. Release.

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        // Before the unlock: after it, another thread of this process may hold the lock through
        // this handle and have written its own id.
        self.inner.write_holder.store(0, Relaxed);
        if self.pid == crate::pid::current() {
            let h = self.inner.lock_file.state();
            if std::thread::panicking() && !self.unwinding_at_lock {
                // A panic unwound through a change: the live state may be half made, and unlike a
                // dead holder this one releases the mutex normally, so EOWNERDEAD will not tell the
                // next holder. Say it explicitly.
                h.needs_recovery.store(1, SeqCst);
            }
            // Released normally: nothing is half made (other holders use the state as it is).
            self.set_stage(lock_file::STAGE_NONE);
            h.write_mutex.unlock();
        }
    }
}

// 5. Durability wait, after the lock is released.

/// The journal bytes a record counts for at least (SPEC.md §3). Replay costs about the same per
/// record whatever its size (lookups and a block, then a copy that is cheap for small records),
/// so a cycle is bounded by its record count too: a journal of `n` bytes holds at most
/// `n / REPLAY_COST_BYTES` records before it checkpoints, and the time to recover after a crash
/// follows the journal's size even when the records are small.
pub(crate) const REPLAY_COST_BYTES: u64 = 256;

/// The runway writers use while a flush runs, and the share of it the flush allows them, are
/// counted in millionths: one put of a cycle of 131,072 records is 7.6 of them, so that a writer
/// keeping pace waits a little on every put, not a long time on every 131st.
pub(crate) const RUNWAY: u64 = 1_000_000;
/// Without a pace line (a durable flush's paced write-back, whose bytes flushed advance
/// smoothly): the runway writers may use before the flush starts, and once it has flushed
/// everything.
const PACE_FROM: u64 = 150_000;
const PACE_TO: u64 = 900_000;
/// Where a pace line aims the runway used, and never goes past: the runway from here to
/// `PACE_NEAR_END` is the reserve for a flush later than the line expects, spent at short waits
/// (`PACE_WAIT`): 13,000 puts of a cycle of 131,072 records, 200 ms at 15 µs each.
pub(crate) const PACE_GOAL: u64 = 850_000;
/// Past this much runway used, waits grow (`pace_limit`): the end of the half is near.
pub(crate) const PACE_NEAR_END: u64 = 950_000;
/// The longest one write waits while the end is not near: with the put itself and a page fault
/// or two, a paced write stays under 20 µs.
pub(crate) const PACE_WAIT: std::time::Duration = std::time::Duration::from_micros(14);
/// Waits shorter than this spin: `thread::sleep` sleeps at least the timer slack (50 µs by
/// default on Linux) and may lose the core for longer.
const PACE_SPIN: std::time::Duration = std::time::Duration::from_micros(100);

/// The longest `pace_limit`.
pub(crate) const PACE_LIMIT_MAX: std::time::Duration = std::time::Duration::from_micros(1000);

/// The longest one write waits for the flush when `used` millionths of the runway are used.
/// Short (`PACE_WAIT`) until the end of the half is near: the pace line keeps writers there
/// while the flush is no later than its margin, and a flush later than that still leaves the
/// writers the runway from `PACE_GOAL` to `PACE_NEAR_END` at short waits. Only a flush far later
/// than expected makes writers wait longer (up to 1 ms, sleeping), and only one that falls
/// behind even that leaves a writer at the end of the half (`WriteTxn::settle`).
fn pace_limit(used: u64) -> std::time::Duration {
    match used {
        0..PACE_NEAR_END => PACE_WAIT,
        PACE_NEAR_END..975_000 => std::time::Duration::from_micros(100),
        _ => PACE_LIMIT_MAX,
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine, so that a
/// flusher's slice timing means the same to writers in other processes.
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`, a valid timespec that outlives the call;
    // CLOCK_MONOTONIC is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A flush's expected length when no flush has been timed yet: its bytes at this rate (about
/// what a checkpoint of a million keys was measured at on the reference machine).
const FLUSH_RATE_GUESS: u64 = 384 << 20;

/// The expected length (ns) of a flush of `total` bytes when no flush has been timed yet.
pub(crate) fn flush_guess_ns(total: u64) -> u64 {
    (total as u128 * 1_000_000_000 / FLUSH_RATE_GUESS as u128) as u64
}

/// The pace line's value (runway millionths) at `now`, drawn at `at` from `from` at `rate`
/// millionths per ms: it rises with the time, never past `PACE_GOAL` (nor falls below where
/// it was drawn: a line drawn past the goal, the flush being late, holds writers where they
/// are).
pub(crate) fn line_value(at: u64, from: u64, rate: u64, now: u64) -> u64 {
    let on_line = from as u128 + rate as u128 * now.saturating_sub(at) as u128 / 1_000_000;
    on_line.min(PACE_GOAL.max(from) as u128) as u64
}

/// The pace line's rate (millionths per ms) from `used` when `left_ns` of the flush are
/// expected to be left: what brings the runway used to `PACE_GOAL` by then.
pub(crate) fn line_rate(used: u64, left_ns: u64) -> u64 {
    (PACE_GOAL.saturating_sub(used) as u128 * 1_000_000)
        .checked_div(left_ns as u128)
        .unwrap_or(0) as u64
}

/// How long a flush that has run `elapsed_ns` is expected to go on, when a whole one is
/// expected to take `expect_ns`: the rest of that, or, from half of it on, as long again as the
/// time so far, so that the line never counts on the flush ending soon: one on time leaves the
/// writers a quarter of the way short of `PACE_GOAL`, one running late gets ever slower lines
/// (the runway left to the goal shrinking as one over the time, never to nothing); at least
/// 1 ms.
pub(crate) fn flush_left_ns(expect_ns: u64, elapsed_ns: u64) -> u64 {
    expect_ns
        .saturating_sub(elapsed_ns)
        .max(elapsed_ns)
        .max(1_000_000)
}

/// The expected length of the next flush after one of `took_ns` when `expect_ns` was expected
/// (0: none yet): a slower flush is believed at once, a quicker one half way, so that one quick
/// flush among slow ones does not aim the next line too early.
pub(crate) fn next_expect_ns(expect_ns: u64, took_ns: u64) -> u64 {
    if took_ns >= expect_ns {
        took_ns
    } else {
        expect_ns - (expect_ns - took_ns) / 2
    }
}

impl Inner {
    /// Records a recovery would replay now: those since the durable checkpoint (both halves'
    /// while a checkpoint is in flight).
    pub(crate) fn cycle_records(&self) -> u64 {
        let h = self.lock_file.state();
        // Saturating: a read-only handle's private state has no LSN (0).
        (h.next_lsn.load(Relaxed).saturating_sub(1)).saturating_sub(h.ckpt_lsn.load(Relaxed))
    }

    /// Records in the journal half being written: since the frozen LSN while a checkpoint is in
    /// flight, since the durable one otherwise. Bounding each half by its record budget bounds
    /// the chain a recovery replays (at most both halves) by the journal's size.
    pub(crate) fn half_records(&self) -> u64 {
        let h = self.lock_file.state();
        let start = if self.in_flight() {
            h.frozen_lsn.load(Relaxed)
        } else {
            h.ckpt_lsn.load(Relaxed)
        };
        (h.next_lsn.load(Relaxed) - 1).saturating_sub(start)
    }

    /// How full the current half is, in bytes, each record counting for at least
    /// `REPLAY_COST_BYTES`: what the freeze goes by.
    fn half_fill(&self) -> u64 {
        let pos = self.lock_file.state().journal_pos.load(Relaxed);
        pos.max(self.half_records() * REPLAY_COST_BYTES)
    }

    /// After the lock is released: wait until the write is as durable as the mode promises,
    /// then wake the background checkpoint thread if a checkpoint waits for its flush.
    pub(crate) fn after_commit(&self, lsn: u64) -> Result<()> {
        self.wait_as_asked(lsn)?;
        self.maybe_flush();
        self.wake_prefaulter();
        self.pace();
        Ok(())
    }

    /// Gradual back-pressure (SPEC.md §5, pacing): while a checkpoint's flush runs, a writer
    /// that has used more of its runway (the journal half, or the pending list's room) than the
    /// flush allows waits for the allowance to grow. The allowance follows a pace line the
    /// flusher draws from the runway used, aimed by the flush's expected end (`draw_line`), so
    /// a writer faster than the flush waits a little on every write, spinning (a yield or a
    /// sleep can lose the core for much longer). The wait is bounded by `pace_limit`: past it
    /// the writer goes on; a wait sleeps only once it has spun `PACE_SPIN`.
    fn pace(&self) {
        // Not against a flush this thread itself runs (a write from inside it).
        if !self.flush_due() || self.claimed_here() {
            return;
        }
        let used = self.runway_used();
        if used <= self.runway_allowed() {
            return;
        }
        let h = self.lock_file.state();
        h.paced.fetch_add(1, Relaxed);
        let limit = pace_limit(used);
        if limit > PACE_WAIT {
            self.pace_long_waits.fetch_add(1, Relaxed);
        }
        let start = std::time::Instant::now();
        // Caught up is checked before the time: a writer that lost its core meanwhile is not
        // counted as an overrun when the flush caught up anyway.
        while self.flush_due() && self.runway_used() > self.runway_allowed() {
            let waited = start.elapsed();
            if waited >= limit {
                h.pace_overruns.fetch_add(1, Relaxed);
                break;
            }
            if waited > PACE_SPIN {
                std::thread::sleep(PACE_SPIN / 2);
            } else {
                std::hint::spin_loop();
            }
        }
        let waited = start.elapsed().as_nanos() as u64;
        self.pace_wait_max.fetch_max(waited, Relaxed);
    }

    /// How much of the runway a checkpoint in flight leaves the writers is used, in millionths:
    /// the fuller of the journal half and the pending list's room after the frozen blocks.
    pub(crate) fn runway_used(&self) -> u64 {
        let h = self.lock_file.state();
        let half = journal_half(self.journal.size);
        let journal = (self.half_fill() as u128 * RUNWAY as u128 / half as u128) as u64;
        let since = h.pending_since_freeze();
        let room =
            (lock_file::PENDING_CAP as u64).saturating_sub(h.pending_count().saturating_sub(since));
        let pending = (since * RUNWAY).checked_div(room).unwrap_or(RUNWAY);
        journal.max(pending)
    }

    /// How much of the runway the flush allows, in millionths: the pace line's value now, when
    /// one is drawn; else `PACE_FROM` before the flush starts, rising with the bytes flushed to
    /// `PACE_TO` when they all are (the rest covers the superblock's flush and a flush slower
    /// than expected).
    pub(crate) fn runway_allowed(&self) -> u64 {
        let now = mono_ns();
        if let Some(v) = self.pace_line(now) {
            return v;
        }
        PACE_FROM + (PACE_TO - PACE_FROM) * self.bytes_progress() / RUNWAY
    }

    /// The pace line's value at `now`, if one is drawn (`line_value`).
    pub(crate) fn pace_line(&self, now: u64) -> Option<u64> {
        let h = self.lock_file.state();
        let at = h.line_at.load(Acquire);
        let (from, rate) = (h.line_from.load(Relaxed), h.line_rate.load(Relaxed));
        // A line being redrawn meanwhile (`at` changed) is not used: the fence orders the
        // loads above before the check (a sequence lock, `Inner::draw_line`).
        std::sync::atomic::fence(Acquire);
        if at == 0 || h.line_at.load(Relaxed) != at {
            return None;
        }
        Some(line_value(at, from, rate, now))
    }

    /// The share of the flush's bytes done, in millionths (0 before it starts).
    pub(crate) fn bytes_progress(&self) -> u64 {
        let h = self.lock_file.state();
        let total = h.flush_total.load(Acquire);
        let done = h.flush_done.load(Acquire).min(total);
        (done as u128 * RUNWAY as u128)
            .checked_div(total as u128)
            .unwrap_or(0) as u64
    }

    fn wait_as_asked(&self, lsn: u64) -> Result<()> {
        match self.durability {
            Durability::Sync => self.wait_durable(lsn),
            Durability::Periodic(every) => {
                self.periodic.ensure();
                let last = self.lock_file.state().last_sync_ms.load(Relaxed);
                if now_ms().saturating_sub(last) >= every.as_millis() as u64 {
                    self.wait_durable(lsn)?;
                }
                Ok(())
            }
            Durability::None => Ok(()),
        }
    }

    /// Group commit: one `fdatasync` of the journal covers every record written before it
    /// started; writers that arrive while it runs are covered by the next one.
    fn wait_durable(&self, lsn: u64) -> Result<()> {
        let h = self.lock_file.state();
        if h.durable_lsn.load(Acquire) >= lsn || self.ephemeral {
            return Ok(());
        }
        self.check_poison()?;
        // A write made from inside a paced flush's piece (a storage seam's) runs on the thread
        // that holds the sync mutex for that piece: it syncs under that hold, and is no one
        // the flush should wait for.
        if self.sync_held_here() {
            return self.sync_journal_to(lsn);
        }
        // Counted as asked before the mutex and done after it, so that a paced flush lets this
        // sync go before its next write-back piece (SPEC.md §5).
        h.sync_asked.fetch_add(1, AcqRel);
        let result = match h.sync_mutex.lock(&self.path) {
            Ok(locked) => {
                if let Locked::OwnerDied = locked {
                    // Nothing to repair: durable_lsn only moves after a flush.
                    h.sync_mutex.consistent();
                }
                let r = self.sync_journal_to(lsn);
                h.sync_mutex.unlock();
                r
            }
            Err(e) => Err(e),
        };
        h.sync_done.fetch_add(1, AcqRel);
        result
    }

    /// With the sync mutex held by this thread: one `fdatasync` of the journal covering every
    /// record written so far, unless one made since covers `lsn` already.
    fn sync_journal_to(&self, lsn: u64) -> Result<()> {
        let h = self.lock_file.state();
        if h.durable_lsn.load(Acquire) >= lsn {
            return Ok(());
        }
        let target = h.written_lsn.load(Acquire);
        let started = std::time::Instant::now();
        match self.journal.sync() {
            Ok(()) => {
                let took = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
                h.last_sync_ns.store(took, Relaxed);
                h.durable_lsn.fetch_max(target, AcqRel);
                h.last_sync_ms.store(now_ms(), Relaxed);
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.refuse_if_read_only()?;
        self.wait_durable(self.lock_file.state().written_lsn.load(Acquire))
    }
}

impl Inner {
    /// A read-only handle (`Options::read_only`) takes no lock and writes nothing.
    fn refuse_if_read_only(&self) -> Result<()> {
        match self.ro {
            Some(_) => Err(crate::Error::ReadOnly {
                path: self.path.clone(),
            }),
            None => Ok(()),
        }
    }
}

// Used by the stages: holding readers off, and the error of a store without room.

impl WriteTxn<'_> {
    /// The error of a change that does not fit (`detail` says what did not).
    pub(crate) fn full_error(&self, detail: &str) -> crate::Error {
        crate::Error::Full {
            path: self.map.path.clone(),
            detail: detail.into(),
        }
    }

    /// Runs `f` with the readers' sequence number odd, so that lock-free readers retry instead
    /// of trusting the live index while `f` reorganises it. Nests (the depth is counted by this
    /// transaction). The outermost call always leaves the number even, also when a holder that
    /// died left it odd.
    pub(crate) fn exclude_readers<T>(&self, f: impl FnOnce() -> T) -> T {
        /// Ends the section also when `f` panics: the depth is restored, and the store is marked
        /// as needing recovery with `seq` left odd, so readers queue on the write lock and the
        /// next holder rebuilds the half-reorganised index (and makes `seq` even) before anyone
        /// trusts it again.
        struct Section<'a, 'b> {
            txn: &'a WriteTxn<'b>,
            outermost: bool,
            unwinding_at_start: bool,
        }
        impl Drop for Section<'_, '_> {
            fn drop(&mut self) {
                let h = self.txn.lock_file.state();
                let depth = &self.txn.exclude_readers_depth;
                depth.set(depth.get() - 1);
                if std::thread::panicking() && !self.unwinding_at_start {
                    h.needs_recovery.store(1, SeqCst);
                } else if self.outermost && h.seq.load(Relaxed) % 2 == 1 {
                    h.seq.fetch_add(1, Release);
                }
            }
        }
        let seq = &self.lock_file.state().seq;
        let depth = self.exclude_readers_depth.get();
        self.exclude_readers_depth.set(depth + 1);
        let outermost = depth == 0;
        if outermost && seq.load(Relaxed).is_multiple_of(2) {
            seq.fetch_add(1, AcqRel);
        }
        let _section = Section {
            txn: self,
            outermost,
            unwinding_at_start: std::thread::panicking(),
        };
        #[cfg(test)]
        crate::store::test_hooks::maybe_panic_in_exclude_readers();
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pace line moves with the time at its rate, from where it was drawn, never past the
    /// goal; its rate brings the runway used to the goal by the expected end.
    #[test]
    fn the_pace_line_moves_with_time_within_its_bounds() {
        let ms = 1_000_000;
        // 2,000 millionths per ms, drawn at 100 ms from 300,000.
        let at = |now_ms: u64| line_value(100 * ms, 300_000, 2_000, now_ms * ms);
        assert_eq!(at(100), 300_000);
        assert_eq!(at(110), 320_000);
        assert_eq!(at(150), 400_000);
        // Before it was drawn (a clock read just before): where it was drawn.
        assert_eq!(at(90), 300_000);
        // Never past the goal.
        assert_eq!(at(10_000), PACE_GOAL);
        // Drawn past the goal (a late flush): it holds where it was drawn.
        assert_eq!(line_value(ms, 900_000, 0, 50 * ms), 900_000);
        // 550,000 millionths to the goal in 100 ms left.
        assert_eq!(line_rate(300_000, 100 * ms), 5_500);
        assert_eq!(line_rate(PACE_GOAL + 1, 100 * ms), 0);
        // 200 ms expected: the rest of it; from half of it, the time so far; at least 1 ms.
        assert_eq!(flush_left_ns(200 * ms, 50 * ms), 150 * ms);
        assert_eq!(flush_left_ns(200 * ms, 150 * ms), 150 * ms);
        assert_eq!(flush_left_ns(200 * ms, 400 * ms), 400 * ms);
        assert_eq!(flush_left_ns(0, 0), ms);
        // A slower flush is believed at once, a quicker one half way.
        assert_eq!(next_expect_ns(100 * ms, 300 * ms), 300 * ms);
        assert_eq!(next_expect_ns(300 * ms, 100 * ms), 200 * ms);
        assert_eq!(next_expect_ns(0, 100 * ms), 100 * ms);
        // A flush's first share of its expected length, with nothing timed yet.
        assert_eq!(flush_guess_ns(384 << 20), 1_000_000_000);
    }
}
