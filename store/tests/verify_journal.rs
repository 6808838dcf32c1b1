//! `verify::check` on a store whose journal file is missing: after a clean close the journal
//! held nothing (a note); otherwise writes after the last checkpoint are gone (a problem).

use apcdb::{Durability, Options, Store};

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(1 << 20)
}

#[test]
fn a_missing_journal_after_a_clean_close_is_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path, opts()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    std::fs::remove_file(dir.path().join("s.db.journal")).unwrap();
    let r = apcdb::verify::check(&path).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(
        r.notes.iter().any(|n| n.contains("missing")),
        "{:?}",
        r.notes
    );
    assert_eq!(
        Store::open(&path, opts())
            .unwrap()
            .get(b"k")
            .unwrap()
            .unwrap(),
        b"v"
    );
}

#[test]
fn a_missing_journal_of_a_store_not_closed_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path, opts()).unwrap();
    s.put(b"k", b"v").unwrap();
    // Not closed: the write is only in the journal, which then disappears.
    std::fs::remove_file(dir.path().join("s.db.journal")).unwrap();
    let r = apcdb::verify::check(&path).unwrap();
    assert!(!r.problems.is_empty(), "{:?}", r.notes);
    drop(s);
}
