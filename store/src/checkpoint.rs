//! The checkpoint: make the index state at one LSN and every entry it references durable,
//! publish them with a new superblock, then let the journal half and the blocks freed before that
//! LSN be reused. Writers do not wait for the flush (SPEC.md §5):
//!
//! 1. **Freeze** (`freeze`, under the write lock, O(bitmap words), no I/O): record L, the last
//!    LSN; mark the pages the target index copy (the one the durable superblock does not name)
//!    lacks of the live copy's state (the pages changed since the target's own state: two dirty
//!    bitmaps); switch the journal to the other half (epoch + 1). Writers go on at once in the
//!    new half and the live copy, which never moves. The marked pages are copied under the
//!    write lock in bounded slices: by a writer about to change one (copy before write), a few
//!    by each commit, and the rest by the flusher, which takes the lock for a slice at a time.
//! 2. **Flush** (`Inner::flush_frozen`, under the checkpoint mutex only): `msync` the heap (not
//!    the live copy), then write the superblock copy of epoch + 1 (ckpt_lsn = L, the target as
//!    durable) and `msync` it: the commit point. Idempotent, so whoever takes the mutex after a
//!    flusher died simply runs it again.
//! 3. **Complete** (`complete`, under the write lock, O(1)): the superblock is durable; adopt it
//!    (epoch, ckpt_lsn, durable copy) and let the blocks freed before L join the free lists, a
//!    few per commit (`reclaim_some`).
//!
//! The flush runs in the background thread (`Options::background_checkpoints`) or, without one
//! (PHP), in the next write, before it takes the write lock (`flush_before_write`). Only a writer
//! that finds the new half full before the flush is done waits for it (`settle`).
//! `checkpoint` runs all three at once under the lock: `Store::checkpoint`, the last close,
//! recovery, a resize, and a store without room.

use crate::error::Result;
use crate::format::*;
use crate::lock_file::{Locked, DIRTY_WORDS};
use crate::store::Inner;
use crate::write::{LockHeld, WriteTxn};
use std::sync::atomic::Ordering::*;

/// Blocks moved from the pending ring into the reuse map by each commit (more than one put
/// frees), and at most as many from the free lists.
const RECLAIM_PER_COMMIT: usize = 8;
/// Index pages a commit copies into a frozen checkpoint's target copy: few, since each page is a
/// few microseconds added to that commit (the flusher copies the rest).
pub(crate) const COPY_PER_COMMIT: usize = 2;
/// Index pages the flusher copies per hold of the write lock: a short hold, since writers wait
/// for it.
const COPY_PER_SLICE: usize = 16;
/// The smallest slice of the heap one `msync` of a checkpoint flushes (see `flush_paced`).
const FLUSH_SLICE_MIN: u64 = 8 << 20;
/// Paced flush (`in_pieces`): how long one call (a write-back or an `msync`) should take, about
/// what it adds to the journal `fdatasync` that waits behind it: the longer of this and the
/// journal's own recent syncs (up to `WRITE_BACK_CALL_MAX`), so that on a slow disk the flush,
/// which takes turns with the syncs, still gets about half of it; and the bounds of its range,
/// which adapts to how many dirty pages the heap holds where (the largest kept small enough that
/// one call into a dense stretch after a clean one stays short).
const WRITE_BACK_CALL: std::time::Duration = std::time::Duration::from_micros(100);
const WRITE_BACK_CALL_MAX: std::time::Duration = std::time::Duration::from_millis(2);
const WRITE_BACK_MIN: u64 = 64 << 10;
const WRITE_BACK_MAX: u64 = 8 << 20;
/// Paced flush: how often it looks whether the journal syncs it yields to are done, and how
/// long it waits for one at most. A sync takes ~100 µs; none finishing for this long means the
/// count holds a writer killed between asking and finishing (or a disk so slow that yielding
/// no longer matters), which the rest of the flush then ignores.
const SYNC_POLL: std::time::Duration = std::time::Duration::from_micros(20);
const SYNC_YIELD_MAX: std::time::Duration = std::time::Duration::from_millis(10);
/// A journal `fdatasync` this recent (by any process) means durable writers share the disk.
const DURABLE_WRITERS_MS: u64 = 1000;

