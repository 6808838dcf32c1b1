//! Damaged files: the offline checker finds the damage, salvage keeps what is intact, and opening
//! a store after random byte flips or truncations never panics or SIGBUSes: it gives an error or
//! a store whose every readable value is one that was written.

use apcdb::{verify, Durability, Options, Store};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(128 << 10)
        .initial_size(64 << 10)
        .max_size(16 << 20)
}

/// A store with checkpointed entries and a journal tail still to replay, as a crash leaves it:
/// the files are copied while the writer still has them open. Returns what it holds.
fn populate(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let src = path.with_extension("src");
    let s = Store::open(&src, opts()).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..300u32 {
        let (k, v) = (
            format!("k{i}").into_bytes(),
            vec![i as u8; (i as usize * 37) % 900],
        );
        s.put(&k, &v).unwrap();
        model.insert(k, v);
        if i == 200 {
            s.checkpoint().unwrap();
        }
    }
    for suffix in ["", ".journal", ".lock"] {
        std::fs::copy(
            format!("{}{suffix}", src.display()),
            format!("{}{suffix}", path.display()),
        )
        .unwrap();
    }
    drop(s);
    model
}

#[test]
fn clean_store_checks_clean_and_damage_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let model = populate(&path);
    let r = verify::check(&path).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.entries + r.journal_records, 300);

    // Flip one byte inside the first entry the durable index references.
    let sb = r.superblock.unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut idx = vec![0u8; (sb.index_slots * 8) as usize];
    f.read_exact_at(&mut idx, sb.index[sb.durable_copy as usize])
        .unwrap();
    let slot = idx
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .find(|&s| s > 1)
        .unwrap();
    let off = (slot & ((1 << 36) - 1)) * 64;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off + 41).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], off + 41).unwrap();
    let r = verify::check(&path).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("checksum"), "{:?}", r.problems);

    let salvage = verify::salvage(&path).unwrap();
    assert_eq!(salvage.lost.len(), 1, "{:?}", salvage.lost);
    assert!(salvage.entries.len() >= 299);
    for (k, e) in &salvage.entries {
        assert_eq!(Some(&e.value), model.get(k));
    }
}

#[derive(Clone, Debug)]
struct Damage {
    file: u8,
    flips: Vec<(u32, u8)>,
    truncate: Option<u32>,
}

impl Arbitrary for Damage {
    fn arbitrary(g: &mut Gen) -> Damage {
        let n = 1 + usize::arbitrary(g) % 8;
        Damage {
            file: u8::arbitrary(g) % 3,
            flips: (0..n)
                .map(|_| (u32::arbitrary(g), 1 << (u8::arbitrary(g) % 8)))
                .collect(),
            truncate: if u8::arbitrary(g) % 5 == 0 {
                Some(u32::arbitrary(g))
            } else {
                None
            },
        }
    }
}

fn survives(damage: Damage) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let model = populate(&path);
    let name = match damage.file {
        0 => path.clone(),
        1 => dir.path().join("f.db.journal"),
        _ => dir.path().join("f.db.lock"),
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .unwrap();
    let len = f.metadata().unwrap().len();
    // Most flips land where data lives: the first 64 KiB of each file.
    for (at, bit) in &damage.flips {
        let at = *at as u64 % len.min(64 << 10);
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ bit], at).unwrap();
    }
    if let Some(t) = damage.truncate {
        f.set_len(t as u64 % len).unwrap();
    }
    drop(f);
    let _ = verify::check(&path);
    let _ = verify::salvage(&path);
    if let Ok(s) = Store::open(&path, opts()) {
        for (k, v) in &model {
            // Damage may make a key unreadable or absent, never wrong.
            if let Ok(Some(got)) = s.get(k) {
                assert_eq!(&got, v, "wrong value for {:?}", String::from_utf8_lossy(k));
            }
        }
        let _ = s.put(b"after", b"damage");
    }
    true
}

#[test]
fn random_damage_never_panics_or_lies() {
    QuickCheck::new()
        .tests(200)
        .quickcheck(survives as fn(Damage) -> bool);
}

/// An open that finds no valid superblock changes nothing on disk: it does not even create the
/// missing journal (the lock file, which holds no durable state, is the only file it may make).
#[test]
fn an_open_refused_for_its_superblocks_creates_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    populate(&path);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for at in [0, 4096] {
        f.write_all_at(&[0xa5; 128], at).unwrap();
    }
    drop(f);
    let journal = dir.path().join("s.db.journal");
    std::fs::remove_file(&journal).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = Store::open(&path, opts()).expect_err("no valid superblock");
    assert!(e.to_string().contains("superblock"), "{e}");
    assert!(!journal.exists(), "the refused open created the journal");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
