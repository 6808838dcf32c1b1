//! Hot backup (SPEC.md §7.3): a consistent copy of a store that other processes keep writing.
//!
//! The consistent point is a moment under the write lock: the live index then names exactly the
//! state after LSN `L`. Only the index is copied under the lock (8 bytes a slot, a few
//! milliseconds at a million keys); the entries it names are immutable, and a block is handed
//! out again only after a checkpoint's reclaim, a free-list rebuild or a recovery (SPEC.md
//! §2.4), so they are copied after the lock is released, while writers carry on. Before the
//! point the backup takes a shared OFD lock on byte 2 of the lock file (the *pin*; the kernel
//! drops it if the backup dies), and a checkpoint that finds it held reclaims nothing (its
//! pending blocks wait for the rebuild the first reclaim after the backup makes). A rebuild
//! forced by a full store, or a recovery, still reuses blocks: so each entry is checked as it is
//! copied (checksum, version ≤ `L`, the key's hash tag equal to its slot's), and if the
//! readers' sequence number moved (a reorganisation ran) and any entry fails, the attempt
//! starts over from a new point. The copy is written as a new
//! store under a temporary name, closed cleanly (checkpoint and snapshot), checked, and renamed
//! into place, journal first, data file last: a backup killed at any point leaves no data file
//! under the final name (at most its journal, which the next backup refuses to overwrite).
//!
//! The source's journal is not read: everything the journal holds is already in the live index
//! at the consistent point. (`consistent_point` is the one function that defines that point.)

use crate::error::{CorruptKind, Error, Result};
use crate::files::Paths;
use crate::format::*;
use crate::index;
use crate::journal::Op;
use crate::lock_file::BACKUP_BYTE;
use crate::store::{Inner, Store};
use crate::{Durability, Options};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What [`Store::backup_to`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// Live entries copied.
    pub entries: u64,
    /// The copy holds exactly the writes up to this LSN (the last one committed at the
    /// consistent point), and none after it.
    pub lsn: u64,
    /// Attempts made (more than one when writers reused blocks before they were copied).
    pub attempts: u32,
    /// The longest time this backup held the write lock (copying the index).
    pub longest_lock: Duration,
}

/// Attempts before giving up (only a free-list rebuild forced by a full store, or a recovery,
/// reuses blocks under a pinned backup).
const ATTEMPTS: u32 = 6;
/// Journal bytes one batch written into the copy may take (a quarter of its journal at most).
const BATCH_BYTES: usize = 1 << 20;

/// The state pinned at the consistent point.
struct Point {
    lsn: u64,
    /// The live index's slots, copied under the lock.
    slots: Vec<u64>,
    generation: u64,
    max_size: u64,
    journal_size: u64,
    /// The readers' sequence number: a block is handed out again only after a reorganisation
    /// (a checkpoint's reclaim, a free-list rebuild, a recovery), each of which changes it.
    seq: u64,
    held: Duration,
}

impl Inner {
    /// Takes the write lock and records the consistent point: the last LSN and a copy of the
    /// live index.
    fn consistent_point(&self) -> Result<Point> {
        let txn = self.lock()?;
        let locked = Instant::now();
        let h = self.lock_file.state();
        let (idx, n) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let mut bytes = vec![0u8; index_len(n) as usize];
        self.map.read(idx, &mut bytes)?;
        let point = Point {
            lsn: h.next_lsn.load(Relaxed) - 1,
            slots: bytes
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
                .collect(),
            generation: h.generation.load(Relaxed),
            max_size: h.max_size.load(Relaxed),
            journal_size: self.journal.size,
            seq: h.seq.load(Relaxed),
            held: Duration::ZERO,
        };
        drop(txn);
        Ok(Point {
            held: locked.elapsed(),
            ..point
        })
    }

