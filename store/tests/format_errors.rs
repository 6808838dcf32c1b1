//! Errors are part of the contract: damage of each kind reaches the caller as a typed
//! `Error::Corrupt` whose `CorruptKind` names the check that failed and where, with the message
//! operators (and the PHP warnings) have always shown. Also: the files a store uses are the ones
//! `apcdb::Paths` names.

mod common;

use apcdb::format::{slot_is_entry, slot_offset, ENTRY_HEADER, SUPERBLOCK_LEN, SUPERBLOCK_OFFSETS};
use apcdb::{CorruptKind, Durability, Error, Options, Paths, Store, SuperblockError};
use apcdb::{Superblock, UncheckedSuperblock};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(128 << 10)
        .initial_size(256 << 10)
        .max_size(16 << 20)
}

fn rw(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// The newest superblock of a closed store, validated.
fn superblock(f: &File) -> Superblock {
    let mut copies = [[0u8; SUPERBLOCK_LEN]; 2];
    for (c, at) in copies.iter_mut().zip(SUPERBLOCK_OFFSETS) {
        f.read_exact_at(c, at).unwrap();
    }
    copies
        .iter()
        .filter_map(|c| UncheckedSuperblock::decode(c).ok())
        .max_by_key(|sb| sb.epoch())
        .unwrap()
        .validate(f.metadata().unwrap().len())
        .unwrap()
}

#[test]
fn a_damaged_entry_is_a_typed_checksum_error_naming_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let s = Store::open(&path, opts()).unwrap();
    s.put(b"key", b"a value to damage").unwrap();
    drop(s); // the closing checkpoint puts the entry and the index in the data file

    let f = rw(&path);
    let sb = superblock(&f);
    let mut index = vec![0u8; sb.index_slots as usize * 8];
    f.read_exact_at(&mut index, sb.index[sb.durable_copy as usize])
        .unwrap();
    let slot = index
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .find(|&s| slot_is_entry(s))
        .unwrap();
    let block = slot_offset(slot);
    let in_value = block + ENTRY_HEADER as u64 + 3 + 2;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, in_value).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], in_value).unwrap();
    drop(f);

    let s = Store::open(&path, opts()).unwrap();
    match s.get(b"key") {
        Err(e @ Error::Corrupt { .. }) => {
            let Error::Corrupt { path: p, kind } = &e else {
                unreachable!()
            };
            assert_eq!(p, &path);
            assert_eq!(kind, &CorruptKind::EntryChecksum { at: block });
            assert_eq!(
                e.to_string(),
                format!(
                    "{} is corrupt: entry at {block} fails its checksum",
                    path.display()
                )
            );
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

#[test]
fn no_valid_superblock_says_why_for_each_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Store::open(&path, opts()).unwrap());
    let f = rw(&path);
    // (The close's checkpoint wrote copy 0 and blanked copy 1; blank it here too, so the test
    // does not depend on it.)
    f.write_all_at(&[0; SUPERBLOCK_LEN], SUPERBLOCK_OFFSETS[1])
        .unwrap();
    f.write_all_at(&[0xff; 8], SUPERBLOCK_OFFSETS[0] + 40)
        .unwrap();
    drop(f);
    let e = Store::open(&path, opts()).expect_err("must not open");
    match &e {
        Error::Corrupt {
            kind: CorruptKind::NoValidSuperblock { refused },
            ..
        } => assert_eq!(
            refused,
            &[
                Some(SuperblockError::Checksum),
                Some(SuperblockError::BadMagic)
            ]
        ),
        other => panic!("expected NoValidSuperblock, got {other:?}"),
    }
    assert!(
        e.to_string().ends_with(
            "is corrupt: no valid superblock (superblock 0: checksum mismatch; superblock 1: bad magic)"
        ),
        "{e}"
    );
}

#[test]
fn a_checksummed_superblock_out_of_range_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    drop(Store::open(&path, opts()).unwrap());
    let f = rw(&path);
    let mut sb = superblock(&f);
    sb.durable_copy = 7;
    f.write_all_at(&sb.encode(), SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize])
        .unwrap();
    drop(f);
    let e = Store::open(&path, opts()).expect_err("must not open");
    match &e {
        Error::Corrupt {
            kind: CorruptKind::Superblock { epoch, problem },
            ..
        } => {
            assert_eq!(*epoch, sb.epoch);
            assert_eq!(problem, &SuperblockError::DurableCopy(7));
        }
        other => panic!("expected a superblock error, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains("durable index copy 7 (must be 0 or 1)"),
        "{e}"
    );
}

#[test]
fn a_store_is_the_files_paths_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let paths = Paths::new(&path);
    assert_eq!(paths.journal, dir.path().join("p.db.journal"));
    assert_eq!(paths.lock, dir.path().join("p.db.lock"));
    assert_eq!(paths.durable(), [paths.data.as_path(), &paths.journal]);
    drop(Store::open(&path, opts()).unwrap());
    let mut made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    made.sort();
    let mut named: Vec<_> = paths.all().map(Path::to_path_buf).to_vec();
    named.sort();
    assert_eq!(made, named);
}

/// A lock file in use by processes of an older version (a shorter shared state) is refused as
/// incompatible, naming the fix, not reported as damage.
#[test]
fn lock_file_of_an_older_version_in_use_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    drop(apcdb::Store::open(&p, apcdb::Options::default()).unwrap());
    let lock = apcdb::Paths::new(&p).lock.clone();
    let mut head = Vec::new();
    head.extend_from_slice(&u64::from_le_bytes(*b"APCDBshm").to_le_bytes());
    head.extend_from_slice(&2u64.to_le_bytes());
    head.resize(4096, 0);
    std::fs::write(&lock, &head).unwrap();
    // Another "process" has the store open: its presence byte, on a description of its own.
    let _other = common::hold_presence(&lock);
    // ... and on the data file, as every opener holds it.
    let _data = common::hold_presence(&p);
    match apcdb::Store::open(&p, apcdb::Options::default()) {
        Err(apcdb::Error::Incompatible { detail, .. }) => {
            assert!(detail.contains("different version"), "{detail}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}
