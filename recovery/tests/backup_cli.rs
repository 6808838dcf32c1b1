//! `apcdb backup FILE --out COPY`, run as the binary on real store files.

use apcdb::{Options, Store};
use std::process::Command;

#[test]
fn backup_writes_a_checked_copy_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (src, copy) = (dir.path().join("src.db"), dir.path().join("copy.db"));
    {
        let s = Store::open(&src, Options::default()).unwrap();
        for i in 0..1000u32 {
            s.put(format!("k{i}").as_bytes(), &i.to_le_bytes()).unwrap();
        }
        s.delete(b"k7").unwrap();
    }
    let run = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_apcdb"));
        c.arg("backup").arg(&src).arg("--out").arg(&copy);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let o = run(false);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("999 entries") && out.contains("checks clean"),
        "{out}"
    );

    let check = Command::new(env!("CARGO_BIN_EXE_apcdb"))
        .arg("check")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(check.status.success());
    let c = Store::open(&copy, Options::default().create(false)).unwrap();
    assert_eq!(c.get(b"k999").unwrap(), Some(999u32.to_le_bytes().to_vec()));
    assert_eq!(c.get(b"k7").unwrap(), None);
    assert_eq!(c.stats().unwrap().entries, 999);
    drop(c);

    // A second backup to the same name is refused (exit 2) and changes nothing.
    let o = run(true);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never written over"));
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_file(format!("{}.journal", copy.display())).unwrap();
    let o = run(true);
    assert!(o.status.success());
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.starts_with('{') && line.contains("\"entries\":999"),
        "{line}"
    );
}

#[test]
fn compact_gives_room_back_while_the_store_is_open_and_keeps_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live.db");
    let s = Store::open(&src, Options::default()).unwrap();
    for i in 0..20_000u32 {
        s.put(format!("k{i}").as_bytes(), &[2u8; 400]).unwrap();
    }
    for i in (0..20_000u32).step_by(2) {
        s.delete(format!("k{i}").as_bytes()).unwrap();
    }
    // This process keeps the store open (and writes after) while the tool compacts it.
    let o = Command::new(env!("CARGO_BIN_EXE_apcdb"))
        .arg("compact")
        .arg(&src)
        .arg("--json")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{line}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["entries"], 10_000);
    assert!(v["moved"].as_u64().unwrap() > 1000, "{line}");
    let (before, after) = (
        v["bytes_before"].as_u64().unwrap(),
        v["bytes_after"].as_u64().unwrap(),
    );
    assert!(before - after > 2 << 20, "{before} -> {after}");
    s.put(b"after", b"x").unwrap();
    for i in (1..20_000u32).step_by(2) {
        assert_eq!(
            s.get(format!("k{i}").as_bytes()).unwrap(),
            Some(vec![2u8; 400])
        );
    }
}

#[test]
fn compact_rewrite_shrinks_a_store_and_keeps_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("c.db");
    {
        let s = Store::open(&src, Options::default()).unwrap();
        for i in 0..20_000u32 {
            s.put(format!("k{i}").as_bytes(), &[1u8; 400]).unwrap();
        }
        for i in (0..20_000u32).step_by(2) {
            s.delete(format!("k{i}").as_bytes()).unwrap();
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_apcdb"))
        .arg("compact")
        .arg("--rewrite")
        .arg(&src)
        .arg("--json")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{line}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["entries"], 10_000);
    // Half of 20,000 blocks of 512 bytes given back (the 16 MiB journal stays).
    let (before, after) = (
        v["bytes_before"].as_u64().unwrap(),
        v["bytes_after"].as_u64().unwrap(),
    );
    assert!(before - after > 4 << 20, "{before} -> {after}");
    let s = Store::open(&src, Options::default().create(false)).unwrap();
    assert_eq!(s.stats().unwrap().entries, 10_000);
    assert_eq!(s.get(b"k19999").unwrap(), Some(vec![1u8; 400]));
}
