//! The checkpoint: make the live index and every entry it references durable, publish them with a
//! new superblock, then let the journal and the blocks freed since the last checkpoint be reused.
//!
//! Order matters (SPEC.md, "Checkpoint"):
//! 1. `msync` the data file: the live index copy and all new entries reach the disk.
//! 2. Write the other superblock slot (epoch + 1, naming the live copy as durable) and `msync` it.
//! 3. Only now: the journal restarts at offset 0 under the new epoch; pending blocks are freed;
//!    the old durable copy is brought up to date and becomes the live copy.
//!
//! Entered from `Store::checkpoint`, from a writer past seven eighths of the journal after it
//! released the lock and flushed the heap without it (`maybe_checkpoint_early`, `write.rs`), from
//! a commit that finds the journal or the pending list full
//! or the store without room (`write.rs`), after a recovery that replayed records, and when the
//! last process closes the store (`Drop for Inner`, `store.rs`).

use crate::error::Result;
use crate::format::*;
use crate::write::WriteTxn;
use std::sync::atomic::Ordering::*;

impl WriteTxn<'_> {
    /// Runs a checkpoint. The caller holds the write lock.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.check_poison()?;
        self.check_data_file_identity()?;
        let h = self.lock_file.state();
        // The real length: another process may have grown the file, and its pages must be
        // flushed and recorded too.
        // (`whole_len`: a file grown past this process's reservation cannot be flushed here.)
        let file_size = self.map.whole_len()?;
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
            // The live limit: a resize becomes durable here (SPEC.md §9).
            max_size: h.max_size.load(Relaxed),
            heap_end: h.heap_end(),
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
        self.map.write(self.held(), at, &sb.encode())?;
        self.flush(at, SUPERBLOCK_LEN as u64)?;

        // The checkpoint is durable: everything up to ckpt_lsn is safe without the journal.
        h.epoch.store(epoch, Relaxed);
        h.ckpt_lsn.store(ckpt_lsn, Relaxed);
        h.durable_lsn.fetch_max(ckpt_lsn, AcqRel);
        h.journal_pos.store(0, Relaxed);
        h.durable_copy.store(live_copy, Relaxed);
        h.checkpoints.fetch_add(1, Relaxed);

        self.exclude_readers(|| self.swap_copies(live_copy).and_then(|()| self.reclaim()))
    }

    /// Brings the copy that was durable until now up to date with the live one (only the pages
    /// changed since the last checkpoint) and makes it the live copy.
    fn swap_copies(&self, now_durable: u64) -> Result<()> {
        let h = self.lock_file.state();
        let from = h.index[now_durable as usize].load(Relaxed);
        let to = h.index[1 - now_durable as usize].load(Relaxed);
        let bytes = index_len(h.index_slots.load(Relaxed));
        for page in 0..bytes.div_ceil(PAGE) {
            let word = &h.dirty[(page / 64) as usize];
            if word.load(Relaxed) & (1 << (page % 64)) != 0 {
                let len = PAGE.min(bytes - page * PAGE);
                self.map
                    .copy(self.held(), from + page * PAGE, to + page * PAGE, len)?;
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
}

impl crate::store::Inner {
    /// msync that poisons the store on failure: after a failed flush the kernel may have marked
    /// the dirty pages clean without writing them, so a retry that succeeds proves nothing.
    pub(crate) fn flush(&self, off: u64, len: u64) -> Result<()> {
        if self.ephemeral {
            return Ok(());
        }
        self.map.sync(off, len).inspect_err(|_| self.poison())
    }
}

#[cfg(test)]
mod tests {
    use crate::{FileKind, MappedRange, Options, RealIo, StorageIo, Store};
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        Written(u64, u64),
        Synced(u64, u64),
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Event>>);

    impl StorageIo for Recorder {
        fn wants_mapped_writes(&self) -> bool {
            true
        }
        fn data_written(&self, off: u64, len: u64) {
            self.0.lock().unwrap().push(Event::Written(off, len));
        }
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            RealIo.sync_map(kind, range)?;
            if kind == FileKind::Data {
                let e = Event::Synced(range.offset(), range.len());
                self.0.lock().unwrap().push(e);
            }
            Ok(())
        }
    }

    fn superblock_in(path: &std::path::Path, copy: usize) -> Superblock {
        let bytes = std::fs::read(path).unwrap();
        let at = SUPERBLOCK_OFFSETS[copy] as usize;
        UncheckedSuperblock::decode(&bytes[at..at + SUPERBLOCK_LEN])
            .unwrap()
            .validate(bytes.len() as u64)
            .unwrap()
    }

    /// One checkpoint after a write; returns what it did to the data file and the superblock it
    /// wrote, and checks the order: whole-file flush, then the superblock, then its flush.
    fn checkpoint_once(store: &Store, rec: &Recorder, path: &std::path::Path) -> Superblock {
        let h = store.inner().lock_file.state();
        let before = h.epoch.load(Relaxed);
        let live = h.live_index.load(Relaxed);
        store.put(format!("k{before}").as_bytes(), b"v").unwrap();
        rec.0.lock().unwrap().clear();
        store.checkpoint().unwrap();
        let events = rec.0.lock().unwrap().clone();

        let epoch = before + 1;
        let at = SUPERBLOCK_OFFSETS[(epoch % 2) as usize];
        let sb_write = events
            .iter()
            .position(|e| *e == Event::Written(at, SUPERBLOCK_LEN as u64))
            .expect("the checkpoint writes the superblock copy its epoch selects");
        let file_len = std::fs::metadata(path).unwrap().len();
        assert_eq!(
            events[..sb_write],
            [Event::Synced(0, file_len)],
            "only a flush of the whole data file comes before the superblock: {events:?}"
        );
        assert_eq!(
            events[sb_write + 1],
            Event::Synced(at, SUPERBLOCK_LEN as u64),
            "the superblock is flushed before anything else is written: {events:?}"
        );
        let sb = superblock_in(path, (epoch % 2) as usize);
        assert_eq!(sb.epoch, epoch);
        // It names as durable the copy that was live (and just flushed)...
        assert_eq!(sb.index[sb.durable_copy as usize], live);
        // ...and the other copy becomes the live one.
        assert_eq!(
            h.live_index.load(Relaxed),
            sb.index[1 - sb.durable_copy as usize]
        );
        assert_eq!(h.epoch.load(Relaxed), epoch);
        assert_eq!(h.journal_pos.load(Relaxed), 0);
        sb
    }

    #[test]
    fn superblock_after_the_data_flush_in_alternate_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let rec = Arc::new(Recorder::default());
        let store = Store::open(&path, Options::default().io(rec.clone())).unwrap();
        let first = checkpoint_once(&store, &rec, &path);
        let second = checkpoint_once(&store, &rec, &path);
        let third = checkpoint_once(&store, &rec, &path);
        assert_eq!(second.epoch, first.epoch + 1);
        assert_eq!(third.epoch, second.epoch + 1);
        // Each checkpoint names the other index copy as durable, and leaves the superblock copy
        // the previous one wrote intact.
        assert_ne!(first.durable_copy, second.durable_copy);
        assert_eq!(first.durable_copy, third.durable_copy);
        let older = superblock_in(&path, (second.epoch % 2) as usize);
        assert_eq!(older, second);
        // The newest copy is the one recovery starts from.
        let bytes = std::fs::read(&path).unwrap();
        let read = |at: u64, b: &mut [u8]| {
            b.copy_from_slice(&bytes[at as usize..at as usize + b.len()]);
            Ok(())
        };
        assert_eq!(
            read_superblock(&path, bytes.len() as u64, read).unwrap(),
            third
        );
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        let last_key = format!("k{}", third.epoch - 1);
        assert_eq!(store.get(last_key.as_bytes()).unwrap(), Some(b"v".to_vec()));
    }

    /// Holds the second flush of the heap alone (the first is the early flush at half a journal,
    /// the second the early checkpoint's) until the test lets it go.
    struct Gate {
        heap_flushes: Mutex<u32>,
        started: Mutex<std::sync::mpsc::Sender<()>>,
        go: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl StorageIo for Gate {
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> std::io::Result<()> {
            if kind == FileKind::Data && range.offset() == HEAP_START {
                let n = {
                    let mut n = self.heap_flushes.lock().unwrap();
                    *n += 1;
                    *n
                };
                if n == 2 {
                    self.started.lock().unwrap().send(()).unwrap();
                    let _ = self
                        .go
                        .lock()
                        .unwrap()
                        .recv_timeout(std::time::Duration::from_secs(30));
                }
            }
            RealIo.sync_map(kind, range)
        }
    }

    /// The checkpoint's bulk flush runs without the write lock: while the writer that crossed
    /// seven eighths of the journal is inside it, another writer commits; the checkpoint then
    /// happens before any commit finds the journal full.
    #[test]
    fn writers_commit_while_the_early_checkpoint_flushes() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (started_tx, started) = channel();
        let (go, go_rx) = channel();
        let gate = Arc::new(Gate {
            heap_flushes: Mutex::new(0),
            started: Mutex::new(started_tx),
            go: Mutex::new(go_rx),
        });
        let opts = Options::default().journal_size(256 << 10).io(gate.clone());
        let store = Arc::new(Store::open(&path, opts).unwrap());
        let h = store.inner().lock_file.state();
        let (epoch, size) = (h.epoch.load(Relaxed), store.inner().journal.size);
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                let h = store.inner().lock_file.state();
                let mut i = 0u64;
                // The put that checkpoints leaves the journal empty: the highest position
                // seen after a put is below 7/8 when the checkpoint came at 7/8, not when full.
                let mut highest_pos = 0;
                while h.epoch.load(Relaxed) == epoch {
                    store
                        .put(format!("a{}", i % 100).as_bytes(), &[1; 100])
                        .unwrap();
                    highest_pos = highest_pos.max(h.journal_pos.load(Relaxed));
                    i += 1;
                }
                highest_pos
            })
        };
        started
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer past 7/8 of the journal starts flushing the heap");
        let other = {
            let store = store.clone();
            std::thread::spawn(move || store.put(b"b", b"while flushing").unwrap())
        };
        let mut committed = false;
        for _ in 0..1000 {
            if other.is_finished() {
                committed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        go.send(()).unwrap();
        other.join().unwrap();
        let highest_pos = writer.join().unwrap();
        assert!(committed, "a commit waited for the checkpoint's bulk flush");
        assert_eq!(h.epoch.load(Relaxed), epoch + 1);
        assert!(
            highest_pos > size / 2 && highest_pos * 8 < size * 7,
            "checkpointed at {highest_pos} of {size} journal bytes"
        );
        assert_eq!(store.get(b"b").unwrap(), Some(b"while flushing".to_vec()));
        drop(store);
        let store = Store::open(&path, Options::default()).unwrap();
        assert_eq!(store.get(b"b").unwrap(), Some(b"while flushing".to_vec()));
    }
}
