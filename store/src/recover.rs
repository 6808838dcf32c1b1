//! Recovery: rebuild the live state from the newest valid superblock and the journal.
//!
//! It runs when the first process opens the store, and whenever a process finds that the
//! previous holder of the write lock died (EOWNERDEAD). The same procedure is right for both a
//! process crash and a power cut, because it never trusts anything written after the last
//! checkpoint except checksummed journal records:
//! 1. pick the valid superblock with the highest epoch;
//! 2. make the live index copy equal to the durable one it names (both live in the data file; the
//!    durable one was not written since that checkpoint);
//! 3. recompute the free lists and counters from that index;
//! 4. replay the journal records of that checkpoint's cycle, in LSN order, up to the first torn,
//!    corrupt or out-of-sequence record;
//! 5. if anything was replayed, checkpoint, so the journal starts empty.

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::store::Inner;
use std::sync::atomic::Ordering::*;

impl Inner {
    /// Runs recovery; the caller holds the write lock. Returns the number of records replayed.
    pub(crate) fn recover_locked(&self) -> Result<u64> {
        let replayed = self.readers_out(|| self.rebuild_live_state())?;
        if replayed > 0 || self.shm.hdr().pending_count.load(Relaxed) > 0 {
            self.checkpoint_locked()?;
        }
        Ok(replayed)
    }

    fn rebuild_live_state(&self) -> Result<u64> {
        let h = self.shm.hdr();
        let file_size = self.map.refresh_len()?;
        h.file_size.store(file_size, Release);
        let sb = read_superblock(&self.map.path, file_size, |at, b| self.map.read(at, b))?;
        let durable = sb.index[sb.durable_copy as usize];
        let live = sb.index[1 - sb.durable_copy as usize];
        let bytes = index_len(sb.index_slots);
        if self.index_crc(durable, sb.index_slots)? != sb.index_crc {
            return Err(Error::corrupt(
                &self.map.path,
                CorruptKind::IndexChecksum { epoch: sb.epoch },
            ));
        }
        for page in 0..bytes.div_ceil(PAGE) {
            let (off, len) = (page * PAGE, PAGE.min(bytes - page * PAGE));
            if !self.map.equal(durable + off, live + off, len)? {
                self.map.copy(durable + off, live + off, len)?;
            }
        }
        for w in &h.dirty {
            w.store(0, Relaxed);
        }
        h.index[0].store(sb.index[0], Relaxed);
        h.index[1].store(sb.index[1], Relaxed);
        h.index_slots.store(sb.index_slots, Relaxed);
        h.durable_copy.store(sb.durable_copy, Relaxed);
        h.live_index.store(live, Release);
        h.heap_end.store(sb.heap_end, Relaxed);
        h.epoch.store(sb.epoch, Relaxed);
        h.ckpt_lsn.store(sb.ckpt_lsn, Relaxed);
        h.generation.store(sb.generation, Relaxed);
        h.created_ms.store(sb.created_ms, Relaxed);
        self.rebuild_free_lists()?;

        let scan = if self.journal_is_new.swap(false, Relaxed) {
            crate::journal::Scan {
                records: Vec::new(),
                end: 0,
                stopped: None,
            }
        } else {
            self.journal.scan(sb.epoch, sb.ckpt_lsn + 1)?
        };
        let replayed = scan.records.len() as u64;
        for (lsn, ops) in &scan.records {
            self.ensure_index_room(ops.len() as u64)?;
            let blocks = match self.plan_blocks(ops)? {
                Some(b) => b,
                None => {
                    self.rebuild_free_lists()?;
                    self.plan_blocks(ops)?
                        .ok_or_else(|| self.full("no room to replay the journal"))?
                }
            };
            self.apply(*lsn, ops, &blocks)?;
        }
        let last = sb.ckpt_lsn + replayed;
        h.next_lsn.store(last + 1, Relaxed);
        h.written_lsn.store(last, Relaxed);
        h.durable_lsn.store(sb.ckpt_lsn, Relaxed);
        h.journal_pos.store(scan.end, Relaxed);
        h.recoveries.fetch_add(1, Relaxed);
        h.recovered_records.store(replayed, Relaxed);
        Ok(replayed)
    }
}
