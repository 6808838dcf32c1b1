//! Bounded recovery after a process crash (SPEC.md §7.5).
//!
//! A process that dies leaves the page cache as it was: every byte it stored through the shared
//! maps of the data file, the journal and the lock file is still there, and only what it was
//! changing at the moment of death can be half made. So, as long as the machine did not reboot:
//!
//! - **Resume.** The first opener after every process died keeps the lock file's shared state
//!   instead of rebuilding it, when that state says it may (`resumable`), was built in this boot
//!   (`boot_id`) and describes these very files (device and inode of the data file and journal).
//!   It then takes the write lock like any later opener, which repairs a holder that died.
//! - **Repair.** The write-lock holder says what it is doing (`txn_stage`): between changes, or
//!   planning blocks (a death there only leaves blocks out of the free lists), or applying the
//!   record the undo area describes (the area holds the counters before it and each index slot
//!   it changed, with the value before, written ahead of the change). The next holder rolls the
//!   record back with the undo area and commits it again from the journal, exactly as recovery
//!   would replay it; any other stage means a full recovery (SPEC.md §7).
//!
//! A power cut or an OS crash is a new boot: the state is rebuilt, and recovery replays the
//! journal, which still holds every record since the durable checkpoint (nothing here
//! checkpoints or trims it).

use crate::error::{Error, Result};
use crate::format::*;
use crate::lock_file::{LockFile, LockState, LOCK_FILE_MAGIC, LOCK_FILE_VERSION, UNDO_CAP};
use crate::write::WriteTxn;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::Ordering::*;

/// This boot's id as two words (never both zero), or None when the kernel does not say: then no
/// state is ever resumed.
pub(crate) fn boot_id() -> Option<[u64; 2]> {
    static ID: std::sync::OnceLock<Option<[u64; 2]>> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return None;
        }
        let id = u128::from_str_radix(&hex, 16).ok()?;
        let words = [(id >> 64) as u64, id as u64];
        (words != [0, 0]).then_some(words)
    })
}

/// (st_dev, st_ino) of an open file.
fn ident(file: &File) -> Option<[u64; 2]> {
    let m = file.metadata().ok()?;
    Some([m.dev(), m.ino()])
}

fn load2(w: &[std::sync::atomic::AtomicU64; 2]) -> [u64; 2] {
    [w[0].load(Relaxed), w[1].load(Relaxed)]
}

/// Whether the first opener may keep the shared state this lock file holds (before it knows the
/// journal): written by this build, marked resumable, in this boot, for this data file, with no
/// recovery owed.
pub(crate) fn may_resume(lock_file: &LockFile, data_file: &File) -> bool {
    let h = lock_file.state();
    h.magic.load(Acquire) == LOCK_FILE_MAGIC
        && h.version.load(Relaxed) == LOCK_FILE_VERSION
        && h.resumable.load(SeqCst) == 1
        && h.needs_recovery.load(SeqCst) == 0
        && boot_id().is_some_and(|id| id == load2(&h.boot_id))
        && ident(data_file).is_some_and(|id| id == load2(&h.data_ident))
}

/// The rest of the check, once the journal is open: the same journal, whole; a data file at
/// least as long as the state has seen; the newest superblock one the state knows, byte for
/// byte (its own checkpoint's, or the one in flight that a flusher made durable); and the last
/// entry and journal record the state wrote still where it wrote them (files put back from an
/// older copy keep their inodes, not those).
pub(crate) fn describes(h: &LockState, journal: &File, data: &File, sb: &Superblock) -> bool {
    let len = |f: &File| f.metadata().map_or(0, |m| m.len());
    let crc = crc32c::crc32c(&sb.encode()) as u64;
    let epoch = h.epoch.load(Relaxed);
    let flushed = h.flushed_epoch.load(Relaxed);
    let superblock = (sb.epoch == epoch && crc == h.sb_crc.load(Relaxed))
        || (sb.epoch == flushed && flushed > epoch && crc == h.flushed_sb_crc.load(Relaxed));
    // A word the state says is at `at - 1` of `file` (`at` 0: nothing to check).
    let holds = |file: &File, at: u64, want: u64, width: usize| {
        let mut b = [0u8; 8];
        at == 0
            || file.read_exact_at(&mut b[..width], at - 1).is_ok() && u64::from_le_bytes(b) == want
    };
    ident(journal).is_some_and(|id| id == load2(&h.journal_ident))
        && len(journal) == sb.journal_size
        && len(data) >= h.file_size.load(Relaxed)
        && superblock
        && holds(
            data,
            h.last_entry[0].load(Relaxed),
            h.last_entry[1].load(Relaxed),
            4,
        )
        && holds(
            journal,
            match h.last_record[0].load(Relaxed) {
                0 => 0,
                at => at + record_at::LSN as u64,
            },
            h.last_record[1].load(Relaxed),
            8,
        )
}

