//! `Store::scan_prefix_with` (copy values only where asked) and `Store::peek_entry`.

use apcdb::{Options, Store, Visit};

fn open(dir: &tempfile::TempDir) -> Store {
    let opts = Options::default()
        .journal_size(256 << 10)
        .initial_size(256 << 10)
        .max_size(64 << 20);
    Store::open(dir.path().join("s.db"), opts).unwrap()
}

#[test]
fn scan_copies_only_the_selected_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for i in 0..500u32 {
        s.put(format!("p:{i}").as_bytes(), &vec![b'v'; i as usize])
            .unwrap();
    }
    s.put(b"other", b"x").unwrap();
    s.put_with_expiry(b"p:expired", b"gone", 1).unwrap();

    let full = s.scan_prefix(b"p:").unwrap();
    let got = s
        .scan_prefix_with(b"p:", |k, _| match k {
            b"p:7" => Visit::Value,
            b"p:8" | b"p:9" => Visit::Meta,
            _ => Visit::Skip,
        })
        .unwrap();
    let mut keys: Vec<_> = got.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![b"p:7".to_vec(), b"p:8".to_vec(), b"p:9".to_vec()]
    );
    for e in &got {
        let (_, want) = full.iter().find(|(k, _)| *k == e.key).unwrap();
        assert_eq!(e.meta.value_len, want.value.len() as u64);
        assert_eq!(e.meta.version, want.version);
        assert_eq!(e.meta.modified_at_ms, want.modified_at_ms);
        assert_eq!(e.meta.expires_at_ms, want.expires_at_ms);
        match e.key.as_slice() {
            b"p:7" => assert_eq!(e.value.as_deref(), Some(&want.value[..])),
            _ => assert_eq!(e.value, None),
        }
    }

    // Metadata for everything: the same entries as scan_prefix, no values, expired ones hidden.
    let meta = s.scan_prefix_with(b"", |_, _| Visit::Meta).unwrap();
    assert_eq!(meta.len(), 501);
    assert!(meta.iter().all(|e| e.value.is_none()));
    assert!(!meta.iter().any(|e| e.key == b"p:expired"));
    // The callback sees each live entry's metadata before deciding.
    let mut seen = 0usize;
    let none = s
        .scan_prefix_with(b"p:", |_, m| {
            seen += 1;
            assert!(m.value_len < 500 && m.version > 0);
            Visit::Skip
        })
        .unwrap();
    assert!(none.is_empty() && seen >= 500);
}

#[test]
fn peek_reads_without_counting() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.put(b"k", b"v").unwrap();
    let before = s.stats().unwrap();
    assert_eq!(s.peek_entry(b"k").unwrap().unwrap().value, b"v");
    assert_eq!(s.peek_entry(b"absent").unwrap(), None);
    let after = s.stats().unwrap();
    assert_eq!((before.hits, before.misses), (after.hits, after.misses));
    assert_eq!(s.get_entry(b"k").unwrap().unwrap().value, b"v");
    assert_eq!(s.stats().unwrap().hits, before.hits + 1);
    assert!(s.peek_entry(&vec![0u8; 70_000]).is_err());
}
