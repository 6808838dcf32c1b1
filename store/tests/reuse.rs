//! Reuse of freed blocks (SPEC.md §2.4): a reused block gets no free-list link written into it
//! first, and a cycle's puts land on few pages. Seen through the storage seam, which reports
//! every write through the data file's mapping.

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

/// Random overwrites of a store whose keys fill many pages: between two checkpoints, the puts
/// write into few distinct pages of the data file, because freed space is taken next-fit by
/// address (SPEC.md §2.4) rather than in the scattered order it was freed in. The distinct pages
/// written in a cycle are what its checkpoint writes back.
#[test]
fn a_cycle_of_random_overwrites_writes_few_distinct_pages() {
    const KEYS: u64 = 40_000;
    const PER_CYCLE: u64 = 4_000;
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(Recorder::default());
    let opts = Options::default()
        // No checkpoint but the test's own: one cycle is exactly the puts between two.
        .journal_size(64 << 20)
        .index_slots(1 << 16)
        .durability(Durability::None)
        .io(io.clone());
    let store = Store::open(dir.path().join("s.db"), opts).unwrap();
    let value = [7u8; 150];
    let key = |i: u64| format!("key{i:08}");
    for i in 0..KEYS {
        store.put(key(i).as_bytes(), &value).unwrap();
    }
    // A fixed pseudo-random order (xorshift), the same in every run.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % KEYS
    };
    // Cycles until the freed blocks of earlier cycles are what the puts reuse.
    for cycle in 0..12 {
        if cycle == 11 {
            io.on.store(true, Ordering::Relaxed);
        }
        for _ in 0..PER_CYCLE {
            store.put(key(next()).as_bytes(), &value).unwrap();
        }
        io.on.store(false, Ordering::Relaxed);
        store.checkpoint().unwrap();
    }
    let writes = io.writes.lock().unwrap();
    let entry_pages: HashSet<u64> = writes
        .iter()
        .filter(|(_, lens)| lens.iter().any(|&l| l > 8))
        .map(|(&off, _)| off / 4096)
        .collect();
    let all_pages: HashSet<u64> = writes.keys().map(|&off| off / 4096).collect();
    let file_pages = std::fs::metadata(dir.path().join("s.db")).unwrap().len() / 4096;
    eprintln!(
        "{} pages written by entries, {} in all, of {file_pages}",
        entry_pages.len(),
        all_pages.len()
    );
    // 4,000 entries of 256 bytes fill 250 pages. Taken in the order they were freed (main
    // before the reuse map), they landed on about 2,150 distinct pages of the 2,500 the entries
    // occupy. Taken next-fit from a pool about four times a cycle's allocations (the slack),
    // they sweep about a quarter of the heap's 3,500 pages: about 1,200 (with the index pages).
    assert!(
        entry_pages.len() < 1_500,
        "{} distinct pages written by {PER_CYCLE} puts",
        entry_pages.len()
    );
    drop(writes);
    for i in 0..KEYS {
        assert_eq!(
            store.get(key(i).as_bytes()).unwrap().as_deref(),
            Some(&value[..])
        );
    }
}

/// A maximum size that is not a multiple of the 64-byte block alignment: the file ends between two
/// blocks, and the heap, taking in the file's tail as slack, must stop at the last whole block
/// (a heap end past it is a superblock every later checkpoint refuses to write).
#[test]
fn a_store_whose_maximum_size_ends_between_blocks_fills_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let opts = || {
        Options::default()
            .max_size(1_500_000)
            .journal_size(256 << 10)
            .durability(Durability::None)
    };
    let store = Store::open(&path, opts()).unwrap();
    let mut n = 0u32;
    loop {
        match store.put(format!("key{n}").as_bytes(), &[n as u8; 300]) {
            Ok(()) => n += 1,
            Err(e) if e.is_full() => break,
            Err(e) => panic!("put {n}: {e}"),
        }
        assert!(n < 10_000, "never full");
    }
    store.checkpoint().unwrap();
    drop(store);
    let store = Store::open(&path, opts()).unwrap();
    for i in (0..n).step_by(97) {
        assert_eq!(
            store.get(format!("key{i}").as_bytes()).unwrap(),
            Some(vec![i as u8; 300])
        );
    }
}