/// Marks the shared state as one a later first opener may resume (after the state was built or
/// resumed), naming this boot and these files.
pub(crate) fn mark_resumable(h: &LockState, data_file: &File, journal: &File) {
    let (Some(boot), Some(data), Some(jour)) = (boot_id(), ident(data_file), ident(journal)) else {
        h.resumable.store(0, SeqCst);
        return;
    };
    // The superblock of the state's checkpoint (an open from the closing snapshot flushed none).
    let epoch = h.epoch.load(Relaxed);
    let mut copy = [0u8; SUPERBLOCK_LEN];
    if data_file
        .read_exact_at(&mut copy, SUPERBLOCK_OFFSETS[(epoch % 2) as usize])
        .is_err()
    {
        h.resumable.store(0, SeqCst);
        return;
    }
    let crc = crc32c::crc32c(&copy) as u64;
    h.sb_crc.store(crc, Relaxed);
    if h.flushed_epoch.load(Relaxed) == epoch {
        h.flushed_sb_crc.store(crc, Relaxed);
    }
    for (w, v) in [
        (&h.boot_id, boot),
        (&h.data_ident, data),
        (&h.journal_ident, jour),
    ] {
        w[0].store(v[0], Relaxed);
        w[1].store(v[1], Relaxed);
    }
    h.resumable.store(1, SeqCst);
}

