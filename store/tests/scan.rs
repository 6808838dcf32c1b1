//! `Store::scan`: a streaming scan that holds one chunk at a time, and returns every entry that
//! stays unchanged during the scan exactly once, even when writers grow and rebuild the index
//! between its chunks.

mod common;

use apcdb::{Durability, Options, Store, Visit};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

/// Tracks each thread's live heap bytes and their peak, to measure what a scan holds.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counters are thread-local
// `Cell`s with const initialisers, which allocate nothing themselves.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.with(|l| {
            l.set(l.get() + layout.size() as isize);
            l.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.with(|l| l.set(l.get() - layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` above, i.e. from `System`, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resets the peak to the current live bytes and returns them.
fn reset_peak() -> isize {
    let live = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(live));
    live
}

fn peak() -> isize {
    PEAK.with(|p| p.get())
}

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(1 << 20)
        .initial_size(1 << 20)
        .max_size(256 << 20)
        .index_slots(16)
}

#[test]
fn a_scan_holds_one_chunk_whatever_the_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("m.db"), opts()).unwrap();
    let value = vec![b'v'; 1000];
    for i in 0..40_000u32 {
        s.put(format!("k:{i:06}").as_bytes(), &value).unwrap();
    }
    s.put(b"other", b"x").unwrap();

    // 40 MB of values go past; the scan never holds more than a chunk (~1 MiB) of them.
    let base = reset_peak();
    let (mut n, mut bytes) = (0usize, 0usize);
    for item in s.scan(b"k:") {
        let (k, e) = item.unwrap();
        assert!(k.starts_with(b"k:") && e.value == value);
        n += 1;
        bytes += e.value.len();
    }
    let held = peak() - base;
    assert_eq!(n, 40_000);
    assert!(bytes >= 40_000_000);
    assert!(held < 2 << 20, "the scan held {held} bytes");

    // scan_prefix collects all of it, which is what the streaming scan avoids.
    let base = reset_peak();
    let all = s.scan_prefix(b"k:").unwrap();
    assert_eq!(all.len(), 40_000);
    assert!(peak() - base > 40_000_000);
    drop(all);

    // Metadata only: still bounded, and no value is copied.
    let base = reset_peak();
    let metas = s
        .scan_with(b"", |_, _| Visit::Meta)
        .map(|r| r.unwrap())
        .filter(|e| e.value.is_none())
        .count();
    assert_eq!(metas, 40_001);
    assert!(peak() - base < 1 << 20);
}

#[test]
fn an_entry_unchanged_during_the_scan_comes_exactly_once_across_index_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("r.db"), opts()).unwrap();
    for i in 0..3000u32 {
        s.put(format!("stable:{i}").as_bytes(), b"s").unwrap();
        s.put(format!("doomed:{i}").as_bytes(), b"d").unwrap();
    }
    let slots_before = s.stats().unwrap().index_slots;
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut added = 0u32;
    // Between items (so between chunks too) other writes land: new keys that make the index
    // grow several times over, deletions that leave tombstones, overwrites.
    let mut step = 0u32;
    for item in s.scan(b"") {
        let (k, _) = item.unwrap();
        *seen.entry(k).or_default() += 1;
        step += 1;
        // (Bounded: a scan that kept finding the new keys would otherwise never end.)
        if step.is_multiple_of(50) && added < 40_000 {
            for _ in 0..200 {
                s.put(format!("new:{added}").as_bytes(), b"n").unwrap();
                added += 1;
            }
            s.delete(format!("doomed:{step}").as_bytes()).unwrap();
            s.put(format!("doomed:{}", step + 1).as_bytes(), b"again")
                .unwrap();
            if step.is_multiple_of(500) {
                s.checkpoint().unwrap();
            }
        }
    }
    let slots_after = s.stats().unwrap().index_slots;
    assert!(
        slots_after >= 8 * slots_before,
        "the index did not grow enough to test anything: {slots_before} -> {slots_after}"
    );
    for i in 0..3000u32 {
        let k = format!("stable:{i}").into_bytes();
        assert_eq!(seen.get(&k), Some(&1), "{}", String::from_utf8_lossy(&k));
    }
    // Nothing else came twice either (a changed entry may come in its old or new version, once).
    assert!(seen.values().all(|&n| n == 1));
    // Keys written during the scan may or may not appear; some did, not necessarily all.
    let new_seen = seen.keys().filter(|k| k.starts_with(b"new:")).count();
    assert!(new_seen <= added as usize);
}

#[test]
fn an_error_ends_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let s = Store::open(&path, opts()).unwrap();
    let value: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
    s.put(b"victim", &value).unwrap();
    for i in 0..100u32 {
        s.put(format!("ok:{i}").as_bytes(), b"fine").unwrap();
    }
    common::damage_value(&path, &value, 10);

    let items: Vec<_> = s.scan(b"").collect();
    let last = items.last().unwrap();
    assert!(
        matches!(last, Err(apcdb::Error::Corrupt { .. })),
        "{last:?}"
    );
    assert!(items[..items.len() - 1].iter().all(|r| r.is_ok()));
    assert!(s.scan_prefix(b"").is_err());
    // A scan that does not read values passes over it.
    assert_eq!(
        s.scan_with(b"", |_, _| Visit::Meta)
            .filter(|r| r.is_ok())
            .count(),
        101
    );
}
