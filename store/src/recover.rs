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
//!
//! After a clean close the first opener skips all of it: the last closer left a snapshot of the
//! free lists and counters next to the superblocks (`save_snapshot`), which `open_state` loads
//! when it describes the newest checkpoint; the first write lock after that erases it
//! (`disarm_snapshot`, SPEC.md §7.2).
//!
//! Entered from `Inner::open_elected` (`store.rs`, the first opener) and from `Inner::lock`
//! (`write.rs`, when the previous holder died or left the state half made); in both the caller
//! holds the write lock, so these are methods of the `WriteTxn`.

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::write::WriteTxn;
use std::sync::atomic::Ordering::*;

impl WriteTxn<'_> {
    /// The first opener's live state: from the closing snapshot when it describes the newest
    /// checkpoint (no walk of the index, no read of the journal), else by recovery. Returns the
    /// number of journal records replayed.
    pub(crate) fn open_state(&self) -> Result<u64> {
        let h = self.lock_file.state();
        if self.restore_snapshot()? {
            h.rebuilt_at_open.store(0, Relaxed);
            return Ok(0);
        }
        h.rebuilt_at_open.store(1, Relaxed);
        self.recover()
    }

    /// The shared positions a superblock fixes, taken by both ways of opening (the snapshot and a
    /// rebuild): the index copies and which one is live, the heap end, the checkpoint's epoch and
    /// LSN, the generation, and the size limit (never below the file, so the store can always
    /// checkpoint).
    fn adopt_superblock(&self, sb: &Superblock, live: u64, file_len: u64) {
        let h = self.lock_file.state();
        h.index[0].store(sb.index[0], Relaxed);
        h.index[1].store(sb.index[1], Relaxed);
        h.index_slots.store(sb.index_slots, Relaxed);
        h.durable_copy.store(sb.durable_copy, Relaxed);
        h.live_index.store(live, Release);
        h.set_heap_end(self.held(), sb.heap_end);
        h.epoch.store(sb.epoch, Relaxed);
        h.ckpt_lsn.store(sb.ckpt_lsn, Relaxed);
        h.generation.store(sb.generation, Relaxed);
        h.created_ms.store(sb.created_ms, Relaxed);
        h.max_size.store(sb.max_size.max(file_len), Release);
        // No checkpoint in flight: nothing to copy, and records go to this epoch's half.
        h.copy_left.store(0, Relaxed);
        for w in &h.to_copy {
            w.store(0, Relaxed);
        }
        h.journal_epoch.store(sb.epoch, Release);
        h.flushed_epoch.store(sb.epoch, Release);
        // Every index page counts as changed in both bitmaps: the next two checkpoints bring
        // each checkpoint copy up to date whole (the target copy's state is not known).
        crate::checkpoint::mark_whole_index(h, sb.index_slots);
    }

    /// Loads the shared state from the snapshot the last closer left, if it is there, intact, and
    /// describes the newest superblock and the file as it is. Such a snapshot implies an empty
    /// journal cycle: the closer wrote it after its final checkpoint, and whoever takes the write
    /// lock after an open that used it erases it durably before writing anything.
    fn restore_snapshot(&self) -> Result<bool> {
        if self.ephemeral {
            return Ok(false);
        }
        let h = self.lock_file.state();
        let file_len = self.map.refresh_len()?;
        let sb = read_superblock(&self.map.path, file_len, |at, b| self.map.read(at, b))?;
        let mut copy = [0u8; SUPERBLOCK_LEN];
        self.map
            .read(SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize], &mut copy)?;
        let mut b = [0u8; SNAPSHOT_LEN];
        self.map.read(snapshot_offset(sb.epoch), &mut b)?;
        let Some(snap) = StateSnapshot::decode(&b) else {
            return Ok(false);
        };
        if !snap.describes(&sb, crc32c::crc32c(&copy) as u64, file_len) {
            return Ok(false);
        }
        // The closer left the live copy equal to the durable one, so it must match the durable
        // copy's checksum: readers use it from now on, and recovery would have rebuilt it from
        // the durable copy. One sequential pass (no per-slot work); a damaged copy means a
        // rebuild, which heals it.
        let live = sb.live;
        if self.index_crc(live, sb.index_slots)? != sb.index_crc {
            return Ok(false);
        }
        h.file_size.store(file_len, Release);
        self.adopt_superblock(&sb, live, file_len);
        for (class, &head) in snap.free_heads.iter().enumerate() {
            h.set_free_head(self.held(), class as u8, head);
        }
        h.reset_pending(self.held(), snap.pending_overflow);
        h.entries.store(snap.entries, Relaxed);
        h.used_bytes.store(snap.used_bytes, Relaxed);
        h.tombstones.store(snap.tombstones, Relaxed);
        h.used_slots.store(snap.used_slots, Relaxed);
        h.next_lsn.store(sb.ckpt_lsn + 1, Relaxed);
        h.written_lsn.store(sb.ckpt_lsn, Relaxed);
        h.durable_lsn.store(sb.ckpt_lsn, Relaxed);
        h.journal_pos.store(0, Relaxed);
        h.recovered_records.store(0, Relaxed);
        self.journal_is_new.store(false, Relaxed);
        h.snapshot_armed.store(1, SeqCst);
        Ok(true)
    }

    /// Erases the snapshot this shared state was restored from, durably, before the first write
    /// after that open: from then on the free lists and counters change without it.
    pub(crate) fn disarm_snapshot(&self) -> Result<()> {
        let h = self.lock_file.state();
        let at = snapshot_offset(h.epoch.load(Relaxed));
        // A resume's check must not look for the checksum erased here (the next put names its
        // entry instead).
        if h.last_entry[0].load(Relaxed) == at + snapshot_at::CRC as u64 + 1 {
            h.last_entry[0].store(0, Relaxed);
        }
        self.map
            .write(self.held(), at, &[0u8; snapshot_at::CHECKSUMMED])?;
        self.flush(at, snapshot_at::CHECKSUMMED as u64)?;
        h.snapshot_armed.store(0, SeqCst);
        Ok(())
    }

    /// The last closer, right after its final checkpoint: records what the next first opener
    /// would rebuild. Does nothing unless that checkpoint left the state it describes (empty
    /// journal cycle, live copy equal to the durable one, no block waiting in the pending list).
    /// Returns whether it wrote one.
    pub(crate) fn save_snapshot(&self) -> Result<bool> {
        let h = self.lock_file.state();
        let epoch = h.epoch.load(Relaxed);
        let settled = !self.ephemeral
            && h.needs_recovery.load(SeqCst) == 0
            && h.snapshot_armed.load(SeqCst) == 0
            && h.journal_pos.load(Relaxed) == 0
            && h.next_lsn.load(Relaxed) == h.ckpt_lsn.load(Relaxed) + 1
            && h.pending_count() == 0
            && h.dirty.iter().all(|w| w.load(Relaxed) == 0);
        if !settled {
            return Ok(false);
        }
        let file_len = self.map.refresh_len()?;
        let mut copy = [0u8; SUPERBLOCK_LEN];
        self.map
            .read(SUPERBLOCK_OFFSETS[(epoch % 2) as usize], &mut copy)?;
        let Ok(sb) = UncheckedSuperblock::decode(&copy).and_then(|sb| sb.validate(file_len)) else {
            return Ok(false);
        };
        let live = h.live_index.load(Relaxed);
        if sb.epoch != epoch
            || sb.heap_end != h.heap_end()
            || sb.index_slots != h.index_slots.load(Relaxed)
            || sb.index != [h.index[0].load(Relaxed), h.index[1].load(Relaxed)]
            || live != sb.live
        {
            return Ok(false);
        }
        // The snapshot names free space by list heads: the reuse map's runs are linked into
        // the lists first (the next opener's commits move them back, a few at a time).
        self.spill_reuse_map()?;
        // The checkpoint's flush came before it brought the new live copy up to date and linked
        // the free space into the free lists: those pages must be on disk before a snapshot
        // that relies on them.
        self.flush(0, file_len)?;
        let snap = StateSnapshot {
            epoch,
            superblock_crc: crc32c::crc32c(&copy) as u64,
            file_len,
            entries: h.entries.load(Relaxed),
            used_bytes: h.used_bytes.load(Relaxed),
            used_slots: h.used_slots.load(Relaxed),
            tombstones: h.tombstones.load(Relaxed),
            pending_overflow: h.pending_overflowed(),
            free_heads: std::array::from_fn(|c| h.free_head(c as u8)),
        };
        let at = snapshot_offset(epoch);
        let bytes = snap.encode();
        self.map.write(self.held(), at, &bytes)?;
        self.flush(at, SNAPSHOT_LEN as u64)?;
        // What a resume in this boot checks the data file by (SPEC.md §7.5): the last put's
        // entry may have been freed since, its first bytes now a free-list link. The snapshot's
        // own checksum names this close of these files.
        let crc = u32::from_le_bytes(bytes[snapshot_at::CRC..][..4].try_into().unwrap());
        h.last_entry[1].store(crc as u64, Relaxed);
        h.last_entry[0].store(at + snapshot_at::CRC as u64 + 1, Relaxed);
        Ok(true)
    }

    /// Runs recovery; the caller holds the write lock. Returns the number of records replayed.
    pub(crate) fn recover(&self) -> Result<u64> {
        let mut phases = Phases::new();
        let h = self.lock_file.state();
        let fast = fast_paths();
        // No flusher may write a superblock while recovery picks one and rebuilds from it: wait
        // for one that is running. The checkpoint it flushed (or not) is simply a checkpoint
        // that reached the file (or did not), and recovery starts from the newest.
        let claim = self.claim_checkpoint(true)?;
        if fast {
            self.hold_free_lists(false);
        }
        let rebuilt = self.exclude_readers(|| match self.rebuild_live_state(&mut phases) {
            // Replay places entries by its own rule, not where the writer put them: cutting
            // blocks from long runs first can leave no run long enough for a later entry of a
            // full store, which the writer had put into a free block of its size. Replay is
            // redone from the superblock (it is idempotent) taking the best-fitting run for
            // every block, as the writer's exact-size free lists did.
            Err(e) if e.is_full() && fast => {
                self.hold_free_lists(true);
                phases.done("replay that found no room");
                self.rebuild_live_state(&mut phases)
            }
            r => r,
        });
        drop(claim);
        let held = self.held_free.borrow_mut().take();
        let replayed = rebuilt?;
        // An overflowed pending list makes the checkpoint's reclaim rebuild the shared lists
        // from the index, which finds the held blocks too: they must not be linked twice.
        let held = held.filter(|_| !h.pending_overflowed());
        if replayed > 0 || h.pending_count() > 0 {
            // The blocks replay freed stay pending through this checkpoint and join the free
            // lists at the next one: linking them now would write into as many scattered pages
            // as replay overwrote keys, on the opener's path. Waiting a checkpoint longer is
            // always safe. (An overflowed list is left to the checkpoint's rebuild.)
            let keep: Vec<u64> = match h.pending_overflowed() || !fast {
                true => Vec::new(),
                false => (0..h.pending_count()).map(|i| h.pending(i)).collect(),
            };
            if !keep.is_empty() {
                h.reset_pending(self.held(), false);
            }
            let done = self.checkpoint();
            // Back on the list whatever happened: a block freed by replay may be reused only
            // after a checkpoint that follows its freeing is durable.
            for &slot in &keep {
                h.add_pending(self.held(), slot);
            }
            done?;
            phases.done("checkpoint");
        }
        if let Some(held) = held {
            self.link_held_free(held)?;
            phases.done("free-list links");
        }
        phases.report(&self.map.path, replayed);
        Ok(replayed)
    }

    fn rebuild_live_state(&self, phases: &mut Phases) -> Result<u64> {
        let h = self.lock_file.state();
        let file_size = self.map.refresh_len()?;
        h.file_size.store(file_size, Release);
        let sb = read_superblock(&self.map.path, file_size, |at, b| self.map.read(at, b))?;
        // Every later step reads pages all over the file: the index copies, and the entries
        // replay compares keys with. One call maps them all instead of a fault per page.
        self.map.prefault(0, file_size);
        phases.done("prefault");
        let durable = sb.index[sb.durable_copy as usize];
        let live = sb.live;
        let bytes = index_len(sb.index_slots);
        if self.index_crc(durable, sb.index_slots)? != sb.index_crc {
            return Err(Error::corrupt(
                &self.map.path,
                CorruptKind::IndexChecksum { epoch: sb.epoch },
            ));
        }
        phases.done("durable index checksum");
        for page in 0..bytes.div_ceil(PAGE) {
            let (off, len) = (page * PAGE, PAGE.min(bytes - page * PAGE));
            if !self.map.equal(durable + off, live + off, len)? {
                self.map.copy(self.held(), durable + off, live + off, len)?;
            }
        }
        phases.done("index compare and copy");
        self.adopt_superblock(&sb, live, file_size);
        // The live copy is the durable one now: with no page marked changed, the free-list
        // rebuild need not walk the durable copy as well. The marks `adopt_superblock` set for
        // the next two checkpoints are put back after it.
        for w in &h.dirty {
            w.store(0, Relaxed);
        }
        self.rebuild_free_lists()?;
        crate::checkpoint::mark_whole_index(h, sb.index_slots);
        phases.done("free-list rebuild");

        let (bytes, scan) = if self.journal_is_new.swap(false, Relaxed) {
            let scan = crate::journal::Scan {
                epoch: sb.epoch,
                ..Default::default()
            };
            (Vec::new(), scan)
        } else {
            self.journal.chain_spans(&sb)?
        };
        phases.done("journal scan");
        let replayed = scan.spans.len() as u64;
        for (lsn, span) in &scan.spans {
            // The scan decoded these same bytes to accept the record; replay borrows the keys
            // and values from them.
            let ops = crate::format::decode_ops(&bytes[span.clone()]).expect("checked by the scan");
            // Room for the keys the record adds, as the write path counted it.
            let puts = ops
                .iter()
                .filter(|o| matches!(o, crate::journal::Op::Put { .. }));
            self.ensure_index_room(puts.count() as u64)?;
            let blocks = match self.plan_blocks(&ops)? {
                Some(b) => b,
                None => {
                    self.rebuild_free_lists()?;
                    self.plan_blocks(&ops)?
                        .ok_or_else(|| self.full_error("no room to replay the journal"))?
                }
            };
            self.apply(*lsn, &ops, &blocks, false)?;
        }
        phases.done("replay");
        let last = sb.ckpt_lsn + replayed;
        h.next_lsn.store(last + 1, Relaxed);
        h.written_lsn.store(last, Relaxed);
        h.durable_lsn.store(sb.ckpt_lsn, Relaxed);
        // A chain that went on into the next epoch's half (a checkpoint was frozen, its
        // superblock never written) leaves this epoch's half full: nothing is written before the
        // checkpoint `recover` runs next, which starts that half again at 0.
        let half = journal_half(self.journal.size);
        let pos = if scan.epoch == sb.epoch {
            scan.end
        } else {
            half
        };
        h.journal_pos.store(pos, Relaxed);
        h.recoveries.fetch_add(1, Relaxed);
        h.recovered_records.store(replayed, Relaxed);
        Ok(replayed)
    }
}

