//! Damaged superblocks are reported, never guessed around. These tests need to be the first
//! opener of their store (which reads the superblocks); they live in their own test binary because
//! a test elsewhere that forks (to run `mount`) lends the child our lock-file descriptions until it
//! execs, which can make the reopen here a second opener that trusts the shared state instead.

use apcdb::Store;

#[test]
fn corrupt_superblocks_are_reported_not_wiped() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xff; 64], 0).unwrap();
    f.write_all_at(&[0xff; 64], 4096).unwrap();
    let e = Store::open(&path, apcdb_tests::options()).expect_err("corrupt store must not open");
    assert!(e.to_string().contains("no valid superblock"), "{e}");
    assert!(
        std::fs::metadata(&path).unwrap().len() > 8192,
        "the file must be left as it was"
    );
}

/// A damaged newest superblock (media damage: a crash cannot do this) after a clean close: the
/// older copy cannot stand in (blocks freed since it are reused), so a checkpoint blanks it once
/// the newer one is durable; open must report the damage instead of serving a mix of states.
#[test]
fn damaged_newest_superblock_is_reported_not_guessed() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    s.checkpoint().unwrap();
    s.put(b"k2", b"v2").unwrap();
    s.put(b"k", b"v3").unwrap();
    let epoch = s.stats().unwrap().checkpoint_epoch;
    drop(s); // the closing checkpoint writes superblock epoch+1
    let after = apcdb::verify::check(&path)
        .unwrap()
        .superblock
        .unwrap()
        .epoch;
    assert_eq!(after, epoch + 1, "the closing checkpoint did not happen");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xaa; 16], 4096 * ((epoch + 1) % 2) + 40)
        .unwrap();
    let e = Store::open(&path, apcdb_tests::options()).expect_err("must not open a mixed state");
    assert!(e.to_string().contains("no valid superblock"), "{e}");
}