impl WriteTxn<'_> {
    /// Before the outermost commit writes its record: what the state was, for a rollback if
    /// this holder dies while the record is being applied.
    pub(crate) fn begin_apply(&self, lsn: u64, pos: u64, len: u64, blocks: &[crate::alloc::Block]) {
        let h = self.lock_file.state();
        let u = &h.undo;
        u.lsn.store(lsn, Relaxed);
        u.pos.store(pos, Relaxed);
        u.len.store(len, Relaxed);
        for (to, from) in [
            (&u.entries, &h.entries),
            (&u.used_bytes, &h.used_bytes),
            (&u.used_slots, &h.used_slots),
            (&u.tombstones, &h.tombstones),
            (&u.inserts, &h.inserts),
            (&u.deletes, &h.deletes),
            (&u.generation, &h.generation),
        ] {
            to.store(from.load(Relaxed), Relaxed);
        }
        let (tail, overflow) = h.pending_mark();
        u.pending_tail.store(tail, Relaxed);
        u.pending_overflow.store(overflow, Relaxed);
        u.overflow.store((blocks.len() > UNDO_CAP) as u64, Relaxed);
        for (w, b) in u.blocks.iter().zip(blocks) {
            w.store(slot_pack(b.at.get(), b.class, 0), Relaxed);
        }
        u.blocks_len
            .store(blocks.len().min(UNDO_CAP) as u64, Relaxed);
        u.slots_len.store(0, Relaxed);
        self.set_stage(crate::lock_file::STAGE_APPLY);
        self.undo_active.set(true);
    }

    /// Before a slot of the live index changes while a record is applied: its position and old
    /// value, in order. A transaction that changes more slots than the area holds is marked, and
    /// a holder that dies in it leaves the state to a full recovery.
    pub(crate) fn log_slot(&self, pos: u64, old: u64) {
        let u = &self.lock_file.state().undo;
        let n = u.slots_len.load(Relaxed) as usize;
        if n < UNDO_CAP {
            u.slots[2 * n].store(pos, Relaxed);
            u.slots[2 * n + 1].store(old, Relaxed);
            std::sync::atomic::compiler_fence(SeqCst);
            u.slots_len.store(n as u64 + 1, Relaxed);
        } else {
            u.overflow.store(1, Relaxed);
        }
        std::sync::atomic::compiler_fence(SeqCst);
    }

    /// The bounded repair after a holder died in a stage that allows it: `apply` when it died
    /// applying the record of the undo area. Readers are held off while the index goes back and
    /// forth. Any error leaves the repair to a full recovery (the caller's).
    pub(crate) fn repair(&self, apply: bool) -> Result<()> {
        let h = self.lock_file.state();
        self.exclude_readers(|| {
            // A page copied into the frozen checkpoint's target loses its mark only after the
            // copy; the count of marks left may lag one behind it.
            let left: u64 = h
                .to_copy
                .iter()
                .map(|w| w.load(Relaxed).count_ones() as u64)
                .sum();
            h.copy_left.store(left, Release);
            h.copy_cursor.store(0, Relaxed);
            if apply {
                self.roll_back_and_redo()?;
            }
            Ok(())
        })
    }

    fn roll_back_and_redo(&self) -> Result<()> {
        let h = self.lock_file.state();
        let u = &h.undo;
        let broken = |what: &str| Error::Incompatible {
            path: self.lock_file.path.clone(),
            detail: format!("the undo area of the lock file is inconsistent ({what})"),
        };
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let index_end = live + index_len(slots);
        let n = u.slots_len.load(Relaxed) as usize;
        if n > UNDO_CAP {
            return Err(broken("slot count"));
        }
        // The slots as they were, newest change first.
        for i in (0..n).rev() {
            let (pos, old) = (
                u.slots[2 * i].load(Relaxed),
                u.slots[2 * i + 1].load(Relaxed),
            );
            if pos < live || pos >= index_end || !pos.is_multiple_of(8) {
                return Err(broken("slot position"));
            }
            self.publish(pos, old)?;
        }
        for (to, from) in [
            (&h.entries, &u.entries),
            (&h.used_bytes, &u.used_bytes),
            (&h.used_slots, &u.used_slots),
            (&h.tombstones, &u.tombstones),
            (&h.inserts, &u.inserts),
            (&h.deletes, &u.deletes),
            (&h.generation, &u.generation),
        ] {
            to.store(from.load(Relaxed), Relaxed);
        }
        // The blocks the record replaced are referenced again: off the pending ring.
        h.truncate_pending(
            self.held(),
            u.pending_tail.load(Relaxed),
            u.pending_overflow.load(Relaxed),
        );
        let (lsn, pos, len) = (
            u.lsn.load(Relaxed),
            u.pos.load(Relaxed),
            u.len.load(Relaxed),
        );
        let half = journal_half(self.journal.size);
        // The holder died before or after moving the journal's tail past the record.
        let next = h.next_lsn.load(Relaxed);
        if next != lsn && next != lsn + 1 {
            return Err(broken("LSN"));
        }
        if pos.checked_add(len).is_none_or(|end| end > half) || len > half {
            return Err(broken("record position"));
        }
        h.journal_pos.store(pos, Relaxed);
        h.next_lsn.store(lsn, Relaxed);
        // The blocks planned for its puts are referenced by nothing now.
        let planned = (u.blocks_len.load(Relaxed) as usize).min(UNDO_CAP);
        for b in &u.blocks[..planned] {
            let s = b.load(Relaxed);
            self.push(crate::alloc::BlockOffset::of_slot(s), slot_class(s))?;
        }
        // The record again, if it is whole in the journal (it is, unless the holder died
        // writing it): committed exactly as recovery would replay it, at the same place.
        let epoch = h.journal_epoch.load(Relaxed);
        let mut buf = vec![0u8; len as usize];
        self.journal
            .file()
            .read_exact_at(&mut buf, journal_half_base(self.journal.size, epoch) + pos)
            .map_err(|e| Error::io(&self.journal.path, "read", e))?;
        let mut scan = crate::journal::Scan {
            epoch,
            ..Default::default()
        };
        continue_scan(&buf, epoch, lsn, &mut scan);
        if let Some((_, span)) = scan.spans.first() {
            let ops = decode_ops(&buf[span.clone()]).expect("checked by the scan");
            self.commit(&ops)?;
        }
        Ok(())
    }
}
