//! Space in the heap: blocks of size classes. Reusable space is kept in the reuse map
//! (`reuse.rs`: one bit per 64-byte unit in the lock file, taken next-fit by address), and only
//! where the map does not reach, or after an open from a closing snapshot, in per-class free
//! lists whose heads live in the lock file and whose links live in the free blocks themselves.
//!
//! The rule that keeps a power cut harmless (SPEC.md, "Why a power cut cannot corrupt"): a block
//! the durable checkpoint may still reference is never written. So a freed block waits in the
//! pending list until the next checkpoint is durable, and only then joins a free list.

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::write::WriteTxn;
use std::sync::atomic::Ordering::*;

/// Where a block starts in the data file (64-byte aligned, in the heap), as the allocator hands
/// it out and takes it back: a place for an entry or an index copy, not a slot value (which packs
/// an offset with a class and a hash tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockOffset(pub(crate) u64);

impl BlockOffset {
    /// The block an index slot (or a pending-list entry) points to.
    pub(crate) fn of_slot(slot: u64) -> BlockOffset {
        BlockOffset(slot_offset(slot))
    }

    pub(crate) fn get(self) -> u64 {
        self.0
    }
}

/// A block planned for one Put of a transaction: where, and of which size class.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) at: BlockOffset,
    pub(crate) class: u8,
}

/// Reusable blocks an allocation moves from the ring into the reuse map before it takes fresh
/// space inside the file (all of them before the file grows).
const RECLAIM_SCAN: usize = 256;

/// The reuse map's units for the block `[off, off + len)`, when the map covers all of it.
fn map_units(off: u64, len: u64) -> Option<(u64, u64)> {
    let first = off.checked_sub(HEAP_START)? / BLOCK_ALIGN;
    let n = len / BLOCK_ALIGN;
    (first + n <= crate::reuse::REUSE_WORDS as u64 * 64).then_some((first, n))
}

/// The heap offset of reuse-map unit `u`.
fn unit_offset(u: u64) -> u64 {
    HEAP_START + u * BLOCK_ALIGN
}

/// Where the reuse map stops covering the heap.
const MAP_END: u64 = HEAP_START + crate::reuse::REUSE_WORDS as u64 * 64 * BLOCK_ALIGN;

/// Free space the heap takes in at once when it must grow (SPEC.md §2.4, "slack"): four times
/// what the last checkpoint cycle allocated, 1 to 64 MiB. Next-fit spreads a cycle's
/// allocations over about (allocated / free) of the heap, so the pool must be several times
/// what one cycle allocates for its pages to be few; once taken in, the space stays in the
/// pool, since each cycle's frees come back to it.
fn slack(h: &crate::lock_file::LockState) -> u64 {
    (4 * h.last_cycle.load(Relaxed)).clamp(1 << 20, 64 << 20) / PAGE * PAGE
}

/// The free pool the heap keeps, in checkpoint cycles' allocations (SPEC.md §2.4, "floor"):
/// below it, and with room for a slack stretch below `max_size`, the heap takes one in before
/// it reuses. Without it the pool ended wherever the writers happened to run out of reusable
/// blocks: at about two cycles' (tail_probe's slow runs: a 341 MiB file, 170 MiB written back
/// per checkpoint) or about 4.3 (its fast runs: 405 MiB, 90-120 MiB). Five puts every run above
/// the fast one (70-80 MiB per checkpoint) for about one cycle's allocations more file; more
/// would cost a cycle's worth of file each for less and less, since a cycle sweeps about
/// `N·heap/F` and the heap grows with F.
const FLOOR_CYCLES: u64 = 5;

/// Freed blocks waiting for a checkpoint below which the heap keeps no floor: a store that only
/// inserts (a load, a compacted copy being written) frees nothing, an index rebuild three old
/// copies, and writing fresh space needs no pool to sweep.
const FLOOR_CHURN: u64 = 64;

/// The heap's bytes in use, from counters (no scan): the live entries' blocks and the three
/// index copies.
fn heap_used(h: &crate::lock_file::LockState) -> u64 {
    h.used_bytes.load(Relaxed) + 3 * index_block_len(h.index_slots.load(Relaxed))
}

/// The heap's free bytes: the rest of it. Blocks waiting for a checkpoint count as free: each
/// cycle's frees come back to the pool at its checkpoint.
fn pool(h: &crate::lock_file::LockState, end: u64) -> u64 {
    (end - HEAP_START).saturating_sub(heap_used(h))
}

/// The largest class whose blocks fit in `len` bytes.
fn class_within(len: u64) -> u8 {
    let c = class_for(len);
    if class_size(c) > len {
        c - 1
    } else {
        c
    }
}

