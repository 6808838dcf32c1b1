//! Compaction in place (SPEC.md §7.4): the room of deleted entries given back to the disk while
//! other processes keep the store open, mapped, and in use.
//!
//! A file that other processes have mapped must never shrink (a page past a shrunk end is a
//! SIGBUS), so instead the heap's *tail* is emptied and its disk blocks are punched out
//! (`fallocate(FALLOC_FL_PUNCH_HOLE)`): the file keeps its length, the blocks go back to the
//! filesystem. The steps:
//!
//! 1. **Line.** A checkpoint first (its flush runs without the write lock), then, from the live
//!    index read under the lock, the lowest offset `line` such that the live entries at or above
//!    it fit in the free space below it (index copies count as used where they lie; those
//!    above the line move in step 3).
//! 2. **Moves.** The entries above the line are written again, highest first, in journaled
//!    batches under the write lock (one record a batch): the same key, value, expiry and
//!    modification time, in a block below the line (`WriteTxn::alloc_below`). To a reader
//!    nothing changed but the entry's `version`; a crash leaves each batch whole or absent, like
//!    any write.
//! 3. **Lower the heap's end**, in rounds: a checkpoint behind the writers releases what the
//!    moves left; one hold drops those blocks and purges the free lists of everything past the
//!    line (so writers stop taking tail blocks) and lists the entries writers placed past the
//!    line meanwhile, which are moved in batches and another round runs; once they are few,
//!    one hold moves them, makes sure nothing durable or waiting for a checkpoint uses a block
//!    past the line (a checkpoint under the lock if something does); an entry that finds no room
//!    below the line (writers used the slack) raises it over the free runs just past it
//!    (`raise_line`). Then, if the index
//!    copies lie higher than needed, that hold moves them down to just past the entries' end
//!    (the live copy copied with readers held off, the checkpoint copies refilled whole by the
//!    next two checkpoints) and freezes a checkpoint naming the new places, and the rounds go
//!    on: the old places are named by the durable superblock until that checkpoint is durable,
//!    so the heap's end is lowered past them only in a later round. The final hold lowers the
//!    heap's end to the top of what is used and freezes the checkpoint that records it.
//! 4. **Punch** the file from the heap's end (rounded up to a 1 MiB chunk) to its length, a
//!    slice at a time under the write lock, never below the heap's end at that moment nor below
//!    any superblock's on disk or in flight.
//!
//! The invariant that makes a hole harmless: every 1 MiB chunk that holds any byte below the
//! heap's end has real blocks. Holes lie only past the heap's end (rounded up), where nothing is
//! referenced, and the heap's end recorded by any superblock is at most the live one once the
//! hole exists. The heap grows back by bumping its end, and the bump gives real blocks to each
//! chunk it enters (`back_heap`) before anything is written there: a store through the map
//! never meets a hole (no SIGBUS on a full disk; ENOSPC is a full store instead).

use crate::alloc::BlockOffset;
use crate::error::{Error, Result};
use crate::format::*;
use crate::index;
use crate::journal::Op;
use crate::store::{Inner, Store};
use crate::write::WriteTxn;
use std::borrow::Cow;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant};

/// The granularity of holes: a compaction punches whole chunks, and the heap's bump gives real
/// blocks back a chunk at a time (one `fallocate` per MiB of growth, nothing per entry).
pub(crate) const BACKING_CHUNK: u64 = 1 << 20;
/// Chunks punched per hold of the write lock.
const PUNCH_PER_HOLD: u64 = 16;
/// Entries moved per batch (one journal record, one hold of the write lock).
const MOVE_BATCH: usize = 256;
/// Rounds of moving what writers placed past the line before the last one moves the rest in
/// one hold, however many they are.
const STRAGGLER_ROUNDS: u32 = 6;
/// Tries to take the write lock with nothing left to flush (`lock_flushed`).
const FLUSH_TRIES: u32 = 4;
/// Passes that move index copies down, at most (each costs two checkpoints that copy the
/// checkpoint copies whole). Usually one does; a second helps when a copy's old place was in the
/// way, or when a writer's index rebuild placed new copies at the heap's end meanwhile.
const COPY_PASSES: u32 = 3;
/// The line leaves this share of the free space below it unused, so that entries whose size
/// fits no hole exactly still find room.
const SLACK_DIV: u64 = 8;

