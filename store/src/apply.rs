//! Applying a journaled transaction to the live index. By the time these run, the record is in
//! the journal and every block the transaction needs is allocated, so nothing here can fail for
//! lack of space: a transaction is applied whole (or, if the process dies midway, redone whole by
//! recovery).

use crate::alloc::{Block, BlockOffset};
use crate::error::Result;
use crate::format::*;
use crate::index;
use crate::journal::Op;
use crate::write::WriteTxn;
use std::sync::atomic::Ordering::*;

/// The live index as the target of journal replay (`format::replay` says what each operation
/// means; this says how it changes the map). Each put takes the next block planned for it.
struct LiveIndex<'a> {
    txn: &'a WriteTxn<'a>,
    blocks: std::slice::Iter<'a, Block>,
    /// A commit, not a recovery's replay: each key written is marked in the access table (a
    /// new entry gets its second chance and starts with no hits).
    note_written: bool,
}

impl Replay for LiveIndex<'_> {
    type Error = crate::Error;
    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires_ms: u64,
        modified_ms: u64,
        version: u64,
    ) -> Result<()> {
        let block = *self.blocks.next().expect("one planned block per put");
        let header = entry_header_for(key, value, expires_ms, modified_ms, version);
        let hash = hash_key(key);
        self.txn
            .apply_put(block, key, hash, &[&header, key, value])?;
        if self.note_written {
            // The put's own time, read once when it was built.
            let now_s = (modified_ms / 1000) as u32;
            let h = self.txn.lock_file.state();
            h.written(crate::lock_file::access_bucket(hash), now_s);
        }
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        if let Some((pos, old)) = self.txn.probe_live(key, hash_key(key))?.found {
            self.txn.unlink(pos, old)?;
        }
        Ok(())
    }
    fn clear(&mut self) -> Result<()> {
        self.txn.clear_index()
    }
    fn set_generation(&mut self, generation: u64) -> Result<()> {
        self.txn
            .lock_file
            .state()
            .generation
            .store(generation, Relaxed);
        Ok(())
    }
}

/// The blocks planned for a transaction's puts, in order: the one block of a single put is kept
/// inline, so that the common write allocates nothing here.
pub(crate) enum Planned {
    None,
    One(Block),
    Many(Vec<Block>),
}

impl Planned {
    fn push(&mut self, b: Block) {
        match self {
            // In place: the common single put moves nothing but the block.
            Planned::None => *self = Planned::One(b),
            Planned::One(a) => *self = Planned::Many(vec![*a, b]),
            Planned::Many(v) => v.push(b),
        }
    }
}

impl std::ops::Deref for Planned {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        match self {
            Planned::None => &[],
            Planned::One(b) => std::slice::from_ref(b),
            Planned::Many(v) => v,
        }
    }
}

/// Adds `delta` (two's complement for a decrease) to a counter of the lock file. Only the
/// holder of the write lock changes these counters (everyone else only reads them), so a load
/// and a store do what a locked read-modify-write would, without its cost on every put.
#[inline]
fn add(counter: &std::sync::atomic::AtomicU64, delta: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(delta), Relaxed);
}

/// Index load (entries plus tombstones) above which the index is rebuilt before an insert.
pub(crate) const MAX_LOAD_PERCENT: u64 = 70;