    /// Whether a block named at `p` may have been handed out again since.
    fn blocks_reused_since(&self, p: &Point) -> bool {
        // The reorganisation's change of `seq` happened before the writes into reused blocks
        // that this reader saw.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        self.lock_file.state().seq.load(Relaxed) != p.seq
    }
}

/// The temporary name a copy is built under.
fn temp_name(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_store_files(path: &Path) -> Result<()> {
    for f in Paths::new(path).all() {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(f, "unlink", e)),
        }
    }
    Ok(())
}

/// Why an attempt did not produce a copy.
enum Failed {
    /// An entry's block was reused before it was copied: try again from a new point.
    Overtaken,
    Error(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Error(e)
    }
}

impl Store {
    /// Writes a consistent copy of the whole store to a new store at `out` (its data file; the
    /// journal is `out.journal`), while other processes keep reading and writing. The copy holds
    /// exactly the writes up to one moment (an LSN, returned in the report): every write
    /// committed before it and none after it. It opens as a normal store, with the source's
    /// maximum size, journal size and reset-on-restart generation; it is compact (only live
    /// entries, expired ones left out).
    ///
    /// Writers are stopped only while the live index is copied (8 bytes a slot: a few
    /// milliseconds at a million keys; the report gives the time). The entries are copied
    /// afterwards, each checked against its checksum. Meanwhile checkpoints hand no freed block
    /// out again (the data file grows by what is written during the backup, and gets the room
    /// back at the first checkpoint after it); a writer that reaches the maximum size still
    /// rebuilds its free lists, and if that reused the block of an entry not yet copied, the
    /// backup starts over from a new moment, up to six times. The copy is built under `out.backup-partial`, closed cleanly, checked
    /// ([`verify::check`](crate::verify::check)) and renamed into place, so a backup that
    /// fails or is killed never leaves a data file at `out`.
    ///
    /// # Errors
    ///
    /// - [`Error::Io`] (`op` "create") when `out` or `out.journal` exists: nothing is overwritten.
    /// - [`Error::Busy`] when writers reused blocks faster than six attempts could copy them.
    /// - [`Error::Corrupt`] for damage found in the source; the errors of opening, writing or
    ///   checking the copy (e.g. [`Error::Full`] when its disk is full); the errors of taking the
    ///   write lock ([`Error::Reentrant`] inside an [`update`](Self::update) callback).
    pub fn backup_to(&self, out: impl AsRef<Path>) -> Result<BackupReport> {
        let out = out.as_ref();
        let final_paths = Paths::new(out);
        for f in final_paths.durable() {
            if f.exists() {
                return Err(Error::io(
                    f,
                    "create",
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a backup is never written over an existing file; remove it or choose \
                         another name",
                    ),
                ));
            }
        }
        let tmp = temp_name(out, ".backup-partial");
        let report = self.consistent_copy(&tmp)?;
        finish(&tmp, out)?;
        Ok(report)
    }

    /// Builds the consistent copy as a closed, checked store at `tmp` (leftovers there are
    /// removed first; on failure nothing is left there).
    fn consistent_copy(&self, tmp: &Path) -> Result<BackupReport> {
        // The pin, on a descriptor of our own (released with it, or by the kernel if this
        // process dies): taken before any consistent point, so every checkpoint after the point
        // keeps the blocks it named. Without it (an anonymous store has no lock file to open)
        // the checks below still catch a reused block.
        let _pin = self.pin_blocks();
        let mut longest_lock = Duration::ZERO;
        for attempt in 1..=ATTEMPTS {
            // Leftovers of an interrupted run to the same name, or of the last attempt.
            remove_store_files(tmp)?;
            let point = self.inner().consistent_point()?;
            longest_lock = longest_lock.max(point.held);
            let copied = self.copy_point(&point, tmp).and_then(|entries| {
                check_copy(tmp)?;
                Ok(entries)
            });
            match copied {
                Ok(entries) => {
                    return Ok(BackupReport {
                        entries,
                        lsn: point.lsn,
                        attempts: attempt,
                        longest_lock,
                    });
                }
                Err(Failed::Overtaken) => {}
                Err(Failed::Error(e)) => {
                    let _ = remove_store_files(tmp);
                    return Err(e);
                }
            }
        }
        let _ = remove_store_files(tmp);
        Err(Error::Busy {
            path: self.path().into(),
            detail: format!(
                "writers reused blocks before they were copied in {ATTEMPTS} attempts in a row; \
                 try again when writes are fewer"
            ),
        })
    }

    /// Takes the backup pin on the lock file; None if the lock file cannot be opened.
    fn pin_blocks(&self) -> Option<std::fs::File> {
        let path = Paths::new(self.path()).lock;
        let file = std::fs::File::open(&path).ok()?;
        let held = crate::lock_file::range_lock(&file, &path, BACKUP_BYTE, Some(false), true);
        held.ok().filter(|&ok| ok).map(|_| file)
    }

    /// Copies the entries named at `point` into a new store at `tmp`, closed cleanly; returns
    /// how many.
    fn copy_point(&self, point: &Point, tmp: &Path) -> std::result::Result<u64, Failed> {
        let inner = self.inner();
        let live = point.slots.iter().filter(|&&s| slot_is_entry(s)).count() as u64;
        // Room for the entries at the index's load after a growth, so the copy never rebuilds.
        // Sized for what it will hold (the three index copies and every live block), so it never
        // grows by a step it does not fill: the copy is as small as the live data allow.
        let slots = (live * 2).clamp(16, 1 << 28).next_power_of_two();
        let blocks: u64 = point
            .slots
            .iter()
            .filter(|&&s| slot_is_entry(s))
            .map(|&s| class_size(slot_class(s)))
            .sum();
        let size = HEAP_START + 3 * index_block_len(slots) + blocks;
        let opts = Options::default()
            .durability(Durability::None)
            .max_size(point.max_size.max(size))
            .initial_size(size.max(64 << 10))
            .journal_size(point.journal_size)
            .index_slots(slots);
        let copy = Store::open(tmp, opts)?;
        let mut ops: Vec<Op> = Vec::new();
        if point.generation != 0 {
            ops.push(Op::Reset {
                generation: point.generation,
            });
        }
        let (mut batch_bytes, mut entries) = (0usize, 0u64);
        let now = crate::store::now_ms();
        for &s in point.slots.iter().filter(|&&s| slot_is_entry(s)) {
            let checked = index::entry_at(&inner.map, s).and_then(|(key, e)| {
                let ours =
                    e.version <= point.lsn && slot_tag(hash_key(&key)) == s >> SLOT_TAG_SHIFT;
                if ours {
                    Ok((key, e))
                } else {
                    let kind = CorruptKind::EntryKeyMismatch { at: slot_offset(s) };
                    Err(Error::corrupt(&inner.path, kind))
                }
            });
            let (key, e) = match checked {
                Ok(ke) => ke,
                // Reused under us (a torn or newer entry), or damaged: only the latter if nothing
                // was reorganised since the point.
                Err(_) if inner.blocks_reused_since(point) => return Err(Failed::Overtaken),
                Err(err) => return Err(err.into()),
            };
            if e.expires_at_ms != 0 && e.expires_at_ms <= now {
                continue;
            }
            batch_bytes += PUT_RECORD_OVERHEAD + key.len() + e.value.len();
            ops.push(Op::Put {
                key: Cow::Owned(key),
                value: Cow::Owned(e.value),
                expires_ms: e.expires_at_ms,
                modified_ms: e.modified_at_ms,
            });
            entries += 1;
            if batch_bytes >= BATCH_BYTES.min(copy.max_value_len() / 2) {
                copy.write_ops(&ops)?;
                ops.clear();
                batch_bytes = 0;
            }
        }
        if !ops.is_empty() {
            copy.write_ops(&ops)?;
        }
        // Every copied entry passed its checks, and one whose block was reused fails them; a
        // reuse between an entry's copy and now cannot change what was copied.
        copy.checkpoint()?;
        drop(copy);
        Ok(entries)
    }
}