/// Gives real blocks to the chunks the heap enters when its end moves from `end` to `new_end`
/// (the chunk holding `end` has them already: see the module documentation).
pub(crate) fn back_heap(txn: &WriteTxn<'_>, end: u64, new_end: u64) -> Result<()> {
    let first = end.next_multiple_of(BACKING_CHUNK);
    if first >= new_end {
        return Ok(());
    }
    let last = new_end.next_multiple_of(BACKING_CHUNK).min(txn.map.len());
    txn.map.back(txn.held(), first, last - first)
}

/// What [`Store::compact`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactReport {
    /// Live entries in the store afterwards.
    pub entries: u64,
    /// Entries written again lower in the file.
    pub moved: u64,
    /// Index copies moved down into the room the moves emptied (usually 3, once each): they no
    /// longer hold the heap's end up.
    pub index_copies_moved: u32,
    /// The heap's end afterwards: the file's disk blocks past it (rounded up to 1 MiB) were
    /// given back.
    pub heap_end: u64,
    /// Bytes of the data file and journal on disk (as allocated) before.
    pub bytes_before: u64,
    /// Bytes of the data file and journal on disk after.
    pub bytes_after: u64,
    /// The longest time the compaction held the write lock (other writers waited that long).
    pub longest_lock: Duration,
}

/// Bytes the store's data file and journal take on disk.
pub(crate) fn disk_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    crate::files::Paths::new(path)
        .durable()
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// A live block: where, how long, and the slot naming it (0 for an index copy).
#[derive(Clone, Copy)]
struct Used {
    at: u64,
    len: u64,
    slot: u64,
}

