//! Per-key generator locks (`Store::lock_entry`, SPEC.md §6.6): callers of the same key wait for
//! each other across processes, nothing else waits, and the death of the holder releases it.

mod common;

use apcdb::{Options, Store};
use common::{expect_line, helper_command, helper_role, say};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn options() -> Options {
    Options::default()
        .journal_size(256 << 10)
        .initial_size(256 << 10)
        .max_size(16 << 20)
}

/// The other process of the tests below; does nothing when run without `APCDB_HELPER`.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    assert_eq!(role, "hold");
    // Holds "k" until told to go on (a line on stdin), or until killed.
    let s = Store::open(&path, options()).unwrap();
    let g = s.lock_entry(b"k").unwrap().expect("not nested");
    say("held");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(g);
    say("released");
}

/// Starts a process that holds "k"; returns once it does, with its output (kept open: the
/// helper's harness fails when it cannot print).
fn holder(path: &Path) -> (Child, impl BufRead) {
    let mut child = helper_command("hold", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, "held");
    (child, out)
}

/// Takes "k" on another thread of this process; the receiver gets the moment it got it.
fn wait_for_k(s: &std::sync::Arc<Store>) -> mpsc::Receiver<Instant> {
    let (tx, rx) = mpsc::channel();
    let s = s.clone();
    std::thread::spawn(move || {
        let g = s.lock_entry(b"k").unwrap().expect("not nested");
        let _ = tx.send(Instant::now());
        drop(g);
    });
    rx
}

#[test]
fn only_callers_of_the_same_key_wait_and_a_release_lets_them_go() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = std::sync::Arc::new(Store::open(&p, options()).unwrap());
    let (mut child, _out) = holder(&p);

    // Everything but "k"'s generator lock goes on while another process holds it.
    let t = Instant::now();
    s.put(b"k", b"written meanwhile").unwrap();
    s.put(b"other", b"1").unwrap();
    assert_eq!(
        s.get(b"k").unwrap().as_deref(),
        Some(&b"written meanwhile"[..])
    );
    let g = s.lock_entry(b"other").unwrap().expect("not nested");
    drop(g);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    let got = wait_for_k(&s);
    assert!(
        got.recv_timeout(Duration::from_millis(400)).is_err(),
        "took \"k\" while another process held it"
    );
    let released = Instant::now();
    use std::io::Write;
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    let at = got
        .recv_timeout(Duration::from_secs(10))
        .expect("still waiting");
    assert!(at >= released);
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_death_of_the_holder_releases_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = std::sync::Arc::new(Store::open(&p, options()).unwrap());
    let (mut child, _out) = holder(&p);
    let got = wait_for_k(&s);
    assert!(got.recv_timeout(Duration::from_millis(300)).is_err());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    got.recv_timeout(Duration::from_secs(10))
        .expect("the waiter was not released by the holder's death");
}

#[test]
fn nested_calls_in_one_thread_do_not_wait_for_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s.db"), options()).unwrap();
    let outer = s.lock_entry(b"k").unwrap().expect("not nested");
    assert!(s.lock_entry(b"k").unwrap().is_none(), "same key: nested");
    // Other keys are taken, whatever bucket they share with "k".
    let others: Vec<_> = (0..200)
        .map(|i| {
            s.lock_entry(format!("o{i}").as_bytes())
                .unwrap()
                .expect("not nested")
        })
        .collect();
    drop(others);
    drop(outer);
    // Released: taken again, not nested.
    assert!(s.lock_entry(b"k").unwrap().is_some());
}

#[test]
fn another_thread_waits_for_the_holding_thread() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path().join("s.db"), options()).unwrap());
    let g = s.lock_entry(b"k").unwrap().expect("not nested");
    let got = wait_for_k(&s);
    assert!(got.recv_timeout(Duration::from_millis(300)).is_err());
    drop(g);
    got.recv_timeout(Duration::from_secs(10))
        .expect("still waiting");
}

#[test]
fn release_all_frees_what_a_skipped_guard_held() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path().join("s.db"), options()).unwrap());
    let g = s.lock_entry(b"k").unwrap().expect("not nested");
    std::mem::forget(g);
    s.release_entry_locks();
    let got = wait_for_k(&s);
    got.recv_timeout(Duration::from_secs(10))
        .expect("still held");
}

/// Processes forked after the open share its lock-file description (PHP-FPM workers of an
/// anonymous store): they must still exclude each other.
#[test]
fn processes_forked_from_one_opener_exclude_each_other() {
    let s = Store::open_anonymous(options()).unwrap();
    // Used once before the fork, as a worker's parent may have.
    drop(s.lock_entry(b"warm").unwrap());
    let g = s.lock_entry(b"k").unwrap().expect("not nested");
    // SAFETY: fork has no preconditions; the child only runs the code below and leaves with
    // _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // A fresh process (not nested in the parent's generator) would wait; inside the parent's
        // generator this thread still counts as its holder.
        let nested = s.lock_entry(b"k").map(|g| g.is_none()).unwrap_or(false);
        // Another key is taken through the child's own description; then the child waits for
        // the parent's "k" once it lets go of the inherited one.
        let other = s.lock_entry(b"other").map(|g| g.is_some()).unwrap_or(false);
        drop(g);
        let t = Instant::now();
        let waited = s
            .lock_entry(b"k")
            .map(|g| g.is_some() && t.elapsed() > Duration::from_millis(200))
            .unwrap_or(false);
        // SAFETY: leaves the forked child at once, without running the harness's exit path.
        unsafe { libc::_exit(if nested && other && waited { 0 } else { 1 }) }
    }
    // The child's release of its inherited share must not have released ours: hold a while.
    std::thread::sleep(Duration::from_millis(400));
    drop(g);
    let mut status = 0;
    // SAFETY: waits for the child we just forked; status is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

/// A holder that needs another key held elsewhere does not wait (the other holder might be
/// waiting for it): it gets `None` and computes without the lock.
#[test]
fn a_holder_does_not_wait_for_a_second_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    let s = Store::open(&p, options()).unwrap();
    let (mut child, _out) = holder(&p);
    let mine = s.lock_entry(b"mine").unwrap().expect("not nested");
    let t = Instant::now();
    assert!(s.lock_entry(b"k").unwrap().is_none());
    assert!(t.elapsed() < Duration::from_millis(500));
    drop(mine);
    use std::io::Write;
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
}

/// The same between threads of one process: a holder does not wait for another thread's key.
#[test]
fn a_holder_does_not_wait_for_another_threads_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path().join("s.db"), options()).unwrap());
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let s2 = s.clone();
    let t = std::thread::spawn(move || {
        let g = s2.lock_entry(b"k").unwrap().expect("not nested");
        held_tx.send(()).unwrap();
        let _ = go_rx.recv();
        drop(g);
    });
    held_rx.recv().unwrap();
    let mine = s.lock_entry(b"mine").unwrap().expect("not nested");
    let t0 = Instant::now();
    assert!(s.lock_entry(b"k").unwrap().is_none());
    assert!(t0.elapsed() < Duration::from_millis(500));
    drop(mine);
    go_tx.send(()).unwrap();
    t.join().unwrap();
}