/// What [`Store::compact_rewrite`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteReport {
    /// Live entries kept.
    pub entries: u64,
    /// The last write the compacted store holds (every write up to it, as before).
    pub lsn: u64,
    /// Bytes of the data file and journal before (on disk, as allocated).
    pub bytes_before: u64,
    /// Bytes of the data file and journal after.
    pub bytes_after: u64,
    /// The longest time the compaction held the write lock while other processes used the
    /// store (copying the index).
    pub longest_lock: Duration,
}

use crate::compact::disk_bytes;

impl Store {
    /// Rewrites the store into files that hold only its live entries, and returns how much
    /// room that gave back: smaller files than [`compact`](Self::compact) (which works while
    /// others use the store) can make, but only when no other process has the store open.
    /// Consumes the handle: files that shrink must not stay mapped.
    ///
    /// The live entries are copied exactly as [`backup_to`](Self::backup_to) copies them (other
    /// processes may keep reading and writing meanwhile; writers wait only while the index is
    /// copied), into a new store beside this one (`PATH.compact-partial`). Then this handle is
    /// closed, and the new files replace the old ones only if, by then, no other process has
    /// the store open and nothing was written since the copy was taken (otherwise the copy is
    /// removed and nothing changes). While the files are swapped, a process opening the store
    /// waits. The swap is safe against a crash at any point: the old journal is removed first
    /// (the store was closed cleanly, so it holds nothing), then the new data file replaces
    /// the old one in one rename, then the new journal takes its name; a missing journal is
    /// recreated empty at the next open (SPEC.md §7.4).
    ///
    /// # Errors
    ///
    /// - [`Error::Busy`]: another process has the store open, or wrote to it after the copy was
    ///   taken; nothing changed.
    /// - As [`backup_to`](Self::backup_to) for the copy, and [`Error::Io`] for the swap.
    pub fn compact_rewrite(self) -> Result<RewriteReport> {
        let path = self.path().to_path_buf();
        let tmp = temp_name(&path, ".compact-partial");
        let bytes_before = disk_bytes(&path);
        let copy = self.consistent_copy(&tmp)?;
        drop(self);
        match swap_compacted(&path, &tmp, copy.lsn) {
            Ok(()) => Ok(RewriteReport {
                entries: copy.entries,
                lsn: copy.lsn,
                bytes_before,
                bytes_after: disk_bytes(&path),
                longest_lock: copy.longest_lock,
            }),
            Err(e) => {
                let _ = remove_store_files(&tmp);
                Err(e)
            }
        }
    }
}

