//! Bad input loses nothing: foreign, group-writable and symlinked files are refused with a clear
//! error; so are files readable by others, hard-linked files and directories others may change
//! (SPEC.md §1.1); a lock file deleted under running processes lets no second "first opener" in;
//! a full disk gives an error and keeps earlier data (superblock damage: superblocks.rs).

use apcdb::{Error, Options, Store};
use std::os::unix::fs::PermissionsExt;

#[test]
fn refuses_files_owned_by_another_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    drop(Store::open(&path, apcdb_tests::options()).unwrap());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test must run as root (CI does) to create a file owned by someone else");
    }
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    match Store::open(&path, apcdb_tests::options()) {
        Err(Error::Permission { detail, .. }) => {
            assert!(detail.contains("owned by uid 65534"), "{detail}")
        }
        other => panic!("expected a permission error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn refuses_group_writable_files_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    let e = Store::open(&path, apcdb_tests::options())
        .expect_err("group-writable file must be refused");
    assert!(
        e.to_string()
            .contains("lets group or others read or write it"),
        "{e}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let e = Store::open(&link, apcdb_tests::options()).expect_err("symlink must be refused");
    assert!(
        matches!(e, Error::Permission { .. }) && e.to_string().contains("symbolic link"),
        "{e}"
    );
    // Nothing was lost by the refusals.
    assert_eq!(
        Store::open(&path, apcdb_tests::options())
            .unwrap()
            .get(b"k")
            .unwrap(),
        Some(b"v".to_vec())
    );
}

#[test]
fn disk_full_gives_a_clear_error_and_keeps_data() {
    let mnt = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        // Room for the lock file (10.8 MiB allocated, SPEC.md §1), the journal and a little data.
        .args(["-t", "tmpfs", "-o", "size=14m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "mounting a 14 MiB tmpfs failed: this test needs root (CI runs as root)"
    );
    let result = std::panic::catch_unwind(|| {
        let path = mnt.path().join("full.db");
        let opts = Options::default()
            .journal_size(256 << 10)
            .initial_size(64 << 10)
            .max_size(64 << 20);
        let s = Store::open(&path, opts.clone()).unwrap();
        let mut written = 0u64;
        let err = loop {
            match s.put(format!("k{written}").as_bytes(), &[7u8; 8000]) {
                Ok(()) => written += 1,
                Err(e) => break e,
            }
        };
        assert!(err.is_full(), "expected a full error, got {err}");
        assert!(err.to_string().contains("full.db"), "{err}");
        assert!(written > 100, "only {written} values fit");
        for i in 0..written {
            assert_eq!(
                s.get(format!("k{i}").as_bytes()).unwrap().map(|v| v.len()),
                Some(8000),
                "k{i}"
            );
        }
        drop(s);
        let s = Store::open(&path, opts).unwrap();
        for i in 0..written {
            assert!(
                s.contains(format!("k{i}").as_bytes()).unwrap(),
                "k{i} lost after reopen"
            );
        }
        written
    });
    let _ = std::process::Command::new("umount")
        .arg(mnt.path())
        .status();
    result.unwrap();
}

fn refused(path: &std::path::Path, what: &str, expect: &str) {
    match Store::open(path, apcdb_tests::options()) {
        Err(e @ Error::Permission { .. }) => {
            assert!(e.to_string().contains(expect), "{what}: {e}")
        }
        other => panic!(
            "{what}: expected a permission error, got {:?}",
            other.map(|_| ())
        ),
    }
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn refuses_files_readable_by_group_or_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    for (suffix, mode) in [("", 0o644), (".lock", 0o640), (".journal", 0o604)] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        chmod(&f, mode);
        refused(&path, &format!("{suffix} {mode:o}"), "chmod 600");
        chmod(&f, 0o600);
    }
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn refuses_hard_linked_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    for suffix in ["", ".journal", ".lock"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let other = dir.path().join("elsewhere");
        std::fs::hard_link(&f, &other).unwrap();
        refused(&path, &format!("link to {suffix}"), "2 hard links");
        std::fs::remove_file(&other).unwrap();
    }
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn refuses_directories_others_can_change() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("s.db");
    for mode in [0o770, 0o777, 0o757] {
        chmod(&dir, mode);
        refused(&path, &format!("directory {mode:o}"), "chmod go-w");
        assert!(
            !path.exists(),
            "nothing may be created in a refused directory"
        );
    }
    // Sticky, like /tmp: others may only remove or rename their own files.
    chmod(&dir, 0o1777);
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    chmod(&dir, 0o755);
    assert!(Store::open(&path, apcdb_tests::options()).is_ok());
    // /tmp itself (root's, 1777) stays allowed.
    let s = Store::open_anonymous(apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test must run as root (CI does) to give a directory to someone else");
    }
    std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
    refused(&path, "directory owned by uid 65534", "owned by uid 65534");
    std::os::unix::fs::chown(&dir, Some(0), None).unwrap();
    assert!(Store::open(&path, apcdb_tests::options()).is_ok());
}

/// A writer process has the store open; someone deletes PATH.lock. A new opener must not become
/// a second "first opener" (two write locks over one data file): it is refused until the writer
/// closes, and then every acknowledged write is there and the store checks clean.
#[test]
fn deleted_lock_file_lets_no_second_first_opener_in() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_apcdb-test-worker"))
        .arg(&path)
        .args(["periodic", "write-wait", "k", "3000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0u64;
    let mut deleted = false;
    let mut refusals = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("ack ") {
            acked += 1;
        }
        if acked == 100 && !deleted {
            std::fs::remove_file(dir.path().join("w.db.lock")).unwrap();
            deleted = true;
        }
        if deleted && (acked.is_multiple_of(500) || line == "done") {
            // While the writer runs (and after it finished writing, still open): refused.
            match Store::open(&path, apcdb_tests::options()) {
                Err(e) => assert!(
                    e.to_string()
                        .contains("deleted or replaced while processes still have"),
                    "{e}"
                ),
                Ok(_) => panic!("a second first opener got in while the writer runs"),
            }
            refusals += 1;
        }
        if line == "done" {
            break;
        }
    }
    assert_eq!(acked, 3000);
    assert!(refusals >= 2);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    for i in 0..acked {
        assert_eq!(
            s.get(format!("k{i}").as_bytes()).unwrap(),
            Some(apcdb_tests::value(i)),
            "k{i}"
        );
    }
    drop(s);
    let report = apcdb::verify::check(&path).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// The data file renamed over while a handle has the store open: new openers are refused (they
/// would use another file than the running processes), and the running handle refuses to write
/// (its writes would go to a file no one opens again) at its next checkpoint.
#[test]
fn replaced_data_file_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    s.put(b"k", b"v").unwrap();
    s.checkpoint().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    chmod(&copy, 0o600);
    std::fs::rename(&copy, &path).unwrap();
    match Store::open(&path, apcdb_tests::options()) {
        Err(e) => assert!(
            e.to_string()
                .contains("deleted or replaced while processes still have"),
            "{e}"
        ),
        Ok(_) => panic!("opened a replaced data file while another handle uses the old one"),
    }
    let e = s
        .checkpoint()
        .expect_err("checkpoint after the data file was replaced");
    assert!(
        e.to_string().contains("data file was deleted or replaced"),
        "{e}"
    );
    assert!(s.put(b"k2", b"v").is_err(), "writes after the replacement");
    drop(s);
    let s = Store::open(&path, apcdb_tests::options()).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
}
