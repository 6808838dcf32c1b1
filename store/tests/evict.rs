//! `WhenFull::Evict` (SPEC.md §4.1): a full store makes room by evicting other entries (expired
//! first, then the least recently used in CLOCK order), never the key being written; evictions are
//! journaled deletes, so a crash during one loses nothing else.

mod common;

use apcdb::{Durability, Error, Options, Store, WhenFull};
use common::{expect_line, helper_command, helper_role, say};
use std::process::Stdio;
use std::time::Duration;

const MAX: u64 = 1 << 20;

fn small(w: WhenFull) -> Options {
    Options::default()
        .journal_size(256 << 10)
        .initial_size(256 << 10)
        .max_size(MAX)
        .durability(Durability::None)
        .when_full(w)
}

fn value_of(key: &str, len: usize) -> Vec<u8> {
    key.bytes().cycle().take(len).collect()
}

#[test]
fn writes_keep_succeeding_in_a_full_store() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    // The same workload refuses once full without eviction ...
    let refuse = Store::open(&p, small(WhenFull::Refuse)).unwrap();
    let refused = (0..3000).find_map(|i| {
        let k = format!("key{i}");
        refuse.put(k.as_bytes(), &value_of(&k, 1000)).err()
    });
    assert!(matches!(refused, Some(Error::Full { .. })), "{refused:?}");
    drop(refuse);
    std::fs::remove_file(&p).unwrap();
    let _ = std::fs::remove_file(p.with_extension("db.journal"));
    let _ = std::fs::remove_file(p.with_extension("db.lock"));

    // ... and never with it: each write succeeds and reads back, older keys go.
    let s = Store::open(&p, small(WhenFull::Evict)).unwrap();
    for i in 0..3000 {
        let k = format!("key{i}");
        s.put(k.as_bytes(), &value_of(&k, 1000))
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        assert_eq!(s.get(k.as_bytes()).unwrap(), Some(value_of(&k, 1000)));
    }
    let st = s.stats().unwrap();
    assert!(st.expunges > 1000, "{st:?}");
    // Never a wipe: the store stays well filled.
    assert!(st.entries > 300, "{st:?}");
    assert!(st.used_bytes <= MAX);
    // Whatever is left reads back intact.
    for i in 0..3000 {
        let k = format!("key{i}");
        if let Some(v) = s.get(k.as_bytes()).unwrap() {
            assert_eq!(v, value_of(&k, 1000));
        }
    }
    assert!(apcdb::verify::check(&p).unwrap().problems.is_empty());
}

#[test]
fn recently_read_keys_survive_never_read_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s.db"), small(WhenFull::Evict)).unwrap();
    let hot: Vec<String> = (0..20).map(|i| format!("hot{i}")).collect();
    for k in &hot {
        s.put(k.as_bytes(), &value_of(k, 1000)).unwrap();
    }
    for i in 0..4000 {
        let k = format!("cold{i}");
        s.put(k.as_bytes(), &value_of(&k, 1000)).unwrap();
        if i % 20 == 0 {
            for k in &hot {
                assert_eq!(
                    s.get(k.as_bytes()).unwrap(),
                    Some(value_of(k, 1000)),
                    "{k} was evicted although read recently (after cold{i})"
                );
            }
        }
    }
    let cold_left = (0..4000)
        .filter(|i| s.contains(format!("cold{i}").as_bytes()).unwrap())
        .count();
    assert!(cold_left < 1500, "{cold_left} never-read keys left");
    assert!(s.stats().unwrap().expunges > 2000);
}

#[test]
fn expired_entries_go_before_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s.db"), small(WhenFull::Evict)).unwrap();
    // Live, never read: the first candidates if nothing had expired.
    for i in 0..100 {
        let k = format!("live{i}");
        s.put(k.as_bytes(), &value_of(&k, 1000)).unwrap();
    }
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1;
    for i in 0..2000 {
        let k = format!("gone{i}");
        s.put_with_expiry(k.as_bytes(), &value_of(&k, 1000), past)
            .unwrap();
    }
    for i in 0..100 {
        assert!(
            s.contains(format!("live{i}").as_bytes()).unwrap(),
            "live{i}"
        );
    }
}

