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
