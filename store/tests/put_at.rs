//! `Store::put_at` / `add_at`: a write dated by its caller (SPEC.md §4) keeps that date as its
//! modification time and last access, through recovery too, and expires by its expiry alone.

use apcdb::{Durability, Options, Store};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_write_dated_by_its_caller_keeps_that_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let opts = || Options::default().durability(Durability::None);
    // An hour ago, to the millisecond: no clock reading here could give it.
    let then = now_ms() - 3_600_000 + 7;
    let later = now_ms() + 60_000;
    {
        let store = Store::open(&path, opts()).unwrap();
        store.put_at(b"put", b"v1", 0, then).unwrap();
        // Until it is read, the access table's last access is the write's date, in seconds.
        assert_eq!(store.access(b"put").1, then / 1000);
        assert!(store.add_at(b"added", b"v2", later, then + 1).unwrap());
        // An add that finds a live entry changes nothing, its date included.
        assert!(!store.add_at(b"added", b"other", 0, then + 2).unwrap());
        let e = store.get_entry(b"put").unwrap().unwrap();
        assert_eq!((e.value.as_slice(), e.modified_at_ms), (&b"v1"[..], then));
        let e = store.get_entry(b"added").unwrap().unwrap();
        assert_eq!(
            (e.value.as_slice(), e.modified_at_ms, e.expires_at_ms),
            (&b"v2"[..], then + 1, later)
        );
        // A date in the past does not expire the entry; its expiry does.
        store
            .put_at(b"gone", b"v3", now_ms() - 1, now_ms())
            .unwrap();
        assert!(store.get(b"gone").unwrap().is_none());
        // The clock-dated writes are dated now.
        let before = now_ms();
        store.put(b"clock", b"v4").unwrap();
        let m = store.get_entry(b"clock").unwrap().unwrap().modified_at_ms;
        assert!(m >= before && m <= now_ms());
    }
    // Replayed from the journal by the next opener: the dates come back as written.
    let store = Store::open(&path, opts()).unwrap();
    assert_eq!(
        store.get_entry(b"put").unwrap().unwrap().modified_at_ms,
        then
    );
    assert_eq!(
        store.get_entry(b"added").unwrap().unwrap().modified_at_ms,
        then + 1
    );
}
