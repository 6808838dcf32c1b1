//! Space in the heap: blocks of size classes, kept in per-class free lists whose heads live in the
//! lock file and whose links live in the free blocks themselves.
//!
//! The rule that keeps a power cut harmless (SPEC.md, "Why a power cut cannot corrupt"): a block
//! the durable checkpoint may still reference is never written. So a freed block waits in the
//! pending list until the next checkpoint is durable, and only then joins a free list.

use crate::error::{Error, Result};
use crate::layout::*;
use crate::store::Inner;
use std::sync::atomic::Ordering::*;

/// The largest class whose blocks fit in `len` bytes.
fn class_within(len: u64) -> u8 {
    let c = class_for(len);
    if class_size(c) > len {
        c - 1
    } else {
        c
    }
}

impl Inner {
    /// A block of `class`, or None when the store has no room for it.
    pub(crate) fn alloc(&self, class: u8) -> Result<Option<u64>> {
        if let Some(off) = self.pop(class)? {
            return Ok(Some(off));
        }
        let size = class_size(class);
        let h = self.shm.hdr();
        let end = h.heap_end.load(Relaxed);
        if end + size <= self.map.len() {
            h.heap_end.store(end + size, Relaxed);
            return Ok(Some(end));
        }
        for bigger in class + 1..CLASSES as u8 {
            if let Some(off) = self.pop(bigger)? {
                self.carve(off + size, class_size(bigger) - size)?;
                return Ok(Some(off));
            }
        }
        if end + size <= self.map.reserved() {
            // Grow by a quarter (1 to 64 MiB at a time): enough to make growth rare, little
            // enough that a large store does not double its file for one more entry.
            let len = self.map.len();
            let want = (len + (len / 4).clamp(1 << 20, 64 << 20))
                .max(end + size)
                .min(self.map.reserved());
            match self
                .map
                .grow(want.next_multiple_of(PAGE).min(self.map.reserved()))
            {
                Ok(()) => {
                    h.file_size.fetch_max(self.map.len(), Release);
                    h.heap_end.store(end + size, Relaxed);
                    return Ok(Some(end));
                }
                Err(e) if e.is_full() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn pop(&self, class: u8) -> Result<Option<u64>> {
        let head = &self.shm.hdr().free_heads[class as usize];
        let off = head.load(Relaxed);
        if off == 0 {
            return Ok(None);
        }
        let next = self.map.load_u64(off)?;
        let heap_end = self.shm.hdr().heap_end.load(Relaxed);
        if next != 0 && (next % BLOCK_ALIGN != 0 || next < HEAP_START || next >= heap_end) {
            return Err(Error::corrupt(
                &self.map.path,
                format!("free list link {next} at {off} is invalid"),
            ));
        }
        head.store(next, Relaxed);
        Ok(Some(off))
    }

    /// Returns a block that no durable state references (it was free before this transaction).
    pub(crate) fn push(&self, off: u64, class: u8) -> Result<()> {
        let head = &self.shm.hdr().free_heads[class as usize];
        self.map.store_u64(off, head.load(Relaxed))?;
        head.store(off, Relaxed);
        Ok(())
    }

    /// Cuts `[off, off+len)` into the largest blocks that fit and frees them.
    fn carve(&self, mut off: u64, mut len: u64) -> Result<()> {
        while len >= BLOCK_ALIGN {
            let c = class_within(len);
            self.push(off, c)?;
            off += class_size(c);
            len -= class_size(c);
        }
        Ok(())
    }

    /// Frees a block the last checkpoint may reference: it becomes reusable after the next one.
    pub(crate) fn free_later(&self, slot: u64) {
        let h = self.shm.hdr();
        let n = h.pending_count.load(Relaxed) as usize;
        if n < h.pending.len() {
            h.pending[n].store(slot, Relaxed);
            h.pending_count.store(n as u64 + 1, Relaxed);
        } else {
            h.pending_overflow.store(1, Relaxed);
        }
    }

    /// After a durable checkpoint: the pending blocks join the free lists.
    pub(crate) fn reclaim(&self) -> Result<()> {
        let h = self.shm.hdr();
        if h.pending_overflow.load(Relaxed) != 0 {
            return self.rebuild_free_lists();
        }
        for i in 0..h.pending_count.load(Relaxed) as usize {
            let s = h.pending[i].load(Relaxed);
            self.push(slot_offset(s), slot_class(s))?;
        }
        h.pending_count.store(0, Relaxed);
        Ok(())
    }

    /// Recomputes free space as everything in the heap not used by a live entry or an index
    /// copy (coalescing neighbours), and the usage counters with it. Used by recovery, after
    /// pending overflow, and when the store runs out of room.
    pub(crate) fn rebuild_free_lists(&self) -> Result<()> {
        let h = self.shm.hdr();
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let heap_end = h.heap_end.load(Relaxed);
        let index_class = class_for(slots * 8);
        let mut used: Vec<(u64, u64)> = h
            .index
            .iter()
            .map(|c| (c.load(Relaxed), class_size(index_class)))
            .collect();
        let (mut entries, mut bytes, mut tombstones) = (0u64, 0u64, 0u64);
        for i in 0..slots {
            let s = self.map.load_u64(live + i * 8)?;
            tombstones += (s == SLOT_TOMBSTONE) as u64;
            if slot_is_entry(s) {
                let (off, len) = (slot_offset(s), class_size(slot_class(s)));
                if off < HEAP_START || off + len > heap_end {
                    return Err(Error::corrupt(
                        &self.map.path,
                        format!("index slot {i} points outside the heap"),
                    ));
                }
                used.push((off, len));
                entries += 1;
                bytes += len;
            }
        }
        used.sort_unstable();
        for head in &h.free_heads {
            head.store(0, Relaxed);
        }
        let mut cursor = HEAP_START;
        for (off, len) in used {
            if off < cursor {
                return Err(Error::corrupt(
                    &self.map.path,
                    format!("blocks overlap at {off}"),
                ));
            }
            self.carve(cursor, off - cursor)?;
            cursor = off + len;
        }
        self.carve(cursor, heap_end - cursor)?;
        h.pending_count.store(0, Relaxed);
        h.pending_overflow.store(0, Relaxed);
        h.entries.store(entries, Relaxed);
        h.used_bytes.store(bytes, Relaxed);
        h.tombstones.store(tombstones, Relaxed);
        h.used_slots.store(entries + tombstones, Relaxed);
        Ok(())
    }
}
