//! Expired entries are swept a few slots per commit once the heap has passed half the maximum
//! size (SPEC.md §2.4), instead of only by a walk of the whole index when an allocation fails.

use apcdb::{Durability, Options, Store};
use std::time::Duration;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn expired_entries_are_swept_a_few_per_write_once_the_store_is_half_full() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .durability(Durability::None)
        .max_size(4 << 20)
        .index_slots(16384);
    let store = Store::open(dir.path().join("s.db"), opts).unwrap();
    let value = [7u8; 1000];
    let soon = now_ms() + 200;
    for i in 0..2000u32 {
        store
            .put_with_expiry(format!("session-{i}").as_bytes(), &value, soon)
            .unwrap();
    }
    let s = store.stats().unwrap();
    assert!(s.file_size >= 2 << 20, "the heap is past half the maximum");
    assert_eq!(s.entries, 2000);
    std::thread::sleep(Duration::from_millis(300));
    // Each write visits a few slots: enough writes to pass every slot once.
    for i in 0..(s.index_slots / 4) {
        store.put(b"counter", &i.to_le_bytes()).unwrap();
    }
    let s = store.stats().unwrap();
    assert_eq!(s.entries, 1, "expired entries left in the index");
    // Their space comes back (a checkpoint releases it): the same again fits.
    for i in 0..2000u32 {
        store.put(format!("after-{i}").as_bytes(), &value).unwrap();
    }
    assert_eq!(store.stats().unwrap().entries, 2001);
}

#[test]
fn a_store_full_of_expired_entries_beyond_the_bounded_sweep_still_takes_writes() {
    // An index far larger than the sweep a full allocation makes before its checkpoint: the
    // walk of the whole index remains, as the last step before refusing.
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .durability(Durability::None)
        .max_size(24 << 20)
        .index_slots(1 << 18);
    let store = Store::open(dir.path().join("s.db"), opts).unwrap();
    let value = [7u8; 2000];
    // Long enough for the fill to end before anything expires even on a loaded machine (once
    // entries expire, the fill makes room from them and would never end).
    let soon = now_ms() + 3000;
    let mut n = 0u32;
    while store
        .put_with_expiry(format!("old-{n}").as_bytes(), &value, soon)
        .is_ok()
    {
        n += 1;
        assert!(
            now_ms() < soon,
            "the fill outlasted its entries' expiry ({n} stored)"
        );
    }
    assert!(n > 4000, "{n}");
    std::thread::sleep(Duration::from_millis((soon + 100).saturating_sub(now_ms())));
    for i in 0..n {
        if let Err(e) = store.put(format!("new-{i}").as_bytes(), &value) {
            panic!("new-{i}: {e} {:?}", store.stats().unwrap());
        }
    }
    assert_eq!(store.stats().unwrap().entries, n as u64);
}

#[test]
fn an_index_full_of_expired_keys_is_rebuilt_not_refused() {
    // The index reaches its load limit while the heap has no room left for the three copies of
    // a rebuilt index: the keys expired meanwhile, so the write that needs the rebuild makes
    // room first (as an allocation does) instead of failing with "no room to grow the index".
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .durability(Durability::None)
        .max_size(8 << 20)
        .index_slots(1 << 16);
    let store = Store::open(dir.path().join("s.db"), opts).unwrap();
    let value = [7u8; 60];
    let soon = now_ms() + 1500;
    let mut n = 0u32;
    let refused = loop {
        match store.put_with_expiry(format!("k{n:08}").as_bytes(), &value, soon) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(
        refused.to_string().contains("index"),
        "the index must be what ran out: {refused} after {n}"
    );
    std::thread::sleep(Duration::from_millis(soon.saturating_sub(now_ms()) + 100));
    for i in 0..1000u32 {
        store.put(format!("new{i}").as_bytes(), &value).unwrap();
    }
    assert_eq!(store.stats().unwrap().entries, 1000);
}
