//! The checkpoint: make the live index and every entry it references durable, publish them with a
//! new superblock, then let the journal and the blocks freed since the last checkpoint be reused.
//!
//! Order matters (SPEC.md, "Checkpoint"):
//! 1. `msync` the data file: the live index copy and all new entries reach the disk.
//! 2. Write the other superblock slot (epoch + 1, naming the live copy as durable) and `msync` it.
//! 3. Only now: the journal restarts at offset 0 under the new epoch; pending blocks are freed;
//!    the old durable copy is brought up to date and becomes the live copy.

use crate::error::Result;
use crate::format::*;
use crate::store::Inner;
use std::sync::atomic::Ordering::*;

impl Inner {
    /// Runs a checkpoint. The caller holds the write lock.
    pub(crate) fn checkpoint_locked(&self) -> Result<()> {
        self.check_poison()?;
        self.check_data_file_identity()?;
        let h = self.shm.hdr();
        // The real length: another process may have grown the file, and its pages must be
        // flushed and recorded too.
        let file_size = self.map.refresh_len()?;
        self.flush(0, file_size)?;
        let live_copy = 1 - h.durable_copy.load(Relaxed);
        let index_crc = self.index_crc(
            h.index[live_copy as usize].load(Relaxed),
            h.index_slots.load(Relaxed),
        )?;
        let epoch = h.epoch.load(Relaxed) + 1;
        let ckpt_lsn = h.next_lsn.load(Relaxed) - 1;
        let sb = Superblock {
            epoch,
            ckpt_lsn,
            file_size,
            max_size: self.map.reserved(),
            heap_end: h.heap_end.load(Relaxed),
            index: [h.index[0].load(Relaxed), h.index[1].load(Relaxed)],
            index_slots: h.index_slots.load(Relaxed),
            durable_copy: live_copy,
            generation: h.generation.load(Relaxed),
            journal_size: self.journal.size,
            created_ms: h.created_ms.load(Relaxed),
            index_crc,
        };
        // Never publish a superblock the next open would refuse (say, processes that reserved
        // different maximum sizes disagree about the heap): fail this checkpoint instead.
        sb.check(file_size).map_err(|problem| {
            crate::Error::corrupt(
                &self.map.path,
                crate::CorruptKind::RefusedSuperblock { epoch, problem },
            )
        })?;
        let at = SUPERBLOCK_OFFSETS[(epoch % 2) as usize];
        self.map.write(at, &sb.encode())?;
        self.flush(at, SUPERBLOCK_LEN as u64)?;

        // The checkpoint is durable: everything up to ckpt_lsn is safe without the journal.
        h.epoch.store(epoch, Relaxed);
        h.ckpt_lsn.store(ckpt_lsn, Relaxed);
        h.durable_lsn.fetch_max(ckpt_lsn, AcqRel);
        h.journal_pos.store(0, Relaxed);
        h.durable_copy.store(live_copy, Relaxed);
        h.checkpoints.fetch_add(1, Relaxed);

        self.readers_out(|| self.swap_copies(live_copy).and_then(|()| self.reclaim()))
    }

    /// Brings the copy that was durable until now up to date with the live one (only the pages
    /// changed since the last checkpoint) and makes it the live copy.
    fn swap_copies(&self, now_durable: u64) -> Result<()> {
        let h = self.shm.hdr();
        let from = h.index[now_durable as usize].load(Relaxed);
        let to = h.index[1 - now_durable as usize].load(Relaxed);
        let bytes = index_len(h.index_slots.load(Relaxed));
        for page in 0..bytes.div_ceil(PAGE) {
            let word = &h.dirty[(page / 64) as usize];
            if word.load(Relaxed) & (1 << (page % 64)) != 0 {
                let len = PAGE.min(bytes - page * PAGE);
                self.map.copy(from + page * PAGE, to + page * PAGE, len)?;
            }
        }
        for w in &h.dirty {
            w.store(0, Relaxed);
        }
        h.live_index.store(to, Release);
        Ok(())
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

    /// msync that poisons the store on failure: after a failed flush the kernel may have dropped
    /// the dirty pages, so retrying and trusting success would be a lie (design notes, hazard 5).
    pub(crate) fn flush(&self, off: u64, len: u64) -> Result<()> {
        if self.ephemeral {
            return Ok(());
        }
        self.map.sync(off, len).inspect_err(|_| self.poison())
    }
}