/// Puts the compacted copy at `tmp` in the place of the store at `path`, if no process has it
/// open and nothing was written after `lsn`.
fn swap_compacted(path: &Path, tmp: &Path, lsn: u64) -> Result<()> {
    let exclusive = crate::Exclusive::acquire(path)?;
    // Closed by everyone: the last closer checkpointed, so a store nobody wrote to since the
    // copy's point has its checkpoint exactly there and an empty journal cycle.
    let now = crate::verify::check(path)?;
    let written_since = match &now.superblock {
        Some(sb) => sb.ckpt_lsn != lsn || now.journal_records != 0,
        None => true,
    };
    if written_since || !now.problems.is_empty() {
        return Err(Error::Busy {
            path: path.into(),
            detail: "compact: the store was written (or changed) after the copy was taken; \
                     nothing was changed, run it again"
                .into(),
        });
    }
    swap_steps(path, tmp, usize::MAX)?;
    drop(exclusive);
    Ok(())
}

/// The swap itself, one durable step at a time; `steps` stops it early (a test's crash).
fn swap_steps(path: &Path, tmp: &Path, steps: usize) -> Result<()> {
    let (old, new) = (Paths::new(path), Paths::new(tmp));
    let sync = || crate::files::sync_parent_dir(&crate::RealIo, path);
    // 1. The old journal: its cycle is empty (checked by the caller), so the old data file
    //    alone is the whole store until step 2.
    match std::fs::remove_file(&old.journal) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&old.journal, "unlink", e)),
    }
    sync()?;
    if steps == 1 {
        return Ok(());
    }
    // 2. The new data file, in one rename: closed cleanly too, it is the whole new store.
    std::fs::rename(&new.data, &old.data).map_err(|e| Error::io(&new.data, "rename", e))?;
    sync()?;
    if steps == 2 {
        return Ok(());
    }
    // 3. Its journal (else the next open would create an empty one).
    std::fs::rename(&new.journal, &old.journal)
        .map_err(|e| Error::io(&new.journal, "rename", e))?;
    sync()?;
    // The lock file stays: processes waiting to open hold it; the copy's own is not needed.
    let _ = std::fs::remove_file(&new.lock);
    Ok(())
}