impl WriteTxn<'_> {
    /// A block of `class` for an entry, or None when the store has no room for it.
    pub(crate) fn alloc(&self, class: u8) -> Result<Option<BlockOffset>> {
        self.alloc_counted(class, true)
    }

    /// A block for an index copy. Not counted in the cycle's allocations: a rebuild's three
    /// copies come once, and counted they would set the slack and the floor (`below_floor`)
    /// from a cycle no later one repeats.
    pub(crate) fn alloc_index(&self, class: u8) -> Result<Option<BlockOffset>> {
        self.alloc_counted(class, false)
    }

    fn alloc_counted(&self, class: u8, counted: bool) -> Result<Option<BlockOffset>> {
        let got = self.alloc_block(class)?;
        if got.is_some() && counted {
            // Bytes per checkpoint cycle, for the slack and the floor: a new epoch closes the
            // cycle. Averaged, each cycle weighing a quarter: the pacing makes cycles of one
            // workload vary two- to threefold, and the floor, which the pool never gives back,
            // would otherwise follow the largest.
            let h = self.lock_file.state();
            let (total, epoch) = (h.alloc_bytes.load(Relaxed), h.epoch.load(Relaxed));
            if h.cycle_epoch.load(Relaxed) != epoch {
                let cycle = total - h.cycle_start.load(Relaxed).min(total);
                let avg = match h.last_cycle.load(Relaxed) {
                    0 => cycle,
                    last => (3 * last + cycle) / 4,
                };
                h.last_cycle.store(avg, Relaxed);
                h.cycle_start.store(total, Relaxed);
                h.cycle_epoch.store(epoch, Relaxed);
            }
            h.alloc_bytes.store(total + class_size(class), Relaxed);
        }
        Ok(got)
    }

    fn alloc_block(&self, class: u8) -> Result<Option<BlockOffset>> {
        if self.alloc_below.get() != 0 {
            // A compaction moving an entry down (`compact.rs`): only below its line.
            return self.alloc_low(class, self.alloc_below.get());
        }
        let size = class_size(class);
        if let Some(off) = self.take_held(size, HELD_BIG_RUN) {
            return Ok(Some(off));
        }
        let h = self.lock_file.state();
        let end = h.heap_end();
        // A pool below its floor takes in new space first, so it settles at the floor whether
        // or not writers ran out of reusable blocks.
        let floor = self.below_floor(end);
        // What a stretch the heap takes in holds: a slack, or what the pool lacks of its floor
        // (at least 1 MiB, so a store that only inserts does not take space in at every put).
        let want = match floor {
            Some(short) => short.next_multiple_of(PAGE).max(1 << 20).min(slack(h)),
            None => slack(h),
        };
        if floor.is_none() {
            // Next-fit by address from the shared cursor (`reuse.rs`): a cycle's blocks come
            // from a narrow band of the heap, so the checkpoint writes back few pages.
            if let Some(off) = self.take_reuse(class, u64::MAX, crate::reuse::SCAN_WORDS) {
                return Ok(Some(off));
            }
            if let Some(off) = self.pop(class)? {
                return Ok(Some(off));
            }
            // Blocks already reusable but not yet in the map (they move from the ring a few per
            // commit, see `reclaim_some`) come before new space; a bounded number here, the
            // rest only before the file would grow or a block be split.
            if let Some(off) = self.reclaim_for(class, RECLAIM_SCAN)? {
                return Ok(Some(off));
            }
        }
        if end + size <= self.map.len() {
            // The heap takes in a stretch of the file's unused tail at once (`slack`), the rest
            // of it joining the reuse map, and the cursor goes on from the block.
            let mut chunk = self.stretch(end, size, want);
            // The chunks the heap enters may have been punched out by a compaction; a disk too
            // full to back the whole stretch may still hold this block.
            let mut backed = crate::compact::back_heap(self, end, end + chunk);
            if backed.as_ref().is_err_and(|e| e.is_full()) && chunk > size {
                chunk = size;
                backed = crate::compact::back_heap(self, end, end + size);
            }
            match backed {
                Ok(()) => return self.take_in(end, size, chunk).map(Some),
                Err(e) if e.is_full() => {
                    self.growth_refused.set(true);
                    self.refuse_floor();
                }
                Err(e) => return Err(e),
            }
        }
        if floor.is_some() {
            // Past the file only: a tail the disk could not back (above) is not taken in.
            if end + size > self.map.len() {
                if let Some(off) = self.grow_to_floor(end, size, want)? {
                    return Ok(Some(off));
                }
            }
            // The disk had no room: reuse, as every allocation did before the floor.
            if let Some(off) = self.take_reuse(class, u64::MAX, crate::reuse::SCAN_WORDS) {
                return Ok(Some(off));
            }
            if let Some(off) = self.pop(class)? {
                return Ok(Some(off));
            }
        }
        if let Some(off) = self.reclaim_for(class, usize::MAX)? {
            return Ok(Some(off));
        }
        if let Some(off) = self.take_reuse(class, u64::MAX, usize::MAX) {
            return Ok(Some(off));
        }
        if let Some(off) = self.take_held(size, 0) {
            return Ok(Some(off));
        }
        for bigger in class + 1..CLASSES as u8 {
            if let Some(off) = self.pop(bigger)? {
                self.carve(BlockOffset(off.0 + size), class_size(bigger) - size)?;
                return Ok(Some(off));
            }
        }
        // The live limit (SPEC.md §9), which another process may have raised since we opened.
        let limit = self.max_size();
        if end + size <= limit {
            // Grow by a quarter (1 to 64 MiB at a time): enough to make growth rare, little
            // enough that a large store does not double its file for one more entry. Not past
            // our own reservation unless this block needs it (then `grow` says why it cannot).
            let cap = limit.min(self.map.reserved().max(end + size));
            let len = self.map.len();
            let want = (len + (len / 4).clamp(1 << 20, 64 << 20))
                .max(end + size)
                .min(cap);
            let mut grown = self
                .map
                .grow(self.held(), want.next_multiple_of(PAGE).min(cap));
            if grown.as_ref().is_err_and(|e| e.is_full()) && want > end + size {
                // A nearly full disk may still hold this block without the margin.
                let exact = (end + size).next_multiple_of(PAGE).min(cap);
                grown = self.map.grow(self.held(), exact);
            }
            match grown {
                Ok(()) => {
                    h.file_size.fetch_max(self.map.len(), Release);
                    let chunk = self.stretch(end, size, slack(h));
                    return self.take_in(end, size, chunk).map(Some);
                }
                Err(e) if e.is_full() => {
                    // The disk, not the maximum size, is what stopped us: say so if the
                    // transaction ends up not fitting.
                    self.growth_refused.set(true);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Whether the heap's free pool is below its floor (`FLOOR_CYCLES` of the last cycles'
    /// allocations, at most that many times the largest slack) while blocks are being freed
    /// (`FLOOR_CHURN`), with room for a whole slack stretch below `max_size` and the reuse
    /// map's end: short of that room the store is nearly full (the `tight` rule of
    /// `take_reuse`) and reuses as it always did. Returns how many bytes the pool lacks.
    ///
    /// The floor is never more than the heap's bytes in use: with a pool that large a cycle
    /// sweeps at most twice its own allocations (`N·heap/F`, heap = 2F), and a small store with
    /// heavy churn would otherwise keep many times its data free for little fewer pages.
    fn below_floor(&self, end: u64) -> Option<u64> {
        let h = self.lock_file.state();
        if h.pending_count() < FLOOR_CHURN {
            return None;
        }
        let cycle = h.last_cycle.load(Relaxed);
        let floor = (FLOOR_CYCLES * cycle)
            .min(FLOOR_CYCLES * (64 << 20))
            .min(heap_used(h));
        let free = pool(h, end);
        if free >= floor {
            return None;
        }
        let stretch = slack(h);
        (end + stretch <= MAP_END
            && end + stretch <= self.max_size()
            && self.floor_refused.load(Relaxed) != h.epoch.load(Relaxed) + 1
            && self.held_free.borrow().is_none())
        .then_some(floor - free)
    }

    /// The disk refused space for the floor: this handle stops asking until the next checkpoint.
    fn refuse_floor(&self) {
        let epoch = self.lock_file.state().epoch.load(Relaxed);
        self.floor_refused.store(epoch + 1, Relaxed);
    }

    /// Grows the file by what the pool lacks (`want`: at least 1 MiB, so `fallocate` stays
    /// rare) and takes in that stretch, for a pool below its floor. Not by a quarter, as when
    /// nothing is left: the floor is the space the store keeps free, and a file grown past it
    /// would be a tail no cycle uses. None when the file cannot hold the stretch (this
    /// process's reservation) or the disk is full.
    fn grow_to_floor(&self, end: u64, size: u64, want: u64) -> Result<Option<BlockOffset>> {
        let h = self.lock_file.state();
        let cap = self.max_size().min(self.map.reserved());
        let need = end + want.max(size);
        let new_len = need.next_multiple_of(PAGE).min(cap);
        if new_len < need {
            return Ok(None);
        }
        match self.map.grow(self.held(), new_len) {
            Ok(()) => {
                h.file_size.fetch_max(self.map.len(), Release);
                self.take_in(end, size, self.stretch(end, size, want))
                    .map(Some)
            }
            Err(e) if e.is_full() => {
                self.refuse_floor();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// How much of the file past the heap's `end` a block of `size` takes in with it: a
    /// stretch of `want` bytes (a slack, or what the pool lacks of its floor), never past the
    /// file, and ending on a block boundary (a file whose maximum size is not a multiple of 64
    /// ends between two; the heap's end must not).
    fn stretch(&self, end: u64, size: u64, want: u64) -> u64 {
        if self.held_free.borrow().is_some() || end + size > MAP_END {
            return size;
        }
        let room = (self.map.len() - end) / BLOCK_ALIGN * BLOCK_ALIGN;
        // `want` and `size` are whole blocks already; the file's end may not be.
        want.max(size).min(room)
    }

    /// Moves the heap's end from `end` to `end + chunk` (inside the file): the block `[end, end
    /// + size)` is returned, the rest is free space, and the cursor goes on after the block.
    fn take_in(&self, end: u64, size: u64, chunk: u64) -> Result<BlockOffset> {
        let h = self.lock_file.state();
        h.set_heap_end(self.held(), end + chunk);
        if chunk > size {
            self.carve(BlockOffset(end + size), chunk - size)?;
        }
        if let Some((first, n)) = map_units(end, size) {
            h.reuse(self.held()).cursor.store(first + n, Relaxed);
        }
        Ok(BlockOffset(end))
    }

    /// A block of `class` from the reuse map, wholly below `below` (None while recovery holds
    /// the free space, or when no run found within `max_words` words holds it).
    pub(crate) fn take_reuse(
        &self,
        class: u8,
        below: u64,
        max_words: usize,
    ) -> Option<BlockOffset> {
        if self.held_free.borrow().is_some() {
            return None;
        }
        let limit = below.saturating_sub(HEAP_START) / BLOCK_ALIGN;
        let units = class_size(class) / BLOCK_ALIGN;
        let h = self.lock_file.state();
        // Short of room to take in a whole slack stretch: holes of the block's own size first,
        // as the per-class lists gave, so a full store still fits what it fitted.
        let end = h.heap_end();
        let tight = self.max_size().saturating_sub(end) < slack(h);
        h.reuse(self.held())
            .take(units, limit, max_words, tight)
            .map(|u| BlockOffset(unit_offset(u)))
    }

    /// Moves reusable blocks from the ring into the reuse map, at most `limit`, and then takes
    /// a block of `class` from it (None when none fits).
    fn reclaim_for(&self, class: u8, limit: usize) -> Result<Option<BlockOffset>> {
        let h = self.lock_file.state();
        let mut moved = false;
        for _ in 0..limit {
            let Some(s) = h.take_reclaimable(self.held()) else {
                break;
            };
            self.push(BlockOffset::of_slot(s), slot_class(s))?;
            moved = true;
            if slot_class(s) == class && map_units(slot_offset(s), class_size(class)).is_none() {
                // Past the map's reach: it went to its free list.
                return self.pop(class);
            }
        }
        Ok(match moved {
            true => self.take_reuse(class, u64::MAX, crate::reuse::SCAN_WORDS),
            false => None,
        })
    }

    /// Drops from the reuse map every unit at or past `off` (a compaction lowering the heap's
    /// end there).
    pub(crate) fn forget_reuse_from(&self, off: u64) {
        let first = off.saturating_sub(HEAP_START).div_ceil(BLOCK_ALIGN);
        self.lock_file.state().reuse(self.held()).clear_from(first);
    }

    /// Moves every run of the reuse map into the free lists (links written into the free
    /// blocks): what a closing snapshot can describe, by its list heads (SPEC.md §7.2). Only the
    /// last closer does this, before the snapshot's flush.
    pub(crate) fn spill_reuse_map(&self) -> Result<()> {
        let map = self.lock_file.state().reuse(self.held());
        let runs = map.runs_ahead(0, u64::MAX, usize::MAX);
        map.reset();
        for (first, n) in runs {
            self.carve_lists(unit_offset(first), n * BLOCK_ALIGN)?;
        }
        Ok(())
    }

    /// Moves a few blocks from the free lists into the reuse map: after an open from a
    /// closing snapshot the free space is in the lists, and next-fit can only sweep what the
    /// map holds. Reads a link per block (no write into the free block). Returns how many moved.
    pub(crate) fn migrate_free_lists(&self, mut limit: usize) -> Result<usize> {
        let h = self.lock_file.state();
        let epoch = h.epoch.load(Relaxed);
        if h.lists_drained.load(Relaxed) == epoch + 1 || self.held_free.borrow().is_some() {
            return Ok(0);
        }
        let mut moved = 0;
        for class in 0..CLASSES as u8 {
            while limit > 0 {
                let head = h.free_head(class);
                if head == 0 || map_units(head, class_size(class)).is_none() {
                    break;
                }
                let Some(off) = self.pop(class)? else { break };
                self.push(off, class)?;
                limit -= 1;
                moved += 1;
            }
        }
        if limit > 0 {
            // Every list was empty or past the map: nothing to look for until a checkpoint.
            h.lists_drained.store(epoch + 1, Relaxed);
        }
        Ok(moved)
    }

    pub(crate) fn pop(&self, class: u8) -> Result<Option<BlockOffset>> {
        if self.held_free.borrow().is_some() {
            return Ok(None);
        }
        let h = self.lock_file.state();
        let off = h.free_head(class);
        if off == 0 {
            return Ok(None);
        }
        let next = self.map.load_u64(off)?;
        let heap_end = h.heap_end();
        if next != 0 && (next % BLOCK_ALIGN != 0 || next < HEAP_START || next >= heap_end) {
            return Err(Error::corrupt(
                &self.map.path,
                CorruptKind::FreeListLink {
                    link: next,
                    at: off,
                },
            ));
        }
        h.set_free_head(self.held(), class, next);
        Ok(Some(BlockOffset(off)))
    }

    /// Returns a block that no durable state references (it was free before this transaction).
    pub(crate) fn push(&self, block: BlockOffset, class: u8) -> Result<()> {
        if let Some(held) = self.held_free.borrow_mut().as_mut() {
            held.freed.push((block.0, class));
            return Ok(());
        }
        let h = self.lock_file.state();
        if let Some((first, n)) = map_units(block.0, class_size(class)) {
            h.reuse(self.held()).put(first, n);
            return Ok(());
        }
        self.map
            .store_u64(self.held(), block.0, h.free_head(class))?;
        h.set_free_head(self.held(), class, block.0);
        Ok(())
    }

    /// Cuts `[off, off+len)` into the largest blocks that fit and frees them.
    pub(crate) fn carve(&self, start: BlockOffset, mut len: u64) -> Result<()> {
        if let Some(held) = self.held_free.borrow_mut().as_mut() {
            held.add(start.0, start.0 + len);
            return Ok(());
        }
        let mut off = start.0;
        // What the reuse map covers joins it as one run; only the rest is cut into blocks.
        let covered = MAP_END.saturating_sub(off).min(len) / BLOCK_ALIGN * BLOCK_ALIGN;
        if covered > 0 {
            let (first, n) = map_units(off, covered).expect("inside the map");
            self.lock_file.state().reuse(self.held()).put(first, n);
            off += covered;
            len -= covered;
        }
        self.carve_lists(off, len)
    }

    /// Cuts `[off, off+len)` into the largest blocks that fit and links them into the free lists.
    fn carve_lists(&self, mut off: u64, mut len: u64) -> Result<()> {
        let h = self.lock_file.state();
        while len >= BLOCK_ALIGN {
            let c = class_within(len);
            self.map.store_u64(self.held(), off, h.free_head(c))?;
            h.set_free_head(self.held(), c, off);
            off += class_size(c);
            len -= class_size(c);
        }
        Ok(())
    }

    /// Frees a block a checkpoint may reference: it becomes reusable once a checkpoint frozen
    /// after now is durable.
    pub(crate) fn free_later(&self, slot: u64) {
        self.lock_file.state().add_pending(self.held(), slot);
    }

    /// Recomputes free space as everything in the heap not used by a live entry or an index
    /// copy (coalescing neighbours), and the usage counters with it. Used by recovery, after
    /// pending overflow, and when the store runs out of room (also in the middle of a journal
    /// replay). Blocks that the last durable checkpoint references stay used even when the live
    /// index dropped them: they may only be reused once a newer checkpoint is durable.
    pub(crate) fn rebuild_free_lists(&self) -> Result<()> {
        let h = self.lock_file.state();
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let heap_end = h.heap_end();
        // One bit per 64-byte unit of the heap: set where a block is in use. Marking and then
        // scanning for clear runs is linear, where sorting the blocks was not.
        let mut used = UnitMap::new((heap_end - HEAP_START) / BLOCK_ALIGN);
        let index_len = index_block_len(slots);
        for c in [h.index[0].load(Relaxed), h.index[1].load(Relaxed), live] {
            used.mark(c, index_len, &self.map.path)?;
        }
        let (mut entries, mut bytes, mut tombstones) = (0u64, 0u64, 0u64);
        // The index read a chunk at a time: one bounds check and copy per 64 KiB, not per slot.
        let mut chunk = vec![0u8; 64 << 10];
        let mut first = 0;
        while first < slots {
            let n = (slots - first).min(chunk.len() as u64 / 8);
            let buf = &mut chunk[..n as usize * 8];
            self.map.read(slot_at(live, first), buf)?;
            for word in buf.chunks_exact(8) {
                let s = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
                tombstones += (s == SLOT_TOMBSTONE) as u64;
                if slot_is_entry(s) {
                    let len = class_size(slot_class(s));
                    used.mark(slot_offset(s), len, &self.map.path)?;
                    entries += 1;
                    bytes += len;
                }
            }
            first += n;
        }
        // What the live state uses: a freed block it uses again (recovery copied the durable
        // index over the live one) is not one the ring may keep.
        let live_used = used.clone();
        let kept_units = self.mark_durable(&mut used)?;
        for class in 0..CLASSES as u8 {
            h.set_free_head(self.held(), class, 0);
        }
        h.reuse(self.held()).reset();
        if let Some(held) = self.held_free.borrow_mut().as_mut() {
            *held = HeldFree {
                best_fit: held.best_fit,
                ..HeldFree::default()
            };
        }
        for (unit, units) in used.clear_runs() {
            self.carve(
                BlockOffset(HEAP_START + unit * BLOCK_ALIGN),
                units * BLOCK_ALIGN,
            )?;
        }
        // The pending list is replaced by the marks, except for the blocks only the durable
        // state still uses (marked, so not carved above): those in it stay, waiting for a
        // checkpoint. Only if some such block is in no list (it overflowed, or a backup's pin
        // dropped it) must the next checkpoint's reclaim rebuild again to find it. Under steady
        // writes the durable state always holds blocks the live one freed since its freeze, and
        // dropping them all would make every later completion rebuild again.
        let mut ring_units = 0;
        let retained = |slot: u64| {
            let off = slot_offset(slot);
            let kept = used.is_marked(off) && !live_used.is_marked(off);
            if kept {
                ring_units += class_size(slot_class(slot)) / BLOCK_ALIGN;
            }
            kept
        };
        h.retain_pending(self.held(), retained, false);
        if ring_units < kept_units {
            h.mark_pending_overflowed(self.held());
        }
        h.entries.store(entries, Relaxed);
        h.used_bytes.store(bytes, Relaxed);
        h.tombstones.store(tombstones, Relaxed);
        h.used_slots.store(entries + tombstones, Relaxed);
        Ok(())
    }
}

impl WriteTxn<'_> {
    /// Marks the blocks the last durable checkpoint references (its index copies and the entries
    /// of its durable copy) that the live state no longer uses. Returns how many 64-byte units
    /// they hold.
    /// Nothing to do while the live index is unchanged since that checkpoint (no dirty page, same
    /// copies): then both reference the same blocks.
    fn mark_durable(&self, used: &mut UnitMap) -> Result<u64> {
        let h = self.lock_file.state();
        let epoch = h.epoch.load(Relaxed);
        let mut b = [0u8; SUPERBLOCK_LEN];
        self.map
            .read(SUPERBLOCK_OFFSETS[(epoch % 2) as usize], &mut b)?;
        let len = self.map.refresh_len()?;
        let sb = UncheckedSuperblock::decode(&b)
            .and_then(|sb| sb.validate(len))
            .and_then(|sb| match sb.epoch == epoch {
                true => Ok(sb),
                false => Err(SuperblockError::EpochNotWritten {
                    found: sb.epoch,
                    expected: epoch,
                }),
            })
            .map_err(|problem| {
                Error::corrupt(&self.map.path, CorruptKind::DurableSuperblock { problem })
            })?;
        let unchanged = sb.index_slots == h.index_slots.load(Relaxed)
            && sb.index[0] == h.index[0].load(Relaxed)
            && sb.index[1] == h.index[1].load(Relaxed)
            && sb.live == h.live_index.load(Relaxed)
            // The live copy changed since the durable state: pages marked since the last freeze,
            // and, while a checkpoint is in flight (its freeze moved them), the cycle before.
            && h.dirty.iter().all(|w| w.load(Relaxed) == 0)
            && (!self.in_flight() || h.dirty_prev.iter().all(|w| w.load(Relaxed) == 0));
        if unchanged {
            return Ok(0);
        }
        let before = used.count();
        let copy_len = index_block_len(sb.index_slots);
        for off in [sb.index[0], sb.index[1], sb.live] {
            used.mark_shared(off, copy_len, &self.map.path)?;
        }
        let durable = sb.index[sb.durable_copy as usize];
        for i in 0..sb.index_slots {
            let s = self.map.load_u64(slot_at(durable, i))?;
            if slot_is_entry(s) {
                used.mark_shared(slot_offset(s), class_size(slot_class(s)), &self.map.path)?;
            }
        }
        Ok(used.count() - before)
    }
}

/// Free space held in the recovering process while recovery replays the journal, as runs rather
/// than linked blocks. Rebuilding the shared free lists writes a link into every free block,
/// which after a crash means nearly every page of the heap, and replay taking blocks from those
/// lists scatters its entries over as many pages: recovery's checkpoint then flushes them all.
/// Held here, replay cuts its blocks one after another from the largest runs first, and the rest
/// is linked only after that checkpoint (`link_held_free`), whose flush then covers a few
/// contiguous runs; the next checkpoint flushes the links, off the opener's path. Nothing is
/// written into held space meanwhile, so a recovery that dies leaves nothing to undo.
///
/// Once no long run is left, blocks come from the smallest run that holds them (best fit), not
/// the largest: the writer took them from exact-size free blocks, and replay of a full store
/// must fit the same entries into the same free space (cutting every block from the largest run
/// left slivers no later block fitted in, and recovery failed with "no room").
#[derive(Default)]
pub(crate) struct HeldFree {
    /// Free runs other than `cur`, as (length, start).
    by_len: std::collections::BTreeSet<(u64, u64)>,
    /// The long run blocks are being cut from, front first.
    cur: (u64, u64),
    /// Blocks given back (a transaction that did not fit), by class.
    freed: Vec<(u64, u8)>,
    /// Every block from the best-fitting run, long runs first no more: recovery's second
    /// replay, after the first found no room.
    best_fit: bool,
}

/// Runs at least this long are used before the heap grows into the file's unused tail; shorter
/// holes only after, so replay writes into few, contiguous pages.
const HELD_BIG_RUN: u64 = 64 << 10;

impl HeldFree {
    fn add(&mut self, start: u64, end: u64) {
        if end > start {
            self.by_len.insert((end - start, start));
        }
    }

    /// A block of `size` bytes: with `min_run`, cut from the current run, or from the largest
    /// run if that one is at least `min_run` long; with none (or `best_fit`), from the smallest
    /// run it fits.
    fn take(&mut self, size: u64, min_run: u64) -> Option<u64> {
        if min_run == 0 || self.best_fit {
            let cur = std::mem::take(&mut self.cur);
            self.add(cur.0, cur.1);
            let &(len, at) = self.by_len.range((size, 0)..).next()?;
            self.by_len.remove(&(len, at));
            self.add(at + size, at + len);
            return Some(at);
        }
        if self.cur.1 - self.cur.0 < size {
            let &(len, at) = self.by_len.last()?;
            if len < size.max(min_run) {
                return None;
            }
            self.by_len.remove(&(len, at));
            let cur = std::mem::replace(&mut self.cur, (at, at + len));
            self.add(cur.0, cur.1);
        }
        let at = self.cur.0;
        self.cur.0 += size;
        Some(at)
    }

    /// The free runs, in no particular order.
    fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let runs = self.by_len.iter().map(|&(len, at)| (at, at + len));
        runs.chain([self.cur]).filter(|(a, b)| b > a)
    }
}

impl WriteTxn<'_> {
    /// From here until the held space is taken back (`held_free.take()`), free space is kept
    /// in this process. Only recovery does this, under the write lock. `best_fit`: every block
    /// from the smallest run that holds it, as the writer took blocks of the right size first.
    pub(crate) fn hold_free_lists(&self, best_fit: bool) {
        *self.held_free.borrow_mut() = Some(HeldFree {
            best_fit,
            ..HeldFree::default()
        });
    }

    fn take_held(&self, size: u64, min_run: u64) -> Option<BlockOffset> {
        let mut held = self.held_free.borrow_mut();
        held.as_mut()?.take(size, min_run).map(BlockOffset)
    }

    /// Links held space into the shared free lists. Only for space no durable state
    /// references: it was free in the checkpoint recovery started from, replay left it alone,
    /// and the only later checkpoint is recovery's own.
    pub(crate) fn link_held_free(&self, held: HeldFree) -> Result<()> {
        self.exclude_readers(|| {
            for (a, b) in held.runs() {
                self.carve(BlockOffset(a), b - a)?;
            }
            for &(at, class) in &held.freed {
                self.push(BlockOffset(at), class)?;
            }
            Ok(())
        })
    }
}

/// Which 64-byte units of the heap are in use.
#[derive(Clone)]
struct UnitMap {
    words: Vec<u64>,
    units: u64,
}

impl UnitMap {
    fn new(units: u64) -> UnitMap {
        UnitMap {
            words: vec![0; units.div_ceil(64) as usize],
            units,
        }
    }

    /// Marks the block `[off, off+len)`; a block outside the heap or overlapping another is
    /// corruption.
    fn mark(&mut self, off: u64, len: u64, path: &std::path::Path) -> Result<()> {
        let first = off.checked_sub(HEAP_START).map(|d| d / BLOCK_ALIGN);
        let Some(first) = first.filter(|f| f + len / BLOCK_ALIGN <= self.units) else {
            return Err(Error::corrupt(
                path,
                CorruptKind::BlockOutsideHeap { at: off },
            ));
        };
        for u in first..first + len / BLOCK_ALIGN {
            let (w, bit) = ((u / 64) as usize, 1u64 << (u % 64));
            if self.words[w] & bit != 0 {
                return Err(Error::corrupt(path, CorruptKind::BlocksOverlap { at: off }));
            }
            self.words[w] |= bit;
        }
        Ok(())
    }

    /// Marks `[off, off+len)` that may already be marked (a block both the live and the durable
    /// state use); outside the heap is still corruption.
    fn mark_shared(&mut self, off: u64, len: u64, path: &std::path::Path) -> Result<()> {
        let first = off.checked_sub(HEAP_START).map(|d| d / BLOCK_ALIGN);
        let Some(first) = first.filter(|f| f + len / BLOCK_ALIGN <= self.units) else {
            return Err(Error::corrupt(
                path,
                CorruptKind::BlockOutsideHeap { at: off },
            ));
        };
        for u in first..first + len / BLOCK_ALIGN {
            self.words[(u / 64) as usize] |= 1u64 << (u % 64);
        }
        Ok(())
    }

    /// Whether the unit at heap offset `off` is marked (an offset outside the heap is not).
    fn is_marked(&self, off: u64) -> bool {
        let Some(u) = off.checked_sub(HEAP_START).map(|d| d / BLOCK_ALIGN) else {
            return false;
        };
        u < self.units && self.words[(u / 64) as usize] & (1u64 << (u % 64)) != 0
    }

    /// Units marked so far.
    fn count(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// The runs of free units, as (first unit, count), in address order.
    fn clear_runs(&self) -> Vec<(u64, u64)> {
        let mut runs = Vec::new();
        let mut start = None;
        for (i, &word) in self.words.iter().enumerate() {
            let base = i as u64 * 64;
            // Units past the end count as used, which closes a run that reaches the end.
            let valid = (self.units - base).min(64);
            let w = if valid == 64 {
                word
            } else {
                word | (!0 << valid)
            };
            // Jump from one change between free and used to the next within the word.
            let mut pos = 0;
            while pos < 64 {
                let above = !0u64 << pos;
                match start {
                    None => match (!w & above).trailing_zeros() {
                        64 => pos = 64,
                        free => {
                            start = Some(base + free as u64);
                            pos = free;
                        }
                    },
                    Some(s) => match (w & above).trailing_zeros() {
                        64 => pos = 64,
                        used => {
                            runs.push((s, base + used as u64 - s));
                            start = None;
                            pos = used;
                        }
                    },
                }
            }
        }
        // A run that reaches an end falling on a word boundary.
        if let Some(s) = start {
            runs.push((s, self.units - s));
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a long run, a block comes from the smallest run that holds it: taking the 1024
    /// bytes from the largest (1280) run would leave no run for the 1280 bytes after it.
    #[test]
    fn held_space_gives_the_best_fitting_run_once_no_long_run_is_left() {
        let mut held = HeldFree::default();
        held.add(HEAP_START, HEAP_START + 1024);
        held.add(HEAP_START + 4096, HEAP_START + 4096 + 1280);
        assert_eq!(held.take(1024, HELD_BIG_RUN), None, "no long run");
        assert_eq!(held.take(1024, 0), Some(HEAP_START));
        assert_eq!(held.take(1280, 0), Some(HEAP_START + 4096));
        assert_eq!(held.take(64, 0), None);
        // A long run is cut front first; what is left of it still serves small blocks.
        held.add(HEAP_START + 8192, HEAP_START + 8192 + HELD_BIG_RUN);
        held.add(HEAP_START + (100 << 10), (HEAP_START + (100 << 10)) + 128);
        assert_eq!(held.take(1024, HELD_BIG_RUN), Some(HEAP_START + 8192));
        assert_eq!(
            held.take(1024, HELD_BIG_RUN),
            Some(HEAP_START + 8192 + 1024)
        );
        assert_eq!(held.take(128, 0), Some(HEAP_START + (100 << 10)));
        assert_eq!(held.take(1024, 0), Some(HEAP_START + 8192 + 2048));
        let left: u64 = held.runs().map(|(a, b)| b - a).sum();
        assert_eq!(left, HELD_BIG_RUN - 3 * 1024);
    }

    /// Overwrites of a store whose load left a pool of about four cycles' allocations (the
    /// slack its growth took in): the writers never run out of reusable blocks, so before the
    /// floor the heap stayed there. With it, the heap takes in space until its pool holds
    /// `FLOOR_CYCLES` of them, and every entry is still there.
    #[test]
    fn a_pool_below_its_floor_grows_the_heap_to_the_floor() {
        use crate::{Durability, Options, Store};
        const KEYS: u64 = 40_000;
        const PER_CYCLE: u64 = 4_000;
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default()
            .journal_size(64 << 20)
            .index_slots(1 << 16)
            .durability(Durability::None);
        let store = Store::open(dir.path().join("s.db"), opts).unwrap();
        let h = store.inner().lock_file.state();
        let value = [7u8; 150];
        let key = |i: u64| format!("key{i:08}");
        // Loaded a cycle at a time: the heap grows by slack stretches of four cycles.
        for i in 0..KEYS {
            store.put(key(i).as_bytes(), &value).unwrap();
            if i % PER_CYCLE == PER_CYCLE - 1 {
                store.checkpoint().unwrap();
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % KEYS
        };
        let mut pools = Vec::new();
        for _ in 0..6 {
            for _ in 0..PER_CYCLE {
                store.put(key(next()).as_bytes(), &value).unwrap();
            }
            store.checkpoint().unwrap();
            let end = h.heap_end();
            pools.push((pool(h, end), h.last_cycle.load(Relaxed)));
        }
        eprintln!("(pool, cycle) after each cycle: {pools:?}");
        // From the first overwrite cycle on, whose allocations set the floor.
        for &(free, cycle) in &pools[1..] {
            assert!(
                free >= FLOOR_CYCLES * cycle,
                "pool {free} bytes after a cycle of {cycle}: below the floor ({pools:?})"
            );
        }
        // Up to the floor and no further: a stretch taken in for it holds what the pool lacks
        // (at least 1 MiB), not a whole slack.
        let (last, cycle) = pools[pools.len() - 1];
        assert!(last <= FLOOR_CYCLES * cycle + (1 << 20), "{pools:?}");
        for i in 0..KEYS {
            assert_eq!(
                store.get(key(i).as_bytes()).unwrap().as_deref(),
                Some(&value[..])
            );
        }
    }

    #[test]
    fn unit_map_finds_every_free_run_and_overlaps() {
        let p = std::path::Path::new("t");
        let mut m = UnitMap::new(200);
        let at = |u: u64| HEAP_START + u * BLOCK_ALIGN;
        m.mark(at(0), 64, p).unwrap(); // unit 0
        m.mark(at(3), 64 * 61, p).unwrap(); // units 3..64, ends at a word boundary
        m.mark(at(128), 64 * 64, p).unwrap(); // a whole word
        m.mark(at(199), 64, p).unwrap(); // the last unit
        assert_eq!(m.clear_runs(), vec![(1, 2), (64, 64), (192, 7)]);
        assert!(m.mark(at(150), 64, p).is_err(), "overlap must be reported");
        assert!(
            m.mark(at(199), 128, p).is_err(),
            "past the heap must be reported"
        );
        assert!(
            m.mark(HEAP_START - 64, 64, p).is_err(),
            "before the heap must be reported"
        );
        assert_eq!(UnitMap::new(70).clear_runs(), vec![(0, 70)]);
        // Ends on a word boundary, free or used; runs across words and inside one.
        assert_eq!(UnitMap::new(128).clear_runs(), vec![(0, 128)]);
        let mut m = UnitMap::new(192);
        m.mark(at(5), 64 * 2, p).unwrap(); // units 5, 6
        m.mark(at(9), 64, p).unwrap();
        m.mark(at(100), 64 * 92, p).unwrap(); // units 100..192
        assert_eq!(m.clear_runs(), vec![(0, 5), (7, 2), (10, 90)]);
    }
}
