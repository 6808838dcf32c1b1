use apcdb::{Durability, Error, Options, Store, Update};
use std::time::Duration;

fn small() -> Options {
    Options::default()
        .journal_size(256 << 10)
        .initial_size(256 << 10)
        .max_size(64 << 20)
}

#[test]
fn put_get_delete_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    {
        let s = Store::open(&p, small()).unwrap();
        s.put(b"key", b"value").unwrap();
        s.put(b"", b"empty key").unwrap();
        assert_eq!(s.get(b"key").unwrap(), Some(b"value".to_vec()));
        assert_eq!(s.get(b"").unwrap(), Some(b"empty key".to_vec()));
        assert!(s.add(b"new", b"1").unwrap());
        assert!(!s.add(b"new", b"2").unwrap());
        assert!(s.delete(b"new").unwrap());
        assert!(!s.delete(b"new").unwrap());
        s.batch(|b| {
            b.put(b"a", b"1");
            b.put(b"b", b"2");
            b.delete(b"a");
        })
        .unwrap();
        assert_eq!(s.get(b"a").unwrap(), None);
        assert_eq!(s.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert!(s
            .update(b"n", |e| (
                Update::Put {
                    value: b"5".to_vec(),
                    expires_at_ms: 0
                },
                e.is_none()
            ))
            .unwrap());
        assert!(s.compare_and_swap(b"n", Some(b"5"), Some(b"6")).unwrap());
        assert!(!s.compare_and_swap(b"n", Some(b"5"), Some(b"7")).unwrap());
    }
    let s = Store::open(&p, small()).unwrap();
    assert_eq!(s.get(b"key").unwrap(), Some(b"value".to_vec()));
    assert_eq!(s.get(b"n").unwrap(), Some(b"6".to_vec()));
    assert_eq!(s.stats().unwrap().entries, 4);
}

#[test]
fn many_keys_grow_index_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = Store::open(&p, small().durability(Durability::None)).unwrap();
    for i in 0..20_000u32 {
        s.put(format!("key{i}").as_bytes(), &i.to_le_bytes().repeat(10))
            .unwrap();
    }
    for i in (0..20_000u32).step_by(2) {
        assert!(s.delete(format!("key{i}").as_bytes()).unwrap());
    }
    drop(s);
    let s = Store::open(&p, small()).unwrap();
    for i in 0..20_000u32 {
        let v = s.get(format!("key{i}").as_bytes()).unwrap();
        assert_eq!(
            v,
            if i % 2 == 1 {
                Some(i.to_le_bytes().repeat(10))
            } else {
                None
            },
            "key{i}"
        );
    }
    assert_eq!(s.stats().unwrap().entries, 10_000);
}

#[test]
fn ttl_expires() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s.db"), small()).unwrap();
    s.put_with_ttl(b"t", b"v", Duration::from_millis(100))
        .unwrap();
    assert!(s.contains(b"t").unwrap());
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(s.get(b"t").unwrap(), None);
    assert!(s.add(b"t", b"again").unwrap());
}

#[test]
fn limits_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s.db"), small()).unwrap();
    assert!(matches!(
        s.put(&vec![0; 70_000], b"v"),
        Err(Error::KeyTooLarge { .. })
    ));
    let big = vec![1u8; s.max_value_len() + 1];
    assert!(matches!(
        s.put(b"k", &big),
        Err(Error::ValueTooLarge { .. })
    ));
}
