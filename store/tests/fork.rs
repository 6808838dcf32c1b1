//! A process forked inside an `update` callback inherits the write guard but not the lock: its
//! commit must be refused, and the parent's transaction must not see the child's write.

use apcdb::{Error, Options, Store, Update};

#[test]
fn child_forked_under_the_write_lock_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = Store::open(
        &p,
        Options::default()
            .journal_size(256 << 10)
            .initial_size(256 << 10)
            .max_size(16 << 20),
    )
    .unwrap();
    let parent = std::process::id();
    // Ok(None) in the child; in the parent, the child's exit status and what the parent read
    // after the child finished.
    let r = s.update(b"k", |_| {
        // SAFETY: fork has no preconditions; the child only runs this test's own code below and
        // leaves with _exit, never returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        let put = Update::Put {
            value: if pid == 0 {
                b"child".to_vec()
            } else {
                b"parent".to_vec()
            },
            expires_at_ms: 0,
        };
        if pid == 0 {
            return (put, None);
        }
        let mut status = 0;
        // SAFETY: waits for the child we just forked; status is a valid out-pointer.
        let w = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(w, pid);
        (put, Some((status, s.get(b"k").unwrap())))
    });
    if std::process::id() != parent {
        let code = match r {
            Err(Error::ForkedLockHolder) => 0,
            Ok(_) => 1,
            Err(_) => 2,
        };
        // SAFETY: leaves the forked child at once, without running the harness's exit path.
        unsafe { libc::_exit(code) }
    }
    match r {
        Ok(Some((status, seen))) => {
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            let code = libc::WEXITSTATUS(status);
            assert_eq!(
                code, 0,
                "the child's commit was not refused (exit code {code})"
            );
            assert_eq!(
                seen, None,
                "the child's write reached the store under the parent's lock"
            );
            assert_eq!(s.get(b"k").unwrap(), Some(b"parent".to_vec()));
            // The lock was released normally: later writes work.
            s.put(b"after", b"1").unwrap();
        }
        other => panic!("parent: {:?}", other.map(|_| ())),
    }
}

/// The anonymous store is never flushed (no fsync, no msync): it must still work through many
/// journal cycles (checkpoints) and be shared with a child forked after it was made.
#[test]
fn anonymous_store_cycles_its_journal_and_is_shared_with_children() {
    let s = Store::open_anonymous(
        Options::default()
            .journal_size(64 << 10)
            .initial_size(64 << 10)
            .max_size(16 << 20),
    )
    .unwrap();
    let value = vec![7u8; 1000];
    for i in 0..2000u32 {
        s.put(format!("k{}", i % 300).as_bytes(), &value).unwrap();
    }
    assert!(s.stats().unwrap().checkpoints > 10);
    // SAFETY: the child only uses the store and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = s.get(b"k299").ok().flatten().as_deref() == Some(&value[..])
            && s.put(b"from-child", b"1").is_ok();
        // SAFETY: leaves the forked child at once, without running the harness's exit path.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
    }
    let mut status = 0;
    // SAFETY: waits for the child we just forked; status is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(s.get(b"from-child").unwrap(), Some(b"1".to_vec()));
    for i in 0..300u32 {
        assert_eq!(
            s.get(format!("k{i}").as_bytes()).unwrap().as_deref(),
            Some(&value[..])
        );
    }
}