/// Checks the closed copy like `apcdb check`.
fn check_copy(tmp: &Path) -> Result<()> {
    let report = crate::verify::check(tmp)?;
    if !report.problems.is_empty() {
        let problems = report.problems.join("; ");
        return Err(Error::io(tmp, "check", std::io::Error::other(problems)));
    }
    Ok(())
}

/// Moves the checked copy to its final name: journal first, data file last (the data file's
/// presence is the backup's), then makes the renames durable.
fn finish(tmp: &Path, out: &Path) -> Result<()> {
    let (from, to) = (Paths::new(tmp), Paths::new(out));
    std::fs::rename(&from.journal, &to.journal)
        .map_err(|e| Error::io(&from.journal, "rename", e))?;
    std::fs::rename(&from.data, &to.data).map_err(|e| Error::io(&from.data, "rename", e))?;
    let _ = std::fs::remove_file(&from.lock);
    crate::files::sync_parent_dir(&crate::RealIo, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks freed while a backup holds its pin wait in the pending ring through the
    /// checkpoints of the pin (none is handed out), and the first checkpoint after it releases
    /// them with no rebuild of the free lists: the ring is kept, not dropped as overflowed.
    #[test]
    fn blocks_freed_under_the_pin_are_released_after_it_without_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(
            &path,
            Options::default().durability(crate::Durability::None),
        )
        .unwrap();
        let put_all = |round: u8| {
            for i in 0..2000u32 {
                s.put(format!("k{i}").as_bytes(), &[round; 200]).unwrap();
            }
        };
        put_all(0);
        s.checkpoint().unwrap();
        let h = s.inner().lock_file.state();
        let pin = s.pin_blocks().expect("pin");
        put_all(1);
        s.checkpoint().unwrap();
        put_all(2);
        s.checkpoint().unwrap();
        // Both rounds' old blocks wait, none was reused: the heap grew by two rounds.
        assert!(
            !h.pending_overflowed(),
            "the ring was dropped under the pin"
        );
        assert!(h.pending_count() >= 4000, "{} pending", h.pending_count());
        let heap = h.heap_end();
        drop(pin);
        s.checkpoint().unwrap();
        assert!(!h.pending_overflowed());
        // Released, and reused by the next round without growing the heap.
        put_all(3);
        assert_eq!(h.heap_end(), heap, "freed blocks were not reused");
        for i in 0..2000u32 {
            assert_eq!(
                s.get(format!("k{i}").as_bytes()).unwrap().unwrap(),
                [3; 200]
            );
        }
    }

    /// After a ring dropped under the pin, the rebuild that finds its blocks keeps in the ring
    /// the blocks only the durable checkpoint still uses, so later completions do not rebuild
    /// again: with writes landing between each freeze and its completion (a background
    /// flusher), dropping those too made every completion rebuild, for as long as writes went on.
    #[test]
    fn one_rebuild_after_a_ring_dropped_under_the_pin_not_one_per_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let opts = Options::default()
            .durability(crate::Durability::None)
            .journal_size(1 << 20)
            .background_checkpoints(true);
        let s = Store::open(&path, opts).unwrap();
        let h = s.inner().lock_file.state();
        for i in 0..1000u64 {
            s.put(&i.to_le_bytes(), &[1; 100]).unwrap();
        }
        let pin = s.pin_blocks().expect("pin");
        for i in 0..(crate::lock_file::PENDING_CAP as u64 + 10_000) {
            s.put(&(i % 1000).to_le_bytes(), &[2; 100]).unwrap();
        }
        assert!(h.pending_overflowed());
        drop(pin);
        let before = s.stats().unwrap().checkpoints;
        for i in 0..200_000u64 {
            s.put(&(i % 1000).to_le_bytes(), &i.to_le_bytes()).unwrap();
        }
        assert!(s.stats().unwrap().checkpoints >= before + 4);
        assert!(
            !h.pending_overflowed(),
            "still rebuilding at every completion"
        );
    }

    /// A pending ring that fills while pinned is dropped as overflowed (a checkpoint could not
    /// empty it), not checkpointed again at every write; the first checkpoint after the pin
    /// finds its blocks by rebuilding the free lists.
    #[test]
    fn a_ring_that_fills_under_the_pin_is_dropped_not_checkpointed_per_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(
            &path,
            Options::default().durability(crate::Durability::None),
        )
        .unwrap();
        let h = s.inner().lock_file.state();
        let pin = s.pin_blocks().expect("pin");
        let before = s.stats().unwrap().checkpoints;
        let writes = crate::lock_file::PENDING_CAP as u64 + 10_000;
        for i in 0..writes {
            s.put(b"k", &i.to_le_bytes()).unwrap();
        }
        let checkpoints = s.stats().unwrap().checkpoints - before;
        assert!(
            checkpoints < 64,
            "{checkpoints} checkpoints for {writes} writes"
        );
        assert!(h.pending_overflowed());
        drop(pin);
        s.checkpoint().unwrap();
        assert!(!h.pending_overflowed(), "rebuilt after the pin");
        assert_eq!(s.get(b"k").unwrap().unwrap(), (writes - 1).to_le_bytes());
    }

    /// A crash after each step of the swap leaves files that open as the whole store (the old
    /// one or the compacted one, which hold the same entries).
    #[test]
    fn every_step_of_the_swap_leaves_a_whole_store() {
        for steps in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let (path, tmp) = (
                dir.path().join("s.db"),
                dir.path().join("s.db.compact-partial"),
            );
            let opts = || Options::default().journal_size(256 << 10);
            {
                let s = Store::open(&path, opts()).unwrap();
                for i in 0..2000u32 {
                    s.put(format!("k{i}").as_bytes(), &[i as u8; 200]).unwrap();
                }
                for i in (0..2000u32).step_by(2) {
                    s.delete(format!("k{i}").as_bytes()).unwrap();
                }
                s.consistent_copy(&tmp).unwrap();
            }
            swap_steps(&path, &tmp, steps).unwrap();
            let s = Store::open(&path, opts().create(false)).unwrap();
            assert_eq!(s.stats().unwrap().entries, 1000, "after step {steps}");
            for i in 0..2000u32 {
                let want = (i % 2 == 1).then(|| vec![i as u8; 200]);
                assert_eq!(
                    s.get(format!("k{i}").as_bytes()).unwrap(),
                    want,
                    "step {steps}"
                );
            }
            drop(s);
            let r = crate::verify::check(&path).unwrap();
            assert!(r.problems.is_empty(), "step {steps}: {:?}", r.problems);
        }
    }
}
