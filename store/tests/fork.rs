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

/// Threads of this process named `apcdb-ckpt` (the background checkpoint threads).
fn checkpoint_threads() -> usize {
    threads_named("apcdb-ckpt")
}

fn threads_named(wanted: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == wanted)
        .count()
}

/// Writes until the store has taken `n` more checkpoints; returns whether it did in time.
fn write_through_checkpoints(s: &Store, n: u64, tag: &str) -> bool {
    let c0 = s.stats().unwrap().checkpoints;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let value = vec![3u8; 500];
    let mut i = 0u32;
    while s.stats().unwrap().checkpoints < c0 + n {
        if std::time::Instant::now() > deadline
            || s.put(format!("{tag}{}", i % 200).as_bytes(), &value)
                .is_err()
        {
            return false;
        }
        i += 1;
    }
    true
}

/// The background checkpoint thread belongs to the process that started it: a child forked
/// after it started inherits the handle but not the thread, so the child's first write that
/// finds a flush due starts one of its own (its writes never flush themselves), and the child
/// can drop the handle (joining the parent's thread there would wait for good).
#[test]
fn background_checkpoint_thread_is_started_again_in_a_forked_child() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = Store::open(
        &p,
        Options::default()
            .durability(apcdb::Durability::None)
            .journal_size(64 << 10)
            .initial_size(256 << 10)
            .max_size(16 << 20)
            .background_checkpoints(true),
    )
    .unwrap();
    // Started by the first write that found a flush due, not at open.
    assert_eq!(checkpoint_threads(), 0, "a thread before any checkpoint");
    assert!(
        write_through_checkpoints(&s, 3, "p"),
        "parent: checkpoints stalled"
    );
    assert_eq!(checkpoint_threads(), 1);
    assert_eq!(s.stats().unwrap().flushes_by_writes, 0);
    // SAFETY: the child only uses the store, reads /proc and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = if checkpoint_threads() != 0 {
            1
        } else if !write_through_checkpoints(&s, 3, "c") {
            2
        } else if checkpoint_threads() != 1 {
            3
        } else if s.stats().unwrap().flushes_by_writes != 0 {
            4
        } else {
            drop(s);
            if checkpoint_threads() != 0 {
                5
            } else {
                0
            }
        };
        // SAFETY: leaves the forked child at once, without running the harness's exit path.
        unsafe { libc::_exit(code) }
    }
    // The child must finish (a drop that joins the parent's thread never would).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: polls the child we just forked; status is a valid out-pointer.
        let w = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if w == pid {
            break;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung (dropping the handle it inherited?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child check failed (see the codes above)"
    );
    // The parent's thread is still its own, and stopping it leaves the handle usable.
    assert!(
        write_through_checkpoints(&s, 2, "p"),
        "parent: checkpoints stalled after the fork"
    );
    assert_eq!(s.stats().unwrap().flushes_by_writes, 0);
    s.stop_threads();
    assert_eq!(checkpoint_threads(), 0);
    assert!(
        write_through_checkpoints(&s, 2, "p"),
        "parent: checkpoints stalled without a thread"
    );
    assert!(
        s.stats().unwrap().flushes_by_writes > 0,
        "without a thread writes flush"
    );
    assert_eq!(s.get(b"c0").unwrap(), Some(vec![3u8; 500]));
}

/// Threads named "apcdb-flush", once their count is `want` or after 2 s: a new thread names
/// itself only once it runs.
fn flush_threads_settle(want: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let n = threads_named("apcdb-flush");
        if n == want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `Durability::Periodic`'s journal flusher belongs to the process that started it, like the
/// checkpoint thread: a forked child's first write starts its own, so records the child writes
/// just before falling silent still reach the disk within the interval; the child's drop does
/// not wait for the parent's thread.
#[test]
fn periodic_flusher_is_started_again_in_a_forked_child() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path().join("s.db"),
        Options::default()
            .durability(apcdb::Durability::Periodic(
                std::time::Duration::from_millis(20),
            ))
            .journal_size(256 << 10)
            .initial_size(256 << 10)
            .max_size(16 << 20),
    )
    .unwrap();
    assert_eq!(flush_threads_settle(1), 1, "started at open");
    s.put(b"p", b"1").unwrap();
    // SAFETY: the child only uses the store, reads /proc and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = if flush_threads_settle(0) != 0 {
            1
        } else if s.put(b"c", b"2").is_err() {
            2
        } else if flush_threads_settle(1) != 1 {
            3
        } else {
            drop(s);
            if flush_threads_settle(0) != 0 {
                4
            } else {
                0
            }
        };
        // SAFETY: leaves the forked child at once, without running the harness's exit path.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for the child we just forked; status is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child check failed: 1 inherited a thread, 2 put failed, 3 no thread after its write, \
         4 thread left after drop"
    );
    assert_eq!(s.get(b"c").unwrap(), Some(b"2".to_vec()));
    assert_eq!(flush_threads_settle(1), 1, "the parent's thread is its own");
    s.stop_threads();
    assert_eq!(flush_threads_settle(0), 0);
}