#[test]
fn the_key_being_written_is_never_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path().join("s.db"),
        small(WhenFull::Evict).journal_size(4 << 20),
    )
    .unwrap();
    let big = vec![7u8; 600 << 10];
    s.put(b"a", &big).unwrap();
    // A new version of "a" needs room beside the old one until the write is done: with nothing
    // else to evict it is refused, and the old version stays.
    let r = s.put(b"a", &vec![8u8; 600 << 10]);
    assert!(matches!(r, Err(Error::Full { .. })), "{r:?}");
    assert_eq!(s.get(b"a").unwrap(), Some(big.clone()));
    // Also when another entry could go: it does, and the write still does not fit.
    s.put(b"b", &[1u8; 100 << 10]).unwrap();
    let r = s.put(b"a", &vec![8u8; 600 << 10]);
    assert!(matches!(r, Err(Error::Full { .. })), "{r:?}");
    assert_eq!(s.get(b"a").unwrap(), Some(big));
}

/// The other process of the crash test; does nothing when run without `APCDB_HELPER`.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    assert_eq!(role, "fill");
    let s = Store::open(&path, small(WhenFull::Evict).durability(Durability::Sync)).unwrap();
    for i in 0.. {
        let k = format!("key{i}");
        s.put(k.as_bytes(), &value_of(&k, 900 + i % 300)).unwrap();
        say(&format!("acked {i}"));
    }
}

#[test]
fn a_crash_while_evicting_loses_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    for round in 0..3 {
        let mut child = helper_command("fill", &p)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        // Well past full, so that it evicts on nearly every write when killed.
        let mut last = 0;
        while last < 1500 + round * 500 {
            let l = expect_line(&mut out, "acked ");
            last = l["acked ".len()..].parse::<usize>().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20 * round as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        let s = Store::open(&p, small(WhenFull::Evict)).unwrap();
        let mut present = 0;
        for i in 0..last + 10_000 {
            let k = format!("key{i}");
            if let Some(v) = s.get(k.as_bytes()).unwrap() {
                assert_eq!(v, value_of(&k, 900 + i % 300), "{k} reads wrong");
                present += 1;
            }
        }
        // Acknowledged entries went only by eviction, a bounded part of the store at a time.
        assert!(present > 200, "only {present} entries left");
        drop(s);
        assert!(
            apcdb::verify::check(&p).unwrap().problems.is_empty(),
            "round {round}"
        );
    }
}

/// Many tiny entries: the index, not the values, runs out of room, and its rebuild needs
/// contiguous space in a full store.
#[test]
fn tiny_entries_keep_succeeding_when_the_index_needs_room() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = Store::open(&p, small(WhenFull::Evict)).unwrap();
    for i in 0..40_000 {
        let k = format!("t{i}");
        s.put(k.as_bytes(), b"x")
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
    }
    let st = s.stats().unwrap();
    assert!(st.expunges > 0 && st.entries > 1000, "{st:?}");
    assert!(s.contains(b"t39999").unwrap());
    drop(s);
    assert!(apcdb::verify::check(&p).unwrap().problems.is_empty());
}

/// The limit of eviction (SPEC.md §4.1): a value whose block — its size class, up to a quarter
/// above its length — is larger than half the maximum size is refused in a store full of
/// small entries rather than bought with a near-wipe, even when the value itself is under half
/// (950,000 bytes of 2,000,000 need a 1 MiB block); one whose block fits in half is stored,
/// evicting the run it needs. This is what `crash-test --php --evict --max-size 2000000`
/// reports as refused writes (its values go up to 1,048,000 bytes).
#[test]
fn a_block_larger_than_half_the_store_is_refused_not_bought_with_a_wipe() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let max = 2_000_000;
    let opts = Options::default()
        .journal_size(8 << 20)
        .max_size(max)
        .durability(Durability::None)
        .when_full(WhenFull::Evict);
    let s = Store::open(&p, opts).unwrap();
    for i in 0..20_000 {
        let k = format!("small{i}");
        s.put(k.as_bytes(), &value_of(&k, 200)).unwrap();
    }
    let before = s.stats().unwrap();
    assert!(before.expunges > 0, "the store is full: {before:?}");
    let e = s.put(b"big", &value_of("big", 950_000)).unwrap_err();
    assert!(matches!(e, Error::Full { .. }), "{e}");
    assert_eq!(s.get(b"big").unwrap(), None);
    let after = s.stats().unwrap();
    assert!(
        after.entries * 2 > before.entries,
        "most entries stay: {before:?} {after:?}"
    );
    // A block within half the store: the run it needs is cleared.
    s.put(b"big", &value_of("big", 900_000)).unwrap();
    assert_eq!(s.get(b"big").unwrap(), Some(value_of("big", 900_000)));
    assert!(s.stats().unwrap().entries > 100);
    drop(s);
    assert!(apcdb::verify::check(&p).unwrap().problems.is_empty());
}