impl WriteTxn<'_> {
    /// A block of `class` lying wholly below `line`, or None. Free blocks at or above the line
    /// met on the way are dropped from their lists: they lie in the tail being emptied (a rebuild
    /// of the free lists, at recovery or in a full store, would find them again if the
    /// compaction stopped before lowering the heap's end).
    pub(crate) fn alloc_low(&self, class: u8, line: u64) -> Result<Option<BlockOffset>> {
        let size = class_size(class);
        // The reuse map first: it holds nearly all free space, and taking a run from it below
        // the line writes nothing but lock-file bits. The smallest run that holds the block, as
        // the per-class lists gave: cutting long runs for small entries would leave the larger
        // ones no room below the line.
        if self.held_free.borrow().is_none() {
            let map = self.lock_file.state().reuse(self.held());
            let limit = line.saturating_sub(HEAP_START) / BLOCK_ALIGN;
            if let Some(u) = map.take_best(size / BLOCK_ALIGN, limit) {
                return Ok(Some(BlockOffset(HEAP_START + u * BLOCK_ALIGN)));
            }
        }
        // Cuts a block of `class` from a free block of class `c` that lies below the line.
        let fits = |off: BlockOffset, c: u8| -> Result<Option<BlockOffset>> {
            if c < class || off.get() + class_size(c) > line {
                return Ok(None);
            }
            if c != class {
                self.carve(BlockOffset(off.get() + size), class_size(c) - size)?;
            }
            Ok(Some(off))
        };
        for c in class..CLASSES as u8 {
            while let Some(off) = self.pop(c)? {
                if let Some(b) = fits(off, c)? {
                    return Ok(Some(b));
                }
            }
        }
        // Blocks reusable since a checkpoint but not yet in a list.
        let h = self.lock_file.state();
        while let Some(s) = h.take_reclaimable(self.held()) {
            let (off, c) = (BlockOffset::of_slot(s), slot_class(s));
            if let Some(b) = fits(off, c)? {
                return Ok(Some(b));
            }
            if off.get() + class_size(c) <= line {
                self.push(off, c)?;
            }
        }
        Ok(None)
    }

    /// Moves the blocks released by completed checkpoints into the free lists, except those not
    /// wholly below `line`, which are dropped (the heap's end is about to be lowered to it).
    fn drain_reclaimable(&self, line: u64) -> Result<()> {
        let h = self.lock_file.state();
        while let Some(s) = h.take_reclaimable(self.held()) {
            let (off, class) = (BlockOffset::of_slot(s), slot_class(s));
            if off.get() + class_size(class) <= line {
                self.push(off, class)?;
            }
        }
        Ok(())
    }

    /// Unlinks every free block that does not lie wholly below `line` from its list. Writers
    /// change a list only at its head, under the lock this holds.
    fn purge_free_lists(&self, line: u64) -> Result<()> {
        let h = self.lock_file.state();
        self.forget_reuse_from(line);
        for class in 0..CLASSES as u8 {
            let size = class_size(class);
            let mut prev: Option<u64> = None;
            let mut cur = h.free_head(class);
            while cur != 0 {
                let next = self.map.load_u64(cur)?;
                if next != 0 && (next % BLOCK_ALIGN != 0 || next < HEAP_START) {
                    return Err(Error::corrupt(
                        &self.map.path,
                        crate::CorruptKind::FreeListLink {
                            link: next,
                            at: cur,
                        },
                    ));
                }
                if cur + size > line {
                    match prev {
                        None => h.set_free_head(self.held(), class, next),
                        Some(p) => self.map.store_u64(self.held(), p, next)?,
                    }
                } else {
                    prev = Some(cur);
                }
                cur = next;
            }
        }
        Ok(())
    }

    /// The live entries and the index copies, read from the live index.
    fn used_blocks(&self) -> Result<Vec<Used>> {
        let h = self.lock_file.state();
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let copy = index_block_len(slots);
        let mut used: Vec<Used> = [h.index[0].load(Relaxed), h.index[1].load(Relaxed), live]
            .iter()
            .map(|&at| Used {
                at,
                len: copy,
                slot: 0,
            })
            .collect();
        let mut chunk = vec![0u8; 64 << 10];
        let mut first = 0;
        while first < slots {
            let n = (slots - first).min(chunk.len() as u64 / 8);
            let buf = &mut chunk[..n as usize * 8];
            self.map.read(slot_at(live, first), buf)?;
            for word in buf.chunks_exact(8) {
                let s = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
                if slot_is_entry(s) {
                    used.push(Used {
                        at: slot_offset(s),
                        len: class_size(slot_class(s)),
                        slot: s,
                    });
                }
            }
            first += n;
        }
        Ok(used)
    }

    /// Writes the entries named by `slots` again below `line`, as one journaled transaction
    /// (up to half a record's limit of them), skipping those changed since (a key written or
    /// deleted meanwhile). Returns how many slots it went through, how many entries moved, and
    /// whether it stopped because one found no room below the line.
    fn move_below(&self, slots: &[u64], line: u64) -> Result<Moved> {
        let (mut ops, mut bytes, mut seen) = (Vec::new(), 0, 0);
        let budget = self.record_limit() / 2;
        for &s in slots {
            if bytes >= budget {
                break;
            }
            seen += 1;
            // Under the lock nothing moves: the block holds the entry its slot names if the key
            // still maps to this very slot.
            let Ok((key, e)) = index::entry_at(&self.map, s) else {
                continue;
            };
            let current = self.probe_live(&key, hash_key(&key))?.found;
            if current.map(|(_, cur)| cur) != Some(s) {
                continue;
            }
            let op = Op::Put {
                key: Cow::Owned(key),
                value: Cow::Owned(e.value),
                expires_ms: e.expires_at_ms,
                modified_ms: e.modified_at_ms,
            };
            bytes += op.encoded_len();
            ops.push(op);
        }
        if ops.is_empty() {
            return Ok(Moved {
                seen,
                moved: 0,
                stuck: false,
            });
        }
        // Index room now, with ordinary allocation: the commit then needs no rebuild, and the
        // blocks planned below the line are all its puts take.
        self.ensure_index_room(ops.len() as u64)?;
        let mut taken = Vec::new();
        for op in &ops {
            let Op::Put { key, value, .. } = op else {
                unreachable!("only puts")
            };
            let class = class_for((ENTRY_HEADER + key.len() + value.len()) as u64);
            match self.alloc_low(class, line)? {
                Some(at) => taken.push((at, class)),
                None => break,
            }
        }
        let stuck = taken.len() < ops.len();
        // Given back in reverse, so the commit's allocation pops these very blocks.
        ops.truncate(taken.len());
        for (at, class) in taken.into_iter().rev() {
            self.push(at, class)?;
        }
        if !ops.is_empty() {
            self.alloc_below.set(line);
            let committed = self.commit(&ops);
            self.alloc_below.set(0);
            committed?;
        }
        Ok(Moved {
            seen,
            moved: ops.len() as u64,
            stuck,
        })
    }
}

/// With `APCDB_COMPACT_TIMING` set, prints how long the final hold of the lock has taken at each
/// stage (to find what a writer's longest wait is made of).
fn timing(stage: &str, since: Instant) {
    if std::env::var_os("APCDB_COMPACT_TIMING").is_some() {
        eprintln!("compact: {stage} after {:?}", since.elapsed());
    }
}

/// What the durable checkpoint uses: its index copies and the end of its highest entry.
struct DurableUse {
    copies: [u64; 3],
    slots: u64,
    entries_top: u64,
}

