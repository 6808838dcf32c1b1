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
//! Entered from `Inner::open_elected` (`store.rs`, the first opener) and from `Inner::lock`
//! (`write.rs`, when the previous holder died or left the state half made); in both the caller
//! holds the write lock, so these are methods of the `WriteTxn`.

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::write::WriteTxn;
use std::sync::atomic::Ordering::*;

impl WriteTxn<'_> {
    /// Runs recovery; the caller holds the write lock. Returns the number of records replayed.
    pub(crate) fn recover(&self) -> Result<u64> {
        let replayed = self.exclude_readers(|| self.rebuild_live_state())?;
        if replayed > 0 || self.lock_file.state().pending_count() > 0 {
            self.checkpoint()?;
        }
        Ok(replayed)
    }

    fn rebuild_live_state(&self) -> Result<u64> {
        let h = self.lock_file.state();
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
                self.map.copy(self.held(), durable + off, live + off, len)?;
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
        h.set_heap_end(self.held(), sb.heap_end);
        h.epoch.store(sb.epoch, Relaxed);
        h.ckpt_lsn.store(sb.ckpt_lsn, Relaxed);
        h.generation.store(sb.generation, Relaxed);
        h.created_ms.store(sb.created_ms, Relaxed);
        // The durable limit; never below the file (a store must stay able to checkpoint).
        h.max_size.store(sb.max_size.max(file_size), Release);
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
            // Room for the keys the record adds, as the write path counted it.
            let puts = ops
                .iter()
                .filter(|o| matches!(o, crate::journal::Op::Put { .. }));
            self.ensure_index_room(puts.count() as u64)?;
            let blocks = match self.plan_blocks(ops)? {
                Some(b) => b,
                None => {
                    self.rebuild_free_lists()?;
                    self.plan_blocks(ops)?
                        .ok_or_else(|| self.full_error("no room to replay the journal"))?
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
            let n = txn.exclude_readers(|| txn.rebuild_live_state()).unwrap();
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
        assert_eq!(txn.exclude_readers(|| txn.rebuild_live_state()).unwrap(), 1);
        drop(txn);
        assert_eq!(h.index_slots.load(Relaxed), 256);
        assert_eq!(store.get(b"k0").unwrap(), None);
        assert_eq!(store.get(b"k20").unwrap(), Some(b"v".to_vec()));
    }
}
