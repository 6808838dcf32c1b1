//! A store file shrunk from outside while the store is open (`truncate`, `cp backup.db live.db`)
//! gives clear errors, never a SIGBUS (SPEC.md §6.5). A test binary of its own: opening a store
//! installs the process-wide SIGBUS handler.

use apcdb::{Durability, Options, Store};
use std::path::Path;

fn options() -> Options {
    Options::default()
        .journal_size(512 << 10)
        .initial_size(1 << 20)
        .max_size(64 << 20)
}

fn shrink(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn filled(path: &Path, opts: Options) -> Store {
    let s = Store::open(path, opts).unwrap();
    for i in 0..2000u32 {
        s.put(format!("k{i}").as_bytes(), &[i as u8; 300]).unwrap();
    }
    s.checkpoint().unwrap();
    s
}

fn assert_truncation_error<T: std::fmt::Debug>(r: apcdb::Result<T>, what: &str) {
    match r {
        Err(e) => assert!(
            e.to_string().contains("truncated or replaced"),
            "{what}: unexpected error {e}"
        ),
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
    }
}

#[test]
fn data_file_truncated_under_an_open_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = filled(&path, options());
    let other = Store::open(&path, options()).unwrap();
    shrink(&path, 8192);
    // Every entry lies past 8 KiB: the first access faults, and the handle refuses from then on.
    assert_truncation_error(s.get(b"k1"), "get");
    for i in 0..50u32 {
        assert_truncation_error(s.get(format!("k{i}").as_bytes()), "get");
    }
    assert_truncation_error(s.put(b"new", b"v"), "put");
    assert_truncation_error(s.checkpoint(), "checkpoint");
    assert_truncation_error(s.scan_prefix(b"k"), "scan");
    // A second handle in the same process faults on its own mapping and fails the same way.
    assert_truncation_error(other.put(b"k1", b"x"), "put on a second handle");
    assert_truncation_error(other.get(b"k1999"), "get on a second handle");
    drop(other);
    drop(s);
    // A new open sees a file shorter than its superblock says: a clear error, not a crash.
    let e = Store::open(&path, options()).expect_err("a truncated store must not open");
    assert!(e.to_string().contains("bytes"), "{e}");
    let report = apcdb::verify::check(&path).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("8192 bytes but the last checkpoint recorded")),
        "{:?}",
        report.problems
    );
}

#[test]
fn lock_file_and_journal_truncated_under_an_open_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let s = filled(&path, options().durability(Durability::None));
    shrink(&dir.path().join("l.db.lock"), 0);
    assert_truncation_error(s.get(b"k1"), "get after the lock file shrank");
    assert_truncation_error(s.put(b"k1", b"v"), "put after the lock file shrank");
    drop(s);

    let path = dir.path().join("j.db");
    let s = filled(&path, options().durability(Durability::None));
    shrink(&dir.path().join("j.db.journal"), 0);
    let mut r = Ok(());
    for i in 0..100u32 {
        r = s.put(format!("j{i}").as_bytes(), b"value");
        if r.is_err() {
            break;
        }
    }
    assert_truncation_error(r, "put after the journal shrank");
    assert_truncation_error(s.put(b"k2", b"v"), "a later put");
    // Reads do not use the journal: the intact data file still answers them.
    assert_eq!(s.get(b"k1").unwrap(), Some(vec![1u8; 300]));
    drop(s);
}

#[test]
fn foreign_sigbus_still_kills() {
    // Our handler must hand faults outside our mappings on: a child that touches a truncated
    // mapping of its own dies of SIGBUS as before.
    if std::env::var_os("APCDB_SIGBUS_CHILD").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let _s = Store::open(dir.path().join("c.db"), options()).unwrap();
        let f = tempfile::tempfile().unwrap();
        f.set_len(4096).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh private test mapping; touching it after the truncation is the point.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            ) as *const u8;
            f.set_len(0).unwrap();
            std::ptr::read_volatile(p);
        }
        std::process::exit(0);
    }
    if std::env::var_os("APCDB_SIGBUS_KILL").is_some() {
        // A SIGBUS sent with kill() is not a fault in our mapping: it keeps its default action.
        // Without Rust's own handler before ours, as in a PHP process.
        // SAFETY: plain sigaction calls on a zeroed (SIG_DFL) disposition; kill on ourselves.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        }
        let dir = tempfile::tempdir().unwrap();
        let _s = Store::open(dir.path().join("k.db"), options()).unwrap();
        // SAFETY: as above.
        unsafe { libc::kill(libc::getpid(), libc::SIGBUS) };
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::exit(0);
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "foreign_sigbus_still_kills", "--nocapture"])
        .env("APCDB_SIGBUS_CHILD", "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{out:?}");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "foreign_sigbus_still_kills", "--nocapture"])
        .env("APCDB_SIGBUS_KILL", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{out:?}");
}

#[test]
fn readers_on_other_threads_never_see_a_wrong_answer() {
    // Four threads read while the file is truncated: each read returns the right value or the
    // truncation error, never a miss or zeros from a page another thread's fault replaced.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = filled(&path, options());
    std::thread::scope(|sc| {
        let readers: Vec<_> = (0..4u32)
            .map(|t| {
                let s = &s;
                sc.spawn(move || {
                    let mut errors = 0u64;
                    let mut i = t;
                    while errors < 100 {
                        i = (i + 7) % 2000;
                        match s.get(format!("k{i}").as_bytes()) {
                            Ok(v) => assert_eq!(v, Some(vec![i as u8; 300]), "k{i}"),
                            Err(e) => {
                                assert!(e.to_string().contains("truncated or replaced"), "{e}");
                                errors += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        shrink(&path, 8192);
        for r in readers {
            r.join().unwrap();
        }
    });
}