/// With `APCDB_COMPACT_TIMING` set, prints `what`.
fn timing_note(what: &str) {
    if std::env::var_os("APCDB_COMPACT_TIMING").is_some() {
        eprintln!("compact: {what}");
    }
}

/// What one batch of moves did.
struct Moved {
    seen: usize,
    moved: u64,
    stuck: bool,
}

/// The lowest line such that the entries at or above it fit, with slack, in the free space
/// below it. `used` is sorted by offset. Index copies count as used where they lie, but do not
/// hold the line up: those at or above it move down to just past the entries that stay, once
/// nothing else lies there (`plan_copies`).
fn choose_line(used: &[Used], heap_end: u64) -> u64 {
    let total: u64 = used.iter().filter(|u| u.slot != 0).map(|u| u.len).sum();
    let (mut below, mut entries_below) = (0u64, 0u64);
    for u in used {
        if u.slot != 0 {
            let free = u.at - HEAP_START - below;
            if total - entries_below <= free - free / SLACK_DIV {
                return u.at;
            }
            entries_below += u.len;
        }
        below += u.len;
    }
    used.iter()
        .filter(|u| u.slot != 0)
        .map(|u| u.at + u.len)
        .max()
        .unwrap_or(HEAP_START)
        .min(heap_end)
}

/// Where the three index copies (`copies`, each `len` long) go: each, lowest first, to the
/// lowest place at or above `from` that overlaps neither a copy's current place (a durable
/// superblock still names those until the next checkpoint) nor a place chosen before, when
/// that is lower than where it lies; otherwise it stays.
fn plan_copies(copies: [u64; 3], len: u64, from: u64) -> [u64; 3] {
    let mut order = [0usize, 1, 2];
    order.sort_unstable_by_key(|&i| copies[i]);
    let mut taken: Vec<(u64, u64)> = copies.iter().map(|&c| (c, c + len)).collect();
    let mut dest = copies;
    for i in order {
        let mut d = from;
        while let Some(&(_, end)) = taken.iter().find(|&&(a, b)| a < d + len && d < b) {
            d = end;
        }
        if d < copies[i] {
            dest[i] = d;
            taken.push((d, d + len));
        }
    }
    dest
}