#[cfg(test)]
thread_local! {
    /// Set by tests to recover as before the fast paths (free lists linked before replay, replay's
    /// freed blocks reclaimed by recovery's checkpoint), to compare the two.
    static FULL_REBUILD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether recovery holds free space in the process and keeps replay's freed blocks pending.
fn fast_paths() -> bool {
    #[cfg(test)]
    if FULL_REBUILD.with(|f| f.get()) {
        return false;
    }
    true
}

/// Time of each recovery phase, wall clock and this thread's CPU (which other load on the
/// machine disturbs less), printed to stderr when `APCDB_RECOVERY_TIMING` is set: a measuring
/// aid (`cargo run --release -p apcdb --example journal_trade`).
struct Phases {
    on: bool,
    last: (std::time::Instant, std::time::Duration),
    done: Vec<(&'static str, std::time::Duration, std::time::Duration)>,
}

fn thread_cpu() -> std::time::Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the clock into the timespec it is given, nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl Phases {
    fn new() -> Phases {
        Phases {
            on: std::env::var_os("APCDB_RECOVERY_TIMING").is_some(),
            last: (std::time::Instant::now(), thread_cpu()),
            done: Vec::new(),
        }
    }

    fn done(&mut self, phase: &'static str) {
        if self.on {
            let now = (std::time::Instant::now(), thread_cpu());
            self.done.push((
                phase,
                now.0 - self.last.0,
                now.1.saturating_sub(self.last.1),
            ));
            self.last = now;
        }
    }

    fn report(&self, path: &std::path::Path, replayed: u64) {
        if !self.on {
            return;
        }
        let ms = |d: &std::time::Duration| d.as_secs_f64() * 1e3;
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(p, wall, cpu)| format!("{p} {:.1} ms (cpu {:.1})", ms(wall), ms(cpu)))
            .collect();
        eprintln!(
            "apcdb recovery of {} ({replayed} records): {}",
            path.display(),
            parts.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Inner;
    use crate::{Options, Store};

    /// What replay produced: the live index copy, byte for byte, and the shared counters.
    fn live_state(inner: &Inner) -> (Vec<u8>, [u64; 5]) {
        let h = inner.lock_file.state();
        let slots = h.index_slots.load(Relaxed);
        let index = inner
            .map
            .read_vec(h.live_index.load(Relaxed), (slots * 8) as usize)
            .unwrap();
        let counters = [
            h.heap_end(),
            h.entries.load(Relaxed),
            h.next_lsn.load(Relaxed),
            h.journal_pos.load(Relaxed),
            slots,
        ];
        (index, counters)
    }

    /// Recovery that dies before its checkpoint runs again from the same superblock and journal:
    /// replaying the same records a second time must give the same store.
    #[test]
    fn replaying_the_journal_twice_gives_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, Options::default()).unwrap();
        store.put(b"durable", b"before the checkpoint").unwrap();
        store.put(b"gone", b"deleted after it").unwrap();
        store.checkpoint().unwrap();
        // Journaled only: puts, overwrites, a delete, increments decided under the lock.
        for i in 0..300u32 {
            store
                .put(format!("k{}", i % 100).as_bytes(), &i.to_le_bytes())
                .unwrap();
        }
        assert!(store.delete(b"gone").unwrap());
        for _ in 0..5 {
            store
                .update(b"counter", |old| {
                    let n = old.map_or(0, |e| u64::from_le_bytes(e.value[..].try_into().unwrap()));
                    (
                        crate::Update::Put {
                            value: (n + 1).to_le_bytes().to_vec(),
                            expires_at_ms: 0,
                        },
                        (),
                    )
                })
                .unwrap();
        }
        let check = |store: &Store| {
            assert_eq!(
                store.get(b"durable").unwrap().as_deref(),
                Some(&b"before the checkpoint"[..])
            );
            assert_eq!(store.get(b"gone").unwrap(), None);
            assert_eq!(
                store.get(b"counter").unwrap(),
                Some(5u64.to_le_bytes().to_vec())
            );
            for k in 0..100u32 {
                assert_eq!(
                    store.get(format!("k{k}").as_bytes()).unwrap(),
                    Some((200 + k).to_le_bytes().to_vec()),
                    "k{k}"
                );
            }
            assert_eq!(store.stats().unwrap().entries, 102);
        };
        check(&store);

        let inner = store.inner();
        let replay = || {
            let txn = inner.lock().unwrap();
            let n = txn
                .exclude_readers(|| txn.rebuild_live_state(&mut Phases::new()))
                .unwrap();
            drop(txn);
            n
        };
        let first = replay();
        assert_eq!(first, 306);
        let after_first = live_state(inner);
        check(&store);
        assert_eq!(replay(), first);
        assert_eq!(live_state(inner), after_first);
        check(&store);
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        check(&store);
        let report = crate::verify::check(&path).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    /// Replay sizes the index as the write path did: by the keys a record adds (its puts), not
    /// by all its operations. A batch of deletes near the load limit made replay grow an index
    /// that the writer had left alone.
    #[test]
    fn replay_sizes_the_index_by_puts_as_the_write_path_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, Options::default().index_slots(256)).unwrap();
        // 170 of 256 slots: under the 70 % limit (179), with less room than the batch below.
        for i in 0..170u32 {
            store.put(format!("k{i}").as_bytes(), b"v").unwrap();
        }
        store.checkpoint().unwrap();
        store
            .batch(|b| {
                for i in 0..20u32 {
                    b.delete(format!("k{i}").as_bytes());
                }
            })
            .unwrap();
        let inner = store.inner();
        let h = inner.lock_file.state();
        assert_eq!(h.index_slots.load(Relaxed), 256);
        let txn = inner.lock().unwrap();
        assert_eq!(
            txn.exclude_readers(|| txn.rebuild_live_state(&mut Phases::new()))
                .unwrap(),
            1
        );
        drop(txn);
        assert_eq!(h.index_slots.load(Relaxed), 256);
        assert_eq!(store.get(b"k0").unwrap(), None);
        assert_eq!(store.get(b"k20").unwrap(), Some(b"v".to_vec()));
    }
    // ---- Recovery's fast paths against a full rebuild.

    /// A small deterministic generator (xorshift), so a failing seed can be rerun.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random puts (sizes across several classes), overwrites and deletes, into `model` too.
    fn churn(
        store: &Store,
        rng: &mut Rng,
        n: u32,
        model: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    ) {
        for _ in 0..n {
            let key = format!("key{}", rng.below(300)).into_bytes();
            if rng.below(5) == 0 {
                store.delete(&key).unwrap();
                model.remove(&key);
            } else {
                let value = vec![rng.below(256) as u8; rng.below(1500) as usize];
                store.put(&key, &value).unwrap();
                model.insert(key, value);
            }
        }
    }

    /// Every unit of the heap is exactly one of: an index copy, a live entry, a free block (in
    /// a shared list or the reuse map) or a block waiting for a checkpoint. Returns the free and pending bytes.
    fn space_accounted(store: &Store) -> (u64, u64) {
        let inner = store.inner();
        let txn = inner.lock().unwrap();
        let h = inner.lock_file.state();
        let units = (h.heap_end() - HEAP_START) / BLOCK_ALIGN;
        let mut owner = vec![0u8; units as usize];
        let mut claim = |off: u64, len: u64, who: u8| {
            for u in (off - HEAP_START) / BLOCK_ALIGN..(off + len - HEAP_START) / BLOCK_ALIGN {
                assert_eq!(owner[u as usize], 0, "unit {u} claimed twice ({who})");
                owner[u as usize] = who;
            }
        };
        let slots = h.index_slots.load(Relaxed);
        let live = h.live_index.load(Relaxed);
        for c in [h.index[0].load(Relaxed), h.index[1].load(Relaxed), live] {
            claim(c, index_block_len(slots), 1);
        }
        for i in 0..slots {
            let s = inner.map.load_u64(slot_at(live, i)).unwrap();
            if slot_is_entry(s) {
                claim(slot_offset(s), class_size(slot_class(s)), 2);
            }
        }
        let mut free = 0;
        for class in 0..CLASSES as u8 {
            let mut at = h.free_head(class);
            while at != 0 {
                claim(at, class_size(class), 3);
                free += class_size(class);
                at = inner.map.load_u64(at).unwrap();
            }
        }
        for (first, n) in h.reuse_view().runs_ahead(0, u64::MAX, usize::MAX) {
            claim(HEAP_START + first * BLOCK_ALIGN, n * BLOCK_ALIGN, 3);
            free += n * BLOCK_ALIGN;
        }
        assert!(!h.pending_overflowed());
        let mut pending = 0;
        for i in 0..h.pending_count() {
            let s = h.pending(i);
            claim(slot_offset(s), class_size(slot_class(s)), 4);
            pending += class_size(slot_class(s));
        }
        drop(txn);
        assert!(owner.iter().all(|&o| o != 0), "heap space in no list");
        (free, pending)
    }

    fn contents(store: &Store) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
        let all = store.scan_prefix(b"").unwrap();
        all.into_iter().map(|(k, e)| (k, e.value)).collect()
    }

    /// Copies the data file and journal of an open store, as a `kill -9` would leave them.
    fn crashed_copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::copy(from, to).unwrap();
        let journal = |p: &std::path::Path| {
            let mut j = p.as_os_str().to_owned();
            j.push(".journal");
            std::path::PathBuf::from(j)
        };
        std::fs::copy(journal(from), journal(to)).unwrap();
    }

    fn pair_options() -> Options {
        Options::default()
            .durability(crate::Durability::None)
            .index_slots(64)
    }

    /// Two copies (`fast.db`, `full.db`) of a store as a `kill -9` left it: random writes, a
    /// long free run in the middle of the heap, a checkpoint, then hundreds of journaled writes.
    /// Returns the directory and the contents the copies must recover.
    fn crashed_pair(
        seed: u64,
    ) -> (
        tempfile::TempDir,
        std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut rng = Rng(seed * 0x9E37_79B9_7F4A_7C15);
        let mut model = std::collections::BTreeMap::new();
        let store = Store::open(&path, pair_options()).unwrap();
        churn(&store, &mut rng, 400, &mut model);
        // A long free run in the middle of the heap, where replay cuts its blocks from.
        for i in 0..100u32 {
            store.put(format!("run{i}").as_bytes(), &[7; 1400]).unwrap();
        }
        store.checkpoint().unwrap();
        for i in 0..100u32 {
            store.delete(format!("run{i}").as_bytes()).unwrap();
        }
        churn(&store, &mut rng, 100, &mut model);
        store.checkpoint().unwrap();
        let n = 200 + rng.below(400) as u32;
        churn(&store, &mut rng, n, &mut model);
        crashed_copy(&path, &dir.path().join("fast.db"));
        crashed_copy(&path, &dir.path().join("full.db"));
        drop(store);
        (dir, model)
    }

    /// Recovery with its fast paths (free space held in the process, replay's freed blocks kept
    /// pending) and recovery as a full rebuild give the same store: the same contents and
    /// counters, and every unit of the heap accounted for exactly once, also after more writes.
    #[test]
    fn fast_recovery_matches_a_full_rebuild() {
        for seed in 1..=6u64 {
            let (dir, model) = crashed_pair(seed);
            let (fast, full) = (dir.path().join("fast.db"), dir.path().join("full.db"));
            let opts = pair_options();
            let mut after = Vec::new();
            for (copy, full_rebuild) in [(&fast, false), (&full, true)] {
                FULL_REBUILD.with(|f| f.set(full_rebuild));
                let store = Store::open(copy, opts.clone());
                FULL_REBUILD.with(|f| f.set(false));
                let store = store.unwrap();
                assert!(store.stats().unwrap().recovered_records > 0);
                assert!(contents(&store) == model, "seed {seed}: contents");
                let h = store.inner().lock_file.state();
                let counters = [
                    h.entries.load(Relaxed),
                    h.used_bytes.load(Relaxed),
                    h.used_slots.load(Relaxed),
                    h.tombstones.load(Relaxed),
                    h.index_slots.load(Relaxed),
                ];
                let (free, pending) = space_accounted(&store);
                if !full_rebuild {
                    assert!(pending > 0, "replay's freed blocks wait a checkpoint");
                }
                // The free space, waiting or not, and the heap end may differ (replay picked
                // other blocks); what it holds may not.
                after.push((counters, free + pending));
                let mut rng = Rng(seed);
                let mut m = model.clone();
                churn(&store, &mut rng, 300, &mut m);
                store.checkpoint().unwrap();
                churn(&store, &mut rng, 300, &mut m);
                space_accounted(&store);
                drop(store);
                let report = crate::verify::check(copy).unwrap();
                assert!(
                    report.problems.is_empty(),
                    "seed {seed}: {:?}",
                    report.problems
                );
                let store = Store::open(copy, opts.clone()).unwrap();
                assert!(
                    contents(&store) == m,
                    "seed {seed}: contents after more writes"
                );
            }
            assert_eq!(after[0].0, after[1].0, "seed {seed}: counters");
        }
    }

    /// The pages recovery writes before its checkpoint's superblock is flushed: that flush
    /// must write them all. With the free space held in the process, no free-list link is among
    /// them, and replay's entries fill a few runs instead of scattered holes.
    #[test]
    fn recovery_writes_no_free_list_link_before_its_checkpoint() {
        use crate::{FileKind, MappedRange, RealIo, StorageIo};
        use std::collections::BTreeSet;
        use std::sync::Mutex;
        #[derive(Default)]
        struct Pages {
            before_superblock: Mutex<(bool, BTreeSet<u64>)>,
        }
        impl StorageIo for Pages {
            fn wants_mapped_writes(&self) -> bool {
                true
            }
            fn data_written(&self, off: u64, len: u64) {
                let mut p = self.before_superblock.lock().unwrap();
                if !p.0 {
                    p.1.extend(off / PAGE..(off + len).div_ceil(PAGE));
                }
            }
            fn sync_map(&self, kind: FileKind, r: &MappedRange<'_>) -> std::io::Result<()> {
                RealIo.sync_map(kind, r)?;
                if kind == FileKind::Data && r.len() == SUPERBLOCK_LEN as u64 {
                    self.before_superblock.lock().unwrap().0 = true;
                }
                Ok(())
            }
        }
        for seed in 1..=3u64 {
            let (dir, model) = crashed_pair(seed);
            let mut written = Vec::new();
            for (name, full_rebuild) in [("fast.db", false), ("full.db", true)] {
                let io = std::sync::Arc::new(Pages::default());
                FULL_REBUILD.with(|f| f.set(full_rebuild));
                let store = Store::open(dir.path().join(name), pair_options().io(io.clone()));
                FULL_REBUILD.with(|f| f.set(false));
                let store = store.unwrap();
                assert!(contents(&store) == model, "seed {seed}");
                let p = io.before_superblock.lock().unwrap();
                assert!(p.0, "recovery checkpointed");
                written.push(p.1.len());
            }
            assert!(
                written[0] * 4 < written[1] * 3,
                "seed {seed}: pages written before the checkpoint, held vs linked: {written:?}"
            );
        }
    }

    /// A store kept full by eviction, copied as a `kill -9` would leave it after each of a
    /// hundred puts: every copy recovers. The writer put each entry into a free block of its
    /// size (victims had the same sizes); replay cutting every block from the largest run left
    /// slivers, and a later entry of the cycle found no room ("no room to replay the journal").
    #[test]
    fn a_store_kept_full_by_eviction_recovers_after_any_put() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let opts = || {
            Options::default()
                .journal_size(256 << 10)
                .initial_size(256 << 10)
                .max_size(1 << 20)
                .durability(crate::Durability::None)
                .when_full(crate::WhenFull::Evict)
        };
        let store = Store::open(&path, opts()).unwrap();
        let value = |i: usize| -> Vec<u8> { vec![i as u8; 900 + i % 300] };
        let copy = dir.path().join("crashed.db");
        let mut failed = Vec::new();
        for i in 0..1000usize {
            store.put(format!("key{i}").as_bytes(), &value(i)).unwrap();
            if i < 900 {
                continue;
            }
            crashed_copy(&path, &copy);
            match Store::open(&copy, opts()) {
                Ok(s) => {
                    assert_eq!(s.get(format!("key{i}").as_bytes()).unwrap(), Some(value(i)));
                    drop(s);
                    let report = crate::verify::check(&copy).unwrap();
                    assert!(report.problems.is_empty(), "{:?}", report.problems);
                }
                Err(e) => failed.push((i, e.to_string())),
            }
        }
        assert!(store.stats().unwrap().expunges > 100, "the store was full");
        assert!(failed.is_empty(), "{failed:?}");
    }

    /// A full store whose cycle reuses a freed large block after small ones: the writer put the
    /// small entries into free blocks of their size and the large one back into its own block.
    /// Replay cutting the small entries from the front of the long free run found no room for
    /// the large entry; it must replay again, taking the best-fitting run for every block.
    #[test]
    fn replay_finds_room_where_the_writer_reused_a_large_freed_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let opts = || {
            Options::default()
                .initial_size(512 << 10)
                .max_size(512 << 10)
                .durability(crate::Durability::None)
        };
        let store = Store::open(&path, opts()).unwrap();
        let big = vec![b'B'; 100 << 10];
        store.put(b"big", &big).unwrap();
        let mut small = 0;
        while store
            .put(format!("s{small}").as_bytes(), &[b's'; 1000])
            .is_ok()
        {
            small += 1;
        }
        assert!(small > 100, "{small}");
        // Free the large block and a few small ones, then make them reusable.
        store.delete(b"big").unwrap();
        for i in (0..small).step_by(small / 8) {
            store.delete(format!("s{i}").as_bytes()).unwrap();
        }
        store.checkpoint().unwrap();
        for i in 0..6 {
            store
                .put(format!("n{i}").as_bytes(), &[b'n'; 1000])
                .unwrap();
        }
        store.put(b"big", &big).unwrap();
        let copy = dir.path().join("crashed.db");
        crashed_copy(&path, &copy);
        drop(store);
        let s = Store::open(&copy, opts()).unwrap();
        assert_eq!(s.get(b"big").unwrap(), Some(big));
        assert_eq!(s.get(b"n5").unwrap(), Some(vec![b'n'; 1000]));
        assert!(s.stats().unwrap().recovered_records >= 7);
        drop(s);
        let report = crate::verify::check(&copy).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    // ---- The closing snapshot (SPEC.md §7.2).

    fn newest_superblock(path: &std::path::Path) -> Superblock {
        let bytes = std::fs::read(path).unwrap();
        let read = |at: u64, b: &mut [u8]| {
            b.copy_from_slice(&bytes[at as usize..at as usize + b.len()]);
            Ok(())
        };
        read_superblock(path, bytes.len() as u64, read).unwrap()
    }

    fn patch(path: &std::path::Path, at: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(bytes, at).unwrap();
    }

    fn snapshot_in(path: &std::path::Path) -> Option<StateSnapshot> {
        let sb = newest_superblock(path);
        let bytes = std::fs::read(path).unwrap();
        let at = snapshot_offset(sb.epoch) as usize;
        StateSnapshot::decode(&bytes[at..at + SNAPSHOT_LEN])
    }

    /// A store with puts, overwrites of other sizes and deletes (so the free lists are not
    /// empty), closed cleanly.
    fn closed_store(path: &std::path::Path) {
        let store = Store::open(path, Options::default().index_slots(64)).unwrap();
        for i in 0..400u32 {
            store
                .put(
                    format!("k{i}").as_bytes(),
                    &vec![b'a'; (i % 7) as usize * 90],
                )
                .unwrap();
        }
        store.checkpoint().unwrap();
        for i in 0..400u32 {
            if i % 3 == 0 {
                store.delete(format!("k{i}").as_bytes()).unwrap();
            } else if i % 3 == 1 {
                store.put(format!("k{i}").as_bytes(), b"short").unwrap();
            }
        }
        assert!(store.stats().unwrap().rebuilt_at_open);
        drop(store);
    }

    /// Removes the lock file of a closed store: its shared state is gone, as after a reboot, so
    /// the next open uses the snapshot instead of resuming (SPEC.md §7.5).
    fn forget_shared_state(path: &std::path::Path) {
        std::fs::remove_file(crate::Paths::new(path).lock).unwrap();
    }

    fn check_contents(store: &Store) {
        for i in 0..400u32 {
            let want = match i % 3 {
                0 => None,
                1 => Some(b"short".to_vec()),
                _ => Some(vec![b'a'; (i % 7) as usize * 90]),
            };
            assert_eq!(store.get(format!("k{i}").as_bytes()).unwrap(), want, "k{i}");
        }
    }

    /// The counters a walk of the index computes, for comparison with restored ones.
    fn rebuilt_counters(store: &Store) -> [u64; 4] {
        let inner = store.inner();
        let txn = inner.lock().unwrap();
        txn.rebuild_free_lists().unwrap();
        drop(txn);
        let h = inner.lock_file.state();
        [
            h.entries.load(Relaxed),
            h.used_bytes.load(Relaxed),
            h.used_slots.load(Relaxed),
            h.tombstones.load(Relaxed),
        ]
    }

    #[test]
    fn an_open_after_a_clean_close_loads_the_snapshot_instead_of_rebuilding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        closed_store(&path);
        let snap = snapshot_in(&path).expect("a clean close leaves a snapshot");
        assert!(snap.free_heads.iter().any(|&h| h != 0), "free lists saved");
        forget_shared_state(&path);
        let store = Store::open(&path, Options::default()).unwrap();
        assert!(!store.resumed_at_open());
        let stats = store.stats().unwrap();
        assert!(!stats.rebuilt_at_open, "the snapshot was used");
        assert_eq!(stats.entries, snap.entries);
        assert_eq!(stats.entries, 266);
        check_contents(&store);
        let h = store.inner().lock_file.state();
        let restored = [
            h.entries.load(Relaxed),
            h.used_bytes.load(Relaxed),
            h.used_slots.load(Relaxed),
            h.tombstones.load(Relaxed),
        ];
        // Taking the lock erased the snapshot; the counters are those a rebuild finds.
        assert_eq!(rebuilt_counters(&store), restored);
        assert_eq!(snapshot_in(&path), None);
        // The restored free lists hand out blocks that hold: write through them, then check.
        for i in 0..400u32 {
            store
                .put(
                    format!("n{i}").as_bytes(),
                    &vec![b'b'; (i % 5) as usize * 70],
                )
                .unwrap();
        }
        check_contents(&store);
        drop(store);
        let report = crate::verify::check(&path).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let store = Store::open(&path, Options::default()).unwrap();
        assert!(!store.stats().unwrap().rebuilt_at_open);
        check_contents(&store);
    }

    /// The reuse map lives in the lock file, which the next first opener starts afresh: the last
    /// closer links its runs into the free lists the snapshot names, so an open from the
    /// snapshot loses no free space; the next commits move the lists back into the map, and
    /// every unit of the heap stays owned exactly once throughout.
    #[test]
    fn the_reuse_map_survives_a_clean_close_through_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let free_before = {
            let store = Store::open(&path, Options::default().index_slots(64)).unwrap();
            for round in 0..3u32 {
                for i in 0..300u32 {
                    let v = vec![b'a' + round as u8; (i % 7) as usize * 90];
                    store.put(format!("k{i}").as_bytes(), &v).unwrap();
                }
                store.checkpoint().unwrap();
            }
            store.checkpoint().unwrap();
            let h = store.inner().lock_file.state();
            let (free, pending) = space_accounted(&store);
            assert!(h.reuse_view().free_units() > 0, "freed space is in the map");
            free + pending
        };
        forget_shared_state(&path);
        let store = Store::open(&path, Options::default()).unwrap();
        assert!(
            !store.stats().unwrap().rebuilt_at_open,
            "the snapshot was used"
        );
        let h = store.inner().lock_file.state();
        assert_eq!(
            h.reuse_view().free_units(),
            0,
            "a first opener's map is empty"
        );
        let (free, pending) = space_accounted(&store);
        assert_eq!(
            (free, pending),
            (free_before, 0),
            "all free space is in the lists"
        );
        // Each commit moves a few list blocks into the map.
        for i in 0..200u32 {
            store.put(format!("n{i}").as_bytes(), b"x").unwrap();
        }
        space_accounted(&store);
        assert!(
            (0..CLASSES as u8).all(|c| h.free_head(c) == 0),
            "the free lists were moved into the map"
        );
        for i in 0..300u32 {
            let v = vec![b'c'; (i % 7) as usize * 90];
            assert_eq!(store.get(format!("k{i}").as_bytes()).unwrap(), Some(v));
        }
    }

    /// The first write lock after an open that used the snapshot erases it, and the erasure is
    /// flushed before anything else reaches the data file or the journal: a crash after that
    /// write must not find a snapshot that no longer describes the store.
    #[test]
    fn the_first_write_erases_the_snapshot_durably_before_writing() {
        use crate::{FileKind, MappedRange, RealIo, StorageIo};
        use std::sync::{Arc, Mutex};
        #[derive(Default)]
        struct Rec(Mutex<Vec<(char, u64, u64)>>);
        impl StorageIo for Rec {
            fn wants_mapped_writes(&self) -> bool {
                true
            }
            fn data_written(&self, off: u64, len: u64) {
                self.0.lock().unwrap().push(('w', off, len));
            }
            fn journal_copied(&self, off: u64, r: &[u8]) {
                self.0.lock().unwrap().push(('j', off, r.len() as u64));
            }
            fn write_at(
                &self,
                kind: FileKind,
                f: &std::fs::File,
                off: u64,
                b: &[u8],
            ) -> std::io::Result<usize> {
                if kind == FileKind::Journal {
                    self.0.lock().unwrap().push(('j', off, b.len() as u64));
                }
                RealIo.write_at(kind, f, off, b)
            }
            fn sync_map(&self, kind: FileKind, r: &MappedRange<'_>) -> std::io::Result<()> {
                RealIo.sync_map(kind, r)?;
                if kind == FileKind::Data {
                    self.0.lock().unwrap().push(('s', r.offset(), r.len()));
                }
                Ok(())
            }
        }
        // Both opens of a closed store: resuming its state (this boot) and loading the snapshot.
        for resume in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            closed_store(&path);
            if !resume {
                forget_shared_state(&path);
            }
            let at = snapshot_offset(newest_superblock(&path).epoch);
            let rec = Arc::new(Rec::default());
            let store = Store::open(&path, Options::default().io(rec.clone())).unwrap();
            assert_eq!(store.resumed_at_open(), resume);
            assert!(!store.stats().unwrap().rebuilt_at_open);
            check_contents(&store);
            assert!(rec.0.lock().unwrap().is_empty(), "reads write nothing");
            assert!(snapshot_in(&path).is_some());
            store.put(b"x", b"y").unwrap();
            let events = rec.0.lock().unwrap().clone();
            assert_eq!(events[0], ('w', at, 16), "{events:?}");
            assert_eq!(events[1].0, 's', "{events:?}");
            assert!(events[1].1 <= at && events[1].1 + events[1].2 >= at + 16);
            assert!(events.len() > 2, "then the put itself: {events:?}");
            assert_eq!(snapshot_in(&path), None);
            drop(store);
        }
    }

    #[test]
    fn a_damaged_or_outdated_snapshot_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        closed_store(&path);
        let reopen = |expect_rebuilt: bool| {
            forget_shared_state(&path);
            let store = Store::open(&path, Options::default()).unwrap();
            assert_eq!(store.stats().unwrap().rebuilt_at_open, expect_rebuilt);
            check_contents(&store);
            assert_eq!(store.stats().unwrap().entries, 266);
            drop(store);
            let report = crate::verify::check(&path).unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
        };
        // One flipped bit: the checksum fails.
        let at = snapshot_offset(newest_superblock(&path).epoch);
        let mut b = std::fs::read(&path).unwrap()[at as usize..at as usize + SNAPSHOT_LEN].to_vec();
        b[snapshot_at::FREE_HEADS + 3] ^= 0x10;
        patch(&path, at, &b);
        reopen(true);
        reopen(false);

        // A checksummed snapshot whose free-list head leaves the heap.
        let sb = newest_superblock(&path);
        let mut snap = snapshot_in(&path).unwrap();
        snap.free_heads[5] = sb.heap_end;
        patch(&path, snapshot_offset(sb.epoch), &snap.encode());
        reopen(true);

        // The closer died after writing its checkpoint's superblock, before the snapshot: the
        // page holds the previous close's snapshot, intact but for an older epoch.
        let old = snapshot_in(&path).unwrap();
        rewrite_superblock(&path, |sb| sb.epoch += 1);
        let sb = newest_superblock(&path);
        assert_eq!(snapshot_offset(sb.epoch), snapshot_offset(old.epoch) ^ PAGE);
        patch(&path, snapshot_offset(sb.epoch), &old.encode());
        reopen(true);

        // A snapshot for a newer epoch than the newest superblock (its superblock never landed).
        let sb = newest_superblock(&path);
        let mut ahead = snapshot_in(&path).unwrap();
        ahead.epoch += 1;
        patch(&path, snapshot_offset(sb.epoch), &ahead.encode());
        reopen(true);

        // Same epoch, another superblock (a restored or rebuilt data file): the superblock's
        // checksum tells them apart.
        let snap = snapshot_in(&path).unwrap();
        rewrite_superblock(&path, |sb| sb.created_ms += 1);
        let sb = newest_superblock(&path);
        assert_eq!(sb.epoch, snap.epoch);
        reopen(true);

        // A damaged live index copy (the one readers would use): its checksum no longer matches,
        // and the rebuild copies the durable one over it.
        let sb = newest_superblock(&path);
        let slot = sb.live + 8 * 13;
        let mut b = std::fs::read(&path).unwrap()[slot as usize..slot as usize + 8].to_vec();
        b[4] ^= 0x21;
        patch(&path, slot, &b);
        reopen(true);

        // A damaged durable copy: the snapshot is used, and the next checkpoint rewrites the
        // whole copy from the verified live one (every page counts as changed).
        let sb = newest_superblock(&path);
        let durable = sb.index[sb.durable_copy as usize];
        let at = durable + 8 * 21;
        let mut b = std::fs::read(&path).unwrap()[at as usize..at as usize + 8].to_vec();
        b[3] ^= 0x44;
        patch(&path, at, &b);
        assert!(!crate::verify::check(&path).unwrap().problems.is_empty());
        reopen(false);
        // The close's checkpoint named the other copy durable: the next open uses the snapshot
        // too.
        reopen(false);

        // The file grew after the snapshot was taken.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len + PAGE)
            .unwrap();
        reopen(true);
        reopen(false);
    }

    /// Files of format versions 1 and 2 (one journal cycle from offset 0, two index copies) are
    /// refused by a read-only open, which leaves them as they were, and converted by the first
    /// read-write open (store/tests/upgrade.rs has real version-2 files).
    #[test]
    fn a_version_2_file_is_refused_read_only_and_converted_read_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        closed_store(&path);
        let original = std::fs::read(&path).unwrap();
        for version in [1u32, 2] {
            patch(&path, 0, &original[..HEAP_START as usize]);
            // Both copies, as an older build leaves them.
            for at in SUPERBLOCK_OFFSETS {
                let at = at as usize;
                let mut b = original[at..at + SUPERBLOCK_LEN].to_vec();
                b[superblock_at::VERSION..superblock_at::VERSION + 4]
                    .copy_from_slice(&version.to_le_bytes());
                let crc = crc32c::crc32c(&b[superblock_at::CHECKSUMMED..]);
                b[superblock_at::CRC..superblock_at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
                patch(&path, at as u64, &b);
            }
            let before = std::fs::read(&path).unwrap();
            let e = Store::open(&path, Options::default().read_only())
                .expect_err("a read-only handle does not convert");
            assert!(
                e.to_string().contains(&format!(
                    "format version {version}, written by an older apcdb"
                )),
                "{e}"
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                before,
                "the file was changed"
            );
            let store = Store::open(&path, Options::default()).unwrap();
            check_contents(&store);
            drop(store);
            assert_eq!(newest_superblock(&path).epoch, sb_epoch(&before) + 2);
        }
    }

    /// The newest epoch among the superblock copies in a data file's bytes.
    fn sb_epoch(file: &[u8]) -> u64 {
        SUPERBLOCK_OFFSETS
            .iter()
            .map(|&at| {
                let at = (at as usize) + superblock_at::EPOCH;
                u64::from_le_bytes(file[at..at + 8].try_into().unwrap())
            })
            .max()
            .unwrap()
    }

    /// Rewrites the newest superblock copy of a closed store, with a valid checksum.
    fn rewrite_superblock(path: &std::path::Path, change: impl FnOnce(&mut Superblock)) {
        let mut sb = newest_superblock(path);
        change(&mut sb);
        patch(
            path,
            SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize],
            &sb.encode(),
        );
    }
}
