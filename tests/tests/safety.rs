//! Bad input loses nothing: foreign, group-writable and symlinked files are refused with a clear
//! error; a full disk gives an error and keeps earlier data (superblock damage: superblocks.rs).

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
        .err()
        .expect("group-writable file must be refused");
    assert!(
        e.to_string().contains("lets group or others write it"),
        "{e}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let e = Store::open(&link, apcdb_tests::options())
        .err()
        .expect("symlink must be refused");
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
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "mounting a 4 MiB tmpfs failed: this test needs root (CI runs as root)"
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