impl WriteTxn<'_> {
    /// A whole checkpoint of the current state, synchronously. The caller holds the write lock.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.check_poison()?;
        self.check_data_file_identity()?;
        self.settle()?;
        self.freeze()?;
        self.settle()?;
        self.reclaim()
    }

    /// Finishes the checkpoint in flight, if any: waits for its flush (or runs it, when no one
    /// is), then completes it.
    pub(crate) fn settle(&self) -> Result<()> {
        if !self.in_flight() {
            return Ok(());
        }
        let h = self.lock_file.state();
        if h.flushed_epoch.load(Acquire) < h.journal_epoch.load(Relaxed) {
            let since = crate::write::mono_ns();
            while self.copy_some(usize::MAX)? {}
            let claim = self.claim_checkpoint(true)?.expect("a waiting claim");
            self.flush_frozen(&claim, since)?;
        }
        self.complete().map(|_| ())
    }

    /// Adopts the checkpoint in flight once its superblock is durable. Returns whether it did.
    pub(crate) fn complete(&self) -> Result<bool> {
        let h = self.lock_file.state();
        let target = h.journal_epoch.load(Relaxed);
        if !self.in_flight() || h.flushed_epoch.load(Acquire) < target {
            return Ok(false);
        }
        let lsn = h.frozen_lsn.load(Relaxed);
        h.sb_crc.store(h.flushed_sb_crc.load(Relaxed), Relaxed);
        h.epoch.store(target, Relaxed);
        h.ckpt_lsn.store(lsn, Relaxed);
        h.durable_lsn.fetch_max(lsn, AcqRel);
        h.durable_copy
            .store(1 - h.durable_copy.load(Relaxed), Relaxed);
        h.checkpoints.fetch_add(1, Relaxed);
        if self.lock_file.backup_pinned() {
            // A backup is copying the entries its consistent point named (SPEC.md §7.3): hand
            // none of the blocks freed since out again. They stay in the ring, waiting with
            // those of the next freeze, and the first completion after the backup releases them
            // all (a block freed before an older checkpoint may be reused after any newer one),
            // with no walk of the index. Only a ring that fills while pinned is dropped
            // (`make_pending_room`).
            return Ok(true);
        }
        // From here the blocks freed before the freeze may be handed out again. A lock-free
        // reader that found one of them before it was freed must notice (SPEC.md §6.3): the
        // release moves `seq`, so a read that spans it starts over. A read that starts after it
        // cannot reach these blocks through the live index any more.
        self.exclude_readers(|| {
            h.release_frozen_pending(self.held());
            if h.pending_overflowed() {
                // Some freed blocks are in no list: find them by walking the index (rare).
                self.rebuild_free_lists()?;
            }
            Ok(true)
        })
    }

    /// Freezes the state at the last LSN for a checkpoint (none may be in flight): marks the
    /// pages the target copy lacks, and moves the journal on to the other half.
    pub(crate) fn freeze(&self) -> Result<()> {
        debug_assert!(!self.in_flight());
        let h = self.lock_file.state();
        // The one step that can fail, before anything changes: a failed freeze leaves the
        // bitmaps as they were.
        let file_size = self.map.whole_len()?;
        let pages = index_len(h.index_slots.load(Relaxed)).div_ceil(PAGE);
        let words = DIRTY_WORDS.min(pages.div_ceil(64) as usize);
        let mut left = 0;
        for w in 0..words {
            let now = h.dirty[w].load(Relaxed);
            // Only pages the index has (a rebuild marks whole words).
            let valid = pages - w as u64 * 64;
            let mask = if valid >= 64 {
                u64::MAX
            } else {
                (1 << valid) - 1
            };
            let bits = (now | h.dirty_prev[w].load(Relaxed)) & mask;
            h.to_copy[w].store(bits, Relaxed);
            left += bits.count_ones() as u64;
            h.dirty_prev[w].store(now, Relaxed);
            h.dirty[w].store(0, Relaxed);
        }
        h.copy_left.store(left, Release);
        h.copy_cursor.store(0, Relaxed);
        // No flush of this checkpoint has started: writers pace against zero progress, and no
        // line an earlier flush may have left (one that failed) until its flusher draws one.
        h.line_at.store(0, Relaxed);
        h.flush_total.store(0, Relaxed);
        h.flush_done.store(0, Relaxed);
        let epoch = h.epoch.load(Relaxed);
        h.frozen_lsn.store(h.next_lsn.load(Relaxed) - 1, Relaxed);
        h.frozen_heap_end.store(h.heap_end(), Relaxed);
        h.frozen_generation
            .store(h.generation.load(Relaxed), Relaxed);
        h.frozen_max_size.store(h.max_size.load(Relaxed), Relaxed);
        h.frozen_file_size.store(file_size, Relaxed);
        h.freeze_pending(self.held());
        h.journal_pos.store(0, Relaxed);
        // Last: the flusher reads the fields above once it sees the new epoch.
        h.journal_epoch.store(epoch + 1, Release);
        Ok(())
    }

    /// Before the live index page at `pos` changes: if the frozen checkpoint's target still
    /// lacks it, copies it now (copy before write).
    #[inline]
    pub(crate) fn before_index_write(&self, pos: u64) -> Result<()> {
        let h = self.lock_file.state();
        if h.copy_left.load(Relaxed) == 0 {
            return Ok(());
        }
        let page = (pos - h.live_index.load(Relaxed)) / PAGE;
        self.copy_page(page)
    }

    /// Copies `page` of the live copy into the target copy if it is still marked.
    fn copy_page(&self, page: u64) -> Result<()> {
        let h = self.lock_file.state();
        let (word, bit) = ((page / 64) as usize, 1u64 << (page % 64));
        if h.to_copy[word].load(Relaxed) & bit == 0 {
            return Ok(());
        }
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let target = h.index[1 - h.durable_copy.load(Relaxed) as usize].load(Relaxed);
        let bytes = index_len(slots);
        debug_assert!(page * PAGE < bytes, "page {page} past the index");
        let len = PAGE.min(bytes.saturating_sub(page * PAGE));
        self.map
            .copy(self.held(), live + page * PAGE, target + page * PAGE, len)?;
        h.to_copy[word].fetch_and(!bit, Relaxed);
        // Release: a flusher that reads 0 sees every copied byte.
        h.copy_left.fetch_sub(1, Release);
        Ok(())
    }

    /// Copies up to `n` marked pages; returns whether some are left.
    pub(crate) fn copy_some(&self, n: usize) -> Result<bool> {
        let h = self.lock_file.state();
        let mut done = 0;
        let mut w = h.copy_cursor.load(Relaxed) as usize;
        while done < n && h.copy_left.load(Relaxed) > 0 && w < DIRTY_WORDS {
            let bits = h.to_copy[w].load(Relaxed);
            if bits == 0 {
                w += 1;
                continue;
            }
            self.copy_page(w as u64 * 64 + bits.trailing_zeros() as u64)?;
            done += 1;
        }
        h.copy_cursor.store(w as u64, Relaxed);
        Ok(h.copy_left.load(Relaxed) > 0)
    }

    /// Moves every block no durable checkpoint references any more into the reuse map.
    pub(crate) fn reclaim(&self) -> Result<()> {
        while self.reclaim_one()? {}
        Ok(())
    }

    /// A few of them, the bounded share of each commit (an allocation that finds no room moves
    /// more, `alloc`).
    pub(crate) fn reclaim_some(&self) -> Result<()> {
        // Into the reuse map (bits in the lock file, nothing written into the blocks), so that
        // the next-fit sweep sees them soon; and a few blocks of the free lists an open from a
        // snapshot left (a link read each).
        for _ in 0..RECLAIM_PER_COMMIT {
            if !self.reclaim_one()? {
                break;
            }
        }
        self.migrate_free_lists(RECLAIM_PER_COMMIT)?;
        Ok(())
    }

    /// One of them; false when there is none.
    pub(crate) fn reclaim_one(&self) -> Result<bool> {
        let h = self.lock_file.state();
        match h.take_reclaimable(self.held()) {
            Some(s) => {
                self.push(crate::alloc::BlockOffset::of_slot(s), slot_class(s))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Marks every page of an index of `slots` slots as changed in both dirty bitmaps (and no other
/// bit): the next two checkpoints then copy each checkpoint copy whole.
pub(crate) fn mark_whole_index(h: &crate::lock_file::LockState, slots: u64) {
    let pages = index_len(slots).div_ceil(PAGE);
    for (i, (w, p)) in h.dirty.iter().zip(&h.dirty_prev).enumerate() {
        let valid = pages.saturating_sub(i as u64 * 64).min(64);
        let v = if valid == 64 {
            u64::MAX
        } else {
            (1 << valid) - 1
        };
        w.store(v, Relaxed);
        p.store(v, Relaxed);
    }
}

/// The checkpoint mutex, held: the right to flush a frozen checkpoint and write its superblock.
pub(crate) struct CkptClaim<'a> {
    inner: &'a Inner,
    held: LockHeld,
}

impl Drop for CkptClaim<'_> {
    fn drop(&mut self) {
        let me = self.inner as *const Inner as usize;
        CLAIMED.with(|c| c.borrow_mut().retain(|&x| x != me));
        self.inner.lock_file.state().ckpt_mutex.unlock();
    }
}

thread_local! {
    /// The store (its `Inner`'s address; 0: none) whose background checkpoint thread this
    /// thread is. Told by a thread-local, not by `Checkpointer::running` under its mutex: a
    /// child forked while this thread held that mutex would find it locked for good.
    static FLUSHER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The store (its `Inner`'s address; 0: none) whose journal sync mutex this thread holds for
    /// a piece of a paced flush (`piece_between_syncs`).
    static SYNC_HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Stores whose checkpoint mutex this thread holds: a write made from inside a flush (a
    /// test's storage seam can do that) must be refused, not wait for the mutex it holds.
    static CLAIMED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Inner {
    /// Whether this thread holds this store's checkpoint mutex.
    pub(crate) fn claimed_here(&self) -> bool {
        let me = self as *const Inner as usize;
        CLAIMED.with(|c| c.borrow().contains(&me))
    }

    /// Whether a checkpoint is frozen and not yet completed.
    pub(crate) fn in_flight(&self) -> bool {
        let h = self.lock_file.state();
        h.journal_epoch.load(Acquire) != h.epoch.load(Relaxed)
    }

    /// Whether the frozen checkpoint's target copy still lacks pages.
    pub(crate) fn copy_pending(&self) -> bool {
        self.lock_file.state().copy_left.load(Acquire) > 0
    }

    /// Without the write lock: completes the frozen checkpoint's copy, a slice per hold of the
    /// lock, then flushes it (unless someone else is; with `wait`, after them).
    pub(crate) fn copy_and_flush(&self, wait: bool) -> Result<()> {
        // Writers pace from here (the copy is part of the flush they wait for), unless durable
        // writers share the disk: then the bytes flushed advance smoothly enough.
        let since = crate::write::mono_ns();
        if self.flush_due() && self.copy_pending() && !self.durable_writers() {
            self.draw_line(since);
        }
        self.prefault_target();
        while self.flush_due() && self.copy_pending() {
            let txn = self.lock()?;
            if txn.in_flight() {
                txn.copy_some(COPY_PER_SLICE)?;
            }
        }
        if let Some(claim) = self.claim_checkpoint(wait)? {
            self.flush_frozen(&claim, since)?;
        }
        Ok(())
    }

    /// Without the write lock: takes the write faults of the target copy's pages still to be
    /// copied, in runs of consecutive pages, so that the copies made under the lock (by the
    /// flusher and by writers) do not fault: the last checkpoint's flush write-protected them.
    /// Only the marked pages, which are written in this checkpoint anyway. The target copy and
    /// the marks do not move while the checkpoint is in flight; a race only costs a fault.
    fn prefault_target(&self) {
        let h = self.lock_file.state();
        if !self.flush_due() || !self.copy_pending() {
            return;
        }
        let target = h.index[1 - h.durable_copy.load(Relaxed) as usize].load(Relaxed);
        let pages = index_len(h.index_slots.load(Relaxed)).div_ceil(PAGE);
        let words = DIRTY_WORDS.min(pages.div_ceil(64) as usize);
        let mut run: Option<(u64, u64)> = None;
        for w in 0..words {
            let mut bits = h.to_copy[w].load(Relaxed);
            while bits != 0 {
                let page = w as u64 * 64 + bits.trailing_zeros() as u64;
                bits &= bits - 1;
                run = match run {
                    Some((first, n)) if first + n == page => Some((first, n + 1)),
                    Some((first, n)) => {
                        self.map.prefault_write(target + first * PAGE, n * PAGE);
                        Some((page, 1))
                    }
                    None => Some((page, 1)),
                };
            }
        }
        if let Some((first, n)) = run {
            self.map.prefault_write(target + first * PAGE, n * PAGE);
        }
    }

    /// Whether a frozen checkpoint still waits for its flush.
    pub(crate) fn flush_due(&self) -> bool {
        let h = self.lock_file.state();
        let target = h.journal_epoch.load(Acquire);
        target == h.epoch.load(Relaxed) + 1 && h.flushed_epoch.load(Acquire) < target
    }

    /// Takes the checkpoint mutex; with `wait` false, None when someone else holds it. A holder
    /// that died left nothing half done that matters: the flush is run again from the start.
    pub(crate) fn claim_checkpoint(&self, wait: bool) -> Result<Option<CkptClaim<'_>>> {
        if self.claimed_here() {
            return Err(crate::Error::Reentrant);
        }
        let m = &self.lock_file.state().ckpt_mutex;
        let got = if wait {
            Some(m.lock(&self.path)?)
        } else {
            m.try_lock(&self.path)?
        };
        Ok(got.map(|state| {
            if let Locked::OwnerDied = state {
                m.consistent();
            }
            CLAIMED.with(|c| c.borrow_mut().push(self as *const Inner as usize));
            CkptClaim {
                inner: self,
                held: LockHeld::for_checkpoint(),
            }
        }))
    }

    /// Step 2: makes the frozen checkpoint durable, if one waits for it. Writers keep
    /// committing meanwhile: nothing they write is needed (they append to the other journal
    /// half, change only the live index copy, and write only blocks no checkpoint references).
    /// `since`: when the work for it began (its copy), which its timing counts from.
    pub(crate) fn flush_frozen(&self, claim: &CkptClaim<'_>, since: u64) -> Result<()> {
        // Not before the target copy is complete (its last pages are copied under the lock).
        if !self.flush_due() || self.copy_pending() {
            return Ok(());
        }
        self.check_poison()?;
        let h = self.lock_file.state();
        let target = h.journal_epoch.load(Acquire);
        // Fixed until this flush is done: `complete` waits for it, and whatever changes the
        // index copies settles the checkpoint in flight first.
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let durable_copy = 1 - h.durable_copy.load(Relaxed);
        let index = [h.index[0].load(Relaxed), h.index[1].load(Relaxed)];
        let file_size = h.frozen_file_size.load(Relaxed);
        if self.map.len() < file_size {
            self.map.refresh_len()?;
        }
        // The heap but the live copy: it changes all the time and no checkpoint names it.
        let live_end = live + index_block_len(slots);
        let ranges = [
            (HEAP_START, live - HEAP_START),
            (live_end, file_size.saturating_sub(live_end)),
        ];
        let mut stale = 0;
        let paced = self.flush_paced(&ranges, &mut stale, since)?;
        let index_crc = self.index_crc(index[durable_copy as usize], slots)?;
        let sb = Superblock {
            epoch: target,
            ckpt_lsn: h.frozen_lsn.load(Relaxed),
            file_size,
            // The live limit as frozen: a resize becomes durable in a checkpoint (SPEC.md §9).
            max_size: h.frozen_max_size.load(Relaxed),
            heap_end: h.frozen_heap_end.load(Relaxed),
            index,
            live,
            index_slots: slots,
            durable_copy,
            generation: h.frozen_generation.load(Relaxed),
            journal_size: self.journal.size,
            created_ms: h.created_ms.load(Relaxed),
            index_crc,
        };
        // Never publish a superblock the next open would refuse (say, processes that reserved
        // different maximum sizes disagree about the heap): fail this checkpoint instead.
        sb.check(file_size).map_err(|problem| {
            crate::Error::corrupt(
                &self.map.path,
                crate::CorruptKind::RefusedSuperblock {
                    epoch: target,
                    problem,
                },
            )
        })?;
        let at = SUPERBLOCK_OFFSETS[(target % 2) as usize];
        let bytes = sb.encode();
        self.map.write(&claim.held, at, &bytes)?;
        if paced && !self.ephemeral {
            // Its cache flush takes turns with the journal's syncs too, like the heap's pieces.
            self.piece_between_syncs(&mut stale, || self.flush(at, SUPERBLOCK_LEN as u64))?;
        } else {
            self.flush(at, SUPERBLOCK_LEN as u64)?;
        }
        h.flushed_sb_crc
            .store(crc32c::crc32c(&bytes) as u64, Relaxed);
        h.flushed_epoch.store(target, Release);
        // The older superblock no longer describes a whole store once blocks freed in this
        // cycle are reused; only media damage to the newer copy could make an open fall back to
        // it, and then the open must report, not guess. Zeros, unflushed: the newer copy is
        // durable already, so whether they reach the disk does not matter for a crash.
        let older = SUPERBLOCK_OFFSETS[((target + 1) % 2) as usize];
        self.map.write(&claim.held, older, &[0u8; SUPERBLOCK_LEN])?;
        Ok(())
    }

    /// Flushes `ranges` of the data file in order, a slice at a time, publishing how much is
    /// done (`flush_done` of `flush_total`) and, before each slice, a pace line (`draw_line`,
    /// timed from `since`): writers pace themselves against them (SPEC.md §5).
    /// The slices are large (a sixteenth of the whole, at least `FLUSH_SLICE_MIN`) because each
    /// `msync` also flushes the disk's cache once. When durable writers share the disk, the heap
    /// is instead written back in small pieces, then made durable in small pieces (`in_pieces`,
    /// each pass half of the progress). Returns whether it went in pieces; `stale`: see
    /// `yield_to_syncs`.
    fn flush_paced(&self, ranges: &[(u64, u64)], stale: &mut u64, since: u64) -> Result<bool> {
        let h = self.lock_file.state();
        let total: u64 = ranges.iter().map(|r| r.1).sum();
        let slice = (total / 16).max(FLUSH_SLICE_MIN).next_multiple_of(PAGE);
        let paced = self.durable_writers();
        // A line drawn for the copy is the non-durable flush's alone (redrawn below).
        h.line_at.store(0, Release);
        h.flush_done.store(0, Relaxed);
        h.flush_total
            .store(if paced { 2 * total } else { total }, Release);
        if paced {
            // Twice over the heap in small pieces: written back, then made durable (the second
            // pass writes only the pages written since, and flushes the disk's cache).
            self.in_pieces(ranges, stale, false, |off, len| {
                self.map.write_back(off, len)
            })?;
            self.in_pieces(ranges, stale, true, |off, len| self.map.sync(off, len))?;
            return Ok(true);
        }
        let slices = || -> Result<()> {
            for &(mut off, mut len) in ranges {
                while len > 0 {
                    self.draw_line(since);
                    let n = len.min(slice);
                    self.flush(off, n)?;
                    h.flush_done.fetch_add(n, Release);
                    // Between slices, the pages the flush has passed that writers fill next.
                    self.prefault_ahead();
                    (off, len) = (off + n, len - n);
                }
            }
            Ok(())
        };
        let done = slices();
        // No line outlives its flush, also one that failed.
        h.line_at.store(0, Release);
        done?;
        let took = crate::write::mono_ns().saturating_sub(since);
        let expect = h.flush_last_ns.load(Relaxed);
        h.flush_last_ns
            .store(crate::write::next_expect_ns(expect, took), Relaxed);
        Ok(false)
    }

    /// Before the copy and each slice of a non-durable flush begun at `since`: draws the pace
    /// line writers follow (`runway_allowed`) again, from the runway they have used to
    /// `PACE_GOAL` in the time the flush is expected to have left (`flush_left_ns`), by the
    /// flushes so far (`flush_last_ns`: a slower one believed at once, a quicker one half way);
    /// the bytes flushed are no guide (dirty pages are dense in some slices and absent from
    /// others). Drawn from where the writers are, not where the last line was, and re-aimed at
    /// every slice: a flush running late slows writers early and a little (ever slower lines,
    /// never one that stops), not late and hard.
    fn draw_line(&self, since: u64) {
        let h = self.lock_file.state();
        let now = crate::write::mono_ns();
        let used = self.runway_used();
        let expect = match h.flush_last_ns.load(Relaxed) {
            // Nothing timed yet: the frozen heap at a guessed rate.
            0 => crate::write::flush_guess_ns(
                h.frozen_file_size.load(Relaxed).saturating_sub(HEAP_START),
            ),
            last => last,
        };
        let left = crate::write::flush_left_ns(expect, now.saturating_sub(since));
        let rate = crate::write::line_rate(used, left);
        // Cleared first: a writer that reads the line while it is redrawn falls back to the
        // bytes flushed.
        h.line_at.store(0, Relaxed);
        std::sync::atomic::fence(Release);
        h.line_from.store(used, Relaxed);
        h.line_rate.store(rate, Relaxed);
        h.line_at.store(now, Release);
    }

    /// Whether durable writers share the disk with this flush: this handle is `Sync`, or some
    /// process made the journal durable within the last `DURABLE_WRITERS_MS`. Their
    /// `fdatasync`s would otherwise queue behind the heap's write-back (SPEC.md §5). Not for a
    /// flush run under the write lock (a synchronous checkpoint, or a writer that found its half
    /// full): no writer commits until it is done, so it goes as fast as it can.
    pub(crate) fn durable_writers(&self) -> bool {
        if self.write_lock_held_here() {
            return false;
        }
        let last = self.lock_file.state().last_sync_ms.load(Relaxed);
        self.durability == crate::Durability::Sync
            || crate::store::now_ms().saturating_sub(last) < DURABLE_WRITERS_MS
    }

    /// Runs `op` (a write-back or an `msync`) over `ranges` a small piece at a time, so that no
    /// more than about one `WRITE_BACK_CALL` of write-back is ever queued ahead of a durable
    /// writer's `fdatasync`: each piece's range is doubled after a quick call and halved after a
    /// slow one (dirty pages are dense in places, absent in others), and each runs between the
    /// journal's syncs, never beside one (`piece_between_syncs`). Publishes its progress; a
    /// failure poisons the handle (the pages may count as clean now). `stale`: see
    /// `yield_to_syncs`; `flushes`: each call also flushes the disk's cache (an `msync`).
    fn in_pieces(
        &self,
        ranges: &[(u64, u64)],
        stale: &mut u64,
        flushes: bool,
        op: impl Fn(u64, u64) -> Result<()>,
    ) -> Result<()> {
        let h = self.lock_file.state();
        let mut step = WRITE_BACK_MIN;
        // The journal's syncs of late, smoothed (one can be far off the others).
        let mut sync_ns = WRITE_BACK_CALL.as_nanos() as u64;
        for &(mut off, mut len) in ranges {
            while len > 0 {
                let n = len.min(step);
                if !self.ephemeral {
                    let took = self.piece_between_syncs(stale, || op(off, n))?;
                    sync_ns = (sync_ns * 7 + h.last_sync_ns.load(Relaxed)) / 8;
                    let recent = std::time::Duration::from_nanos(sync_ns);
                    let call = recent.clamp(WRITE_BACK_CALL, WRITE_BACK_CALL_MAX);
                    // An `msync` also flushes the disk's cache, which costs about a journal
                    // sync whatever the range: only the time beyond that is write-back (else
                    // the second pass would crawl in the smallest pieces, one flush each).
                    let took = if flushes {
                        took.saturating_sub(recent.min(WRITE_BACK_CALL_MAX))
                    } else {
                        took
                    };
                    step = if took < call / 2 {
                        (step * 2).min(WRITE_BACK_MAX)
                    } else if took > call {
                        (step / 2).max(WRITE_BACK_MIN)
                    } else {
                        step
                    };
                }
                h.flush_done.fetch_add(n, Release);
                (off, len) = (off + n, len - n);
            }
        }
        Ok(())
    }

    /// One piece of a paced flush, holding the journal's sync mutex: no `fdatasync` of the
    /// journal starts or runs beside it (on a disk without I/O priorities, one that did would
    /// queue behind the piece's writes and its cache flush would wait for all of them). Before
    /// taking the mutex, the syncs asked for while the last piece held it go first, so each
    /// waits behind one piece at most. Returns how long `op` took; a failure poisons.
    fn piece_between_syncs(
        &self,
        stale: &mut u64,
        op: impl FnOnce() -> Result<()>,
    ) -> Result<std::time::Duration> {
        /// Lets the mutex go and forgets the hold, also when `op` panics (a test's seam).
        struct Hold<'a>(&'a Inner);
        impl Drop for Hold<'_> {
            fn drop(&mut self) {
                SYNC_HELD.with(|c| c.set(0));
                self.0.lock_file.state().sync_mutex.unlock();
            }
        }
        self.yield_to_syncs(stale);
        let m = &self.lock_file.state().sync_mutex;
        if let Locked::OwnerDied = m.lock(&self.path)? {
            // Nothing to repair: a writer that died there only had not moved durable_lsn yet.
            m.consistent();
        }
        SYNC_HELD.with(|c| c.set(self as *const Inner as usize));
        let hold = Hold(self);
        let t = std::time::Instant::now();
        let r = op();
        let took = t.elapsed();
        drop(hold);
        r.inspect_err(|e| self.poison(e))?;
        Ok(took)
    }

    /// Waits until no journal sync asked for is left, or one finished since this call began
    /// (the writers that were queued behind the last piece have had theirs: the next piece
    /// goes right after it, when the disk is quietest), sleeping `SYNC_POLL` at a time. `stale`
    /// is how many of those asked are taken to be writers that died between asking and
    /// finishing: when none finishes within `SYNC_YIELD_MAX`, all then waiting are, for the
    /// rest of this flush.
    fn yield_to_syncs(&self, stale: &mut u64) {
        let h = self.lock_file.state();
        let start = std::time::Instant::now();
        let done_before = h.sync_done.load(Acquire);
        loop {
            let done = h.sync_done.load(Acquire);
            // `asked` read after `done`: it can only be larger, so nobody is missed.
            let waiting = h.sync_asked.load(Acquire).saturating_sub(done);
            *stale = (*stale).min(waiting);
            if waiting <= *stale || done != done_before {
                return;
            }
            if start.elapsed() >= SYNC_YIELD_MAX {
                *stale = waiting;
                return;
            }
            std::thread::sleep(SYNC_POLL);
        }
    }

    /// Whether this thread is this store's background checkpoint thread.
    pub(crate) fn on_own_flusher(&self) -> bool {
        FLUSHER_OF.with(|c| c.get() == self as *const Inner as usize)
    }

    /// Whether this thread holds the journal's sync mutex for a piece of this store's paced
    /// flush: a write made from inside that piece (a storage seam's) must not take it again.
    pub(crate) fn sync_held_here(&self) -> bool {
        SYNC_HELD.with(|c| c.get() == self as *const Inner as usize)
    }

    /// Outside the write lock, after a commit: wakes this process's background thread (starting
    /// it if need be) when a frozen checkpoint waits for its flush.
    pub(crate) fn maybe_flush(&self) {
        if self.flush_due() {
            if let Some(t) = self.checkpointer.own_thread() {
                t.unpark();
            }
        }
    }

    /// Before a write takes the write lock: when a frozen checkpoint waits for its flush, wakes
    /// this process's background thread or, on a handle without one, flushes it here unless
    /// someone else is (or this thread is, from inside that flush). Here, before anything is
    /// written, a failed flush is this write's error (and poisons the handle); the write that
    /// froze the checkpoint had already committed.
    pub(crate) fn flush_before_write(&self) -> Result<()> {
        if !self.flush_due() || self.claimed_here() {
            return Ok(());
        }
        if let Some(t) = self.checkpointer.own_thread() {
            t.unpark();
            return Ok(());
        }
        self.flushes_by_writes.fetch_add(1, Relaxed);
        self.copy_and_flush(false)
    }

    pub(crate) fn index_crc(&self, copy: u64, slots: u64) -> Result<u64> {
        let mut crc = 0;
        let mut buf = vec![0u8; PAGE as usize];
        for page in 0..index_len(slots).div_ceil(PAGE) {
            let len = PAGE.min(index_len(slots) - page * PAGE) as usize;
            self.map.read(copy + page * PAGE, &mut buf[..len])?;
            crc = crc32c::crc32c_append(crc, &buf[..len]);
        }
        Ok(crc as u64)
    }

    /// msync that poisons the store on failure: after a failed flush the kernel may have marked
    /// the dirty pages clean without writing them, so a retry that succeeds proves nothing.
    pub(crate) fn flush(&self, off: u64, len: u64) -> Result<()> {
        if self.ephemeral || len == 0 {
            return Ok(());
        }
        self.map.sync(off, len).inspect_err(|e| self.poison(e))
    }
}

/// A handle's background checkpoint thread (`Options::background_checkpoints`): one per process
/// using the handle, started by the first write of that process that finds a checkpoint waiting
/// for its flush, not at open. So a process that never writes (a PHP-FPM master that opened the
/// anonymous store before forking its workers) never has one, and a child forked after the
/// thread started, which inherits the handle but not the thread, starts its own.
pub(crate) struct Checkpointer {
    /// The option, cleared for good by `stop`.
    wanted: std::sync::atomic::AtomicBool,
    /// The handle's read view, for the thread (set once the handle is in its `Arc`).
    inner: std::sync::OnceLock<std::sync::Weak<Inner>>,
    running: std::sync::Mutex<Option<Running>>,
}

struct Running {
    /// The process that started it: in a forked child the thread does not exist.
    pid: u32,
    thread: std::thread::JoinHandle<()>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Checkpointer {
    pub(crate) fn new(wanted: bool) -> Checkpointer {
        Checkpointer {
            wanted: wanted.into(),
            inner: std::sync::OnceLock::new(),
            running: std::sync::Mutex::new(None),
        }
    }

    /// Gives the thread its handle; until then none is started.
    pub(crate) fn attach(&self, inner: std::sync::Weak<Inner>) {
        let _ = self.inner.set(inner);
    }

    /// This process's thread, started now if the handle wants one and this process has none
    /// running (never started, started by the parent of this forked child, or ended by a
    /// panic). None without one: the caller flushes itself.
    pub(crate) fn own_thread(&self) -> Option<std::thread::Thread> {
        if !self.wanted.load(Relaxed) {
            return None;
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        // Again under the lock: a `stop` that ran since must not be followed by a new thread.
        if !self.wanted.load(Relaxed) {
            return None;
        }
        let me = crate::pid::current();
        match running.take() {
            Some(r) if r.pid == me && !r.thread.is_finished() => {
                let t = r.thread.thread().clone();
                *running = Some(r);
                return Some(t);
            }
            Some(r) if r.pid != me => {
                // The parent's thread: it exists only there, and joining it would wait for good.
                std::mem::forget(r.thread);
            }
            Some(r) => {
                let _ = r.thread.join();
            }
            None => {}
        }
        let inner = self.inner.get()?.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("apcdb-ckpt".into())
            .spawn(move || checkpoint_flusher(inner, stop2))
            .ok()?;
        let t = thread.thread().clone();
        *running = Some(Running {
            pid: me,
            thread,
            stop,
        });
        Some(t)
    }

    /// Whether the handle wants a thread (and was not stopped).
    pub(crate) fn wanted(&self) -> bool {
        self.wanted.load(Relaxed)
    }

    /// Stops this process's thread and starts none again (the handle is closing, or the program
    /// is about to unload the code the thread runs: PHP's module shutdown).
    pub(crate) fn stop(&self) {
        let r = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            self.wanted.store(false, Relaxed);
            running.take()
        };
        match r {
            Some(r) if r.pid == crate::pid::current() => {
                r.stop.store(true, Release);
                r.thread.thread().unpark();
                let _ = r.thread.join();
            }
            Some(r) => std::mem::forget(r.thread),
            None => {}
        }
    }
}

/// Flushes frozen checkpoints when a writer wakes it, and now and then in case one was frozen by
/// another process whose flusher died. A panic ends the thread, never the program: the next
/// write that finds a flush due starts another.
fn checkpoint_flusher(
    inner: std::sync::Weak<Inner>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    FLUSHER_OF.with(|c| c.set(inner.as_ptr() as usize));
    while !stop.load(Acquire) {
        std::thread::park_timeout(std::time::Duration::from_millis(100));
        let Some(inner) = inner.upgrade() else { return };
        if inner.flush_due() {
            let _ = inner.copy_and_flush(true);
        }
        inner.prefault_ahead();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{FileKind, MappedRange, Options, RealIo, StorageIo, Store};
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        Written(u64, u64),
        Synced(u64, u64),
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Event>>);

    impl StorageIo for Recorder {
        fn wants_mapped_writes(&self) -> bool {
            true
        }
        fn data_written(&self, off: u64, len: u64) {
            self.0.lock().unwrap().push(Event::Written(off, len));
        }
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            RealIo.sync_map(kind, range)?;
            if kind == FileKind::Data {
                let e = Event::Synced(range.offset(), range.len());
                self.0.lock().unwrap().push(e);
            }
            Ok(())
        }
    }

    fn superblock_in(path: &std::path::Path, copy: usize) -> Superblock {
        let bytes = std::fs::read(path).unwrap();
        let at = SUPERBLOCK_OFFSETS[copy] as usize;
        UncheckedSuperblock::decode(&bytes[at..at + SUPERBLOCK_LEN])
            .unwrap()
            .validate(bytes.len() as u64)
            .unwrap()
    }

    /// One checkpoint after a write; returns the superblock it wrote, and checks the order:
    /// index pages copied into the target copy, the heap flushed around the live copy, then the
    /// superblock and its flush.
    fn checkpoint_once(store: &Store, rec: &Recorder, path: &std::path::Path) -> Superblock {
        let h = store.inner().lock_file.state();
        let before = h.epoch.load(Relaxed);
        let live = h.live_index.load(Relaxed);
        let target = h.index[1 - h.durable_copy.load(Relaxed) as usize].load(Relaxed);
        store.put(format!("k{before}").as_bytes(), b"v").unwrap();
        rec.0.lock().unwrap().clear();
        store.checkpoint().unwrap();
        let events = rec.0.lock().unwrap().clone();

        let epoch = before + 1;
        let at = SUPERBLOCK_OFFSETS[(epoch % 2) as usize];
        let sb_write = events
            .iter()
            .position(|e| *e == Event::Written(at, SUPERBLOCK_LEN as u64))
            .expect("the checkpoint writes the superblock copy its epoch selects");
        let file_len = std::fs::metadata(path).unwrap().len();
        let slots = h.index_slots.load(Relaxed);
        let live_end = live + index_block_len(slots);
        let first_sync = events
            .iter()
            .position(|e| matches!(e, Event::Synced(..)))
            .unwrap();
        assert!(
            events[..first_sync].iter().all(|e| matches!(e,
                Event::Written(off, _) if *off >= target && *off < target + index_len(slots))),
            "only copies into the target index copy come before the flush: {events:?}"
        );
        assert_eq!(
            events[first_sync..sb_write],
            [
                Event::Synced(HEAP_START, live - HEAP_START),
                Event::Synced(live_end, file_len - live_end)
            ],
            "the heap but the live copy is flushed before the superblock: {events:?}"
        );
        assert_eq!(
            events[sb_write + 1],
            Event::Synced(at, SUPERBLOCK_LEN as u64),
            "the superblock is flushed before anything else is written: {events:?}"
        );
        let older = SUPERBLOCK_OFFSETS[((epoch + 1) % 2) as usize];
        assert_eq!(
            events[sb_write + 2],
            Event::Written(older, SUPERBLOCK_LEN as u64),
            "then the older superblock is blanked: {events:?}"
        );
        let sb = superblock_in(path, (epoch % 2) as usize);
        assert_eq!(sb.epoch, epoch);
        // It names the target copy as durable; the live copy did not move.
        assert_eq!(sb.index[sb.durable_copy as usize], target);
        assert_eq!(sb.live, live);
        assert_eq!(h.live_index.load(Relaxed), live);
        assert_eq!(h.epoch.load(Relaxed), epoch);
        assert_eq!(h.journal_epoch.load(Relaxed), epoch);
        assert_eq!(h.journal_pos.load(Relaxed), 0);
        sb
    }

    #[test]
    fn superblock_after_the_data_flush_in_alternate_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let rec = Arc::new(Recorder::default());
        let store = Store::open(&path, Options::default().io(rec.clone())).unwrap();
        let first = checkpoint_once(&store, &rec, &path);
        let second = checkpoint_once(&store, &rec, &path);
        let third = checkpoint_once(&store, &rec, &path);
        assert_eq!(second.epoch, first.epoch + 1);
        assert_eq!(third.epoch, second.epoch + 1);
        // Each checkpoint names the other index copy as durable, and blanks the superblock copy
        // the previous one wrote, once its own is durable.
        assert_ne!(first.durable_copy, second.durable_copy);
        assert_eq!(first.durable_copy, third.durable_copy);
        let at = SUPERBLOCK_OFFSETS[(second.epoch % 2) as usize] as usize;
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[at..at + SUPERBLOCK_LEN].iter().all(|&b| b == 0));
        // The newest copy is the one recovery starts from.
        let bytes = std::fs::read(&path).unwrap();
        let read = |at: u64, b: &mut [u8]| {
            b.copy_from_slice(&bytes[at as usize..at as usize + b.len()]);
            Ok(())
        };
        assert_eq!(
            read_superblock(&path, bytes.len() as u64, read).unwrap(),
            third
        );
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        let last_key = format!("k{}", third.epoch - 1);
        assert_eq!(store.get(last_key.as_bytes()).unwrap(), Some(b"v".to_vec()));
    }

    /// Holds the flush of a superblock (the commit point of a checkpoint) until the test lets it
    /// go, after telling the test it started.
    struct Gate {
        armed: std::sync::atomic::AtomicBool,
        started: Mutex<std::sync::mpsc::Sender<()>>,
        go: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl StorageIo for Gate {
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            if kind == FileKind::Data
                && range.offset() < HEAP_START
                && range.len() == SUPERBLOCK_LEN as u64
                && self.armed.swap(false, SeqCst)
            {
                self.started.lock().unwrap().send(()).unwrap();
                let _ = self
                    .go
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(60));
            }
            RealIo.sync_map(kind, range)
        }
    }

    fn gated(
        journal: u64,
        path: &std::path::Path,
    ) -> (
        Arc<Store>,
        Arc<Gate>,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started_tx, started) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel();
        let gate = Arc::new(Gate {
            armed: false.into(),
            started: Mutex::new(started_tx),
            go: Mutex::new(go_rx),
        });
        let opts = Options::default()
            .durability(crate::Durability::None)
            .journal_size(journal)
            .io(gate.clone());
        (
            Arc::new(Store::open(path, opts).unwrap()),
            gate,
            started,
            go,
        )
    }

    /// The flush of a checkpoint, up to its commit point, runs without the write lock: while the
    /// writer that froze it is held inside the superblock's flush, other writers commit into the
    /// journal's other half, until that half is full; only then does a writer wait, and it
    /// goes on once the checkpoint is durable. Nothing is lost across a reopen.
    #[test]
    fn writers_commit_while_a_checkpoint_flushes_until_the_half_is_full() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (store, gate, started, go) = gated(256 << 10, &path);
        let h = store.inner().lock_file.state();
        let epoch = h.epoch.load(Relaxed);
        gate.armed.store(true, SeqCst);
        let freezer = {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                // Until a put froze a checkpoint (and, after releasing the lock, flushed it).
                while store.inner().lock_file.state().flushed_epoch.load(SeqCst) == epoch {
                    store
                        .put(format!("a{}", i % 100).as_bytes(), &[1; 100])
                        .unwrap();
                    i += 1;
                }
            })
        };
        started
            .recv_timeout(Duration::from_secs(60))
            .expect("a writer flushes the frozen checkpoint");
        assert_eq!(h.journal_epoch.load(SeqCst), epoch + 1);
        let other = {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..2000u64 {
                    store.put(format!("b{i}").as_bytes(), &[2; 100]).unwrap();
                }
            })
        };
        // Commits go on meanwhile, in the new half, until it is full.
        let half = journal_half(256 << 10);
        let mut seen = 0;
        for _ in 0..3000 {
            seen = h.journal_pos.load(SeqCst);
            if other.is_finished() || seen + 1000 > half {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            seen * 2 > half,
            "writers waited for the flush: {seen} of {half} bytes written meanwhile"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert!(!other.is_finished(), "a writer went past the full half");
        assert_eq!(h.epoch.load(SeqCst), epoch, "completed before its flush");
        go.send(()).unwrap();
        other.join().unwrap();
        freezer.join().unwrap();
        assert!(h.epoch.load(SeqCst) > epoch);
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        for i in 0..2000u64 {
            assert_eq!(
                store.get(format!("b{i}").as_bytes()).unwrap(),
                Some(vec![2; 100])
            );
        }
    }

    /// A process killed at any step of a checkpoint (frozen, copying, flushing, its superblock
    /// written but not adopted) leaves what a `kill -9` leaves: the files as they are in the page
    /// cache. A copy of them taken at that moment opens with every acknowledged write and
    /// verifies clean.
    #[test]
    fn a_crash_at_each_step_of_a_checkpoint_loses_nothing() {
        use std::time::Duration;
        for step in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let (store, gate, started, go) = gated(256 << 10, &path);
            let h = store.inner().lock_file.state();
            let epoch = h.epoch.load(Relaxed);
            let mut acked = std::collections::BTreeMap::new();
            let mut i = 0u64;
            let mut put = |store: &Store, acked: &mut std::collections::BTreeMap<_, _>| {
                let (k, v) = (format!("k{}", i % 700), i.to_le_bytes().repeat(12));
                store.put(k.as_bytes(), &v).unwrap();
                acked.insert(k, v);
                i += 1;
            };
            // Steps 0 and 1: frozen, the target copy not complete (no flush yet): the writer
            // that freezes flushes only after it releases the lock, so stop right at the freeze.
            // Steps 2 and 3: in the flush (the superblock written, not flushed) and after it.
            let mut flusher = None;
            if step < 2 {
                while h.journal_epoch.load(SeqCst) == epoch {
                    let txn = store.inner().lock().unwrap();
                    let (k, v) = (format!("k{}", i % 700), i.to_le_bytes().repeat(12));
                    let op = crate::journal::Op::Put {
                        key: k.as_bytes().into(),
                        value: v.as_slice().into(),
                        expires_ms: 0,
                        modified_ms: 0,
                    };
                    txn.commit(&[op]).unwrap();
                    acked.insert(k, v);
                    i += 1;
                }
                assert!(store.inner().copy_pending() || step == 1);
                if step == 1 {
                    // Part of the copy done, and writes in the new half.
                    let txn = store.inner().lock().unwrap();
                    txn.copy_some(3).unwrap();
                    drop(txn);
                    for _ in 0..50 {
                        let txn = store.inner().lock().unwrap();
                        let (k, v) = (format!("k{}", i % 700), i.to_le_bytes().repeat(12));
                        let op = crate::journal::Op::Put {
                            key: k.as_bytes().into(),
                            value: v.as_slice().into(),
                            expires_ms: 0,
                            modified_ms: 0,
                        };
                        txn.commit(&[op]).unwrap();
                        acked.insert(k, v);
                        i += 1;
                    }
                }
            } else {
                gate.armed.store(true, SeqCst);
                let s2 = store.clone();
                flusher = Some(std::thread::spawn(move || {
                    let h = s2.inner().lock_file.state();
                    let mut j = 0u64;
                    while h.flushed_epoch.load(SeqCst) == epoch {
                        s2.put(format!("f{j}").as_bytes(), b"x").unwrap();
                        j += 1;
                    }
                    j
                }));
                started.recv_timeout(Duration::from_secs(60)).unwrap();
                if step == 3 {
                    go.send(()).unwrap();
                    while h.flushed_epoch.load(SeqCst) == epoch {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                for _ in 0..50 {
                    put(&store, &mut acked);
                }
            }
            // The kill: what the page cache holds now.
            let copy = dir.path().join("copy.db");
            for (from, to) in [
                (path.clone(), copy.clone()),
                (
                    crate::files::Paths::new(&path).journal,
                    crate::files::Paths::new(&copy).journal,
                ),
            ] {
                std::fs::copy(from, to).unwrap();
            }
            let _ = go.send(());
            let flushed_keys = flusher.map(|t| t.join().unwrap()).unwrap_or(0);
            drop(store);
            let reopened = Store::open(&copy, Options::default()).unwrap();
            for (k, v) in &acked {
                assert_eq!(
                    reopened.get(k.as_bytes()).unwrap().as_ref(),
                    Some(v),
                    "step {step}: {k}"
                );
            }
            let _ = flushed_keys;
            drop(reopened);
            let report = crate::verify::check(&copy).unwrap();
            assert!(
                report.problems.is_empty(),
                "step {step}: {:?}",
                report.problems
            );
        }
    }

    /// Slows every flush of the heap (not the superblocks) by `delay`, and notes the flush's
    /// published progress as each one starts; notes the paced write-back's pieces too.
    struct SlowHeap {
        delay: std::time::Duration,
        store: std::sync::OnceLock<std::sync::Weak<Store>>,
        seen: Mutex<Vec<(u64, u64, u64, u64)>>,
        written_back: Mutex<Vec<(u64, u64, u64, u64)>>,
        /// The runway writers were allowed as each slice of the heap started and as its delay
        /// ended.
        allowed: Mutex<Vec<(u64, u64)>>,
    }

    impl SlowHeap {
        /// (done, total) of the flush in progress.
        fn progress(&self) -> (u64, u64) {
            match self.store.get().and_then(|s| s.upgrade()) {
                Some(store) => {
                    let h = store.inner().lock_file.state();
                    (h.flush_done.load(SeqCst), h.flush_total.load(SeqCst))
                }
                None => (0, 0),
            }
        }

        /// The runway writers are allowed now.
        fn allowed(&self) -> u64 {
            match self.store.get().and_then(|s| s.upgrade()) {
                Some(store) => store.inner().runway_allowed(),
                None => 0,
            }
        }
    }

    impl StorageIo for SlowHeap {
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            if kind == FileKind::Data && range.offset() >= HEAP_START {
                let (done, total) = self.progress();
                let e = (range.offset(), range.len(), done, total);
                self.seen.lock().unwrap().push(e);
                let before = self.allowed();
                std::thread::sleep(self.delay);
                self.allowed.lock().unwrap().push((before, self.allowed()));
            }
            RealIo.sync_map(kind, range)
        }

        fn write_back(
            &self,
            kind: FileKind,
            file: &std::fs::File,
            off: u64,
            len: u64,
        ) -> std::io::Result<()> {
            let (done, total) = self.progress();
            self.written_back
                .lock()
                .unwrap()
                .push((off, len, done, total));
            RealIo.write_back(kind, file, off, len)
        }
    }

    fn slow_heap(delay_ms: u64) -> Arc<SlowHeap> {
        Arc::new(SlowHeap {
            delay: std::time::Duration::from_millis(delay_ms),
            store: Default::default(),
            seen: Default::default(),
            written_back: Default::default(),
            allowed: Default::default(),
        })
    }

    /// Checks that `pieces` (offset, length, done before, total) cover the heap but the live copy
    /// in file order, publishing `base + done` of `total` before each; returns the bytes.
    fn check_in_order(
        pieces: &[(u64, u64, u64, u64)],
        (live, live_end, file_len): (u64, u64, u64),
        base: u64,
        total: u64,
    ) -> u64 {
        let mut done = 0;
        let mut next = HEAP_START;
        for &(off, len, at_start, of) in pieces {
            if off == live_end && next == live {
                next = live_end;
            }
            assert_eq!(
                off, next,
                "pieces in file order, around the live copy: {pieces:?}"
            );
            assert_eq!(
                (at_start, of),
                (base + done, total),
                "progress before each piece: {pieces:?}"
            );
            done += len;
            next += len;
        }
        assert_eq!(next, file_len, "{pieces:?}");
        done
    }

    /// The heap is flushed in slices, in file order around the live index copy, and before each
    /// one the flush publishes how much of it is done: what writers pace against. Without
    /// durable writers the `msync`s do all of it, in large slices; with them (a `Sync` handle,
    /// or a journal `fdatasync` within the last second by any handle), the heap is first written
    /// back in small pieces (`sync_file_range`, no flush), each about `WRITE_BACK_CALL` long, so
    /// that a writer's `fdatasync` never queues behind much of it (the first half of the
    /// progress), then `msync`ed in small pieces too (the second half).
    #[test]
    fn a_checkpoint_flushes_the_heap_in_slices_and_publishes_its_progress() {
        for mode in ["none", "sync", "none, after a sync()"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let io = slow_heap(0);
            let durability = match mode {
                "sync" => crate::Durability::Sync,
                _ => crate::Durability::None,
            };
            let opts = Options::default()
                .durability(durability)
                .initial_size(64 << 20)
                .io(io.clone());
            let store = Arc::new(Store::open(&path, opts).unwrap());
            io.store.set(Arc::downgrade(&store)).unwrap();
            for i in 0..2000u64 {
                store
                    .put(format!("k{i}").as_bytes(), &[i as u8; 100])
                    .unwrap();
            }
            if mode != "none" {
                store.sync().unwrap();
            }
            io.seen.lock().unwrap().clear();
            io.written_back.lock().unwrap().clear();
            // Frozen under the lock, flushed without it, as the background thread does.
            let inner = store.inner();
            {
                let txn = inner.lock().unwrap();
                txn.settle().unwrap();
                txn.freeze().unwrap();
            }
            inner.copy_and_flush(true).unwrap();
            let seen = io.seen.lock().unwrap().clone();
            let back = io.written_back.lock().unwrap().clone();
            let h = store.inner().lock_file.state();
            let live = h.live_index.load(SeqCst);
            let live_end = live + index_block_len(h.index_slots.load(SeqCst));
            let file_len = std::fs::metadata(&path).unwrap().len();
            let bounds = (live, live_end, file_len);
            let heap = (live - HEAP_START) + (file_len - live_end);
            let paced = mode != "none";
            let total = if paced { 2 * heap } else { heap };
            if paced {
                assert!(back.len() >= 2, "{mode}: written back in pieces: {back:?}");
                assert_eq!(check_in_order(&back, bounds, 0, total), heap);
                assert_eq!(back[0].1, WRITE_BACK_MIN, "{mode}: starts small");
                assert!(back.iter().all(|p| p.1 <= WRITE_BACK_MAX), "{back:?}");
            } else {
                assert!(back.is_empty(), "{mode}: no write-back: {back:?}");
            }
            assert!(seen.len() >= 4, "{mode}: flushed in slices: {seen:?}");
            let base = if paced { heap } else { 0 };
            assert_eq!(check_in_order(&seen, bounds, base, total), heap);
            if paced {
                assert_eq!(seen[0].1, WRITE_BACK_MIN, "{mode}: starts small");
                assert!(seen.iter().all(|p| p.1 <= WRITE_BACK_MAX), "{seen:?}");
            } else {
                assert!(seen.iter().all(|p| p.1 <= heap / 16 + FLUSH_SLICE_MIN));
            }
            assert_eq!(h.flush_done.load(SeqCst), total);
            // A checkpoint under the write lock (here, completing that one and running the next)
            // never paces: no writer commits until it is done.
            io.written_back.lock().unwrap().clear();
            store.put(b"one more", b"v").unwrap();
            store.checkpoint().unwrap();
            assert!(io.written_back.lock().unwrap().is_empty(), "{mode}");
            drop(store);
            let store = Store::open(&path, Options::default()).unwrap();
            assert_eq!(store.get(b"k1999").unwrap(), Some(vec![1999u64 as u8; 100]));
        }
    }

    /// A flush slower than the writers: they pace themselves against its progress, a little
    /// per write, and never reach the end of their journal half while it runs (without pacing,
    /// these writes fill the half in a fraction of one flush and wait for the rest of it).
    #[test]
    fn writers_pace_to_a_slow_flush_instead_of_waiting_at_the_end_of_the_half() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let io = slow_heap(100);
        // A cycle of 65,536 records: a writer keeping pace with a flush of 200 ms waits a few
        // microseconds per write.
        let opts = Options::default()
            .durability(crate::Durability::None)
            .journal_size(32 << 20)
            .background_checkpoints(true)
            .io(io.clone());
        let store = Arc::new(Store::open(&path, opts).unwrap());
        let c0 = store.stats().unwrap().checkpoints;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut i = 0u64;
        // The flushes after the first, which has no timed flush to draw its pace line from.
        let mut after_first = None;
        while store.stats().unwrap().checkpoints < c0 + 4 {
            assert!(std::time::Instant::now() < deadline, "checkpoints stalled");
            store
                .put(
                    format!("k{}", i % 3000).as_bytes(),
                    &i.to_le_bytes().repeat(12),
                )
                .unwrap();
            i += 1;
            if after_first.is_none() && store.stats().unwrap().checkpoints > c0 {
                after_first = Some(store.stats().unwrap());
            }
        }
        let st = store.stats().unwrap();
        assert_eq!(
            st.full_half_waits, 0,
            "a writer waited at the end of the half"
        );
        let first = after_first.unwrap();
        let (paced, overruns) = (
            st.paced_writes - first.paced_writes,
            st.pace_overruns - first.pace_overruns,
        );
        assert!(paced > 0, "no write paced itself");
        // The allowance grows steadily with a steady flush: writers wait a little on many
        // writes, and a wait rarely runs to its limit (where the writer goes on regardless), as
        // most would if the allowance grew a slice at a time.
        assert!(
            overruns * 4 < paced,
            "{overruns} of {paced} paced writes waited their whole limit"
        );
        // No wait longer than the longest limit (and what a busy machine adds to it).
        let longest = st.pace_wait_max_ns;
        assert!(longest > 0, "Stats::pace_wait_max_ns did not move");
        assert!(
            longest < crate::write::PACE_LIMIT_MAX.as_nanos() as u64 + 50_000_000,
            "a paced write waited {longest} ns"
        );
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        for j in i.saturating_sub(3000)..i {
            assert_eq!(
                store.get(format!("k{}", j % 3000).as_bytes()).unwrap(),
                Some(j.to_le_bytes().repeat(12))
            );
        }
    }

    /// Flushes of the heap that alternate between quick and slow, the slow ones slow only in
    /// their second half (as dirty pages are dense in some slices and absent from others): so
    /// each slow flush comes after a quick one, later than the flushes so far lead to expect,
    /// and its bytes run ahead of its time at first.
    struct UnevenHeap {
        slow_slice: std::time::Duration,
        store: std::sync::OnceLock<std::sync::Weak<Store>>,
        /// Heap flushes begun (a slice that starts at 0 bytes done begins one).
        flushes: std::sync::atomic::AtomicU64,
    }

    impl StorageIo for UnevenHeap {
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            if kind == FileKind::Data && range.offset() >= HEAP_START {
                if let Some(store) = self.store.get().and_then(|s| s.upgrade()) {
                    let h = store.inner().lock_file.state();
                    let (done, total) = (h.flush_done.load(SeqCst), h.flush_total.load(SeqCst));
                    if done == 0 {
                        self.flushes.fetch_add(1, SeqCst);
                    }
                    if self.flushes.load(SeqCst).is_multiple_of(2) && done * 2 >= total {
                        std::thread::sleep(self.slow_slice);
                    }
                }
            }
            RealIo.sync_map(kind, range)
        }
    }

    /// Writers held to the pace line never come near the end of their runway while a flush is
    /// no later than the runway past `PACE_GOAL` absorbs, even one later than expected whose
    /// bytes run ahead of its time: they slow early and a little (every wait at most
    /// `PACE_WAIT`), not late and hard (a wait allowed 100 µs or more once the runway is nearly
    /// used, as happened when the allowance followed the bytes flushed).
    #[test]
    fn writers_slow_early_and_a_little_for_a_flush_later_than_expected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let io = Arc::new(UnevenHeap {
            slow_slice: std::time::Duration::from_millis(25),
            store: Default::default(),
            flushes: Default::default(),
        });
        // A cycle of 65,536 records; a heap of 16 slices, half of them 25 ms in a slow flush.
        let opts = Options::default()
            .durability(crate::Durability::None)
            .journal_size(32 << 20)
            .initial_size(256 << 20)
            .background_checkpoints(true)
            .io(io.clone());
        let store = Arc::new(Store::open(&path, opts).unwrap());
        io.store.set(Arc::downgrade(&store)).unwrap();
        let c0 = store.stats().unwrap().checkpoints;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let value = [7u8; 150];
        let mut i = 0u64;
        // The flushes after the first two, which have no timed flush of both kinds behind them.
        let mut settled = None;
        while store.stats().unwrap().checkpoints < c0 + 8 {
            assert!(std::time::Instant::now() < deadline, "checkpoints stalled");
            let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 200_000;
            store.put(&k.to_le_bytes(), &value).unwrap();
            i += 1;
            if settled.is_none() && store.stats().unwrap().checkpoints >= c0 + 2 {
                let inner = store.inner();
                settled = Some((store.stats().unwrap(), inner.pace_long_waits.load(SeqCst)));
            }
        }
        let st = store.stats().unwrap();
        let (first, long0) = settled.unwrap();
        assert!(
            io.flushes.load(SeqCst) >= 8,
            "{} flushes",
            io.flushes.load(SeqCst)
        );
        assert!(
            st.paced_writes > first.paced_writes,
            "no write paced itself"
        );
        let long = store.inner().pace_long_waits.load(SeqCst) - long0;
        assert_eq!(
            long,
            0,
            "{long} paced writes found the end of the runway near ({} paced)",
            st.paced_writes - first.paced_writes
        );
        assert_eq!(
            st.full_half_waits, 0,
            "a writer waited at the end of the half"
        );
    }

    /// While the flush `msync`s one slice of the heap, the runway it allows writers grows with
    /// the time (on the pace line drawn before the slice), not only once the slice is done: so
    /// a writer that keeps pace waits a little per write instead of for the rest of a slice.
    #[test]
    fn the_allowance_grows_while_a_slice_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let io = slow_heap(40);
        let opts = Options::default()
            .durability(crate::Durability::None)
            .initial_size(64 << 20)
            .io(io.clone());
        let store = Arc::new(Store::open(&path, opts).unwrap());
        io.store.set(Arc::downgrade(&store)).unwrap();
        let inner = store.inner();
        // The first flush has no timed flush before it to draw its lines from (a guess, here
        // too short: the line soon waits for the bytes); the next ones have.
        for round in 0..3u64 {
            for i in 0..2000u64 {
                store
                    .put(format!("k{i}").as_bytes(), &[round as u8; 100])
                    .unwrap();
            }
            io.allowed.lock().unwrap().clear();
            io.seen.lock().unwrap().clear();
            {
                let txn = inner.lock().unwrap();
                txn.settle().unwrap();
                txn.freeze().unwrap();
            }
            inner.copy_and_flush(true).unwrap();
            let allowed = io.allowed.lock().unwrap().clone();
            let seen = io.seen.lock().unwrap().clone();
            assert!(allowed.len() >= 4, "round {round}: slices {seen:?}");
            if round == 0 {
                continue;
            }
            // Every slice, but for one that a busy machine stretched past the line's end.
            let grew = allowed
                .iter()
                .filter(|&&(before, after)| after > before)
                .count();
            assert!(
                grew + 1 >= allowed.len(),
                "round {round}: the allowance stood still in a slice: {allowed:?} {seen:?}"
            );
        }
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        assert_eq!(store.get(b"k1999").unwrap(), Some(vec![2u8; 100]));
    }

    /// Minor page faults this thread has taken.
    pub(crate) fn thread_faults() -> i64 {
        // SAFETY: getrusage writes only into the struct passed, which outlives the call.
        unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut u), 0);
            u.ru_minflt
        }
    }

    /// The flusher takes the write faults of the target copy's marked pages before it copies
    /// them under the write lock (the last flush write-protected them): the copy under the lock
    /// then faults (almost) no more, where it would fault once per page.
    #[test]
    fn the_copy_under_the_write_lock_takes_no_page_faults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let opts = Options::default()
            .durability(crate::Durability::None)
            .index_slots(1 << 17);
        let store = Store::open(&path, opts).unwrap();
        let fill = |round: u64| {
            for i in 0..20_000u64 {
                store
                    .put(format!("k{i}").as_bytes(), &round.to_le_bytes())
                    .unwrap();
            }
        };
        // Two checkpoints: both copies and both dirty bitmaps see every page, and the flushes
        // leave the target copy's pages write-protected.
        for round in 0..2 {
            fill(round);
            store.checkpoint().unwrap();
        }
        fill(2);
        let inner = store.inner();
        {
            let txn = inner.lock().unwrap();
            txn.settle().unwrap();
            txn.freeze().unwrap();
        }
        let marked = inner.lock_file.state().copy_left.load(SeqCst) as i64;
        assert!(marked >= 128, "{marked} pages to copy");
        inner.prefault_target();
        let txn = inner.lock().unwrap();
        let before = thread_faults();
        while txn.copy_some(usize::MAX).unwrap() {}
        let faults = thread_faults() - before;
        drop(txn);
        assert!(
            faults * 8 < marked,
            "{faults} page faults copying {marked} pages under the lock"
        );
        store.checkpoint().unwrap();
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        assert_eq!(
            store.get(b"k19999").unwrap(),
            Some(2u64.to_le_bytes().to_vec())
        );
    }

    /// Watches a paced flush beside journal syncs: counts the heap's write-back and `msync`
    /// pieces made by the checkpoint thread, the journal syncs, and every time one of them
    /// started while the other kind ran. Both are slowed a little so that overlaps, if the
    /// flush allowed them, could not be missed; `gaps` counts pauses of `SYNC_YIELD_MAX` or more
    /// between two pieces.
    #[derive(Default)]
    struct SyncWatch {
        syncing: std::sync::atomic::AtomicU64,
        piecing: std::sync::atomic::AtomicU64,
        overlaps: std::sync::atomic::AtomicU64,
        pieces: std::sync::atomic::AtomicU64,
        syncs: std::sync::atomic::AtomicU64,
        last_piece: Mutex<Option<std::time::Instant>>,
        gaps: std::sync::atomic::AtomicU64,
        /// Pieces from any thread count (not only the checkpoint thread's).
        any_thread: std::sync::atomic::AtomicBool,
        /// A put to make from inside the first piece (a write from inside the flush).
        nested: std::sync::OnceLock<std::sync::Weak<Store>>,
        nested_done: std::sync::atomic::AtomicBool,
    }

    impl SyncWatch {
        fn piece(&self, run: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
            let mine =
                self.any_thread.load(SeqCst) || std::thread::current().name() == Some("apcdb-ckpt");
            if !mine {
                return run();
            }
            {
                let mut last = self.last_piece.lock().unwrap();
                if last.is_some_and(|t| t.elapsed() >= SYNC_YIELD_MAX) {
                    self.gaps.fetch_add(1, SeqCst);
                }
                *last = None;
            }
            self.pieces.fetch_add(1, SeqCst);
            self.piecing.fetch_add(1, SeqCst);
            if self.syncing.load(SeqCst) > 0 {
                self.overlaps.fetch_add(1, SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_micros(150));
            let r = run();
            self.piecing.fetch_sub(1, SeqCst);
            *self.last_piece.lock().unwrap() = Some(std::time::Instant::now());
            r
        }
    }

    impl StorageIo for SyncWatch {
        fn sync_file(
            &self,
            kind: FileKind,
            file: &std::fs::File,
            what: crate::SyncKind,
        ) -> std::io::Result<()> {
            if kind != FileKind::Journal {
                return RealIo.sync_file(kind, file, what);
            }
            self.syncs.fetch_add(1, SeqCst);
            self.syncing.fetch_add(1, SeqCst);
            if self.piecing.load(SeqCst) > 0 {
                self.overlaps.fetch_add(1, SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
            let r = RealIo.sync_file(kind, file, what);
            self.syncing.fetch_sub(1, SeqCst);
            r
        }

        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            // The heap's pieces and the superblock's flush alike.
            if kind == FileKind::Data {
                return self.piece(|| RealIo.sync_map(kind, range));
            }
            RealIo.sync_map(kind, range)
        }

        fn write_back(
            &self,
            kind: FileKind,
            file: &std::fs::File,
            off: u64,
            len: u64,
        ) -> std::io::Result<()> {
            self.piece(|| {
                // Only a paced flush writes back: this is inside one of its pieces.
                if let Some(store) = self.nested.get().and_then(|s| s.upgrade()) {
                    if !self.nested_done.swap(true, SeqCst) {
                        store.put(b"from inside", b"the flush").unwrap();
                    }
                }
                RealIo.write_back(kind, file, off, len)
            })
        }
    }

    /// Durable writers and the checkpoint thread's paced flush share the disk by turns: no
    /// write-back or `msync` piece of the heap, nor the superblock's `msync`, runs while a
    /// journal `fdatasync` does, nor the other way round (each piece holds the sync mutex, and the syncs asked for meanwhile go
    /// before the next). Without that, the flush's pieces follow one another regardless and
    /// the writers' syncs land beside them.
    #[test]
    fn a_paced_flush_never_runs_beside_a_journal_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let io = Arc::new(SyncWatch::default());
        let opts = Options::default()
            .durability(crate::Durability::Sync)
            .journal_size(1 << 20)
            .background_checkpoints(true)
            .io(io.clone());
        let store = Arc::new(Store::open(&path, opts).unwrap());
        let c0 = store.stats().unwrap().checkpoints;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(SeqCst) {
                        let key = format!("w{w}k{}", i % 500);
                        store.put(key.as_bytes(), &[i as u8; 900]).unwrap();
                        i += 1;
                    }
                    i
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while store.stats().unwrap().checkpoints < c0 + 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        stop.store(true, SeqCst);
        let puts: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        let (pieces, syncs) = (io.pieces.load(SeqCst), io.syncs.load(SeqCst));
        let overlaps = io.overlaps.load(SeqCst);
        assert!(
            store.stats().unwrap().checkpoints >= c0 + 3,
            "checkpoints stalled"
        );
        assert!(pieces >= 20, "{pieces} pieces flushed by the thread");
        assert!(syncs >= 100, "{syncs} journal syncs for {puts} puts");
        assert_eq!(
            overlaps, 0,
            "{overlaps} of {pieces} pieces and {syncs} syncs ran side by side"
        );
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        assert_eq!(store.stats().unwrap().entries, 1000);
    }

    /// A paced flush whose piece makes a durable write (a storage seam can: the power-cut
    /// simulator races writes against flushes that way) does not wait for the sync mutex its
    /// own thread holds for that piece; and a journal sync asked for by a writer that died
    /// before it finished (the count left one too high) delays the flush once, by
    /// `SYNC_YIELD_MAX`, not before every piece.
    #[test]
    fn a_paced_flush_survives_a_write_from_inside_it_and_a_dead_writers_ask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let io = Arc::new(SyncWatch::default());
        io.any_thread.store(true, SeqCst);
        let opts = Options::default()
            .durability(crate::Durability::Sync)
            .initial_size(32 << 20)
            .io(io.clone());
        let store = Arc::new(Store::open(&path, opts).unwrap());
        io.nested.set(Arc::downgrade(&store)).unwrap();
        for i in 0..2000u64 {
            store
                .put(format!("k{i}").as_bytes(), &[i as u8; 1000])
                .unwrap();
        }
        let h = store.inner().lock_file.state();
        h.sync_asked.fetch_add(1, SeqCst);
        let (tx, rx) = std::sync::mpsc::channel();
        let flusher = {
            let store = store.clone();
            std::thread::spawn(move || {
                let inner = store.inner();
                {
                    let txn = inner.lock().unwrap();
                    txn.settle().unwrap();
                    txn.freeze().unwrap();
                }
                inner.copy_and_flush(true).unwrap();
                tx.send(()).unwrap();
            })
        };
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the flush deadlocked on the write made from inside it");
        flusher.join().unwrap();
        assert!(io.nested_done.load(SeqCst));
        let (pieces, gaps) = (io.pieces.load(SeqCst), io.gaps.load(SeqCst));
        // Enough pieces that a pause before each would show (pieces grow with the journal's sync
        // time, so a slow disk makes fewer of them).
        assert!(pieces >= 12, "{pieces} pieces");
        // One wait for the dead writer's sync; a few more allowed for a busy machine.
        assert!(gaps <= 5, "{gaps} pauses of the flush in {pieces} pieces");
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        assert_eq!(
            store.get(b"from inside").unwrap(),
            Some(b"the flush".to_vec())
        );
        assert_eq!(
            store.get(b"k1999").unwrap(),
            Some(vec![1999u64 as u8; 1000])
        );
    }

    /// Notes the size of each write-back piece, each taking a microsecond per KiB (a disk whose
    /// write-back takes time in proportion to what it writes).
    #[derive(Default)]
    struct SizedPieces(Mutex<Vec<u64>>, Mutex<Vec<u64>>);

    impl StorageIo for SizedPieces {
        /// The heap's `msync`s: each costs a fixed 300 µs (a cache flush as long as the
        /// journal's syncs in the slow case below) whatever its range.
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            if kind == FileKind::Data && range.offset() >= HEAP_START {
                self.1.lock().unwrap().push(range.len());
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            RealIo.sync_map(kind, range)
        }

        fn write_back(
            &self,
            kind: FileKind,
            file: &std::fs::File,
            off: u64,
            len: u64,
        ) -> std::io::Result<()> {
            self.0.lock().unwrap().push(len);
            std::thread::sleep(std::time::Duration::from_micros(len >> 10));
            RealIo.write_back(kind, file, off, len)
        }
    }

    /// A paced flush sizes its pieces by the journal's syncs: beside fast syncs a piece takes
    /// about `WRITE_BACK_CALL` (here, 64 KiB), beside syncs of 3 ms it grows to about 1 ms of
    /// write-back (capped at `WRITE_BACK_CALL_MAX`), so that the flush, which takes turns with
    /// the syncs, keeps about half of a slow disk instead of crawling. An `msync` piece counts
    /// only its time beyond a journal sync's (its cache flush): with syncs of 300 µs and
    /// `msync`s that cost that much whatever their range, the pieces still grow.
    #[test]
    fn a_paced_flush_sizes_its_pieces_by_the_journal_syncs() {
        for sync_us in [100u64, 3000, 300] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let io = Arc::new(SizedPieces::default());
            let opts = Options::default()
                .durability(crate::Durability::Sync)
                .initial_size(32 << 20)
                .io(io.clone());
            let store = Store::open(&path, opts).unwrap();
            for i in 0..2000u64 {
                store
                    .put(format!("k{i}").as_bytes(), &[i as u8; 1000])
                    .unwrap();
            }
            let inner = store.inner();
            {
                let txn = inner.lock().unwrap();
                txn.settle().unwrap();
                txn.freeze().unwrap();
            }
            let h = inner.lock_file.state();
            h.last_sync_ms.store(crate::store::now_ms(), SeqCst);
            h.last_sync_ns.store(sync_us * 1000, SeqCst);
            inner.copy_and_flush(true).unwrap();
            let pieces = io.0.lock().unwrap().clone();
            let largest = pieces.iter().copied().max().unwrap();
            if sync_us == 300 {
                let flushes = io.1.lock().unwrap().clone();
                let largest = flushes.iter().copied().max().unwrap();
                assert!(largest >= 1 << 20, "msync pieces: {flushes:?}");
            } else if sync_us == 100 {
                assert!(largest <= 128 << 10, "fast syncs: {pieces:?}");
            } else {
                assert!(largest >= 512 << 10, "slow syncs: {pieces:?}");
                assert!(largest <= 4 << 20, "slow syncs: {pieces:?}");
            }
        }
    }
}