impl WriteTxn<'_> {
    /// Makes sure `new_keys` more keys fit in the index, rebuilding it (bigger, or just without
    /// tombstones) when needed.
    pub(crate) fn ensure_index_room(&self, new_keys: u64) -> Result<()> {
        let h = self.lock_file.state();
        let slots = h.index_slots.load(Relaxed);
        if (h.used_slots.load(Relaxed) + new_keys) * 100 <= slots * MAX_LOAD_PERCENT {
            return Ok(());
        }
        let need = (h.entries.load(Relaxed) + new_keys) * 100 / MAX_LOAD_PERCENT + 1;
        // At least an eighth above the limit, so the rebuilt index is not full again at once: a
        // rebuild that grows the index leaves it 31-62 % full (one that keeps the size, less).
        let target = (need + need / 8).next_power_of_two().max(slots);
        self.rebuild_index(target)
    }

    /// Allocates one block per Put; on failure gives back what it took and returns None.
    pub(crate) fn plan_blocks(&self, ops: &[Op]) -> Result<Option<Planned>> {
        let mut blocks = Planned::None;
        for op in ops {
            if let Op::Put { key, value, .. } = op {
                let class = class_for((ENTRY_HEADER + key.len() + value.len()) as u64);
                match self.alloc(class)? {
                    Some(at) => blocks.push(Block { at, class }),
                    None => {
                        for b in blocks.iter() {
                            self.push(b.at, b.class)?;
                        }
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(blocks))
    }

    /// Applies the operations of record `lsn` using the blocks planned for its Puts;
    /// `note_written` for a commit (see `LiveIndex`).
    pub(crate) fn apply(
        &self,
        lsn: u64,
        ops: &[Op],
        blocks: &[Block],
        note_written: bool,
    ) -> Result<()> {
        replay(
            lsn,
            ops,
            &mut LiveIndex {
                txn: self,
                blocks: blocks.iter(),
                note_written,
            },
        )
    }

    /// Writes the entry into its planned block and publishes it in the live index, replacing the
    /// key's previous entry if any.
    fn apply_put(&self, block: Block, key: &[u8], hash: u64, entry: &[&[u8]]) -> Result<()> {
        let h = self.lock_file.state();
        let (off, class) = (block.at.get(), block.class);
        self.map.write_parts(self.held(), off, entry)?;
        // For a later resume's check that the data file is still the one written (§7.5).
        h.last_entry[0].store(off + 1, Relaxed);
        h.last_entry[1].store(u32_at(entry[0], entry_at::CRC) as u64, Relaxed);
        let slot = slot_pack(off, class, hash);
        let p = self.probe_live(key, hash)?;
        if let Some((pos, old)) = p.found {
            self.publish_over(pos, old, slot)?;
            self.free_later(old);
            add(
                &h.used_bytes,
                class_size(class).wrapping_sub(class_size(slot_class(old))),
            );
        } else {
            let pos = p.free.expect("index room ensured before apply");
            let before = self.map.load_u64(pos)?;
            if before == SLOT_TOMBSTONE {
                add(&h.tombstones, 1u64.wrapping_neg());
            } else {
                add(&h.used_slots, 1);
            }
            self.publish_over(pos, before, slot)?;
            add(&h.entries, 1);
            add(&h.used_bytes, class_size(class));
        }
        add(&h.inserts, 1);
        Ok(())
    }

    pub(crate) fn probe_live(&self, key: &[u8], hash: u64) -> Result<index::Probe> {
        let h = self.lock_file.state();
        index::probe(
            &self.map,
            h.live_index.load(Relaxed),
            h.index_slots.load(Relaxed),
            key,
            hash,
        )
    }

    /// Replaces an entry's slot by a tombstone (readers see the key gone in one store).
    pub(crate) fn unlink(&self, pos: u64, old: u64) -> Result<()> {
        let h = self.lock_file.state();
        self.publish(pos, SLOT_TOMBSTONE)?;
        self.free_later(old);
        add(&h.tombstones, 1);
        add(&h.entries, 1u64.wrapping_neg());
        add(&h.used_bytes, class_size(slot_class(old)).wrapping_neg());
        add(&h.deletes, 1);
        Ok(())
    }

    /// One aligned 8-byte store into the live index, remembered for the next checkpoint.
    pub(crate) fn publish(&self, pos: u64, slot: u64) -> Result<()> {
        let old = match self.undo_active.get() {
            true => self.map.load_u64(pos)?,
            false => 0,
        };
        self.publish_over(pos, old, slot)
    }

    /// `publish` where the caller has just read the slot (`old`, which the undo area needs):
    /// nothing but this holder changes the index, so it is still there.
    fn publish_over(&self, pos: u64, old: u64, slot: u64) -> Result<()> {
        if self.undo_active.get() {
            // The value before, in the undo area before the store (SPEC.md §7.5).
            self.log_slot(pos, old);
        }
        self.before_index_write(pos)?;
        self.map.store_u64(self.held(), pos, slot)?;
        let h = self.lock_file.state();
        let page = (pos - h.live_index.load(Relaxed)) / PAGE;
        let word = &h.dirty[(page / 64) as usize];
        let bit = 1 << (page % 64);
        // Mostly set already: a put dirties few pages per cycle, so this is usually a load.
        let bits = word.load(Relaxed);
        if bits & bit == 0 {
            word.store(bits | bit, Relaxed);
        }
        Ok(())
    }

    fn clear_index(&self) -> Result<()> {
        let h = self.lock_file.state();
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        for i in 0..slots {
            let s = self.map.load_u64(slot_at(live, i))?;
            if s != SLOT_EMPTY {
                self.publish(slot_at(live, i), SLOT_EMPTY)?;
                if slot_is_entry(s) {
                    self.free_later(s);
                }
            }
        }
        for counter in [&h.entries, &h.used_bytes, &h.used_slots, &h.tombstones] {
            counter.store(0, Relaxed);
        }
        Ok(())
    }

    /// Moves every live entry into three fresh index copies of `slots` slots. The old ones stay
    /// intact until the next checkpoint, which names the new ones.
    pub(crate) fn rebuild_index(&self, slots: u64) -> Result<()> {
        if slots > MAX_INDEX_SLOTS {
            return Err(crate::Error::Full {
                path: self.map.path.clone(),
                detail: format!("index would need {slots} slots (limit {MAX_INDEX_SLOTS})"),
            });
        }
        // A checkpoint in flight names the current copies: it completes first.
        self.settle()?;
        let class = index_block_class(slots);
        let mut got = Vec::new();
        for _ in 0..3 {
            match self.alloc_index(class)? {
                Some(at) => got.push(at),
                None => {
                    for at in got {
                        self.push(at, class)?;
                    }
                    return Err(self.full_error("no room to grow the index"));
                }
            }
        }
        self.exclude_readers(|| self.fill_new_index(got[0], got[1], got[2], slots))
    }

    fn fill_new_index(
        &self,
        a: BlockOffset,
        b: BlockOffset,
        c: BlockOffset,
        slots: u64,
    ) -> Result<()> {
        let (a, b, c) = (a.get(), b.get(), c.get());
        let h = self.lock_file.state();
        let (old_live, old_slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        self.map
            .write(self.held(), a, &vec![0u8; index_len(slots) as usize])?;
        let mask = slots - 1;
        let (mut entries, mut bytes) = (0, 0);
        for i in 0..old_slots {
            let s = self.map.load_u64(slot_at(old_live, i))?;
            if !slot_is_entry(s) {
                continue;
            }
            let key = index::key_at(&self.map, s)?;
            let hash = hash_key(&key);
            let mut j = hash & mask;
            while self.map.load_u64(slot_at(a, j))? != SLOT_EMPTY {
                j = (j + 1) & mask;
            }
            self.map.store_u64(
                self.held(),
                slot_at(a, j),
                slot_pack(slot_offset(s), slot_class(s), hash),
            )?;
            entries += 1;
            bytes += class_size(slot_class(s));
        }
        let old_class = index_block_class(old_slots);
        for old in [h.index[0].load(Relaxed), h.index[1].load(Relaxed), old_live] {
            self.free_later(slot_pack(old, old_class, 0));
        }
        h.index[0].store(b, Relaxed);
        h.index[1].store(c, Relaxed);
        h.index_slots.store(slots, Relaxed);
        // Copy 1 is named durable for now; the next checkpoint copies every page into copy 0,
        // and the one after into copy 1.
        h.durable_copy.store(1, Relaxed);
        h.live_index.store(a, Release);
        crate::checkpoint::mark_whole_index(h, slots);
        h.entries.store(entries, Relaxed);
        h.used_bytes.store(bytes, Relaxed);
        h.used_slots.store(entries, Relaxed);
        h.tombstones.store(0, Relaxed);
        Ok(())
    }
}
