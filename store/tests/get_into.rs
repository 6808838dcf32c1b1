//! `Store::get_into`: the same answers as `get_entry`, read into the caller's buffer, and a
//! damaged value is refused rather than handed over.

mod common;

use apcdb::{Durability, Error, Options, Store};

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(128 << 10)
        .initial_size(64 << 10)
        .max_size(16 << 20)
}

#[test]
fn reads_what_get_entry_reads_into_a_reused_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("g.db"), opts()).unwrap();
    let mut buf = Vec::new();
    assert!(s.get_into(b"absent", &mut buf).unwrap().is_none());

    // A long value then a short one through the same buffer: nothing of the first may remain.
    s.put(b"long", &[7u8; 3000]).unwrap();
    s.put(b"short", b"abc").unwrap();
    s.put(b"empty", b"").unwrap();
    for key in [&b"long"[..], b"short", b"empty", b"long"] {
        let meta = s.get_into(key, &mut buf).unwrap().unwrap();
        let e = s.get_entry(key).unwrap().unwrap();
        assert_eq!(buf, e.value, "{}", String::from_utf8_lossy(key));
        assert_eq!(meta.value_len, e.value.len() as u64);
        assert_eq!(meta.version, e.version);
        assert_eq!(meta.modified_at_ms, e.modified_at_ms);
        assert_eq!(meta.expires_at_ms, e.expires_at_ms);
    }

    // Expired entries read as absent; live ones with an expiry carry it.
    s.put_with_expiry(b"gone", b"x", 1).unwrap();
    assert!(s.get_into(b"gone", &mut buf).unwrap().is_none());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let later = now.unwrap().as_millis() as u64 + 60_000;
    s.put_with_expiry(b"soon", b"y", later).unwrap();
    let meta = s.get_into(b"soon", &mut buf).unwrap().unwrap();
    assert_eq!((meta.expires_at_ms, &buf[..]), (later, &b"y"[..]));

    // Overwrites and deletes are seen.
    s.put(b"short", b"abcdef").unwrap();
    s.get_into(b"short", &mut buf).unwrap().unwrap();
    assert_eq!(buf, b"abcdef");
    s.delete(b"short").unwrap();
    assert!(s.get_into(b"short", &mut buf).unwrap().is_none());

    // Counted like get_entry: one hit per found key, one miss per absent one.
    let before = s.stats().unwrap();
    for _ in 0..300 {
        s.get_into(b"long", &mut buf).unwrap().unwrap();
        assert!(s.get_into(b"nope", &mut buf).unwrap().is_none());
    }
    let after = s.stats().unwrap();
    assert_eq!(after.hits - before.hits, 300);
    assert_eq!(after.misses - before.misses, 300);
}

#[test]
fn a_damaged_value_is_an_error_not_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let s = Store::open(&path, opts()).unwrap();
    let value: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
    s.put(b"victim", &value).unwrap();
    let mut buf = Vec::new();
    s.get_into(b"victim", &mut buf).unwrap().unwrap();

    // The value sits in the shared mapping of the data file: change one of its bytes there.
    common::damage_value(&path, &value, 100);

    match s.get_into(b"victim", &mut buf) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("a damaged value was not refused: {other:?}"),
    }
}