impl Store {
    /// Gives the room of deleted entries back to the disk **while other processes keep the
    /// store open** and go on reading and writing (SPEC.md §7.4). The entries in the heap's tail
    /// are written again lower down, in the free space deleted entries left (journaled batches
    /// of up to 256 entries: same key, value, expiry and modification time; a new
    /// [`Entry::version`](crate::Entry::version), like any write), the heap's end is lowered,
    /// and the disk blocks of the file past it are released (`FALLOC_FL_PUNCH_HOLE`): the file
    /// keeps its length (no process's mapping can fault) and takes that much less room on disk
    /// (`du`, `CompactReport::bytes_after`). The heap grows back into that space as it needs it.
    ///
    /// Writers wait only while a batch is moved, and for the steps that walk the index (and the
    /// free lists) to lower the heap's end ([`CompactReport::longest_lock`]); checkpoints flush
    /// without the lock. A crash at any moment leaves a whole store: each batch is a journaled
    /// write, and no block is released before a superblock records the lower end.
    ///
    /// The three index copies move down too, to just past the entries that stay
    /// ([`CompactReport::index_copies_moved`]); they keep their size (sized for the store's
    /// largest count). To shrink the files themselves and size the index for the live data,
    /// use [`compact_rewrite`](Self::compact_rewrite) when no other process has the store open.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] while a backup ([`backup_to`](Self::backup_to)) is copying from this
    /// store; [`Error::ReadOnly`] on a read-only handle; the errors of a write
    /// ([`put`](Self::put)) and of a checkpoint ([`checkpoint`](Self::checkpoint)); nothing
    /// acknowledged is lost by any of them.
    pub fn compact(&self) -> Result<CompactReport> {
        let inner = self.inner();
        let bytes_before = disk_bytes(self.path());
        let mut longest = Duration::ZERO;
        let mut hold = |started: Instant| longest = longest.max(started.elapsed());
        if inner.lock_file.backup_pinned() {
            return Err(Error::Busy {
                path: self.path().into(),
                detail: "compact: a backup is copying from this store; run it again after".into(),
            });
        }
        // 1. The line, from the state after a checkpoint (blocks deleted before it are free).
        inner.checkpoint_behind(&mut hold)?;
        inner.flush_before_write()?;
        let t = Instant::now();
        let (line, candidates) = {
            let txn = inner.lock()?;
            let mut used = txn.used_blocks()?;
            used.sort_unstable_by_key(|u| u.at);
            let line = choose_line(&used, txn.lock_file.state().heap_end());
            let tail: Vec<u64> = used
                .iter()
                .rev()
                .take_while(|u| u.at >= line)
                .map(|u| u.slot)
                .filter(|&s| s != 0)
                .collect();
            (line, tail)
        };
        hold(t);
        // 2. The tail's entries, highest first, a batch per hold of the lock.
        let mut moved = 0;
        let mut left = &candidates[..];
        while !left.is_empty() {
            inner.flush_before_write()?;
            let t = Instant::now();
            let txn = inner.lock()?;
            let m = txn.move_below(&left[..left.len().min(MOVE_BATCH)], line)?;
            drop(txn);
            hold(t);
            moved += m.moved;
            if m.stuck {
                // No room below the line for the next entry: step 3 raises the line above
                // what stays.
                break;
            }
            left = &left[m.seen..];
        }
        // 3. Lower the heap's end. Rounds: a checkpoint whose flush runs without the lock makes
        // the moves durable and releases the blocks they left; then, in one hold, the released
        // blocks past the line are dropped, the free lists are purged of blocks past the line
        // (so writers stop taking them), and the entries written past the line since are
        // listed. Many of those: moved in batches, one hold each, and another round. Few or
        // none (or the last round): the final hold moves them, makes sure no state on disk or
        // waiting for a checkpoint uses a block past the line, lowers the heap's end, and
        // freezes the checkpoint that records it.
        let mut line = line;
        // Passes that moved index copies down, and copies moved.
        let (mut copy_passes, mut index_copies_moved) = (0, 0);
        let mut round = 0;
        loop {
            round += 1;
            inner.checkpoint_behind(&mut hold)?;
            let (txn, t) = inner.lock_flushed()?;
            txn.drain_reclaimable(line)?;
            timing("round's drain", t);
            txn.purge_free_lists(line)?;
            timing("round's purge", t);
            let used = txn.used_blocks()?;
            timing("round's index walk", t);
            let entries_top = used
                .iter()
                .filter(|u| u.slot != 0)
                .map(|u| u.at + u.len)
                .max();
            let mut above: Vec<Used> = used
                .into_iter()
                .filter(|u| u.at + u.len > line && u.slot != 0)
                .collect();
            above.sort_unstable_by_key(|u| std::cmp::Reverse(u.at));
            let slots: Vec<u64> = above.iter().map(|u| u.slot).collect();
            // A block past the line still waiting for a checkpoint (freed by a writer since the
            // round's checkpoint) would join a free list after the purge: another round.
            let h = txn.lock_file.state();
            let pending_above = (0..h.pending_count())
                .map(|i| h.pending(i))
                .any(|s| slot_offset(s) + class_size(slot_class(s)) > line);
            timing("round's walk", t);
            if (!slots.is_empty() || pending_above) && round < STRAGGLER_ROUNDS {
                drop(txn);
                hold(t);
                let mut left = &slots[..];
                while !left.is_empty() {
                    let t = Instant::now();
                    let txn = inner.lock()?;
                    let m = txn.move_below(&left[..left.len().min(MOVE_BATCH)], line)?;
                    drop(txn);
                    hold(t);
                    moved += m.moved;
                    if m.stuck {
                        break;
                    }
                    left = &left[m.seen..];
                }
                continue;
            }
            // The final hold (nothing left past the line, or the last round).
            let mut left = &above[..];
            while !left.is_empty() {
                let batch: Vec<u64> = left[..left.len().min(MOVE_BATCH)]
                    .iter()
                    .map(|u| u.slot)
                    .collect();
                let m = txn.move_below(&batch, line)?;
                moved += m.moved;
                if m.stuck {
                    // Writers filled the room below the line since it was chosen: the free runs
                    // just past it become free blocks below a higher line, and the moves go on
                    // (those already moved are skipped: their slot changed).
                    let need = left.iter().map(|u| u.len).sum::<u64>();
                    match txn.raise_line(line, need, &above)? {
                        Some(higher) => {
                            line = higher;
                            let rest = left.iter().position(|u| u.at + u.len <= line);
                            left = &left[..rest.unwrap_or(left.len())];
                            continue;
                        }
                        None => break,
                    }
                }
                left = &left[m.seen..];
            }
            timing("stragglers moved", t);
            // No durable state may use a block past the line but the index copies the live
            // state uses too, and every freed block past it must be in a list before the purge:
            // if one still waits for a checkpoint, or was moved just now, or the durable state
            // uses one (an entry, or copies an index rebuild has replaced since), a checkpoint
            // under the lock settles all (small: the round's checkpoint just ran).
            let durable = if pending_above || !slots.is_empty() {
                None
            } else {
                Some(txn.durable_use()?)
            };
            let checkpointed = durable.as_ref().is_none_or(|d| {
                d.entries_top > line
                    || d.copies != txn.live_copies()
                    || d.slots != h.index_slots.load(Relaxed)
            });
            if checkpointed {
                txn.checkpoint()?;
            }
            txn.drain_reclaimable(line)?;
            timing("checkpoint", t);
            if checkpointed {
                // Its reclaim put every released block, past the line too, in a list.
                txn.purge_free_lists(line)?;
            }
            // Whatever entry could not move, or a block the durable checkpoint still names, sets
            // the entries' end (after a checkpoint here, the live state is the durable one).
            let entries_top = match checkpointed || !slots.is_empty() {
                true => txn
                    .used_blocks()?
                    .iter()
                    .filter(|u| u.slot != 0)
                    .map(|u| u.at + u.len)
                    .max(),
                false => entries_top,
            };
            let durable_top = durable.map_or(HEAP_START, |d| d.entries_top);
            let entries_end = line
                .max(entries_top.unwrap_or(HEAP_START))
                .max(durable_top)
                .min(h.heap_end());
            // From `line` up, nothing is used (live, durable, free or waiting) but the index
            // copies, which the live and the durable state share. Copies lying higher than
            // needed move down to just past the entries' end, in this hold; the superblock of
            // the checkpoint frozen here names their new places, and another round lowers the
            // heap's end once a checkpoint made them durable (the old places are free then).
            let copy_len = index_block_len(h.index_slots.load(Relaxed));
            let copies = txn.live_copies();
            let top = |c: &[u64; 3]| c.iter().map(|&c| c + copy_len).max().unwrap_or(HEAP_START);
            if std::env::var_os("APCDB_COMPACT_TIMING").is_some() {
                eprintln!(
                    "compact: line {line}, entries end {entries_end} (live {entries_top:?}, \
                     durable {durable_top}, checkpointed {checkpointed}, stragglers {}), copies \
                     {copies:?} of {copy_len}, heap end {}",
                    slots.len(),
                    h.heap_end()
                );
            }
            if copy_passes < COPY_PASSES {
                let dest = plan_copies(copies, copy_len, entries_end);
                // Worth a pass when the highest copy's end comes down, or a copy goes down by
                // its length at least (the old places it leaves may let a later pass bring the
                // highest one down).
                let worth =
                    top(&dest) < top(&copies) || (0..3).any(|k| dest[k] + copy_len <= copies[k]);
                if worth {
                    if txn.in_flight() {
                        // Frozen by a move's commit: its target must not move under it. What
                        // its completion releases past the line leaves the lists again.
                        txn.settle()?;
                        txn.drain_reclaimable(line)?;
                        txn.purge_free_lists(line)?;
                    }
                    index_copies_moved += txn.move_copies(dest)?;
                    timing("index copies moved", t);
                    txn.freeze()?;
                    drop(txn);
                    hold(t);
                    copy_passes += 1;
                    round = 0;
                    continue;
                }
            }
            line = entries_end.max(top(&copies)).min(h.heap_end());
            // Free blocks between the entries' line and the heap's new end leave their lists
            // until the next rebuild of the free lists (they were purged above). Readers never
            // reach the blocks past it: they left the live index before the checkpoint whose
            // completion released them, with `seq` odd.
            timing("free lists purged", t);
            // Nothing past the new end may stay reusable (a commit of this hold may have put a
            // released block there).
            txn.forget_reuse_from(line);
            h.set_heap_end(txn.held(), line);
            // The superblock records the lower end before any block past it is released (a
            // checkpoint a move's commit froze is finished first: one at a time).
            txn.settle()?;
            txn.freeze()?;
            drop(txn);
            hold(t);
            break;
        }
        inner.copy_and_flush(true)?;
        // 4. Punch from the heap's end to the file's end, never below the end any superblock
        // on disk or in flight records.
        let mut at = line.next_multiple_of(BACKING_CHUNK);
        loop {
            let t = Instant::now();
            let txn = inner.lock()?;
            let file_len = txn.map.refresh_len()?;
            let to = (at + PUNCH_PER_HOLD * BACKING_CHUNK).min(file_len);
            let from = at.max(txn.punch_floor()?);
            if from < to {
                match txn.map.punch(txn.held(), from, to - from) {
                    Ok(()) => {}
                    // A filesystem that cannot punch holes: the heap's end is lowered (the heap
                    // reuses the tail first) but no block goes back to the disk.
                    Err(Error::Io { source, .. })
                        if source.raw_os_error() == Some(libc::EOPNOTSUPP) =>
                    {
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            drop(txn);
            hold(t);
            if to >= file_len {
                break;
            }
            at = to;
        }
        Ok(CompactReport {
            entries: self.stats()?.entries,
            moved,
            index_copies_moved,
            heap_end: line,
            bytes_before,
            bytes_after: disk_bytes(self.path()),
            longest_lock: longest,
        })
    }
}

impl Inner {
    /// A whole checkpoint that holds the write lock only to freeze, copy slices and complete:
    /// its flush runs without it, while writers go on (SPEC.md §5). `hold` is told each hold.
    fn checkpoint_behind(&self, hold: &mut impl FnMut(Instant)) -> Result<()> {
        // Someone else's frozen checkpoint first, without the lock.
        let (txn, t) = self.lock_flushed()?;
        txn.freeze()?;
        drop(txn);
        hold(t);
        let (txn, t) = self.lock_flushed()?;
        drop(txn);
        hold(t);
        Ok(())
    }

    /// The write lock, with no checkpoint in flight left to flush, and when the lock was taken:
    /// a checkpoint frozen since (writers freeze one when their journal half fills) is copied and
    /// flushed without the lock first, so that the hold only completes it. A few tries, as
    /// writers may freeze the next one meanwhile; the last settles under the lock.
    fn lock_flushed(&self) -> Result<(WriteTxn<'_>, Instant)> {
        for _ in 0..FLUSH_TRIES {
            self.copy_and_flush(true)?;
            let t = Instant::now();
            let txn = self.lock()?;
            if !txn.flush_due() {
                txn.settle()?;
                return Ok((txn, t));
            }
        }
        let t = Instant::now();
        let txn = self.lock()?;
        txn.settle()?;
        Ok((txn, t))
    }
}

impl WriteTxn<'_> {
    /// The durable superblock's three index copies (the two checkpoint copies, then the live
    /// one) and the end of the highest entry block its durable copy names.
    fn durable_use(&self) -> Result<DurableUse> {
        let sb = self.durable_superblock()?;
        let durable = sb.index[sb.durable_copy as usize];
        let mut entries_top = HEAP_START;
        let mut chunk = vec![0u8; 64 << 10];
        let mut first = 0;
        while first < sb.index_slots {
            let n = (sb.index_slots - first).min(chunk.len() as u64 / 8);
            let buf = &mut chunk[..n as usize * 8];
            self.map.read(slot_at(durable, first), buf)?;
            for word in buf.chunks_exact(8) {
                let s = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
                if slot_is_entry(s) {
                    entries_top = entries_top.max(slot_offset(s) + class_size(slot_class(s)));
                }
            }
            first += n;
        }
        Ok(DurableUse {
            copies: [sb.index[0], sb.index[1], sb.live],
            slots: sb.index_slots,
            entries_top,
        })
    }

    /// Gives the free runs just past `line` to the free lists, lowest first, until they hold
    /// `need` bytes and an eighth more, and returns the line past the last of them (None if there
    /// is none). A run is free when no live entry (`above`: every entry past the line, as the
    /// live index named them in this hold, whose moves only allocate below it), no index copy
    /// and no block waiting for a checkpoint lies in it: past the line, the free lists and the
    /// released blocks are emptied here, and whatever the durable checkpoint names is live or
    /// waiting.
    fn raise_line(&self, line: u64, need: u64, above: &[Used]) -> Result<Option<u64>> {
        // The moves' own commits may have completed a checkpoint and linked some of the blocks
        // it released, past the line too (`reclaim_some`, an index rebuild's allocation): out of
        // the lists again, so that no run given below is also a listed block.
        let h = self.lock_file.state();
        if h.pending_overflowed() {
            // Some freed blocks are in no list and not in the ring either: a run cannot be known
            // to be free.
            return Ok(None);
        }
        self.drain_reclaimable(line)?;
        self.purge_free_lists(line)?;
        let copy_len = index_block_len(h.index_slots.load(Relaxed));
        let mut busy: Vec<(u64, u64)> = above.iter().map(|u| (u.at, u.at + u.len)).collect();
        busy.extend(self.live_copies().iter().map(|&c| (c, c + copy_len)));
        busy.extend((0..h.pending_count()).map(|i| {
            let s = h.pending(i);
            (slot_offset(s), slot_offset(s) + class_size(slot_class(s)))
        }));
        busy.retain(|&(_, end)| end > line);
        busy.sort_unstable();
        timing_note(&format!(
            "raise: {} above, {} pending, {} busy past the line",
            above.len(),
            h.pending_count(),
            busy.len()
        ));
        let want = need + need / 7;
        let end = h.heap_end();
        let (mut at, mut given, mut new_line) = (line, 0, None);
        for (from, to) in busy.into_iter().chain(std::iter::once((end, end))) {
            if given >= want || at >= end {
                break;
            }
            // Only as much of a run as is wanted: the rest stays past the line.
            let gap_end = from
                .min(end)
                .min(at + (want - given).next_multiple_of(BLOCK_ALIGN));
            if gap_end > at {
                self.carve(BlockOffset(at), gap_end - at)?;
                given += gap_end - at;
                new_line = Some(gap_end);
            }
            at = at.max(to);
        }
        timing_note(&format!(
            "line raised from {line} to {new_line:?} for {need} bytes: {given} given"
        ));
        Ok(new_line)
    }

    /// The live state's three index copies (the two checkpoint copies, then the live one).
    fn live_copies(&self) -> [u64; 3] {
        let h = self.lock_file.state();
        [
            h.index[0].load(Relaxed),
            h.index[1].load(Relaxed),
            h.live_index.load(Relaxed),
        ]
    }

    /// Moves the index copies to `dest` (as `live_copies` orders them; a copy whose place is
    /// unchanged stays). No checkpoint may be in flight, and nothing may use the new places.
    /// The old places are left in no list: the durable superblock names them until the next
    /// checkpoint, and they lie past the heap's end once it is lowered.
    fn move_copies(&self, dest: [u64; 3]) -> Result<u32> {
        debug_assert!(!self.in_flight());
        let h = self.lock_file.state();
        let now = self.live_copies();
        let slots = h.index_slots.load(Relaxed);
        // A checkpoint copy's bytes matter only once a checkpoint has written it: it gets a new
        // place, and the next two checkpoints copy every page into the checkpoint copies (the
        // first into its target, the second into the other).
        for k in 0..2 {
            if dest[k] != now[k] {
                h.index[k].store(dest[k], Relaxed);
                crate::checkpoint::mark_whole_index(h, slots);
            }
        }
        // The live copy is read without the lock: it is copied whole with readers held off, so
        // a lock-free read that started on the old place starts over on the new one. The dirty
        // bitmaps count pages from the copy's start, so they stay right.
        if dest[2] != now[2] {
            self.exclude_readers(|| -> Result<()> {
                self.map
                    .copy(self.held(), now[2], dest[2], index_len(slots))?;
                h.live_index.store(dest[2], Release);
                Ok(())
            })?;
        }
        Ok((0..3).filter(|&k| dest[k] != now[k]).count() as u32)
    }
    /// The superblock of the durable checkpoint (the adopted epoch's).
    fn durable_superblock(&self) -> Result<Superblock> {
        let epoch = self.lock_file.state().epoch.load(Relaxed);
        let mut b = [0u8; SUPERBLOCK_LEN];
        self.map
            .read(SUPERBLOCK_OFFSETS[(epoch % 2) as usize], &mut b)?;
        UncheckedSuperblock::decode(&b)
            .and_then(|sb| sb.validate(self.map.len()))
            .map_err(|problem| {
                Error::corrupt(
                    &self.map.path,
                    crate::CorruptKind::DurableSuperblock { problem },
                )
            })
    }

    /// Where a hole may start: past the live heap end, the durable superblock's, and that of a
    /// checkpoint in flight, rounded up to a chunk.
    fn punch_floor(&self) -> Result<u64> {
        // A checkpoint flushed but not adopted has blanked the superblock `epoch` names.
        self.complete()?;
        let h = self.lock_file.state();
        let mut end = h.heap_end().max(self.durable_superblock()?.heap_end);
        if self.in_flight() {
            end = end.max(h.frozen_heap_end.load(Relaxed));
        }
        Ok(end.next_multiple_of(BACKING_CHUNK))
    }
}
