//! Reuse of freed blocks (SPEC.md §2.4): a block freed before a durable checkpoint that an
//! allocation of its class takes straight from the pending ring gets no free-list link written
//! into it first. Seen through the storage seam, which reports every write through the data
//! file's mapping.

use apcdb::{Durability, Options, StorageIo, Store};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Records the data file's mapped writes while `on` is set: offset → the lengths written there.
#[derive(Default)]
struct Recorder {
    on: AtomicBool,
    writes: Mutex<HashMap<u64, Vec<u64>>>,
}

impl StorageIo for Recorder {
    fn wants_mapped_writes(&self) -> bool {
        true
    }
    fn data_written(&self, off: u64, len: u64) {
        if self.on.load(Ordering::Relaxed) {
            self.writes
                .lock()
                .unwrap()
                .entry(off)
                .or_default()
                .push(len);
        }
    }
}

#[test]
fn overwrites_of_one_size_write_no_free_list_link_into_reused_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(Recorder::default());
    let opts = Options::default()
        .journal_size(256 << 10)
        .durability(Durability::None)
        .io(io.clone());
    let store = Store::open(dir.path().join("s.db"), opts).unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("key{i}")).collect();
    let value = [7u8; 100];
    for k in &keys {
        store.put(k.as_bytes(), &value).unwrap();
    }
    io.on.store(true, Ordering::Relaxed);
    let before = store.stats().unwrap().checkpoints;
    // Each round overwrites every key: the old blocks wait for a checkpoint, then are reused.
    for _ in 0..200 {
        for k in &keys {
            store.put(k.as_bytes(), &value).unwrap();
        }
    }
    io.on.store(false, Ordering::Relaxed);
    let checkpoints = store.stats().unwrap().checkpoints - before;
    assert!(
        checkpoints >= 5,
        "too few checkpoints ({checkpoints}) for blocks to be reused"
    );
    let writes = io.writes.lock().unwrap();
    // Blocks an entry was written into (a write longer than one word at the block's start).
    let entry_blocks: HashSet<u64> = writes
        .iter()
        .filter(|(_, lens)| lens.iter().any(|&l| l > 8))
        .map(|(&off, _)| off)
        .collect();
    // Of those, the ones that also got a lone 8-byte write at their start: a free-list link.
    let linked = entry_blocks
        .iter()
        .filter(|off| writes[off].contains(&8))
        .count();
    assert!(
        entry_blocks.len() >= 64,
        "entries were written into only {} blocks",
        entry_blocks.len()
    );
    assert_eq!(
        linked,
        0,
        "{linked} of {} reused blocks got a free-list link written first",
        entry_blocks.len()
    );
    drop(writes);
    // And the data is all there.
    for k in &keys {
        assert_eq!(
            store.get(k.as_bytes()).unwrap().as_deref(),
            Some(&value[..])
        );
    }
}
